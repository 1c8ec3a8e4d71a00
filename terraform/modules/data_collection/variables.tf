variable "name_prefix" {
  description = "Stack name (VideoRecSystem-<env>)."
  type        = string
}

variable "stream" {
  description = "The Kinesis event stream: name and retention, from the catalogue."
  type = object({
    name            = string
    retention_hours = number
  })
}

variable "shard_count" {
  description = "Kinesis shards (1 dev, 2 staging, 4 prod)."
  type        = number
}

variable "firehose" {
  description = "The Firehose delivery stream to the raw-events bucket: name, prefixes and buffering, from the catalogue."
  type = object({
    name                = string
    prefix              = string
    error_output_prefix = string
    buffering_seconds   = number
    buffering_mb        = number
  })
}

variable "raw_events_bucket_arn" {
  description = "ARN of the raw-events bucket Firehose writes to."
  type        = string
}

variable "processor_function_arn" {
  description = "ARN of the event-processing Lambda fed by the stream."
  type        = string
}

variable "feedback_merge_function_arn" {
  description = "ARN of the feedback-merge Lambda, run daily to join the previous day's events with inference tracking."
  type        = string
}

variable "feedback_merge_schedule" {
  description = "EventBridge schedule of the feedback merge (UTC; after the day's last Firehose flush)."
  type        = string
  default     = "cron(30 0 * * ? *)"
}

variable "batch_size" {
  description = "Records per invocation of the event processor."
  type        = number
  default     = 100
}

variable "kms_key_arn" {
  description = "KMS key for the stream, the delivery stream, the failure queue and the Firehose log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the Firehose error log group (days)."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
