#!/usr/bin/env bash
# Load against a deployed retail-api, and the autoscaling it causes.
#
#   loadtest/run.sh ab BASE_URL        ApacheBench: 2,000 health checks, then 20,000 predictions
#   loadtest/run.sh artillery BASE_URL the ramp in loadtest/artillery.yml (needs node/npx)
#   loadtest/run.sh watch              HPA, pods and node count every 5 s (Ctrl-C to stop)
#
# Point it only at your own deployment. The WAF blocks an IP above 3,000 requests per 5 minutes,
# and the artillery run fails on any 403: through the ALB this checks the public path. To load the
# pods enough to scale them, run artillery's in-cluster environment as a Job (docs/deploy-eks.md).
# With authentication on, export RETAIL_API_TOKEN (a JWT with scope predict): both tools send it.
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '4,6p' "$0" >&2; exit 2; }
(($# >= 1)) || usage
case $1 in
  ab)
    (($# == 2)) || usage
    command -v ab >/dev/null || { echo "ab not found: apt-get install apache2-utils" >&2; exit 1; }
    ab -n 2000 -c 20 "${2%/}/health"
    auth=()
    [[ -n ${RETAIL_API_TOKEN:-} ]] && auth=(-H "Authorization: Bearer $RETAIL_API_TOKEN")
    ab -n 20000 -c 50 ${auth[@]+"${auth[@]}"} -p seed.json -T application/json "${2%/}/predict"
    ;;
  artillery)
    (($# == 2)) || usage
    npx --yes artillery@2 run --target "${2%/}" artillery.yml
    ;;
  watch)
    while true; do
      clear
      date -u +%H:%M:%S
      kubectl -n mlops get hpa retail-api-hpa
      kubectl -n mlops top pods -l app=retail-api 2>/dev/null || true
      kubectl -n mlops get pods -l app=retail-api -o wide
      printf '%s nodes\n' "$(kubectl get nodes --no-headers | wc -l)"
      sleep 5
    done
    ;;
  *) usage ;;
esac
