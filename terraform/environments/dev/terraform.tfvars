# The reference environment table, dev column (equal to recsys.config.PROFILES["dev"]).
environment           = "dev"
lambda_memory_mb      = 1024
lambda_timeout_s      = 30
api_rate_limit_rps    = 50
api_burst_limit       = 100
dynamodb_billing_mode = "PAY_PER_REQUEST"
vpc_enabled           = false
redis_enabled         = false
redis_node_type       = null
alarms_enabled        = false
removal_policy        = "destroy"
kinesis_shards        = 1
training_schedule     = null
training_backend      = "lambda"
log_retention_days    = 7
