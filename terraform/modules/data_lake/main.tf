# A project's zones in one region: one bucket each (module bucket), under the project's
# key for that zone, with server access logs into a bucket of their own, Object Lock on
# the audit zone, and replication only into the project's other regions.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

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

module "zone" {
  source   = "../bucket"
  for_each = local.zones

  name             = "${local.name}-${each.key}"
  region           = var.region
  allowed_regions  = var.allowed_regions
  kms_key_arn      = var.kms_keys[each.value]
  log_bucket       = aws_s3_bucket.access_logs.id
  log_prefix       = "${each.key}/"
  object_lock_days = each.key == "audit" ? var.audit_retention_days : null
  tags             = merge(local.tags, { "hipaa-mlops:zone" = each.key })
}

# Server access logs: S3 delivers them only into a bucket under SSE-S3 (not SSE-KMS).
# They hold requesters, operations and object keys, never object data; object keys must
# never carry identifiers (the platform's keys are dataset names and random ids).
resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_145:S3 server access logging delivers only into a target bucket under SSE-S3; SSE-KMS is not supported there
  #checkov:skip=CKV_AWS_144:Server access logs stay in their region; replicating them adds no data protection
  #checkov:skip=CKV2_AWS_62:Event notifications on log delivery would only be noise
  #checkov:skip=CKV_AWS_18:This is the access-log bucket: logging its own access into itself would loop, and another bucket would need a log bucket of its own; CloudTrail records its object reads and writes
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
      values   = [for zone in keys(local.zones) : "arn:${data.aws_partition.current.partition}:s3:::${local.name}-${zone}"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
