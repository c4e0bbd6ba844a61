output "task_definition_arns" {
  description = "Job (retrain, monitor) => its task definition."
  value       = { for job, definition in aws_ecs_task_definition.job : job => definition.arn }
}

output "rules" {
  description = "Job => the EventBridge rule that starts it."
  value       = { for job, rule in aws_cloudwatch_event_rule.job : job => rule.name }
}

output "execution_role_arn" {
  description = "The jobs' execution role: it pulls the app image (module registry's pullers)."
  value       = aws_iam_role.execution.arn
}

output "log_group" {
  description = "The jobs' log group."
  value       = aws_cloudwatch_log_group.jobs.name
}
