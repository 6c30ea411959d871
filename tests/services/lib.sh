# lib.sh - shared by the service launchers (s3rver.sh, azurite.sh, gcs-emulator.sh): a temporary
# work directory, starting the service on a free loopback port (with retries), stopping it at
# exit, and running the caller's command. Source it with SERVICE_NAME set (the launcher's file
# name, used for the work directory and in messages); sets `work`, and `port` + `pid` once the
# service runs.
set -euo pipefail
: "${SERVICE_NAME:?set SERVICE_NAME before sourcing tests/services/lib.sh}"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d "/tmp/${SERVICE_NAME%.sh}.XXXXXX")
pid=""
stop_service() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=""
}
cleanup() {
  stop_service
  rm -rf "$work"
}
trap cleanup EXIT

# tcp_listening PORT: something accepts connections on 127.0.0.1:PORT.
tcp_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_on_free_port WHAT LOG TRIES READY: runs the launcher's `launch PORT` (which must exec
# the service, so that `pid` is the service itself) in the background with its output in LOG,
# and waits up to TRIES tenths of a second for `READY PORT` to succeed; a port taken between
# the probe and the bind gets two more tries on other ports. Exits, showing LOG, when WHAT
# never starts.
start_on_free_port() {
  local what=$1 log=$2 tries=$3 ready=$4
  for _ in 1 2 3; do
    port=$(free_port)
    launch "$port" >"$log" 2>&1 &
    pid=$!
    if wait_ready "$tries" "$ready"; then return 0; fi
    stop_service
  done
  echo "$SERVICE_NAME: $what did not start" >&2
  cat "$log" >&2 || true
  exit 1
}

wait_ready() { # wait_ready TRIES READY: until READY $port succeeds, or the service exits
  for _ in $(seq 1 "$1"); do
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    if "$2" "$port"; then return 0; fi
    sleep 0.1
  done
  return 1
}

# run_command LOG LINES COMMAND [ARGS...]: runs the command with the exported settings and exits
# with its status; when it fails and LINES is not empty, shows the last LINES lines of LOG.
run_command() {
  local log=$1 lines=$2 status=0
  shift 2
  "$@" || status=$?
  if [ "$status" != 0 ] && [ -n "$lines" ]; then
    echo "$SERVICE_NAME: command failed ($status); service log tail:" >&2
    tail -n "$lines" "$log" >&2 || true
  fi
  exit "$status"
}
