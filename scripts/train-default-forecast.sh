#!/usr/bin/env bash
# Regenerates the shipped sales forecast (models/sales-forecast) from scratch: generated daily
# sales of 5 stores x 300 products over 2023-01-01..2024-12-31 (seed 7; 1,096,500 rows) and a
# training run with the default forecast parameters (time-based split: the last 28 days are the
# test split, the 28 before them validation). Deterministic: the same code produces the same
# model.json and forecast.json, bit for bit, and the same metrics.
#
#   scripts/train-default-forecast.sh [OUT_DIR]        (default OUT_DIR: models/sales-forecast)
#
# RETAIL_API_BIN selects the binary (default: builds target/release/retail-api).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-models/sales-forecast}
# shellcheck source=scripts/default-model-lib.sh
source scripts/default-model-lib.sh
"$bin" gen-data --kind sales --stores 5 --products 300 --days 731 --start 2023-01-01 --seed 7 \
  --out "$work/sales.csv" >&2
"$bin" train --data "$work/sales.csv" --out "$out" --force
