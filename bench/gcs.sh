#!/usr/bin/env bash
# Backup to Google Cloud Storage (the firebase-tools emulator on loopback,
# tests/services/gcs-emulator.sh) vs local storage in the same run: RECORDS records of ~200 B,
# full backups at parallel 1 and 4, MB/s of .asb output and peak RSS of each. The emulator
# refuses uploads over 130 MB and cannot do multi-chunk resumable uploads, so files are cut at
# 100 MB (file-limit) and sent as one chunk (min-part-size 128 MiB): the RSS figure is then
# bounded by parallel x 128 MiB, a property of these settings, not of the backup's size.
# Usage: bash bench/gcs.sh [RECORDS]   (prints figures only)
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
if [ -z "${GCS_EMULATOR_ENDPOINT:-}" ]; then
  exec bash tests/services/gcs-emulator.sh bash "$0" "$@"
fi
source bench/lib.sh
bench_build bench_storage
bench_emulator "$RECORDS"
export BENCH_FILE_LIMIT_MB=100
gcs="{gcp-storage: {bucket-name: ${GCS_EMULATOR_BUCKET:-abs-test}, path: bench,"
gcs+=" endpoint: '$GCS_EMULATOR_ENDPOINT', min-part-size: 134217728}}"
echo "# $RECORDS records of ~200 B in the emulator on 127.0.0.1:$port; GCS emulator at $GCS_EMULATOR_ENDPOINT"
bench_vs_local gcs "$gcs"
