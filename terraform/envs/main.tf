# An environment (staging or production) in two regions: a network in each, the image
# registry in the primary, and every project in each of its regions, its zones in the
# secondary replicated from the primary under the secondary's keys.

provider "aws" {
  alias  = "primary"
  region = var.primary_region

  default_tags {
    tags = merge(var.tags, { "hipaa-mlops:environment" = var.environment })
  }
}

provider "aws" {
  alias  = "secondary"
  region = var.secondary_region

  default_tags {
    tags = merge(var.tags, { "hipaa-mlops:environment" = var.environment })
  }
}

locals {
  alert_rules      = file("${path.module}/../../monitoring/alerts.yml")
  conformance_pack = "${path.module}/../.conformance-pack/Operational-Best-Practices-for-HIPAA-Security.yaml"
  primary          = { for name, p in var.projects : name => p if contains(p.regions, var.primary_region) }
  secondary        = { for name, p in var.projects : name => p if contains(p.regions, var.secondary_region) }
  # Replicated into the second region: datasets and models, never raw PHI.
  replicated = { deidentified = "proj", synthetic = "proj", models = "models" }
}

# The platform's own key in each region: the registry's layers and the flow logs.
module "platform_key" {
  source    = "../modules/kms"
  providers = { aws = aws.primary }

  project         = "platform"
  region          = var.primary_region
  allowed_regions = [var.primary_region]
  kind            = "audit"
  administrators  = var.key_administrators
  users           = var.key_administrators
  cloudwatch_logs = true
}

module "platform_key_secondary" {
  source    = "../modules/kms"
  providers = { aws = aws.secondary }

  project         = "platform"
  region          = var.secondary_region
  allowed_regions = [var.secondary_region]
  kind            = "audit"
  administrators  = var.key_administrators
  users           = var.key_administrators
  cloudwatch_logs = true
}

module "network_primary" {
  source    = "../modules/network"
  providers = { aws = aws.primary }

  name                 = "hipaa-mlops-${var.environment}"
  region               = var.primary_region
  availability_zones   = ["${var.primary_region}a", "${var.primary_region}b"]
  flow_log_kms_key_arn = module.platform_key.key_arn
}

module "network_secondary" {
  source    = "../modules/network"
  providers = { aws = aws.secondary }

  name                 = "hipaa-mlops-${var.environment}"
  region               = var.secondary_region
  availability_zones   = ["${var.secondary_region}a", "${var.secondary_region}b"]
  flow_log_kms_key_arn = module.platform_key_secondary.key_arn
}

# The images in each region's own registry (SageMaker pulls from its region's only), under
# that region's platform key, pulled by the roles of the projects there.
module "registry" {
  source    = "../modules/registry"
  providers = { aws = aws.primary }

  name        = "hipaa-mlops-${var.environment}"
  kms_key_arn = module.platform_key.key_arn
  pullers     = flatten([for p in module.project_primary : [p.role_arns["serving"], p.role_arns["workload"]]])
}

module "registry_secondary" {
  source    = "../modules/registry"
  providers = { aws = aws.secondary }

  name        = "hipaa-mlops-${var.environment}"
  kms_key_arn = module.platform_key_secondary.key_arn
  pullers     = flatten([for p in module.project_secondary : [p.role_arns["serving"], p.role_arns["workload"]]])
}

module "project_secondary" {
  source    = "../modules/project"
  providers = { aws = aws.secondary }
  for_each  = local.secondary

  project             = each.key
  environment         = var.environment
  region              = var.secondary_region
  allowed_regions     = each.value.regions
  bucket_prefix       = var.bucket_prefix
  key_administrators  = var.key_administrators
  network             = { subnet_ids = module.network_secondary.private_subnet_ids, workload_security_group_id = module.network_secondary.workload_security_group_id }
  image_repository    = "hipaa-mlops-${var.environment}/app"
  contract_columns    = each.value.contract_columns
  serving             = lookup(each.value.serving, var.secondary_region, null)
  alert_rules         = local.alert_rules
  rotation_lambda_arn = var.rotation_lambda_arns[var.secondary_region]
}

module "project_primary" {
  source    = "../modules/project"
  providers = { aws = aws.primary }
  for_each  = local.primary

  project             = each.key
  environment         = var.environment
  region              = var.primary_region
  allowed_regions     = each.value.regions
  bucket_prefix       = var.bucket_prefix
  key_administrators  = var.key_administrators
  network             = { subnet_ids = module.network_primary.private_subnet_ids, workload_security_group_id = module.network_primary.workload_security_group_id }
  image_repository    = "hipaa-mlops-${var.environment}/app"
  contract_columns    = each.value.contract_columns
  serving             = lookup(each.value.serving, var.primary_region, null)
  alert_rules         = local.alert_rules
  rotation_lambda_arn = var.rotation_lambda_arns[var.primary_region]
  # Into the secondary region, only for a project that may keep data there.
  replicas = contains(each.value.regions, var.secondary_region) ? {
    (var.secondary_region) = {
      buckets  = { for zone in keys(local.replicated) : zone => module.project_secondary[each.key].bucket_arns[zone] }
      kms_keys = { for zone, kind in local.replicated : zone => module.project_secondary[each.key].key_arns[kind] }
    }
  } : {}
}

# What the account proves about itself, in each region: AWS Config with the HIPAA Security
# conformance pack, evidence under a key of its own; the multi-region trail and the global
# resources from the primary; the service control policy where `scp_target_ids` names
# where to attach it.
module "evidence_key" {
  source    = "../modules/kms"
  providers = { aws = aws.primary }

  project         = "platform"
  region          = var.primary_region
  allowed_regions = [var.primary_region]
  kind            = "evidence"
  administrators  = var.key_administrators
  users           = var.key_administrators
  cloudwatch_logs = true
  evidence        = true
}

module "evidence_key_secondary" {
  source    = "../modules/kms"
  providers = { aws = aws.secondary }

  project         = "platform"
  region          = var.secondary_region
  allowed_regions = [var.secondary_region]
  kind            = "evidence"
  administrators  = var.key_administrators
  users           = var.key_administrators
  evidence        = true
}

module "compliance" {
  source    = "../modules/compliance"
  providers = { aws = aws.primary }

  name                  = "hipaa-mlops-${var.environment}"
  region                = var.primary_region
  bucket_name           = "${var.bucket_prefix}-evidence-${var.primary_region}"
  bucket_prefix         = var.bucket_prefix
  kms_key_arn           = module.evidence_key.key_arn
  allowed_regions       = [var.primary_region, var.secondary_region]
  conformance_pack_path = local.conformance_pack
  scp_target_ids        = var.scp_target_ids
}

module "compliance_secondary" {
  source    = "../modules/compliance"
  providers = { aws = aws.secondary }

  name                              = "hipaa-mlops-${var.environment}"
  region                            = var.secondary_region
  bucket_name                       = "${var.bucket_prefix}-evidence-${var.secondary_region}"
  bucket_prefix                     = var.bucket_prefix
  kms_key_arn                       = module.evidence_key_secondary.key_arn
  allowed_regions                   = [var.primary_region, var.secondary_region]
  conformance_pack_path             = local.conformance_pack
  create_trail                      = false
  record_global_resources           = false
  create_config_service_linked_role = false
}
