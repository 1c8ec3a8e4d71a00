"""The feature store: online (DynamoDB, `online.py`) and offline (Parquet + Glue under s3://{data}/feature_store/)."""
