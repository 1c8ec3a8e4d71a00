variable "secrets" {
  description = "Secrets of this environment by catalogue key: full name and description (from the catalogue)."
  type = map(object({
    name        = string
    description = string
  }))
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the secrets."
  type        = string
}

variable "recovery_window_days" {
  description = "Days a deleted secret can be restored: 0 deletes at once (dev, staging: clean destroy), 7..30 otherwise."
  type        = number

  validation {
    condition     = var.recovery_window_days == 0 || (var.recovery_window_days >= 7 && var.recovery_window_days <= 30)
    error_message = "recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "redis" {
  description = "The Redis endpoint, auth token and replication group stored in {stack}/redis-credentials (null where the environment has no Redis)."
  type = object({
    host                 = string
    port                 = number
    auth_token           = string
    replication_group_id = string
  })
  default   = null
  sensitive = true
}

variable "redis_rotation_days" {
  description = "Rotate {stack}/redis-credentials every this many days (null: no rotation). The reference system rotates every 30 days in prod."
  type        = number
  default     = null

  validation {
    condition     = var.redis_rotation_days == null ? true : (var.redis_rotation_days >= 1 && var.redis_rotation_days <= 90)
    error_message = "redis_rotation_days must be between 1 and 90."
  }
}

variable "redis_rotation_lambda_arn" {
  description = "ARN of the rotation Lambda for the Redis credentials (the stack passes its redis_rotation function); rotation is only configured when set."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
