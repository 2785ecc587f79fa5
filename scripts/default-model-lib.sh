# shellcheck shell=bash
# Sourced by scripts/train-default-*.sh (from the repository root): sets `bin` (RETAIL_API_BIN, or
# a fresh release build of target/release/retail-api), `work` (a directory removed on exit) and a
# fixed creation time, which keeps the manifest reproducible too.
bin=${RETAIL_API_BIN:-}
if [[ -z "$bin" ]]; then
  cargo build --release --locked -p retail-api >&2
  bin=target/release/retail-api
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1767225600}
