# Container registry, model bucket and the ALB access-log bucket.

module "ecr" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/ecr/aws"
  version = "~> 2.4"

  repository_name                 = local.name
  repository_image_tag_mutability = "IMMUTABLE"
  repository_image_scan_on_push   = true
  repository_encryption_type      = "KMS"
  repository_force_delete         = true
  # No repository policy: pull access comes from the node role (AmazonEC2ContainerRegistryReadOnly),
  # push from IAM users. Both flags are needed: with attach_repository_policy at its default (true)
  # the module attaches var.repository_policy (null) when create_repository_policy is false, and
  # the plan stops with "Missing required argument" (v2.4.0 main.tf, aws_ecr_repository_policy.this).
  create_repository_policy = false
  attach_repository_policy = false

  repository_lifecycle_policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 30 images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 30
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_kms_key" "models" {
  description             = "${local.name}: model artifacts"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.account_kms.json
}

resource "aws_kms_alias" "models" {
  name          = "alias/${local.name}-models"
  target_key_id = aws_kms_key.models.key_id
}

# Key policy: the account administers and uses the key through IAM (the API role's policy grants
# kms:Decrypt on this key only).
data "aws_iam_policy_document" "account_kms" {
  # checkov:skip=CKV_AWS_109: A key policy's "*" resource is the key itself; this is the default key policy (IAM decides who uses the key).
  # checkov:skip=CKV_AWS_111: A key policy's "*" resource is the key itself; this is the default key policy (IAM decides who uses the key).
  # checkov:skip=CKV_AWS_356: A key policy's "*" resource is the key itself; this is the default key policy (IAM decides who uses the key).
  statement {
    sid       = "AccountAdministersThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

module "model_bucket" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/s3-bucket/aws"
  version = "~> 4.11"

  bucket        = "${local.name}-models-${local.account_id}"
  force_destroy = true

  versioning = {
    enabled = true
  }

  server_side_encryption_configuration = {
    rule = {
      apply_server_side_encryption_by_default = {
        sse_algorithm     = "aws:kms"
        kms_master_key_id = aws_kms_key.models.arn
      }
      bucket_key_enabled = true
    }
  }

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true

  control_object_ownership              = true
  object_ownership                      = "BucketOwnerEnforced"
  attach_deny_insecure_transport_policy = true

  logging = {
    target_bucket = module.alb_logs_bucket.s3_bucket_id
    target_prefix = "s3-access/models/"
  }
}

# ALB access logs (and the model bucket's server access logs). ALB log delivery only supports
# SSE-S3, so this bucket cannot use the KMS key.
module "alb_logs_bucket" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/s3-bucket/aws"
  version = "~> 4.11"

  bucket        = "${local.name}-alb-logs-${local.account_id}"
  force_destroy = true

  versioning = {
    enabled = true
  }

  server_side_encryption_configuration = {
    rule = {
      apply_server_side_encryption_by_default = {
        sse_algorithm = "AES256"
      }
    }
  }

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true

  control_object_ownership              = true
  object_ownership                      = "BucketOwnerEnforced"
  attach_deny_insecure_transport_policy = true
  attach_elb_log_delivery_policy        = true
  attach_lb_log_delivery_policy         = true
  attach_access_log_delivery_policy     = true
  access_log_delivery_policy_source_buckets = [
    "arn:${local.partition}:s3:::${local.name}-models-${local.account_id}",
  ]

  lifecycle_rule = [{
    id      = "expire-logs"
    enabled = true
    expiration = {
      days = 90
    }
    noncurrent_version_expiration = {
      days = 7
    }
    abort_incomplete_multipart_upload_days = 1
  }]
}
