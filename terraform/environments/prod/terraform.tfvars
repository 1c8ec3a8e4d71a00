# The reference environment table, prod column (equal to recsys.config.PROFILES["prod"]).
environment           = "prod"
lambda_memory_mb      = 2048
lambda_timeout_s      = 30
api_rate_limit_rps    = 1000
api_burst_limit       = 2000
api_quota_per_day     = 50000000 # the usage plan's daily quota (the stage's 1000 req/s is ~86M a day)
dynamodb_billing_mode = "PROVISIONED"
vpc_enabled           = true
redis_enabled         = true
redis_node_type       = "cache.r6g.large"
alarms_enabled        = true
removal_policy        = "retain"
kinesis_shards        = 4
training_schedule     = "rate(7 days)"
training_backend      = "sagemaker"
log_retention_days    = 90

# Redis credentials rotate every 30 days in prod (the reference system), by the stack's redis_rotation
# function (lambdas/redis_rotation: Secrets Manager's four steps, ElastiCache's ROTATE token strategy).
redis_rotation_days = 30
