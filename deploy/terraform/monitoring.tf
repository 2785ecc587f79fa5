# CloudWatch: ALB dashboard and alarms (from the first apply that finds the Ingress's ALB, see
# edge.tf), and monthly cost alarms (billing metrics: enable "Receive Billing Alerts" in the
# Billing console first).

locals {
  alb = local.alb_found ? {
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

# The billing alarms live in us-east-1, so they notify a topic there, encrypted with a key there
# whose policy lets CloudWatch publish (edge.tf, alarms_kms).
resource "aws_kms_key" "billing_alarms" {
  provider = aws.billing

  description             = "${local.name}: billing alarm notifications (us-east-1)"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.alarms_kms.json
}

resource "aws_sns_topic" "billing_alarms" {
  provider = aws.billing

  name              = "${local.name}-billing-alarms"
  kms_master_key_id = aws_kms_key.billing_alarms.arn
}

resource "aws_sns_topic_subscription" "billing_alarms_email" {
  provider = aws.billing
  count    = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.billing_alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_dashboard" "alb" {
  count = local.alb_found ? 1 : 0

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

# Share of requests answered 5xx, by the pods or by the ALB itself (502/503/504 when no pod
# answers). RequestCount leaves out requests refused before a target was chosen (a 503 with no
# registered target), so the ALB's 5xx are added to it: the ratio then reaches 100% in a total
# outage instead of dividing by nothing. ALB metrics are published only when non-zero, so each
# series is FILLed with 0, and a minute without requests is 0%, not an error or missing data.
# Source: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
resource "aws_cloudwatch_metric_alarm" "error_rate" {
  count = local.alb_found ? 1 : 0

  alarm_name          = "${local.name}-5xx-rate"
  alarm_description   = "More than ${var.alarm_5xx_percent}% of requests answered 5xx (pods or ALB), 3 minutes out of 5"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_5xx_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  # No data at all (no traffic in the window): not an error. The outage case is covered by the
  # healthy_hosts alarm, which treats missing data as breaching.
  treat_missing_data = "notBreaching"
  alarm_actions      = [aws_sns_topic.alarms.arn]
  ok_actions         = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "IF(total > 0, 100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / total, 0)"
    label       = "5xx %"
    return_data = true
  }
  metric_query {
    id         = "total"
    expression = "FILL(requests, 0) + FILL(elb5xx, 0)"
    label      = "requests, including those refused by the ALB"
  }
  dynamic "metric_query" {
    for_each = {
      target5xx = "HTTPCode_Target_5XX_Count"
      elb5xx    = "HTTPCode_ELB_5XX_Count"
      requests  = "RequestCount"
    }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/ApplicationELB"
        metric_name = metric_query.value
        dimensions  = { LoadBalancer = local.alb.lb }
        period      = 60
        stat        = "Sum"
      }
    }
  }
}

# 5xx made by the ALB itself (no healthy pod, pod connection refused or timed out): any burst of
# them, whatever the traffic. Published only when non-zero, so missing data is "no errors".
resource "aws_cloudwatch_metric_alarm" "elb_5xx" {
  count = local.alb_found ? 1 : 0

  alarm_name          = "${local.name}-alb-5xx"
  alarm_description   = "The ALB answered 5xx itself (no pod answered) more than 10 times a minute, 2 minutes out of 3"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_ELB_5XX_Count"
  dimensions          = { LoadBalancer = local.alb.lb }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = 10
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Total outage: no pod passes the health check (/ready). HealthyHostCount is reported only while
# the target group has registered targets, so missing data means every pod is gone: breaching.
resource "aws_cloudwatch_metric_alarm" "healthy_hosts" {
  count = local.alb_found ? 1 : 0

  alarm_name          = "${local.name}-no-healthy-targets"
  alarm_description   = "No pod is healthy behind the ALB for 2 minutes: the API is down"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HealthyHostCount"
  dimensions          = { LoadBalancer = local.alb.lb, TargetGroup = local.alb.tg }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "p99_latency" {
  count = local.alb_found ? 1 : 0

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
  count = local.alb_found ? 1 : 0

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

# The API's own metrics, which the CloudWatch agent publishes in the RetailApi namespace
# (cloudwatch-observability.yaml): they see what the ALB cannot — errors and time inside the
# server, whichever way requests arrive (ALB, internal NLB, in-cluster clients), and model drift.
# They exist without the ALB, so these alarms do not wait for it.
locals {
  app_metrics = { namespace = "RetailApi", dimensions = { ClusterName = module.eks.cluster_name, Namespace = "mlops" } }
}

# Share of 5xx among the requests the pods answered (status_class from the agent's relabelling).
# Counters arrive as increases per scrape, only while pods run: no data is no traffic, not errors.
resource "aws_cloudwatch_metric_alarm" "app_error_ratio" {
  alarm_name          = "${local.name}-app-5xx-ratio"
  alarm_description   = "The pods answered more than ${var.alarm_5xx_percent}% of requests with 5xx, 3 periods of 5 minutes out of 5"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_5xx_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "ratio"
    expression  = "IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)"
    label       = "5xx % (pods)"
    return_data = true
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = local.app_metrics.namespace
      metric_name = "retail_api_requests_total"
      dimensions  = local.app_metrics.dimensions
      period      = 300
      stat        = "Sum"
    }
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = local.app_metrics.namespace
      metric_name = "retail_api_requests_total"
      dimensions  = merge(local.app_metrics.dimensions, { status_class = "5xx" })
      period      = 300
      stat        = "Sum"
    }
  }
}

# Mean time inside the server (the ALB's p99 alarm covers the network and the queue before it).
resource "aws_cloudwatch_metric_alarm" "app_latency" {
  alarm_name          = "${local.name}-app-mean-latency"
  alarm_description   = "Mean request time inside the pods above ${var.alarm_app_mean_seconds} s, 3 periods of 5 minutes out of 5"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_app_mean_seconds
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "mean"
    expression  = "IF(count > 0, FILL(seconds, 0) / count, 0)"
    label       = "mean seconds per request (pods)"
    return_data = true
  }
  dynamic "metric_query" {
    for_each = {
      seconds = "retail_api_request_duration_seconds_sum"
      count   = "retail_api_request_duration_seconds_count"
    }
    content {
      id = metric_query.key
      metric {
        namespace   = local.app_metrics.namespace
        metric_name = metric_query.value
        dimensions  = local.app_metrics.dimensions
        period      = 300
        stat        = "Sum"
      }
    }
  }
}

# Drift: the largest PSI of any model's features (or of its predictions) against its training
# reference, over the server's window (DRIFT_WINDOW_ROWS / DRIFT_WINDOW_SECONDS). At or above the
# server's alert threshold (DRIFT_PSI_ALERT, 0.2) for 30 minutes: the model may be stale. No
# data (no traffic, or too few rows for a verdict) is not drift.
resource "aws_cloudwatch_metric_alarm" "app_drift" {
  for_each = {
    feature    = "retail_api_feature_drift"
    prediction = "retail_api_prediction_drift"
  }

  alarm_name          = "${local.name}-${each.key}-drift"
  alarm_description   = "A model's ${each.key} PSI against its training data is at least ${var.alarm_drift_psi} for 30 minutes (GET /models/{name}/drift says which)"
  namespace           = local.app_metrics.namespace
  metric_name         = each.value
  dimensions          = merge(local.app_metrics.dimensions, { statistic = "psi" })
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 6
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.alarm_drift_psi
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
