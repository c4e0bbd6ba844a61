# Who reaches what: clients (the jobs, by carrying the `clients` group) reach the load
# balancers and the data directory; the load balancers reach the servers' tasks; only
# the control plane's tasks reach the database: the servers', and the one-off database
# setup (database_setup.tf), which runs with their group. Nothing admits traffic from
# anywhere else, and nothing here has a route out of the VPC.

# A badge, no rule of its own: a task that carries it is admitted by the load balancers
# and the file system; where it may send is its own security group's business.
resource "aws_security_group" "clients" {
  #checkov:skip=CKV2_AWS_5:Attached by module jobs to its ECS event targets' network configuration, in another module
  name        = "${var.name}-control-plane-clients"
  description = "Clients of the control plane (the jobs): admitted to OpenBao, MLflow and the data directory"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-control-plane-clients" })
}

resource "aws_security_group" "load_balancers" {
  name        = "${var.name}-control-plane-lb"
  description = "The control plane's internal load balancers: OpenBao and MLflow from clients and the tasks"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-control-plane-lb" })
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-control-plane-tasks"
  description = "OpenBao and MLflow tasks: from their load balancers, to the database, the data directory and the VPC endpoints"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-control-plane-tasks" })
}

resource "aws_security_group" "database" {
  name        = "${var.name}-control-plane-db"
  description = "The control plane's PostgreSQL: 5432 from the control plane's tasks only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-control-plane-db" })
}

resource "aws_security_group" "efs" {
  name        = "${var.name}-control-plane-efs"
  description = "The data directory's mount targets: NFS from the control plane's tasks and its clients only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-control-plane-efs" })
}

# The load balancers: each server's port from the clients and from the tasks (MLflow
# reads its secrets from OpenBao through OpenBao's address), out to the tasks only.
resource "aws_vpc_security_group_ingress_rule" "load_balancers_from_clients" {
  for_each = local.ports

  security_group_id            = aws_security_group.load_balancers.id
  description                  = "${each.key} from the control plane's clients"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.clients.id
}

resource "aws_vpc_security_group_ingress_rule" "load_balancers_from_tasks" {
  for_each = local.ports

  security_group_id            = aws_security_group.load_balancers.id
  description                  = "${each.key} from the control plane's tasks"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "load_balancers_to_tasks" {
  for_each = local.ports

  security_group_id            = aws_security_group.load_balancers.id
  description                  = "${each.key} to its tasks (traffic and health checks)"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.tasks.id
}

# The tasks.
resource "aws_vpc_security_group_ingress_rule" "tasks_from_load_balancers" {
  for_each = local.ports

  security_group_id            = aws_security_group.tasks.id
  description                  = "${each.key} from its load balancer"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.load_balancers.id
}

resource "aws_vpc_security_group_ingress_rule" "tasks_openbao_cluster" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "OpenBao's cluster port: a standby forwards to the active node"
  ip_protocol                  = "tcp"
  from_port                    = local.openbao_cluster_port
  to_port                      = local.openbao_cluster_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_openbao_cluster" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "OpenBao's cluster port, to the other OpenBao task"
  ip_protocol                  = "tcp"
  from_port                    = local.openbao_cluster_port
  to_port                      = local.openbao_cluster_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_load_balancers" {
  for_each = local.ports

  security_group_id            = aws_security_group.tasks.id
  description                  = "${each.key} through its load balancer"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.load_balancers.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_database" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_efs" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "NFS to the data directory"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.efs.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_endpoints" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "HTTPS to the interface endpoints (ECR, KMS, Secrets Manager, Logs, STS, ECS)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = var.endpoint_security_group_id
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_s3" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to S3 through the gateway endpoint (ECR's image layers)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.s3_prefix_list_id
}

# The database and the data directory.
resource "aws_vpc_security_group_ingress_rule" "database_from_tasks" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the control plane's tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_ingress_rule" "efs" {
  for_each = {
    tasks   = aws_security_group.tasks.id
    clients = aws_security_group.clients.id
  }

  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the control plane's ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = each.value
}
