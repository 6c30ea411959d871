#!/usr/bin/env bash
# Backup and restore benchmark: 1M records of ~200 bytes in the emulator, then raw scan and backup rates
# at parallel 1/4/8, compression off / zstd 1 / zstd 3, encryption off / AES-256, with the
# peak RSS of each run; then restores of such a backup (batch and single writes). Usage: bash bench/run.sh [RECORDS]   (prints figures only)
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench -j"$(nproc)" --target bench_backup aerospike-emulator >/dev/null
work=$(mktemp -d)
./build/bench/tests/emulator/aerospike-emulator --port 0 --port-file "$work/port" --namespace test \
  --generate "test:$RECORDS::200" >"$work/emu.log" 2>&1 &
emu=$!
trap 'kill $emu 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(head -1 "$work/port")
key=tests/data/asb/e-backup-aes256/key.pem
b=./build/bench/bench/bench_backup
echo "# $RECORDS records of ~200 B in the emulator on 127.0.0.1:$port"
for p in 1 4 8; do "$b" 127.0.0.1 "$port" test scan "$p"; done
for p in 1 4 8; do "$b" 127.0.0.1 "$port" test backup "$p"; done
for lvl in 1 3; do "$b" 127.0.0.1 "$port" test backup 4 "$lvl"; done
"$b" 127.0.0.1 "$port" test backup 4 0 "$key"
"$b" 127.0.0.1 "$port" test backup 4 3 "$key"
for p in 1 4 8; do "$b" 127.0.0.1 "$port" test restore "$p"; done
"$b" 127.0.0.1 "$port" test restore 4 1
"$b" 127.0.0.1 "$port" test restore-single 4
