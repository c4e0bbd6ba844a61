# One project in one of its regions: its roles, its four keys, its zones, its secrets,
# its endpoint when a champion is promoted here, and what watches it. An environment
# instantiates it once per region of the project, each with that region's provider.

data "aws_caller_identity" "current" {}

locals {
  name = "${var.project}-${var.environment}-${var.region}"
  tags = merge(var.tags, {
    "hipaa-mlops:project"     = var.project
    "hipaa-mlops:environment" = var.environment
  })
  # Which roles use which key, as the platform's identities do: the steward alone reaches
  # raw PHI; the endpoint opens models and nothing else of the project.
  key_users = {
    proj   = [aws_iam_role.workload.arn, aws_iam_role.ingest.arn]
    phi    = [aws_iam_role.ingest.arn]
    models = [aws_iam_role.workload.arn, aws_iam_role.serving.arn]
    audit  = [aws_iam_role.workload.arn, aws_iam_role.ingest.arn]
  }
}

data "aws_iam_policy_document" "sagemaker_trust" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# The three roles of the platform's identities: the workload (training, monitoring
# jobs), the data steward (ingestion and de-identification jobs), the endpoint.
resource "aws_iam_role" "workload" {
  name               = "${local.name}-workload"
  assume_role_policy = data.aws_iam_policy_document.sagemaker_trust.json
  tags               = local.tags
}

resource "aws_iam_role" "ingest" {
  name               = "${local.name}-ingest"
  assume_role_policy = data.aws_iam_policy_document.sagemaker_trust.json
  tags               = local.tags
}

resource "aws_iam_role" "serving" {
  name               = "${local.name}-serving"
  assume_role_policy = data.aws_iam_policy_document.sagemaker_trust.json
  tags               = local.tags
}

module "key" {
  source   = "../kms"
  for_each = local.key_users

  project         = var.project
  region          = var.region
  allowed_regions = var.allowed_regions
  kind            = each.key
  administrators  = var.key_administrators
  users           = each.value
  cloudwatch_logs = each.key == "audit"
  tags            = local.tags
}

module "lake" {
  source = "../data_lake"

  project          = var.project
  region           = var.region
  allowed_regions  = var.allowed_regions
  bucket_prefix    = var.bucket_prefix
  kms_keys         = { for kind, key in module.key : kind => key.key_arn }
  replicas         = var.replicas
  contract_columns = var.contract_columns
  tags             = local.tags
}

module "secrets" {
  source = "../secrets"

  project             = var.project
  secrets             = { "mlflow-training" = "MLflow password of the project's workload", "mlflow-serving" = "MLflow password of the project's endpoint (read only)" }
  kms_key_arn         = module.key["proj"].key_arn
  readers             = [aws_iam_role.workload.arn]
  rotation_lambda_arn = var.rotation_lambda_arn
  tags                = local.tags
}

module "endpoint" {
  source = "../endpoint"
  count  = var.serving == null ? 0 : 1

  project            = var.project
  environment        = var.environment
  image              = var.serving.image
  model_data_url     = var.serving.model_data_url
  model_version      = var.serving.model_version
  execution_role_arn = aws_iam_role.serving.arn
  subnet_ids         = var.network.subnet_ids
  security_group_ids = [var.network.workload_security_group_id]
  kms_key_arn        = module.key["models"].key_arn
  min_instances      = var.environment == "production" ? 2 : 1
  tags               = local.tags
}

module "observability" {
  source = "../observability"
  count  = var.serving == null ? 0 : 1

  project       = var.project
  endpoint_name = module.endpoint[0].endpoint_name
  kms_key_arn   = module.key["audit"].key_arn
  alert_rules   = var.alert_rules
  tags          = local.tags
}
