# One project in one of its regions: its roles, its four keys, its zones, its secrets,
# its endpoint when a champion is promoted here, and what watches it. An environment
# instantiates it once per region of the project, each with that region's provider.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  name = "${var.project}-${var.environment}-${var.region}"
  # This region's copy of the app repository (the registry replicates it here).
  image_repository_arn = "arn:${data.aws_partition.current.partition}:ecr:${var.region}:${data.aws_caller_identity.current.account_id}:repository/${var.image_repository}"
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

# The workload also runs as the retrain and monitoring tasks on ECS (module jobs), from
# this account only, as SageMaker does.
data "aws_iam_policy_document" "workload_trust" {
  source_policy_documents = [data.aws_iam_policy_document.sagemaker_trust.json]

  statement {
    sid     = "EcsTasksOfThisAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
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
  assume_role_policy = data.aws_iam_policy_document.workload_trust.json
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

# The image by the digest its immutable tag names in this region's registry (replicated
# from the primary's), and the archive uploaded into this region's models zone, under the
# models key, only if its SHA-256 is the one the promotion recorded.
data "aws_ecr_repository" "app" {
  count = var.serving == null ? 0 : 1
  name  = var.image_repository
}

data "aws_ecr_image" "serving" {
  count           = var.serving == null ? 0 : 1
  repository_name = var.image_repository
  image_tag       = var.serving.image_tag
}

resource "aws_s3_object" "model" {
  count = var.serving == null ? 0 : 1

  bucket             = module.lake.buckets["models"]
  key                = "promotions/${var.serving.model_version}-${var.serving.model_sha256}.tar.gz"
  source             = "${path.root}/${var.serving.model_archive}"
  source_hash        = var.serving.model_sha256
  checksum_algorithm = "SHA256"
  kms_key_id         = module.key["models"].key_arn
  tags               = merge(local.tags, { "hipaa-mlops:model-version" = var.serving.model_version, "hipaa-mlops:contract" = var.serving.contract_fingerprint })

  lifecycle {
    precondition {
      condition     = filesha256("${path.root}/${var.serving.model_archive}") == var.serving.model_sha256
      error_message = "The model archive is not the one the promotion recorded (its SHA-256 differs)."
    }
  }
}

locals {
  # The app image by digest, as the endpoint runs it (and the jobs with it).
  serving_image = var.serving == null ? null : "${data.aws_ecr_repository.app[0].repository_url}@${data.aws_ecr_image.serving[0].image_digest}"
}

module "endpoint" {
  source = "../endpoint"
  count  = var.serving == null ? 0 : 1

  project            = var.project
  environment        = var.environment
  image              = local.serving_image
  model_data_url     = "s3://${aws_s3_object.model[0].bucket}/${aws_s3_object.model[0].key}"
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
