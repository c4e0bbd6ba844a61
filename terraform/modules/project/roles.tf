# What each role may do, zone by zone, as `safeguards.objectstore.ROLES` grants the
# platform's identities: nothing more.

locals {
  buckets = module.lake.bucket_arns
  zone_access = {
    workload = { deidentified = "r", synthetic = "r", artifacts = "rw", models = "rw" }
    ingest   = { "raw-phi" = "rw", deidentified = "rw", synthetic = "rw" }
    serving  = { models = "r" }
  }
  role_keys = {
    workload = ["proj", "models", "audit"]
    ingest   = ["phi", "proj", "audit"]
    serving  = ["models"]
  }
  roles = {
    workload = aws_iam_role.workload
    ingest   = aws_iam_role.ingest
    serving  = aws_iam_role.serving
  }
}

data "aws_iam_policy_document" "role" {
  for_each = local.zone_access

  statement {
    sid       = "ListItsZones"
    actions   = ["s3:ListBucket"]
    resources = [for zone in keys(each.value) : local.buckets[zone]]
  }

  statement {
    sid       = "ReadItsZones"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [for zone in keys(each.value) : "${local.buckets[zone]}/*"]
  }

  dynamic "statement" {
    for_each = [for zone, mode in each.value : zone if mode == "rw"]

    content {
      sid       = "WriteZone${replace(title(replace(statement.value, "-", " ")), " ", "")}"
      actions   = ["s3:DeleteObject", "s3:PutObject"]
      resources = ["${local.buckets[statement.value]}/*"]
    }
  }

  # DescribeKey: the app finds each zone's key by its alias (alias/hipaa-mlops/<AWS
  # region>/<kind>-<project>, safeguards.objectstore.kms_alias) and asks for that ARN.
  statement {
    sid       = "UseItsKeys"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
    resources = [for kind in local.role_keys[each.key] : module.key[kind].key_arn]
  }

  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [local.image_repository_arn]
  }

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  # SageMaker attaches the jobs' and endpoint's interfaces to the private subnets.
  statement {
    sid     = "InterfacesInThePrivateSubnets"
    actions = ["ec2:CreateNetworkInterface"]
    resources = concat(
      ["arn:${data.aws_partition.current.partition}:ec2:${var.region}:${data.aws_caller_identity.current.account_id}:network-interface/*"],
      [for id in var.network.subnet_ids : "arn:${data.aws_partition.current.partition}:ec2:${var.region}:${data.aws_caller_identity.current.account_id}:subnet/${id}"],
      ["arn:${data.aws_partition.current.partition}:ec2:${var.region}:${data.aws_caller_identity.current.account_id}:security-group/${var.network.workload_security_group_id}"],
    )
  }

  statement {
    sid       = "ManageThoseInterfaces"
    actions   = ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"]
    resources = ["arn:${data.aws_partition.current.partition}:ec2:${var.region}:${data.aws_caller_identity.current.account_id}:network-interface/*"]

    condition {
      test     = "ArnEquals"
      variable = "ec2:Subnet"
      values   = [for id in var.network.subnet_ids : "arn:${data.aws_partition.current.partition}:ec2:${var.region}:${data.aws_caller_identity.current.account_id}:subnet/${id}"]
    }
  }

  # Describe* calls support no resource-level permissions: "*" is the only form.
  statement {
    sid       = "DescribeTheNetwork"
    actions   = ["ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"]
    resources = ["*"]
  }

  statement {
    sid       = "ItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:aws:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:/aws/sagemaker/*"]
  }
}

resource "aws_iam_role_policy" "role" {
  for_each = local.zone_access

  name   = "hipaa-mlops-${each.key}"
  role   = local.roles[each.key].id
  policy = data.aws_iam_policy_document.role[each.key].json
}
