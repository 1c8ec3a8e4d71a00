locals {
  # Initial values only: api-keys and config are edited by operators afterwards (ignore_changes keeps
  # those edits); redis-credentials is owned by Terraform and follows the cluster.
  initial_values = {
    api_keys = jsonencode({ external_api_key = "", operator_api_key = "" })
    config   = jsonencode({})
  }
  has_redis_secret = contains(keys(var.secrets), "redis_credentials")
}

resource "aws_secretsmanager_secret" "this" {
  for_each = var.secrets
  #checkov:skip=CKV2_AWS_57:Only redis-credentials rotates (prod, below); api-keys and config are rotated by hand as the reference system says.

  name                    = each.value.name
  description             = each.value.description
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "managed" {
  for_each = { for k, v in local.initial_values : k => v if contains(keys(var.secrets), k) }

  secret_id     = aws_secretsmanager_secret.this[each.key].id
  secret_string = each.value

  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret_version" "redis" {
  count = local.has_redis_secret && var.redis != null ? 1 : 0

  secret_id = aws_secretsmanager_secret.this["redis_credentials"].id
  secret_string = jsonencode({
    host                 = var.redis.host
    port                 = var.redis.port
    auth_token           = var.redis.auth_token
    replication_group_id = var.redis.replication_group_id
    tls                  = true
  })

  lifecycle {
    # After the first rotation the rotation Lambda owns the value.
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret_rotation" "redis" {
  #checkov:skip=CKV_AWS_304:The period is var.redis_rotation_days, validated to 1..90 days (prod sets 30).
  count = local.has_redis_secret && var.redis_rotation_days != null && var.redis_rotation_lambda_arn != null ? 1 : 0

  secret_id           = aws_secretsmanager_secret.this["redis_credentials"].id
  rotation_lambda_arn = var.redis_rotation_lambda_arn

  rotation_rules {
    automatically_after_days = var.redis_rotation_days
  }

  depends_on = [aws_secretsmanager_secret_version.redis]
}
