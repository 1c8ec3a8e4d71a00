output "kms_key_arn" {
  description = "ARN of the environment's customer-managed KMS key."
  value       = aws_kms_key.this.arn
}

output "bucket_names" {
  description = "S3 bucket names by catalogue key."
  value       = local.bucket_ids
}

output "bucket_arns" {
  description = "S3 bucket ARNs by catalogue key."
  value       = local.bucket_arns
}

output "table_names" {
  description = "DynamoDB table names by catalogue key."
  value       = { for k, t in aws_dynamodb_table.this : k => t.name }
}

output "table_arns" {
  description = "DynamoDB table ARNs by catalogue key."
  value       = { for k, t in aws_dynamodb_table.this : k => t.arn }
}
