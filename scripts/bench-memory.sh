#!/usr/bin/env bash
# Peak memory of `retail-api serve` under batch load, with the pod's settings: the release binary
# runs on 127.0.0.1 with deploy/k8s/base/config.env as its environment, pinned to as many cores as
# the pod's CPU limit (the scoring slots are 2 per core), and CLIENTS concurrent clients each send
# ROUNDS `POST /predict/batch` calls of ROWS records (9,300 rows: about 1.7 MB of JSON). Prints
# one JSON object: VmHWM (peak RSS) and VmRSS after the load, in KiB, and the answers' status
# codes. deploy/k8s/measured-memory.json is its output: the manifest tests check the pod's memory
# against it, and that it was measured with today's config.env (its sha256).
#
#   scripts/bench-memory.sh [CLIENTS] [ROUNDS] [ROWS] > deploy/k8s/measured-memory.json
#
# Environment: RETAIL_API_BIN (default target/release/retail-api), CPUS (default 1, the pod's
# limit). Bounded: CLIENTS x ROUNDS calls, each with a 60 s timeout, the whole run within 300 s.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-64}
rounds=${2:-3}
rows=${3:-9300}
cpus=${CPUS:-1}
bin=${RETAIL_API_BIN:-target/release/retail-api}
config=deploy/k8s/base/config.env

[[ -x $bin ]] || { printf 'bench-memory: %s not found (cargo build --release -p retail-api)\n' "$bin" >&2; exit 1; }
work=$(mktemp -d)
settings=()
while IFS= read -r line; do
  [[ -n $line && $line != \#* ]] && settings+=("$line")
done <"$config"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env ${settings[@]+"${settings[@]}"} PORT="$port" HOST=127.0.0.1 \
  taskset -c "0-$((cpus - 1))" "$bin" serve 2>"$work/server.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
python3 scripts/bench/bodies.py "$work" "$rows"
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
  sleep 0.1
done
status() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$pid/status"; }
idle=$(status VmRSS)

python3 - "$port" "$work/batch.json" "$clients" "$rounds" >"$work/codes.json" <<'PY'
import collections, http.client, json, sys, threading, time
port, body_path, clients, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = open(body_path, "rb").read()
codes = collections.Counter()
lock = threading.Lock()
deadline = time.monotonic() + 240

def client():
    for _ in range(rounds):
        if time.monotonic() > deadline:
            return
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/predict/batch", body, {"Content-Type": "application/json"})
            code = str(conn.getresponse().status)
            conn.close()
        except OSError as error:
            code = type(error).__name__
        with lock:
            codes[code] += 1

threads = [threading.Thread(target=client) for _ in range(clients)]
started = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"codes": codes, "seconds": round(time.monotonic() - started, 1), "body_bytes": len(body)}))
PY
after=$(status VmRSS)
sleep 5
settled=$(status VmRSS)
python3 - "$work/codes.json" <<PY
import json, sys
load = json.load(open(sys.argv[1]))
print(json.dumps({
    "command": "scripts/bench-memory.sh $clients $rounds $rows (CPUS=$cpus)",
    "settings": "$config",
    "settings_sha256": "$(sha256sum "$config" | cut -d' ' -f1)",
    "binary": "$("$bin" --version)",
    "clients": $clients, "calls_per_client": $rounds, "rows": $rows, "cpus": $cpus,
    "body_bytes": load["body_bytes"], "status_codes": load["codes"], "seconds": load["seconds"],
    "idle_vmrss_kib": $idle, "peak_vmhwm_kib": $(status VmHWM),
    "after_load_vmrss_kib": $after, "settled_5s_vmrss_kib": $settled,
}, indent=2))
PY
