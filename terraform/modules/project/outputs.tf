output "bucket_arns" {
  description = "Zone => bucket ARN in this region (another region's instance names them as replicas)."
  value       = module.lake.bucket_arns
}

output "key_arns" {
  description = "Kind => key ARN in this region."
  value       = { for kind, key in module.key : kind => key.key_arn }
}

output "role_arns" {
  description = "The project's roles: workload, ingest, serving."
  value       = { for name, role in local.roles : name => role.arn }
}

output "endpoint_name" {
  description = "The endpoint serving the champion here, or null."
  value       = one(module.endpoint[*].endpoint_name)
}

output "serving_image" {
  description = "The app image by digest the endpoint runs (the jobs run the same), or null."
  value       = local.serving_image
}
