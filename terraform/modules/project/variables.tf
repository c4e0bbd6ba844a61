variable "project" {
  description = "The project (a team's model): 3-32 lowercase letters, digits and dashes, as on the platform."
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
  description = "The region of this instance of the project; the provider passed must be configured for it."
  type        = string
}

variable "allowed_regions" {
  description = "The project's regions, primary first (its residency on the platform)."
  type        = list(string)

  validation {
    condition     = length(var.allowed_regions) > 0 && length(distinct(var.allowed_regions)) == length(var.allowed_regions)
    error_message = "allowed_regions lists at least one region, each once."
  }
}

variable "bucket_prefix" {
  description = "Prefix of the project's bucket names (module data_lake)."
  type        = string
}

variable "key_administrators" {
  description = "IAM role ARNs that manage the project's keys (the role Terraform runs as among them)."
  type        = list(string)
}

variable "network" {
  description = "The region's network (module network): private subnets and the workload security group."
  type = object({
    subnet_ids                 = list(string)
    workload_security_group_id = string
  })
}

variable "image_repository" {
  description = "Name of the ECR repository of the serving and jobs image (module registry's app repository), the same in every region the registry replicates to."
  type        = string
}

variable "replicas" {
  description = "The project's other regions to replicate zones into (module data_lake's replicas)."
  type = map(object({
    buckets  = map(string)
    kms_keys = map(string)
  }))
  default = {}
}

variable "contract_columns" {
  description = "The project's contract columns, for the Lake Formation catalogue."
  type = list(object({
    name = string
    type = string
    role = string
  }))
  default = []
}

variable "serving" {
  description = "The champion to serve here, as `hipaa-mlops promote --to aws` writes it: the app image's immutable tag (sha256-<image ID>), the model archive (a path from the root module) and its SHA-256, the version and its gate decision, the contract's fingerprint. null: no endpoint in this region."
  type = object({
    image_tag            = string
    model_archive        = string
    model_sha256         = string
    model_version        = string
    gate                 = string
    contract_fingerprint = string
  })
  default = null

  validation {
    condition     = var.serving == null || can(regex("^sha256-[0-9a-f]{64}$", var.serving.image_tag))
    error_message = "serving.image_tag is the image's ID as a tag: sha256-<64 hex digits>."
  }

  validation {
    condition     = var.serving == null || var.serving.gate == "approved"
    error_message = "Only a version the promotion gate approved is served."
  }

  validation {
    condition     = var.serving == null || can(regex("^[0-9a-f]{64}$", var.serving.model_sha256))
    error_message = "serving.model_sha256 is the archive's SHA-256 (64 hex digits)."
  }
}

variable "alert_rules" {
  description = "The stack's alert rules (monitoring/alerts.yml)."
  type        = string
}

variable "rotation_lambda_arn" {
  description = "The function that rotates the project's secrets."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
