#!/usr/bin/env bash
# Builds the service and the bundled demo cluster (the Aerospike protocol emulator with a
# generated `test` namespace on 127.0.0.1:3000), then runs the service with config/demo.yml
# in the foreground (HTTP on 127.0.0.1:8080, backups under ./backups). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc 2>/dev/null || echo 2)" --target aerospike-backup-service aerospike-emulator
rm -f build/release/demo-cluster.port
./build/release/tests/emulator/aerospike-emulator --port 3000 --namespace test \
  --generate test:10000:demo --port-file build/release/demo-cluster.port \
  >build/release/demo-cluster.log 2>&1 &
EMULATOR=$!
trap 'kill "$EMULATOR" 2>/dev/null || true' EXIT
# the service's start-up backup needs the cluster: wait until the emulator listens
for _ in $(seq 1 100); do
  [ -s build/release/demo-cluster.port ] && break
  kill -0 "$EMULATOR" 2>/dev/null || { cat build/release/demo-cluster.log >&2; exit 1; }
  sleep 0.1
done
echo "demo cluster (emulator) on 127.0.0.1:3000, pid $EMULATOR; service on http://127.0.0.1:8080"
./build/release/aerospike-backup-service -c config/demo.yml
