resource "aws_kinesis_stream" "this" {
  name             = var.stream.name
  shard_count      = var.shard_count
  retention_period = var.stream.retention_hours
  encryption_type  = "KMS"
  kms_key_id       = var.kms_key_arn
  tags             = var.tags

  stream_mode_details {
    stream_mode = "PROVISIONED"
  }
}

# Records the event processor gave up on (after retries and bisection) land here.
resource "aws_sqs_queue" "failures" {
  name                              = "${var.name_prefix}-event-processor-failures"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = var.tags
}

resource "aws_lambda_event_source_mapping" "processor" {
  event_source_arn                   = aws_kinesis_stream.this.arn
  function_name                      = var.processor_function_arn
  starting_position                  = "LATEST"
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = 1
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 3
  maximum_record_age_in_seconds      = 3600

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.failures.arn
    }
  }
}

resource "aws_cloudwatch_log_group" "firehose" {
  #checkov:skip=CKV_AWS_338:Retention follows the environment table (7/30/90 days), not a fixed year.
  name              = "/aws/kinesisfirehose/${var.firehose.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_stream" "firehose" {
  name           = "S3Delivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "firehose" {
  name               = "${var.name_prefix}-firehose"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid       = "ReadStream"
    actions   = ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"]
    resources = [aws_kinesis_stream.this.arn]
  }

  statement {
    sid       = "WriteRawEvents"
    actions   = ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"]
    resources = [var.raw_events_bucket_arn, "${var.raw_events_bucket_arn}/*"]
  }

  statement {
    sid       = "DataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "ErrorLogs"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:*"]
  }
}

resource "aws_iam_role_policy" "firehose" {
  name   = "deliver-raw-events"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

resource "aws_kinesis_firehose_delivery_stream" "this" {
  name        = var.firehose.name
  destination = "extended_s3"
  tags        = var.tags

  kinesis_source_configuration {
    kinesis_stream_arn = aws_kinesis_stream.this.arn
    role_arn           = aws_iam_role.firehose.arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = var.raw_events_bucket_arn
    prefix              = var.firehose.prefix
    error_output_prefix = var.firehose.error_output_prefix
    buffering_interval  = var.firehose.buffering_seconds
    buffering_size      = var.firehose.buffering_mb
    compression_format  = "GZIP"
    kms_key_arn         = var.kms_key_arn

    # One JSON event per line (Athena's JSON SerDe and recsys.raw_events read it that way).
    processing_configuration {
      enabled = true

      processors {
        type = "AppendDelimiterToRecord"
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose.name
    }
  }

  depends_on = [aws_iam_role_policy.firehose]
}

# The daily feedback merge: yesterday's raw events joined with the recommendations they came from.
resource "aws_cloudwatch_event_rule" "feedback_merge" {
  name                = "${var.name_prefix}-daily-feedback-merge"
  description         = "Merges the previous day's events with inference tracking"
  schedule_expression = var.feedback_merge_schedule
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "feedback_merge" {
  rule = aws_cloudwatch_event_rule.feedback_merge.name
  arn  = var.feedback_merge_function_arn
}

resource "aws_lambda_permission" "feedback_merge" {
  statement_id  = "AllowDailyFeedbackMerge"
  action        = "lambda:InvokeFunction"
  function_name = var.feedback_merge_function_arn
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.feedback_merge.arn
}
