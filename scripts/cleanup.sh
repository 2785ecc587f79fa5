#!/usr/bin/env bash
# Back to zero cost: deletes what scripts/deploy-eks.sh made, in the order that leaves nothing
# behind. Kubernetes objects first (the AWS Load Balancer Controller then deletes the ALB, its
# target groups and security groups), then whatever the controller left tagged for the cluster
# (load balancers, target groups, its security groups, which would keep the VPC from being
# deleted), the ECR images, everything Terraform made, and last the Container Insights log groups.
#
#   scripts/cleanup.sh [--dry-run] [-var-file=FILE] [other terraform destroy arguments]
#
# Arguments are passed to `terraform destroy`; a relative -var-file is read from the directory you
# run the script in. --dry-run prints the commands, with resolved paths and placeholders for what
# they would find, and runs none of them (no AWS needed). AUTO_APPROVE=1 skips terraform's
# confirmation prompt. Needs terraform, aws (v2), kubectl; bash 3.2 or later.
set -euo pipefail
usage() { sed -n '2,13p' "$0"; }
caller=$PWD
cd "$(dirname "$0")/.."
# shellcheck source=scripts/eks-lib.sh
. scripts/eks-lib.sh
parse_args "$caller" ${1+"$@"}
need terraform aws kubectl
# The dry run prints the listing commands from inside $(...), through this copy of stdout.
exec 3>&1

# listed PLACEHOLDER CMD...: the words CMD prints (IDs, ARNs, names); with --dry-run it prints CMD
# and yields PLACEHOLDER, so the commands that use each result are shown once.
listed() {
  local placeholder=$1
  shift
  if $dry_run; then
    printf '+ %s\n' "$*" >&3
    printf '%s\n' "$placeholder"
  else
    "$@"
  fi
}

# retry CMD...: CMD until it succeeds, for up to 3 minutes (a load balancer being deleted keeps
# its network interfaces, and so its security groups, in use for a while).
retry() {
  local _
  for _ in $(seq 18); do
    run "$@" && return 0
    sleep 10
  done
  return 1
}

region=$(out region)
cluster=$(out cluster_name)
ecr=$(out ecr_repository_url)
tagged="Key=elbv2.k8s.aws/cluster,Values=$cluster"

step "1/6 Kubernetes objects (the controller removes the ALB)"
if run aws eks update-kubeconfig --region "$region" --name "$cluster" 2>/dev/null; then
  run kubectl delete ingress,service -n mlops --all --ignore-not-found --timeout=180s || true
  run kubectl delete namespace mlops --ignore-not-found --timeout=300s || true
else
  printf 'cluster %s not reachable: skipping\n' "$cluster" >&2
fi

step "2/6 leftover load balancers and target groups tagged for $cluster"
leftovers() {
  listed "<$1-arn>" aws resourcegroupstaggingapi get-resources --region "$region" --tag-filters "$tagged" \
    --resource-type-filters "elasticloadbalancing:$1" --query 'ResourceTagMappingList[].ResourceARN' --output text
}
for arn in $(leftovers loadbalancer); do
  run aws elbv2 delete-load-balancer --region "$region" --load-balancer-arn "$arn"
done
# Target groups can only go once no load balancer uses them.
$dry_run || sleep 15
for arn in $(leftovers targetgroup); do
  run aws elbv2 delete-target-group --region "$region" --target-group-arn "$arn" || true
done

step "3/6 the controller's security groups (k8s-traffic-*, k8s-<namespace>-*) tagged for $cluster"
# When the controller's finalizer never ran (controller gone first, cluster unreachable) its
# frontend and shared backend security groups stay in the VPC, and the VPC delete fails with
# DependencyViolation. Rules in other groups (the nodes') that name one must go first.
# Tags: https://github.com/kubernetes-sigs/aws-load-balancer-controller/blob/main/docs/deploy/security_groups.md
for sg in $(listed '<sg-id>' aws ec2 describe-security-groups --region "$region" \
  --filters "Name=tag:elbv2.k8s.aws/cluster,Values=$cluster" --query 'SecurityGroups[].GroupId' --output text); do
  for other in $(listed '<referencing-sg-id>' aws ec2 describe-security-groups --region "$region" \
    --filters "Name=ip-permission.group-id,Values=$sg" --query 'SecurityGroups[].GroupId' --output text); do
    rules=$(listed '<rule-ids>' aws ec2 describe-security-group-rules --region "$region" \
      --filters "Name=group-id,Values=$other" \
      --query "SecurityGroupRules[?ReferencedGroupInfo.GroupId=='$sg'].SecurityGroupRuleId" --output text)
    # shellcheck disable=SC2086 # one word per rule id
    run aws ec2 revoke-security-group-ingress --region "$region" --group-id "$other" --security-group-rule-ids $rules
  done
  retry aws ec2 delete-security-group --region "$region" --group-id "$sg" ||
    printf 'warning: security group %s could not be deleted; terraform destroy may fail on the VPC\n' "$sg" >&2
done

step "4/6 ECR images"
repository=${ecr#*/}
digests=$(listed '<digest>' aws ecr list-images --region "$region" --repository-name "$repository" \
  --query 'imageIds[].imageDigest' --output text 2>/dev/null || true)
for digest in $digests; do
  run aws ecr batch-delete-image --region "$region" --repository-name "$repository" \
    --image-ids imageDigest="$digest" --query 'failures[]' --output text
done

step "5/6 terraform destroy"
tf destroy -input=false ${approve[@]+"${approve[@]}"} ${tf_args[@]+"${tf_args[@]}"}
run rm -rf "$PWD/deploy/k8s/overlays/eks-live"

step "6/6 Container Insights log groups (/aws/containerinsights/$cluster/...)"
# The CloudWatch agent on the nodes makes these groups and writes to them until the nodes are
# gone, so they are deleted after terraform destroy (deleted earlier, they would come back).
for group in $(listed '<log-group>' aws logs describe-log-groups --region "$region" \
  --log-group-name-prefix "/aws/containerinsights/$cluster/" --query 'logGroups[].logGroupName' --output text); do
  run aws logs delete-log-group --region "$region" --log-group-name "$group"
done

$dry_run && exit 0
printf '\nLeft behind (should be empty):\n' >&2
aws resourcegroupstaggingapi get-resources --region "$region" --tag-filters "Key=Project,Values=retail-api" \
  --query 'ResourceTagMappingList[].ResourceARN' --output text
aws resourcegroupstaggingapi get-resources --region "$region" --tag-filters "$tagged" \
  --query 'ResourceTagMappingList[].ResourceARN' --output text
