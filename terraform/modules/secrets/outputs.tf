output "secret_arns" {
  description = "Secret ARNs by catalogue key (ARNs only; values never leave Secrets Manager)."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}

output "secret_names" {
  description = "Secret names by catalogue key."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.name }
}

output "redis_rotation_enabled" {
  description = "Whether automatic rotation of the Redis credentials is configured."
  value       = length(aws_secretsmanager_secret_rotation.redis) > 0
}
