#!/usr/bin/env bash
# HTTP benchmark of `retail-api serve` on loopback (the embedded model), 32 connections:
#   - process start → /ready 200, and idle RSS
#   - GET /health (the HTTP floor) vs POST /predict with the seed body and a 1000-body mix (wrk)
#   - POST /predict at half the measured maximum rate: latency percentiles (oha, fixed rate)
#   - POST /predict/batch with 10,000 rows: time to first byte (server time, on loopback)
# Needs wrk (apt-get install wrk), oha (cargo install --locked oha), curl, python3.
#
#   scripts/bench-http.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
cargo build --release --locked -p retail-api >&2
bin=$PWD/target/release/retail-api
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
url=http://127.0.0.1:$port
cleanup() { [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
python3 scripts/bench/bodies.py "$work"
seed='{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}'
printf "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\nwrk.body = [==[%s]==]\n" "$seed" > "$work/seed.lua"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
# Start → ready, polled without spawning a process per probe.
python3 - "$bin" "$port" > "$work/start.txt" <<'PY'
import http.client, os, subprocess, sys, time
binary, port = sys.argv[1], sys.argv[2]
env = dict(os.environ, PORT=port, HOST="127.0.0.1", RUST_LOG="warn")
t0 = time.perf_counter()
p = subprocess.Popen([binary, "serve"], env=env, stderr=subprocess.DEVNULL)
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=1)
        c.request("GET", "/ready")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    time.sleep(0.0005)
print(f"{(time.perf_counter() - t0) * 1000:.1f} {p.pid}")
PY
read -r start_ms pid < "$work/start.txt"
sleep 1
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
echo "start → /ready 200: ${start_ms} ms; idle RSS: $(rss) MiB"

run_wrk() { # label, extra args...
  local label=$1; shift
  wrk -t2 -c32 -d"${duration}s" --latency "$@" > "$work/wrk.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  local errors
  errors=$(grep -E 'Non-2xx|Socket errors' "$work/wrk.txt" | tr '\n' ' ' || true)
  printf '%-28s %10s req/s   p50 %-9s p99 %-9s %s\n' "$label" "$rps" "$p50" "$p99" "$errors"
  echo "$rps" > "$work/$label.rps"
}
run_wrk health "$url/health"
run_wrk predict-seed -s "$work/seed.lua" "$url/predict"
run_wrk predict-mix -s "$work/mix.lua" "$url/predict"
health=$(cat "$work/health.rps"); seed_rps=$(cat "$work/predict-seed.rps"); mix_rps=$(cat "$work/predict-mix.rps")
echo "predict/health throughput: seed $(echo "scale=3; $seed_rps / $health" | bc), mix $(echo "scale=3; $mix_rps / $health" | bc) (target >= 0.9)"

half=$(echo "$seed_rps / 2" | bc)
oha --no-tui -z "${duration}s" -c 32 -q "$half" --latency-correction -m POST -T application/json -d "$seed" "$url/predict" > "$work/oha.txt"
echo "POST /predict at $half req/s (half of max), oha, latency-corrected:"
grep -E 'Requests/sec|50.00%|99.00%|99.90%|Success rate' "$work/oha.txt" | sed 's/^/  /'

for _ in 1 2 3; do curl -s -o /dev/null -H 'Expect:' -H 'content-type: application/json' --data-binary "@$work/batch.json" "$url/predict/batch"; done
for _ in $(seq 20); do
  curl -s -o /dev/null -D - -H 'Expect:' -H 'content-type: application/json' --data-binary "@$work/batch.json" "$url/predict/batch" \
    | sed -n 's/^server-timing: app;dur=\([0-9.]*\).*/\1/p'
done | sort -n | awk '{a[NR]=$1} END {printf "POST /predict/batch 10,000 rows (%d KB): server time median %.1f ms, max %.1f ms (target <= 20 ms)\n", SIZE, a[int((NR+1)/2)], a[NR]}' SIZE="$(($(stat -c %s "$work/batch.json") / 1024))"
echo "RSS after load: $(rss) MiB"
