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
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench -j"$(nproc)" --target bench_storage aerospike-emulator >/dev/null
work=$(mktemp -d)
./build/bench/tests/emulator/aerospike-emulator --port 0 --port-file "$work/port" --namespace test \
  --generate "test:$RECORDS::200" >"$work/emu.log" 2>&1 &
emu=$!
trap 'kill $emu 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(head -1 "$work/port")
b=./build/bench/bench/bench_storage
azure="{azure-storage: {endpoint: '$AZURITE_ENDPOINT', container-name: $AZURITE_CONTAINER, path: bench,"
azure+=" account-name: $AZURITE_ACCOUNT, account-key: '$AZURITE_KEY', min-part-size: $PART}}"
echo "# $RECORDS records of ~200 B in the emulator on 127.0.0.1:$port; Azurite (in memory) at $AZURITE_ENDPOINT"
for p in 1 4; do
  "$b" 127.0.0.1 "$port" test "$p" local "{local-storage: {path: '$work/local'}}"
  "$b" 127.0.0.1 "$port" test "$p" azure "$azure"
done
