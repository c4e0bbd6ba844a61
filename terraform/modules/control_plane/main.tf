# The platform's control plane in the primary region, the AWS counterpart of the stack's
# OpenBao, MLflow with its PostgreSQL, and the data directory: the data directory on EFS,
# OpenBao's storage and MLflow's backend store on RDS PostgreSQL, both servers as Fargate
# services behind internal Network Load Balancers that pass TLS through to them. Every
# volume, the database, its secret, the tasks' ephemeral storage and the logs are under
# the control plane's key; OpenBao unseals with a key of its own.

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
  }
}

resource "aws_efs_backup_policy" "data" {
  file_system_id = aws_efs_file_system.data.id

  backup_policy {
    status = "ENABLED"
  }
}

# One way in: the app image's user (10001, as the Dockerfile makes it), its root created
# closed to everyone else, as the stack creates /data.
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

# Nothing over plaintext; mount and write only by the named task roles, through a mount
# target and the access point.
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
    sid       = "MountByTheNamedTaskRoles"
    effect    = "Allow"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.data.arn]

    principals {
      type        = "AWS"
      identifiers = concat([for role in aws_iam_role.task : role.arn], var.data_clients)
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
}

resource "aws_efs_file_system_policy" "data" {
  file_system_id                     = aws_efs_file_system.data.id
  policy                             = data.aws_iam_policy_document.data.json
  bypass_policy_lockout_safety_check = false
}

# A secret the tasks read at start, never set here: OpenBao's PostgreSQL role (JSON:
# username, password), which OpenBao needs before it can unseal and so cannot keep itself.
module "secrets" {
  source = "../secrets"

  project             = "platform"
  secrets             = { "openbao-storage" = "PostgreSQL role of OpenBao's storage (JSON: username, password)" }
  kms_key_arn         = var.kms_key_arn
  readers             = [aws_iam_role.execution["openbao"].arn]
  rotation_lambda_arn = var.rotation_lambda_arn
  tags                = local.tags
}
