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
  description = "Prefix of every bucket name (bucket names are global): the lake's are <prefix>-<project>-<AWS region>-<zone>, and the jobs find them by it (HIPAA_MLOPS_S3_BUCKET_PREFIX)."
  type        = string

  # As module data_lake takes it, within what the app takes (safeguards.settings:
  # s3_bucket_prefix, ^[a-z0-9][a-z0-9-]{1,30}$): a prefix either would refuse fails here.
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,20}$", var.bucket_prefix))
    error_message = "bucket_prefix is 3-21 lowercase letters, digits and dashes, starting with a letter or digit."
  }
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

variable "database_ca_bundle" {
  description = "With a control plane: the PEM text of the RDS CA bundle of the primary region, public data from AWS's trust store, e.g. TF_VAR_database_ca_bundle=\"$(curl -fsS https://truststore.pki.rds.amazonaws.com/us-east-1/us-east-1-bundle.pem)\". The servers verify the database with it. null: no control plane yet."
  type        = string
  default     = null

  validation {
    condition     = var.database_ca_bundle == null || can(regex("-----BEGIN CERTIFICATE-----", var.database_ca_bundle))
    error_message = "database_ca_bundle is PEM text holding at least one certificate."
  }
}

variable "control_plane_secret_writers" {
  description = "IAM role ARNs of the operators who put the first values of the control plane's secrets (OpenBao's seal key, the servers' database roles): through Secrets Manager only, never able to decrypt them (module kms's secret_writers of the control plane's and the unseal key). Empty: nobody can put them."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.control_plane_secret_writers : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "control_plane_secret_writers lists IAM role ARNs."
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
