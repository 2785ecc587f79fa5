#!/usr/bin/env bash
# Builds the retail-api image with its git metadata and tags it; with --push, pushes it to ECR.
#
#   scripts/build-push.sh                    # build: retail-api:latest, :$GIT_COMMIT, :$GIT_BRANCH-$GIT_COMMIT
#   scripts/build-push.sh --push             # and push :$GIT_COMMIT, only, to ECR (repository
#                                            # created if missing: immutable tags, scan-on-push)
#   scripts/build-push.sh --push --dry-run   # print the commands instead of running them
#   scripts/build-push.sh --offline          # air-gapped: vendored crates, `docker build --network none`
#
# ECR tags are immutable (deploy/terraform makes the repository so): a moving tag such as `latest`
# could be pushed once only, so only the commit tag goes there, and a commit already in ECR is not
# pushed again. The image is for the EKS nodes, linux/amd64 (PLATFORM): on any other host, e.g.
# an Apple-silicon Mac, it is built with `--platform` (emulated, slower) instead of natively.
#
# Environment: BUILD_DATE (default: the commit's time, UTC), AWS_REGION (default ap-southeast-1), AWS_ACCOUNT_ID (default: from
# `aws sts get-caller-identity`), ECR_REPOSITORY (default retail-api), IMAGE (default retail-api),
# PLATFORM (default linux/amd64), DOCKER (default docker; it must support BuildKit). Bash 3.2+.
set -euo pipefail
cd "$(dirname "$0")/.."

push=false dry_run=false offline=false
for arg in "$@"; do
  case $arg in
    --push) push=true ;;
    --dry-run) dry_run=true ;;
    --offline) offline=true ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) printf 'build-push: unknown argument %s (see --help)\n' "$arg" >&2; exit 2 ;;
  esac
done

DOCKER=${DOCKER:-docker}
IMAGE=${IMAGE:-retail-api}
AWS_REGION=${AWS_REGION:-ap-southeast-1}
ECR_REPOSITORY=${ECR_REPOSITORY:-retail-api}
PLATFORM=${PLATFORM:-linux/amd64}
GIT_COMMIT=$(git rev-parse --short=12 HEAD)
# A tag allows [A-Za-z0-9_.-]: feature/x becomes feature-x.
GIT_BRANCH=$(git rev-parse --abbrev-ref HEAD | tr -c 'A-Za-z0-9_.\n-' '-')
# The commit's time by default, so that building one commit twice gives the same image (and
# reuses the build cache); set BUILD_DATE to stamp the time of the build instead.
BUILD_DATE=${BUILD_DATE:-$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)}
tags=(latest "$GIT_COMMIT" "$GIT_BRANCH-$GIT_COMMIT")

# Runs a command, or prints it with --dry-run.
run() {
  if $dry_run; then
    printf '+ %s\n' "$*"
  else
    "$@"
  fi
}

context=.
build_flags=()
# This host's platform in Docker's terms (x86_64 is amd64, aarch64 is arm64).
host_platform=linux/$(uname -m | sed 's/^x86_64$/amd64/; s/^aarch64$/arm64/')
[[ $host_platform == "$PLATFORM" ]] || build_flags+=(--platform "$PLATFORM")
if $offline; then
  # The same Dockerfile, with a build context that carries the crates: cargo reads vendor/
  # through .cargo/config.toml, and the build has no network at all.
  context=target/docker-context
  if ! $dry_run; then
    mkdir -p "$context/.cargo"
    cp Cargo.toml Cargo.lock .dockerignore "$context/"
    rm -rf "$context/crates" "$context/models" "$context/scripts"
    cp -r crates models "$context/"
    # A workspace member (the benchmark's HTTP floor server): cargo reads every member's manifest.
    mkdir -p "$context/scripts/bench"
    cp -r scripts/bench/floor "$context/scripts/bench/"
    # Vendored again only when Cargo.lock changed (the .dockerignore leaves vendor.lock out).
    if ! cmp -s Cargo.lock "$context/vendor.lock"; then
      rm -rf "$context/vendor"
      cargo vendor --locked --versioned-dirs "$context/vendor" >/dev/null
      cp Cargo.lock "$context/vendor.lock"
    fi
    printf '%s\n' '[source.crates-io]' 'replace-with = "vendored-sources"' '' \
      '[source.vendored-sources]' 'directory = "vendor"' >"$context/.cargo/config.toml"
  fi
  build_flags+=(--network none)
fi

tag_flags=()
for tag in ${tags[@]+"${tags[@]}"}; do tag_flags+=(-t "$IMAGE:$tag"); done
run env DOCKER_BUILDKIT=1 "$DOCKER" build -f deploy/docker/Dockerfile ${build_flags[@]+"${build_flags[@]}"} \
  --build-arg "GIT_COMMIT=$GIT_COMMIT" --build-arg "GIT_BRANCH=$GIT_BRANCH" --build-arg "BUILD_DATE=$BUILD_DATE" \
  ${tag_flags[@]+"${tag_flags[@]}"} "$context"
$dry_run || printf 'built %s\n' "${tag_flags[*]//-t /}" >&2

$push || exit 0
if [[ -z ${AWS_ACCOUNT_ID:-} ]]; then
  if $dry_run; then
    # shellcheck disable=SC2016 # printed, not run
    printf '+ %s\n' 'AWS_ACCOUNT_ID=$(aws sts get-caller-identity --query Account --output text)'
    # shellcheck disable=SC2016
    AWS_ACCOUNT_ID='$AWS_ACCOUNT_ID'
  else
    AWS_ACCOUNT_ID=$(aws sts get-caller-identity --query Account --output text)
  fi
fi
registry="$AWS_ACCOUNT_ID.dkr.ecr.$AWS_REGION.amazonaws.com"
if $dry_run; then
  printf '+ %s\n' "aws ecr get-login-password --region $AWS_REGION | $DOCKER login --username AWS --password-stdin $registry"
else
  aws ecr get-login-password --region "$AWS_REGION" | "$DOCKER" login --username AWS --password-stdin "$registry"
fi
if $dry_run || ! aws ecr describe-repositories --repository-names "$ECR_REPOSITORY" --region "$AWS_REGION" >/dev/null 2>&1; then
  # shellcheck disable=SC2016 # printed, not run
  $dry_run && printf '# if `aws ecr describe-repositories --repository-names %s` fails:\n' "$ECR_REPOSITORY"
  run aws ecr create-repository --repository-name "$ECR_REPOSITORY" --region "$AWS_REGION" \
    --image-scanning-configuration scanOnPush=true --image-tag-mutability IMMUTABLE
fi
if ! $dry_run && aws ecr describe-images --repository-name "$ECR_REPOSITORY" --region "$AWS_REGION" \
  --image-ids imageTag="$GIT_COMMIT" >/dev/null 2>&1; then
  printf '%s:%s is already in ECR (immutable): not pushed again\n' "$ECR_REPOSITORY" "$GIT_COMMIT" >&2
  exit 0
fi
run "$DOCKER" tag "$IMAGE:$GIT_COMMIT" "$registry/$ECR_REPOSITORY:$GIT_COMMIT"
run "$DOCKER" push "$registry/$ECR_REPOSITORY:$GIT_COMMIT"
