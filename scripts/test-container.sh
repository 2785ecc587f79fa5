#!/usr/bin/env bash
# Container tests (a step of scripts/test.sh): builds the image with `docker build` from
# deploy/docker/Dockerfile, then
#   lint      hadolint, promtool check config, haproxy -c, the build-push --push dry run
#   smoke     the image, read-only as uid 65532 with no capabilities, becomes healthy, answers the
#             seed /predict, /metrics passes promtool, /version and labels carry the git commit
#   stack     deploy/compose with auth on (docker-compose.auth.yml over docker-compose.yml): 3
#             replicas behind HAProxy (active checks on /ready), Prometheus scraping all three
#             with a metrics:read token; /predict and /metrics refuse a call without a token (401)
#   rolling   under load with a token through HAProxy (>= 20,000 requests), each replica in turn
#             gets SIGTERM
#             and is recreated: 0 failed requests; each one leaves the rotation within HAProxy's
#             check window once its /ready fails (it still serves meanwhile), and comes back
#             once ready
#
# Needs root (or a docker group member) with docker.io, docker-compose, haproxy, debootstrap,
# curl and prometheus (promtool) installed: scripts/test.sh installs them. It starts dockerd if
# it is not running and makes missing base images (scripts/docker-base-images.sh). Containers
# and the compose project are named retail-api-test*, and removed at the end (KEEP=1 keeps them).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's docker client: BuildKit works with it (a newer client without buildx would not).
DOCKER=${DOCKER:-/usr/bin/docker}
export DOCKER
PROJECT=retail-api-test
SMOKE=retail-api-test-smoke
COMPOSE=(docker-compose -p "$PROJECT" -f deploy/compose/docker-compose.yml -f deploy/compose/docker-compose.auth.yml)
OUT=target/test-container
# The auth stack's shared HS256 secret, and the file Prometheus reads its token from.
JWT_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
PROMETHEUS_TOKEN_FILE=$PWD/$OUT/prometheus-token
export JWT_SECRET_KEY PROMETHEUS_TOKEN_FILE
SEED='{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}'
# HAProxy's check settings (haproxy.cfg: inter 1s fall 2 rise 2): a replica whose /ready fails
# must be out within fall x inter, plus one interval for where in its cycle the failure falls; a
# started replica must be back within rise x inter, plus that interval, plus one DNS resolution
# (1 s) for its new address, plus 2 s for a busy machine: the load client and two replicas share
# 2 cores with HAProxy (measured 2.0-3.5 s at load 7, once 5.03 s in CI; the process itself is
# serving 26 ms after it starts).
OUT_WITHIN=3
BACK_WITHIN=6

