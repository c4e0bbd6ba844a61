output "service_control_policy" {
  description = "The service control policy (JSON), for an organization whose management account is applied elsewhere."
  value       = data.aws_iam_policy_document.scp.json
}

output "trail_arn" {
  description = "The multi-region trail, or null where create_trail is off."
  value       = one(aws_cloudtrail.this[*].arn)
}

output "evidence_bucket" {
  description = "The bucket of CloudTrail's log files and AWS Config's snapshots."
  value       = module.evidence.id
}

output "conformance_pack" {
  description = "The conformance pack's name and the template it evaluates (repository, commit, path, SHA-256)."
  value       = { name = aws_config_conformance_pack.hipaa.name, template = local.pack }
}
