# Who may call the API (issue 13). var.auth_mode picks one of two ways; the other makes nothing.
#
#   cognito (default): an Amazon Cognito user pool is the token issuer. Callers are machines: an
#     app client with a secret gets an RS256 access token from the pool's /oauth2/token endpoint
#     (client-credentials grant) and sends it as a Bearer token. The pods verify it with the pool's
#     JWKS (JWT_JWKS_URL, JWT_ISSUER, JWT_AUDIENCE, written by scripts/deploy-eks.sh).
#   secret: the seed's HS256 shared key (seed 002, 5.3: JWT_SECRET_KEY "in AWS Secrets Manager")
#     in a Secrets Manager secret under its own KMS key. External Secrets Operator copies it into
#     the Secret mlops/retail-api-auth (deploy/k8s/components/auth-secret), assuming an IRSA role
#     that may read that one secret and nothing else.
#
# Argument names: terraform-provider-aws website/docs/r/cognito_user_pool, cognito_resource_server,
# cognito_user_pool_client, cognito_user_pool_domain and secretsmanager_secret .html.markdown.

locals {
  auth_cognito = var.auth_mode == "cognito"
  auth_secret  = var.auth_mode == "secret"

  # Cognito writes a resource server's scopes into access tokens as "<identifier>/<scope>"
  # (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_ResourceServerScopeType.html):
  # "retail-api/predict", not the server's "predict". The API must map them (output
  # auth_scope_prefix; docs/deploy-eks.md, "Authentication").
  auth_resource_server = "retail-api"

  # External Secrets Operator (secret mode): its controller, and the service account in the API's
  # namespace whose IRSA role reads the secret (named by the SecretStore in components/auth-secret).
  eso_namespace           = "external-secrets"
  eso_service_account     = "external-secrets"
  secrets_service_account = "retail-api-secrets"
}

# ---------------------------------------------------------------------------------------------
# cognito

resource "aws_cognito_user_pool" "api" {
  count = local.auth_cognito ? 1 : 0
  name  = local.name

  # No sign-up: the pool holds no users. Its callers are app clients (machines).
  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  # scripts/cleanup.sh must be able to destroy it (ACTIVE would refuse `terraform destroy`).
  deletion_protection = "INACTIVE"
}

# The API's three scopes. Tokens carry them as "retail-api/predict", "retail-api/model:read",
# "retail-api/metrics:read" (":" is allowed in a scope name, "/" is not).
resource "aws_cognito_resource_server" "api" {
  count        = local.auth_cognito ? 1 : 0
  user_pool_id = aws_cognito_user_pool.api[0].id
  identifier   = local.auth_resource_server
  name         = local.name

  scope {
    scope_name        = "predict"
    scope_description = "Score baskets (POST /predict and the batch routes)"
  }
  scope {
    scope_name        = "model:read"
    scope_description = "Read the serving model's information and metrics (/model/...)"
  }
  scope {
    scope_name        = "metrics:read"
    scope_description = "Read the Prometheus exposition (/metrics)"
  }
}

# One machine-to-machine client: the client-credentials grant only, with a secret, allowed to ask
# for predict and model:read. metrics:read is defined above but not granted: Prometheus scrapes
# inside the cluster (METRICS_PUBLIC, components/servicemonitor), and the ALB refuses /metrics.
# Cognito bills each client-credentials app client per month, and each token it issues
# (docs/deploy-eks.md, "Costs"): callers should reuse a token until it expires.
resource "aws_cognito_user_pool_client" "api" {
  count        = local.auth_cognito ? 1 : 0
  name         = "${local.name}-m2m"
  user_pool_id = aws_cognito_user_pool.api[0].id

  generate_secret                      = true
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["client_credentials"]
  allowed_oauth_scopes = [
    "${aws_cognito_resource_server.api[0].identifier}/predict",
    "${aws_cognito_resource_server.api[0].identifier}/model:read",
  ]

  access_token_validity = 60
  token_validity_units {
    access_token = "minutes"
  }
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true
}

