output "stream_name" {
  description = "Kinesis event stream name."
  value       = aws_kinesis_stream.this.name
}

output "stream_arn" {
  description = "Kinesis event stream ARN."
  value       = aws_kinesis_stream.this.arn
}

output "firehose_name" {
  description = "Firehose delivery stream name."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "failure_queue_arn" {
  description = "SQS queue with the records the event processor gave up on."
  value       = aws_sqs_queue.failures.arn
}

output "failure_queue_url" {
  description = "URL of the failure queue."
  value       = aws_sqs_queue.failures.url
}
