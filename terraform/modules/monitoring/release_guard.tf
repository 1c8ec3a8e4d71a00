# Rollback on live alarms: the API's 5xx, latency and empty-result alarms go to EventBridge, which invokes
# the release_guard function; within the guard period after a promotion it puts the previous version back
# (recsys.release_guard.on_alarm) and records why on the registry. A schedule also invokes it every few
# minutes to compare the live counters, click-through included, with the previous version's
# (recsys.release_guard.check; outside the guard period it does nothing).
locals {
  guard          = var.alarms_enabled && var.release_guard_function_arn != null ? 1 : 0
  guarded_alarms = concat(aws_cloudwatch_metric_alarm.api_5xx[*].alarm_name, aws_cloudwatch_metric_alarm.api_latency[*].alarm_name, aws_cloudwatch_metric_alarm.api_empty_results[*].alarm_name)
}

resource "aws_cloudwatch_metric_alarm" "api_empty_results" {
  count = local.alarms

  alarm_name          = "${var.name_prefix}-api-empty-results"
  alarm_description   = "More than ${var.max_empty_share * 100}% of recommendation lists are empty"
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.max_empty_share
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms[0].arn]
  ok_actions          = [aws_sns_topic.alarms[0].arn]
  tags                = var.tags

  metric_query {
    id          = "share"
    expression  = "empty / MAX([requests, 1])"
    label       = "Share of empty lists"
    return_data = true
  }

  metric_query {
    id = "empty"

    metric {
      namespace   = "RecSys"
      metric_name = "EmptyResults"
      dimensions  = { service = "recsys-api" }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = "RecSys"
      metric_name = "Requests"
      dimensions  = { service = "recsys-api" }
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_event_rule" "release_guard" {
  count = local.guard

  name        = "${var.name_prefix}-release-guard"
  description = "API alarms in ALARM: the release guard may roll production back"
  event_pattern = jsonencode({
    source        = ["aws.cloudwatch"]
    "detail-type" = ["CloudWatch Alarm State Change"]
    detail = {
      alarmName = local.guarded_alarms
      state     = { value = ["ALARM"] }
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "release_guard" {
  count = local.guard

  rule = aws_cloudwatch_event_rule.release_guard[0].name
  arn  = var.release_guard_function_arn
}

resource "aws_lambda_permission" "release_guard" {
  count = local.guard

  statement_id  = "ReleaseGuardAlarms"
  action        = "lambda:InvokeFunction"
  function_name = var.release_guard_function_arn
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.release_guard[0].arn
}

resource "aws_cloudwatch_event_rule" "release_guard_check" {
  count = local.guard

  name                = "${var.name_prefix}-release-guard-check"
  description         = "Every few minutes: the release guard compares production's live counters with the previous version's"
  schedule_expression = "rate(5 minutes)"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "release_guard_check" {
  count = local.guard

  rule = aws_cloudwatch_event_rule.release_guard_check[0].name
  arn  = var.release_guard_function_arn
}

resource "aws_lambda_permission" "release_guard_check" {
  count = local.guard

  statement_id  = "ReleaseGuardSchedule"
  action        = "lambda:InvokeFunction"
  function_name = var.release_guard_function_arn
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.release_guard_check[0].arn
}
