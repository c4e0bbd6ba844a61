# An environment (staging or production) in two regions: a network in each, the image
# registry in the primary, and every project in each of its regions, its zones in the
# secondary replicated from the primary under the secondary's keys; in the primary, the
# control plane and each served project's retrain and monitoring jobs.

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
  # The control plane, in the primary region once its image is named, and each served
  # project's jobs beside it (they run the image its endpoint runs).
  control_plane      = var.control_plane_image_tag == null ? 0 : 1
  control_plane_name = "hipaa-mlops-${var.environment}"
  jobs               = { for name, p in local.primary : name => p if local.control_plane == 1 && contains(keys(p.serving), var.primary_region) }
  # The platform's regions as the app names them (HIPAA_MLOPS_REGIONS): in AWS, after the
  # AWS regions, home (the control plane's) first.
  platform_regions = [var.primary_region, var.secondary_region]
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
  pullers = concat(
    flatten([for p in module.project_primary : [p.role_arns["serving"], p.role_arns["workload"]]]),
    flatten(module.control_plane[*].execution_role_arns),
    [for j in module.jobs : j.execution_role_arn],
  )
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

# The control plane in the primary region (OpenBao, MLflow and its PostgreSQL, the data
# directory), under a key of its own, with a second key for the secret that holds
# OpenBao's static seal key alone.
data "aws_ecr_image" "control_plane" {
  provider = aws.primary
  count    = local.control_plane

  repository_name = "hipaa-mlops-${var.environment}/app"
  image_tag       = var.control_plane_image_tag
}

module "control_plane_key" {
  source    = "../modules/kms"
  providers = { aws = aws.primary }
  count     = local.control_plane

  project            = "platform"
  region             = var.primary_region
  allowed_regions    = [var.primary_region]
  kind               = "control-plane"
  administrators     = var.key_administrators
  users              = module.control_plane[0].key_users
  secret_writers     = var.control_plane_secret_writers
  service_principals = ["elasticfilesystem", "rds", "secretsmanager", "logs"]
  cloudwatch_logs    = true
  fargate_cluster    = local.control_plane_name
}

module "unseal_key" {
  source    = "../modules/kms"
  providers = { aws = aws.primary }
  count     = local.control_plane

  project            = "platform"
  region             = var.primary_region
  allowed_regions    = [var.primary_region]
  kind               = "unseal"
  administrators     = var.key_administrators
  users              = module.control_plane[0].unseal_key_users
  secret_writers     = var.control_plane_secret_writers
  service_principals = []
}

module "control_plane" {
  source    = "../modules/control_plane"
  providers = { aws = aws.primary }
  count     = local.control_plane

  name                       = local.control_plane_name
  environment                = var.environment
  region                     = var.primary_region
  vpc_id                     = module.network_primary.vpc_id
  subnet_ids                 = module.network_primary.private_subnet_ids
  endpoint_security_group_id = module.network_primary.endpoint_security_group_id
  s3_prefix_list_id          = module.network_primary.s3_prefix_list_id
  image                      = "${module.registry.repository_urls["app"]}@${data.aws_ecr_image.control_plane[0].image_digest}"
  image_repository           = "hipaa-mlops-${var.environment}/app"
  kms_key_arn                = module.control_plane_key[0].key_arn
  unseal_key_arn             = module.unseal_key[0].key_arn
  data_clients               = [for name in keys(local.jobs) : module.project_primary[name].role_arns["workload"]]
  rotation_lambda_arn        = var.rotation_lambda_arns[var.primary_region]
  database_ca_bundle         = var.database_ca_bundle
  client_cidrs               = module.network_primary.private_subnet_cidrs
  platform_regions           = local.platform_regions
}

# Each served project's retrain and monitoring jobs, beside the control plane, as its
# workload role, with the image its endpoint runs.
module "jobs" {
  source    = "../modules/jobs"
  providers = { aws = aws.primary }
  for_each  = local.jobs

  project                    = each.key
  environment                = var.environment
  region                     = var.primary_region
  allowed_regions            = each.value.regions
  image                      = module.project_primary[each.key].serving_image
  image_repository           = "hipaa-mlops-${var.environment}/app"
  workload_role_arn          = module.project_primary[each.key].role_arns["workload"]
  kms_key_arn                = module.project_primary[each.key].key_arns["audit"]
  vpc_id                     = module.network_primary.vpc_id
  subnet_ids                 = module.network_primary.private_subnet_ids
  endpoint_security_group_id = module.network_primary.endpoint_security_group_id
  s3_prefix_list_id          = module.network_primary.s3_prefix_list_id
  client_cidrs               = module.network_primary.private_subnet_cidrs
  platform_regions           = local.platform_regions
  bucket_prefix              = var.bucket_prefix
  control_plane = {
    cluster_arn                     = module.control_plane[0].cluster_arn
    openbao_address                 = module.control_plane[0].openbao_address
    mlflow_address                  = module.control_plane[0].mlflow_address
    ports                           = module.control_plane[0].ports
    file_system_id                  = module.control_plane[0].file_system_id
    file_system_arn                 = module.control_plane[0].file_system_arn
    client_security_group_id        = module.control_plane[0].client_security_group_id
    load_balancer_security_group_id = module.control_plane[0].load_balancer_security_group_id
    efs_security_group_id           = module.control_plane[0].efs_security_group_id
  }
}
