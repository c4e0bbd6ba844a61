# The platform's control plane in the primary region, the AWS counterpart of the stack's
# OpenBao, MLflow with its PostgreSQL, and the data directory: the data directory on EFS,
# OpenBao's storage and MLflow's backend store on RDS PostgreSQL, both servers as Fargate
# services behind internal Network Load Balancers that pass TLS through to them. Every
# volume, the database, its secrets, the tasks' ephemeral storage and the logs are under
# the control plane's key; the secret holding OpenBao's seal key is under a key of its own.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  # The ports the app image's servers listen on (safeguards.settings.PORT_OFFSETS above
  # HIPAA_MLOPS_PORT_BASE): clients reach each at the same port on its load balancer.
  ports = {
    openbao = var.port_base
    mlflow  = var.port_base + 3
  }
  # OpenBao's cluster port: a standby forwards requests to the active node on it.
  openbao_cluster_port = var.port_base + 1
  tasks                = var.environment == "production" ? 2 : 1
  image_repository_arn = "arn:${local.partition}:ecr:${var.region}:${local.account}:repository/${var.image_repository}"
  tags                 = merge(var.tags, { "hipaa-mlops:component" = "control-plane" })
  # The servers' task roles: the only principals of the control plane's access point.
  task_role_arns = [for role in aws_iam_role.task : role.arn]
  # What an NFS client asks EFS for: read, write, root.
  efs_client_actions = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite", "elasticfilesystem:ClientRootAccess"]
}

# The data directory (HIPAA_MLOPS_DATA_DIR): the dataset repository's git history, the
# TLS CA and the credentials files, under the control plane's key.
resource "aws_efs_file_system" "data" {
  creation_token   = "${var.name}-data"
  encrypted        = true
  kms_key_id       = var.kms_key_arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"
  tags             = merge(local.tags, { Name = "${var.name}-data" })

  lifecycle {
    precondition {
      condition     = data.aws_region.current.name == var.region
      error_message = "The provider passed to this module is configured for another region than var.region."
    }

    precondition {
      condition     = var.platform_regions[0] == var.region
      error_message = "The control plane runs in the primary region, the first of platform_regions (the app's home region)."
    }
  }
}

resource "aws_efs_backup_policy" "data" {
  file_system_id = aws_efs_file_system.data.id

  backup_policy {
    status = "ENABLED"
  }
}

# The control plane's way in, for its servers alone (the policy below): the app image's
# user (10001, as the Dockerfile makes it), its root created closed to everyone else, as
# the stack creates /data. Each project's jobs have their own (module jobs), rooted at
# jobs/<project> inside this one.
resource "aws_efs_access_point" "data" {
  file_system_id = aws_efs_file_system.data.id
  tags           = merge(local.tags, { Name = "${var.name}-data" })

  posix_user {
    uid = 10001
    gid = 10001
  }

  root_directory {
    path = "/hipaa-mlops"

    creation_info {
      owner_uid   = 10001
      owner_gid   = 10001
      permissions = "0700"
    }
  }
}

resource "aws_efs_mount_target" "data" {
  count = length(var.subnet_ids)

  file_system_id  = aws_efs_file_system.data.id
  subnet_id       = var.subnet_ids[count.index]
  security_groups = [aws_security_group.efs.id]
}

