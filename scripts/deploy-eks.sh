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
set -euo pipefail
usage() { sed -n '2,24p' "$0"; }
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
overlay() {
  cat <<YAML
# Generated by scripts/deploy-eks.sh from the Terraform outputs; not committed.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../eks
images:
  - name: retail-api
    newName: $ecr
    newTag: "$tag"
configMapGenerator:
  - name: retail-api-config
    behavior: merge
    literals:
      - AWS_REGION=$region
      - MODEL_BUCKET=$bucket
      - MODEL_KEY=$key
$auth_literals
$auth_components
patches:
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
