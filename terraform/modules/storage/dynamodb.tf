locals {
  provisioned = var.billing_mode == "PROVISIONED"

  # Every key attribute of a table and its indexes, deduplicated (DynamoDB rejects unused attributes).
  table_attributes = {
    for key, t in var.tables : key => {
      for a in concat(
        [t.hash_key],
        t.range_key == null ? [] : [t.range_key],
        [for g in t.global_secondary_indexes : g.hash_key],
        [for g in t.global_secondary_indexes : g.range_key if g.range_key != null],
      ) : a.name => a.type...
    }
  }

  # Autoscaling targets: each table and each of its indexes, for reads and writes (PROVISIONED only).
  scaling_targets = local.provisioned ? merge([
    for key, t in var.tables : merge(
      {
        "${key}/read"  = { table = key, resource = "table/${t.name}", dimension = "dynamodb:table:ReadCapacityUnits", metric = "DynamoDBReadCapacityUtilization", min = var.provisioned_capacity.read_min, max = var.provisioned_capacity.read_max }
        "${key}/write" = { table = key, resource = "table/${t.name}", dimension = "dynamodb:table:WriteCapacityUnits", metric = "DynamoDBWriteCapacityUtilization", min = var.provisioned_capacity.write_min, max = var.provisioned_capacity.write_max }
      },
      merge([for g in t.global_secondary_indexes : {
        "${key}/${g.name}/read"  = { table = key, resource = "table/${t.name}/index/${g.name}", dimension = "dynamodb:index:ReadCapacityUnits", metric = "DynamoDBReadCapacityUtilization", min = var.provisioned_capacity.read_min, max = var.provisioned_capacity.read_max }
        "${key}/${g.name}/write" = { table = key, resource = "table/${t.name}/index/${g.name}", dimension = "dynamodb:index:WriteCapacityUnits", metric = "DynamoDBWriteCapacityUtilization", min = var.provisioned_capacity.write_min, max = var.provisioned_capacity.write_max }
      }]...),
    )
  ]...) : {}
}

resource "aws_dynamodb_table" "this" {
  for_each = var.tables

  name                        = each.value.name
  billing_mode                = var.billing_mode
  hash_key                    = each.value.hash_key.name
  range_key                   = each.value.range_key == null ? null : each.value.range_key.name
  read_capacity               = local.provisioned ? var.provisioned_capacity.read_min : null
  write_capacity              = local.provisioned ? var.provisioned_capacity.write_min : null
  deletion_protection_enabled = var.retain

  dynamic "attribute" {
    for_each = local.table_attributes[each.key]

    content {
      name = attribute.key
      type = attribute.value[0]
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.global_secondary_indexes

    content {
      name            = global_secondary_index.value.name
      hash_key        = global_secondary_index.value.hash_key.name
      range_key       = global_secondary_index.value.range_key == null ? null : global_secondary_index.value.range_key.name
      projection_type = global_secondary_index.value.projection
      read_capacity   = local.provisioned ? var.provisioned_capacity.read_min : null
      write_capacity  = local.provisioned ? var.provisioned_capacity.write_min : null
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]

    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  tags = var.tags

  lifecycle {
    # Autoscaling owns the provisioned capacity once the table exists.
    ignore_changes = [read_capacity, write_capacity]
  }
}

resource "aws_appautoscaling_target" "this" {
  for_each = local.scaling_targets

  service_namespace  = "dynamodb"
  resource_id        = each.value.resource
  scalable_dimension = each.value.dimension
  min_capacity       = each.value.min
  max_capacity       = each.value.max

  depends_on = [aws_dynamodb_table.this]
}

resource "aws_appautoscaling_policy" "this" {
  for_each = local.scaling_targets

  name               = "${replace(each.key, "/", "-")}-target-tracking"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value = var.provisioned_capacity.target_usage

    predefined_metric_specification {
      predefined_metric_type = each.value.metric
    }
  }
}
