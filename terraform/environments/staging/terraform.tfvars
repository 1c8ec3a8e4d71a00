# The reference environment table, staging column (equal to recsys.config.PROFILES["staging"]).
environment           = "staging"
lambda_memory_mb      = 1024
lambda_timeout_s      = 30
api_rate_limit_rps    = 200
api_burst_limit       = 400
dynamodb_billing_mode = "PAY_PER_REQUEST"
vpc_enabled           = true
redis_enabled         = true
redis_node_type       = "cache.t3.small"
alarms_enabled        = false
removal_policy        = "destroy"
kinesis_shards        = 2
training_schedule     = null
training_backend      = "sagemaker"
log_retention_days    = 30
