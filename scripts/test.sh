#!/usr/bin/env bash
# The project's one test command: installs what the tests need, then runs every test.
#
#   scripts/test.sh
#
# Under CI=true nothing may be skipped: a missing tool is an error, never a skip. The suite
# builds the release binary once and every test reuses it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

step "prerequisites"
# The Rust toolchain (rustup: cargo, rustc, rustfmt, clippy) is the machine's own; nothing else
# is needed yet. Each later prerequisite is installed here, by this script.
for tool in cargo rustc rustfmt cargo-clippy; do
  command -v "$tool" >/dev/null || fail "$tool not found: install the Rust toolchain with rustup (components rustfmt, clippy)"
done
if command -v cargo-nextest >/dev/null; then
  runner=(cargo nextest run --no-fail-fast)
else
  # cargo test runs the same tests; nextest is only faster.
  runner=(cargo test --no-fail-fast)
fi
cargo --version >&2

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --release --locked -- -D warnings

step "serving-only build (no training code, as in the container image)"
cargo build --release --locked -p retail-api --no-default-features --target-dir target/serving
ls -l target/serving/release/retail-api >&2

step "tests"
"${runner[@]}" --workspace --release --locked
cargo test --doc --workspace --release --locked

step "all tests passed"
