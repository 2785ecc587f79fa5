#!/usr/bin/env bash
# Air-gapped path: makes the images that deploy/docker/Dockerfile and deploy/compose/ start FROM,
# locally, from Debian packages, and tags them with the upstream names, so the Dockerfile and
# the compose file stay the ones a user builds and runs against real registries.
#
#   scripts/docker-base-images.sh          # build the missing ones (safe to re-run)
#
# Only for a machine that reaches Debian's mirror but no container registry. Each image is
# built only when its tag is missing:
#   rust:$RUST_VERSION-slim-bookworm           debootstrap (gcc, libc6-dev, CA certificates) plus this
#                                              machine's rustup toolchain, which must be that version
#   gcr.io/distroless/cc-debian12:nonroot      libc6, libgcc-s1, CA bundle, passwd with nonroot
#                                              65532, no shell (from `apt-get download` packages)
#   haproxy:$HAPROXY_TAG, prom/prometheus:$PROMETHEUS_TAG
#                                              Debian's haproxy / prometheus binary and the shared
#                                              libraries it links, on that runtime
set -euo pipefail
cd "$(dirname "$0")/.."

RUST_VERSION=$(sed -n 's/^ARG RUST_VERSION=//p' deploy/docker/Dockerfile)
HAPROXY_TAG=$(sed -n 's/^ *image: haproxy:\(.*\)$/\1/p' deploy/compose/docker-compose.yml)
PROMETHEUS_TAG=$(sed -n 's/^ *image: prom\/prometheus:\(.*\)$/\1/p' deploy/compose/docker-compose.yml)
RUNTIME=gcr.io/distroless/cc-debian12:nonroot
DOCKER=${DOCKER:-/usr/bin/docker}
WORK=target/docker-base
# The machine's own Debian mirror (deb822 sources), else the default one.
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

log() { printf 'docker-base-images: %s\n' "$*" >&2; }
fail() { printf 'docker-base-images: error: %s\n' "$*" >&2; exit 1; }
have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

[[ -n $RUST_VERSION && -n $HAPROXY_TAG && -n $PROMETHEUS_TAG ]] || fail "cannot read the pinned versions"
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

# Removes what an image does not need from a rootfs.
slim() {
  local root=${1:?}
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*
}

rust_builder() {
  local tag="rust:$RUST_VERSION-slim-bookworm" sysroot version
  have "$tag" && return
  sysroot=$(rustc --print sysroot)
  version=$(rustc --version | awk '{print $2}')
  [[ $version == "$RUST_VERSION" || $version == "$RUST_VERSION".* ]] ||
    fail "the Dockerfile pins Rust $RUST_VERSION but this machine's toolchain is $version"
  command -v debootstrap >/dev/null || fail "debootstrap is missing: apt-get install -y debootstrap"
  log "making $tag (debootstrap from $MIRROR + toolchain $version)"
  local root="$WORK/rust"
  debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm "$root" "$MIRROR" >&2
  slim "$root"
  local dest="$root/usr/local/rustup/toolchains/$version-x86_64-unknown-linux-gnu"
  mkdir -p "$dest" "$root/usr/local/cargo/bin"
  tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$dest" -x
  for bin in cargo rustc rustdoc; do
    ln -s "/usr/local/rustup/toolchains/$version-x86_64-unknown-linux-gnu/bin/$bin" "$root/usr/local/cargo/bin/$bin"
  done
  tar -C "$root" -c . | "$DOCKER" import \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV RUST_VERSION=$version" \
    --change 'CMD ["bash"]' - "$tag" >/dev/null
  rm -rf "$root"
}

# A distroless-style root filesystem: libc, libgcc, CA bundle, users root/nobody/nonroot, no shell.
runtime_rootfs() {
  local root=${1:?} debs="$WORK/debs"
  mkdir -p "$debs" "$root"/{etc/ssl/certs,tmp,home/nonroot,root}
  (cd "$debs" && apt-get download -o APT::Sandbox::User=root libc6 libgcc-s1 ca-certificates >&2)
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done
  # What update-ca-certificates would write, without running anything inside the rootfs.
  cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
  for unneeded in usr/share/ca-certificates usr/sbin usr/bin usr/lib/x86_64-linux-gnu/gconv usr/share/lintian \
    etc/ca-certificates; do
    rm -rf "${root:?}/$unneeded"
  done
  slim "$root"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  chown 65532:65532 "$root/home/nonroot"
}

# Imports a rootfs with the runtime's environment; extra arguments are more --change lines.
import_runtime() {
  local root=$1 tag=$2
  shift 2
  local changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt')
  for change in "$@"; do changes+=(--change "$change"); done
  tar -C "$root" --numeric-owner -c . | "$DOCKER" import "${changes[@]}" - "$tag" >/dev/null
}

runtime() {
  have "$RUNTIME" && return
  log "making $RUNTIME (Debian packages libc6, libgcc-s1, ca-certificates)"
  runtime_rootfs "$WORK/runtime"
  import_runtime "$WORK/runtime" "$RUNTIME" 'USER 65532:65532' 'WORKDIR /home/nonroot'
  rm -rf "$WORK/runtime"
}

# An image running Debian's `binary` (copied with the libraries it links) at `dest`; DATA_DIR, if
# set, is a directory owned by nobody.
binary_image() {
  local tag=$1 binary=$2 dest=$3
  shift 3
  have "$tag" && return
  [[ -x $binary ]] || fail "$binary is missing (its Debian package is not installed)"
  log "making $tag from Debian's $binary"
  local root="$WORK/binary"
  rm -rf "$root"
  runtime_rootfs "$root"
  install -D "$binary" "$root$dest"
  if [[ -n ${DATA_DIR:-} ]]; then
    install -d -o 65534 -g 65534 "$root$DATA_DIR"
  fi
  ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
    cp -nL "$lib" "$root/lib/x86_64-linux-gnu/"
  done
  import_runtime "$root" "$tag" "$@"
  rm -rf "$root"
}

rust_builder
runtime
binary_image "haproxy:$HAPROXY_TAG" /usr/sbin/haproxy /usr/local/sbin/haproxy \
  'USER 65532:65532' 'CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
# Upstream's prom/prometheus runs as nobody from /prometheus, its data directory.
DATA_DIR=/prometheus binary_image "prom/prometheus:$PROMETHEUS_TAG" /usr/bin/prometheus /bin/prometheus \
  'USER 65534:65534' 'WORKDIR /prometheus' 'ENTRYPOINT ["/bin/prometheus"]' \
  'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
"$DOCKER" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(rust:$RUST_VERSION|gcr.io/distroless|haproxy|prom/prometheus)" >&2
