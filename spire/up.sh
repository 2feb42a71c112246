#!/usr/bin/env bash
# Start a local SPIRE server and agent for Portcullis and register the
# workloads of spire/entries.yaml. Run it as `make spire-up`; stop with
# `make spire-down`. See spire/README.md.
#
# Environment:
#   SPIRE_TRUST_DOMAIN  trust domain (default: example.org; entries.yaml must match)
#   SPIRE_SERVER_PORT   server port on 127.0.0.1 (default: first free from 18081)
#   SPIRE_ENTRIES       entries file to apply (default: spire/entries.yaml)
#   PORTCULLIS_SPIRE_BIN  folder with spire-server and spire-agent (default: tools/bin)
#   PORTCULLIS_CMD      portcullis binary for `spire apply` (default: build bin/portcullis)
#   SPIRE_STATE_DIR     where the current run is recorded (default: spire/.run)
set -euo pipefail
# shellcheck source=spire/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trust_domain=${SPIRE_TRUST_DOMAIN:-example.org}
entries=${SPIRE_ENTRIES:-spire/entries.yaml}
cd "$root"

if [[ -f "$state/dir" && -d "$(cat "$state/dir")" ]]; then
	run_dir=$(cat "$state/dir")
	if kill -0 "$(cat "$run_dir/agent.pid" 2>/dev/null)" 2>/dev/null; then
		say "SPIRE is already up in $run_dir (make spire-down to stop it):"
		cat "$run_dir/env"
		exit 0
	fi
	die "a previous run in $run_dir is half up; run make spire-down first"
fi

if [[ -z "${PORTCULLIS_SPIRE_BIN:-}" ]]; then
	"$root/spire/build.sh"
fi
for b in spire-server spire-agent; do
	[[ -x "$spire_bin/$b" ]] || die "$spire_bin/$b not found (make spire-build)"
done
portcullis=${PORTCULLIS_CMD:-}
if [[ -z "$portcullis" ]]; then
	say "building bin/portcullis (used to apply the entries)"
	go build -o bin/portcullis ./cmd/portcullis
	portcullis=$root/bin/portcullis
fi

if [[ -n "${SPIRE_SERVER_PORT:-}" ]]; then
	server_port=$SPIRE_SERVER_PORT
	port_free "$server_port" || die "127.0.0.1:$server_port is in use"
else
	server_port=18081
	while ! port_free "$server_port"; do
		server_port=$((server_port + 1))
	done
fi

# A short run dir: the sockets live in it and unix socket paths are limited
# to 108 bytes. 0755 so that workloads running as other users can reach the
# agent's socket.
run_dir=$(mktemp -d /tmp/pc-spire-XXXXXX)
chmod 0755 "$run_dir"
mkdir -p "$state" "$run_dir/server/data" "$run_dir/agent/data"
chmod 0755 "$run_dir/agent"
echo "$run_dir" >"$state/dir"
# From here on, a failure tears down what was started.
trap 'status=$?; if ((status != 0)); then say "spire-up failed; cleaning up"; "$root/spire/down.sh" >/dev/null; fi' EXIT

render "$root/spire/server.conf" "$run_dir/server.conf"
render "$root/spire/agent.conf" "$run_dir/agent.conf"
server_sock="$run_dir/server/api.sock"
agent_sock="$run_dir/agent/api.sock"

say "1. starting spire-server for spiffe://$trust_domain on 127.0.0.1:$server_port"
start server "$spire_bin/spire-server" run -config "$run_dir/server.conf"
wait_until 60 "$run_dir/server.pid" spire-server \
	"$spire_bin/spire-server" healthcheck -socketPath "$server_sock"

say "2. writing the server's bundle as the agent's bootstrap bundle"
"$spire_bin/spire-server" bundle show -socketPath "$server_sock" >"$run_dir/agent/bootstrap.crt"

say "3. generating a join token for the node spiffe://$trust_domain/host"
token=$("$spire_bin/spire-server" token generate -socketPath "$server_sock" \
	-spiffeID "spiffe://$trust_domain/host" -ttl 600 | awk '/^Token:/ { print $2 }')
[[ -n "$token" ]] || die "no join token from spire-server token generate"

say "4. applying $entries"
PORTCULLIS_ROOT=$root PORTCULLIS_UID=$(id -u)
export PORTCULLIS_ROOT PORTCULLIS_UID
"$portcullis" spire apply --file "$entries" --socket "$server_sock" --prune

say "5. starting spire-agent"
start agent "$spire_bin/spire-agent" run -config "$run_dir/agent.conf" -joinToken "$token"
wait_until 60 "$run_dir/agent.pid" spire-agent \
	"$spire_bin/spire-agent" healthcheck -socketPath "$agent_sock"

cat >"$run_dir/env" <<ENV
export SPIFFE_ENDPOINT_SOCKET=unix://$agent_sock
export SPIRE_SERVER_SOCKET=$server_sock
export PORTCULLIS_ROOT=$root PORTCULLIS_UID=$PORTCULLIS_UID
ENV
say "SPIRE is up in $run_dir (logs: server.log, agent.log). For your shell:"
cat "$run_dir/env"
