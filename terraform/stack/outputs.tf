# The reference system's outputs, with the same names. Secret values are never outputs (ARNs only).

output "ApiUrl" {
  description = "API Gateway endpoint URL."
  value       = module.api.api_url
}

output "LambdaFunctionName" {
  description = "Lambda function name (the recommendation service API)."
  value       = module.compute.function_names["api"]
}

output "LambdaFunctionArn" {
  description = "Lambda function ARN (the recommendation service API)."
  value       = module.compute.function_arns["api"]
}

output "DataBucketName" {
  description = "S3 data bucket name."
  value       = module.storage.bucket_names["data"]
}

output "ModelBucketName" {
  description = "S3 model bucket name."
  value       = module.storage.bucket_names["models"]
}

output "ArtifactsBucketName" {
  description = "S3 artifacts bucket name."
  value       = module.storage.bucket_names["artifacts"]
}

output "UserFeaturesTableName" {
  description = "DynamoDB user features table."
  value       = module.storage.table_names["user_features"]
}

output "VideoFeaturesTableName" {
  description = "DynamoDB video features table."
  value       = module.storage.table_names["video_features"]
}

output "DashboardUrl" {
  description = "CloudWatch dashboard URL."
  value       = module.monitoring.dashboard_url
}

output "RedisEndpoint" {
  description = "Redis endpoint (staging/prod; null in dev)."
  value       = module.networking.redis_endpoint
}

output "MLPipelineStateMachineArn" {
  description = "Step Functions state machine ARN."
  value       = module.ml_pipeline.state_machine_arn
}

output "EventStreamName" {
  description = "Kinesis event stream name."
  value       = module.data_collection.stream_name
}

output "InferenceTableName" {
  description = "DynamoDB inference tracking table."
  value       = module.storage.table_names["inference_tracking"]
}

output "FeatureStoreUserTableName" {
  description = "Feature store user features table (the online store)."
  value       = module.storage.table_names["user_features"]
}

output "FeatureStoreVideoTableName" {
  description = "Feature store video features table (the online store)."
  value       = module.storage.table_names["video_features"]
}

output "GlueDatabaseName" {
  description = "Glue database for offline features."
  value       = module.feature_store.database_name
}

output "RedisCredentialsSecretArn" {
  description = "Redis credentials secret ARN (staging/prod; null in dev)."
  value       = lookup(module.secrets.secret_arns, "redis_credentials", null)
}

output "ApiKeysSecretArn" {
  description = "API keys secret ARN."
  value       = module.secrets.secret_arns["api_keys"]
}

output "ConfigSecretArn" {
  description = "Configuration secret ARN."
  value       = module.secrets.secret_arns["config"]
}

# Beyond the reference outputs: every real resource name by catalogue key, read by `recsys outputs` so the CLI
# talks to the deployed names (bucket names carry the account id).
output "ResourceNames" {
  description = "Every resource name of the stack by kind and catalogue key (buckets, tables, streams, firehose, secrets, functions, state_machines, glue_database)."
  value = {
    buckets        = module.storage.bucket_names
    tables         = module.storage.table_names
    streams        = { events = module.data_collection.stream_name }
    firehose       = { raw_events = module.data_collection.firehose_name }
    secrets        = module.secrets.secret_names
    functions      = module.compute.function_names
    state_machines = { ml_pipeline = module.ml_pipeline.state_machine_name }
    glue_database  = module.feature_store.database_name
  }
}

output "TrainingRepositoryUrl" {
  description = "ECR repository to push the training image to (docker/training, built by `recsys package`)."
  value       = module.compute.training_repository_url
}

output "SageMakerRoleArn" {
  description = "Execution role of the SageMaker training jobs."
  value       = module.ml_pipeline.sagemaker_role_arn
}
