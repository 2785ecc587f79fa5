# The way in: WAF web ACL, optional ACM certificate and Route 53 alias. The ALB itself is made by
# the AWS Load Balancer Controller from the Ingress (deploy/k8s/overlays/eks), which names the
# web ACL and the certificate by ARN (scripts/deploy-eks.sh passes these outputs).

resource "aws_wafv2_web_acl" "api" {
  name        = local.name
  description = "retail-api ALB: per-IP rate limit, SQL injection and known bad inputs (seed 002)"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 0
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "rate-limit-per-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-sqli"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesSQLiRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "aws-sqli"
      sampled_requests_enabled   = true
    }
  }

  # Includes the Log4j (Log4Shell) rules.
  rule {
    name     = "aws-known-bad-inputs"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "aws-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.name
    sampled_requests_enabled   = true
  }
}

# WAF requires log group names to start with "aws-waf-logs-".
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  resource_arn            = aws_wafv2_web_acl.api.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
}

resource "aws_kms_key" "logs" {
  description             = "${local.name}: CloudWatch logs and alarm notifications"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.logs_kms.json
}

data "aws_iam_policy_document" "logs_kms" {
  # checkov:skip=CKV_AWS_111: A key policy's "*" resource is the key itself; the services are limited by principal and encryption context.
  # checkov:skip=CKV_AWS_356: A key policy's "*" resource is the key itself; the services are limited by principal and encryption context.
  source_policy_documents = [data.aws_iam_policy_document.alarms_kms.json]

  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}

# Key policy of every key that encrypts an alarm topic: the account's, plus CloudWatch, which
# encrypts the notification it publishes. The AWS managed key alias/aws/sns cannot be used: its
# policy cannot be changed, so alarms publishing to a topic encrypted with it are dropped
# (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services:
# use a customer managed key and allow the service kms:GenerateDataKey* and kms:Decrypt).
data "aws_iam_policy_document" "alarms_kms" {
  # checkov:skip=CKV_AWS_111: A key policy's "*" resource is the key itself; the service is limited by principal.
  # checkov:skip=CKV_AWS_356: A key policy's "*" resource is the key itself; the service is limited by principal.
  source_policy_documents = [data.aws_iam_policy_document.account_kms.json]

  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_acm_certificate" "api" {
  count = var.domain_name == "" ? 0 : 1

  domain_name               = var.domain_name
  subject_alternative_names = var.forecast_domain_name == "" ? [] : [var.forecast_domain_name]
  validation_method         = "DNS"

  lifecycle {
    create_before_destroy = true

    # A variable's validation cannot read another variable before Terraform 1.9, hence here.
    precondition {
      condition     = can(regex("^Z[A-Z0-9]+$", var.hosted_zone_id))
      error_message = "domain_name is set, so hosted_zone_id must be the ID of its Route 53 hosted zone (Z...): the certificate is validated and the alias record made in it."
    }
  }
}

resource "aws_route53_record" "certificate_validation" {
  for_each = {
    for o in(var.domain_name == "" ? [] : aws_acm_certificate.api[0].domain_validation_options) : o.domain_name => o
  }

  zone_id = var.hosted_zone_id
  name    = each.value.resource_record_name
  type    = each.value.resource_record_type
  records = [each.value.resource_record_value]
  ttl     = 300
}

resource "aws_acm_certificate_validation" "api" {
  count = var.domain_name == "" ? 0 : 1

  certificate_arn         = aws_acm_certificate.api[0].arn
  validation_record_fqdns = [for r in aws_route53_record.certificate_validation : r.fqdn]
}

# The ALB the controller made for mlops/retail-api-ingress, if it exists yet. aws_lbs returns an
# empty set rather than failing, so no flag is needed: the first apply (no Ingress yet) finds
# none, the apply after `kubectl apply` finds it, and every later apply (a redeploy) finds it again,
# so the DNS alias, the dashboard and the ALB alarms are never destroyed and recreated. The tags
# use local.name (the cluster name) rather than a module output so the set is read at plan time.
data "aws_lbs" "api" {
  tags = {
    "elbv2.k8s.aws/cluster" = local.name
    "ingress.k8s.aws/stack" = "${local.api_namespace}/retail-api-ingress"
  }

  lifecycle {
    # Checked on every plan (the certificate and records below exist only with domain_name).
    precondition {
      condition     = var.forecast_domain_name == "" || var.domain_name != ""
      error_message = "forecast_domain_name needs domain_name (and hosted_zone_id): its name is added to that certificate and zone."
    }
  }
}

locals {
  alb_found = length(data.aws_lbs.api.arns) > 0
}

data "aws_lb" "api" {
  count = local.alb_found ? 1 : 0

  arn = one(data.aws_lbs.api.arns)
}

# The basket API's target group. The controller tags each of the Ingress's target groups with
# ingress.k8s.aws/resource = <namespace>/<ingress>-<service>:<port as the Ingress names it>; with
# components/forecast the Ingress has a second one (retail-forecast-service), and the stack tag
# alone would match both, which this data source refuses.
data "aws_lb_target_group" "api" {
  count = local.alb_found ? 1 : 0

  tags = {
    "elbv2.k8s.aws/cluster"    = local.name
    "ingress.k8s.aws/stack"    = "${local.api_namespace}/retail-api-ingress"
    "ingress.k8s.aws/resource" = "${local.api_namespace}/retail-api-ingress-retail-api-service:http"
  }
}

resource "aws_route53_record" "api" {
  count = local.alb_found && var.domain_name != "" ? 1 : 0

  zone_id = var.hosted_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = data.aws_lb.api[0].dns_name
    zone_id                = data.aws_lb.api[0].zone_id
    evaluate_target_health = true
  }
}

# The forecast API's host (components/forecast routes it on the same ALB): the same alias.
resource "aws_route53_record" "forecast" {
  count = local.alb_found && var.domain_name != "" && var.forecast_domain_name != "" ? 1 : 0

  zone_id = var.hosted_zone_id
  name    = var.forecast_domain_name
  type    = "A"

  alias {
    name                   = data.aws_lb.api[0].dns_name
    zone_id                = data.aws_lb.api[0].zone_id
    evaluate_target_health = true
  }
}
