# The offline store: Parquet files under s3://{data}/feature_store/<table>/ described in Glue, so Athena and
# training jobs read them. The online store (DynamoDB user_features, video_features, user_activity) is created
# by the storage module with every other catalogue table, so the table schema code exists once.
resource "aws_glue_catalog_database" "this" {
  name        = var.database_name
  description = var.database_description
  tags        = var.tags
}

resource "aws_glue_catalog_table" "this" {
  for_each = var.tables

  name          = each.key
  database_name = aws_glue_catalog_database.this.name
  description   = each.value.description
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    classification = "parquet"
    EXTERNAL       = "TRUE"
  }

  storage_descriptor {
    location      = "s3://${each.value.bucket_name}/${each.value.prefix}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = each.value.columns

      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}
