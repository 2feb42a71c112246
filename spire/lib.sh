# Shared by up.sh, down.sh and demo.sh; source it, do not run it.
# shellcheck shell=bash

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
spire_bin=${PORTCULLIS_SPIRE_BIN:-$root/tools/bin}
# Holds the path of the current run dir; spire/.run is git-ignored.
state=${SPIRE_STATE_DIR:-$root/spire/.run}

say() { printf '%s\n' "$*"; }
die() {
	printf 'spire: %s\n' "$*" >&2
	exit 1
}

# render TEMPLATE OUT: fill @RUN_DIR@, @TRUST_DOMAIN@ and @SERVER_PORT@.
render() {
	sed -e "s|@RUN_DIR@|$run_dir|g" \
		-e "s|@TRUST_DOMAIN@|$trust_domain|g" \
		-e "s|@SERVER_PORT@|$server_port|g" "$1" >"$2"
}

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_until SECONDS PIDFILE DESCRIPTION COMMAND...: run COMMAND every 0.2 s
# until it succeeds; fail early if the process in PIDFILE died.
wait_until() {
	local secs=$1 pidfile=$2 what=$3
	shift 3
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
			die "$what exited; last lines of its log:
$(tail -n 20 "${pidfile%.pid}.log" 2>/dev/null)"
		fi
		if ((SECONDS >= deadline)); then
			die "$what not ready after ${secs}s; last lines of its log:
$(tail -n 20 "${pidfile%.pid}.log" 2>/dev/null)"
		fi
		sleep 0.2
	done
}

# start NAME COMMAND...: start COMMAND in the background with its output in
# $run_dir/NAME.log and its PID in $run_dir/NAME.pid.
start() {
	local name=$1
	shift
	nohup "$@" >"$run_dir/$name.log" 2>&1 </dev/null &
	echo $! >"$run_dir/$name.pid"
}

# stop PIDFILE: stop the process recorded in PIDFILE, but only if it is still
# the one we started (its command line names our run dir), so a reused PID is
# never hit. TERM first, KILL after 10 s.
stop() {
	local pidfile=$1 pid
	[[ -f "$pidfile" ]] || return 0
	pid=$(cat "$pidfile")
	rm -f "$pidfile"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 0
	if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$run_dir"; then
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || return 0
	local i
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || {
			say "stopped $(basename "$pidfile" .pid) (pid $pid)"
			return 0
		}
		sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null || true
	say "killed $(basename "$pidfile" .pid) (pid $pid) after 10 s"
}
