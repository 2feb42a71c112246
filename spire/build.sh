#!/usr/bin/env bash
# Build spire-server and spire-agent from the tools/ module into tools/bin.
#
# The build is skipped when both binaries exist and tools/bin/.stamp matches
# the SPIRE version pinned in tools/go.mod, the Go version and GOOS/GOARCH.
# A cold build takes about 11 minutes of CPU; a warm Go cache about 30 s.
#
# Environment:
#   GO                 go command (default: go)
#   SPIRE_BUILD_NICE   niceness of the compiler (default: 10; others share the cores)
#   SPIRE_BUILD_FORCE  set to 1 to rebuild even when the stamp matches
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/tools"
bin="$tools/bin"
go_cmd=${GO:-go}
nice_level=${SPIRE_BUILD_NICE:-10}

version=$(awk '$1 == "github.com/spiffe/spire" { print $2; exit }' "$tools/go.mod")
if [[ -z "$version" ]]; then
	echo "spire-build: github.com/spiffe/spire not found in $tools/go.mod" >&2
	exit 1
fi
stamp="spire $version $("$go_cmd" env GOVERSION) $("$go_cmd" env GOOS)/$("$go_cmd" env GOARCH) cgo"

mkdir -p "$bin"
# One build at a time: make spire-up, a test run and CI may all ask at once.
exec 9>"$bin/.lock"
if command -v flock >/dev/null; then
	flock 9
fi

if [[ "${SPIRE_BUILD_FORCE:-0}" != 1 && -x "$bin/spire-server" && -x "$bin/spire-agent" &&
	-f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$stamp" ]]; then
	echo "spire-build: up to date ($stamp) in $bin"
	exit 0
fi

echo "spire-build: building $stamp into $bin (cold cache: ~11 min)"
start=$(date +%s)
tmp=$(mktemp -d "$bin/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(
	cd "$tools"
	CGO_ENABLED=1 nice -n "$nice_level" "$go_cmd" build -trimpath -ldflags='-s -w' -o "$tmp/" \
		github.com/spiffe/spire/cmd/spire-server \
		github.com/spiffe/spire/cmd/spire-agent
)
rm -f "$bin/.stamp"
mv -f "$tmp/spire-server" "$bin/spire-server"
mv -f "$tmp/spire-agent" "$bin/spire-agent"
echo "$stamp" >"$bin/.stamp"
echo "spire-build: done in $(($(date +%s) - start)) s"
