#!/usr/bin/env bash
# Stop the SPIRE server and agent that `make spire-up` started (exactly the
# processes in its PID files, nothing else) and remove their state.
set -euo pipefail
# shellcheck source=spire/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ ! -f "$state/dir" ]]; then
	say "SPIRE is not up (no $state/dir)"
	exit 0
fi
run_dir=$(cat "$state/dir")
case "$run_dir" in
/tmp/pc-spire-*) ;;
*) die "refusing to remove unexpected run dir $run_dir" ;;
esac
# Workloads first (the demo's), then the agent, then the server.
for pidfile in "$run_dir"/*.pid; do
	case "$(basename "$pidfile")" in
	server.pid | agent.pid | '*.pid') ;;
	*) stop "$pidfile" ;;
	esac
done
stop "$run_dir/agent.pid"
stop "$run_dir/server.pid"
rm -rf "$run_dir"
rm -f "$state/dir"
rmdir "$state" 2>/dev/null || true
say "removed $run_dir"
