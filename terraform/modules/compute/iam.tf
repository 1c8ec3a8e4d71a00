data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# One role per function.
resource "aws_iam_role" "this" {
  for_each = var.functions

  name               = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description        = "Execution role of ${each.value.name}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "this" {
  for_each = var.functions

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]
  }

  statement {
    # X-Ray trace segments have no resource-level permissions: AWS requires "*".
    sid       = "XRay"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "DataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  dynamic "statement" {
    for_each = length(local.grants[each.key].s3_read) > 0 ? [1] : []

    content {
      sid       = "ReadBuckets"
      actions   = ["s3:GetObject", "s3:ListBucket"]
      resources = flatten([for arn in local.grants[each.key].s3_read : [arn, "${arn}/*"]])
    }
  }

  dynamic "statement" {
    for_each = length(local.grants[each.key].s3_write) > 0 ? [1] : []

    content {
      sid       = "WriteBuckets"
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = local.grants[each.key].s3_write
    }
  }

  dynamic "statement" {
    for_each = length(local.grants[each.key].tables_read) > 0 ? [1] : []

    content {
      sid       = "ReadTables"
      actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:DescribeTable"]
      resources = flatten([for arn in local.grants[each.key].tables_read : [arn, "${arn}/index/*"]])
    }
  }

  dynamic "statement" {
    for_each = length(local.grants[each.key].tables_write) > 0 ? [1] : []

    content {
      sid       = "WriteTables"
      actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]
      resources = local.grants[each.key].tables_write
    }
  }

  dynamic "statement" {
    for_each = length(local.grants[each.key].streams_read) > 0 ? [1] : []

    content {
      sid       = "ReadStreams"
      actions   = ["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards"]
      resources = local.grants[each.key].streams_read
    }
  }

  dynamic "statement" {
    for_each = length(local.grants[each.key].streams_write) > 0 ? [1] : []

    content {
      sid       = "WriteStreams"
      actions   = ["kinesis:PutRecord", "kinesis:PutRecords"]
      resources = local.grants[each.key].streams_write
    }
  }

  dynamic "statement" {
    for_each = length(local.grants[each.key].secrets) > 0 ? [1] : []

    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = local.grants[each.key].secrets
    }
  }

  dynamic "statement" {
    for_each = length(local.grants[each.key].secrets_rotate) > 0 ? [1] : []

    content {
      sid       = "RotateSecrets"
      actions   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"]
      resources = local.grants[each.key].secrets_rotate
    }
  }

  dynamic "statement" {
    for_each = local.grants[each.key].elasticache ? [1] : []

    content {
      sid       = "RedisAuthToken"
      actions   = ["elasticache:ModifyReplicationGroup", "elasticache:DescribeReplicationGroups"]
      resources = [var.redis_replication_group_arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.grants[each.key].metrics) > 0 ? [1] : []

    content {
      # PutMetricData has no resource-level permissions: AWS requires "*"; the namespace condition limits it.
      sid       = "PutMetrics"
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"]

      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = local.grants[each.key].metrics
      }
    }
  }

  dynamic "statement" {
    for_each = local.grants[each.key].failure_queue ? [1] : []

    content {
      sid       = "FailureDestination"
      actions   = ["sqs:SendMessage"]
      resources = [var.failure_queue_arn]
    }
  }

  dynamic "statement" {
    for_each = local.grants[each.key].sagemaker ? [1] : []

    content {
      sid       = "TrainingJobs"
      actions   = ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob", "sagemaker:AddTags"]
      resources = ["arn:${data.aws_partition.current.partition}:sagemaker:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:training-job/${lower(var.name_prefix)}-*"]
    }
  }

  dynamic "statement" {
    for_each = local.grants[each.key].sagemaker ? [1] : []

    content {
      sid       = "PassSageMakerRole"
      actions   = ["iam:PassRole"]
      resources = [var.sagemaker_role_arn]

      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["sagemaker.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  for_each = var.functions

  name   = "least-privilege"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.this[each.key].json
}

# ENI management for functions in the VPC (AWS managed policy; its actions do not support resource scoping).
resource "aws_iam_role_policy_attachment" "vpc" {
  for_each = length(var.subnet_ids) > 0 ? var.functions : {}

  role       = aws_iam_role.this[each.key].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}
