# The raw-PHI and de-identified zones registered with Lake Formation, the raw table
# catalogued with the contract's columns, and every identifier and quasi-identifier
# column tagged as PHI, so grants can exclude PHI by tag.

locals {
  catalogued = var.lake_formation_role_arn != null && length(var.contract_columns) > 0
  database   = replace("${var.project}_${var.region}", "-", "_")
}

resource "aws_lakeformation_resource" "zone" {
  for_each = var.lake_formation_role_arn == null ? toset([]) : toset(["raw-phi", "deidentified"])

  arn      = module.zone[each.key].arn
  role_arn = var.lake_formation_role_arn
}

resource "aws_glue_catalog_database" "project" {
  count = local.catalogued ? 1 : 0

  name        = local.database
  description = "Project ${var.project} in ${var.region}"
}

resource "aws_glue_catalog_table" "raw" {
  count = local.catalogued ? 1 : 0

  database_name = aws_glue_catalog_database.project[0].name
  name          = "raw"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    classification = "parquet"
  }

  storage_descriptor {
    location      = "s3://${module.zone["raw-phi"].id}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = var.contract_columns

      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

resource "aws_lakeformation_resource_lf_tags" "phi" {
  for_each = local.catalogued ? local.phi_columns : {}

  table_with_columns {
    database_name = aws_glue_catalog_database.project[0].name
    name          = aws_glue_catalog_table.raw[0].name
    column_names  = [each.key]
  }

  lf_tag {
    key   = var.phi_tag_key
    value = each.value
  }
}
