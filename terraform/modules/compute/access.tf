# What each function's code touches, by catalogue key. Each role gets exactly these grants on the
# named resources (least privilege); keys missing from this environment (e.g. redis_credentials in dev)
# are dropped. An s3_write entry "bucket:pattern" limits writes to matching keys; secrets_rotate: secrets the
# function rotates; elasticache: it changes the Redis auth token; metrics: CloudWatch namespaces it writes.
locals {
  access = {
    api = {
      s3_read = ["models"]
      # The first cold start of a version caches its HNSW index next to the embeddings.
      s3_write    = ["models:models/two_tower/*/hnsw_index.bin"]
      tables_read = ["user_features", "video_features", "recommendations_cache", "model_registry", "user_activity", "live_catalogue"]
      # recommendations_cache is written by `recsys cache`; POST /videos writes live_catalogue and video_features;
      # serving_metrics: the live counters per version (requests, items shown) the release guard reads.
      tables_write   = ["inference_tracking", "user_activity", "live_catalogue", "video_features", "serving_metrics"]
      streams_read   = []
      streams_write  = ["events"]
      secrets        = ["api_keys", "config", "redis_credentials"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = false
      failure_queue  = false
    }
    event_processor = {
      s3_read        = []
      s3_write       = ["raw_events:dead-letter/*"] # malformed records, with their reason
      tables_read    = ["user_features", "video_features", "inference_tracking", "user_activity"]
      tables_write   = ["user_features", "video_features", "inference_tracking", "user_activity", "serving_metrics"] # engagements per version
      streams_read   = ["events"]
      streams_write  = []
      secrets        = ["config", "redis_credentials"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = false
      failure_queue  = true
    }
    feedback_merge = {
      s3_read        = ["raw_events"]
      s3_write       = ["data"]
      tables_read    = ["inference_tracking"]
      tables_write   = []
      streams_read   = []
      streams_write  = []
      secrets        = ["config"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = false
      failure_queue  = false
    }
    feature_ingestion = {
      s3_read        = ["artifacts"]
      s3_write       = ["data"]
      tables_read    = []
      tables_write   = ["user_features", "video_features"]
      streams_read   = []
      streams_write  = []
      secrets        = ["config"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = false
      failure_queue  = false
    }
    preprocessing = {
      s3_read        = ["data", "raw_events"] # the events source: collected events and feedback impressions
      s3_write       = ["artifacts"]
      tables_read    = ["model_registry", "live_catalogue"] # the production version's base data; live videos
      tables_write   = []
      streams_read   = []
      streams_write  = []
      secrets        = ["config"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = true
      failure_queue  = false
    }
    train_two_tower = {
      s3_read        = ["artifacts"]
      s3_write       = ["models", "artifacts"]
      tables_read    = []
      tables_write   = []
      streams_read   = []
      streams_write  = []
      secrets        = ["config"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = true
      failure_queue  = false
    }
    train_ranker = {
      s3_read        = ["artifacts", "models"]
      s3_write       = ["models", "artifacts"]
      tables_read    = []
      tables_write   = []
      streams_read   = []
      streams_write  = []
      secrets        = ["config"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = true
      failure_queue  = false
    }
    refit_models = {
      s3_read       = ["artifacts", "models"]
      s3_write      = ["models"]
      tables_read   = []
      tables_write  = []
      streams_read  = []
      streams_write = []
      secrets       = ["config"]
      sagemaker     = true
      failure_queue = false
    }
    evaluation = {
      s3_read        = ["artifacts", "models"]
      s3_write       = ["artifacts"]
      tables_read    = ["model_registry"]
      tables_write   = []
      streams_read   = []
      streams_write  = []
      secrets        = ["config"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = true
      failure_queue  = false
    }
    deployment = {
      s3_read        = ["artifacts", "models"]
      s3_write       = ["models"]
      tables_read    = ["model_registry"]
      tables_write   = ["model_registry", "user_features", "video_features"]
      streams_read   = []
      streams_write  = []
      secrets        = ["config"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = false
      failure_queue  = false
    }
    refit_models = {
      s3_read        = ["artifacts", "models"]
      s3_write       = ["models", "artifacts"]
      tables_read    = []
      tables_write   = []
      streams_read   = []
      streams_write  = []
      secrets        = ["config"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = true
      failure_queue  = false
    }
    precompute_cache = {
      s3_read        = ["models"]
      s3_write       = ["models:models/two_tower/*/hnsw_index.bin"]
      tables_read    = ["model_registry", "user_features", "video_features", "user_activity", "live_catalogue"]
      tables_write   = ["recommendations_cache"]
      streams_read   = []
      streams_write  = []
      secrets        = ["config", "redis_credentials"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = false
      failure_queue  = false
    }
    quality_monitor = {
      s3_read        = []
      s3_write       = []
      tables_read    = ["inference_tracking", "user_activity", "video_features"]
      tables_write   = []
      streams_read   = []
      streams_write  = []
      secrets        = ["config"]
      secrets_rotate = []
      elasticache    = false
      metrics        = ["RecSys/Quality"]
      sagemaker      = false
      failure_queue  = false
    }
    release_guard = {
      s3_read        = ["artifacts", "models"]
      s3_write       = ["models"]
      tables_read    = ["model_registry", "serving_metrics"]
      tables_write   = ["model_registry", "user_features", "video_features"]
      streams_read   = []
      streams_write  = []
      secrets        = ["config"]
      secrets_rotate = []
      elasticache    = false
      metrics        = []
      sagemaker      = false
      failure_queue  = false
    }
    redis_rotation = {
      s3_read        = []
      s3_write       = []
      tables_read    = []
      tables_write   = []
      streams_read   = []
      streams_write  = []
      secrets        = []
      secrets_rotate = ["redis_credentials"]
      elasticache    = true
      metrics        = []
      sagemaker      = false
      failure_queue  = false
    }
  }

  default_access = {
    s3_read = [], s3_write = [], tables_read = [], tables_write = [], streams_read = [], streams_write = []
    secrets = ["config"], secrets_rotate = [], elasticache = false, metrics = [], sagemaker = false, failure_queue = false
  }

  grants = {
    for key, _ in var.functions : key => {
      s3_read = [for b in distinct(concat(lookup(local.access, key, local.default_access).s3_read, [for w in lookup(local.access, key, local.default_access).s3_write : split(":", w)[0]])) : var.bucket_arns[b] if contains(keys(var.bucket_arns), b)]
      s3_write = [
        for w in lookup(local.access, key, local.default_access).s3_write :
        "${var.bucket_arns[split(":", w)[0]]}/${length(split(":", w)) > 1 ? split(":", w)[1] : "*"}"
        if contains(keys(var.bucket_arns), split(":", w)[0])
      ]
      tables_read    = [for t in lookup(local.access, key, local.default_access).tables_read : var.table_arns[t] if contains(keys(var.table_arns), t)]
      tables_write   = [for t in lookup(local.access, key, local.default_access).tables_write : var.table_arns[t] if contains(keys(var.table_arns), t)]
      streams_read   = [for s in lookup(local.access, key, local.default_access).streams_read : var.stream_arns[s] if contains(keys(var.stream_arns), s)]
      streams_write  = [for s in lookup(local.access, key, local.default_access).streams_write : var.stream_arns[s] if contains(keys(var.stream_arns), s)]
      secrets        = [for s in lookup(local.access, key, local.default_access).secrets : var.secret_arns[s] if contains(keys(var.secret_arns), s)]
      secrets_rotate = [for s in lookup(local.access, key, local.default_access).secrets_rotate : var.secret_arns[s] if contains(keys(var.secret_arns), s)]
      elasticache    = lookup(local.access, key, local.default_access).elasticache && var.redis_replication_group_arn != null
      metrics        = lookup(local.access, key, local.default_access).metrics
      sagemaker      = lookup(local.access, key, local.default_access).sagemaker
      failure_queue  = lookup(local.access, key, local.default_access).failure_queue
    }
  }
}
