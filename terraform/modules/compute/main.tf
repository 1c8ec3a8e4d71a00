locals {
  zip_functions   = { for k, f in var.functions : k => f if f.package == "zip" }
  image_functions = { for k, f in var.functions : k => f if f.package == "image" }

  common_environment = merge(
    {
      RECSYS_ENV                   = var.environment
      RECSYS_BUCKET_SUFFIX         = "-${data.aws_caller_identity.current.account_id}"
      RECSYS_AWS_ACCOUNT_ID        = data.aws_caller_identity.current.account_id
      POWERTOOLS_SERVICE_NAME      = "recsys"
      POWERTOOLS_METRICS_NAMESPACE = "VideoRecSystem"
      LOG_LEVEL                    = "INFO"
    },
    var.environment_variables,
  )
}

resource "aws_ecr_repository" "training" {
  count = length(local.image_functions) > 0 ? 1 : 0

  name                 = "${lower(var.name_prefix)}-training"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = !var.retain
  tags                 = var.tags

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "training" {
  count = length(aws_ecr_repository.training)

  repository = aws_ecr_repository.training[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 20 newest training images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 20 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = var.functions
  #checkov:skip=CKV_AWS_338:Retention follows the environment table (7/30/90 days), not a fixed year.

  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  skip_destroy      = var.retain
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  for_each = var.functions
  #checkov:skip=CKV_AWS_116:Invoked synchronously (API Gateway, Step Functions) or by the Kinesis mapping, whose on-failure destination is an SQS queue; an async DLQ would never receive anything.
  #checkov:skip=CKV_AWS_117:dev has no VPC by the reference environment table; staging and prod pass subnets and security groups.
  #checkov:skip=CKV_AWS_115:Concurrency is bounded by API Gateway throttling and Kinesis shards; a reserved limit would starve the account pool in dev.
  #checkov:skip=CKV_AWS_272:Packages are built reproducibly by `recsys package` in CI; code signing needs a Signer profile outside this stack.

  function_name = each.value.name
  description   = each.value.description
  role          = aws_iam_role.this[each.key].arn
  architectures = ["x86_64"]
  memory_size   = each.value.profile == "training" ? var.training_memory_mb : var.memory_mb
  # Operations (e.g. a token rotation waiting for ElastiCache) need the long timeout, not the memory.
  timeout     = each.value.profile == "serving" ? var.timeout_s : var.training_timeout_s
  kms_key_arn = var.kms_key_arn

  package_type     = each.value.package == "zip" ? "Zip" : "Image"
  runtime          = each.value.package == "zip" ? "python3.11" : null
  handler          = each.value.package == "zip" ? element(split("/", each.value.handler), length(split("/", each.value.handler)) - 1) : null
  filename         = each.value.package == "zip" ? "${var.package_dir}/${each.key}.zip" : null
  source_code_hash = each.value.package == "zip" ? try(filebase64sha256("${var.package_dir}/${each.key}.zip"), null) : null
  image_uri        = each.value.package == "image" ? "${aws_ecr_repository.training[0].repository_url}:${var.image_tag}" : null

  dynamic "image_config" {
    for_each = each.value.package == "image" ? [1] : []

    content {
      # One image for every training stage; the handler picks the stage.
      command = [replace(each.value.handler, "/", ".")]
    }
  }

  environment {
    variables = merge(
      local.common_environment,
      { RECSYS_FUNCTION = each.key },
      # Training stages launch SageMaker jobs with their own image.
      each.value.package == "image" ? { RECSYS_TRAINING_IMAGE_URI = "${aws_ecr_repository.training[0].repository_url}:${var.image_tag}" } : {},
    )
  }

  tracing_config {
    mode = "Active"
  }

  dynamic "vpc_config" {
    for_each = length(var.subnet_ids) > 0 ? [1] : []

    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this, aws_iam_role_policy_attachment.vpc]
}

# Secrets Manager invokes the rotation function of the secrets it rotates (only those: source_arn).
resource "aws_lambda_permission" "secret_rotation" {
  for_each = { for k, g in local.grants : k => g.secrets_rotate if length(g.secrets_rotate) > 0 }

  statement_id  = "SecretsManagerRotation"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = "secretsmanager.amazonaws.com"
  source_arn    = each.value[0]
}
