#!/usr/bin/env bash
# Builds, FROM scratch and without pulling any base image, from static
# CGO_ENABLED=0 Go binaries built on this host:
#   trustproxy  trustproxy/trustproxy:TAG     the Dockerfile at the repository root
#   registry    trustproxy-e2e/registry:TAG   distribution's registry (the compose stack's upstream)
#   static      trustproxy-e2e/static:TAG     a static file server (the compose stack's TUF server)
#
# usage: compose-e2e/build-images.sh [TAG [IMAGE...]]   (TAG: dev; IMAGE: all three)
#   compose-e2e/build-images.sh dev trustproxy         # only trustproxy's own image
# TRUSTPROXY_BIN=PATH also leaves the static trustproxy binary at PATH (the
# tests use it as the publisher CLI).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-dev}
shift || true
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(trustproxy registry static)
for i in "${images[@]}"; do
  case "$i" in trustproxy|registry|static) ;; *) echo "build-images: unknown image $i (trustproxy, registry, static)" >&2; exit 2 ;; esac
done
want() { [[ " ${images[*]} " == *" $1 "* ]]; }

ctx=$(mktemp -d "${TMPDIR:-/tmp}/trustproxy-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
export CGO_ENABLED=0
cd "$repo"

gobuild() { go build -trimpath -ldflags='-s -w' -o "$@"; }

echo "build-images: go build ${images[*]}"
gobuild "$ctx/healthprobe" ./compose-e2e/cmd/healthprobe
if want trustproxy || [ -n "${TRUSTPROXY_BIN:-}" ]; then
  mkdir -p "$ctx/trustproxy"
  gobuild "$ctx/trustproxy/trustproxy" ./cmd/trustproxy
  if [ -n "${TRUSTPROXY_BIN:-}" ]; then cp "$ctx/trustproxy/trustproxy" "$TRUSTPROXY_BIN"; fi
fi
if want static; then
  mkdir -p "$ctx/static"
  gobuild "$ctx/static/app" ./compose-e2e/cmd/static
fi
if want registry; then
  # distribution's registry command at the version go.mod requires. Its
  # command package needs modules (cobra, otelhttp, the cloud storage SDKs)
  # that this module's go.sum does not list, so it is built as its own
  # module with `go install pkg@version`, which leaves go.mod and go.sum
  # alone. The first build on a machine downloads and compiles those
  # modules (minutes); later ones come from the build cache (seconds).
  mkdir -p "$ctx/registry"
  dist=$(go list -m -f '{{.Version}}' github.com/distribution/distribution/v3)
  echo "build-images: go install distribution registry $dist"
  GOBIN="$ctx/bin" go install -trimpath -ldflags='-s -w' "github.com/distribution/distribution/v3/cmd/registry@$dist"
  mv "$ctx/bin/registry" "$ctx/registry/app"
fi

for d in "${images[@]}"; do
  c="$ctx/$d"
  cp "$ctx/healthprobe" "$c/healthprobe"
  printf 'root:x:0:0:root:/:/sbin/nologin\n%s:x:65532:65532:%s:/data:/sbin/nologin\n' "$d" "$d" >"$c/passwd"
  printf 'root:x:0:\n%s:x:65532:\n' "$d" >"$c/group"
  mkdir -p "$c/data"
done
if want trustproxy; then
  certs=/etc/ssl/certs/ca-certificates.crt
  [ -r "$certs" ] || { echo "build-images: $certs not found (install ca-certificates)" >&2; exit 1; }
  cp "$certs" "$ctx/trustproxy/ca-certificates.crt"
  mkdir -p "$ctx/trustproxy/tmp"
fi

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
want trustproxy && build "trustproxy/trustproxy:$tag" "$repo/Dockerfile" "$ctx/trustproxy"
want registry && build "trustproxy-e2e/registry:$tag" "$repo/compose-e2e/helper.Dockerfile" "$ctx/registry"
want static && build "trustproxy-e2e/static:$tag" "$repo/compose-e2e/helper.Dockerfile" "$ctx/static"
echo "build-images: built ${images[*]} ($tag)"
