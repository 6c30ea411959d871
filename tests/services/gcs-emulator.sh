#!/usr/bin/env bash
# gcs-emulator.sh - runs a command against a private Cloud Storage emulator (firebase-tools'
# storage emulator, pinned and installed by scripts/deps.d/gcs-emulator.sh, started without Java
# by tests/gcs-emulator/gcs-emu.js): starts it on 127.0.0.1 on a free port, makes sure the test
# bucket exists, runs "$@" with
#   GCS_EMULATOR_ENDPOINT  (http://127.0.0.1:PORT, the gcp-storage `endpoint`)
#   GCS_EMULATOR_BUCKET    (the bucket)
# exported, stops the emulator, and exits with the command's status.
# Emulator limits the tests must respect: no multi-chunk resumable uploads, nothing over 130 MB,
# no bucket management (a bucket exists as soon as a request names it), no auth checks.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: gcs-emulator.sh COMMAND [ARGS...]" >&2; exit 2; }

tool_dir=$(bash "$repo/scripts/deps.d/gcs-emulator.sh") ||
  { echo "gcs-emulator.sh: firebase-tools unavailable" >&2; exit 1; }
launcher=$repo/tests/gcs-emulator/gcs-emu.js

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d /tmp/gcs-emulator.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

start() {
  port=$(free_port)
  GCS_EMU_TOOLS_DIR=$tool_dir NO_UPDATE_NOTIFIER=1 \
    node "$launcher" --host 127.0.0.1 --port "$port" --project demo-abs >"$work/emulator.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/b" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

started=0
for _ in 1 2 3; do # a port taken between the probe and the bind: try another
  if start; then started=1; break; fi
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""
done
if [ "$started" != 1 ]; then
  echo "gcs-emulator.sh: the emulator did not start" >&2
  cat "$work/emulator.log" >&2 || true
  exit 1
fi

export GCS_EMULATOR_ENDPOINT=http://127.0.0.1:$port
export GCS_EMULATOR_BUCKET=${GCS_EMULATOR_BUCKET:-abs-test}
# The emulator has no bucket creation route (501); naming a bucket in a request creates it.
curl -fsS -o /dev/null "$GCS_EMULATOR_ENDPOINT/storage/v1/b/$GCS_EMULATOR_BUCKET/o?maxResults=1" ||
  { echo "gcs-emulator.sh: cannot reach bucket $GCS_EMULATOR_BUCKET" >&2; exit 1; }

status=0
"$@" || status=$?
if [ "$status" != 0 ] && [ -n "${GCS_EMULATOR_LOG_ON_FAILURE:-1}" ]; then
  echo "gcs-emulator.sh: command failed ($status); emulator log tail:" >&2
  tail -n 30 "$work/emulator.log" >&2 || true
fi
exit "$status"
