variable "name_prefix" {
  description = "Stack name (VideoRecSystem-<env>)."
  type        = string
}

variable "state_machine_name" {
  description = "Name of the ML pipeline state machine, from the catalogue."
  type        = string
}

variable "definition_file" {
  description = "Path of the ASL template (recsys/pipeline/state_machine.asl.json) rendered with templatefile."
  type        = string
}

variable "function_arns" {
  description = "Lambda ARNs by catalogue key; each becomes the template variable <key>_function_arn."
  type        = map(string)
}

variable "pipeline_functions" {
  description = "Catalogue keys of the functions the state machine may invoke."
  type        = list(string)
}

variable "schedule_expression" {
  description = "EventBridge schedule of the weekly training run (prod: rate(7 days)); null for manual runs only."
  type        = string
  default     = null
}

variable "bucket_arns" {
  description = "S3 bucket ARNs by catalogue key (the SageMaker role reads artifacts and writes models)."
  type        = map(string)
}

variable "training_repository_arn" {
  description = "ECR repository of the training image that SageMaker pulls (null if none)."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "KMS key for the execution log group and training data."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the state machine's log group (days)."
  type        = number
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
