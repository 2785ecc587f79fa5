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

output "forecast_domain_name" {
  description = "Public host name of the forecast API (on the same ALB), or empty."
  value       = var.forecast_domain_name
}

output "alarm_topic_arn" {
  description = "SNS topic of the ALB alarms."
  value       = aws_sns_topic.alarms.arn
}

output "auth_mode" {
  description = "How the API checks tokens: cognito or secret (variable auth_mode)."
  value       = var.auth_mode
}

output "auth_jwks_url" {
  description = "JWT_JWKS_URL of the pods: the Cognito user pool's signing keys (cognito mode; empty otherwise)."
  value       = local.auth_cognito ? "https://${aws_cognito_user_pool.api[0].endpoint}/.well-known/jwks.json" : ""
}

output "auth_issuer" {
  description = "JWT_ISSUER of the pods: the user pool's iss claim, https://cognito-idp.<region>.amazonaws.com/<pool id> (cognito mode; empty otherwise)."
  value       = local.auth_cognito ? "https://${aws_cognito_user_pool.api[0].endpoint}" : ""
}

output "auth_audience" {
  description = "JWT_AUDIENCE of the pods: the app client ID, which Cognito access tokens carry as client_id (they have no aud claim) (cognito mode; empty otherwise)."
  value       = local.auth_cognito ? aws_cognito_user_pool_client.api[0].id : ""
}

output "auth_client_id" {
  description = "Client ID of the machine-to-machine app client (cognito mode; empty otherwise)."
  value       = local.auth_cognito ? aws_cognito_user_pool_client.api[0].id : ""
}

output "auth_client_secret" {
  description = "Client secret of the machine-to-machine app client (cognito mode): terraform output -raw auth_client_secret."
  value       = local.auth_cognito ? aws_cognito_user_pool_client.api[0].client_secret : ""
  sensitive   = true
}

output "auth_token_url" {
  description = "Token endpoint for the client-credentials grant (cognito mode; empty otherwise)."
  value       = local.auth_cognito ? "https://${aws_cognito_user_pool_domain.api[0].domain}.auth.${local.region}.amazoncognito.com/oauth2/token" : ""
}

output "auth_scope_prefix" {
  description = "Prefix Cognito puts before the API's scope names in access tokens (\"retail-api/predict\"); empty in secret mode."
  value       = local.auth_cognito ? "${local.auth_resource_server}/" : ""
}

output "auth_secret_name" {
  description = "Secrets Manager secret holding JWT_SECRET_KEY (secret mode; empty otherwise)."
  value       = local.auth_secret ? aws_secretsmanager_secret.jwt[0].name : ""
}

output "external_secrets_role_arn" {
  description = "IRSA role of ServiceAccount mlops/retail-api-secrets, which the SecretStore uses (secret mode; empty otherwise)."
  value       = local.auth_secret ? module.external_secrets_irsa[0].iam_role_arn : ""
}
