variable "name" {
  description = "Name of the trail, the Config recorder and the policy (e.g. hipaa-mlops-production)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,40}$", var.name))
    error_message = "name is 3-41 lowercase letters, digits and dashes."
  }
}

variable "region" {
  description = "The region of this instance; the provider passed must be configured for it."
  type        = string
}

variable "bucket_name" {
  description = "The evidence bucket: CloudTrail's log files and AWS Config's snapshots (bucket names are global)."
  type        = string
}

variable "bucket_prefix" {
  description = "The prefix of the platform's bucket names: CloudTrail records every object read and write under it."
  type        = string
}

variable "kms_key_arn" {
  description = "The customer-managed key of the evidence (module kms with evidence and cloudwatch_logs on)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn is a KMS key ARN."
  }
}

variable "allowed_regions" {
  description = "The platform's regions: the service control policy denies every other (identity and organization services aside)."
  type        = list(string)

  validation {
    condition     = length(var.allowed_regions) > 0
    error_message = "At least one region."
  }
}

variable "conformance_pack_path" {
  description = "AWS's \"Operational Best Practices for HIPAA Security\" template as `make conformance-pack` fetches it at the pinned commit; refused unless its SHA-256 is the pinned one."
  type        = string
}

variable "create_trail" {
  description = "Whether to create the multi-region trail here: true in exactly one region (it records every region)."
  type        = bool
  default     = true
}

variable "record_global_resources" {
  description = "Whether this region's recorder also records global resources (IAM): true in exactly one region."
  type        = bool
  default     = true
}

variable "create_config_service_linked_role" {
  description = "Whether to create AWS Config's service-linked role (once per account; false where it exists)."
  type        = bool
  default     = true
}

variable "scp_target_ids" {
  description = "Organization roots, OUs or accounts to attach the service control policy to (applied from the management account). Empty: the policy is only an output."
  type        = list(string)
  default     = []
}

variable "retention_days" {
  description = "Object Lock (compliance mode) on the evidence: at least six years (45 CFR 164.316(b)(2)(i))."
  type        = number
  default     = 2192

  validation {
    condition     = var.retention_days >= 2192
    error_message = "Evidence is kept at least six years (2192 days)."
  }
}

variable "log_retention_days" {
  description = "Retention of the trail's log group: six years or more."
  type        = number
  default     = 2192

  validation {
    condition     = contains([2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days is one of CloudWatch's values of six years or more: 2192, 2557, 2922, 3288, 3653."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
