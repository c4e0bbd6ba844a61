# Replication into the project's other regions only (refused at plan into any other),
# each replica encrypted under the destination region's own key: no key crosses a region.

data "aws_iam_policy_document" "replication_trust" {
  count = length(var.replicas) > 0 ? 1 : 0

  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "replication" {
  count = length(var.replicas) > 0 ? 1 : 0

  name               = "${local.name}-replication"
  assume_role_policy = data.aws_iam_policy_document.replication_trust[0].json
  tags               = local.tags
}

data "aws_iam_policy_document" "replication" {
  count = length(var.replicas) > 0 ? 1 : 0

  statement {
    sid       = "ReadSource"
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [for zone in local.replicated_zones : module.zone[zone].arn]
  }

  statement {
    sid       = "ReadSourceVersions"
    actions   = ["s3:GetObjectVersionAcl", "s3:GetObjectVersionForReplication", "s3:GetObjectVersionTagging"]
    resources = [for zone in local.replicated_zones : "${module.zone[zone].arn}/*"]
  }

  statement {
    sid       = "WriteReplicas"
    actions   = ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"]
    resources = flatten([for replica in values(var.replicas) : [for arn in values(replica.buckets) : "${arn}/*"]])
  }

  statement {
    sid       = "DecryptSource"
    actions   = ["kms:Decrypt"]
    resources = distinct([for zone in local.replicated_zones : var.kms_keys[local.zones[zone]]])

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = var.replicas

    content {
      sid       = "EncryptIn${replace(title(replace(statement.key, "-", " ")), " ", "")}"
      actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
      resources = distinct(values(statement.value.kms_keys))

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${statement.key}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "replication" {
  count = length(var.replicas) > 0 ? 1 : 0

  name   = "replicate-into-allowed-regions"
  role   = aws_iam_role.replication[0].id
  policy = data.aws_iam_policy_document.replication[0].json
}

resource "aws_s3_bucket_replication_configuration" "zone" {
  for_each = local.replicated_zones

  bucket = module.zone[each.key].id
  role   = aws_iam_role.replication[0].arn

  dynamic "rule" {
    for_each = { for region, replica in var.replicas : region => replica if contains(keys(replica.buckets), each.key) }

    content {
      id       = "into-${rule.key}"
      priority = index(keys(var.replicas), rule.key)
      status   = "Enabled"

      filter {}

      delete_marker_replication {
        status = "Enabled"
      }

      source_selection_criteria {
        sse_kms_encrypted_objects {
          status = "Enabled"
        }
      }

      destination {
        bucket        = rule.value.buckets[each.key]
        storage_class = "STANDARD"

        encryption_configuration {
          replica_kms_key_id = rule.value.kms_keys[each.key]
        }
      }
    }
  }

  depends_on = [module.zone]

  lifecycle {
    precondition {
      condition     = alltrue([for region in keys(var.replicas) : contains(var.allowed_regions, region) && region != var.region])
      error_message = "Zones replicate only into the project's other allowed regions."
    }
  }
}
