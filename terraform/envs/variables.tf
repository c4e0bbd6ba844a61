variable "environment" {
  description = "staging or production (one state per environment)."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment is staging or production."
  }
}

variable "primary_region" {
  description = "The primary region: the registry, and each project's primary instance."
  type        = string
  default     = "us-east-1"
}

variable "secondary_region" {
  description = "The second region, for projects that may keep data in it."
  type        = string
  default     = "eu-central-1"
}

variable "bucket_prefix" {
  description = "Prefix of every bucket name (bucket names are global)."
  type        = string
}

variable "key_administrators" {
  description = "IAM role ARNs that manage keys; the role Terraform runs as must be one."
  type        = list(string)
}

variable "rotation_lambda_arns" {
  description = "Region => the secrets rotation function in that region."
  type        = map(string)
}

variable "projects" {
  description = "The projects on the platform (given in a variables file of their own, e.g. projects.auto.tfvars.json): each with its regions (primary first, among the two above), its contract's columns and, per region, the champion to serve there."
  type = map(object({
    regions = list(string)
    contract_columns = list(object({
      name = string
      type = string
      role = string
    }))
    serving = map(object({
      image          = string
      model_data_url = string
      model_version  = string
    }))
  }))
  default = {}

  validation {
    condition     = alltrue([for project in values(var.projects) : length(project.regions) > 0 && alltrue([for region in keys(project.serving) : contains(project.regions, region)])])
    error_message = "A project serves only in its own regions."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
