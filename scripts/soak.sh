#!/usr/bin/env bash
# Soak test: `retail-api serve` under steady full load (wrk, the 1000-body /predict mix) with
# nobody scraping /metrics; RSS is sampled every 10 s. Passes when RSS at the end is within 10%
# of its value after the warm-up minute.
#
#   scripts/soak.sh [MINUTES] [ACCESS_LOG]        # defaults: 10, errors
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
access=${2:-errors}
cargo build --release --locked -p retail-api >&2
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PORT=$port HOST=127.0.0.1 LOG_FORMAT=json ACCESS_LOG=$access target/release/retail-api serve 2>/dev/null &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
python3 scripts/bench/bodies.py "$work"
until curl -sf "http://127.0.0.1:$port/ready" >/dev/null; do sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
echo "soak: ${minutes} min of wrk -t2 -c32 (1000-body mix), ACCESS_LOG=$access, no scrapes; RSS (kB) every 10 s"
echo "start: $(rss) kB"
wrk -t2 -c32 -d"${minutes}m" -s "$work/mix.lua" "http://127.0.0.1:$port/predict" > "$work/wrk.txt" &
load=$!
samples=()
for ((t = 10; t <= minutes * 60; t += 10)); do
  sleep 10
  samples+=("$(rss)")
  printf '%4d s  %s kB\n' "$t" "${samples[-1]}"
done
wait "$load"
grep -E 'requests in|Requests/sec|Non-2xx|Socket errors' "$work/wrk.txt" || true
warm=${samples[5]}
end=${samples[-1]}
echo "after warm-up (60 s): $warm kB; at the end: $end kB; change $(echo "scale=1; ($end - $warm) * 100 / $warm" | bc)%"
if ((end * 10 > warm * 11)); then
  echo "FAIL: RSS grew more than 10% after the warm-up" >&2
  exit 1
fi
echo "PASS: flat within 10%"
