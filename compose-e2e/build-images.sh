#!/usr/bin/env bash
# Builds, FROM scratch and without pulling any base image:
#   trustproxy/trustproxy:TAG     the Dockerfile at the repository root
#   trustproxy-e2e/registry:TAG   distribution's registry (the compose stack's upstream)
#   trustproxy-e2e/static:TAG     a static file server (the compose stack's TUF server)
# from static CGO_ENABLED=0 Go binaries built on this host.
#
# usage: compose-e2e/build-images.sh [TAG]     (TAG defaults to dev)
# TRUSTPROXY_BIN=PATH also leaves the static trustproxy binary at PATH (the
# tests use it as the publisher CLI).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-dev}
ctx=$(mktemp -d "${TMPDIR:-/tmp}/trustproxy-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
export CGO_ENABLED=0
cd "$repo"

gobuild() { go build -trimpath -ldflags='-s -w' -o "$@"; }

echo "build-images: go build trustproxy, healthprobe, static"
mkdir -p "$ctx/trustproxy" "$ctx/registry" "$ctx/static"
gobuild "$ctx/trustproxy/trustproxy" ./cmd/trustproxy
gobuild "$ctx/healthprobe" ./compose-e2e/cmd/healthprobe
gobuild "$ctx/static/app" ./compose-e2e/cmd/static
if [ -n "${TRUSTPROXY_BIN:-}" ]; then cp "$ctx/trustproxy/trustproxy" "$TRUSTPROXY_BIN"; fi

# distribution's registry command at the version go.mod requires. Its command
# package needs modules (cobra, otelhttp, the cloud storage SDKs) that this
# module's go.sum does not list, so it is built as its own module with
# `go install pkg@version`, which leaves go.mod and go.sum alone. The first
# build on a machine downloads and compiles those modules (minutes); later
# ones come from the build cache (seconds).
dist=$(go list -m -f '{{.Version}}' github.com/distribution/distribution/v3)
echo "build-images: go install distribution registry $dist"
GOBIN="$ctx/bin" go install -trimpath -ldflags='-s -w' "github.com/distribution/distribution/v3/cmd/registry@$dist"
mv "$ctx/bin/registry" "$ctx/registry/app"

certs=/etc/ssl/certs/ca-certificates.crt
[ -r "$certs" ] || { echo "build-images: $certs not found (install ca-certificates)" >&2; exit 1; }
for d in trustproxy registry static; do
  c="$ctx/$d"
  cp "$ctx/healthprobe" "$c/healthprobe"
  printf 'root:x:0:0:root:/:/sbin/nologin\n%s:x:65532:65532:%s:/data:/sbin/nologin\n' "$d" "$d" >"$c/passwd"
  printf 'root:x:0:\n%s:x:65532:\n' "$d" >"$c/group"
  mkdir -p "$c/data"
done
cp "$certs" "$ctx/trustproxy/ca-certificates.crt"
mkdir -p "$ctx/trustproxy/tmp"

build() { # image dockerfile context
  echo "build-images: docker build $1"
  local old
  old=$(docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true)
  # The legacy builder's deprecation notice goes to stderr: show it only on failure.
  if ! docker build -q -t "$1" -f "$2" "$3" >"$ctx/build.log" 2>&1; then
    cat "$ctx/build.log" >&2
    return 1
  fi
  # The image this tag named before is now untagged: remove it unless a
  # container still uses it.
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect --format '{{.Id}}' "$1")" ]; then
    docker image rm "$old" >/dev/null 2>&1 || true
  fi
}
build "trustproxy/trustproxy:$tag" "$repo/Dockerfile" "$ctx/trustproxy"
build "trustproxy-e2e/registry:$tag" "$repo/compose-e2e/helper.Dockerfile" "$ctx/registry"
build "trustproxy-e2e/static:$tag" "$repo/compose-e2e/helper.Dockerfile" "$ctx/static"
echo "build-images: built trustproxy/trustproxy:$tag trustproxy-e2e/registry:$tag trustproxy-e2e/static:$tag"
