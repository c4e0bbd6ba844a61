# A project's secrets in Secrets Manager: under the project's own key, readable by its
# workloads only (or, per secret, by the roles `secret_readers` names instead), rotated by
# a function that writes their values (never Terraform, so no value is in its state).

resource "aws_secretsmanager_secret" "this" {
  for_each = var.secrets

  name                    = "hipaa-mlops/${var.project}/${each.key}"
  description             = each.value
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = merge(var.tags, { "hipaa-mlops:project" = var.project })
}

data "aws_iam_policy_document" "read" {
  for_each = aws_secretsmanager_secret.this

  statement {
    sid       = "ReadByTheProjectsRoles"
    effect    = "Allow"
    actions   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    resources = [each.value.arn]

    principals {
      type        = "AWS"
      identifiers = lookup(var.secret_readers, each.key, var.readers)
    }
  }

  statement {
    sid       = "DenyPlaintextTransport"
    effect    = "Deny"
    actions   = ["secretsmanager:*"]
    resources = [each.value.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_secretsmanager_secret_policy" "this" {
  for_each = var.secrets

  secret_arn          = aws_secretsmanager_secret.this[each.key].arn
  policy              = data.aws_iam_policy_document.read[each.key].json
  block_public_policy = true
}

resource "aws_secretsmanager_secret_rotation" "this" {
  for_each = var.secrets

  secret_id           = aws_secretsmanager_secret.this[each.key].id
  rotation_lambda_arn = var.rotation_lambda_arn

  rotation_rules {
    automatically_after_days = var.rotation_days
  }
}
