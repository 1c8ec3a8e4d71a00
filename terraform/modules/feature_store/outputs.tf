output "database_name" {
  description = "Glue database name of the offline feature store."
  value       = aws_glue_catalog_database.this.name
}

output "table_names" {
  description = "Glue table names by catalogue key."
  value       = { for k, t in aws_glue_catalog_table.this : k => t.name }
}