# The pool's token endpoint: https://<domain>.auth.<region>.amazoncognito.com/oauth2/token
# (https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html). A prefix domain
# is unique per region, hence the account ID in it.
resource "aws_cognito_user_pool_domain" "api" {
  count        = local.auth_cognito ? 1 : 0
  domain       = "${local.name}-${local.account_id}"
  user_pool_id = aws_cognito_user_pool.api[0].id
}

# ---------------------------------------------------------------------------------------------
# secret

resource "aws_kms_key" "auth" {
  count                   = local.auth_secret ? 1 : 0
  description             = "${local.name}: the API's JWT signing key in Secrets Manager"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.account_kms.json
}

resource "aws_kms_alias" "auth" {
  count         = local.auth_secret ? 1 : 0
  name          = "alias/${local.name}-auth"
  target_key_id = aws_kms_key.auth[0].key_id
}

# The secret's value is not in Terraform (nor in its state): scripts/deploy-eks.sh puts a random
# one on the first deployment, or you put your own (docs/deploy-eks.md, "Authentication").
resource "aws_secretsmanager_secret" "jwt" {
  # checkov:skip=CKV2_AWS_57: No rotation Lambda: an HS256 key is shared with whoever issues the tokens, so it rotates when they do (docs/deploy-eks.md, "Authentication": put a new value, then restart the pods).
  count       = local.auth_secret ? 1 : 0
  name        = "${local.name}/jwt-secret-key"
  description = "HS256 key retail-api verifies tokens with (JWT_SECRET_KEY), synced into mlops/retail-api-auth by External Secrets Operator"
  kms_key_id  = aws_kms_key.auth[0].arn
  # A deleted secret's name stays taken this long (restore it with `aws secretsmanager restore-secret`).
  recovery_window_in_days = 7
}

# Read that one secret, and decrypt it only through Secrets Manager. A data[].remoteRef without
# metadataPolicy: Fetch makes ESO call GetSecretValue alone (providers/v1/aws/secretsmanager/
# secretsmanager.go, constructSecretValue, at tag helm-chart-2.8.0 of external-secrets).
data "aws_iam_policy_document" "external_secrets" {
  count = local.auth_secret ? 1 : 0

  statement {
    sid       = "ReadTheJwtSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.jwt[0].arn]
  }

  statement {
    sid       = "DecryptTheJwtSecret"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.auth[0].arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "external_secrets" {
  count       = local.auth_secret ? 1 : 0
  name        = "${local.name}-external-secrets"
  description = "External Secrets Operator for retail-api: read the API's JWT secret, nothing else"
  policy      = data.aws_iam_policy_document.external_secrets[0].json
}

# Trusts the service account the SecretStore names (mlops/retail-api-secrets), not the operator's
# own: ESO requests that account's token and assumes this role with it, so only a SecretStore in
# the API's namespace can read the secret.
module "external_secrets_irsa" {
  # checkov:skip=CKV_TF_1: Registry module pinned by version ("~>", house style); the registry serves versions, not commit hashes.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.60"
  count   = local.auth_secret ? 1 : 0

  role_name = "${local.name}-external-secrets"
  role_policy_arns = {
    secret = aws_iam_policy.external_secrets[0].arn
  }

  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["${local.api_namespace}:${local.secrets_service_account}"]
    }
  }
}

# Chart 2.8.0 (app v2.8.0) serves external-secrets.io/v1 SecretStore and ExternalSecret (v1beta1
# no longer served) and is the release tested on Kubernetes 1.35 (deploy/tests/chart-versions.json).
# The controller gets no AWS role, and may create tokens only for the service accounts a Role
# grants it (components/auth-secret/rbac.yaml: retail-api-secrets), not cluster-wide.
resource "helm_release" "external_secrets" {
  count            = local.auth_secret ? 1 : 0
  name             = "external-secrets"
  repository       = "https://charts.external-secrets.io"
  chart            = "external-secrets"
  version          = "2.8.0" # app v2.8.0
  namespace        = local.eso_namespace
  create_namespace = true
  wait             = true

  values = [yamlencode({
    installCRDs    = true
    serviceAccount = { name = local.eso_service_account }
    rbac           = { serviceAccountTokenCreate = false }
  })]

  depends_on = [module.eks, helm_release.aws_load_balancer_controller]
}
