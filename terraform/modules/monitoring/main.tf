data "aws_region" "current" {}

locals {
  region = data.aws_region.current.region
  alarms = var.alarms_enabled ? 1 : 0
  api    = { ApiName = var.api_name, Stage = var.api_stage }
  # Lambda metrics alarmed on for every function, with the words of their descriptions.
  lambda_alarms = { Errors = "fails", Throttles = "is throttled" }
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title = "API requests and errors", region = local.region, stat = "Sum", period = 60
          metrics = [
            ["AWS/ApiGateway", "Count", "ApiName", var.api_name, "Stage", var.api_stage],
            [".", "4XXError", ".", ".", ".", "."],
            [".", "5XXError", ".", ".", ".", "."],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title = "API latency (ms)", region = local.region, period = 60
          metrics = [
            ["AWS/ApiGateway", "Latency", "ApiName", var.api_name, "Stage", var.api_stage, { stat = "p50" }],
            ["...", { stat = "p99" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title   = "Lambda errors", region = local.region, stat = "Sum", period = 300
          metrics = [for name in values(var.function_names) : ["AWS/Lambda", "Errors", "FunctionName", name]]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title   = "Lambda duration p99 (ms)", region = local.region, stat = "p99", period = 300
          metrics = [for name in values(var.function_names) : ["AWS/Lambda", "Duration", "FunctionName", name]]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title = "Event stream", region = local.region, period = 60
          metrics = [
            ["AWS/Kinesis", "IncomingRecords", "StreamName", var.stream_name, { stat = "Sum" }],
            [".", "GetRecords.IteratorAgeMilliseconds", ".", ".", { stat = "Maximum" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title = "ML pipeline executions", region = local.region, stat = "Sum", period = 3600
          metrics = [
            ["AWS/States", "ExecutionsSucceeded", "StateMachineArn", var.state_machine_arn],
            [".", "ExecutionsFailed", ".", "."],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 18, width = 12, height = 6
        properties = {
          title   = "Serving quality (daily)", region = local.region, stat = "Average", period = 86400
          metrics = [for m in ["catalog_coverage", "gini_served", "cold_start_share", "fallback_share"] : ["RecSys/Quality", m, "Environment", var.environment]]
        }
      },
      {
        type = "metric", x = 12, y = 18, width = 12, height = 6
        properties = {
          title   = "Click-through and drift (daily)", region = local.region, stat = "Average", period = 86400
          metrics = [for m in ["ctr", "event_mix_drift", "activity_drift"] : ["RecSys/Quality", m, "Environment", var.environment]]
        }
      },
    ]
  })
}

resource "aws_sns_topic" "alarms" {
  count = local.alarms

  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarms_enabled && var.alarm_email != null ? 1 : 0

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  count = local.alarms

  alarm_name          = "${var.name_prefix}-api-5xx"
  alarm_description   = "The recommendation API returns server errors"
  namespace           = "AWS/ApiGateway"
  metric_name         = "5XXError"
  dimensions          = local.api
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 5
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms[0].arn]
  ok_actions          = [aws_sns_topic.alarms[0].arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_latency" {
  count = local.alarms

  alarm_name          = "${var.name_prefix}-api-latency-p99"
  alarm_description   = "API p99 latency above ${var.latency_p99_ms} ms"
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = local.api
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.latency_p99_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms[0].arn]
  ok_actions          = [aws_sns_topic.alarms[0].arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "lambda" {
  # One alarm per function and failure kind ("<function key>/Errors", "<function key>/Throttles").
  for_each = var.alarms_enabled ? {
    for pair in setproduct(keys(var.function_names), keys(local.lambda_alarms)) : "${pair[0]}/${pair[1]}" => {
      key      = pair[0]
      function = var.function_names[pair[0]]
      metric   = pair[1]
    }
  } : {}

  alarm_name          = "${var.name_prefix}-${replace(each.value.key, "_", "-")}-${lower(each.value.metric)}"
  alarm_description   = "Lambda ${each.value.function} ${local.lambda_alarms[each.value.metric]}"
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = each.value.function }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms[0].arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  count = local.alarms

  alarm_name          = "${var.name_prefix}-events-iterator-age"
  alarm_description   = "Interaction events wait longer than ${var.iterator_age_ms} ms before processing"
  namespace           = "AWS/Kinesis"
  metric_name         = "GetRecords.IteratorAgeMilliseconds"
  dimensions          = { StreamName = var.stream_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.iterator_age_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms[0].arn]
  ok_actions          = [aws_sns_topic.alarms[0].arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "pipeline_failures" {
  count = local.alarms

  alarm_name          = "${var.name_prefix}-ml-pipeline-failures"
  alarm_description   = "An ML pipeline execution failed, timed out or was aborted"
  namespace           = "AWS/States"
  dimensions          = { StateMachineArn = var.state_machine_arn }
  metric_name         = "ExecutionsFailed"
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms[0].arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  for_each = var.alarms_enabled ? var.table_names : {}

  alarm_name          = "${var.name_prefix}-${replace(each.key, "_", "-")}-throttles"
  alarm_description   = "DynamoDB table ${each.value} throttles reads or writes"
  evaluation_periods  = 1
  threshold           = 10
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms[0].arn]
  tags                = var.tags

  metric_query {
    id          = "throttles"
    expression  = "reads + writes"
    label       = "Throttle events"
    return_data = true
  }

  metric_query {
    id = "reads"

    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      dimensions  = { TableName = each.value }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "writes"

    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      dimensions  = { TableName = each.value }
      stat        = "Sum"
      period      = 300
    }
  }
}
