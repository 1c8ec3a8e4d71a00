data "aws_region" "current" {}

locals {
  # Top-level path parts; every route is a Lambda proxy integration to the API function.
  # model, catalog: the page's JSON routes; docs, openapi.json, static: the API docs and the page's files.
  top_paths = toset(["health", "recommendations", "interactions", "cached", "users", "videos", "model", "catalog", "docs", "openapi.json", "static"])
}

resource "aws_api_gateway_rest_api" "this" {
  name        = "${var.name_prefix}-api"
  description = "Video recommendation service of ${var.name_prefix}"
  tags        = var.tags

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "top" {
  for_each = local.top_paths

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = each.key
}

# /recommendations/{user_id}, /cached/{user_id} and /users/{user_id}
resource "aws_api_gateway_resource" "user" {
  for_each = toset(["recommendations", "cached", "users"])

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.top[each.key].id
  path_part   = "{user_id}"
}

# /static/{name} (the page's and Swagger UI's files) and /model/report (the evaluation report)
resource "aws_api_gateway_resource" "static_file" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.top["static"].id
  path_part   = "{name}"
}

# /videos/{video_id} (the live catalogue: DELETE takes a video out of every answer)
resource "aws_api_gateway_resource" "video" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.top["videos"].id
  path_part   = "{video_id}"
}

resource "aws_api_gateway_resource" "model_report" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.top["model"].id
  path_part   = "report"
}

locals {
  # The page (/), its files, the docs and the OpenAPI document hold no data and no secret: they are public,
  # and the person types the API key into the page, which sends it with every data route below.
  methods = {
    health          = { resource_id = aws_api_gateway_resource.top["health"].id, method = "GET", api_key = false }
    recommendations = { resource_id = aws_api_gateway_resource.user["recommendations"].id, method = "GET", api_key = true }
    interactions    = { resource_id = aws_api_gateway_resource.top["interactions"].id, method = "POST", api_key = true }
    cached          = { resource_id = aws_api_gateway_resource.user["cached"].id, method = "GET", api_key = true }
    model           = { resource_id = aws_api_gateway_resource.top["model"].id, method = "GET", api_key = true }
    model_report    = { resource_id = aws_api_gateway_resource.model_report.id, method = "GET", api_key = true }
    catalog         = { resource_id = aws_api_gateway_resource.top["catalog"].id, method = "GET", api_key = true }
    page            = { resource_id = aws_api_gateway_rest_api.this.root_resource_id, method = "GET", api_key = false }
    docs            = { resource_id = aws_api_gateway_resource.top["docs"].id, method = "GET", api_key = false }
    openapi         = { resource_id = aws_api_gateway_resource.top["openapi.json"].id, method = "GET", api_key = false }
    static          = { resource_id = aws_api_gateway_resource.static_file.id, method = "GET", api_key = false }
    # Erasure: the client key gets through the gateway; the Lambda also demands the operator key.
    users = { resource_id = aws_api_gateway_resource.user["users"].id, method = "DELETE", api_key = true }
    # The live catalogue (POST /videos, DELETE /videos/{video_id}).
    videos       = { resource_id = aws_api_gateway_resource.top["videos"].id, method = "POST", api_key = true }
    video_remove = { resource_id = aws_api_gateway_resource.video.id, method = "DELETE", api_key = true }
  }
  path_parameters = {
    recommendations = "user_id"
    cached          = "user_id"
    users           = "user_id"
    video_remove    = "video_id"
    static          = "name"
  }
}

resource "aws_api_gateway_request_validator" "this" {
  name                        = "validate-body-and-parameters"
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  validate_request_body       = true
  validate_request_parameters = true
}

resource "aws_api_gateway_method" "this" {
  for_each = local.methods
  #checkov:skip=CKV_AWS_59:Callers authenticate with the usage plan's API key (api_key_required); /health (load-balancer probes) and the page, its files, /docs and /openapi.json (no data, no secret) are public by design.
  #checkov:skip=CKV2_AWS_53:Requests are validated by the Lambda's typed models (400 with the field named); the validator checks path parameters.

  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = each.value.resource_id
  http_method          = each.value.method
  authorization        = "NONE"
  api_key_required     = each.value.api_key
  request_validator_id = aws_api_gateway_request_validator.this.id
  request_parameters   = contains(keys(local.path_parameters), each.key) ? { "method.request.path.${local.path_parameters[each.key]}" = true } : {}
}

