variable "name_prefix" {
  description = "Stack name (VideoRecSystem-<env>)."
  type        = string
}

variable "stage_name" {
  description = "API Gateway stage name (the environment)."
  type        = string
}

variable "function_name" {
  description = "Name of the API Lambda function."
  type        = string
}

variable "function_invoke_arn" {
  description = "Invoke ARN of the API Lambda function (proxy integration)."
  type        = string
}

variable "rate_limit_rps" {
  description = "Stage and usage-plan throttling rate (requests/s): 50 dev, 200 staging, 1000 prod."
  type        = number
}

variable "burst_limit" {
  description = "Stage and usage-plan burst limit (requests)."
  type        = number
}

variable "quota_per_day" {
  description = "Requests per day for the usage plan's key (null: no quota; prod sets one)."
  type        = number
  default     = null
}

variable "waf_rate_limit_per_5min" {
  description = "Requests one IP may make in 5 minutes before the WAF blocks it."
  type        = number
  default     = 20000
}

variable "kms_key_arn" {
  description = "KMS key for the access-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the access-log group (days)."
  type        = number
}

variable "manage_account_logging_role" {
  description = "Set the account-wide API Gateway CloudWatch role (needed once per account and region for access logs)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
