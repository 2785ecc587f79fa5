#!/usr/bin/env bash
# From an AWS account to a verified retail-api on EKS, in phases (docs/deploy-eks.md explains
# each one and what it costs):
#   1. terraform apply       VPC, EKS, IRSA roles, ECR, buckets, WAF, controllers, alarms
#   2. kubeconfig            aws eks update-kubeconfig
#   3. build and push        the image, tagged with the git commit, to ECR (immutable tags)
#   4. model                 models/default published to the model bucket (if absent) with
#                            `retail-api registry push` (verified archive + sha256)
#   5. kustomize apply       overlays/eks with this account's values (overlays/eks-live), and
#                            how tokens are checked (auth_mode: the Cognito pool's JWKS, or the
#                            HS256 key from Secrets Manager, given a random value if it has none)
#   6. wait                  rollout, then the ALB's address
#   7. terraform apply       again, now that the ALB exists: ALB dashboard, alarms, DNS alias
#   8. verify                scripts/verify.sh against the public URL
#
#   scripts/deploy-eks.sh [--dry-run] [-var-file=FILE] [other terraform apply arguments]
#
# Arguments are passed to both `terraform apply` runs. A -var-file may live anywhere: a relative
# path is read from the directory you run the script in (it is made absolute before terraform
# runs in deploy/terraform), e.g. -var-file=deploy/terraform/prod.tfvars from the repository root.
# --dry-run prints the commands, with resolved paths and <terraform output> placeholders, and runs
# none of them (no AWS needed). Needs: terraform, aws (v2), kubectl, docker, git, curl, cargo;
# bash 3.2 or later; openssl with auth_mode = "secret". Set AUTO_APPROVE=1 to skip terraform's
# confirmation prompts.
#
# FORECAST=1 also deploys the Retail Forecast API as its own Deployment (overlays/eks-forecast):
# host forecast_domain_name on the same ALB (Terraform), its model from
# s3://<model bucket>/<model_prefix>retail-sales-forecast/model.tar.gz when that object exists,
# else the embedded forecast model; step 8 verifies it too when it has a domain.
set -euo pipefail
usage() { sed -n '2,29p' "$0"; }
caller=$PWD
cd "$(dirname "$0")/.."
# shellcheck source=scripts/eks-lib.sh
. scripts/eks-lib.sh
parse_args "$caller" ${1+"$@"}
need terraform aws kubectl docker git curl cargo

# succeeds CMD...: runs CMD quietly and returns its status; with --dry-run prints it as the check
# that guards what follows and returns 1 (the dry run shows the commands of a first deployment).
succeeds() {
  if $dry_run; then
    printf '# if this fails: %s\n' "$*"
    return 1
  fi
  "$@" >/dev/null 2>&1
}

step "1/8 terraform apply"
tf init -input=false
tf apply -input=false ${approve[@]+"${approve[@]}"} ${tf_args[@]+"${tf_args[@]}"}
region=$(out region)
cluster=$(out cluster_name)
ecr=$(out ecr_repository_url)
bucket=$(out model_bucket)
prefix=$(out model_prefix)
domain=$(out domain_name)
forecast=false
if [[ ${FORECAST:-0} == 1 ]]; then
  forecast=true
  forecast_domain=$(out forecast_domain_name)
fi
certificate=$(out certificate_arn)
auth_mode=$(out auth_mode)

step "2/8 kubeconfig"
run aws eks update-kubeconfig --region "$region" --name "$cluster"
run kubectl get nodes

