output "alarm_topic_arn" {
  description = "The encrypted SNS topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "prometheus_workspace_id" {
  description = "The Amazon Managed Prometheus workspace the monitoring job writes to, or null (managed_prometheus off)."
  value       = one(aws_prometheus_workspace.this[*].id)
}

output "endpoint_log_group" {
  description = "The endpoint's log group."
  value       = aws_cloudwatch_log_group.endpoint.name
}
