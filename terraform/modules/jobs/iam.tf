# The jobs' execution role (the ECS agent's: pull the one image repository, write the
# jobs' log group; no secret is injected) and the role EventBridge starts them with (run
# these two task definitions in the control plane's cluster, pass these two roles to ECS).
# The task role is the project's workload role (module project), which ECS tasks of this
# account may assume; this module gives it its data directory alone.

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
  name               = "${local.name}-jobs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "execution" {
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
    sid       = "TheJobsLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.jobs.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "hipaa-mlops-jobs-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

data "aws_iam_policy_document" "events_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "events" {
  name               = "${local.name}-jobs-events"
  assume_role_policy = data.aws_iam_policy_document.events_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "events" {
  statement {
    sid       = "RunTheJobs"
    actions   = ["ecs:RunTask"]
    resources = [for job in aws_ecs_task_definition.job : job.arn]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [var.control_plane.cluster_arn]
    }
  }

  statement {
    sid       = "PassTheirRoles"
    actions   = ["iam:PassRole"]
    resources = [var.workload_role_arn, aws_iam_role.execution.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "hipaa-mlops-run-jobs"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}

# The workload role's way into the control plane's file system: mount and write through a
# mount target and the project's own access point, and no other way, whatever else the
# role is ever granted (the explicit deny). The control plane's file system policy allows
# the jobs nothing and denies them its own access point: it cannot name this one, which is
# made on its file system (main.tf there says why).
data "aws_iam_policy_document" "data" {
  statement {
    sid       = "MountItsOwnAccessPoint"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [var.control_plane.file_system_arn]

    condition {
      test     = "Bool"
      variable = "elasticfilesystem:AccessedViaMountTarget"
      values   = ["true"]
    }

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.data.arn]
    }
  }

  statement {
    sid       = "NoOtherAccessPoint"
    effect    = "Deny"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite", "elasticfilesystem:ClientRootAccess"]
    resources = [var.control_plane.file_system_arn]

    condition {
      test     = "StringNotEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.data.arn]
    }
  }
}

resource "aws_iam_role_policy" "data" {
  name   = "hipaa-mlops-jobs-data-directory"
  role   = local.workload_role_name
  policy = data.aws_iam_policy_document.data.json
}
