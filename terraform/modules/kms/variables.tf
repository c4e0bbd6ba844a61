variable "project" {
  description = "The project the key belongs to (a project name of the platform: 3-32 lowercase letters, digits and dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.project))
    error_message = "A project name is 3-32 lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "region" {
  description = "The AWS region this key lives in; the provider passed to the module must be configured for it."
  type        = string
}

variable "allowed_regions" {
  description = "The regions the project may keep data in (its residency, primary first): the key is created only in one of them."
  type        = list(string)

  validation {
    condition     = length(var.allowed_regions) > 0 && length(distinct(var.allowed_regions)) == length(var.allowed_regions)
    error_message = "allowed_regions lists at least one region, each once."
  }
}

variable "kind" {
  description = "Which of the project's keys: proj (de-identified and synthetic data, artifacts), phi (raw PHI), models (MLflow artifacts), audit (audit logs); for the platform itself also evidence (CloudTrail and AWS Config, module compliance), control-plane (the control plane's file system, database, secrets, task storage and logs, module control_plane) and unseal (the secret holding OpenBao's static seal key, module control_plane)."
  type        = string
  default     = "proj"

  validation {
    condition     = contains(["proj", "phi", "models", "audit", "evidence", "control-plane", "unseal"], var.kind)
    error_message = "kind is one of proj, phi, models, audit, evidence, control-plane, unseal."
  }
}

variable "administrators" {
  description = "IAM role ARNs that manage the key (rotate, schedule deletion); they cannot use it."
  type        = list(string)

  validation {
    condition     = length(var.administrators) > 0 && alltrue([for arn in var.administrators : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "administrators lists at least one IAM role ARN."
  }
}

variable "users" {
  description = "IAM role ARNs that encrypt and decrypt with the key (the project's workloads). Nobody else may, the account root included."
  type        = list(string)

  validation {
    condition     = length(var.users) > 0 && alltrue([for arn in var.users : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "users lists at least one IAM role ARN."
  }
}

variable "secret_writers" {
  description = "IAM role ARNs that may only put values into Secrets Manager secrets under the key (kms:GenerateDataKey, through Secrets Manager in this region) and never decrypt them: the operator who puts the first value of a secret Terraform never sets."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.secret_writers : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "secret_writers lists IAM role ARNs."
  }
}

variable "service_principals" {
  description = "AWS services that may use the key on the users' behalf, through their own service (kms:ViaService), e.g. s3 and sagemaker; empty: no grants at all."
  type        = list(string)
  default     = ["s3", "sagemaker", "secretsmanager", "logs"]
}

variable "cloudwatch_logs" {
  description = "Whether CloudWatch Logs in this region may use the key for this account's log groups (the audit key, for encrypted log groups)."
  type        = bool
  default     = false
}

variable "fargate_cluster" {
  description = "The ECS cluster (its name) whose Fargate tasks' ephemeral storage is encrypted under the key (module control_plane); null: Fargate may not use it."
  type        = string
  default     = null

  validation {
    condition     = var.fargate_cluster == null || can(regex("^[a-zA-Z0-9_-]{1,255}$", var.fargate_cluster))
    error_message = "fargate_cluster is an ECS cluster name."
  }
}

variable "evidence" {
  description = "Whether this account's CloudTrail trails and AWS Config may write under the key (the evidence key of module compliance)."
  type        = bool
  default     = false
}

variable "deletion_window_in_days" {
  description = "Days between scheduling the key's deletion and its destruction (crypto-shredding)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "KMS allows 7 to 30 days."
  }
}

variable "tags" {
  description = "Tags for the key, on top of project, region and kind."
  type        = map(string)
  default     = {}
}
