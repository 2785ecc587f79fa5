#!/usr/bin/env bash
# HTTP benchmark of `retail-api serve` on loopback (the embedded model) against the HTTP floor:
# `retail-bench-floor` (scripts/bench/floor), a minimal axum server that parses the same /predict
# body and answers a constant. All in one run, interleaved, 32 connections (wrk -t2 -c32):
#   - process start → /ready 200, and idle RSS
#   - POST /predict, seed body and the 1000-body mix, with ACCESS_LOG=errors and ACCESS_LOG=all
#     (JSON lines through the non-blocking writer), as a ratio of the floor
#   - a forecast POST /predict (the seed's Retail Forecast API body) against a basket one on the
#     same server (both embedded models, as with no configuration), two interleaved pairs
#   - three models loaded (MODELS): start → /ready and idle RSS
#   - the cost of authentication: POST /predict with auth on (JWT_SECRET_KEY) and a bearer token,
#     against the same server setup without auth, two interleaved pairs
#   - POST /predict at half the measured maximum rate: latency percentiles (oha, fixed rate)
#   - POST /predict/batch with 10,000 rows: whole exchange on loopback (curl)
# Needs wrk (apt-get install wrk), oha (cargo install --locked oha), curl, python3, bc.
#
#   scripts/bench-http.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
cargo build --release --locked -p retail-api -p retail-bench-floor >&2
bin=$PWD/target/release/retail-api
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
python3 scripts/bench/bodies.py "$work"
seed='{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}'
printf "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\nwrk.body = [==[%s]==]\n" "$seed" > "$work/seed.lua"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
# Start → ready, polled without spawning a process per probe; the server keeps running.
start_api() { # access-log mode [JWT secret] [MODELS] → "ms pid port"
  local port; port=$(free_port)
  python3 - "$bin" "$port" "$1" "${2:-}" "${3:-}" <<'PY'
import http.client, os, subprocess, sys, time
binary, port, access, secret, models = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
env = dict(os.environ, PORT=port, HOST="127.0.0.1", RUST_LOG="info", LOG_FORMAT="json", ACCESS_LOG=access)
env.pop("JWT_SECRET_KEY", None)
env.pop("MODELS", None)
if secret:
    env["JWT_SECRET_KEY"] = secret
if models:
    env["MODELS"] = models
t0 = time.perf_counter()
p = subprocess.Popen([binary, "serve"], env=env, stderr=subprocess.DEVNULL, start_new_session=True)
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=1)
        c.request("GET", "/ready")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    time.sleep(0.0005)
print(f"{(time.perf_counter() - t0) * 1000:.1f} {p.pid} {port}")
PY
}
read -r start_ms api_pid api_port < <(start_api errors); pids+=("$api_pid")
read -r _ all_pid all_port < <(start_api all); pids+=("$all_pid")
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
read -r _ auth_pid auth_port < <(start_api errors "$secret"); pids+=("$auth_pid")
token=$(JWT_SECRET_KEY=$secret "$bin" token --sub bench --scopes predict --ttl 1h)
three=retail-price-sensitivity=embedded,retail-sales-forecast=embedded:retail-sales-forecast,copy=$PWD/models/default
read -r three_ms three_pid _ < <(start_api errors "" "$three"); pids+=("$three_pid")
forecast='{"features": {"store_id": 1, "product_id": 123, "date": "2024-01-01", "price": 29.99, "promotion": 0}}'
printf "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\nwrk.body = [==[%s]==]\n" "$forecast" > "$work/forecast.lua"
floor_port=$(free_port)
target/release/retail-bench-floor "$floor_port" & pids+=("$!")
sleep 1
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
echo "start → /ready 200: ${start_ms} ms; idle RSS: $(rss "$api_pid") MiB (both embedded models)"
echo "three models (MODELS=$three): start → /ready 200: ${three_ms} ms; idle RSS: $(rss "$three_pid") MiB (targets: 150 ms, 30 MiB)"

