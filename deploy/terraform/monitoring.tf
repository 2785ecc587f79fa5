# CloudWatch: ALB dashboard and alarms (second apply, once the ALB exists), and monthly cost
# alarms (billing metrics: enable "Receive Billing Alerts" in the Billing console first).

locals {
  alb = var.alb_lookup ? {
    lb = data.aws_lb.api[0].arn_suffix
    tg = data.aws_lb_target_group.api[0].arn_suffix
  } : null
}

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.logs.id
}

resource "aws_sns_topic_subscription" "alarms_email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# The billing alarms live in us-east-1, so they notify a topic there.
resource "aws_sns_topic" "billing_alarms" {
  provider = aws.billing

  name              = "${local.name}-billing-alarms"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "billing_alarms_email" {
  provider = aws.billing
  count    = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.billing_alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_dashboard" "alb" {
  count = var.alb_lookup ? 1 : 0

  dashboard_name = "${local.name}-alb"
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Requests and responses (per minute)"
          region = local.region
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", local.alb.lb],
            [".", "HTTPCode_Target_2XX_Count", ".", "."],
            [".", "HTTPCode_Target_4XX_Count", ".", "."],
            [".", "HTTPCode_Target_5XX_Count", ".", "."],
            [".", "HTTPCode_ELB_5XX_Count", ".", "."],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Target response time (seconds)"
          region = local.region
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", local.alb.lb, { stat = "p50" }],
            ["...", { stat = "p99" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Healthy and unhealthy targets"
          region = local.region
          stat   = "Minimum"
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", local.alb.tg, "LoadBalancer", local.alb.lb],
            [".", "UnHealthyHostCount", ".", ".", ".", "."],
          ]
        }
      },
    ]
  })
}

resource "aws_cloudwatch_metric_alarm" "target_5xx_rate" {
  count = var.alb_lookup ? 1 : 0

  alarm_name          = "${local.name}-target-5xx-rate"
  alarm_description   = "More than ${var.alarm_5xx_percent}% of requests answered 5xx by the pods, 3 minutes out of 5"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_5xx_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "100 * errors / MAX([requests, 1])"
    label       = "5xx %"
    return_data = true
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = local.alb.lb }
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = local.alb.lb }
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "p99_latency" {
  count = var.alb_lookup ? 1 : 0

  alarm_name          = "${local.name}-p99-response-time"
  alarm_description   = "p99 target response time above ${var.alarm_p99_seconds} s for 5 minutes"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = local.alb.lb }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_p99_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_hosts" {
  count = var.alb_lookup ? 1 : 0

  alarm_name          = "${local.name}-unhealthy-targets"
  alarm_description   = "A pod failed the ALB health check (/ready) for 3 minutes"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = local.alb.lb, TargetGroup = local.alb.tg }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "monthly_cost" {
  provider = aws.billing

  alarm_name          = "${local.name}-monthly-estimated-charges"
  alarm_description   = "The month's estimated charges for the account exceed ${var.monthly_budget_usd} USD"
  namespace           = "AWS/Billing"
  metric_name         = "EstimatedCharges"
  dimensions          = { Currency = "USD" }
  statistic           = "Maximum"
  period              = 21600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.monthly_budget_usd
  alarm_actions       = [aws_sns_topic.billing_alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "monthly_lb_cost" {
  provider = aws.billing

  alarm_name          = "${local.name}-monthly-load-balancer-charges"
  alarm_description   = "The month's estimated load-balancing charges exceed ${var.monthly_lb_budget_usd} USD (seed 002)"
  namespace           = "AWS/Billing"
  metric_name         = "EstimatedCharges"
  dimensions          = { Currency = "USD", ServiceName = var.billing_lb_service_name }
  statistic           = "Maximum"
  period              = 21600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.monthly_lb_budget_usd
  alarm_actions       = [aws_sns_topic.billing_alarms.arn]
}
