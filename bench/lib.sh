# lib.sh - shared by the bench scripts (sourced from the repository root, under set -euo
# pipefail): a Release build of the benchmark programs in build/bench, and the Aerospike
# emulator loaded with records of ~200 B on loopback.

# bench_build TARGET...: configures build/bench (Release) and builds TARGET... and the emulator.
bench_build() {
  cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/bench -j"$(nproc)" --target "$@" aerospike-emulator >/dev/null
}

# BENCH_SPLIT_CPUS=1 (and 2+ CPUs): the emulator runs on CPU 0 and the measured programs on the
# others, as when the server has its own machine; `client` is then the taskset prefix for them.
client=()
if [ "${BENCH_SPLIT_CPUS:-0}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  client=(taskset -c "1-$(( $(nproc) - 1 ))")
fi

# bench_emulator RECORDS: starts the emulator (namespace test, RECORDS records of ~200 B) and
# waits for it; sets `work` (a temporary directory), `emu` (its pid) and `port`. Both go at exit.
bench_emulator() {
  work=$(mktemp -d)
  local pin=()
  [ ${#client[@]} -gt 0 ] && pin=(taskset -c 0)
  "${pin[@]}" ./build/bench/tests/emulator/aerospike-emulator --port 0 --port-file "$work/port" --namespace test \
    --generate "test:$1::200" >"$work/emu.log" 2>&1 &
  emu=$!
  trap 'kill $emu 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 1 600); do [ -s "$work/port" ] && break; sleep 0.1; done
  port=$(head -1 "$work/port")
}

# bench_vs_local NAME STORAGE_YAML: bench_storage's full backups of the emulator at parallel 1
# and 4, each to local storage and then to the storage STORAGE_YAML (printed as NAME).
bench_vs_local() {
  local b=./build/bench/bench/bench_storage p
  for p in 1 4; do
    "$b" 127.0.0.1 "$port" test "$p" local "{local-storage: {path: '$work/local'}}"
    "$b" 127.0.0.1 "$port" test "$p" "$1" "$2"
  done
}
