# Example values for a production deployment:
#   terraform apply -var-file=prod.tfvars
# Every variable is described in variables.tf; unset ones keep their defaults.
region      = "ap-southeast-1"
name        = "retail-api"
environment = "prod"

kubernetes_version = "1.35"
vpc_cidr           = "10.0.0.0/16"
single_nat_gateway = false

# Narrow to the addresses that run kubectl and terraform.
cluster_endpoint_public_access_cidrs = ["203.0.113.0/24"]

node_instance_types = ["t3.medium", "t3a.medium"]
node_capacity_type  = "ON_DEMAND"
node_min_size       = 2
node_max_size       = 6
node_desired_size   = 2

model_prefix        = "models/"
model_package_group = "retail-price-sensitivity-models"

domain_name    = "api.example.com"
hosted_zone_id = "Z0123456789EXAMPLE"

waf_rate_limit = 3000

alarm_email           = "oncall@example.com"
alarm_p99_seconds     = 0.5
alarm_5xx_percent     = 1
monthly_budget_usd    = 400
monthly_lb_budget_usd = 50

tags = {
  Owner      = "mlops"
  CostCenter = "retail-analytics"
}
