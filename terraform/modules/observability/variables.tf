variable "project" {
  description = "The project observed (3-32 lowercase letters, digits and dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.project))
    error_message = "A project name is 3-32 lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "endpoint_name" {
  description = "The project's SageMaker endpoint (module endpoint)."
  type        = string
}

variable "kms_key_arn" {
  description = "The customer-managed key (module kms, kind audit) for the log groups, the alarm topic and the Prometheus workspace."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/", var.kms_key_arn))
    error_message = "kms_key_arn is a KMS key ARN."
  }
}

variable "log_retention_days" {
  description = "Retention of every log group: six years by default, as 164.316(b)(2) keeps documentation."
  type        = number
  default     = 2192

  validation {
    condition     = contains([2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "CloudWatch Logs retention of at least six years: 2192, 2557, 2922, 3288 or 3653 days."
  }
}

variable "alert_rules" {
  description = "The stack's Prometheus alert rules (the contents of monitoring/alerts.yml), loaded into Amazon Managed Prometheus as they are."
  type        = string
}

variable "error_rate_threshold" {
  description = "ServingErrorRate: the share of invocations answered with a server error (as monitoring/alerts.yml)."
  type        = number
  default     = 0.01
}

variable "latency_p99_seconds" {
  description = "ServingLatencyHigh: the p99 model latency, in seconds (as monitoring/alerts.yml)."
  type        = number
  default     = 0.5
}

variable "managed_prometheus" {
  description = "Also an Amazon Managed Prometheus workspace with the alert rules. Off by default: the service is not on the dated list of HIPAA-eligible services this project keeps (terraform/modules/compliance/eligible_services.json); turn it on only once AWS's current list names it and your BAA covers it."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
