output "openbao_address" {
  description = "OpenBao's address (its internal load balancer): HIPAA_MLOPS_OPENBAO_ADDR of the jobs."
  value       = local.addresses["openbao"]
}

output "mlflow_address" {
  description = "MLflow's address (its internal load balancer)."
  value       = local.addresses["mlflow"]
}

output "file_system_id" {
  description = "The data directory's EFS file system."
  value       = aws_efs_file_system.data.id
}

output "access_point_id" {
  description = "The data directory's one access point: the jobs mount through it."
  value       = aws_efs_access_point.data.id
}

output "client_security_group_id" {
  description = "The security group a task carries to be admitted to OpenBao, MLflow and the data directory (the jobs)."
  value       = aws_security_group.clients.id
}

output "load_balancer_security_group_id" {
  description = "The load balancers' security group: a client's own group lets the servers' ports out to it."
  value       = aws_security_group.load_balancers.id
}

output "efs_security_group_id" {
  description = "The mount targets' security group: a client's own group lets NFS out to it."
  value       = aws_security_group.efs.id
}

output "ports" {
  description = "Server => port, on its load balancer as on its tasks."
  value       = local.ports
}

output "cluster_arn" {
  description = "The ECS cluster: the jobs run in it, their ephemeral storage under its key."
  value       = aws_ecs_cluster.this.arn
}

output "key_users" {
  description = "The roles that use the control plane's key: the execution role that reads OpenBao's storage secret (module kms's users)."
  value       = [aws_iam_role.execution["openbao"].arn]
}

output "unseal_key_users" {
  description = "The role that uses the unseal key: OpenBao's task role (module kms's users)."
  value       = [aws_iam_role.task["openbao"].arn]
}

output "execution_role_arns" {
  description = "The servers' execution roles: they pull the app image (module registry's pullers)."
  value       = [for role in aws_iam_role.execution : role.arn]
}
