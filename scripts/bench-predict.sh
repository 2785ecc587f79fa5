#!/usr/bin/env bash
# Throughput of offline batch scoring (`retail-api predict`) from local files: flat-record CSV
# rows (the API's 8 fields; default 1,000,000 rows) and dunnhumby transaction lines (default
# 200,000 baskets, aggregated per basket). Prints records per second of each; output goes to
# /dev/null-like temporary files. docs/benchmarks.md records the results.
#
#   scripts/bench-predict.sh [FLAT_ROWS] [BASKETS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
baskets=${2:-200000}
cargo build --release --locked -p retail-api >&2
bin=target/release/retail-api
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

timed() {
  local label=$1 count=$2; shift 2
  local start end
  # Flush the files written before (the inputs, the previous run's output), so the kernel's
  # writeback of them does not share the cores with the run being timed.
  sync
  start=$(date +%s.%N)
  "$@" 2> "$work/$label.err"
  end=$(date +%s.%N)
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'%-13s %9d records in %6.2f s = %9.0f records/s' % (sys.argv[3], int(sys.argv[4]), s, int(sys.argv[4])/s))" \
    "$start" "$end" "$label" "$count"
}

echo "cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" gen-data --baskets "$baskets" --seed 7 --out "$work/d.csv" > /dev/null
# Flat rows: every basket of the transaction file as the API's record, repeated up to $rows.
"$bin" predict --input "$work/d.csv" --out "$work/scored.csv" 2> /dev/null
python3 - "$work" "$rows" <<'PY'
import csv, sys
work, rows = sys.argv[1], int(sys.argv[2])
baskets = {}
with open(f"{work}/d.csv") as f:
    for r in csv.DictReader(f):
        b = baskets.setdefault(r["BASKET_ID"], [r, 0.0, 0.0])
        b[1] += float(r["SPEND"]); b[2] += float(r["QUANTITY"])
records = [f'{r["BASKET_SIZE"]},{r["BASKET_TYPE"]},{r["STORE_REGION"]},{r["STORE_FORMAT"]},{s:.2f},{q:g},{r["PROD_CODE_20"]},{r["PROD_CODE_30"]}\n'
           for r, s, q in baskets.values()]
with open(f"{work}/flat.csv", "w") as out:
    out.write("BASKET_SIZE,BASKET_TYPE,STORE_REGION,STORE_FORMAT,SPEND,QUANTITY,PROD_CODE_20,PROD_CODE_30\n")
    for i in range(rows):
        out.write(records[i % len(records)])
PY
echo "transactions: $(($(wc -l < "$work/d.csv") - 1)) lines, $baskets baskets, $(du -h "$work/d.csv" | cut -f1)"
timed flat-csv "$rows" "$bin" predict --input "$work/flat.csv" --out "$work/flat.out.csv"
timed flat-jsonl-out "$rows" "$bin" predict --input "$work/flat.csv" --out "$work/flat.out.jsonl"
timed transactions "$baskets" "$bin" predict --input "$work/d.csv" --out "$work/t.out.csv" --force
