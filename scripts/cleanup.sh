#!/usr/bin/env bash
# Back to zero cost: deletes what scripts/deploy-eks.sh made, in the order that leaves nothing
# behind. Kubernetes objects first (the AWS Load Balancer Controller then deletes the ALB, its
# target groups and security groups), then any load balancer or target group still tagged for
# the cluster, the ECR images, and finally everything Terraform made.
#
#   scripts/cleanup.sh [-var-file=deploy/terraform/prod.tfvars]
#
# Arguments are passed to `terraform destroy`. AUTO_APPROVE=1 skips its confirmation prompt.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

for tool in terraform aws kubectl; do
  command -v "$tool" >/dev/null || { printf 'error: %s not found\n' "$tool" >&2; exit 1; }
done
tf() { terraform -chdir=deploy/terraform "$@"; }
region=$(tf output -raw region)
cluster=$(tf output -raw cluster_name)
ecr=$(tf output -raw ecr_repository_url)
approve=()
[[ ${AUTO_APPROVE:-0} == 1 ]] && approve=(-auto-approve)

step "1/4 Kubernetes objects (the controller removes the ALB)"
if aws eks update-kubeconfig --region "$region" --name "$cluster" >/dev/null 2>&1; then
  kubectl delete ingress,service -n mlops --all --ignore-not-found --timeout=180s || true
  kubectl delete namespace mlops --ignore-not-found --timeout=300s || true
else
  printf 'cluster %s not reachable: skipping\n' "$cluster" >&2
fi

step "2/4 leftover load balancers and target groups tagged for $cluster"
leftovers() {
  aws resourcegroupstaggingapi get-resources --region "$region" \
    --tag-filters "Key=elbv2.k8s.aws/cluster,Values=$cluster" \
    --resource-type-filters "$1" --query 'ResourceTagMappingList[].ResourceARN' --output text
}
for arn in $(leftovers elasticloadbalancing:loadbalancer); do
  printf 'deleting %s\n' "$arn" >&2
  aws elbv2 delete-load-balancer --region "$region" --load-balancer-arn "$arn"
done
# Target groups can only go once no load balancer uses them.
sleep 15
for arn in $(leftovers elasticloadbalancing:targetgroup); do
  printf 'deleting %s\n' "$arn" >&2
  aws elbv2 delete-target-group --region "$region" --target-group-arn "$arn" || true
done

step "3/4 ECR images"
repository=${ecr#*/}
digests=$(aws ecr list-images --region "$region" --repository-name "$repository" \
  --query 'imageIds[].imageDigest' --output text 2>/dev/null || true)
for digest in $digests; do
  aws ecr batch-delete-image --region "$region" --repository-name "$repository" \
    --image-ids imageDigest="$digest" >/dev/null
done
printf '%s image(s) deleted\n' "$(wc -w <<<"$digests")" >&2

step "4/4 terraform destroy"
tf destroy -input=false "${approve[@]}" "$@"
rm -rf deploy/k8s/overlays/eks-live

printf '\nLeft behind (should be empty):\n' >&2
aws resourcegroupstaggingapi get-resources --region "$region" --tag-filters "Key=Project,Values=retail-api" \
  --query 'ResourceTagMappingList[].ResourceARN' --output text
aws resourcegroupstaggingapi get-resources --region "$region" \
  --tag-filters "Key=elbv2.k8s.aws/cluster,Values=$cluster" --query 'ResourceTagMappingList[].ResourceARN' --output text