step "3/8 build and push the image"
# scripts/build-push.sh pushes only the commit tag (the repository's tags are immutable); the
# overlay deploys that tag.
$dry_run || git diff --quiet HEAD || fail "uncommitted changes: commit them so the image tag names what it contains"
tag=$(git rev-parse --short=12 HEAD)
repository=${ecr#*/}
if succeeds aws ecr describe-images --region "$region" --repository-name "$repository" --image-ids imageTag="$tag"; then
  printf '%s:%s is already in ECR\n' "$ecr" "$tag" >&2
else
  run env AWS_REGION="$region" AWS_ACCOUNT_ID="${ecr%%.*}" ECR_REPOSITORY="$repository" "$PWD/scripts/build-push.sh" --push
fi

step "4/8 model artifact in s3://$bucket/${prefix}"
key="${prefix}retail-price-sensitivity/model.tar.gz"
if succeeds aws s3api head-object --bucket "$bucket" --key "$key"; then
  printf 's3://%s/%s exists: kept (publish new versions there; pods reload them)\n' "$bucket" "$key" >&2
else
  run env AWS_REGION="$region" cargo run --release --quiet -- registry push --model models/default --uri "s3://$bucket/$key"
fi
if $forecast; then
  # A trained forecast model, if one was published (retail-api registry push --model DIR --uri
  # s3://<bucket>/<this key>); nothing is published for it here.
  forecast_key="${prefix}retail-sales-forecast/model.tar.gz"
  if succeeds aws s3api head-object --bucket "$bucket" --key "$forecast_key"; then
    forecast_source="s3://$bucket/$forecast_key"
  else
    forecast_source="embedded:retail-sales-forecast"
  fi
  printf 'forecast model: %s\n' "$forecast_source" >&2
fi

step "5/8 kustomize apply (deploy/k8s/overlays/eks-live)"
live=deploy/k8s/overlays/eks-live
if [[ -n $certificate ]]; then
  listeners="      - op: add
        path: /metadata/annotations/alb.ingress.kubernetes.io~1certificate-arn
        value: $certificate"
else
  # No domain, no certificate: plain HTTP on port 80 (docs/deploy-eks.md, "without a domain").
  listeners="      - op: add
        path: /metadata/annotations/alb.ingress.kubernetes.io~1listen-ports
        value: '[{\"HTTP\": 80}]'
      - op: remove
        path: /metadata/annotations/alb.ingress.kubernetes.io~1ssl-redirect
      - op: remove
        path: /metadata/annotations/alb.ingress.kubernetes.io~1certificate-arn"
fi
# Authentication (deploy/terraform/auth.tf, docs/deploy-eks.md "Authentication"). Terraform
# allows only "cognito" and "secret"; a dry run shows the default, cognito.
if [[ $auth_mode == secret ]]; then
  auth_secret=$(out auth_secret_name)
  # The first deployment gives the secret a random 48-byte value (never on the command line).
  if ! succeeds aws secretsmanager get-secret-value --region "$region" --secret-id "$auth_secret" --query VersionId; then
    if $dry_run; then
      printf '+ aws secretsmanager put-secret-value --region %s --secret-id %s --secret-string file://<48 random bytes, base64>\n' "$region" "$auth_secret"
    else
      command -v openssl >/dev/null || fail "openssl not found: it makes the first JWT_SECRET_KEY"
      key_file=$(mktemp)
      trap 'rm -f "$key_file"' EXIT
      openssl rand -base64 48 | tr -d '\n' >"$key_file"
      aws secretsmanager put-secret-value --region "$region" --secret-id "$auth_secret" --secret-string "file://$key_file" >/dev/null
      rm -f "$key_file"
    fi
  fi
  auth_components="components:
  - ../../components/auth-secret"
  auth_literals=""
  auth_patches="  - target:
      kind: ServiceAccount
      name: retail-api-secrets
    patch: |-
      - op: replace
        path: /metadata/annotations/eks.amazonaws.com~1role-arn
        value: $(out external_secrets_role_arn)
  - target:
      kind: SecretStore
      name: aws-secrets-manager
    patch: |-
      - op: replace
        path: /spec/provider/aws/region
        value: $region
  - target:
      kind: ExternalSecret
      name: retail-api-auth
    patch: |-
      - op: replace
        path: /spec/data/0/remoteRef/key
        value: $auth_secret"
else
  auth_components=""
  auth_literals="      - JWT_JWKS_URL=$(out auth_jwks_url)
      - JWT_ISSUER=$(out auth_issuer)
      - JWT_AUDIENCE=$(out auth_audience)"
  auth_patches=""
fi
# FORECAST=1: the forecast API's Deployment too, its model source, and its host on the ALB.
if $forecast; then
  base_overlay=eks-forecast
  forecast_config="  - name: retail-forecast-api-config
    namespace: mlops
    behavior: merge
    literals:
      - MODELS=retail-sales-forecast=$forecast_source"
  forecast_patches=""
  if [[ -n $forecast_domain ]]; then
    forecast_patches="  - target:
      kind: Ingress
      name: retail-api-ingress
    patch: |-
      - op: replace
        path: /spec/rules/0/host
        value: $forecast_domain"
  fi
else
  base_overlay=eks
  forecast_config=""
  forecast_patches=""
fi
overlay() {
  cat <<YAML
# Generated by scripts/deploy-eks.sh from the Terraform outputs; not committed.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../$base_overlay
configMapGenerator:
  - name: retail-api-config
    behavior: merge
    literals:
      - AWS_REGION=$region
      - MODEL_BUCKET=$bucket
      - MODEL_KEY=$key
$auth_literals
$forecast_config
$auth_components
patches:
  # The image just pushed, in every API Deployment. (An images: entry named retail-api would not
  # match: overlays/eks has already renamed the image to its example registry.)
  - target:
      kind: Deployment
      labelSelector: app.kubernetes.io/part-of=retail-api
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/image
        value: $ecr:$tag
  - target:
      kind: ServiceAccount
      name: retail-api-sa
    patch: |-
      - op: add
        path: /metadata/annotations/eks.amazonaws.com~1role-arn
        value: $(out api_role_arn)
  - target:
      kind: Ingress
      name: retail-api-ingress
    patch: |-
      - op: add
        path: /metadata/annotations/alb.ingress.kubernetes.io~1wafv2-acl-arn
        value: $(out waf_acl_arn)
      - op: add
        path: /metadata/annotations/alb.ingress.kubernetes.io~1load-balancer-attributes
        value: access_logs.s3.enabled=true,access_logs.s3.bucket=$(out alb_logs_bucket),access_logs.s3.prefix=alb,idle_timeout.timeout_seconds=60,routing.http.drop_invalid_header_fields.enabled=true
$listeners
$forecast_patches
$auth_patches
YAML
}
if $dry_run; then
  printf '+ write %s/kustomization.yaml:\n' "$PWD/$live"
  overlay | sed 's/^/    /'
else
  mkdir -p "$live"
  overlay >"$live/kustomization.yaml"
fi
run kubectl apply -k "$PWD/$live"

step "6/8 wait for the rollout and the ALB"
run kubectl -n mlops rollout status deployment/retail-api --timeout=300s
if $forecast; then
  run kubectl -n mlops rollout status deployment/retail-forecast-api --timeout=300s
fi
alb_host() { run kubectl -n mlops get ingress retail-api-ingress -o jsonpath='{.status.loadBalancer.ingress[0].hostname}'; }
if $dry_run; then
  alb_host
  host="<alb-hostname>"
else
  host=""
  for _ in $(seq 60); do
    host=$(alb_host)
    [[ -n $host ]] && break
    sleep 10
  done
  [[ -n $host ]] || fail "the Ingress got no ALB in 10 minutes: kubectl -n kube-system logs deploy/aws-load-balancer-controller"
fi
printf 'ALB: %s\n' "$host" >&2

step "7/8 terraform apply (ALB dashboard, alarms, DNS alias)"
tf apply -input=false ${approve[@]+"${approve[@]}"} ${tf_args[@]+"${tf_args[@]}"}

step "8/8 verify"
if [[ -n $domain ]]; then
  url="https://$domain"
else
  url="http://$host"
fi
# A new ALB's DNS name and targets take a few minutes to answer.
if ! $dry_run; then
  for _ in $(seq 30); do
    curl -fsS --max-time 5 -o /dev/null "$url/ready" && break
    sleep 10
  done
fi
# verify.sh calls the protected routes with a token: from the Cognito token endpoint (client
# credentials), or minted with the HS256 secret from Secrets Manager (`retail-api token`).
if $dry_run; then
  token="<access token>"
elif [[ $auth_mode == secret ]]; then
  token=$(JWT_SECRET_KEY=$(aws secretsmanager get-secret-value --region "$region" --secret-id "$auth_secret" \
    --query SecretString --output text) cargo run --release --quiet -- token --sub deploy-eks-verify --scopes "predict model:read" --ttl 15m)
else
  token=$(curl -fsS -X POST "$(out auth_token_url)" -u "$(out auth_client_id):$(out auth_client_secret)" \
    -d grant_type=client_credentials | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
fi
$dry_run && printf '+ RETAIL_API_TOKEN=%s %s\n' "$token" "$PWD/scripts/verify.sh $url --public"
$dry_run || RETAIL_API_TOKEN=$token "$PWD/scripts/verify.sh" "$url" --public
$dry_run || printf '\nretail-api is live at %s (docs: %s/docs/)\n' "$url" "$url" >&2
if $forecast; then
  if [[ -n $forecast_domain ]]; then
    forecast_url="https://$forecast_domain"
    if ! $dry_run; then
      for _ in $(seq 30); do
        curl -fsS --max-time 5 -o /dev/null "$forecast_url/ready" && break
        sleep 10
      done
    fi
    $dry_run && printf '+ RETAIL_API_TOKEN=%s %s\n' "$token" "$PWD/scripts/verify.sh $forecast_url --public --forecast"
    $dry_run || RETAIL_API_TOKEN=$token "$PWD/scripts/verify.sh" "$forecast_url" --public --forecast
    $dry_run || printf 'the forecast API is live at %s\n' "$forecast_url" >&2
  else
    # No DNS name routes to the forecast host: reach it on the ALB with its Host header.
    insecure=""
    [[ $url == https://* ]] && insecure="-k "
    printf 'the forecast API answers on the ALB for host api.retail-forecast.com (set forecast_domain_name for a name and a certificate):\n  curl %s-H "Host: api.retail-forecast.com" %s://%s/healthz\n' \
      "$insecure" "${url%%://*}" "$host" >&2
  fi
fi
