# Evaluates the catalogue's naming patterns ("{stack}-{suffix}", ...) exactly as recsys/catalog.py does,
# so Terraform and the local provisioner derive the same names from one file.
locals {
  stack       = "${var.catalog.stack_prefix}-${var.environment}"
  stack_lower = lower(local.stack)
  stack_snake = replace(lower(local.stack), "-", "_")
  patterns    = var.catalog.naming

  bucket_suffix = var.account_id == "" ? "" : "-${var.account_id}"

  buckets = {
    for key, b in var.catalog.buckets :
    key => "${replace(replace(replace(local.patterns.bucket, "{stack_lower}", local.stack_lower), "{stack}", local.stack), "{suffix}", b.suffix)}${local.bucket_suffix}"
  }
  tables = {
    for key, t in var.catalog.tables :
    key => replace(replace(local.patterns.table, "{stack}", local.stack), "{suffix}", t.suffix)
  }
  streams = {
    for key, s in var.catalog.streams :
    key => replace(replace(local.patterns.stream, "{stack}", local.stack), "{suffix}", s.suffix)
  }
  firehose = {
    for key, f in var.catalog.firehose :
    key => replace(replace(local.patterns.firehose, "{stack}", local.stack), "{suffix}", f.suffix)
  }
  secrets = {
    for key, s in var.catalog.secrets :
    key => replace(replace(local.patterns.secret, "{stack}", local.stack), "{suffix}", s.suffix)
    if contains(s.environments, var.environment)
  }
  glue_database = replace(replace(local.patterns.glue_database, "{stack_snake}", local.stack_snake), "{suffix}", replace(var.catalog.glue.database.suffix, "-", "_"))
  glue_tables   = { for key, _ in var.catalog.glue.tables : key => key }
  functions = {
    for key, f in var.catalog.functions :
    key => replace(replace(local.patterns.function, "{stack}", local.stack), "{suffix}", f.suffix)
  }
  state_machines = {
    for key, s in var.catalog.state_machines :
    key => replace(replace(local.patterns.state_machine, "{stack}", local.stack), "{suffix}", s.suffix)
  }
}
