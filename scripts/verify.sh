#!/usr/bin/env bash
# Checks a running retail-api end to end: health, readiness, docs, the seed prediction, model
# info and metrics, Prometheus metrics, build info. Exits non-zero when any check fails.
#
#   scripts/verify.sh BASE_URL [--public] [--forecast]
#
# RETAIL_API_TOKEN: with authentication on, a JWT (sent as a Bearer token) or an API key (`rk_…`,
# sent as X-API-Key) for the protected routes (scopes predict and model:read, and metrics:read
# without --public); then /predict without it must answer 401.
#
#   scripts/verify.sh http://localhost:8000                  # local binary or compose stack
#   scripts/verify.sh http://localhost:8080                  # kubectl port-forward
#   scripts/verify.sh https://api.example.com --public       # through the ALB
#   scripts/verify.sh https://api.retail-forecast.com --public --forecast
#
# --public: the URL is the internet-facing ALB, so /metrics must NOT be served there, and an
# https URL must also answer its http:// twin with a redirect to https.
# --forecast: the URL is the Retail Forecast API (seed 002; DEFAULT_MODEL=retail-sales-forecast,
# e.g. Service retail-forecast-service): /healthz, the seed's forecast /predict answering a numeric
# prediction, /batch-predict and /model-info of that model instead of the basket checks.
set -euo pipefail

usage() { printf 'usage: %s BASE_URL [--public] [--forecast]\n' "$0" >&2; exit 2; }
(($# >= 1 && $# <= 3)) || usage
base=${1%/}
shift
public=false
forecast=false
for arg in ${1+"$@"}; do
  case $arg in
    --public) public=true ;;
    --forecast) forecast=true ;;
    *) usage ;;
  esac
done
[[ $base == http://* || $base == https://* ]] || usage
command -v curl >/dev/null || { echo "error: curl not found" >&2; exit 2; }

passed=0
failed=0
body=$(mktemp)
trap 'rm -f "$body"' EXIT

# check NAME EXPECTED_STATUS PATTERN CURL_ARGS...: the status must match and the body must
# contain PATTERN (an extended regex; empty: any body).
check() {
  local name=$1 want=$2 pattern=$3 status
  shift 3
  status=$(curl -sS --max-time 10 -o "$body" -w '%{http_code}' "$@" 2>/dev/null) || status=000
  if [[ $status == "$want" ]] && { [[ -z $pattern ]] || grep -Eq "$pattern" "$body"; }; then
    printf 'ok    %s\n' "$name"
    passed=$((passed + 1))
  else
    printf 'FAIL  %s: status %s (want %s)%s\n' "$name" "$status" "$want" "${pattern:+, body must match /$pattern/}"
    head -c 300 "$body"
    echo
    failed=$((failed + 1))
  fi
}

# The credential, if any, for the protected routes.
auth=()
if [[ -n ${RETAIL_API_TOKEN:-} ]]; then
  if [[ $RETAIL_API_TOKEN == rk_* ]]; then
    auth=(-H "X-API-Key: $RETAIL_API_TOKEN")
  else
    auth=(-H "Authorization: Bearer $RETAIL_API_TOKEN")
  fi
fi

seed='{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}'
# Seed 002's forecast request (units of product 123 sold in store 1 on 2024-01-01).
forecast_seed='{"features":{"store_id":1,"product_id":123,"date":"2024-01-01","price":29.99,"promotion":0}}'
forecast_promo='{"features":{"store_id":1,"product_id":123,"date":"2024-01-01","price":29.99,"promotion":1}}'
forecast_model=retail-sales-forecast
json=(-H 'Content-Type: application/json')
number='-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?'

check "GET /health (liveness)" 200 '"status": ?"healthy"' "$base/health"
check "GET /ready (readiness)" 200 '' "$base/ready"
check "GET /docs/ (Swagger UI)" 200 '(swagger|Swagger)' -L "$base/docs/"
check "GET /openapi.json" 200 '"openapi"' "$base/openapi.json"
if $forecast; then
  check "GET /healthz (seed 002)" 200 '"status": ?"healthy"' "$base/healthz"
  check "POST /predict (seed forecast) answers a number" 200 "\"prediction\": ?${number}[,}]" ${json[@]+"${json[@]}"} ${auth[@]+"${auth[@]}"} -d "$forecast_seed" "$base/predict"
  check "POST /predict (forecast, price -1) is 422" 422 '"code"' ${json[@]+"${json[@]}"} ${auth[@]+"${auth[@]}"} -d '{"features":{"store_id":1,"product_id":123,"date":"2024-01-01","price":-1,"promotion":0}}' "$base/predict"
  check "POST /batch-predict (forecast)" 200 "\"predictions\".*\"prediction\": ?${number}[,}].*\"prediction\": ?${number}[,}]" ${json[@]+"${json[@]}"} ${auth[@]+"${auth[@]}"} -d "{\"records\":[$forecast_seed,$forecast_promo]}" "$base/batch-predict"
  check "GET /model-info is $forecast_model (DEFAULT_MODEL)" 200 "\"name\": ?\"$forecast_model\"" ${auth[@]+"${auth[@]}"} "$base/model-info"
  check "GET /models lists $forecast_model" 200 "\"$forecast_model\"" ${auth[@]+"${auth[@]}"} "$base/models"
else
  check "POST /predict (seed basket)" 200 '"prediction": ?"(LA|MM|UM)"' ${json[@]+"${json[@]}"} ${auth[@]+"${auth[@]}"} -d "$seed" "$base/predict"
  check "POST /predict (invalid SPEND) is 422" 422 '"code"' ${json[@]+"${json[@]}"} ${auth[@]+"${auth[@]}"} -d '{"SPEND":-1}' "$base/predict"
  check "POST /predict/batch" 200 '"predictions"' ${json[@]+"${json[@]}"} ${auth[@]+"${auth[@]}"} -d "{\"records\":[$seed,$seed]}" "$base/predict/batch"
  check "GET /model/info" 200 '"version"' ${auth[@]+"${auth[@]}"} "$base/model/info"
  check "GET /model/metrics" 200 '"accuracy"' ${auth[@]+"${auth[@]}"} "$base/model/metrics"
fi
check "GET /version" 200 '"version"' "$base/version"
if [[ -n ${RETAIL_API_TOKEN:-} ]]; then
  if $forecast; then request=$forecast_seed; else request=$seed; fi
  check "POST /predict without a credential is 401" 401 '"code"' ${json[@]+"${json[@]}"} -d "$request" "$base/predict"
fi
if $public; then
  check "GET /metrics is not public" 404 '' "$base/metrics"
  if [[ $base == https://* ]]; then
    check "http:// redirects to https://" 301 '' -o /dev/null "http://${base#https://}/health"
  fi
else
  check "GET /metrics (Prometheus)" 200 '^retail_api_' ${auth[@]+"${auth[@]}"} "$base/metrics"
fi

printf '%s passed, %s failed\n' "$passed" "$failed"
((failed == 0))
