output "repository_urls" {
  description = "Image => repository URL (push the image's digest there; `promote --to aws` names the digest)."
  value       = { for image, repo in aws_ecr_repository.image : image => repo.repository_url }
}

output "repository_arns" {
  description = "Image => repository ARN."
  value       = { for image, repo in aws_ecr_repository.image : image => repo.arn }
}
