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

SERVICE_NAME=gcs-emulator.sh
source "$here/lib.sh"

launch() { # launch PORT
  GCS_EMU_TOOLS_DIR=$tool_dir NO_UPDATE_NOTIFIER=1 \
    exec node "$launcher" --host 127.0.0.1 --port "$1" --project demo-abs
}
answers() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/b" 2>/dev/null; }
start_on_free_port "the emulator" "$work/emulator.log" 300 answers

export GCS_EMULATOR_ENDPOINT=http://127.0.0.1:$port
export GCS_EMULATOR_BUCKET=${GCS_EMULATOR_BUCKET:-abs-test}
# The emulator has no bucket creation route (501); naming a bucket in a request creates it.
curl -fsS -o /dev/null "$GCS_EMULATOR_ENDPOINT/storage/v1/b/$GCS_EMULATOR_BUCKET/o?maxResults=1" ||
  { echo "gcs-emulator.sh: cannot reach bucket $GCS_EMULATOR_BUCKET" >&2; exit 1; }

run_command "$work/emulator.log" 30 "$@" # a failing command shows the emulator's log tail