resource "aws_api_gateway_integration" "this" {
  for_each = local.methods

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = each.value.resource_id
  http_method             = aws_api_gateway_method.this[each.key].http_method
  integration_http_method = "POST"
  type                    = "AWS_PROXY"
  uri                     = var.function_invoke_arn
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowApiGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/*/*"
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  triggers = {
    redeployment = sha1(jsonencode([aws_api_gateway_resource.top, aws_api_gateway_resource.user, aws_api_gateway_resource.static_file, aws_api_gateway_resource.model_report, aws_api_gateway_method.this, aws_api_gateway_integration.this]))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_338:Retention follows the environment table (7/30/90 days), not a fixed year.
  name              = "/aws/apigateway/${var.name_prefix}-api/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV2_AWS_51:Client certificates authenticate API Gateway to an HTTP backend; the backend here is Lambda.
  #checkov:skip=CKV_AWS_120:Responses are personalised per user and already cached in Redis/DynamoDB; a stage cache would serve stale recommendations.
  deployment_id        = aws_api_gateway_deployment.this.id
  rest_api_id          = aws_api_gateway_rest_api.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true
  tags                 = var.tags

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId      = "$context.requestId"
      ip             = "$context.identity.sourceIp"
      requestTime    = "$context.requestTime"
      httpMethod     = "$context.httpMethod"
      resourcePath   = "$context.resourcePath"
      status         = "$context.status"
      responseLength = "$context.responseLength"
      latencyMs      = "$context.responseLatency"
      apiKeyId       = "$context.identity.apiKeyId"
    })
  }

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:See CKV_AWS_120 on the stage: caching personalised responses is wrong here.
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = "INFO"
    data_trace_enabled     = false
    throttling_rate_limit  = var.rate_limit_rps
    throttling_burst_limit = var.burst_limit
    caching_enabled        = false
  }
}

resource "aws_api_gateway_api_key" "this" {
  name        = "${var.name_prefix}-default"
  description = "Default client key of ${var.name_prefix}; the value stays in API Gateway (aws apigateway get-api-key --include-value)."
  tags        = var.tags
}

resource "aws_api_gateway_usage_plan" "this" {
  name        = "${var.name_prefix}-default"
  description = "Throttling for ${var.name_prefix} clients"
  tags        = var.tags

  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
  }

  throttle_settings {
    rate_limit  = var.rate_limit_rps
    burst_limit = var.burst_limit
  }

  dynamic "quota_settings" {
    for_each = var.quota_per_day == null ? [] : [var.quota_per_day]

    content {
      limit  = quota_settings.value
      period = "DAY"
    }
  }
}

resource "aws_api_gateway_usage_plan_key" "this" {
  key_id        = aws_api_gateway_api_key.this.id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.this.id
}

# API Gateway writes execution and access logs through one account-wide role.
data "aws_iam_policy_document" "apigw_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cloudwatch" {
  count = var.manage_account_logging_role ? 1 : 0

  name               = "${var.name_prefix}-apigateway-cloudwatch"
  assume_role_policy = data.aws_iam_policy_document.apigw_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "cloudwatch" {
  count = var.manage_account_logging_role ? 1 : 0

  role       = aws_iam_role.cloudwatch[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.manage_account_logging_role ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.cloudwatch[0].arn
}

# WAF on the stage: a per-IP rate-based rule, AWS's common rule set and known bad inputs (Log4j and the like).
resource "aws_wafv2_web_acl" "api" {
  name        = "${var.name_prefix}-api"
  description = "Rate limit per IP and AWS managed rules in front of ${var.name_prefix}-api"
  scope       = "REGIONAL"
  tags        = var.tags

  default_action {
    allow {}
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 0

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_5min
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-api-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-common-rules"
    priority = 1

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-api-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 2

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-api-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  # Anonymising proxies (Tor, VPN exits) are blocked; cloud hosting addresses are only counted, since
  # server-side clients of the API legitimately run there.
  rule {
    name     = "aws-anonymous-ip"
    priority = 3

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAnonymousIpList"
        vendor_name = "AWS"

        rule_action_override {
          name = "HostingProviderIPList"

          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-api-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name_prefix}-api"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "api" {
  resource_arn = aws_api_gateway_stage.this.arn
  web_acl_arn  = aws_wafv2_web_acl.api.arn
}

resource "aws_cloudwatch_log_group" "waf" {
  #checkov:skip=CKV_AWS_338:Retention follows the environment table (7/30/90 days), not a fixed year.
  name              = "aws-waf-logs-${var.name_prefix}-api" # WAF requires the aws-waf-logs- prefix
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
  resource_arn            = aws_wafv2_web_acl.api.arn

  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }
}
