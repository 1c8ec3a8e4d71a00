data "aws_region" "current" {}

# Pinned to named zones (<region>a, <region>b, ...) so the subnet layout never moves when AWS adds a zone.
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = [for suffix in slice(["a", "b", "c", "d"], 0, var.az_count) : "${data.aws_region.current.region}${suffix}"]
  }
}

locals {
  vpc   = var.vpc_enabled ? 1 : 0
  redis = var.vpc_enabled && var.redis_enabled ? 1 : 0
  azs   = slice(data.aws_availability_zones.available.names, 0, var.az_count)
}

resource "aws_vpc" "this" {
  count = local.vpc

  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(var.tags, { Name = var.name_prefix })
}

# The default security group allows nothing.
resource "aws_default_security_group" "this" {
  count = local.vpc

  vpc_id = aws_vpc.this[0].id
  tags   = var.tags
}

resource "aws_subnet" "private" {
  count = var.vpc_enabled ? var.az_count : 0

  vpc_id            = aws_vpc.this[0].id
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index)
  availability_zone = local.azs[count.index]
  tags              = merge(var.tags, { Name = "${var.name_prefix}-private-${local.azs[count.index]}" })
}

resource "aws_subnet" "public" {
  count = local.vpc

  vpc_id            = aws_vpc.this[0].id
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, 240)
  availability_zone = local.azs[0]
  tags              = merge(var.tags, { Name = "${var.name_prefix}-public" })
}

resource "aws_internet_gateway" "this" {
  count = local.vpc

  vpc_id = aws_vpc.this[0].id
  tags   = var.tags
}

resource "aws_eip" "nat" {
  count = local.vpc

  domain = "vpc"
  tags   = var.tags
}

# One NAT gateway (the reference cost estimate) gives the private Lambdas access to AWS APIs that have no
# gateway endpoint (Secrets Manager, Kinesis, X-Ray).
resource "aws_nat_gateway" "this" {
  count = local.vpc

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id
  tags          = var.tags

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  count = local.vpc

  vpc_id = aws_vpc.this[0].id
  tags   = var.tags

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this[0].id
  }
}

resource "aws_route_table_association" "public" {
  count = local.vpc

  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_route_table" "private" {
  count = local.vpc

  vpc_id = aws_vpc.this[0].id
  tags   = var.tags

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this[0].id
  }
}

resource "aws_route_table_association" "private" {
  count = var.vpc_enabled ? var.az_count : 0

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[0].id
}

# S3 and DynamoDB traffic stays on the AWS network (and off the NAT bill).
resource "aws_vpc_endpoint" "gateway" {
  for_each = var.vpc_enabled ? toset(["s3", "dynamodb"]) : toset([])

  vpc_id            = aws_vpc.this[0].id
  service_name      = "com.amazonaws.${data.aws_region.current.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private[0].id]
  tags              = var.tags
}

resource "aws_security_group" "lambda" {
  count = local.vpc
  #checkov:skip=CKV2_AWS_5:Attached to every Lambda function by the compute module (vpc_config), through this module's output.

  name        = "${var.name_prefix}-lambda"
  description = "Lambda functions of ${var.name_prefix}: outbound only"
  vpc_id      = aws_vpc.this[0].id
  tags        = var.tags

  egress {
    description = "HTTPS to AWS APIs (through the NAT gateway and VPC endpoints)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "Redis inside the VPC"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
}

resource "aws_security_group" "redis" {
  count = local.redis

  name        = "${var.name_prefix}-redis"
  description = "ElastiCache Redis of ${var.name_prefix}: only the Lambda security group may connect"
  vpc_id      = aws_vpc.this[0].id
  tags        = var.tags

  ingress {
    description     = "Redis from the Lambda functions"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [aws_security_group.lambda[0].id]
  }
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  count = local.vpc
  #checkov:skip=CKV_AWS_338:Retention follows the environment table (7/30/90 days), not a fixed year.

  name              = "/aws/vpc/${var.name_prefix}/flow-logs"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  count = local.vpc

  name               = "${var.name_prefix}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "flow_logs" {
  count = local.vpc

  statement {
    actions = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [
      aws_cloudwatch_log_group.flow_logs[0].arn,
      "${aws_cloudwatch_log_group.flow_logs[0].arn}:*",
    ]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  count = local.vpc

  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs[0].json
}

resource "aws_flow_log" "this" {
  count = local.vpc

  vpc_id          = aws_vpc.this[0].id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn    = aws_iam_role.flow_logs[0].arn
  tags            = var.tags
}

resource "random_password" "redis_auth" {
  count = local.redis

  length           = 48
  special          = true
  override_special = "!&#$^<>-"
}

resource "aws_elasticache_subnet_group" "this" {
  count = local.redis

  name       = lower("${var.name_prefix}-redis")
  subnet_ids = aws_subnet.private[*].id
  tags       = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  count = local.redis

  replication_group_id       = lower("${var.name_prefix}-redis")
  description                = "Session and recommendation cache of ${var.name_prefix}"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  port                       = 6379
  num_cache_clusters         = 1 + var.redis_replicas
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.this[0].name
  security_group_ids         = [aws_security_group.redis[0].id]
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis_auth[0].result
  snapshot_retention_limit   = var.retain ? 7 : 0
  final_snapshot_identifier  = var.retain ? lower("${var.name_prefix}-redis-final") : null
  auto_minor_version_upgrade = true
  apply_immediately          = !var.retain
  tags                       = var.tags

  lifecycle {
    # The rotation Lambda changes the token in place; Terraform must not roll it back.
    ignore_changes = [auth_token]
  }
}
