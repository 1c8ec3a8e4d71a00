output "dashboard_name" {
  description = "CloudWatch dashboard name."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "dashboard_url" {
  description = "Console URL of the CloudWatch dashboard."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards:name=${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify (null where alarms are off)."
  value       = one(aws_sns_topic.alarms[*].arn)
}

output "guarded_alarm_names" {
  description = "The alarms whose ALARM state invokes the release guard (empty where alarms are off)."
  value       = local.guarded_alarms
}
