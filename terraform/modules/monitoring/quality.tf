# Serving quality and drift over time (recsys.quality_monitor): the quality_monitor function runs daily and
# after every pipeline execution that succeeds, and puts its points into CloudWatch (RecSys/Quality). In prod
# the points are alarmed on; the dashboard charts them everywhere.
locals {
  quality       = var.quality_function_arn != null ? 1 : 0
  quality_alarm = var.alarms_enabled && var.quality_function_arn != null ? 1 : 0
  quality_dims  = { Environment = var.environment }
}

resource "aws_cloudwatch_event_rule" "quality_daily" {
  count = local.quality

  name                = "${var.name_prefix}-quality-daily"
  description         = "Measure serving quality and drift once a day"
  schedule_expression = "rate(1 day)"
  tags                = var.tags
}

resource "aws_cloudwatch_event_rule" "quality_after_pipeline" {
  count = local.quality

  name        = "${var.name_prefix}-quality-after-pipeline"
  description = "Measure serving quality after every pipeline run that succeeded (a deployment or a refused candidate)"
  event_pattern = jsonencode({
    source        = ["aws.states"]
    "detail-type" = ["Step Functions Execution Status Change"]
    detail        = { stateMachineArn = [var.state_machine_arn], status = ["SUCCEEDED"] }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "quality" {
  for_each = local.quality == 1 ? { daily = aws_cloudwatch_event_rule.quality_daily[0].name, after_pipeline = aws_cloudwatch_event_rule.quality_after_pipeline[0].name } : {}

  rule = each.value
  arn  = var.quality_function_arn
}

resource "aws_lambda_permission" "quality" {
  for_each = local.quality == 1 ? { daily = aws_cloudwatch_event_rule.quality_daily[0].arn, after_pipeline = aws_cloudwatch_event_rule.quality_after_pipeline[0].arn } : {}

  statement_id  = "Quality-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = var.quality_function_arn
  principal     = "events.amazonaws.com"
  source_arn    = each.value
}

resource "aws_cloudwatch_metric_alarm" "quality" {
  for_each = local.quality_alarm == 1 ? var.quality_alarms : {}

  alarm_name          = "${var.name_prefix}-quality-${replace(each.key, "_", "-")}"
  alarm_description   = "Serving quality: ${each.key} ${each.value.comparison == "LessThanThreshold" ? "below" : "above"} ${each.value.threshold}"
  namespace           = "RecSys/Quality"
  metric_name         = each.key
  dimensions          = local.quality_dims
  statistic           = "Average"
  period              = 86400
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison
  treat_missing_data  = "missing"
  alarm_actions       = [aws_sns_topic.alarms[0].arn]
  ok_actions          = [aws_sns_topic.alarms[0].arn]
  tags                = var.tags
}
