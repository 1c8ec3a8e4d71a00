# The one root of every environment: per-environment values come from environments/<env>/terraform.tfvars,
# the state key from environments/<env>/backend.hcl. Names and schemas come from the resource catalogue,
# the pipeline from the one ASL file.
locals {
  repo_root   = "${path.module}/../.."
  catalog     = jsondecode(file("${local.repo_root}/recsys/resources/catalog.json"))
  asl_file    = "${local.repo_root}/${local.catalog.state_machines.ml_pipeline.definition}"
  package_dir = coalesce(var.package_dir, "${local.repo_root}/build/lambda")
  retain      = var.removal_policy == "retain"

  pipeline_functions = ["preprocessing", "train_two_tower", "train_ranker", "feature_ingestion", "evaluation", "refit_models", "deployment", "precompute_cache"]
}

data "aws_caller_identity" "current" {}

module "naming" {
  source = "../modules/naming"

  catalog     = local.catalog
  environment = var.environment
  account_id  = data.aws_caller_identity.current.account_id
}

module "storage" {
  source = "../modules/storage"

  name_prefix  = module.naming.stack
  billing_mode = var.dynamodb_billing_mode
  retain       = local.retain
  tags         = var.tags

  buckets = {
    for key, b in local.catalog.buckets : key => {
      name            = module.naming.buckets[key]
      noncurrent_days = b.noncurrent_days
      expiration_days = try(b.expiration_days, null)
    }
  }

  tables = {
    for key, t in local.catalog.tables : key => {
      name                     = module.naming.tables[key]
      hash_key                 = t.hash_key
      range_key                = t.range_key
      ttl_attribute            = t.ttl_attribute
      global_secondary_indexes = t.global_secondary_indexes
    }
  }
}

module "networking" {
  source = "../modules/networking"

  name_prefix        = module.naming.stack
  vpc_enabled        = var.vpc_enabled
  redis_enabled      = var.redis_enabled
  redis_node_type    = var.redis_node_type
  kms_key_arn        = module.storage.kms_key_arn
  log_retention_days = var.log_retention_days
  retain             = local.retain
  tags               = var.tags
}

module "secrets" {
  source = "../modules/secrets"

  kms_key_arn               = module.storage.kms_key_arn
  recovery_window_days      = local.retain ? 30 : 0
  redis_rotation_days       = var.redis_rotation_days
  redis_rotation_lambda_arn = coalesce(var.redis_rotation_lambda_arn, module.compute.function_arns["redis_rotation"])
  tags                      = var.tags

  secrets = {
    for key, s in local.catalog.secrets : key => {
      name        = module.naming.secrets[key]
      description = s.description
    } if contains(keys(module.naming.secrets), key)
  }

  redis = var.redis_enabled ? {
    host                 = module.networking.redis_endpoint
    port                 = module.networking.redis_port
    auth_token           = module.networking.redis_auth_token
    replication_group_id = module.networking.redis_replication_group_id
  } : null
}

module "data_collection" {
  source = "../modules/data_collection"

  name_prefix                 = module.naming.stack
  shard_count                 = var.kinesis_shards
  raw_events_bucket_arn       = module.storage.bucket_arns[local.catalog.firehose.raw_events.destination_bucket]
  processor_function_arn      = module.compute.function_arns["event_processor"]
  feedback_merge_function_arn = module.compute.function_arns["feedback_merge"]
  kms_key_arn                 = module.storage.kms_key_arn
  log_retention_days          = var.log_retention_days
  tags                        = var.tags

  stream = {
    name            = module.naming.streams["events"]
    retention_hours = local.catalog.streams.events.retention_hours
  }

  firehose = {
    name                = module.naming.firehose["raw_events"]
    prefix              = local.catalog.firehose.raw_events.prefix
    error_output_prefix = local.catalog.firehose.raw_events.error_output_prefix
    buffering_seconds   = local.catalog.firehose.raw_events.buffering_seconds
    buffering_mb        = local.catalog.firehose.raw_events.buffering_mb
  }
}

