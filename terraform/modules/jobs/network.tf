# The jobs' own security group: nothing in; out only HTTPS to the VPC endpoints and to S3
# (the lake, image layers), the control plane's two servers through their load balancers,
# and NFS to the data directory. The control plane admits the jobs because they also
# carry its clients' group.

resource "aws_security_group" "jobs" {
  name        = "${local.name}-jobs"
  description = "The jobs of project ${var.project}: HTTPS to the endpoints and S3, OpenBao, MLflow and NFS to the control plane"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${local.name}-jobs" })
}

resource "aws_vpc_security_group_egress_rule" "to_endpoints" {
  security_group_id            = aws_security_group.jobs.id
  description                  = "HTTPS to the interface endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = var.endpoint_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "to_s3" {
  security_group_id = aws_security_group.jobs.id
  description       = "HTTPS to S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.s3_prefix_list_id
}

resource "aws_vpc_security_group_egress_rule" "to_control_plane" {
  for_each = var.control_plane.ports

  security_group_id            = aws_security_group.jobs.id
  description                  = "${each.key} through its load balancer"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = var.control_plane.load_balancer_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "to_data_directory" {
  security_group_id            = aws_security_group.jobs.id
  description                  = "NFS to the data directory's mount targets"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = var.control_plane.efs_security_group_id
}
