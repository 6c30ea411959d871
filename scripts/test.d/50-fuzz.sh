#!/usr/bin/env bash
# Short fuzzing run of every libFuzzer target (tests/fuzz/fuzz_*.c): builds them with clang
# (-DABS_FUZZ=ON) in their own build directory, then fuzzes each for ${ABS_FUZZ_SECONDS:-15} s
# from a scratch copy of its seed corpus (tests/fuzz/corpus/<target>/; the repository's corpus is
# never modified). A crash fails the run and leaves the input in build/fuzz/crashes/<target>/:
# fix the decoder, then copy the input into the corpus as regress-<name> so that the plain
# CTest replay (fuzz_replay.<target>) keeps it as a regression test.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${ABS_FUZZ_SECONDS:-15}
build=${ABS_FUZZ_BUILD_DIR:-build/fuzz}
targets=(as_msg as_info as_admin asb config)

if ! command -v clang >/dev/null 2>&1; then
  echo "50-fuzz: clang is not installed (run scripts/deps.sh)" >&2
  exit 1
fi
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DABS_FUZZ=ON >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target "${targets[@]/#/fuzz_}"

failed=0
passed=0
for t in "${targets[@]}"; do
  work=$build/fuzz-work/$t
  crashes=$build/crashes/$t
  rm -rf "$work"
  mkdir -p "$work" "$crashes"
  cp tests/fuzz/corpus/"$t"/* "$work"/
  log=$build/fuzz-$t.log
  if "$build/tests/fuzz_$t" "$work" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
       -timeout=10 -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz_$t: ${runs:-?} executions in ${seconds} s, no crash"
    passed=$((passed + 1))
  else
    echo "fuzz_$t: FAILED (input kept in $crashes/):" >&2
    grep -E 'ERROR|SUMMARY|#[0-9]+ 0x' "$log" | head -20 >&2
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
