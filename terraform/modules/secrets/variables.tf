variable "project" {
  description = "The project the secrets belong to (3-32 lowercase letters, digits and dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.project))
    error_message = "A project name is 3-32 lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "secrets" {
  description = "Secret name => description, e.g. the MLflow passwords of the project's users. Values are never set here: the rotation function writes them, so no secret reaches Terraform state."
  type        = map(string)

  validation {
    condition     = alltrue([for name in keys(var.secrets) : can(regex("^[a-z][a-z0-9-]{1,40}$", name))])
    error_message = "A secret name is 2-41 lowercase letters, digits and dashes."
  }
}

variable "kms_key_arn" {
  description = "The project's customer-managed key (module kms, kind proj) the secrets are encrypted under."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn is a KMS key ARN (not the AWS-managed aws/secretsmanager key)."
  }
}

variable "readers" {
  description = "IAM role ARNs that may read the secrets (the project's workloads); nobody else."
  type        = list(string)

  validation {
    condition     = length(var.readers) > 0 && alltrue([for arn in var.readers : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "readers lists at least one IAM role ARN."
  }
}

variable "secret_readers" {
  description = "Secret name => the IAM role ARNs that read that secret instead of `readers`: a secret that one role alone may read."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for roles in values(var.secret_readers) : length(roles) > 0 && alltrue([for arn in roles : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])])
    error_message = "secret_readers maps a secret to at least one IAM role ARN."
  }
}

variable "rotation_lambda_arn" {
  description = "The Lambda function that rotates the secrets (it generates and writes each value)."
  type        = string
}

variable "rotation_days" {
  description = "Days between rotations."
  type        = number
  default     = 30

  validation {
    condition     = var.rotation_days >= 1 && var.rotation_days <= 90
    error_message = "Rotate at least every 90 days."
  }
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can still be restored."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every secret."
  type        = map(string)
  default     = {}
}
