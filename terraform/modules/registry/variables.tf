variable "name" {
  description = "Repository name prefix (an environment, e.g. hipaa-mlops-production); each image is <name>/<image>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,40}$", var.name))
    error_message = "name is 3-41 lowercase letters, digits and dashes."
  }
}

variable "images" {
  description = "The images the stack runs, one repository each (as `make images` builds them)."
  type        = list(string)
  default     = ["app", "seaweedfs", "postgres", "prometheus"]
}

variable "kms_key_arn" {
  description = "The customer-managed key the repositories' layers are encrypted under."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn is a KMS key ARN."
  }
}

variable "pullers" {
  description = "IAM role ARNs that may pull (SageMaker execution roles, job roles); nobody else. Empty: no repository policy, and no role may pull."
  type        = list(string)

  validation {
    condition     = alltrue([for arn in var.pullers : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "pullers lists IAM role ARNs."
  }
}

variable "untagged_days" {
  description = "Days after which an untagged image is expired (tags are immutable, so a digest that passed stays tagged)."
  type        = number
  default     = 14
}

variable "tags" {
  description = "Tags for every repository."
  type        = map(string)
  default     = {}
}
