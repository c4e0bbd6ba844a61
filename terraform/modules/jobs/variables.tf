variable "project" {
  description = "The project whose jobs these are (3-32 lowercase letters, digits and dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.project))
    error_message = "A project name is 3-32 lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "environment" {
  description = "staging or production."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment is staging or production."
  }
}

variable "region" {
  description = "The region the jobs run in: the control plane's (the primary), one of the project's; the provider passed must be configured for it."
  type        = string
}

variable "allowed_regions" {
  description = "The project's regions, primary first (its residency on the platform): given to the jobs, and the jobs run only in one of them."
  type        = list(string)

  validation {
    condition     = length(var.allowed_regions) > 0 && length(distinct(var.allowed_regions)) == length(var.allowed_regions)
    error_message = "allowed_regions lists at least one region, each once."
  }
}

variable "platform_regions" {
  description = "The environment's regions, primary (var.region) first: HIPAA_MLOPS_REGIONS. In AWS the platform names its regions after the AWS regions, so each maps to itself in HIPAA_MLOPS_AWS_REGIONS."
  type        = list(string)

  validation {
    condition     = length(var.platform_regions) >= 1 && length(var.platform_regions) <= 4 && length(distinct(var.platform_regions)) == length(var.platform_regions) && alltrue([for region in var.platform_regions : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", region))])
    error_message = "platform_regions lists 1 to 4 distinct AWS regions (safeguards.settings.MAX_REGIONS, AWS_REGION)."
  }
}

variable "bucket_prefix" {
  description = "The environment's bucket prefix (module data_lake's): HIPAA_MLOPS_S3_BUCKET_PREFIX, the lake's buckets being <prefix>-<project>-<AWS region>-<zone>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,20}$", var.bucket_prefix))
    error_message = "bucket_prefix is 3-21 lowercase letters, digits and dashes, as module data_lake takes it."
  }
}

variable "client_cidrs" {
  description = "The CIDR blocks of the private subnets the jobs run in (module network's private_subnet_cidrs): HIPAA_MLOPS_OPENBAO_BOUND_CIDRS."
  type        = list(string)

  validation {
    condition     = length(var.client_cidrs) > 0 && alltrue([for cidr in var.client_cidrs : can(cidrhost(cidr, 0))])
    error_message = "client_cidrs lists at least one CIDR block."
  }
}

variable "image" {
  description = "The app image by digest (<repository URL>@sha256:...), the one the project's endpoint runs (module project's serving_image)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com/[a-z0-9/_-]+@sha256:[0-9a-f]{64}$", var.image))
    error_message = "image is a private ECR image by digest (repository@sha256:...), never a tag."
  }
}

variable "image_repository" {
  description = "Name of the image's ECR repository (module registry's app repository): the execution role pulls from it alone."
  type        = string
}

variable "workload_role_arn" {
  description = "The project's workload role (module project): the jobs' task role, as the worker runs as the workload identity."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.workload_role_arn))
    error_message = "workload_role_arn is an IAM role ARN."
  }
}

variable "kms_key_arn" {
  description = "The project's audit key (module project's kind audit) the jobs' log group is encrypted under."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn is a KMS key ARN."
  }
}

variable "control_plane" {
  description = "The region's control plane (module control_plane's outputs): the cluster the jobs run in, OpenBao's and MLflow's addresses, the servers' ports, the data directory's file system (the jobs' own access point is made on it; never the control plane's access point), and the security groups that admit the jobs and that they send to."
  type = object({
    cluster_arn                     = string
    openbao_address                 = string
    mlflow_address                  = string
    ports                           = map(number)
    file_system_id                  = string
    file_system_arn                 = string
    client_security_group_id        = string
    load_balancer_security_group_id = string
    efs_security_group_id           = string
  })

  validation {
    condition     = startswith(var.control_plane.openbao_address, "https://") && startswith(var.control_plane.mlflow_address, "https://")
    error_message = "The control plane is reached over TLS only."
  }

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:elasticfilesystem:[a-z0-9-]+:[0-9]{12}:file-system/fs-[0-9a-f]+$", var.control_plane.file_system_arn))
    error_message = "control_plane.file_system_arn is an EFS file system ARN."
  }
}

variable "vpc_id" {
  description = "The region's VPC (module network)."
  type        = string
}

variable "subnet_ids" {
  description = "The VPC's private subnets (module network), in at least two availability zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "At least two private subnets."
  }
}

variable "endpoint_security_group_id" {
  description = "The interface endpoints' security group (module network)."
  type        = string
}

variable "s3_prefix_list_id" {
  description = "The S3 gateway endpoint's prefix list (module network)."
  type        = string
}

variable "retrain_schedule" {
  description = "When the project retrains on its newest de-identified data: an EventBridge cron() in UTC. The default is the worker's retrain_cron (safeguards/settings.py), 0 3 * * mon: Mondays at 03:00."
  type        = string
  default     = "cron(0 3 ? * MON *)"

  validation {
    condition     = can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", var.retrain_schedule))
    error_message = "retrain_schedule is an EventBridge cron() expression with six fields."
  }
}

variable "monitor_schedule" {
  description = "How often the project's champion is monitored: an EventBridge rate() of at least 5 minutes. The default is the worker's monitor_interval_seconds (safeguards/settings.py), 300 s. EventBridge starts a run even while the last one is still running, which the worker never does: lengthen it if runs take longer."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition     = can(regex("^rate\\(([5-9]|[1-9][0-9]+) minutes\\)$|^rate\\(1 hour\\)$|^rate\\([1-9][0-9]* hours\\)$", var.monitor_schedule))
    error_message = "monitor_schedule is rate(N minutes) with N at least 5, or rate(1 hour) or rate(N hours)."
  }
}

variable "task_cpu" {
  description = "Fargate CPU units of each job's task."
  type        = number
  default     = 2048

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "task_cpu is one of Fargate's CPU sizes."
  }
}

variable "task_memory" {
  description = "Memory (MiB) of each job's task."
  type        = number
  default     = 8192

  validation {
    condition     = var.task_memory >= 512 && var.task_memory <= 122880
    error_message = "task_memory is 512 to 122880 MiB."
  }
}

variable "ephemeral_storage_gib" {
  description = "Ephemeral storage of each job's task (GiB), under the cluster's key: the scratch /tmp."
  type        = number
  default     = 30

  validation {
    condition     = var.ephemeral_storage_gib >= 21 && var.ephemeral_storage_gib <= 200
    error_message = "Fargate takes 21 to 200 GiB."
  }
}

variable "log_retention_days" {
  description = "Retention of the jobs' log group: six years by default, as 164.316(b)(2) keeps documentation."
  type        = number
  default     = 2192

  validation {
    condition     = contains([2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "CloudWatch Logs retention of at least six years: 2192, 2557, 2922, 3288 or 3653 days."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
