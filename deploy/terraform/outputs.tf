output "region" {
  description = "AWS region of the deployment."
  value       = local.region
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "kubeconfig_command" {
  description = "Command that points kubectl at the cluster."
  value       = "aws eks update-kubeconfig --region ${local.region} --name ${module.eks.cluster_name}"
}

output "api_role_arn" {
  description = "IRSA role of the API (annotation of ServiceAccount mlops/retail-api-sa)."
  value       = module.api_irsa.iam_role_arn
}

output "lb_controller_role_arn" {
  description = "IRSA role of the AWS Load Balancer Controller."
  value       = module.lb_controller_irsa.iam_role_arn
}

output "cluster_autoscaler_role_arn" {
  description = "IRSA role of the Cluster Autoscaler."
  value       = module.cluster_autoscaler_irsa.iam_role_arn
}

output "ecr_repository_url" {
  description = "ECR repository to push the image to."
  value       = module.ecr.repository_url
}

output "model_bucket" {
  description = "S3 bucket holding model artifacts (the API reads under model_prefix)."
  value       = module.model_bucket.s3_bucket_id
}

output "model_prefix" {
  description = "Key prefix the API may read in the model bucket."
  value       = var.model_prefix
}

output "alb_logs_bucket" {
  description = "S3 bucket for ALB access logs (Ingress annotation)."
  value       = module.alb_logs_bucket.s3_bucket_id
}

output "waf_acl_arn" {
  description = "WAFv2 web ACL ARN (Ingress annotation)."
  value       = aws_wafv2_web_acl.api.arn
}

output "certificate_arn" {
  description = "Validated ACM certificate ARN, or empty without domain_name."
  value       = var.domain_name == "" ? "" : aws_acm_certificate_validation.api[0].certificate_arn
}

output "domain_name" {
  description = "Public host name of the API, or empty."
  value       = var.domain_name
}

output "alarm_topic_arn" {
  description = "SNS topic of the ALB alarms."
  value       = aws_sns_topic.alarms.arn
}