run_wrk() { # label, url, extra args... → prints a line, leaves the rate in $work/label.rps
  local label=$1 url=$2; shift 2
  wrk -t2 -c32 -d"${duration}s" --latency "$@" "$url" > "$work/wrk.txt"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  errors=$(grep -E 'Non-2xx|Socket errors' "$work/wrk.txt" | tr '\n' ' ' || true)
  printf '%-30s %10s req/s   p50 %-9s p99 %-9s %s\n' "$label" "$rps" "$p50" "$p99" "$errors"
  echo "$rps" > "$work/$label.rps"
}
floor=http://127.0.0.1:$floor_port/predict
api=http://127.0.0.1:$api_port/predict
all=http://127.0.0.1:$all_port/predict
run_wrk floor-1 "$floor" -s "$work/seed.lua"
run_wrk seed-errors "$api" -s "$work/seed.lua"
run_wrk mix-errors "$api" -s "$work/mix.lua"
run_wrk seed-all "$all" -s "$work/seed.lua"
run_wrk floor-2 "$floor" -s "$work/seed.lua"
# Authentication: the seed body with a bearer token (auth on) against the same server without
# auth, in two interleaved pairs.
for pair in 1 2; do
  run_wrk "noauth-$pair" "$api" -s "$work/seed.lua"
  run_wrk "auth-$pair" "http://127.0.0.1:$auth_port/predict" -s "$work/seed.lua" -H "Authorization: Bearer $token"
done
# The forecast against the basket model, same server, same connections.
for pair in 1 2; do
  run_wrk "basket-$pair" "$api" -s "$work/seed.lua"
  run_wrk "forecast-$pair" "$api" -s "$work/forecast.lua"
done
forecast_ratio=$(echo "scale=3; ($(cat "$work/forecast-1.rps") + $(cat "$work/forecast-2.rps")) / ($(cat "$work/basket-1.rps") + $(cat "$work/basket-2.rps"))" | bc)
echo "forecast POST /predict / basket POST /predict on the same server: ${forecast_ratio} (target >= 0.85)"
auth_cost=$(echo "scale=2; 100 * (($(cat "$work/noauth-1.rps") + $(cat "$work/noauth-2.rps")) / ($(cat "$work/auth-1.rps") + $(cat "$work/auth-2.rps"))) - 100" | bc)
echo "authentication (HS256 bearer token, ACCESS_LOG=errors): ${auth_cost}% more time per /predict than without auth (target <= 5%)"
floor_rps=$(echo "($(cat "$work/floor-1.rps") + $(cat "$work/floor-2.rps")) / 2" | bc -l)
ratio() { echo "scale=3; $(cat "$work/$1.rps") / $floor_rps" | bc; }
echo "ratio to the floor ($(printf '%.0f' "$floor_rps") req/s): seed, ACCESS_LOG=errors $(ratio seed-errors) (target >= 0.90); mix $(ratio mix-errors) (>= 0.80); seed, ACCESS_LOG=all $(ratio seed-all) (>= 0.75)"

if command -v oha >/dev/null; then
  for mode in errors all; do
    label=seed-$mode; port=$api_port; [[ $mode == all ]] && port=$all_port
    half=$(echo "$(cat "$work/$label.rps") / 2" | bc)
    oha --no-tui -z "${duration}s" -c 32 -q "$half" --latency-correction -m POST -T application/json -d "$seed" "http://127.0.0.1:$port/predict" > "$work/oha.txt"
    echo "POST /predict at $half req/s (half of max, ACCESS_LOG=$mode), oha, latency-corrected:"
    grep -E 'Requests/sec|50.00%|99.00%|99.90%|Success rate' "$work/oha.txt" | sed 's/^/  /'
  done
else
  echo "oha not found (cargo install --locked oha): fixed-rate latency not measured"
fi

for _ in 1 2 3; do curl -s -o /dev/null -H 'Expect:' -H 'content-type: application/json' --data-binary "@$work/batch.json" "http://127.0.0.1:$api_port/predict/batch"; done
for _ in $(seq 20); do
  curl -s -o /dev/null -w '%{time_total}\n' -H 'Expect:' -H 'content-type: application/json' --data-binary "@$work/batch.json" "http://127.0.0.1:$api_port/predict/batch"
done | sort -n | awk '{a[NR]=$1*1000} END {printf "POST /predict/batch 10,000 rows (%d KB), whole exchange on loopback: median %.1f ms, max %.1f ms\n", SIZE, a[int((NR+1)/2)], a[NR]}' SIZE="$(($(stat -c %s "$work/batch.json") / 1024))"
echo "RSS after load: $(rss "$api_pid") MiB (ACCESS_LOG=errors), $(rss "$all_pid") MiB (ACCESS_LOG=all)"
