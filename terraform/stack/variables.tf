# Per-environment values: environments/<env>/terraform.tfvars carries the reference environment table (the same
# values as recsys.config.PROFILES; tests/terraform checks both).

variable "environment" {
  description = "Environment name: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "aws_region" {
  description = "AWS region of the stack."
  type        = string
  default     = "us-east-1"
}

variable "lambda_memory_mb" {
  description = "Memory of the serving Lambdas (MB): 1024 dev, 1024 staging, 2048 prod."
  type        = number
}

variable "lambda_timeout_s" {
  description = "Timeout of the serving Lambdas (seconds): 30 everywhere."
  type        = number
}

variable "api_rate_limit_rps" {
  description = "API Gateway throttling rate (requests/s): 50 dev, 200 staging, 1000 prod."
  type        = number
}

variable "api_burst_limit" {
  description = "API Gateway burst limit (requests)."
  type        = number
}

variable "api_quota_per_day" {
  description = "Requests per day allowed to the default API key (null: no quota; prod sets one)."
  type        = number
  default     = null
}

variable "dynamodb_billing_mode" {
  description = "DynamoDB billing: PAY_PER_REQUEST (on-demand: dev, staging) or PROVISIONED with autoscaling (prod)."
  type        = string

  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.dynamodb_billing_mode)
    error_message = "dynamodb_billing_mode must be PAY_PER_REQUEST or PROVISIONED."
  }
}

variable "vpc_enabled" {
  description = "Run the Lambdas in a VPC with private subnets (staging, prod)."
  type        = bool
}

variable "redis_enabled" {
  description = "Create ElastiCache Redis with auth token and TLS (staging, prod)."
  type        = bool
}

variable "redis_node_type" {
  description = "ElastiCache node type: cache.t3.small (staging), cache.r6g.large (prod); null without Redis."
  type        = string
  default     = null
}

variable "alarms_enabled" {
  description = "Create the CloudWatch alarms and their SNS topic (prod)."
  type        = bool
}

variable "removal_policy" {
  description = "destroy (dev, staging: everything can be destroyed cleanly) or retain (prod: prevent_destroy and deletion protection)."
  type        = string

  validation {
    condition     = contains(["destroy", "retain"], var.removal_policy)
    error_message = "removal_policy must be destroy or retain."
  }
}

variable "kinesis_shards" {
  description = "Shards of the event stream: 1 dev, 2 staging, 4 prod."
  type        = number
}

variable "training_schedule" {
  description = "EventBridge schedule of the training pipeline (prod: weekly); null for manual runs only."
  type        = string
  default     = null
}

variable "training_backend" {
  description = "Where the training stages run: lambda (dev) or sagemaker (staging, prod)."
  type        = string

  validation {
    condition     = contains(["lambda", "sagemaker"], var.training_backend)
    error_message = "training_backend must be lambda or sagemaker."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group (days): 7 dev, 30 staging, 90 prod."
  type        = number
}

variable "package_dir" {
  description = "Directory of the Lambda zips built by `recsys package` (null: build/lambda of the repository)."
  type        = string
  default     = null
}

variable "training_image_tag" {
  description = "Tag of the training image pushed to the stack's ECR repository."
  type        = string
  default     = "latest"
}

variable "alarm_email" {
  description = "E-mail subscribed to the alarm topic (null: none)."
  type        = string
  default     = null
}

variable "redis_rotation_days" {
  description = "Rotation period of {stack}/redis-credentials in days (prod: 30); null for no rotation."
  type        = number
  default     = null
}

variable "redis_rotation_lambda_arn" {
  description = "Another rotation Lambda for the Redis credentials; null (the default) uses the stack's own redis_rotation function."
  type        = string
  default     = null
}

variable "tags" {
  description = "Extra tags for every resource, on top of the provider's default_tags."
  type        = map(string)
  default     = {}
}
