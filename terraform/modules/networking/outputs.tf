output "vpc_id" {
  description = "VPC id (null where the environment has no VPC)."
  value       = one(aws_vpc.this[*].id)
}

output "private_subnet_ids" {
  description = "Private subnet ids for Lambda functions (empty without a VPC)."
  value       = aws_subnet.private[*].id
}

output "lambda_security_group_ids" {
  description = "Security groups for Lambda functions in the VPC (empty without a VPC)."
  value       = aws_security_group.lambda[*].id
}

output "redis_endpoint" {
  description = "Primary endpoint address of the Redis replication group (null where there is no Redis)."
  value       = one(aws_elasticache_replication_group.this[*].primary_endpoint_address)
}

output "redis_port" {
  description = "Redis port (null where there is no Redis)."
  value       = one(aws_elasticache_replication_group.this[*].port)
}

output "redis_auth_token" {
  description = "Redis auth token, only to be stored in Secrets Manager by the secrets module; never a root output."
  value       = one(random_password.redis_auth[*].result)
  sensitive   = true
}

output "redis_replication_group_id" {
  description = "Id of the Redis replication group (null where there is no Redis)."
  value       = one(aws_elasticache_replication_group.this[*].id)
}

output "redis_replication_group_arn" {
  description = "ARN of the Redis replication group (null where there is no Redis)."
  value       = one(aws_elasticache_replication_group.this[*].arn)
}
