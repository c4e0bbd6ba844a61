# A project's retrain and monitoring jobs, the AWS counterpart of the stack's monitoring
# worker: two ECS tasks on Fargate in the control plane's cluster, running the app image
# the endpoint runs, by digest, as the project's workload role, started by EventBridge
# rules on the worker's schedules. The monitoring run retrains on drift itself, as the
# worker does, so drift needs no wiring of its own.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  name                 = "${var.project}-${var.environment}"
  account              = data.aws_caller_identity.current.account_id
  partition            = data.aws_partition.current.partition
  image_repository_arn = "arn:${local.partition}:ecr:${var.region}:${local.account}:repository/${var.image_repository}"
  # The workload role's name: the last part of its ARN (a role's name holds no "/").
  workload_role_name = regex("[^/]+$", var.workload_role_arn)
  tags = merge(var.tags, {
    "hipaa-mlops:project"     = var.project
    "hipaa-mlops:environment" = var.environment
  })
  # The command line of each job, as the worker runs them: the weekly retrain, and the
  # monitoring run that retrains at once when the population drifted.
  commands = {
    retrain = ["retrain", "-p", var.project, "--trigger", "schedule"]
    monitor = ["monitor", "run", "-p", var.project, "--retrain"]
  }
  schedules = {
    retrain = var.retrain_schedule
    monitor = var.monitor_schedule
  }
  # As the control plane's servers run: the image's non-root user, a read-only root, no
  # privilege, no capability, a data directory at /data (the project's own, below) and a
  # scratch /tmp on the task's ephemeral storage (under the cluster's key). `hipaa-mlops`
  # instead of the image's entry point (the stack's servers), still under tini.
  container = {
    image                  = var.image
    essential              = true
    entryPoint             = ["/usr/bin/tini", "--", "hipaa-mlops"]
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    privileged             = false
    linuxParameters        = { capabilities = { drop = ["ALL"] } }
    mountPoints = [
      { sourceVolume = "data", containerPath = "/data", readOnly = false },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]
  }
  # What the app image reads (safeguards.settings, HIPAA_MLOPS_*); no secret. The job
  # logs in to OpenBao as the project's workload identity from its own data directory
  # (which holds that identity's credentials and the CA bundle alone), as the worker does,
  # from an address in the private subnets (the bound CIDRs). The platform's regions are
  # the environment's, primary first, each named after its AWS region (so each maps to
  # itself), as the control plane's servers are given them. The lake is S3 as module
  # data_lake makes it: buckets <bucket_prefix>-<project>-<AWS region>-<zone>, the task
  # role's credentials, each zone's key found by its alias.
  environment = {
    HIPAA_MLOPS_PROFILE             = "stack"
    HIPAA_MLOPS_RUNTIME             = "compose"
    HIPAA_MLOPS_NETWORK             = "compose"
    HIPAA_MLOPS_LOG_FORMAT          = "json"
    HIPAA_MLOPS_IMAGE_DIGEST        = split("@", var.image)[1]
    HIPAA_MLOPS_OPENBAO_ADDR        = var.control_plane.openbao_address
    HIPAA_MLOPS_MLFLOW_ADDR         = var.control_plane.mlflow_address
    HIPAA_MLOPS_REGIONS             = join(",", var.platform_regions)
    HIPAA_MLOPS_AWS_REGIONS         = join(",", [for region in var.platform_regions : "${region}=${region}"])
    HIPAA_MLOPS_OPENBAO_BOUND_CIDRS = join(",", var.client_cidrs)
    HIPAA_MLOPS_LAKE                = "s3"
    HIPAA_MLOPS_S3_BUCKET_PREFIX    = var.bucket_prefix
  }
}

resource "aws_cloudwatch_log_group" "jobs" {
  name              = "/hipaa-mlops/${var.project}/jobs"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags

  lifecycle {
    precondition {
      condition     = data.aws_region.current.name == var.region && contains(var.allowed_regions, var.region)
      error_message = "The jobs run in the project's own region, the one the provider passed is configured for."
    }

    precondition {
      condition     = var.platform_regions[0] == var.region
      error_message = "The jobs run beside the control plane, in the primary region: the first of platform_regions."
    }
  }
}

# The jobs' own data directory: jobs/<project> of the control plane's, where OpenBao's
# active node (HIPAA_MLOPS_JOB_DIRS, safeguards.openbao.job_settings) keeps the CA bundle
# (tls/ca.pem) and the project's workload credentials (credentials/<identity>.json), and
# nothing else of the platform's. Inside the control plane's access point (/hipaa-mlops),
# so its servers see it at /data/jobs/<project>; the jobs see it as their whole /data and
# nothing above it: not the operator's credentials, OpenBao's recovery key or another
# project's directory. Only the workload role may use it (iam.tf, and the control plane's
# file system policy).
resource "aws_efs_access_point" "data" {
  file_system_id = var.control_plane.file_system_id
  tags           = merge(local.tags, { Name = "${local.name}-jobs-data" })

  posix_user {
    uid = 10001
    gid = 10001
  }

  root_directory {
    path = "/hipaa-mlops/jobs/${var.project}"

    creation_info {
      owner_uid   = 10001
      owner_gid   = 10001
      permissions = "0700"
    }
  }
}

resource "aws_ecs_task_definition" "job" {
  for_each = local.commands

  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = var.workload_role_arn
  tags                     = local.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  ephemeral_storage {
    size_in_gib = var.ephemeral_storage_gib
  }

  volume {
    name = "data"

    efs_volume_configuration {
      file_system_id     = var.control_plane.file_system_id
      transit_encryption = "ENABLED"

      authorization_config {
        access_point_id = aws_efs_access_point.data.id
        iam             = "ENABLED"
      }
    }
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([merge(local.container, {
    name        = each.key
    command     = each.value
    environment = [for name, value in local.environment : { name = name, value = value }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.jobs.name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  })])
}

# EventBridge rules (CloudWatch Events), not EventBridge Scheduler: the former is on the
# dated list of HIPAA-eligible services compliance/eligible_services.json keeps.
resource "aws_cloudwatch_event_rule" "job" {
  for_each = local.schedules

  name                = "${local.name}-${each.key}"
  description         = "hipaa-mlops ${join(" ", local.commands[each.key])}"
  schedule_expression = each.value
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "job" {
  for_each = local.schedules

  rule     = aws_cloudwatch_event_rule.job[each.key].name
  arn      = var.control_plane.cluster_arn
  role_arn = aws_iam_role.events.arn

  ecs_target {
    task_definition_arn     = aws_ecs_task_definition.job[each.key].arn
    task_count              = 1
    launch_type             = "FARGATE"
    platform_version        = "LATEST"
    propagate_tags          = "TASK_DEFINITION"
    enable_execute_command  = false
    enable_ecs_managed_tags = true

    network_configuration {
      subnets          = var.subnet_ids
      security_groups  = [aws_security_group.jobs.id, var.control_plane.client_security_group_id]
      assign_public_ip = false
    }
  }

  # No run before the workload role may mount its access point.
  depends_on = [aws_iam_role_policy.data]
}
