# A customer-managed key of one project in one region: rotated yearly, never
# multi-region, and used only by the roles its policy names.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:Key policy: "*" is the key itself (AWS's documented form); the principals are named
  #checkov:skip=CKV_AWS_111:Key policy: "*" is the key itself (AWS's documented form); the principals are named
  #checkov:skip=CKV_AWS_356:Key policy: "*" is the key itself (AWS's documented form); the principals are named
  statement {
    sid       = "Administration"
    effect    = "Allow"
    actions   = ["kms:CancelKeyDeletion", "kms:Create*", "kms:Delete*", "kms:Describe*", "kms:Disable*", "kms:Enable*", "kms:Get*", "kms:List*", "kms:Put*", "kms:Revoke*", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:Update*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = var.administrators
    }
  }

  statement {
    sid       = "Use"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = var.users
    }
  }

  # Grants only for AWS resources (an S3 bucket key, a SageMaker volume), through their
  # own service in this region; none at all for a key no service uses (OpenBao's unseal
  # key).
  dynamic "statement" {
    for_each = length(var.service_principals) > 0 ? [1] : []

    content {
      sid       = "GrantsForAwsResourcesOnly"
      effect    = "Allow"
      actions   = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.users
      }

      condition {
        test     = "Bool"
        variable = "kms:GrantIsForAWSResource"
        values   = ["true"]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [for service in var.service_principals : "${service}.${var.region}.amazonaws.com"]
      }
    }
  }

  # Write-only, for a secret's first value (OpenBao's seal key, the database roles): a
  # data key for Secrets Manager to encrypt with, never a decrypt, so a writer cannot read
  # back what it put.
  dynamic "statement" {
    for_each = length(var.secret_writers) > 0 ? [1] : []

    content {
      sid       = "PutSecretValuesOnly"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey"]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.secret_writers
      }

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.region}.amazonaws.com"]
      }
    }
  }

  # CloudWatch Logs encrypts log groups as itself, bound to this account's log groups.
  dynamic "statement" {
    for_each = var.cloudwatch_logs ? [1] : []

    content {
      sid       = "CloudWatchLogsOfThisAccount"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["logs.${var.region}.amazonaws.com"]
      }

      condition {
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:aws:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:*"]
      }
    }
  }

  # Fargate encrypts the ephemeral storage of this account's tasks in the one cluster named
  # (module control_plane): data keys without plaintext, and grants that only decrypt.
  dynamic "statement" {
    for_each = var.fargate_cluster == null ? [] : [var.fargate_cluster]

    content {
      sid       = "FargateEphemeralStorageOfTheCluster"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKeyWithoutPlaintext"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["fargate.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:ecs:clusterAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:ecs:clusterName"
        values   = [statement.value]
      }
    }
  }

  dynamic "statement" {
    for_each = var.fargate_cluster == null ? [] : [var.fargate_cluster]

    content {
      sid       = "FargateGrantsToDecryptOnly"
      effect    = "Allow"
      actions   = ["kms:CreateGrant"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["fargate.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:ecs:clusterAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:ecs:clusterName"
        values   = [statement.value]
      }

      condition {
        test     = "ForAllValues:StringEquals"
        variable = "kms:GrantOperations"
        values   = ["Decrypt"]
      }
    }
  }

  # The evidence key (module compliance): this account's trails encrypt their log files,
  # and AWS Config (its service-linked role) its snapshots.
  dynamic "statement" {
    for_each = var.evidence ? [1] : []

    content {
      sid       = "CloudTrailOfThisAccount"
      effect    = "Allow"
      actions   = ["kms:DescribeKey", "kms:GenerateDataKey*"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["cloudtrail.amazonaws.com"]
      }

      condition {
        test     = "StringLike"
        variable = "kms:EncryptionContext:aws:cloudtrail:arn"
        values   = ["arn:aws:cloudtrail:*:${data.aws_caller_identity.current.account_id}:trail/*"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.evidence ? [1] : []

    content {
      sid       = "ConfigOfThisAccount"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"]
      }
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.kind} key of project ${var.project} in ${var.region}"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  multi_region            = false
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.key.json

  tags = merge(var.tags, {
    "hipaa-mlops:project" = var.project
    "hipaa-mlops:region"  = var.region
    "hipaa-mlops:kind"    = var.kind
  })

  lifecycle {
    precondition {
      condition     = contains(var.allowed_regions, var.region)
      error_message = "The project may not keep data in this region: it is not among allowed_regions."
    }

    precondition {
      condition     = data.aws_region.current.name == var.region
      error_message = "The provider passed to this module is configured for another region than var.region."
    }
  }
}

# The platform's OpenBao transit key <region>.<kind>-<project>, as an alias allows it
# (no dots): alias/hipaa-mlops/<region>/<kind>-<project>.
resource "aws_kms_alias" "this" {
  name          = "alias/hipaa-mlops/${var.region}/${var.kind}-${var.project}"
  target_key_id = aws_kms_key.this.key_id
}
