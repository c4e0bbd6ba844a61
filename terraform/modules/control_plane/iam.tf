# Two roles per server, each with what it needs and nothing more. The execution role (the
# ECS agent's) pulls the one image repository, writes the server's log group and reads the
# secrets its task is given (OpenBao's: also decrypts its seal key's secret with the
# unseal key, through Secrets Manager); the task role (the server's own) mounts the data
# directory, and nothing else: the static seal needs no KMS call from the server.

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "execution" {
  for_each = local.ports

  name               = "${var.name}-${each.key}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = local.tags
}

resource "aws_iam_role" "task" {
  for_each = local.ports

  name               = "${var.name}-${each.key}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "execution" {
  for_each = local.ports

  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [local.image_repository_arn]
  }

  # GetAuthorizationToken supports no resource-level permission: "*" is its only form.
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "ItsLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.server[each.key].arn}:*"]
  }

  statement {
    sid       = "TheSecretsItsTaskIsGiven"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.injected[each.key]
  }

  # The seal key's secret is under the unseal key: decrypted for Secrets Manager alone.
  dynamic "statement" {
    for_each = each.key == "openbao" ? [var.unseal_key_arn] : []

    content {
      sid       = "DecryptTheSealKeysSecret"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  for_each = local.ports

  name   = "hipaa-mlops-${each.key}-execution"
  role   = aws_iam_role.execution[each.key].id
  policy = data.aws_iam_policy_document.execution[each.key].json
}

data "aws_iam_policy_document" "task" {
  for_each = local.ports

  statement {
    sid       = "MountTheDataDirectory"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.data.arn]

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.data.arn]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = local.ports

  name   = "hipaa-mlops-${each.key}-task"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.task[each.key].json
}
