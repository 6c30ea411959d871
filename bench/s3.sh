#!/usr/bin/env bash
# Backup to S3 (a private s3rver on loopback, tests/services/s3rver.sh) vs local storage in the
# same run: RECORDS records of ~200 B in the emulator, full backups at parallel 1 and 4, MB/s
# of .asb output and peak RSS of each (an S3 writer buffers one part of min-part-size per file
# in flight, so memory is bounded by parallel x part size, not by the backup's size). Uses
# bench_storage (bench/bench_storage.c). s3rver writes every object and part to its disk and
# is single-threaded JavaScript: its figure is the emulator's bound, not S3's.
# Usage: bash bench/s3.sh [RECORDS] [PART_BYTES]   (prints figures only)
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
PART=${2:-5242880}
if [ -z "${S3_ENDPOINT:-}" ]; then
  exec bash tests/services/s3rver.sh bash "$0" "$@"
fi
source bench/lib.sh
bench_build bench_storage
bench_emulator "$RECORDS"
s3="{s3-storage: {bucket: $S3_BUCKET, s3-region: $S3_REGION, path: bench,"
s3+=" s3-endpoint-override: '$S3_ENDPOINT', access-key-id: $S3_ACCESS_KEY_ID,"
s3+=" secret-access-key: $S3_SECRET_ACCESS_KEY, min-part-size: $PART}}"
echo "# $RECORDS records of ~200 B in the emulator on 127.0.0.1:$port; s3rver at $S3_ENDPOINT"
bench_vs_local s3 "$s3"
