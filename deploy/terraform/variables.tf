variable "region" {
  description = "AWS region for every regional resource (the billing alarm always lives in us-east-1)."
  type        = string
  default     = "ap-southeast-1"
}

variable "name" {
  description = "Name prefix of every resource; also the EKS cluster name."
  type        = string
  default     = "retail-api"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name: 3-31 lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment tag (prod, staging, ...)."
  type        = string
  default     = "prod"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version. In standard support until 2027-03-27 for 1.35. The manifests need >= 1.30 (preStop sleep action); the cluster-autoscaler chart in addons.tf must match this minor."
  type        = string
  default     = "1.35"

  validation {
    condition     = can(regex("^1\\.(3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version: a minor version such as \"1.35\", 1.30 or later (the manifests use the preStop sleep action)."
  }
}

variable "vpc_cidr" {
  description = "VPC CIDR. deploy/k8s/base/server/networkpolicy.yaml admits load-balancer traffic from this range, and TRUSTED_PROXIES in deploy/k8s/overlays/eks/eks.env trusts its X-Forwarded-For: change all together."
  type        = string
  default     = "10.0.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for both AZs (cheaper) instead of one per AZ (survives an AZ outage)."
  type        = bool
  default     = true
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public Kubernetes API endpoint (narrow this to your office or CI)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "node_instance_types" {
  description = "Instance types of the managed node group (several types help Spot capacity)."
  type        = list(string)
  default     = ["t3.medium"]
}

variable "node_capacity_type" {
  description = "ON_DEMAND, or SPOT (about 60-70% cheaper, nodes can be reclaimed with a 2-minute notice)."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_min_size" {
  description = "Fewest nodes (the Cluster Autoscaler never goes below)."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Most nodes the Cluster Autoscaler may add for pending pods."
  type        = number
  default     = 4
}

variable "node_desired_size" {
  description = "Nodes at creation; afterwards the Cluster Autoscaler owns the number."
  type        = number
  default     = 2
}

variable "model_prefix" {
  description = "Key prefix in the model bucket the API may read (its IRSA role reads nothing else)."
  type        = string
  default     = "models/"
}

variable "batch_input_prefix" {
  description = "Key prefix in the model bucket that batch scoring Jobs read (deploy/k8s/components/batch-scoring)."
  type        = string
  default     = "batch/input/"
}

variable "batch_output_prefix" {
  description = "Key prefix in the model bucket that batch scoring Jobs write their scores to."
  type        = string
  default     = "batch/output/"
}

variable "model_package_group" {
  description = "SageMaker Model Registry group the API may list and describe."
  type        = string
  default     = "retail-price-sensitivity-models"
}

variable "domain_name" {
  description = "Public host name of the API (e.g. api.example.com). Empty: no ACM certificate, no DNS record, HTTP only."
  type        = string
  default     = ""
}

variable "forecast_domain_name" {
  description = "Public host name of the Retail Forecast API (FORECAST=1 scripts/deploy-eks.sh: its own Deployment, routed by host on the same ALB), e.g. forecast.example.com. Needs domain_name, and the same hosted zone: it is added to the certificate and gets an alias record. Empty: the Ingress keeps the example host api.retail-forecast.com, without certificate or DNS."
  type        = string
  default     = ""
}

variable "hosted_zone_id" {
  description = "Route 53 hosted zone of domain_name (for certificate validation and the alias record)."
  type        = string
  default     = ""
}

variable "waf_rate_limit" {
  description = "Requests per IP per 5-minute window before WAF blocks it (seed 002: 3000)."
  type        = number
  default     = 3000
}

variable "alarm_email" {
  description = "E-mail subscribed to the alarm topic (empty: none; confirm the subscription mail)."
  type        = string
  default     = ""
}

variable "alarm_p99_seconds" {
  description = "Alarm when the ALB's p99 target response time stays above this many seconds."
  type        = number
  default     = 0.5
}

variable "alarm_5xx_percent" {
  description = "Alarm when this percentage of requests gets a 5xx, from the targets or from the ALB."
  type        = number
  default     = 1
}

variable "alarm_app_mean_seconds" {
  description = "Mean request time inside the pods (the API's own histogram) above which the app_latency alarm fires."
  type        = number
  default     = 0.1
}

variable "alarm_drift_psi" {
  description = "PSI at or above which the drift alarms fire (the server's own alert threshold, DRIFT_PSI_ALERT, is 0.2)."
  type        = number
  default     = 0.2
}

variable "monthly_budget_usd" {
  description = "Alarm when the month's estimated charges for the whole account exceed this (USD)."
  type        = number
  default     = 300
}

variable "monthly_lb_budget_usd" {
  description = "Alarm when the month's estimated load-balancing charges exceed this (USD), as seed 002 asks."
  type        = number
  default     = 50
}

variable "billing_lb_service_name" {
  description = "ServiceName dimension of load-balancing charges in AWS/Billing (check: aws cloudwatch list-metrics --namespace AWS/Billing --region us-east-1)."
  type        = string
  default     = "AWSELB"
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups made here (WAF logs)."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "auth_mode" {
  description = "How the API checks callers' tokens (docs/deploy-eks.md, \"Authentication\"): \"cognito\" (default) makes a Cognito user pool that issues RS256 access tokens to a client-credentials app client, and the pods verify them with its JWKS; \"secret\" keeps an HS256 key (JWT_SECRET_KEY) in Secrets Manager, synced into the pods' namespace by External Secrets Operator. name must not contain \"aws\", \"amazon\" or \"cognito\" with cognito: it prefixes the Cognito domain."
  type        = string
  default     = "cognito"

  validation {
    condition     = contains(["cognito", "secret"], var.auth_mode)
    error_message = "auth_mode must be \"cognito\" or \"secret\"."
  }
}