# Who may use which access point. The control plane's (/hipaa-mlops, the whole data
# directory: the operator's and the servers' credentials, OpenBao's recovery key, every
# project's job directory) is for the control plane's task roles alone. Each project's
# jobs mount an access point of their own (module jobs: /hipaa-mlops/jobs/<project>, which
# the servers see at /data/jobs/<project>), for that project's workload role alone.
#
# Module jobs makes those access points on this file system, so this policy cannot name
# them: the two modules would depend on each other. It names what this module knows
# instead, and module jobs pins its role with an identity policy (in EFS an allow in either
# an identity policy or the file system policy suffices, and an explicit deny in either
# wins):
# - the one allow is the control plane's task roles', through a mount target and their
#   access point: the jobs' roles are allowed nothing here, only their own access point by
#   module jobs' policy, which also denies them every other way in;
# - the control plane's task roles are denied every other access point, and the jobs'
#   roles (data_clients) the control plane's;
# - nobody mounts the file system's root (no access point): it would bypass all of this;
# - nothing over plaintext.
# Not "deny every principal but the control plane's roles": for NFS clients EFS enforces
# only aws:SecureTransport, aws:SourceIp, elasticfilesystem:AccessPointArn and
# elasticfilesystem:AccessedViaMountTarget, not aws:PrincipalArn, and NotPrincipal cannot
# name an ECS task's role session. Another principal of the account would need an identity
# policy granting it ClientMount on this file system and a place in a security group the
# mount targets admit (network.tf).
data "aws_iam_policy_document" "data" {
  statement {
    sid       = "DenyPlaintextTransport"
    effect    = "Deny"
    actions   = ["*"]
    resources = [aws_efs_file_system.data.arn]

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

  statement {
    sid       = "MountByTheControlPlanesTaskRoles"
    effect    = "Allow"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.data.arn]

    principals {
      type        = "AWS"
      identifiers = local.task_role_arns
    }

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
    sid       = "NoMountWithoutAnAccessPoint"
    effect    = "Deny"
    actions   = local.efs_client_actions
    resources = [aws_efs_file_system.data.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "elasticfilesystem:AccessPointArn"
      values   = ["true"]
    }
  }

  statement {
    sid       = "TheControlPlanesTaskRolesUseTheirAccessPointAlone"
    effect    = "Deny"
    actions   = local.efs_client_actions
    resources = [aws_efs_file_system.data.arn]

    principals {
      type        = "AWS"
      identifiers = local.task_role_arns
    }

    condition {
      test     = "StringNotEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.data.arn]
    }
  }

  # A statement names at least one principal: none while no project runs jobs.
  dynamic "statement" {
    for_each = length(var.data_clients) > 0 ? [var.data_clients] : []

    content {
      sid       = "TheJobsNeverUseTheControlPlanesAccessPoint"
      effect    = "Deny"
      actions   = local.efs_client_actions
      resources = [aws_efs_file_system.data.arn]

      principals {
        type        = "AWS"
        identifiers = statement.value
      }

      condition {
        test     = "StringEquals"
        variable = "elasticfilesystem:AccessPointArn"
        values   = [aws_efs_access_point.data.arn]
      }
    }
  }
}

resource "aws_efs_file_system_policy" "data" {
  file_system_id                     = aws_efs_file_system.data.id
  policy                             = data.aws_iam_policy_document.data.json
  bypass_policy_lockout_safety_check = false
}

# The secrets the tasks read at start, never set here: each server's PostgreSQL role
# (JSON: username, password), which OpenBao needs before it can unseal and so cannot keep
# itself, and which MLflow is given the same way. Each server's execution role may read
# its own server's secret only; the database setup's (database_setup.tf) reads both, to
# give each role its password.
module "secrets" {
  source = "../secrets"

  project = "platform"
  secrets = {
    "openbao-storage" = "PostgreSQL role of OpenBao's storage (JSON: username, password)"
    "mlflow-store"    = "PostgreSQL role of MLflow's backend store (JSON: username, password)"
  }
  kms_key_arn         = var.kms_key_arn
  readers             = [aws_iam_role.execution["openbao"].arn, aws_iam_role.database_setup_execution.arn]
  secret_readers      = { "mlflow-store" = [aws_iam_role.execution["mlflow"].arn, aws_iam_role.database_setup_execution.arn] }
  rotation_lambda_arn = var.rotation_lambda_arn
  tags                = local.tags
}

# OpenBao's static seal key (OPENBAO_UNSEAL_KEY: 32 random bytes, base64), which ECS
# injects into OpenBao's task. The OpenBao binary of the image has no built-in awskms
# seal (it moved to an external plugin), so KMS protects the key here instead: the secret
# is under the unseal key, which only OpenBao's execution role may decrypt, and its
# policy lets no one else read it. Terraform never sets its value: an operator puts it
# once (README), so it is in no state file.
resource "aws_secretsmanager_secret" "unseal" {
  #checkov:skip=CKV2_AWS_57:Not rotated: the static seal reads one key id (current_key_id 1), and a new key would leave OpenBao's root key wrapped under the old one; rotation waits for the app to carry a previous key id
  name                    = "hipaa-mlops/${var.name}/openbao-unseal"
  description             = "OpenBao's static seal key (32 random bytes, base64): OPENBAO_UNSEAL_KEY of OpenBao's task"
  kms_key_id              = var.unseal_key_arn
  recovery_window_in_days = 30
  tags                    = local.tags
}

data "aws_iam_policy_document" "unseal" {
  statement {
    sid       = "ReadByOpenBaosExecutionRole"
    effect    = "Allow"
    actions   = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.unseal.arn]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.execution["openbao"].arn]
    }
  }

  # Not even a role whose own policy allows every secret reads this one.
  statement {
    sid       = "ReadByNobodyElse"
    effect    = "Deny"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.unseal.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "aws:PrincipalArn"
      values   = [aws_iam_role.execution["openbao"].arn]
    }
  }

  statement {
    sid       = "DenyPlaintextTransport"
    effect    = "Deny"
    actions   = ["secretsmanager:*"]
    resources = [aws_secretsmanager_secret.unseal.arn]

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

resource "aws_secretsmanager_secret_policy" "unseal" {
  secret_arn          = aws_secretsmanager_secret.unseal.arn
  policy              = data.aws_iam_policy_document.unseal.json
  block_public_policy = true
}
