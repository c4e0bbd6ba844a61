output "openbao_address" {
  description = "OpenBao's address (its internal load balancer): HIPAA_MLOPS_OPENBAO_ADDR of the jobs."
  value       = local.addresses["openbao"]
}

output "mlflow_address" {
  description = "MLflow's address (its internal load balancer): HIPAA_MLOPS_MLFLOW_ADDR of the jobs."
  value       = local.addresses["mlflow"]
}

output "file_system_id" {
  description = "The data directory's EFS file system: module jobs makes each project's access point on it."
  value       = aws_efs_file_system.data.id
}

output "file_system_arn" {
  description = "The data directory's EFS file system's ARN: module jobs' identity policy names it."
  value       = aws_efs_file_system.data.arn
}

output "access_point_id" {
  description = "The control plane's access point (/hipaa-mlops, the whole data directory): its servers' alone, never the jobs' (each project's jobs have their own, module jobs)."
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
  description = "The roles that use the control plane's key: the servers' execution roles, which read their database secrets, and the database setup's, which reads the master user's and both servers' (module kms's users)."
  value       = concat([for role in aws_iam_role.execution : role.arn], [aws_iam_role.database_setup_execution.arn])
}

output "unseal_key_users" {
  description = "The role that uses the unseal key: OpenBao's execution role, which decrypts the seal key's secret to inject it (module kms's users)."
  value       = [aws_iam_role.execution["openbao"].arn]
}

output "unseal_secret_arn" {
  description = "The secret holding OpenBao's static seal key, which an operator puts once (README)."
  value       = aws_secretsmanager_secret.unseal.arn
}

output "database_secret_arns" {
  description = "Server => the secret holding its PostgreSQL role (JSON: username, password), which an operator puts once (README)."
  value       = { openbao = module.secrets.secret_arns["openbao-storage"], mlflow = module.secrets.secret_arns["mlflow-store"] }
}

output "database" {
  description = "The control plane's PostgreSQL: its address (host:port) and its master user's secret (kept by RDS), with which the database setup task creates the servers' roles and databases (README)."
  value = {
    address            = "${aws_db_instance.this.address}:${aws_db_instance.this.port}"
    master_user        = aws_db_instance.this.username
    master_user_secret = aws_db_instance.this.master_user_secret[0].secret_arn
  }
}

output "execution_role_arns" {
  description = "The servers' execution roles and the database setup's: they pull the app image (module registry's pullers)."
  value       = concat([for role in aws_iam_role.execution : role.arn], [aws_iam_role.database_setup_execution.arn])
}

output "database_setup_task_definition" {
  description = "The one-off task that creates the servers' database roles and databases (README): its family and ARN (family:revision), and what `aws ecs run-task` runs it with: the cluster, the private subnets and the servers' security group, the one the database admits (no public IP)."
  value = {
    family            = aws_ecs_task_definition.database_setup.family
    arn               = aws_ecs_task_definition.database_setup.arn
    cluster           = aws_ecs_cluster.this.name
    subnet_ids        = var.subnet_ids
    security_group_id = aws_security_group.tasks.id
  }
}
