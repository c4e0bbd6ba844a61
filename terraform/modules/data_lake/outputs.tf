output "buckets" {
  description = "Zone => bucket name."
  value       = { for zone, bucket in module.zone : zone => bucket.id }
}

output "bucket_arns" {
  description = "Zone => bucket ARN (what another region's data_lake names as a replica)."
  value       = { for zone, bucket in module.zone : zone => bucket.arn }
}

output "access_log_bucket" {
  description = "The bucket the zones' server access logs go to."
  value       = aws_s3_bucket.access_logs.bucket
}

output "glue_database" {
  description = "The Glue database of the project in this region, if catalogued."
  value       = one(aws_glue_catalog_database.project[*].name)
}
