variable "name_prefix" {
  description = "Stack name (VideoRecSystem-<env>)."
  type        = string
}

variable "alarms_enabled" {
  description = "Create the alarms and their SNS topic (prod only, by the reference environment table)."
  type        = bool
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (null: subscribe later)."
  type        = string
  default     = null
}

variable "api_name" {
  description = "REST API name (CloudWatch ApiName dimension)."
  type        = string
}

variable "api_stage" {
  description = "API stage name."
  type        = string
}

variable "function_names" {
  description = "Lambda function names by catalogue key (errors and throttles alarms, dashboard)."
  type        = map(string)
}

variable "stream_name" {
  description = "Kinesis event stream name (iterator-age alarm)."
  type        = string
}

variable "state_machine_arn" {
  description = "ML pipeline state machine ARN (failed-executions alarm)."
  type        = string
}

variable "table_names" {
  description = "DynamoDB table names by catalogue key (throttle alarms)."
  type        = map(string)
}

variable "latency_p99_ms" {
  description = "API p99 latency alarm threshold (ms)."
  type        = number
  default     = 1000
}

variable "iterator_age_ms" {
  description = "Kinesis iterator-age alarm threshold (ms): events older than this are not processed in time."
  type        = number
  default     = 60000
}

variable "kms_key_arn" {
  description = "KMS key for the SNS topic."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "release_guard_function_arn" {
  description = "ARN of the function that rolls production back when an API alarm fires in the guard period (null: alarms only notify)."
  type        = string
  default     = null
}

variable "max_empty_share" {
  description = "Share of empty recommendation lists (0..1) above which the empty-results alarm fires."
  type        = number
  default     = 0.2

  validation {
    condition     = var.max_empty_share > 0 && var.max_empty_share < 1
    error_message = "max_empty_share must be between 0 and 1."
  }
}

variable "environment" {
  description = "Environment name (the Environment dimension of the RecSys/Quality metrics)."
  type        = string
}

variable "quality_function_arn" {
  description = "ARN of the quality_monitor function, run daily and after every successful pipeline execution (null: not scheduled)."
  type        = string
  default     = null
}

variable "quality_alarms" {
  description = "Alarms on the daily quality points (prod): metric name -> threshold and comparison operator."
  type = map(object({
    threshold  = number
    comparison = string
  }))
  default = {
    catalog_coverage = { threshold = 0.02, comparison = "LessThanThreshold" }
    cold_start_share = { threshold = 0.5, comparison = "GreaterThanThreshold" }
    fallback_share   = { threshold = 0.5, comparison = "GreaterThanThreshold" }
    event_mix_drift  = { threshold = 0.3, comparison = "GreaterThanThreshold" }
  }

  validation {
    condition     = alltrue([for a in values(var.quality_alarms) : contains(["LessThanThreshold", "GreaterThanThreshold"], a.comparison)])
    error_message = "comparison must be LessThanThreshold or GreaterThanThreshold."
  }
}
