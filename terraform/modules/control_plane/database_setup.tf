# The servers' roles and databases on the RDS instance, made by a one-off task that an
# operator runs (README: `aws ecs run-task`), never a service: the app image's
# `setup-database` step (services.postgres.external), as the master user. Nothing else
# can do it: the database admits the control plane's tasks alone, and only execution roles
# decrypt the master password's secret. It runs with the servers' security group (the one
# the database admits), with the app image's hardening, without the data directory, and
# without a task role: it calls no AWS API, so its container gets no AWS credentials at
# all (an empty role would still hand it some). Running it again changes nothing but the
# roles' passwords, set anew from their secrets.

locals {
  database_setup = {
    # libpq's variables for the master connection (the step fixes dbname postgres),
    # verified as the servers verify it: DATABASE_CA_PEM is written to PGSSLROOTCERT.
    environment = {
      PGHOST          = aws_db_instance.this.address
      PGPORT          = tostring(aws_db_instance.this.port)
      PGSSLMODE       = "verify-full"
      PGSSLROOTCERT   = "/tmp/database-ca.pem"
      DATABASE_CA_PEM = var.database_ca_bundle
    }
    # The master user from the secret RDS keeps; each server's login whole (JSON:
    # username, password), as services.container.DATABASE_LOGINS reads it.
    secrets = [
      { name = "PGUSER", valueFrom = "${aws_db_instance.this.master_user_secret[0].secret_arn}:username::" },
      { name = "PGPASSWORD", valueFrom = "${aws_db_instance.this.master_user_secret[0].secret_arn}:password::" },
      { name = "OPENBAO_STORAGE_LOGIN", valueFrom = module.secrets.secret_arns["openbao-storage"] },
      { name = "MLFLOW_STORE_LOGIN", valueFrom = module.secrets.secret_arns["mlflow-store"] },
    ]
  }
  # The secrets its execution role reads to inject them, and nothing else.
  database_setup_injected = [
    aws_db_instance.this.master_user_secret[0].secret_arn,
    module.secrets.secret_arns["openbao-storage"],
    module.secrets.secret_arns["mlflow-store"],
  ]
}

resource "aws_cloudwatch_log_group" "database_setup" {
  name              = "/hipaa-mlops/${var.name}/database-setup"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

resource "aws_ecs_task_definition" "database_setup" {
  family                   = "${var.name}-database-setup"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 1024
  execution_role_arn       = aws_iam_role.database_setup_execution.arn
  tags                     = local.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # /tmp alone, on the task's ephemeral storage: the CA bundle goes there.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([merge(local.container, {
    name        = "database-setup"
    command     = ["setup-database"]
    environment = [for name, value in local.database_setup.environment : { name = name, value = value }]
    secrets     = local.database_setup.secrets
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.database_setup.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "database-setup"
      }
    }
  })])
}

# Its execution role (the ECS agent's): pull the app image, write its log group, read the
# three secrets its task is given and decrypt them, through Secrets Manager only, under
# the control plane's key (the RDS master secret's master_user_secret_kms_key_id, and
# module secrets' key). Nothing else.
resource "aws_iam_role" "database_setup_execution" {
  name               = "${var.name}-db-setup-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = local.tags
}

data "aws_iam_policy_document" "database_setup_execution" {
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
    resources = ["${aws_cloudwatch_log_group.database_setup.arn}:*"]
  }

  statement {
    sid       = "TheSecretsItsTaskIsGiven"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.database_setup_injected
  }

  # Those three secrets' data keys alone, for Secrets Manager alone.
  statement {
    sid       = "DecryptThoseSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:SecretARN"
      values   = local.database_setup_injected
    }
  }
}

resource "aws_iam_role_policy" "database_setup_execution" {
  name   = "hipaa-mlops-database-setup-execution"
  role   = aws_iam_role.database_setup_execution.id
  policy = data.aws_iam_policy_document.database_setup_execution.json
}
