#!/usr/bin/env bash
# make demo: the whole stack as a new user would see it, then torn down.
#
#   SPIRE server + agent  ->  the gateway takes its SVID from the Workload API
#   example app, example agent (each its own binary, entry and SPIFFE ID)
#     -> call the gateway with the OpenAI Go SDK over mTLS
#   one call allowed, one denied by policy, then `portcullis audit verify`
#
# Needs nothing on the network: the LLM is the in-tree fake provider.
#
# The example programs are ./examples/app and ./examples/agent (DEMO_APP_PKG
# and DEMO_AGENT_PKG override). Each takes -gateway URL, -gateway-id ID,
# -model M and a prompt, gets its SVID from $SPIFFE_ENDPOINT_SOCKET, prints
# what happened and exits non-zero when the gateway refuses the call.
set -euo pipefail
# shellcheck source=spire/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

step=0
title() {
	step=$((step + 1))
	printf '\n== %d. %s\n' "$step" "$*"
}

if [[ -f "$state/dir" ]]; then
	die "SPIRE from an earlier make spire-up is still running; make spire-down first"
fi
trap 'status=$?; printf "\n== cleaning up\n"; "$root/spire/down.sh" || true; exit $status' EXIT

title "Building the programs"
app_pkg=${DEMO_APP_PKG:-./examples/app}
agent_pkg=${DEMO_AGENT_PKG:-./examples/agent}
for pkg in "$app_pkg" "$agent_pkg"; do
	[[ -d "$pkg" ]] || die "$pkg is missing: make demo needs the example app and agent"
done
say "bin/portcullis (the gateway), bin/example-app, bin/example-agent, bin/fakeprovider"
go build -o bin/portcullis ./cmd/portcullis
go build -o bin/example-app "$app_pkg"
go build -o bin/example-agent "$agent_pkg"
go build -o bin/fakeprovider ./bench/fakeprovider

title "Starting SPIRE and registering the three workloads (spire/entries.yaml)"
PORTCULLIS_CMD="$root/bin/portcullis" "$root/spire/up.sh"
run_dir=$(cat "$state/dir")
# shellcheck source=/dev/null
source "$run_dir/env"

title "Starting a fake LLM provider (in-tree, speaks the OpenAI API; no internet needed)"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$run_dir/provider.key"
provider_port=18090
while ! port_free "$provider_port"; do provider_port=$((provider_port + 1)); done
start provider "$root/bin/fakeprovider" -listen "127.0.0.1:$provider_port" -api-key-file "$run_dir/provider.key"
wait_until 30 "$run_dir/provider.pid" fakeprovider grep -q 'serving' "$run_dir/provider.log"
provider_url=$(sed -n 's/^fakeprovider: serving //p' "$run_dir/provider.log")
say "serving $provider_url; only the gateway holds its key"

title "Starting the gateway: its own SVID comes from the SPIRE agent's Workload API"
gateway_port=18443
while ! port_free "$gateway_port"; do gateway_port=$((gateway_port + 1)); done
sed -e "s|@RUN_DIR@|$run_dir|g" -e "s|@GATEWAY_PORT@|$gateway_port|g" \
	-e "s|@PROVIDER_URL@|$provider_url|g" spire/gateway.yaml >"$run_dir/gateway.yaml"
start gateway "$root/bin/portcullis" serve --config "$run_dir/gateway.yaml"
wait_until 60 "$run_dir/gateway.pid" gateway bash -c "exec 3<>/dev/tcp/127.0.0.1/$gateway_port"
say "listening on 127.0.0.1:$gateway_port as spiffe://example.org/portcullis (config: $run_dir/gateway.yaml)"

gateway_url="https://127.0.0.1:$gateway_port/v1/"
gateway_id=spiffe://example.org/portcullis

title "The example app asks gpt-4o-mini (it is spiffe://example.org/tenant/acme/app/demo-app)"
say "Its SVID comes from the agent, which recognized it by uid and binary path."
say "Policy: applications of tenant acme may use gpt-4o-mini. Expect: allowed."
bin/example-app -gateway "$gateway_url" -gateway-id "$gateway_id" -model gpt-4o-mini \
	"In one sentence: what is a SPIFFE ID?" || die "the app's call should have been allowed"

title "The example agent asks gpt-4o-mini with no task grant (spiffe://example.org/tenant/acme/agent/demo-agent)"
say "Policy: agents act only under a task grant. Expect: denied (403), nothing sent to the LLM."
if bin/example-agent -gateway "$gateway_url" -gateway-id "$gateway_id" -model gpt-4o-mini \
	"Summarize ticket 42."; then
	die "the agent's call should have been denied"
fi
say "(denied, as the policy says)"

title "Stopping the gateway and verifying its audit log"
stop "$run_dir/gateway.pid"
say "The decisions it recorded (SPIFFE ID, kind, model, allowed?):"
bin/portcullis audit export "$run_dir/audit" | grep '"type":"decision"' |
	sed -E 's/.*"spiffe_id":"([^"]*)".*"kind":"([^"]*)".*"model":"([^"]*)".*"allow":(true|false).*/  \1 (\2) -> \3: allow=\4/'
bin/portcullis audit verify "$run_dir/audit"

title "Done; tearing everything down"
