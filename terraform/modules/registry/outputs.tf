output "repository_urls" {
  description = "Image => repository URL (push the images there; deploy them by digest)."
  value       = { for image, repo in aws_ecr_repository.image : image => repo.repository_url }
}

output "repository_arns" {
  description = "Image => repository ARN."
  value       = { for image, repo in aws_ecr_repository.image : image => repo.arn }
}
