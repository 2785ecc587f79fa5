#!/usr/bin/env bash
# Benchmark of the model pipeline at scale: generate N baskets (default 1,000,000), train an
# artifact from them, and evaluate it on 100,000 held-out baskets against the Bayes ceiling.
# Prints wall-clock seconds of each step; docs/benchmarks.md records the results.
#
#   scripts/bench-train.sh [BASKETS]
set -euo pipefail
cd "$(dirname "$0")/.."
baskets=${1:-1000000}
cargo build --release --locked -p retail-api >&2
bin=target/release/retail-api
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

timed() {
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" > "$work/$label.json"
  end=$(date +%s.%N)
  printf '%-10s %6.1f s\n' "$label" "$(echo "$end - $start" | bc)"
}

echo "baskets: $baskets, cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
timed gen-data "$bin" gen-data --baskets "$baskets" --seed 7 --out "$work/d.csv"
echo "data       $(du -h "$work/d.csv" | cut -f1), $(($(wc -l < "$work/d.csv") - 1)) lines"
timed train "$bin" train --data "$work/d.csv" --out "$work/model"
"$bin" gen-data --baskets 100000 --seed 1008 --out "$work/h.csv" --truth "$work/ht.csv" > /dev/null
timed evaluate "$bin" evaluate --model "$work/model" --data "$work/h.csv" --truth "$work/ht.csv"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
t = json.load(open(f"{w}/train.json"))
e = json.load(open(f"{w}/evaluate.json"))
m, b = e["metrics"], e["bayes"]
print(f"trees      {t['training']['best_iteration'] * 3} ({t['training']['best_iteration']} rounds of {t['training']['rounds_run']} run), fit {t['training']['seconds']:.1f} s")
print(f"held-out   accuracy {m['accuracy']:.4f} (Bayes {b['accuracy']:.4f}), macro-F1 {m['macro_f1']:.4f} (Bayes {b['macro_f1']:.4f}), ECE {m['ece']:.4f}")
PY
