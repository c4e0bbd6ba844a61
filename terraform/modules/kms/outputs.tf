output "key_arn" {
  description = "ARN of the key: what buckets, volumes, log groups and secrets name."
  value       = aws_kms_key.this.arn
}

output "key_id" {
  description = "ID of the key."
  value       = aws_kms_key.this.key_id
}

output "alias" {
  description = "The key's alias, named as the platform names its OpenBao transit key."
  value       = aws_kms_alias.this.name
}
