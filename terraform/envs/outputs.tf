output "repository_urls" {
  description = "Where to push the images `make images` built (by digest)."
  value       = module.registry.repository_urls
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
