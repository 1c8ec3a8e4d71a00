variable "database_name" {
  description = "Glue database name of the offline feature store."
  type        = string
}

variable "database_description" {
  description = "Description of the Glue database."
  type        = string
}

variable "tables" {
  description = "Offline feature tables by catalogue key: S3 location (bucket name and prefix) and columns, from the catalogue."
  type = map(object({
    description = string
    bucket_name = string
    prefix      = string
    columns     = list(object({ name = string, type = string }))
  }))
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}
