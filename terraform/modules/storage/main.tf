# Two resource blocks because lifecycle.prevent_destroy cannot be a variable: prod (retain) buckets live in
# `retained`, dev/staging buckets in `this` (force_destroy, so `recsys destroy` empties and removes them).
resource "aws_s3_bucket" "this" {
  for_each = var.retain ? {} : var.buckets
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice; the data is reproducible from raw events.
  #checkov:skip=CKV_AWS_18:Access logging would need a log bucket per env; CloudTrail data events cover audit needs.
  #checkov:skip=CKV2_AWS_62:No consumer subscribes to object events; the pipeline is driven by Step Functions.

  bucket        = each.value.name
  force_destroy = true
  tags          = var.tags
}

resource "aws_s3_bucket" "retained" {
  for_each = var.retain ? var.buckets : {}
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice; the data is reproducible from raw events.
  #checkov:skip=CKV_AWS_18:Access logging would need a log bucket per env; CloudTrail data events cover audit needs.
  #checkov:skip=CKV2_AWS_62:No consumer subscribes to object events; the pipeline is driven by Step Functions.

  bucket        = each.value.name
  force_destroy = false
  tags          = var.tags

  lifecycle {
    prevent_destroy = true
  }
}

locals {
  bucket_ids  = { for k, b in merge(aws_s3_bucket.this, aws_s3_bucket.retained) : k => b.id }
  bucket_arns = { for k, b in merge(aws_s3_bucket.this, aws_s3_bucket.retained) : k => b.arn }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = var.buckets

  bucket                  = local.bucket_ids[each.key]
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = var.buckets

  bucket = local.bucket_ids[each.key]

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = var.buckets

  bucket = local.bucket_ids[each.key]

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = var.buckets

  bucket = local.bucket_ids[each.key]

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = var.buckets

  bucket = local.bucket_ids[each.key]

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = each.value.noncurrent_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Raw events age out (a user's erasure reaches them here): current objects expire, then their versions.
  dynamic "rule" {
    for_each = each.value.expiration_days == null ? [] : [each.value.expiration_days]

    content {
      id     = "expire-objects"
      status = "Enabled"

      filter {}

      expiration {
        days = rule.value
      }

      abort_incomplete_multipart_upload {
        days_after_initiation = 7
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

# Deny plain-HTTP access to every bucket.
resource "aws_s3_bucket_policy" "tls_only" {
  for_each = var.buckets

  bucket = local.bucket_ids[each.key]
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [local.bucket_arns[each.key], "${local.bucket_arns[each.key]}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  depends_on = [aws_s3_bucket_public_access_block.this]
}
