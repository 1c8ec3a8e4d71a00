# The offline store: Parquet files under s3://{data}/feature_store/<table>/ described in Glue, so Athena and
# training jobs read them. The online store (DynamoDB user_features, video_features, user_activity) is created
# by the storage module with every other catalogue table, so the table schema code exists once.
locals {
  formats = {
    parquet = {
      input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
      output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
      serde         = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }
    json = {
      input_format  = "org.apache.hadoop.mapred.TextInputFormat"
      output_format = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
      serde         = "org.openx.data.jsonserde.JsonSerDe"
    }
  }
}

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

  # The raw events (format json) carry partition projection parameters; "{location}" is the table's location.
  parameters = merge(
    { classification = each.value.format, EXTERNAL = "TRUE" },
    { for k, v in each.value.parameters : k => replace(v, "{location}", "s3://${each.value.bucket_name}/${each.value.prefix}") },
  )

  dynamic "partition_keys" {
    for_each = each.value.partition_keys

    content {
      name = partition_keys.value.name
      type = partition_keys.value.type
    }
  }

  storage_descriptor {
    location      = "s3://${each.value.bucket_name}/${each.value.prefix}"
    input_format  = local.formats[each.value.format].input_format
    output_format = local.formats[each.value.format].output_format

    ser_de_info {
      serialization_library = local.formats[each.value.format].serde
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
