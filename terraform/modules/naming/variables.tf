variable "catalog" {
  description = "The resource catalogue (recsys/resources/catalog.json, decoded with jsondecode)."
  type        = any
}

variable "environment" {
  description = "Environment name: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["local", "dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of local, dev, staging, prod."
  }
}

variable "account_id" {
  description = "AWS account id appended to bucket names (bucket names are global); empty for none."
  type        = string
  default     = ""
}
