# IAM roles for service accounts (IRSA): each pod identity gets only what it uses.

# The API: read model artifacts under one prefix of the model bucket, decrypt them, and read the
# SageMaker Model Registry group. Nothing else: no writes, no other bucket, no other group.
data "aws_iam_policy_document" "api" {
  # checkov:skip=CKV_AWS_356: Only sagemaker:ListModelPackages has "*": it supports no resource-level permissions. Everything else is scoped.
  statement {
    sid       = "ReadModelArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${module.model_bucket.s3_bucket_arn}/${var.model_prefix}*"]
  }

  statement {
    sid       = "ListModelPrefix"
    actions   = ["s3:ListBucket"]
    resources = [module.model_bucket.s3_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.model_prefix}*"]
    }
  }

  statement {
    sid       = "DecryptModelArtifacts"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.models.arn]
  }

  statement {
    sid     = "ReadModelRegistryGroup"
    actions = ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"]
    resources = [
      "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:model-package-group/${var.model_package_group}",
      "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:model-package/${var.model_package_group}/*",
    ]
  }

  # ListModelPackages has no resource-level permissions in IAM: "*" is the only resource it takes.
  statement {
    sid       = "ListModelPackages"
    actions   = ["sagemaker:ListModelPackages"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "api" {
  name        = "${local.name}-api"
  description = "retail-api pods: read the model bucket prefix and the model registry group"
  policy      = data.aws_iam_policy_document.api.json
}

module "api_irsa" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.60"

  role_name = "${local.name}-api"
  role_policy_arns = {
    api = aws_iam_policy.api.arn
  }

  # Trust: only the token of system:serviceaccount:mlops:retail-api-sa (sub and aud checked).
  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["${local.api_namespace}:${local.api_service_account}"]
    }
  }
}

# Batch scoring (the batch-scoring Kustomize component's Indexed Job): list and read the input
# prefix, write (multipart) under the output prefix, with the model bucket's key. Nothing else.
data "aws_iam_policy_document" "batch_scoring" {
  statement {
    sid       = "ReadBatchInput"
    actions   = ["s3:GetObject"]
    resources = ["${module.model_bucket.s3_bucket_arn}/${var.batch_input_prefix}*"]
  }

  statement {
    sid       = "ListBatchInput"
    actions   = ["s3:ListBucket"]
    resources = [module.model_bucket.s3_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.batch_input_prefix}*"]
    }
  }

  statement {
    sid       = "WriteBatchOutput"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${module.model_bucket.s3_bucket_arn}/${var.batch_output_prefix}*"]
  }

  statement {
    sid       = "UseModelBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.models.arn]
  }
}

resource "aws_iam_policy" "batch_scoring" {
  name        = "${local.name}-batch-scoring"
  description = "retail-api batch scoring Jobs: read the batch input prefix, write the batch output prefix"
  policy      = data.aws_iam_policy_document.batch_scoring.json
}

module "batch_scoring_irsa" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.60"

  role_name = "${local.name}-batch-scoring"
  role_policy_arns = {
    batch = aws_iam_policy.batch_scoring.arn
  }

  # Trust: only the token of system:serviceaccount:mlops:retail-api-batch-sa.
  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["${local.api_namespace}:${local.batch_service_account}"]
    }
  }
}

module "lb_controller_irsa" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.60"

  role_name                              = "${local.name}-lb-controller"
  attach_load_balancer_controller_policy = true

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:aws-load-balancer-controller"]
    }
  }
}

module "cluster_autoscaler_irsa" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.60"

  role_name                        = "${local.name}-cluster-autoscaler"
  attach_cluster_autoscaler_policy = true
  cluster_autoscaler_cluster_names = [module.eks.cluster_name]

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:cluster-autoscaler"]
    }
  }
}

module "cloudwatch_observability_irsa" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.60"

  role_name                              = "${local.name}-cloudwatch-observability"
  attach_cloudwatch_observability_policy = true

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["amazon-cloudwatch:cloudwatch-agent"]
    }
  }
}
