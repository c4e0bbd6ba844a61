# What watches a project in the cloud: its endpoint's log group, encrypted and kept six
# years; CloudWatch alarms for the serving alerts of monitoring/alerts.yml, on SageMaker's
# own metrics; an encrypted topic for the alarms. Opt-in (`managed_prometheus`): Amazon
# Managed Prometheus with the same rule file for the monitoring metrics (drift, AUROC,
# staleness, capture drops); it is not on the dated list of HIPAA-eligible services that
# terraform/modules/compliance/eligible_services.json keeps, so check AWS's current list first.

resource "aws_cloudwatch_log_group" "endpoint" {
  name              = "/aws/sagemaker/Endpoints/${var.endpoint_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic" "alarms" {
  name              = "hipaa-mlops-${var.project}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

# ServingErrorRate: 5xx invocations over all, above the threshold for five minutes.
resource "aws_cloudwatch_metric_alarm" "serving_error_rate" {
  alarm_name          = "${var.project}-ServingErrorRate"
  alarm_description   = "The endpoint of project ${var.project} answers more than ${var.error_rate_threshold * 100}% of predictions with 5xx"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.error_rate_threshold
  evaluation_periods  = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  tags                = var.tags

  metric_query {
    id          = "rate"
    expression  = "IF(invocations > 0, errors / invocations, 0)"
    label       = "5xx share"
    return_data = true
  }

  metric_query {
    id = "errors"

    metric {
      namespace   = "AWS/SageMaker"
      metric_name = "Invocation5XXErrors"
      period      = 60
      stat        = "Sum"
      dimensions  = { EndpointName = var.endpoint_name, VariantName = "champion" }
    }
  }

  metric_query {
    id = "invocations"

    metric {
      namespace   = "AWS/SageMaker"
      metric_name = "Invocations"
      period      = 60
      stat        = "Sum"
      dimensions  = { EndpointName = var.endpoint_name, VariantName = "champion" }
    }
  }
}

# ServingLatencyHigh: p99 model latency (reported in microseconds) above the threshold
# for ten minutes.
resource "aws_cloudwatch_metric_alarm" "serving_latency_high" {
  alarm_name          = "${var.project}-ServingLatencyHigh"
  alarm_description   = "The endpoint of project ${var.project}: p99 latency above ${var.latency_p99_seconds} s"
  namespace           = "AWS/SageMaker"
  metric_name         = "ModelLatency"
  extended_statistic  = "p99"
  dimensions          = { EndpointName = var.endpoint_name, VariantName = "champion" }
  period              = 60
  evaluation_periods  = 10
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.latency_p99_seconds * 1000000
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_log_group" "prometheus" {
  count = var.managed_prometheus ? 1 : 0

  name              = "/hipaa-mlops/${var.project}/prometheus"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_prometheus_workspace" "this" {
  count = var.managed_prometheus ? 1 : 0

  alias       = "hipaa-mlops-${var.project}"
  kms_key_arn = var.kms_key_arn
  tags        = var.tags

  logging_configuration {
    log_group_arn = "${aws_cloudwatch_log_group.prometheus[0].arn}:*"
  }
}

resource "aws_prometheus_rule_group_namespace" "alerts" {
  count = var.managed_prometheus ? 1 : 0

  name         = "hipaa-mlops"
  workspace_id = aws_prometheus_workspace.this[0].id
  data         = var.alert_rules
}
