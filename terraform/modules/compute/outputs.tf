output "function_names" {
  description = "Lambda function names by catalogue key."
  value       = { for k, f in aws_lambda_function.this : k => f.function_name }
}

output "function_arns" {
  description = "Lambda function ARNs by catalogue key."
  value       = { for k, f in aws_lambda_function.this : k => f.arn }
}

output "function_invoke_arns" {
  description = "Lambda invoke ARNs (for API Gateway integrations) by catalogue key."
  value       = { for k, f in aws_lambda_function.this : k => f.invoke_arn }
}

output "role_arns" {
  description = "Execution role ARNs by catalogue key."
  value       = { for k, r in aws_iam_role.this : k => r.arn }
}

output "training_repository_url" {
  description = "ECR repository of the training image (null when no function is an image)."
  value       = one(aws_ecr_repository.training[*].repository_url)
}

output "training_repository_arn" {
  description = "ARN of the training image repository (null when no function is an image)."
  value       = one(aws_ecr_repository.training[*].arn)
}
