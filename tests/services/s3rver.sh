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

SERVICE_NAME=s3rver.sh
source "$here/lib.sh"

export S3_BUCKET=abs-test
mkdir -p "$work/data"

launch() { # launch PORT
  # s3rver's continuation tokens use a cipher OpenSSL 3 keeps in its legacy provider.
  NODE_OPTIONS=--openssl-legacy-provider exec "$s3rver" -d "$work/data" -a 127.0.0.1 -p "$1" --no-vhost-buckets \
    --configure-bucket "$S3_BUCKET"
}
start_on_free_port s3rver "$work/s3rver.log" 150 tcp_listening

export S3_ENDPOINT=http://127.0.0.1:$port
export S3_ACCESS_KEY_ID=S3RVER
export S3_SECRET_ACCESS_KEY=S3RVER
export S3_REGION=us-east-1
export S3_DATA_DIR=$work/data

run_command "$work/s3rver.log" "${S3RVER_SHOW_LOG:+50}" "$@"
