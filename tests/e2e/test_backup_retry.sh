#!/usr/bin/env bash
# The backup policy's retry-policy: a namespace whose backup fails is run again after
# base-timeout x multiplier^attempt, its failed attempt's files deleted first; each retry is a
# backup_events_total{outcome="retry"} event. Here every partition is unavailable until the
# test lifts the fault during the wait: the retry then backs up every record. A job cancelled
# while it waits to retry ends at once, canceled, leaving nothing behind.
source "$(dirname "$0")/lib.sh"

start_emulator EMU --namespace test --generate test:5000:demo:200 --fault-unavailable 0-4095

write_emu_config "$WORK/c.yml" <<YAML
backup-policies:
  p: {parallel: 2, retry-policy: {base-timeout: 1500, max-retries: 3, multiplier: 2}}
  wait: {parallel: 2, retry-policy: {base-timeout: 60000, max-retries: 5}}
backup-routines:
  r: {source-cluster: emu, storage: local, backup-policy: p, interval-cron: '@yearly', namespaces: [test]}
YAML
start_service "$WORK/c.yml" || exit 1

check "the first attempt failed and is retried" \
  wait_log 'routine r: namespace test: .*(attempt 1 of 4); retrying in 1500 ms'
check "fault lifted" test "$(emu_info "$EMU_PORT" 'emulator-fault:unavailable=none')" = "ok"
check "the retry succeeded" wait_fulls r 1
check "every record backed up" test "$(json_get '.[0]."record-count"')" = "5000"
dir=$WORK/backups/$(json_get '.[0].key')
check "each record once in the files" test "$(cat "$dir"/*.asb | grep -c '^+ d')" = "5000"
check "no temporary file left" test -z "$(find "$WORK/backups" -name '.*tmp*')"
req GET /metrics
expect_body_contains 'aerospike_backup_service_backup_events_total{routine="r",type="full",outcome="retry"} 1' \
  "the retry is counted"
expect_body_contains 'aerospike_backup_service_backup_events_total{routine="r",type="full",outcome="success"} 1' \
  "then the success"

# ---- cancelled while waiting to retry (60 s)
check "fault set again" test "$(emu_info "$EMU_PORT" 'emulator-fault:unavailable=0-4095')" = "ok"
req PUT /v1/config/routines/r '{"source-cluster": "emu", "storage": "local", "backup-policy": "wait", "interval-cron": "@yearly", "namespaces": ["test"]}'
expect_status 200 "routine switched to the slow retry policy"
req POST /v1/backups/full/r
expect_status 202 "second full accepted"
check "it failed and waits to retry" wait_log 'retrying in 60000 ms'
t0=$(date +%s)
req POST /v1/backups/cancel/r
expect_status 202 "cancel accepted"
check "the job ends canceled" wait_log 'routine r: full backup canceled'
check "at once ($(( $(date +%s) - t0 )) s)" test $(( $(date +%s) - t0 )) -le 3
req GET /v1/backups/full/r
check "only the first backup is listed" test "$(json_get 'length')" = "1"
check "nothing of the cancelled run left" test "$(ls "$WORK/backups/r/backup" | wc -l)" = "1"
finish
