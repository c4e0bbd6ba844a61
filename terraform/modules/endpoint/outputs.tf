output "endpoint_name" {
  description = "The SageMaker endpoint's name (invoked through the sagemaker.runtime VPC endpoint)."
  value       = aws_sagemaker_endpoint.this.name
}

output "model_name" {
  description = "The SageMaker model of the version served."
  value       = aws_sagemaker_model.this.name
}
