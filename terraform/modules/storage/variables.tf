variable "name_prefix" {
  description = "Stack name (VideoRecSystem-<env>), used for the KMS alias and descriptions."
  type        = string
}

variable "buckets" {
  description = "S3 buckets by catalogue key: the full bucket name, the days noncurrent versions are kept, and the days after which objects expire (null: never)."
  type = map(object({
    name            = string
    noncurrent_days = number
    expiration_days = optional(number)
  }))
}

variable "tables" {
  description = "DynamoDB tables by catalogue key, with keys, TTL attribute and global secondary indexes from the catalogue."
  type = map(object({
    name          = string
    hash_key      = object({ name = string, type = string })
    range_key     = optional(object({ name = string, type = string }))
    ttl_attribute = optional(string)
    global_secondary_indexes = optional(list(object({
      name       = string
      hash_key   = object({ name = string, type = string })
      range_key  = optional(object({ name = string, type = string }))
      projection = string
    })), [])
  }))
}

variable "billing_mode" {
  description = "DynamoDB billing mode: PAY_PER_REQUEST (dev, staging) or PROVISIONED with autoscaling (prod)."
  type        = string

  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.billing_mode)
    error_message = "billing_mode must be PAY_PER_REQUEST or PROVISIONED."
  }
}

variable "provisioned_capacity" {
  description = "Autoscaling bounds (capacity units) for PROVISIONED tables and their indexes."
  type = object({
    read_min     = number
    read_max     = number
    write_min    = number
    write_max    = number
    target_usage = number
  })
  default = {
    read_min     = 5
    read_max     = 500
    write_min    = 5
    write_max    = 200
    target_usage = 70
  }
}

variable "retain" {
  description = "Removal policy 'retain' (prod): buckets get prevent_destroy and keep their objects, tables get deletion protection."
  type        = bool
}

variable "kms_deletion_window_days" {
  description = "Days a scheduled deletion of the KMS key waits (7..30)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every resource (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
