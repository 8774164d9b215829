#!/usr/bin/env bash
# One command, from a fresh clone: build the images (FROM scratch, from static
# Go binaries), bring the compose stack up, seed the upstream, sign with the
# publisher CLI, run every client test against the published port, tear the
# stack down. The Go tests do all of it (TestMain); this installs the clients
# they drive when they are missing and runs them verbosely.
#
#   compose-e2e/run.sh                   # the whole client matrix
#   compose-e2e/run.sh -run TestPodman   # extra flags go to `go test`
#   E2E_KEEP=1 compose-e2e/run.sh        # leave the stack up afterwards
#
# Needs: Go, a Docker engine with docker-compose; as root, apt installs
# skopeo, podman and containerd (ctr) if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in skopeo podman containerd; do
  command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "run.sh: ${missing[*]} not installed: their tests will skip" >&2
  fi
fi

start=$(date +%s)
log=$(mktemp "${TMPDIR:-/tmp}/compose-e2e.XXXXXX")
trap 'rm -f "$log"' EXIT
set +e
go test -count=1 -v -timeout 30m ./compose-e2e/ "$@" 2>&1 | tee "$log"
code=${PIPESTATUS[0]}
set -e
echo
echo "run.sh: summary ($(( $(date +%s) - start ))s):"
grep -E '^ *(--- |ok |FAIL)' "$log" || true
exit "$code"
