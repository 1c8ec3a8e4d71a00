variable "name_prefix" {
  description = "Stack name (VideoRecSystem-<env>)."
  type        = string
}

variable "environment" {
  description = "Environment name, passed to every function as RECSYS_ENV."
  type        = string
}

variable "functions" {
  description = "Lambda functions by catalogue key: name, handler path, package kind (zip or image) and profile (serving, training or operations)."
  type = map(object({
    name        = string
    handler     = string
    package     = string
    profile     = string
    description = string
  }))

  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["zip", "image"], f.package) && contains(["serving", "training", "operations"], f.profile)])
    error_message = "package must be zip or image and profile serving, training or operations."
  }
}

variable "package_dir" {
  description = "Directory holding the zip packages built by `recsys package` (<function key>.zip)."
  type        = string
}

variable "image_tag" {
  description = "Tag of the training image in the ECR repository (pushed before apply; see docs/terraform.md)."
  type        = string
  default     = "latest"
}

variable "memory_mb" {
  description = "Memory of serving-profile functions (MB), from the environment table."
  type        = number
}

variable "timeout_s" {
  description = "Timeout of serving-profile functions (seconds), from the environment table."
  type        = number
}

variable "training_memory_mb" {
  description = "Memory of training-profile (container image) functions (MB); 3008 fits new accounts' default quota."
  type        = number
  default     = 3008
}

variable "training_timeout_s" {
  description = "Timeout of training-profile functions (seconds); SageMaker takes longer jobs."
  type        = number
  default     = 900
}

variable "redis_replication_group_arn" {
  description = "ARN of the Redis replication group whose auth token the rotation function changes (null where there is no Redis)."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups (days)."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key for log groups, environment variables and the ECR repository."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the functions; empty runs them outside a VPC."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups of the functions in the VPC."
  type        = list(string)
  default     = []
}

variable "bucket_arns" {
  description = "S3 bucket ARNs by catalogue key."
  type        = map(string)
}

variable "table_arns" {
  description = "DynamoDB table ARNs by catalogue key."
  type        = map(string)
}

variable "stream_arns" {
  description = "Kinesis stream ARNs by catalogue key."
  type        = map(string)
}

variable "secret_arns" {
  description = "Secrets Manager secret ARNs by catalogue key (only this environment's secrets)."
  type        = map(string)
}

variable "failure_queue_arn" {
  description = "SQS queue receiving the Kinesis records the event processor gave up on (on-failure destination)."
  type        = string
}

variable "sagemaker_role_arn" {
  description = "Execution role that the training functions pass to SageMaker training jobs."
  type        = string
}

variable "environment_variables" {
  description = "Extra environment variables for every function (names of resources, feature switches)."
  type        = map(string)
  default     = {}
}

variable "retain" {
  description = "Removal policy 'retain' (prod): the ECR repository keeps its images on destroy."
  type        = bool
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
