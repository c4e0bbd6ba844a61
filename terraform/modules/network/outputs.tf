output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "The private subnets, one per availability zone: where endpoints and jobs run."
  value       = [for subnet in aws_subnet.private : subnet.id]
}

output "private_subnet_cidrs" {
  description = "The private subnets' CIDR blocks, in the order of private_subnet_ids: where the tasks' addresses come from (the control plane's HIPAA_MLOPS_OPENBAO_BOUND_CIDRS)."
  value       = [for subnet in aws_subnet.private : subnet.cidr_block]
}

output "workload_security_group_id" {
  description = "The security group of workloads: HTTPS out to the VPC endpoints only."
  value       = aws_security_group.workloads.id
}

output "endpoint_security_group_id" {
  description = "The security group of the interface endpoints: what a workload's own security group lets out HTTPS to."
  value       = aws_security_group.endpoints.id
}

output "s3_prefix_list_id" {
  description = "The S3 gateway endpoint's prefix list: S3 over HTTPS without a route out."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}

output "flow_log_group" {
  description = "The log group of the VPC's flow logs."
  value       = aws_cloudwatch_log_group.flow_logs.name
}
