variable "project" {
  description = "The project whose zones these buckets are (3-32 lowercase letters, digits and dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.project))
    error_message = "A project name is 3-32 lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "region" {
  description = "The AWS region of these buckets; the provider passed to the module must be configured for it."
  type        = string
}

variable "allowed_regions" {
  description = "The regions the project may keep data in (its residency, primary first)."
  type        = list(string)

  validation {
    condition     = length(var.allowed_regions) > 0 && length(distinct(var.allowed_regions)) == length(var.allowed_regions)
    error_message = "allowed_regions lists at least one region, each once."
  }
}

variable "bucket_prefix" {
  description = "Prefix of every bucket name (bucket names are global): <prefix>-<project>-<region>-<zone>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,20}$", var.bucket_prefix))
    error_message = "bucket_prefix is 3-21 lowercase letters, digits and dashes."
  }
}

variable "kms_keys" {
  description = "ARNs of the project's customer-managed keys in this region (module kms): proj for de-identified, synthetic and artifacts, phi for raw PHI, models for MLflow artifacts, audit for the audit zone."
  type = object({
    proj   = string
    phi    = string
    models = string
    audit  = string
  })

  validation {
    condition     = alltrue([for arn in values(var.kms_keys) : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", arn))])
    error_message = "Every kms_keys entry is a KMS key ARN (not an alias, not an AWS-managed key)."
  }
}

variable "audit_retention_days" {
  description = "Object Lock retention of the audit zone, in compliance mode (no one can shorten it). Six years, as 164.316(b)(2) keeps documentation."
  type        = number
  default     = 2192

  validation {
    condition     = var.audit_retention_days >= 2192
    error_message = "The audit zone keeps objects at least six years (2192 days)."
  }
}

variable "replicas" {
  description = "Other regions of the project to replicate zones into: region => the destination buckets (zone => bucket ARN) and the destination region's key ARNs (zone => key ARN). Only regions in allowed_regions."
  type = map(object({
    buckets  = map(string)
    kms_keys = map(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for region, replica in var.replicas : length(setsubtract(keys(replica.buckets), keys(replica.kms_keys))) == 0])
    error_message = "Each replica names a destination key for every bucket it replicates into."
  }
}

variable "contract_columns" {
  description = "The project's contract columns (from its contract): name, Glue type and role. The raw-PHI zone's Glue table has these columns; Lake Formation tags the identifier and quasi-identifier ones as PHI."
  type = list(object({
    name = string
    type = string
    role = string
  }))
  default = []

  validation {
    condition     = alltrue([for c in var.contract_columns : contains(["identifier", "quasi_identifier", "feature", "label", "site"], c.role)])
    error_message = "A column's role is identifier, quasi_identifier, feature, label or site."
  }
}

variable "phi_tag_key" {
  description = "The Lake Formation LF-tag key for PHI columns, defined once per account (values identifier and quasi_identifier)."
  type        = string
  default     = "hipaa-mlops-phi"
}

variable "lake_formation_role_arn" {
  description = "The role Lake Formation reads the registered zones with (it must be allowed to decrypt with their keys); null: no Lake Formation registration."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every bucket, on top of project, region and zone."
  type        = map(string)
  default     = {}
}