log() { printf 'test-container: %s\n' "$*" >&2; }
fail() { printf 'test-container: FAILED: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

engine() {
  "$DOCKER" info >/dev/null 2>&1 && return
  command -v dockerd >/dev/null || fail "no docker engine: apt-get install -y docker.io (scripts/test.sh does)"
  log "starting dockerd (overlay2)"
  nohup dockerd --storage-driver=overlay2 >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && return
    sleep 0.5
  done
  fail "dockerd did not start: see /var/log/dockerd.log"
}

cleanup() {
  if [[ -n ${client:-} ]]; then kill "$client" 2>/dev/null || true; fi
  "$DOCKER" rm -f "$SMOKE" >/dev/null 2>&1 || true
  "${COMPOSE[@]}" down --remove-orphans --timeout 30 >/dev/null 2>&1 || true
}

engine
cleanup
[[ ${KEEP:-0} == 1 ]] || trap cleanup EXIT
rm -rf "$OUT"
mkdir -p "$OUT"

log "lint"
target/test-venv/bin/hadolint deploy/docker/Dockerfile
# promtool checks that the rule and token files exist: the container's paths, mapped to local
# ones (it then checks the rules too).
echo placeholder >"$PROMETHEUS_TOKEN_FILE"
alerts=$PWD/deploy/monitoring/alerts.yml
sed "s|/etc/prometheus/alerts.yml|$alerts|" deploy/compose/prometheus.yml >"$OUT/prometheus.yml"
promtool check config "$OUT/prometheus.yml" >&2
sed -e "s|/etc/prometheus/token|$PROMETHEUS_TOKEN_FILE|" -e "s|/etc/prometheus/alerts.yml|$alerts|" \
  deploy/compose/prometheus-auth.yml >"$OUT/prometheus-auth.yml"
promtool check config "$OUT/prometheus-auth.yml" >&2
docker-compose -f deploy/compose/docker-compose.yml config -q
"${COMPOSE[@]}" config -q
haproxy -c -q -f deploy/compose/haproxy.cfg
dry_run=$(AWS_ACCOUNT_ID=123456789012 scripts/build-push.sh --push --dry-run)
commit=$(git rev-parse --short=12 HEAD)
for want in "build -f deploy/docker/Dockerfile" "--build-arg GIT_COMMIT=$commit" "-t retail-api:latest" \
  "ecr get-login-password --region ap-southeast-1" "--image-scanning-configuration scanOnPush=true" \
  "push 123456789012.dkr.ecr.ap-southeast-1.amazonaws.com/retail-api:$commit"; do
  grep -qF -- "$want" <<<"$dry_run" || fail "build-push --push --dry-run does not print '$want':"$'\n'"$dry_run"
done

log "base images"
scripts/docker-base-images.sh

log "build (docker build, vendored crates, no network)"
start=$(now)
scripts/build-push.sh --offline
build_seconds=$(since "$start")
image="retail-api:$commit"
size=$("$DOCKER" image inspect -f '{{.Size}}' "$image")
log "built $image in ${build_seconds}s: $((size / 1000)) kB"
((size <= 25000000)) || fail "image is $size bytes, over the 25 MB target"

log "smoke: read-only, uid 65532, no capabilities"
port=$(free_port)
"$DOCKER" run -d --name "$SMOKE" --read-only --cap-drop ALL --security-opt no-new-privileges \
  --user 65532:65532 -p "127.0.0.1:$port:8000" "$image" >/dev/null
health=starting
for _ in $(seq 120); do
  health=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$SMOKE")
  [[ $health == starting ]] || break
  sleep 0.5
done
[[ $health == healthy ]] || fail "container is $health, not healthy: $("$DOCKER" logs "$SMOKE" 2>&1 | tail -5)"
answer=$(curl -sf -X POST "http://127.0.0.1:$port/predict" -H 'Content-Type: application/json' -d "$SEED")
grep -q '"prediction":"\(LA\|MM\|UM\)"' <<<"$answer" || fail "seed /predict answered: $answer"
curl -sf "http://127.0.0.1:$port/metrics" >"$OUT/metrics.txt"
promtool check metrics <"$OUT/metrics.txt" >&2
version=$(curl -sf "http://127.0.0.1:$port/version")
grep -qF "\"git_commit\":\"$commit\"" <<<"$version" || fail "/version does not show commit $commit: $version"
label=$("$DOCKER" image inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$image")
[[ $label == "$commit" ]] || fail "label org.opencontainers.image.revision is '$label', not $commit"
pid=$("$DOCKER" inspect -f '{{.State.Pid}}' "$SMOKE")
ids=$(awk '/^(Uid|Gid):/ {print $2, $3, $4, $5}' "/proc/$pid/status" | tr '\n' ' ')
[[ $ids == "65532 65532 65532 65532 65532 65532 65532 65532 " ]] || fail "process uid/gid: $ids"
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
[[ $caps == 0000000000000000 ]] || fail "process has capabilities $caps"
if "$DOCKER" exec "$SMOKE" sh -c true >/dev/null 2>&1; then fail "the image has a shell"; fi
log "smoke passed: healthy, /predict $answer, uid/gid 65532, no capabilities, no shell"
"$DOCKER" rm -f "$SMOKE" >/dev/null

log "stack: 3 replicas with auth on behind HAProxy, Prometheus with a metrics:read token"
LB_PORT=$(free_port) STATS_PORT=$(free_port) PROMETHEUS_PORT=$(free_port)
export LB_PORT STATS_PORT PROMETHEUS_PORT RETAIL_API_IMAGE=$image
# Tokens minted by the image itself (retail-api token), with the stack's secret.
mint() { "$DOCKER" run --rm -e JWT_SECRET_KEY "$image" token --sub "$1" --scopes "$2" --ttl 2h; }
mint prometheus metrics:read >"$PROMETHEUS_TOKEN_FILE"
chmod 644 "$PROMETHEUS_TOKEN_FILE" # Prometheus runs as nobody
mint load-test predict >"$OUT/client-token"
"${COMPOSE[@]}" up -d >&2

# "status check_status check_code" of a replica, from HAProxy's stats CSV.
server_state() {
  curl -sf "http://127.0.0.1:$STATS_PORT/stats;csv" | awk -F, -v server="$1" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == "replicas" && $2 == server { print $col["status"], $col["check_status"], $col["check_code"] }'
}
# Waits until a replica's HAProxy status starts with $2 (UP or DOWN), at most $3 seconds.
wait_state() {
  local deadline
  deadline=$(awk -v t="$(now)" -v s="$3" 'BEGIN { printf "%.3f", t + s }')
  while :; do
    state=$(server_state "$1" || true)
    [[ $state == "$2"* ]] && return 0
    le "$deadline" "$(now)" && return 1
    sleep 0.1
  done
}
for n in 1 2 3; do
  wait_state "api$n" UP 30 || fail "api$n is not UP in HAProxy: $state"
done
query='up{job="retail-api"}'
for _ in $(seq 60); do
  up=$(curl -sf "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" --data-urlencode "query=$query" |
    grep -o '"value":\[[0-9.]*,"1"\]' | wc -l || true)
  ((up == 3)) && break
  sleep 0.5
done
((up == 3)) || fail "Prometheus scrapes $up of 3 replicas"
log "stack up: api1-3 UP in HAProxy, Prometheus scrapes all 3 with its token"
lb=http://127.0.0.1:$LB_PORT
refused=$(curl -s -o /dev/null -D - -w '%{http_code}' "$lb/predict" -H 'Content-Type: application/json' -d "$SEED")
[[ ${refused,,} == *'www-authenticate: bearer'*401 ]] || fail "/predict without a token through HAProxy answered: $refused"
code=$(curl -s -o /dev/null -w '%{http_code}' "$lb/metrics")
[[ $code == 401 ]] || fail "/metrics without a token through HAProxy answered $code, not 401"
answer=$(curl -sf "$lb/predict" -H "Authorization: Bearer $(cat "$OUT/client-token")" \
  -H 'Content-Type: application/json' -d "$SEED")
grep -q '"prediction":"\(LA\|MM\|UM\)"' <<<"$answer" || fail "/predict with a token answered: $answer"
log "auth: /predict and /metrics 401 without a token, /predict 200 with one"

log "rolling restart under load"
stop="$OUT/load-done"
python3 scripts/load-client.py --url "http://127.0.0.1:$LB_PORT/predict" --min-requests 20000 \
  --stop-file "$stop" --max-requests 2000000 --max-seconds 300 --token-file "$OUT/client-token" >"$OUT/load.json" &
client=$!
sleep 2
for n in 1 2 3; do
  old=$("${COMPOSE[@]}" ps -q "api$n")
  t0=$(now)
  "$DOCKER" stop -t 25 "$old" >/dev/null &
  stopper=$!
  wait_state "api$n" DOWN 10 || fail "api$n not out of rotation 10 s after SIGTERM: $state"
  out=$(since "$t0")
  down_state=$state
  # Out because /ready fails (HAProxy saw 503), while the replica is alive and still serving.
  [[ $down_state == *L7STS*503* ]] || fail "api$n went DOWN for another reason than /ready 503: $down_state"
  "$DOCKER" exec "$old" retail-api healthcheck --path /health ||
    fail "api$n was not alive while out of rotation (it must keep serving through the drain delay)"
  wait "$stopper"
  exit_code=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$old")
  drained=$(since "$t0")
  [[ $exit_code == 0 ]] || fail "api$n exited $exit_code after SIGTERM"
  "${COMPOSE[@]}" up -d --no-deps --force-recreate "api$n" 2>/dev/null
  wait_state "api$n" UP 20 || fail "api$n not back in rotation 20 s after it was recreated: $state"
  started=$(date -d "$("$DOCKER" inspect -f '{{.State.StartedAt}}' "$("${COMPOSE[@]}" ps -q "api$n")")" +%s.%N)
  back=$(since "$started")
  log "api$n: SIGTERM -> out of rotation in ${out}s ($down_state), drained and exited 0 at ${drained}s; recreated -> back in rotation ${back}s after it started"
  le "$out" "$OUT_WITHIN" || fail "api$n left the rotation in ${out}s, over ${OUT_WITHIN}s (fall 2 x inter 1s + 1s)"
  le "$back" "$BACK_WITHIN" || fail "api$n came back ${back}s after it started, over ${BACK_WITHIN}s"
done
touch "$stop"
client_status=0
wait "$client" || client_status=$?
log "load client: $(cat "$OUT/load.json")"
((client_status == 0)) || fail "the load client counted failures, or fewer than 20,000 requests"
for n in 1 2 3; do
  served=$(curl -sf "http://127.0.0.1:$STATS_PORT/stats;csv" |
    awk -F, -v s="api$n" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } $2 == s { print $c["stot"] }')
  log "api$n served $served requests through HAProxy"
done
logged=$("${COMPOSE[@]}" logs --no-color api1 api2 api3 | grep -c '"principal":"load-test"' || true)
((logged > 0)) || fail "no access log line names the token's principal (load-test)"
grep -qF "$(cut -d. -f3 "$OUT/client-token")" <("${COMPOSE[@]}" logs --no-color) && fail "a log line holds the token"
log "$logged access log lines name the principal load-test, none holds the token"
log "all container tests passed (build ${build_seconds}s, image $((size / 1000)) kB)"
