variable "name" {
  description = "Name of the network (an environment, e.g. hipaa-mlops-production); prefixes every resource's Name tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,40}$", var.name))
    error_message = "name is 3-41 lowercase letters, digits and dashes."
  }
}

variable "region" {
  description = "The AWS region of the network; the provider passed to the module must be configured for it."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's IPv4 range."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block))
    error_message = "cidr_block is an IPv4 CIDR."
  }
}

variable "availability_zones" {
  description = "Availability zones of the private subnets: at least two, so an endpoint and its jobs survive the loss of one."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "At least two availability zones."
  }
}

variable "flow_log_kms_key_arn" {
  description = "The customer-managed key (module kms, kind audit) the flow logs' log group is encrypted under."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.flow_log_kms_key_arn))
    error_message = "flow_log_kms_key_arn is a KMS key ARN."
  }
}

variable "log_retention_days" {
  description = "Retention of the flow logs: six years by default, as 164.316(b)(2) keeps documentation."
  type        = number
  default     = 2192

  validation {
    condition     = contains([2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "CloudWatch Logs retention of at least six years: 2192, 2557, 2922, 3288 or 3653 days."
  }
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints inside the VPC (private DNS on), so workloads need no route to the internet; ecs, ecs-agent and ecs-telemetry for the control plane's and the jobs' Fargate tasks."
  type        = list(string)
  default     = ["sagemaker.api", "sagemaker.runtime", "ecr.api", "ecr.dkr", "kms", "secretsmanager", "logs", "sts", "ecs", "ecs-agent", "ecs-telemetry"]
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
