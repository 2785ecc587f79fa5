#!/usr/bin/env bash
# Load against a deployed retail-api, and the autoscaling it causes.
#
#   loadtest/run.sh ab BASE_URL                 ApacheBench: 2,000 health checks, then 20,000 predictions
#   loadtest/run.sh artillery BASE_URL          the ramp in loadtest/artillery.yml (needs node/npx)
#   loadtest/run.sh forecast-ab BASE_URL        seed 002's ab commands against the forecast API
#   loadtest/run.sh forecast-artillery BASE_URL seed 002's scenario, loadtest/forecast.yml
#   loadtest/run.sh watch [forecast]            HPA, pods and node count every 5 s (Ctrl-C to stop)
#
# Point it only at your own deployment. The WAF blocks an IP above 3,000 requests per 5 minutes,
# and the artillery run fails on any 403: through the ALB this checks the public path. To load the
# pods enough to scale them, run artillery's in-cluster environment as a Job (docs/deploy-eks.md).
# With authentication on, export RETAIL_API_TOKEN (a JWT with scope predict): both tools send it.
# The forecast API (components/forecast) is reached at its own host, e.g.
# https://api.retail-forecast.com, or by port-forward to Service retail-forecast-service.
set -euo pipefail
cd "$(dirname "$0")"
script=$PWD/$(basename "$0")

usage() { sed -n '4,8p' "$script" >&2; exit 2; }
(($# >= 1)) || usage
auth=()
[[ -n ${RETAIL_API_TOKEN:-} ]] && auth=(-H "Authorization: Bearer $RETAIL_API_TOKEN")
need_ab() { command -v ab >/dev/null || { echo "ab not found: apt-get install apache2-utils" >&2; exit 1; }; }
case $1 in
  ab)
    (($# == 2)) || usage
    need_ab
    ab -n 2000 -c 20 "${2%/}/health"
    ab -n 20000 -c 50 ${auth[@]+"${auth[@]}"} -p seed.json -T application/json "${2%/}/predict"
    ;;
  forecast-ab)
    # Seed 002, section 7.1, with its forecast request in forecast.json.
    (($# == 2)) || usage
    need_ab
    ab -n 1000 -c 10 "${2%/}/healthz"
    ab -n 100 -c 5 ${auth[@]+"${auth[@]}"} -p forecast.json -T application/json "${2%/}/predict"
    ;;
  artillery)
    (($# == 2)) || usage
    npx --yes artillery@2 run --target "${2%/}" artillery.yml
    ;;
  forecast-artillery)
    (($# == 2)) || usage
    npx --yes artillery@2 run --target "${2%/}" forecast.yml
    ;;
  watch)
    (($# <= 2)) || usage
    app=retail-api
    if (($# == 2)); then
      [[ $2 == forecast ]] || usage
      app=retail-forecast-api
    fi
    while true; do
      clear
      date -u +%H:%M:%S
      kubectl -n mlops get hpa "$app-hpa"
      kubectl -n mlops top pods -l "app=$app" 2>/dev/null || true
      kubectl -n mlops get pods -l "app=$app" -o wide
      printf '%s nodes\n' "$(kubectl get nodes --no-headers | wc -l)"
      sleep 5
    done
    ;;
  *) usage ;;
esac
