#!/usr/bin/env bash
# Metrics lint: runs the service against the bundled Aerospike emulator, makes every metric
# family carry samples (a start-up full, a skipped full, an incremental, a restore and a full
# scraped while they run), then checks both GET /metrics expositions with `promtool check
# metrics` (from Debian's prometheus package, extracted by scripts/deps.d/promtool.sh; no
# Prometheus server is ever started), that no `# TYPE` family is left without a sample, and
# that every ABS metric family is there. Uses the binaries of ${ABS_BUILD_DIR:-build/release}
# (built here when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${ABS_BUILD_DIR:-build/release}
if [ ! -x "$build/aerospike-backup-service" ] || [ ! -x "$build/tests/emulator/aerospike-emulator" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target aerospike-backup-service aerospike-emulator
fi
promtool=$(bash scripts/deps.d/promtool.sh)

set -- "$build/aerospike-backup-service"
set +e +u
source tests/e2e/lib.sh
set -u
start_emulator EMU --nodes 2 --namespace test --namespace target \
  --generate test:3000:demo:200 --fault-delay-ms 300
write_emu_config "$WORK/c.yml" <<YAML
backup-policies:
  p: {parallel: 2}
backup-routines:
  r1: {source-cluster: emu, storage: local, backup-policy: p, interval-cron: '@yearly', namespaces: [test]}
YAML
start_service "$WORK/c.yml" || exit 1

req POST /v1/backups/full/r1 # while the start-up full runs: skipped
check "start-up full" wait_fulls r1 1
req POST /v1/backups/incremental/r1
sleep 1.5 # an empty incremental leaves nothing listed; its outcome is counted
key=$(req GET /v1/backups/full/r1; json_get '.[0].key')

# a restore (1000 records/s: 3 s) and a full at once (the emulator answers each scan after
# 300 ms): scrapes while they run (progress gauges; only those that show one are kept), one after
req POST /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"local\", \"destination-name\": \"emu\", \"policy\": {\"namespace\": {\"source\": \"test\", \"destination\": \"target\"}, \"tps\": 1000}}"
expect_status 202 "restore accepted"
restore_id=$BODY
req POST /v1/backups/full/r1
got_backup="" got_restore=""
for i in $(seq 1 200); do
  curl -s -o "$WORK/metrics-mid$i.txt" "http://127.0.0.1:$PORT/metrics"
  grep -q '^aerospike_backup_service_backup_progress_pct{' "$WORK/metrics-mid$i.txt" && got_backup=1
  grep -q '^aerospike_backup_service_restore_progress_pct{' "$WORK/metrics-mid$i.txt" && got_restore=1
  grep -q '_progress_pct{' "$WORK/metrics-mid$i.txt" || rm "$WORK/metrics-mid$i.txt"
  if [ -n "$got_backup" ] && [ -n "$got_restore" ]; then break; fi
  sleep 0.05
done
cat "$WORK"/metrics-mid*.txt >"$WORK/metrics-mid.txt" # for the family check below
check "scraped while a backup runs" test -n "$got_backup"
check "scraped while a restore runs" test -n "$got_restore"
wait_restore "$restore_id"
check "restore finished ($BODY)" test "$(json_get .status)" = "success"
check "second full" wait_fulls r1 2
curl -s -o "$WORK/metrics-end.txt" "http://127.0.0.1:$PORT/metrics"

for file in "$WORK"/metrics-mid[0-9]*.txt "$WORK/metrics-end.txt"; do
  scrape=$(basename "$file" .txt)
  echo "--- promtool check metrics ($scrape: $(grep -c '^# TYPE' "$file") families)"
  if "$promtool" check metrics <"$file" >"$WORK/promtool.out" 2>&1; then
    pass
  else
    fail "promtool check metrics ($scrape): $(cat "$WORK/promtool.out")"
  fi
  cat "$WORK/promtool.out"
  # every family declared has at least one sample
  while read -r _ _ family _; do
    if grep -Eq "^${family}(_bucket|_sum|_count)?(\{| )" "$file"; then
      pass
    else
      fail "metric family $family has no sample ($scrape)"
    fi
  done < <(grep '^# TYPE ' "$file")
done
# the ABS families (seed v2 and section 8.3), each with samples in one of the scrapes
for family in runs_total incremental_runs_total skip_total incremental_skip_total failure_total \
    incremental_failure_total duration_millis incremental_duration_millis backup_progress_pct \
    restore_progress_pct backup_events_total backup_duration_seconds backup_in_progress \
    last_successful_backup_timestamp restore_in_progress restore_events_total; do
  check "family aerospike_backup_service_$family exposed" \
    grep -Eq "^aerospike_backup_service_${family}(_bucket|_sum|_count)?(\{| )" "$WORK/metrics-mid.txt" "$WORK/metrics-end.txt"
done
finish
