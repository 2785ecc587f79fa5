# In-cluster controllers, installed with Helm (pinned chart versions; deploy/tests/chart-versions.json
# records each one's appVersion and the Kubernetes versions it supports, and a test checks them
# against var.kubernetes_version).
#
# Order: every release waits for module.eks, which includes the managed node group, so Helm's wait
# (on by default, made explicit) has nodes to schedule on. The other two charts also wait for the
# load balancer controller: its webhooks answer only once its pods are Ready.

resource "helm_release" "aws_load_balancer_controller" {
  name       = "aws-load-balancer-controller"
  repository = "https://aws.github.io/eks-charts"
  chart      = "aws-load-balancer-controller"
  version    = "1.17.1" # app v2.17.1
  namespace  = "kube-system"
  wait       = true

  # Region and VPC are given: pods cannot reach the instance metadata service (hop limit 1).
  # The Service mutator webhook (mservice.elbv2.k8s.aws, failurePolicy Fail) would make the
  # controller the default for every new Service of type LoadBalancer, and would refuse every
  # Service created while its pods are not Ready. The only such Service here (components/nlb)
  # names its loadBalancerClass itself, so the webhook is off.
  values = [yamlencode({
    clusterName                 = module.eks.cluster_name
    region                      = local.region
    vpcId                       = module.vpc.vpc_id
    enableServiceMutatorWebhook = false
    serviceAccount = {
      name        = "aws-load-balancer-controller"
      annotations = { "eks.amazonaws.com/role-arn" = module.lb_controller_irsa.iam_role_arn }
    }
  })]

  depends_on = [module.eks]
}

# Node autoscaling (seed 001): adds nodes for pods the HPA creates that do not fit, removes idle
# ones. Managed node groups are tagged for its auto-discovery by EKS. Its minor version must be
# the control plane's (chart 9.59.0 ships 1.35.0).
resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = "9.59.0" # app 1.35.0
  namespace  = "kube-system"
  wait       = true

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

  depends_on = [module.eks, helm_release.aws_load_balancer_controller]
}

# Resource metrics for the HorizontalPodAutoscaler (CPU and memory targets).
resource "helm_release" "metrics_server" {
  name       = "metrics-server"
  repository = "https://kubernetes-sigs.github.io/metrics-server/"
  chart      = "metrics-server"
  version    = "3.13.1" # app 0.8.1 (Kubernetes 1.31+)
  namespace  = "kube-system"
  wait       = true

  depends_on = [module.eks, helm_release.aws_load_balancer_controller]
}
