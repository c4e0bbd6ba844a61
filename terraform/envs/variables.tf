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
  description = "The projects on the platform, as `hipaa-mlops promote --to aws` writes them into projects.<environment>.tfvars.json: each with its regions (primary first, among the two above), its contract's columns and, per region, the champion to serve there (the app image's immutable tag, the model archive and its SHA-256, the version the gate approved, the contract's fingerprint)."
  type = map(object({
    regions = list(string)
    contract_columns = list(object({
      name = string
      type = string
      role = string
    }))
    serving = map(object({
      image_tag            = string
      model_archive        = string
      model_sha256         = string
      model_version        = string
      gate                 = string
      contract_fingerprint = string
    }))
  }))
  default = {}

  validation {
    condition     = alltrue([for project in values(var.projects) : length(project.regions) > 0 && alltrue([for region in project.regions : contains([var.primary_region, var.secondary_region], region)])])
    error_message = "A project's regions are among the environment's two regions."
  }

  validation {
    condition     = alltrue([for project in values(var.projects) : alltrue([for region in keys(project.serving) : contains(project.regions, region)])])
    error_message = "A project serves only in its own regions."
  }

  validation {
    condition     = alltrue(flatten([for project in values(var.projects) : [for served in values(project.serving) : served.gate == "approved"]]))
    error_message = "Only a version the promotion gate approved is served."
  }
}

variable "control_plane_image_tag" {
  description = "The app image's immutable tag (sha256-<image ID>, as `make images` records it) the control plane runs, resolved to its digest in the primary region's registry. null: no control plane yet, and so no jobs."
  type        = string
  default     = null

  validation {
    condition     = var.control_plane_image_tag == null || can(regex("^sha256-[0-9a-f]{64}$", var.control_plane_image_tag))
    error_message = "control_plane_image_tag is the image's ID as a tag: sha256-<64 hex digits>."
  }
}

variable "scp_target_ids" {
  description = "Where to attach the service control policy (organization root, OUs or accounts; applied from the management account). Empty: the policy is only an output."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
