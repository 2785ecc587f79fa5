# In-cluster controllers, installed with Helm (pinned chart versions).

resource "helm_release" "aws_load_balancer_controller" {
  name       = "aws-load-balancer-controller"
  repository = "https://aws.github.io/eks-charts"
  chart      = "aws-load-balancer-controller"
  version    = "1.11.0"
  namespace  = "kube-system"

  # Region and VPC are given: pods cannot reach the instance metadata service (hop limit 1).
  values = [yamlencode({
    clusterName = module.eks.cluster_name
    region      = local.region
    vpcId       = module.vpc.vpc_id
    serviceAccount = {
      name        = "aws-load-balancer-controller"
      annotations = { "eks.amazonaws.com/role-arn" = module.lb_controller_irsa.iam_role_arn }
    }
  })]
}

# Node autoscaling (seed 001): adds nodes for pods the HPA creates that do not fit, removes idle
# ones. Managed node groups are tagged for its auto-discovery by EKS.
resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = "9.43.0"
  namespace  = "kube-system"

  values = [yamlencode({
    autoDiscovery = { clusterName = module.eks.cluster_name }
    awsRegion     = local.region
    rbac = {
      serviceAccount = {
        name        = "cluster-autoscaler"
        annotations = { "eks.amazonaws.com/role-arn" = module.cluster_autoscaler_irsa.iam_role_arn }
      }
    }
    extraArgs = {
      balance-similar-node-groups = true
      expander                    = "least-waste"
    }
  })]
}

# Resource metrics for the HorizontalPodAutoscaler (CPU and memory targets).
resource "helm_release" "metrics_server" {
  name       = "metrics-server"
  repository = "https://kubernetes-sigs.github.io/metrics-server/"
  chart      = "metrics-server"
  version    = "3.12.2"
  namespace  = "kube-system"
}
