# OpenBao and MLflow as Fargate services of one cluster, each behind an internal Network
# Load Balancer whose TCP listener passes TLS through: the servers terminate TLS with the
# stack's own certificates, as on the stack. No public address anywhere, no exec.

resource "aws_cloudwatch_log_group" "server" {
  for_each = local.ports

  name              = "/hipaa-mlops/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

# Any `ecs execute-command` session is logged here, encrypted; the services disable exec.
resource "aws_cloudwatch_log_group" "exec" {
  name              = "/hipaa-mlops/${var.name}/ecs-exec"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

# Made before Container Insights writes into it, so it is under the key and kept six years.
resource "aws_cloudwatch_log_group" "container_insights" {
  name              = "/aws/ecs/containerinsights/${var.name}/performance"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  tags = local.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    # Every task's ephemeral storage (the jobs' too) under the control plane's key.
    managed_storage_configuration {
      fargate_ephemeral_storage_kms_key_id = var.kms_key_arn
    }

    execute_command_configuration {
      kms_key_id = var.kms_key_arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.exec.name
      }
    }
  }

  depends_on = [aws_cloudwatch_log_group.container_insights]
}

locals {
  # Every container of the app image runs as the compose stack runs it: its own non-root
  # user, a read-only root, no privilege, no capability, and a scratch /tmp on the task's
  # ephemeral storage (Fargate has no tmpfs). The data directory is no part of it: the
  # servers add it (at /data), the database setup (database_setup.tf) goes without.
  container = {
    image                  = var.image
    essential              = true
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    privileged             = false
    linuxParameters        = { capabilities = { drop = ["ALL"] } }
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
  }
  data_mount = { sourceVolume = "data", containerPath = "/data", readOnly = false }
  addresses  = { for server, port in local.ports : server => "https://${aws_lb.this[server].dns_name}:${port}" }
  # What the app image reads (safeguards.settings, HIPAA_MLOPS_*), as the servers and the
  # jobs (module jobs) are given it: both servers' addresses; the environment's regions,
  # primary first, each named after its AWS region (so each maps to itself); and the
  # private subnets the tasks run in, the only addresses AppRole secret ids and tokens
  # work from.
  environment = {
    HIPAA_MLOPS_PROFILE             = "stack"
    HIPAA_MLOPS_RUNTIME             = "compose"
    HIPAA_MLOPS_NETWORK             = "compose"
    HIPAA_MLOPS_PORT_BASE           = tostring(var.port_base)
    HIPAA_MLOPS_IMAGE_DIGEST        = split("@", var.image)[1]
    HIPAA_MLOPS_OPENBAO_ADDR        = local.addresses["openbao"]
    HIPAA_MLOPS_MLFLOW_ADDR         = local.addresses["mlflow"]
    HIPAA_MLOPS_REGIONS             = join(",", var.platform_regions)
    HIPAA_MLOPS_AWS_REGIONS         = join(",", [for region in var.platform_regions : "${region}=${region}"])
    HIPAA_MLOPS_OPENBAO_BOUND_CIDRS = join(",", var.client_cidrs)
    # Both load balancers' names, in each server's certificate and the names it answers
    # to (MLflow's allowed hosts): clients reach the servers by them.
    HIPAA_MLOPS_SERVER_NAMES = join(",", [for server in keys(local.ports) : aws_lb.this[server].dns_name])
    # Each project's jobs mount a data directory of their own, jobs/<project> of this one
    # (module jobs' access point), never this one: OpenBao's active node (and `projects
    # create`/`resume`) keeps there the CA bundle and the project's workload credentials
    # alone. MLflow ignores it.
    HIPAA_MLOPS_JOB_DIRS = "true"
  }
  # Each server's database settings. DATABASE_CA_PEM is the RDS CA bundle, which each
  # server's entry point writes to /tmp/database-ca.pem (services.container.DATABASE_CA,
  # on the task's own storage) before it starts the server: libpq (OpenBao's storage) and
  # MLflow verify the database with that file, sslmode verify-full.
  servers = {
    openbao = {
      # A standby answers its health check with 429: healthy as a task, but its load
      # balancer sends requests to the active node only (its target group wants 200).
      health_path     = "/v1/sys/health"
      health_statuses = "200 429"
      # PostgreSQL storage with high availability (one active node, the others standbys)
      # and the static seal: the image's OpenBao has no built-in awskms seal any more.
      # The database's role and the seal's key come from `secrets` alone.
      environment = {
        HIPAA_MLOPS_OPENBAO_STORAGE = "postgresql"
        HIPAA_MLOPS_OPENBAO_SEAL    = "static"
        PGHOST                      = aws_db_instance.this.address
        PGPORT                      = tostring(aws_db_instance.this.port)
        PGDATABASE                  = "openbao"
        PGSSLMODE                   = "verify-full"
        PGSSLROOTCERT               = "/tmp/database-ca.pem"
        DATABASE_CA_PEM             = var.database_ca_bundle
      }
      secrets = [
        { name = "PGUSER", valueFrom = "${module.secrets.secret_arns["openbao-storage"]}:username::" },
        { name = "PGPASSWORD", valueFrom = "${module.secrets.secret_arns["openbao-storage"]}:password::" },
        { name = "OPENBAO_UNSEAL_KEY", valueFrom = aws_secretsmanager_secret.unseal.arn },
      ]
    }
    # Its backend store on RDS (databases mlflow and mlflow_auth, which the database setup
    # makes: database_setup.tf, README), as the role the mlflow-store secret holds.
    mlflow = {
      health_path     = "/health"
      health_statuses = "200"
      environment = {
        HIPAA_MLOPS_POSTGRES_ADDR = "${aws_db_instance.this.address}:${aws_db_instance.this.port}"
        HIPAA_MLOPS_POSTGRES_CA   = "/tmp/database-ca.pem"
        DATABASE_CA_PEM           = var.database_ca_bundle
      }
      secrets = [
        { name = "PGUSER", valueFrom = "${module.secrets.secret_arns["mlflow-store"]}:username::" },
        { name = "PGPASSWORD", valueFrom = "${module.secrets.secret_arns["mlflow-store"]}:password::" },
      ]
    }
  }
  # The secrets each server's execution role reads to inject them, and nothing else.
  injected = {
    openbao = [module.secrets.secret_arns["openbao-storage"], aws_secretsmanager_secret.unseal.arn]
    mlflow  = [module.secrets.secret_arns["mlflow-store"]]
  }
}

