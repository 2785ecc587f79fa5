# shellcheck shell=bash
# Shared by scripts/deploy-eks.sh and scripts/cleanup.sh (sourced, never run on its own): their
# arguments, --dry-run, and terraform run with absolute paths.
#
# Works with macOS's bash 3.2: no associative arrays, `[[ -v ]]`, `mapfile` or `${var,,}`, and an
# array that may be empty is expanded as ${arr[@]+"${arr[@]}"} (bash < 4.4 calls "${arr[@]}" of
# an empty array unbound under `set -u`).

step() { printf '\n==> %s\n' "$*" >&2; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

# absolute DIR FILE: FILE as an absolute path, relative to DIR unless it is absolute already.
absolute() {
  local file=$2
  [[ $file == /* ]] || file=$1/$file
  [[ -f $file ]] || fail "variables file not found: $file"
  printf '%s/%s\n' "$(cd "$(dirname "$file")" && pwd -P)" "$(basename "$file")"
}

# parse_args CALLER_DIR ARGS...: sets dry_run (true or false) and tf_args, terraform's arguments
# with every -var-file resolved against CALLER_DIR, the directory the user ran the script from
# (terraform -chdir would otherwise read it relative to deploy/terraform).
parse_args() {
  local caller=$1 arg file expect_file=false
  shift
  dry_run=false
  tf_args=()
  for arg in ${1+"$@"}; do
    if $expect_file; then
      file=$(absolute "$caller" "$arg")
      tf_args+=("-var-file=$file")
      expect_file=false
      continue
    fi
    case $arg in
      --dry-run) dry_run=true ;;
      -h | --help) usage; exit 0 ;;
      -var-file | --var-file) expect_file=true ;;
      -var-file=* | --var-file=*)
        file=$(absolute "$caller" "${arg#*=}")
        tf_args+=("-var-file=$file")
        ;;
      *) tf_args+=("$arg") ;;
    esac
  done
  if $expect_file; then fail "-var-file needs a file name"; fi
  return 0
}

# need TOOL...: every tool is on PATH (not needed for --dry-run, which runs none of them).
need() {
  local tool
  $dry_run && return 0
  for tool in "$@"; do
    command -v "$tool" >/dev/null || fail "$tool not found (see docs/deploy-eks.md, prerequisites)"
  done
}

# run CMD...: runs it, or with --dry-run prints it on stdout.
run() {
  if $dry_run; then
    printf '+ %s\n' "$*"
  else
    "$@"
  fi
}

# tf ARGS...: terraform in deploy/terraform, named by its absolute path.
tf() { run terraform -chdir="$PWD/deploy/terraform" "$@"; }

# out NAME: a Terraform output; with --dry-run, the placeholder <NAME>.
out() {
  if $dry_run; then
    printf '<%s>\n' "$1"
  else
    terraform -chdir="$PWD/deploy/terraform" output -raw "$1"
  fi
}

# approve: -auto-approve when AUTO_APPROVE=1 (an empty array otherwise); used by the scripts that
# source this file.
# shellcheck disable=SC2034
if [[ ${AUTO_APPROVE:-0} == 1 ]]; then approve=(-auto-approve); else approve=(); fi
