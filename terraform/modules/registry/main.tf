# A private ECR repository per image: immutable tags (a tag names one digest for good),
# scan on push, layers under a customer-managed key, pulls by the named roles only.

resource "aws_ecr_repository" "image" {
  for_each = toset(var.images)

  name                 = "${var.name}/${each.key}"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false
  tags                 = var.tags

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

data "aws_iam_policy_document" "pull" {
  statement {
    sid     = "PullByNamedRoles"
    effect  = "Allow"
    actions = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]

    principals {
      type        = "AWS"
      identifiers = var.pullers
    }
  }
}

resource "aws_ecr_repository_policy" "image" {
  for_each = length(var.pullers) > 0 ? aws_ecr_repository.image : {}

  repository = each.value.name
  policy     = data.aws_iam_policy_document.pull.json
}

resource "aws_ecr_lifecycle_policy" "image" {
  for_each = aws_ecr_repository.image

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Expire untagged images"
      selection = {
        tagStatus   = "untagged"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = var.untagged_days
      }
      action = { type = "expire" }
    }]
  })
}
