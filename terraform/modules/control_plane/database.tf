# PostgreSQL 15 for MLflow's backend store and OpenBao's storage (a database each): under
# the control plane's key, never public, TLS only, IAM authentication on, the master
# password kept by RDS in Secrets Manager under the same key, multi-AZ in production,
# 35 days of backups, its logs in log groups made here under the key and kept six years.

locals {
  database = "${var.name}-control-plane"
}

resource "aws_db_subnet_group" "this" {
  name       = local.database
  subnet_ids = var.subnet_ids
  tags       = local.tags
}

# TLS only. No statement text in the logs: `log_statement = none` and no duration
# logging (either would log statements with their values), and a failing statement is
# logged without its text (`log_min_error_statement = panic`). MLflow's store and
# OpenBao's (encrypted) storage hold no PHI; the logs still carry nothing a statement
# said. Connections and disconnections are logged, for the audit trail.
resource "aws_db_parameter_group" "this" {
  name   = local.database
  family = "postgres15"
  tags   = local.tags

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "ssl_min_protocol_version"
    value = "TLSv1.2"
  }

  parameter {
    name  = "log_statement"
    value = "none"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "-1"
  }

  parameter {
    name  = "log_min_error_statement"
    value = "panic"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }
}

# Made before the instance exports into them, so they are under the key and kept six
# years (RDS would make them unencrypted and kept forever).
resource "aws_cloudwatch_log_group" "database" {
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${local.database}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_118:Enhanced Monitoring writes process lists into RDSOSMetrics, a log group RDS makes outside the customer key; Performance Insights (under the key) and CloudWatch metrics watch the instance
  #checkov:skip=CKV_AWS_157:Multi-AZ in production (multi_az follows var.environment, which the policy tests assert); staging runs in one zone
  #checkov:skip=CKV2_AWS_30:Query logging writes each statement with its values into the logs; log_statement none and log_min_error_statement panic keep statement text out by design
  identifier                            = local.database
  engine                                = "postgres"
  engine_version                        = "15"
  instance_class                        = var.database_instance_class
  allocated_storage                     = var.database_storage_gb
  max_allocated_storage                 = var.database_storage_gb * 5
  storage_type                          = "gp3"
  storage_encrypted                     = true
  kms_key_id                            = var.kms_key_arn
  username                              = "controlplane"
  manage_master_user_password           = true
  master_user_secret_kms_key_id         = var.kms_key_arn
  iam_database_authentication_enabled   = true
  db_subnet_group_name                  = aws_db_subnet_group.this.name
  vpc_security_group_ids                = [aws_security_group.database.id]
  parameter_group_name                  = aws_db_parameter_group.this.name
  publicly_accessible                   = false
  multi_az                              = var.environment == "production"
  deletion_protection                   = true
  skip_final_snapshot                   = false
  final_snapshot_identifier             = "${local.database}-final"
  backup_retention_period               = 35 # the longest RDS keeps automated backups
  copy_tags_to_snapshot                 = true
  auto_minor_version_upgrade            = true
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  tags                                  = local.tags

  depends_on = [aws_cloudwatch_log_group.database]
}
