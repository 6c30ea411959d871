#!/usr/bin/env bash
# Backup and restore benchmark: 1M records of ~200 bytes in the emulator, then
#  - raw scan and backup rates at parallel 1/4/8, each backup right after the scan of the same
#    parallelism (the machine may be shared: compare within a pair), with backup/scan in %;
#  - backups with zstd 1 / zstd 3 / AES-256 / zstd+AES-256 at parallel 4;
#  - the emulator's own batch write-sink rate (pre-encoded batches, the bound of any writer),
#    the client's batch write rate (1M records, batch size 128; one batch at a time per thread,
#    and 16 in flight per thread);
#  - restores of a backup (batch writes with max-async-batches in flight, and single writes),
# with the peak RSS of each run. Usage: bash bench/run.sh [RECORDS] [ROUNDS]   (prints figures only)
# BENCH_SPLIT_CPUS=1: the emulator on CPU 0, the client on the others (see bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
ROUNDS=${2:-2}
source bench/lib.sh
bench_build bench_backup
bench_emulator "$RECORDS"
key=tests/data/asb/e-backup-aes256/key.pem
b() { "${client[@]}" ./build/bench/bench/bench_backup "$@"; }
rate() { sed -n 's/.*records\/s=\([0-9]*\).*/\1/p'; }
echo "# $RECORDS records of ~200 B in the emulator on 127.0.0.1:$port"
for round in $(seq 1 "$ROUNDS"); do
  for p in 1 4 8; do
    s=$(b 127.0.0.1 "$port" test scan "$p"); echo "$s"
    k=$(b 127.0.0.1 "$port" test backup "$p"); echo "$k"
    echo "  -> round $round parallel $p: backup/scan = $(( $(echo "$k" | rate) * 100 / $(echo "$s" | rate) ))%"
  done
done
for lvl in 1 3; do b 127.0.0.1 "$port" test backup 4 "$lvl"; done
b 127.0.0.1 "$port" test backup 4 0 "$key"
b 127.0.0.1 "$port" test backup 4 3 "$key"
for p in 1 4; do b 127.0.0.1 "$port" test sink "$p"; done
for p in 1 4; do b 127.0.0.1 "$port" test batchwrite "$p"; done
for p in 1 4; do b 127.0.0.1 "$port" test batchwrite-async "$p"; done
for p in 1 4 8; do b 127.0.0.1 "$port" test restore "$p"; done
b 127.0.0.1 "$port" test restore 4 1
b 127.0.0.1 "$port" test restore-single 4
