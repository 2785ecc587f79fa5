#!/usr/bin/env bash
# What explanations cost over HTTP (issue 17), with the embedded basket model on loopback:
#   - latency percentiles of POST /predict and POST /predict?explain=true at the same fixed rate
#     (oha, latency-corrected), interleaved twice: the p99 difference is what explaining adds
#   - the maximum rate of POST /predict (wrk -t2 -c32) of this build and, when BASELINE names a
#     binary built before explanations existed, of that one, interleaved twice: /predict without
#     `explain` must not be slower
#   - POST /predict/batch?explain=true with 10,000 rows: rows explained per second, end to end
# The in-process numbers (one row, batches on all cores) come from
# `cargo bench -p retail-model --bench engine -- explain`. docs/benchmarks.md records both.
#
#   scripts/bench-explain.sh [SECONDS_PER_RUN] [RATE]      (env BASELINE=path/to/retail-api)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
rate=${2:-1000}
cargo build --release --locked -p retail-api >&2
bin=$PWD/target/release/retail-api
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
seed='{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}'
printf "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\nwrk.body = [==[%s]==]\n" "$seed" > "$work/seed.lua"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start() { # binary → port (waits for /ready)
  local port; port=$(free_port)
  PORT=$port HOST=127.0.0.1 RUST_LOG=warn "$1" serve > /dev/null 2>&1 &
  pids+=("$!")
  for _ in $(seq 600); do
    curl -fsS "http://127.0.0.1:$port/ready" > /dev/null 2>&1 && break
    sleep 0.05
  done
  echo "$port"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
port=$(start "$bin")
url=http://127.0.0.1:$port
latency() { # path → "p50 p99" in µs
  oha --no-tui -z "${duration}s" -c 8 -q "$rate" --latency-correction -m POST -T application/json -d "$seed" \
    --output-format json "$url$1" > "$work/oha.json"
  python3 - "$work/oha.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["latencyPercentiles"]
ok = r["statusCodeDistribution"]
print(f'{p["p50"] * 1e6:.0f} {p["p99"] * 1e6:.0f} {ok}')
PY
}
for round in 1 2; do
  for path in /predict '/predict?explain=true'; do
    read -r p50 p99 codes < <(latency "$path")
    echo "round $round  POST $path at $rate req/s: p50 ${p50} µs, p99 ${p99} µs  (status codes $codes)"
  done
done

throughput() { # url → requests/s
  wrk -t2 -c32 -d"${duration}s" -s "$work/seed.lua" "$1/predict" | awk '/Requests\/sec/ {print $2}'
}
if [[ -n ${BASELINE:-} ]]; then
  base_url=http://127.0.0.1:$(start "$BASELINE")
fi
for round in 1 2; do
  echo "round $round  POST /predict max rate, this build: $(throughput "$url") req/s"
  if [[ -n ${BASELINE:-} ]]; then
    echo "round $round  POST /predict max rate, BASELINE:   $(throughput "$base_url") req/s"
  fi
done

python3 - "$seed" > "$work/batch.json" <<'PY'
import json, sys
record = json.loads(sys.argv[1])
print(json.dumps({"records": [dict(record, SPEND=round(1 + i % 300 * 0.7, 2), QUANTITY=1 + i % 40) for i in range(10000)]}))
PY
for path in /predict/batch '/predict/batch?explain=true'; do
  seconds=$(curl -sS -o "$work/out.json" -w '%{time_total}' -X POST -H 'Content-Type: application/json' \
    --data-binary @"$work/batch.json" "$url$path")
  python3 -c "import sys; s=float(sys.argv[1]); print(f'POST {sys.argv[2]} with 10,000 rows: {s:.3f} s = {10000/s:,.0f} rows/s')" "$seconds" "$path"
done
