variable "name_prefix" {
  description = "Stack name (VideoRecSystem-<env>) used in resource names."
  type        = string
}

variable "vpc_enabled" {
  description = "Create the VPC (staging, prod). Without it nothing here is created and Lambdas run outside a VPC."
  type        = bool
}

variable "redis_enabled" {
  description = "Create the ElastiCache Redis replication group (staging, prod); needs vpc_enabled."
  type        = bool
}

variable "redis_node_type" {
  description = "ElastiCache node type, e.g. cache.t3.small (staging) or cache.r6g.large (prod)."
  type        = string
  default     = null
}

variable "redis_replicas" {
  description = "Replicas besides the primary, in other zones (Multi-AZ automatic failover needs at least one)."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_replicas >= 1 && var.redis_replicas <= 5
    error_message = "redis_replicas must be between 1 and 5 (Multi-AZ failover needs a replica)."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Availability zones to spread the subnets over."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the flow-log group and Redis at-rest encryption."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow-log group."
  type        = number
}

variable "retain" {
  description = "Removal policy 'retain' (prod): Redis takes a final snapshot when deleted."
  type        = bool
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
