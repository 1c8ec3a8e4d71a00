output "state_machine_arn" {
  description = "ARN of the ML pipeline state machine."
  value       = aws_sfn_state_machine.this.arn
}

output "state_machine_name" {
  description = "Name of the ML pipeline state machine."
  value       = aws_sfn_state_machine.this.name
}

output "sagemaker_role_arn" {
  description = "Execution role of SageMaker training jobs."
  value       = aws_iam_role.sagemaker.arn
}

output "schedule_rule_name" {
  description = "EventBridge rule of the scheduled training (null where training is manual)."
  value       = one(aws_cloudwatch_event_rule.schedule[*].name)
}
