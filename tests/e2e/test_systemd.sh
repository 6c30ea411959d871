#!/usr/bin/env bash
# The service under systemd, simulated: READY=1 on $NOTIFY_SOCKET only once /health answers,
# RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 on SIGTERM; with $JOURNAL_STREAM naming
# stdout, log lines carry the <N> priority prefix and no timestamp. Also: -v and GET /version
# report the version of the VERSION file.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WANT_VERSION=$(tr -d ' \n\r' <"$ROOT/VERSION")
WANT_VERSION=${WANT_VERSION#v}

# ---- -v and /version come from VERSION ----
check "-v prints the VERSION file's version" grep -q "version $WANT_VERSION " <("$BIN" -v)

# ---- notify socket listener (abstract name) ----
SOCK="@abs-e2e-notify-$$-$RANDOM"
python3 - "$SOCK" "$WORK/notify.log" <<'EOF' &
import socket, sys
name, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + name[1:])
open(log + ".bound", "w").close()
while True:
    msg = s.recv(4096).decode()
    with open(log, "a") as f:
        f.write(msg.replace("\n", "|") + "\n")
EOF
LISTENER=$!
trap 'kill $LISTENER 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 50); do [ -e "$WORK/notify.log.bound" ] && break; sleep 0.1; done

PORT=$(free_port)
write_config "$WORK/c.yml" "$PORT"
: >"$WORK/stdout.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$WORK/stdout.log")
NOTIFY_SOCKET=$SOCK JOURNAL_STREAM=$JOURNAL_STREAM "$BIN" -c "$WORK/c.yml" >>"$WORK/stdout.log" 2>"$WORK/stderr.log" &
PID=$!

wait_for_line() { # wait_for_line PATTERN COUNT: the notify log has COUNT lines matching PATTERN
  for _ in $(seq 1 100); do
    local n
    n=$(grep -c "$1" "$WORK/notify.log" 2>/dev/null)
    [ "${n:-0}" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

check "READY=1 is sent" wait_for_line '^READY=1$' 1
req GET /health
expect_status 200 "/health answers as soon as READY=1 was sent"
req GET /version
expect_status 200 "/version"
check "/version reports the VERSION file's version" [ "$(json_get .version)" = "$WANT_VERSION" ]

kill -HUP "$PID"
check "RELOADING=1 with MONOTONIC_USEC on SIGHUP" wait_for_line '^RELOADING=1|MONOTONIC_USEC=[0-9][0-9]*$' 1
check "READY=1 again after the reload" wait_for_line '^READY=1$' 2
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=""
check "clean exit on SIGTERM" [ "$rc" -eq 0 ]
check "STOPPING=1 is sent" wait_for_line '^STOPPING=1$' 1
check "notifications in order" [ "$(cut -d'|' -f1 "$WORK/notify.log" | tr '\n' ' ')" = "READY=1 RELOADING=1 READY=1 STOPPING=1 " ]

# ---- journal-style stdout ----
check "journal lines start with <6>INFO" grep -q '^<6>INFO \[main\] aerospike-backup-service .* started' "$WORK/stdout.log"
check "journal lines carry no timestamp" bash -c "! grep -qE '^(<[0-9]>)?[0-9]{4}-[0-9]{2}-[0-9]{2}T' '$WORK/stdout.log'"
check "every stdout line has a priority prefix" bash -c "! grep -qv '^<[0-9]>' '$WORK/stdout.log'"
[ "$FAILED" -eq 0 ] || { echo "--- notify.log"; cat "$WORK/notify.log"; echo "--- stdout"; cat "$WORK/stdout.log"; cat "$WORK/stderr.log"; }

finish
