variable "database_name" {
  description = "Glue database name of the offline feature store."
  type        = string
}

variable "database_description" {
  description = "Description of the Glue database."
  type        = string
}

variable "tables" {
  description = "Glue tables by catalogue key: S3 location (bucket name and prefix), columns, format (parquet or json lines), partition keys and extra table parameters (partition projection), from the catalogue."
  type = map(object({
    description    = string
    bucket_name    = string
    prefix         = string
    columns        = list(object({ name = string, type = string }))
    format         = optional(string, "parquet")
    partition_keys = optional(list(object({ name = string, type = string })), [])
    parameters     = optional(map(string), {})
  }))
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}
