#!/usr/bin/env bash
# Regenerates the shipped default model (models/default) from scratch: the default synthetic
# dataset (200,000 baskets, seed 7) and a training run with the default parameters (seed 42).
# Deterministic: the same code produces the same model.json, bit for bit, and the same metrics.
#
#   scripts/train-default-model.sh [OUT_DIR]        (default OUT_DIR: models/default)
#
# RETAIL_API_BIN selects the binary (default: builds target/release/retail-api).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-models/default}
bin=${RETAIL_API_BIN:-}
if [[ -z "$bin" ]]; then
  cargo build --release --locked -p retail-api >&2
  bin=target/release/retail-api
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A fixed creation time keeps the manifest reproducible too.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1767225600}
"$bin" gen-data --baskets 200000 --seed 7 --out "$work/default.csv" >&2
"$bin" train --data "$work/default.csv" --out "$out" --force --seed 42
