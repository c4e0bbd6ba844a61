variable "project" {
  description = "The project the endpoint serves (3-32 lowercase letters, digits and dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.project))
    error_message = "A project name is 3-32 lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "environment" {
  description = "staging or production: production runs at least two instances across availability zones."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment is staging or production."
  }
}

variable "image" {
  description = "The serving image by digest (<repository URL>@sha256:...), the one that passed the tests."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com/[a-z0-9/_-]+@sha256:[0-9a-f]{64}$", var.image))
    error_message = "image is a private ECR image by digest (repository@sha256:...), never a tag."
  }
}

variable "model_data_url" {
  description = "S3 URL of the champion's model archive in the project's models zone (read into /opt/ml/model)."
  type        = string

  validation {
    condition     = startswith(var.model_data_url, "s3://")
    error_message = "model_data_url is an s3:// URL."
  }
}

variable "model_version" {
  description = "The registry version the archive holds, which the gate passed (a tag on the model, for lineage)."
  type        = string
}

variable "execution_role_arn" {
  description = "The role SageMaker runs the model as: pulls the image, reads the models zone, decrypts with the project's models key."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (module network), in at least two availability zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "At least two private subnets."
  }
}

variable "security_group_ids" {
  description = "Security groups of the model's containers (module network's workload group)."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) > 0
    error_message = "At least one security group."
  }
}

variable "kms_key_arn" {
  description = "The project's customer-managed key (module kms) for the instances' storage volumes and any capture."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn is a KMS key ARN."
  }
}

variable "instance_type" {
  description = "The instance type of the variant."
  type        = string
  default     = "ml.c6i.large"
}

variable "min_instances" {
  description = "Fewest instances; production needs at least two (SageMaker spreads them across the subnets' zones)."
  type        = number
  default     = 2

  validation {
    condition     = var.min_instances >= 1
    error_message = "At least one instance."
  }
}

variable "max_instances" {
  description = "Most instances the autoscaling may run."
  type        = number
  default     = 4
}

variable "invocations_per_instance" {
  description = "Target of the autoscaling: invocations per instance per minute."
  type        = number
  default     = 3000
}

variable "capture_destination" {
  description = "null (the default): no data capture. An s3:// prefix in the project's artifacts zone: capture requests' features and responses there under the project's key; the image captures no identifier (it refuses requests that carry one)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
