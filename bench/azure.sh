#!/usr/bin/env bash
# Backup to Azure Blob Storage (Azurite, in memory, on loopback) vs local storage in the same
# run: RECORDS records of ~200 B in the emulator, full backups at parallel 1 and 4, MB/s of
# .asb output and peak RSS of each (the writer buffers one block of min-part-size per file in
# flight, so memory is bounded by parallel x part size, not by the backup's size).
# Usage: bash bench/azure.sh [RECORDS] [PART_BYTES]   (prints figures only)
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
PART=${2:-5242880}
if [ -z "${AZURITE_ENDPOINT:-}" ]; then
  exec bash tests/services/azurite.sh bash "$0" "$@"
fi
source bench/lib.sh
bench_build bench_storage
bench_emulator "$RECORDS"
azure="{azure-storage: {endpoint: '$AZURITE_ENDPOINT', container-name: $AZURITE_CONTAINER, path: bench,"
azure+=" account-name: $AZURITE_ACCOUNT, account-key: '$AZURITE_KEY', min-part-size: $PART}}"
echo "# $RECORDS records of ~200 B in the emulator on 127.0.0.1:$port; Azurite (in memory) at $AZURITE_ENDPOINT"
bench_vs_local azure "$azure"
