output "api_url" {
  description = "Invoke URL of the stage, ending in a slash (e.g. https://abc.execute-api.us-east-1.amazonaws.com/dev/)."
  value       = "${aws_api_gateway_stage.this.invoke_url}/"
}

output "rest_api_id" {
  description = "REST API id."
  value       = aws_api_gateway_rest_api.this.id
}

output "rest_api_name" {
  description = "REST API name (the CloudWatch ApiName dimension)."
  value       = aws_api_gateway_rest_api.this.name
}

output "stage_name" {
  description = "Stage name."
  value       = aws_api_gateway_stage.this.stage_name
}

output "api_key_id" {
  description = "Id of the default API key (its value is never an output)."
  value       = aws_api_gateway_api_key.this.id
}