resource "aws_ecs_task_definition" "server" {
  for_each = local.ports

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution[each.key].arn
  task_role_arn            = aws_iam_role.task[each.key].arn
  tags                     = local.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "data"

    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.data.id
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
    name         = each.key
    command      = ["run", each.key]
    mountPoints  = concat([local.data_mount], local.container.mountPoints)
    portMappings = [for port in(each.key == "openbao" ? [each.value, local.openbao_cluster_port] : [each.value]) : { containerPort = port, protocol = "tcp" }]
    environment = [for name, value in merge(local.environment, local.servers[each.key].environment, {
      HIPAA_MLOPS_SERVICE         = each.key
      HIPAA_MLOPS_AUDIT_LOG       = each.key
      HIPAA_MLOPS_HEALTH_URL      = "https://127.0.0.1:${each.value}${local.servers[each.key].health_path}"
      HIPAA_MLOPS_HEALTH_STATUSES = local.servers[each.key].health_statuses
    }) : { name = name, value = value }]
    secrets = local.servers[each.key].secrets
    healthCheck = {
      command     = ["CMD", "python", "-m", "services.healthcheck"]
      interval    = 10
      timeout     = 5
      retries     = 5
      startPeriod = 180
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.server[each.key].name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  })])
}

resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_91:An NLB writes access logs only for TLS listeners; these pass TLS through on TCP listeners, so it has none to write (VPC flow logs record every connection)
  for_each = local.ports

  name                             = "${substr(var.name, 0, 24)}-${substr(each.key, 0, 7)}"
  internal                         = true
  load_balancer_type               = "network"
  subnets                          = var.subnet_ids
  security_groups                  = [aws_security_group.load_balancers.id]
  enable_deletion_protection       = true
  enable_cross_zone_load_balancing = true
  tags                             = local.tags
}

resource "aws_lb_target_group" "this" {
  for_each = local.ports

  name                 = "${substr(var.name, 0, 24)}-${substr(each.key, 0, 7)}"
  port                 = each.value
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30
  tags                 = local.tags

  # Over TLS to the server itself; only the active OpenBao node answers 200.
  health_check {
    protocol            = "HTTPS"
    path                = local.servers[each.key].health_path
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "this" {
  for_each = local.ports

  load_balancer_arn = aws_lb.this[each.key].arn
  port              = each.value
  protocol          = "TCP"
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.key].arn
  }
}

resource "aws_ecs_service" "server" {
  for_each = local.ports

  name                              = each.key
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.server[each.key].arn
  desired_count                     = local.tasks
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  enable_execute_command            = false
  propagate_tags                    = "SERVICE"
  health_check_grace_period_seconds = 180
  tags                              = local.tags

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this[each.key].arn
    container_name   = each.key
    container_port   = each.value
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_lb_listener.this, aws_efs_mount_target.data, aws_iam_role_policy.execution]
}
