#!/usr/bin/env bash
# Regenerates the shipped generic tabular classifier (models/tabular, served as `ml-inference` and
# by the seed's POST /predict-single): a generated table like the seed's example input, 20
# numeric columns f1..f20 uniform on [0, 25] with 5% missing in f3, f8 and f15, and a binary
# label (seed 7; 20,000 rows; `retail-api gen-data --kind tabular`), trained with the default
# tabular parameters (random stratified 70/10/20 split). Deterministic: the same code produces
# the same model.json and tabular.json, bit for bit, and the same metrics.
#
#   scripts/train-default-tabular.sh [OUT_DIR]        (default OUT_DIR: models/tabular)
#
# RETAIL_API_BIN selects the binary (default: builds target/release/retail-api).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-models/tabular}
# shellcheck source=scripts/default-model-lib.sh
source scripts/default-model-lib.sh
"$bin" gen-data --kind tabular --rows 20000 --seed 7 --out "$work/table.csv" >&2
"$bin" train --data "$work/table.csv" --label label --name ml-inference --seed 42 --out "$out" --force
