# A project's endpoint on SageMaker: the serving image by digest, in the private
# subnets with network isolation (the container reaches nothing, not even the internet
# through the VPC), volumes under the project's key, no data capture unless asked (and
# then under the project's key), autoscaled on invocations per instance.

locals {
  name = "${var.project}-${var.environment}"
}

resource "aws_sagemaker_model" "this" {
  name                     = "${local.name}-${replace(var.model_version, ".", "-")}"
  execution_role_arn       = var.execution_role_arn
  enable_network_isolation = true

  primary_container {
    image          = var.image
    model_data_url = var.model_data_url
    mode           = "SingleModel"
  }

  vpc_config {
    subnets            = var.subnet_ids
    security_group_ids = var.security_group_ids
  }

  tags = merge(var.tags, {
    "hipaa-mlops:project"       = var.project
    "hipaa-mlops:model-version" = var.model_version
  })

  lifecycle {
    precondition {
      condition     = var.environment != "production" || var.min_instances >= 2
      error_message = "Production runs at least two instances."
    }

    precondition {
      condition     = var.max_instances >= var.min_instances
      error_message = "max_instances is at least min_instances."
    }
  }
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  name_prefix = "${local.name}-"
  kms_key_arn = var.kms_key_arn

  production_variant {
    variant_name           = "champion"
    model_name             = aws_sagemaker_model.this.name
    instance_type          = var.instance_type
    initial_instance_count = var.min_instances
  }

  dynamic "data_capture_config" {
    for_each = var.capture_destination == null ? [] : [var.capture_destination]

    content {
      enable_capture              = true
      initial_sampling_percentage = 100
      destination_s3_uri          = data_capture_config.value
      kms_key_id                  = var.kms_key_arn

      capture_options {
        capture_mode = "Input"
      }

      capture_options {
        capture_mode = "Output"
      }
    }
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_sagemaker_endpoint" "this" {
  name                 = local.name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this.name
  tags                 = var.tags
}

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "sagemaker"
  resource_id        = "endpoint/${aws_sagemaker_endpoint.this.name}/variant/champion"
  scalable_dimension = "sagemaker:variant:DesiredInstanceCount"
  min_capacity       = var.min_instances
  max_capacity       = var.max_instances
}

resource "aws_appautoscaling_policy" "invocations" {
  name               = "${local.name}-invocations"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.invocations_per_instance
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "SageMakerVariantInvocationsPerInstance"
    }
  }
}
