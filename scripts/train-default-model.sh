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
# shellcheck source=scripts/default-model-lib.sh
source scripts/default-model-lib.sh
"$bin" gen-data --baskets 200000 --seed 7 --out "$work/default.csv" >&2
"$bin" train --data "$work/default.csv" --out "$out" --force --seed 42