module "compute" {
  source = "../modules/compute"

  name_prefix        = module.naming.stack
  environment        = var.environment
  package_dir        = local.package_dir
  image_tag          = var.training_image_tag
  memory_mb          = var.lambda_memory_mb
  timeout_s          = var.lambda_timeout_s
  log_retention_days = var.log_retention_days
  kms_key_arn        = module.storage.kms_key_arn
  subnet_ids         = module.networking.private_subnet_ids
  security_group_ids = module.networking.lambda_security_group_ids
  bucket_arns        = module.storage.bucket_arns
  table_arns         = module.storage.table_arns
  stream_arns        = { events = module.data_collection.stream_arn }
  secret_arns        = module.secrets.secret_arns

  redis_replication_group_arn = module.networking.redis_replication_group_arn
  failure_queue_arn           = module.data_collection.failure_queue_arn
  sagemaker_role_arn          = module.ml_pipeline.sagemaker_role_arn
  retain                      = local.retain
  tags                        = var.tags

  functions = {
    for key, f in local.catalog.functions : key => {
      name        = module.naming.functions[key]
      handler     = f.handler
      package     = f.package
      profile     = f.profile
      description = f.description
    }
  }

  environment_variables = {
    RECSYS_TRAINING_BACKEND   = var.training_backend
    RECSYS_SAGEMAKER_ROLE_ARN = module.ml_pipeline.sagemaker_role_arn
  }
}

module "api" {
  source = "../modules/api"

  name_prefix         = module.naming.stack
  stage_name          = var.environment
  function_name       = module.compute.function_names["api"]
  function_invoke_arn = module.compute.function_invoke_arns["api"]
  rate_limit_rps      = var.api_rate_limit_rps
  burst_limit         = var.api_burst_limit
  quota_per_day       = var.api_quota_per_day
  kms_key_arn         = module.storage.kms_key_arn
  log_retention_days  = var.log_retention_days
  tags                = var.tags
}

module "feature_store" {
  source = "../modules/feature_store"

  database_name        = module.naming.glue_database
  database_description = local.catalog.glue.database.description
  tags                 = var.tags

  tables = {
    for key, t in local.catalog.glue.tables : key => {
      description    = t.description
      bucket_name    = module.storage.bucket_names[t.bucket]
      prefix         = t.prefix
      columns        = t.columns
      format         = lookup(t, "format", "parquet")
      partition_keys = lookup(t, "partition_keys", [])
      parameters     = lookup(t, "parameters", {})
    }
  }
}

module "ml_pipeline" {
  source = "../modules/ml_pipeline"

  name_prefix             = module.naming.stack
  state_machine_name      = module.naming.state_machines["ml_pipeline"]
  definition_file         = local.asl_file
  function_arns           = module.compute.function_arns
  pipeline_functions      = local.pipeline_functions
  schedule_expression     = var.training_schedule
  bucket_arns             = module.storage.bucket_arns
  training_repository_arn = module.compute.training_repository_arn
  kms_key_arn             = module.storage.kms_key_arn
  log_retention_days      = var.log_retention_days
  tags                    = var.tags
}

module "monitoring" {
  source = "../modules/monitoring"

  name_prefix       = module.naming.stack
  alarms_enabled    = var.alarms_enabled
  alarm_email       = var.alarm_email
  api_name          = module.api.rest_api_name
  api_stage         = module.api.stage_name
  function_names    = module.compute.function_names
  stream_name       = module.data_collection.stream_name
  state_machine_arn = module.ml_pipeline.state_machine_arn
  table_names       = module.storage.table_names
  kms_key_arn       = module.storage.kms_key_arn
  tags              = var.tags

  release_guard_function_arn = module.compute.function_arns["release_guard"]
  environment                = var.environment
  quality_function_arn       = module.compute.function_arns["quality_monitor"]
}

check "redis_rotation" {
  assert {
    condition     = var.redis_rotation_days == null || var.redis_enabled
    error_message = "redis_rotation_days is set but the environment has no Redis: nothing will rotate."
  }
}
