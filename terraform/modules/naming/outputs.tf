output "stack" {
  description = "Stack name, VideoRecSystem-<env>: the prefix of every resource name."
  value       = local.stack
}

output "buckets" {
  description = "S3 bucket names by catalogue key (the catalogue name plus the account id)."
  value       = local.buckets
}

output "tables" {
  description = "DynamoDB table names by catalogue key."
  value       = local.tables
}

output "streams" {
  description = "Kinesis stream names by catalogue key."
  value       = local.streams
}

output "firehose" {
  description = "Firehose delivery stream names by catalogue key."
  value       = local.firehose
}

output "secrets" {
  description = "Secrets Manager secret names by catalogue key (only the secrets of this environment)."
  value       = local.secrets
}

output "glue_database" {
  description = "Glue database name of the offline feature store."
  value       = local.glue_database
}

output "glue_tables" {
  description = "Glue table names by catalogue key."
  value       = local.glue_tables
}

output "functions" {
  description = "Lambda function names by catalogue key."
  value       = local.functions
}

output "state_machines" {
  description = "Step Functions state machine names by catalogue key."
  value       = local.state_machines
}
