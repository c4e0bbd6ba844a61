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

variable "image_repository_arn" {
  description = "The ECR repository of the serving and jobs image (module registry's app repository)."
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
  description = "The champion to serve here (image by digest, model archive, the version the gate passed); null: no endpoint in this region."
  type = object({
    image          = string
    model_data_url = string
    model_version  = string
  })
  default = null
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
