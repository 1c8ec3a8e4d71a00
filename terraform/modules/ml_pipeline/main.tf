data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  partition  = data.aws_partition.current.partition

  # Every function of the catalogue is offered as <key>_function_arn; the ASL file uses the pipeline ones.
  template_vars = { for k, arn in var.function_arns : "${k}_function_arn" => arn }
  invoked_arns  = [for k in var.pipeline_functions : var.function_arns[k]]
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention follows the environment table (7/30/90 days), not a fixed year.
  name              = "/aws/vendedlogs/states/${var.state_machine_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "states_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "state_machine" {
  name               = "${var.name_prefix}-ml-pipeline"
  assume_role_policy = data.aws_iam_policy_document.states_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "state_machine" {
  statement {
    sid       = "InvokeStages"
    actions   = ["lambda:InvokeFunction"]
    resources = concat(local.invoked_arns, [for arn in local.invoked_arns : "${arn}:*"])
  }

  statement {
    # CloudWatch Logs log delivery and X-Ray do not support resource-level permissions: AWS requires "*".
    sid = "LogDeliveryAndTracing"
    actions = [
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
      "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "invoke-pipeline-stages"
  role   = aws_iam_role.state_machine.id
  policy = data.aws_iam_policy_document.state_machine.json
}

resource "aws_sfn_state_machine" "this" {
  name     = var.state_machine_name
  role_arn = aws_iam_role.state_machine.arn
  type     = "STANDARD"
  # The one ASL file of the pipeline (also run by the local runner), with the real function ARNs.
  definition = templatefile(var.definition_file, local.template_vars)
  tags       = var.tags

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.this.arn}:*"
    include_execution_data = true
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }

  depends_on = [aws_iam_role_policy.state_machine]
}

# --- SageMaker execution role (staging and prod train the models as SageMaker jobs) ---
data "aws_iam_policy_document" "sagemaker_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "sagemaker" {
  name               = "${var.name_prefix}-sagemaker"
  description        = "Execution role of the SageMaker training jobs of ${var.name_prefix}"
  assume_role_policy = data.aws_iam_policy_document.sagemaker_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "sagemaker" {
  statement {
    sid       = "ReadInputs"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = flatten([for k in ["artifacts", "models", "data"] : [var.bucket_arns[k], "${var.bucket_arns[k]}/*"]])
  }

  statement {
    sid       = "WriteModels"
    actions   = ["s3:PutObject"]
    resources = [for k in ["artifacts", "models"] : "${var.bucket_arns[k]}/*"]
  }

  statement {
    sid       = "DataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "TrainingLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/TrainingJobs:*"]
  }

  statement {
    # GetAuthorizationToken and PutMetricData have no resource-level permissions: AWS requires "*".
    sid       = "RegistryTokenAndMetrics"
    actions   = ["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.training_repository_arn == null ? [] : [var.training_repository_arn]

    content {
      sid       = "PullTrainingImage"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "sagemaker" {
  name   = "training-jobs"
  role   = aws_iam_role.sagemaker.id
  policy = data.aws_iam_policy_document.sagemaker.json
}

# --- Weekly training (prod only) ---
resource "aws_cloudwatch_event_rule" "schedule" {
  count = var.schedule_expression == null ? 0 : 1

  name                = "${var.name_prefix}-weekly-training"
  description         = "Runs the ML pipeline of ${var.name_prefix} on a schedule"
  schedule_expression = var.schedule_expression
  tags                = var.tags
}

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "schedule" {
  count = var.schedule_expression == null ? 0 : 1

  name               = "${var.name_prefix}-pipeline-schedule"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "schedule" {
  statement {
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.this.arn]
  }
}

resource "aws_iam_role_policy" "schedule" {
  count = var.schedule_expression == null ? 0 : 1

  name   = "start-pipeline"
  role   = aws_iam_role.schedule[0].id
  policy = data.aws_iam_policy_document.schedule.json
}

resource "aws_cloudwatch_event_target" "schedule" {
  count = var.schedule_expression == null ? 0 : 1

  rule     = aws_cloudwatch_event_rule.schedule[0].name
  arn      = aws_sfn_state_machine.this.arn
  role_arn = aws_iam_role.schedule[0].arn
  # The production version's data plus every event collected since (recsys.data.events_source): a deployed
  # system retrains on what its users did. Too little data fails in preprocessing; production is unchanged.
  input = jsonencode({
    trigger = "schedule"
    source  = { kind = "events", base = "production" }
  })
}
