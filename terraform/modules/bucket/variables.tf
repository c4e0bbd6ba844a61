variable "name" {
  description = "The bucket's name (bucket names are global)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.name))
    error_message = "A bucket name is 3-63 lowercase letters, digits, dots and dashes."
  }
}

variable "region" {
  description = "The bucket's region; the provider passed must be configured for it."
  type        = string
}

variable "allowed_regions" {
  description = "Where the data may be (the project's regions, or the platform's): the bucket is refused elsewhere."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "The customer-managed key of every object: the default encryption, and the only key a write may name."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn is a KMS key ARN."
  }
}

variable "policy_documents" {
  description = "Further policy statements (IAM policy JSON documents, e.g. a service's writes), merged into the bucket's policy."
  type        = list(string)
  default     = []
}

variable "log_bucket" {
  description = "The bucket server access logs go to, or null for none."
  type        = string
  default     = null
}

variable "log_prefix" {
  description = "The prefix of this bucket's access logs in log_bucket."
  type        = string
  default     = ""
}

variable "object_lock_days" {
  description = "Object Lock in compliance mode for this many days (at least six years), or null for none."
  type        = number
  default     = null

  validation {
    condition     = var.object_lock_days == null || coalesce(var.object_lock_days, 0) >= 2192
    error_message = "Object Lock keeps objects at least six years (2192 days)."
  }
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object's earlier version is kept (recovery from a mistaken write)."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 30
    error_message = "Keep earlier versions at least 30 days."
  }
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
}
