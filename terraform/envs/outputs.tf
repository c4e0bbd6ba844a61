output "repository_urls" {
  description = "Region => image => repository URL: `hipaa-mlops promote` pushes the app image to each of a project's regions under its immutable sha256-<image ID> tag."
  value = {
    (var.primary_region)   = module.registry.repository_urls
    (var.secondary_region) = module.registry_secondary.repository_urls
  }
}

output "endpoints" {
  description = "Project => region => the endpoint serving its champion there."
  value = {
    for name in keys(var.projects) : name => {
      for region, instance in {
        (var.primary_region)   = lookup(module.project_primary, name, null)
        (var.secondary_region) = lookup(module.project_secondary, name, null)
      } : region => instance.endpoint_name if instance != null
    }
  }
}

output "control_plane" {
  description = "The control plane in the primary region (OpenBao's and MLflow's addresses, the data directory, the cluster, and what the operator sets up once: the seal key's secret, the servers' database secrets, and the task that makes their roles and databases with `aws ecs run-task`), or null."
  value = one([for c in module.control_plane : {
    openbao_address                = c.openbao_address
    mlflow_address                 = c.mlflow_address
    file_system_id                 = c.file_system_id
    access_point_id                = c.access_point_id
    cluster_arn                    = c.cluster_arn
    unseal_secret_arn              = c.unseal_secret_arn
    database                       = c.database
    database_secret_arns           = c.database_secret_arns
    database_setup_task_definition = c.database_setup_task_definition
  }])
}

output "jobs" {
  description = "Project => job (retrain, monitor) => the EventBridge rule that starts it in the primary region."
  value       = { for name, j in module.jobs : name => j.rules }
}

output "service_control_policy" {
  description = "The service control policy: HIPAA-eligible services only, the environment's two regions only."
  value       = module.compliance.service_control_policy
}
