# What the account proves about itself: AWS Config recording every resource and evaluating
# the "Operational Best Practices for HIPAA Security" conformance pack (AWS's template at a
# pinned commit, refused unless its SHA-256 matches), a multi-region CloudTrail with log
# file validation under a customer key, and a service control policy that denies services
# outside the HIPAA-eligible list and regions outside the platform's.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account  = data.aws_caller_identity.current.account_id
  services = jsondecode(file("${path.module}/eligible_services.json"))
  # AWS's template, pinned; `make conformance-pack` fetches it (AWS's text, not ours).
  pack       = jsondecode(file("${path.module}/conformance_pack.json"))
  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket_name}"
  trail_arn  = "arn:${data.aws_partition.current.partition}:cloudtrail:${data.aws_region.current.name}:${local.account}:trail/${var.name}"
}

# -- the evidence bucket (module bucket): CloudTrail's log files and Config's snapshots --

module "evidence" {
  source = "../bucket"

  name             = var.bucket_name
  region           = var.region
  allowed_regions  = var.allowed_regions
  kms_key_arn      = var.kms_key_arn
  object_lock_days = var.retention_days
  policy_documents = [data.aws_iam_policy_document.writers.json]
  tags             = var.tags
}

# Only CloudTrail (this trail) and Config (this account) write, each under its own prefix.
data "aws_iam_policy_document" "writers" {
  statement {
    sid       = "ServicesReadTheAcl"
    actions   = ["s3:GetBucketAcl", "s3:ListBucket"]
    resources = [local.bucket_arn]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com", "config.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }

  statement {
    sid       = "TrailWritesItsLogs"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/cloudtrail/AWSLogs/${local.account}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  statement {
    sid       = "ConfigWritesItsSnapshots"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/config/AWSLogs/${local.account}/Config/*"]

    principals {
      type        = "Service"
      identifiers = ["config.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# -- CloudTrail (`create_trail`, in one region): every region, every management event, the
# platform's object reads and writes, digest files for validation, also into an encrypted
# log group kept six years --------------------------------------------------------------

resource "aws_cloudwatch_log_group" "trail" {
  count = var.create_trail ? 1 : 0

  name              = "/hipaa-mlops/cloudtrail/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "trail_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }
}

resource "aws_iam_role" "trail" {
  count = var.create_trail ? 1 : 0

  name               = "${var.name}-cloudtrail-logs"
  assume_role_policy = data.aws_iam_policy_document.trail_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "trail_logs" {
  count = var.create_trail ? 1 : 0

  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.trail[0].arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "trail" {
  count = var.create_trail ? 1 : 0

  name   = "write-its-log-group"
  role   = aws_iam_role.trail[0].id
  policy = data.aws_iam_policy_document.trail_logs[0].json
}

resource "aws_cloudtrail" "this" {
  #checkov:skip=CKV_AWS_252:A notification per log file adds no control: the log group and AWS Config watch the trail
  count = var.create_trail ? 1 : 0

  name                          = var.name
  s3_bucket_name                = module.evidence.id
  s3_key_prefix                 = "cloudtrail"
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  kms_key_id                    = var.kms_key_arn
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.trail[0].arn}:*"
  cloud_watch_logs_role_arn     = aws_iam_role.trail[0].arn
  tags                          = var.tags

  advanced_event_selector {
    name = "Management events"

    field_selector {
      field  = "eventCategory"
      equals = ["Management"]
    }
  }

  advanced_event_selector {
    name = "Object reads and writes in the platform's buckets"

    field_selector {
      field  = "eventCategory"
      equals = ["Data"]
    }

    field_selector {
      field  = "resources.type"
      equals = ["AWS::S3::Object"]
    }

    field_selector {
      field       = "resources.ARN"
      starts_with = ["arn:${data.aws_partition.current.partition}:s3:::${var.bucket_prefix}"]
    }
  }

  depends_on = [module.evidence]
}

# -- AWS Config and the HIPAA Security conformance pack ------------------------------------

resource "aws_iam_service_linked_role" "config" {
  count            = var.create_config_service_linked_role ? 1 : 0
  aws_service_name = "config.amazonaws.com"
}

resource "aws_config_configuration_recorder" "this" {
  #checkov:skip=CKV2_AWS_48:Every supported resource is recorded; global ones (IAM) in one region only (record_global_resources), or each would be recorded twice
  name     = var.name
  role_arn = "arn:${data.aws_partition.current.partition}:iam::${local.account}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"

  recording_group {
    all_supported                 = true
    include_global_resource_types = var.record_global_resources
  }

  depends_on = [aws_iam_service_linked_role.config]
}

resource "aws_config_delivery_channel" "this" {
  name           = var.name
  s3_bucket_name = module.evidence.id
  s3_key_prefix  = "config"
  s3_kms_key_arn = var.kms_key_arn

  snapshot_delivery_properties {
    delivery_frequency = "TwentyFour_Hours"
  }

  depends_on = [aws_config_configuration_recorder.this, module.evidence]
}

resource "aws_config_configuration_recorder_status" "this" {
  name       = aws_config_configuration_recorder.this.name
  is_enabled = true
  depends_on = [aws_config_delivery_channel.this]
}

resource "aws_config_conformance_pack" "hipaa" {
  name          = "hipaa-security"
  template_body = file(var.conformance_pack_path)

  lifecycle {
    precondition {
      condition     = filesha256(var.conformance_pack_path) == local.pack.sha256
      error_message = "The conformance pack is not AWS's template at the pinned commit (its SHA-256 differs): run make conformance-pack."
    }
  }

  depends_on = [aws_config_configuration_recorder_status.this]
}

# -- The service control policy ------------------------------------------------------------

data "aws_iam_policy_document" "scp" {
  statement {
    sid         = "OnlyHipaaEligibleServices"
    effect      = "Deny"
    not_actions = sort([for prefix in concat(keys(local.services.eligible), keys(local.services.control_plane)) : "${prefix}:*"])
    resources   = ["*"]
  }

  statement {
    sid         = "OnlyThePlatformsRegions"
    effect      = "Deny"
    not_actions = sort([for prefix in keys(local.services.control_plane) : "${prefix}:*"])
    resources   = ["*"]

    condition {
      test     = "StringNotEquals"
      variable = "aws:RequestedRegion"
      values   = var.allowed_regions
    }
  }
}

resource "aws_organizations_policy" "scp" {
  count       = length(var.scp_target_ids) > 0 ? 1 : 0
  name        = "${var.name}-hipaa"
  description = "hipaa-mlops: HIPAA-eligible services only, in the platform's regions only."
  type        = "SERVICE_CONTROL_POLICY"
  content     = data.aws_iam_policy_document.scp.json
  tags        = var.tags
}

resource "aws_organizations_policy_attachment" "scp" {
  for_each  = length(var.scp_target_ids) > 0 ? toset(var.scp_target_ids) : toset([])
  policy_id = aws_organizations_policy.scp[0].id
  target_id = each.value
}
