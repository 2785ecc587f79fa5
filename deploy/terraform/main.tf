# retail-api on Amazon EKS: network, cluster, node group and cluster add-ons.
# Module versions are pinned with "~>" (see docs/deploy-eks.md for the versions chosen).

provider "aws" {
  region = var.region
  default_tags {
    tags = local.tags
  }
}

# AWS/Billing metrics exist only in us-east-1.
provider "aws" {
  alias  = "billing"
  region = "us-east-1"
  default_tags {
    tags = local.tags
  }
}

provider "helm" {
  kubernetes {
    host                   = module.eks.cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
    }
  }
}

data "aws_availability_zones" "available" {
  # checkov:skip=CKV_AWS_394: Only the first two zones (sorted) are used; a zone AWS adds later sorts after them and changes nothing.
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  name       = var.name
  region     = var.region
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = slice(data.aws_availability_zones.available.names, 0, 2)

  # The API's identity in the cluster (deploy/k8s/base): the only subject its IAM role trusts.
  api_namespace       = "mlops"
  api_service_account = "retail-api-sa"
  # The batch-scoring component's Jobs (deploy/k8s/components/batch-scoring/serviceaccount.yaml).
  batch_service_account = "retail-api-batch-sa"

  tags = merge(var.tags, {
    Project     = "retail-api"
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}

module "vpc" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.21"

  name = local.name
  cidr = var.vpc_cidr
  azs  = local.azs

  # /20 private subnets leave room for one IP per pod (VPC CNI); /24 public ones hold the ALB and NAT.
  private_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 48 + i)]

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway

  # The AWS Load Balancer Controller picks subnets by these tags.
  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }
  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = 1
  }
}

module "eks" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 20.37"

  cluster_name    = local.name
  cluster_version = var.kubernetes_version
  # STANDARD: never billed for extended support ($0.60 instead of $0.10 per cluster-hour). At the
  # end of standard support EKS upgrades the control plane itself, so upgrade before that date
  # (docs/deploy-eks.md, "Versions chosen"). Input since eks module v20.21.0.
  cluster_upgrade_policy = {
    support_type = "STANDARD"
  }

  cluster_endpoint_public_access           = true
  cluster_endpoint_public_access_cidrs     = var.cluster_endpoint_public_access_cidrs
  enable_cluster_creator_admin_permissions = true

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  # Kubernetes secrets encrypted with a KMS key the module creates; every control-plane log on.
  cluster_encryption_config = {
    resources = ["secrets"]
  }
  cluster_enabled_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  cluster_addons = {
    coredns    = {}
    kube-proxy = {}
    vpc-cni = {
      before_compute = true
      # Enforce NetworkPolicy objects (deploy/k8s/base/server/networkpolicy.yaml).
      configuration_values = jsonencode({ enableNetworkPolicy = "true" })
    }
    # Container Insights: node, pod and container metrics and logs in CloudWatch; and the API's
    # own Prometheus metrics as CloudWatch metrics (cloudwatch-observability.yaml says how).
    amazon-cloudwatch-observability = {
      service_account_role_arn = module.cloudwatch_observability_irsa.iam_role_arn
      configuration_values     = jsonencode(yamldecode(file("${path.module}/cloudwatch-observability.yaml")))
    }
  }

  eks_managed_node_groups = {
    default = {
      # Amazon Linux 2023, named: with the module's default (null) the EKS API picks the AMI
      # family, and the plan does not show which.
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.node_instance_types
      capacity_type  = var.node_capacity_type
      min_size       = var.node_min_size
      max_size       = var.node_max_size
      desired_size   = var.node_desired_size
      # IMDSv2 only, one hop: pods cannot borrow the node's role through the metadata service.
      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 1
      }
    }
  }
}

# S3 gateway endpoint: S3 traffic from the private subnets (model downloads, ECR image layers,
# which ECR serves from S3) skips the NAT gateway and its per-GB processing charge. Gateway
# endpoints cost nothing. Interface endpoints (ECR api/dkr, STS, ...) are not made: see
# docs/deploy-eks.md, "Costs", for when they pay off.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = module.vpc.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = module.vpc.private_route_table_ids
  tags              = { Name = "${local.name}-s3" }
}
