# A project's zones in one region: one bucket each, SSE-KMS under the project's key for
# that zone with S3 Bucket Keys, every public access blocked, versioned, a policy that
# denies plaintext transport, TLS below 1.2, any other encryption and any other key,
# server access logs, Object Lock on the audit zone, and replication only into the
# project's other regions.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  # Zone => the kind of key it is encrypted under, as the platform's zones are.
  zones = {
    "raw-phi"    = "phi"
    deidentified = "proj"
    synthetic    = "proj"
    artifacts    = "proj"
    models       = "models"
    audit        = "audit"
  }
  name = "${var.bucket_prefix}-${var.project}-${var.region}"
  tags = merge(var.tags, {
    "hipaa-mlops:project" = var.project
    "hipaa-mlops:region"  = var.region
  })
  replicated_zones = toset(flatten([for replica in values(var.replicas) : keys(replica.buckets)]))
  phi_columns      = { for c in var.contract_columns : c.name => c.role if contains(["identifier", "quasi_identifier"], c.role) }
}

resource "aws_s3_bucket" "zone" {
  #checkov:skip=CKV_AWS_144:Replication is per zone by design (raw-phi, audit, artifacts stay in-region; the secondary's buckets are the replicas); checkov cannot resolve for_each = local.replicated_zones
  for_each = local.zones

  bucket              = "${local.name}-${each.key}"
  object_lock_enabled = each.key == "audit"
  tags                = merge(local.tags, { "hipaa-mlops:zone" = each.key })

  lifecycle {
    precondition {
      condition     = contains(var.allowed_regions, var.region)
      error_message = "The project may not keep data in this region: it is not among allowed_regions."
    }

    precondition {
      condition     = data.aws_region.current.name == var.region
      error_message = "The provider passed to this module is configured for another region than var.region."
    }

    precondition {
      condition     = alltrue([for region in keys(var.replicas) : contains(var.allowed_regions, region) && region != var.region])
      error_message = "Zones replicate only into the project's other allowed regions."
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "zone" {
  for_each = local.zones

  bucket = aws_s3_bucket.zone[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "zone" {
  for_each = local.zones

  bucket                  = aws_s3_bucket.zone[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "zone" {
  for_each = local.zones

  bucket = aws_s3_bucket.zone[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "zone" {
  for_each = local.zones

  bucket = aws_s3_bucket.zone[each.key].id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_keys[each.value]
    }
  }
}

# Housekeeping: unfinished uploads go after a week, overwritten versions after
# `noncurrent_version_days` (the audit zone's stay locked for their six years regardless).
resource "aws_s3_bucket_lifecycle_configuration" "zone" {
  for_each = local.zones

  bucket = aws_s3_bucket.zone[each.key].id

  rule {
    id     = "housekeeping"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.zone]
}

# Every object event to EventBridge: what a detective control or a pipeline listens to.
resource "aws_s3_bucket_notification" "zone" {
  for_each = local.zones

  bucket      = aws_s3_bucket.zone[each.key].id
  eventbridge = true
}

data "aws_iam_policy_document" "zone" {
  for_each = aws_s3_bucket.zone

  statement {
    sid       = "DenyPlaintextTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyTlsBelow12"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }

  # A write may name SSE-KMS with the zone's key, or nothing (the default applies).
  statement {
    sid       = "DenyOtherEncryption"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  statement {
    sid       = "DenyOtherKeys"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [var.kms_keys[local.zones[each.key]]]
    }
  }

  statement {
    sid       = "DenyCustomerKeys"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-customer-algorithm"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "zone" {
  for_each = aws_s3_bucket.zone

  bucket = each.value.id
  policy = data.aws_iam_policy_document.zone[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.zone]
}

# Compliance mode: nobody, the account root included, shortens or lifts it.
resource "aws_s3_bucket_object_lock_configuration" "audit" {
  bucket = aws_s3_bucket.zone["audit"].id

  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.audit_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.zone]
}

# Server access logs: S3 delivers them only into a bucket under SSE-S3 (not SSE-KMS).
# They hold requesters, operations and object keys, never object data; object keys must
# never carry identifiers (the platform's keys are dataset names and random ids).
resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_145:S3 server access logging delivers only into a target bucket under SSE-S3; SSE-KMS is not supported there
  #checkov:skip=CKV_AWS_144:Server access logs stay in their region; replicating them adds no data protection
  #checkov:skip=CKV2_AWS_62:Event notifications on log delivery would only be noise
  bucket = "${local.name}-access-logs"
  tags   = merge(local.tags, { "hipaa-mlops:zone" = "access-logs" })
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "keep-six-years"
    status = "Enabled"

    filter {}

    expiration {
      days = var.audit_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "DenyPlaintextTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "S3ServerAccessLogs"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for bucket in aws_s3_bucket.zone : bucket.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

resource "aws_s3_bucket_logging" "zone" {
  for_each = local.zones

  bucket        = aws_s3_bucket.zone[each.key].id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.key}/"
}
