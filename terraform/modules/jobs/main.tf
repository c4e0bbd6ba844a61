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
  # privilege, no capability, the data directory at /data and a scratch /tmp on the
  # task's ephemeral storage (under the cluster's key). `hipaa-mlops` instead of the
  # image's entry point (the stack's servers), still under tini.
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
  # OpenBao's address; no secret. The job logs in to OpenBao as the project's workload
  # identity from the data directory, as the worker does.
  environment = {
    HIPAA_MLOPS_PROFILE      = "stack"
    HIPAA_MLOPS_RUNTIME      = "compose"
    HIPAA_MLOPS_NETWORK      = "compose"
    HIPAA_MLOPS_LOG_FORMAT   = "json"
    HIPAA_MLOPS_IMAGE_DIGEST = split("@", var.image)[1]
    HIPAA_MLOPS_OPENBAO_ADDR = var.control_plane.openbao_address
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
        access_point_id = var.control_plane.access_point_id
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
}
