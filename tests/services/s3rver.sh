#!/usr/bin/env bash
# s3rver.sh - runs a command against a private S3 emulator (npm `s3rver`, pinned by
# scripts/deps.d/s3rver.sh): starts it on 127.0.0.1 on a free port with a temporary data
# directory and the test bucket, runs "$@" with
#   S3_ENDPOINT  (http://127.0.0.1:PORT)
#   S3_BUCKET    (abs-test; created at start-up)
#   S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY (s3rver's built-in account S3RVER/S3RVER)
#   S3_REGION    (us-east-1)
#   S3_DATA_DIR  (the emulator's data directory: objects are files under $S3_DATA_DIR/BUCKET)
# exported, stops the emulator, and exits with the command's status.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: s3rver.sh COMMAND [ARGS...]" >&2; exit 2; }

tool_dir=$(bash "$repo/scripts/deps.d/s3rver.sh") || { echo "s3rver.sh: s3rver unavailable" >&2; exit 1; }
s3rver=$tool_dir/node_modules/.bin/s3rver

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d /tmp/s3rver.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export S3_BUCKET=abs-test
mkdir -p "$work/data"

start() {
  port=$(free_port)
  # s3rver's continuation tokens use a cipher OpenSSL 3 keeps in its legacy provider.
  NODE_OPTIONS=--openssl-legacy-provider "$s3rver" -d "$work/data" -a 127.0.0.1 -p "$port" --no-vhost-buckets \
    --configure-bucket "$S3_BUCKET" >"$work/s3rver.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
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
  echo "s3rver.sh: s3rver did not start" >&2
  cat "$work/s3rver.log" >&2 || true
  exit 1
fi

export S3_ENDPOINT=http://127.0.0.1:$port
export S3_ACCESS_KEY_ID=S3RVER
export S3_SECRET_ACCESS_KEY=S3RVER
export S3_REGION=us-east-1
export S3_DATA_DIR=$work/data

status=0
"$@" || status=$?
if [ "$status" != 0 ] && [ -n "${S3RVER_SHOW_LOG:-}" ]; then tail -50 "$work/s3rver.log" >&2 || true; fi
exit "$status"
