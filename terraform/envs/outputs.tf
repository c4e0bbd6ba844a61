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


output "service_control_policy" {
  description = "The service control policy: HIPAA-eligible services only, the environment's two regions only."
  value       = module.compliance.service_control_policy
}
