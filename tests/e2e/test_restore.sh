#!/usr/bin/env bash
# Restores end to end: a routine's full backup (taken from one emulator) restored into a fresh
# second emulator with /v1/restore/full, then again with /v1/restore/timestamp; job status,
# listing with filters, cancel of an unknown job, and request validation.
source "$(dirname "$0")/lib.sh"

start_emulator src --namespace test --generate test:3000:demo:150
start_emulator dst --namespace test

write_src_dst_config "$WORK/c.yml" <<YAML
storage:
  local: {local-storage: {path: $WORK/backups}}
backup-policies:
  p: {parallel: 2, compression: {mode: ZSTD, level: 1}}
backup-routines:
  r1: {source-cluster: source, storage: local, backup-policy: p, interval-cron: '@yearly', namespaces: [test]}
YAML
start_service "$WORK/c.yml" || exit 1
expect_startup_full r1 3000
key=$KEY

# ---- full restore into the empty target
restore_and_wait "full restore" /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"local\", \"destination-name\": \"target\"}"
check "job id is a bare number" grep -Eq '^[0-9]+$' <<<"$RESTORE_ID"
check "full restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "all records inserted" test "$(json_get '."inserted-records"')" = "3000"
check "read = inserted" test "$(json_get '."read-records"')" = "3000"
check "bytes counted" test "$(json_get '."total-bytes"')" -gt 0

# ---- point in time into the same target: every record already there with the same generation
now=$(($(date +%s) * 1000 + 1000))
restore_and_wait "timestamp restore" /v1/restore/timestamp "{\"routine\": \"r1\", \"time\": $now, \"destination-name\": \"target\", \"policy\": {\"parallel\": 2}}"
check "timestamp restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "nothing newer written again" test "$(json_get '."fresher-records"')" = "3000"

# ---- older request spellings: storage-name, and an inline source with the legacy `type`
restore_and_wait "storage-name alias restore" /v1/restore/full "{\"backup-data-path\": \"$key\", \"storage-name\": \"local\", \"destination-name\": \"target\", \"policy\": {\"unique\": true}}"
check "unique: every record existed" test "$(json_get '."existed-records"')" = "3000"
restore_and_wait "inline source (legacy type) restore" /v1/restore/full "{\"backup-data-path\": \"$key\", \"source\": {\"type\": 0, \"local-storage\": {\"path\": \"$WORK/backups\"}}, \"destination-name\": \"target\"}"
check "inline source restore succeeded" test "$(json_get .status)" = "success"

# ---- listing and filters
req GET /v1/restore/jobs
check "all jobs listed" test "$(json_get 'keys | length')" = "4"
req GET "/v1/restore/jobs?status=success"
check "status filter" test "$(json_get 'keys | length')" = "4"
req GET "/v1/restore/jobs?status=!success,failure"
check "exclusion filter" test "$(json_get 'keys | length')" = "0"
req GET "/v1/restore/jobs?status=bogus"
expect_status 400 "bad status filter"

# ---- validation and unknown jobs
req POST /v1/restore/full "{\"source-name\": \"local\", \"destination-name\": \"target\"}"
expect_status 400 "missing backup-data-path"
expect_body_contains "backup-data-path" "names the field"
req POST /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"nope\", \"destination-name\": \"target\"}"
expect_status 400 "unknown source"
req POST /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"local\", \"destination-name\": \"target\", \"policy\": {\"replace\": true, \"unique\": true}}"
expect_status 400 "replace with unique"
req POST /v1/restore/timestamp "{\"routine\": \"r1\", \"time\": 5}"
expect_status 400 "time too small"
req GET /v1/restore/status/12345
expect_status 404 "unknown job"
req GET /v1/restore/status/abc
expect_status 400 "bad job id"
req POST /v1/restore/cancel/12345
expect_status 404 "cancel unknown job"

# ---- a restore that cannot succeed reports failure with the reason
restore_and_wait "restore of a missing folder" /v1/restore/full "{\"backup-data-path\": \"r1/backup/1/data/test\", \"source-name\": \"local\", \"destination-name\": \"target\"}"
check "missing folder fails" test "$(json_get .status)" = "failure"
check "failure has an error" test "$(json_get '.error | length')" -gt 0

req GET /metrics
expect_body_contains 'aerospike_backup_service_restore_events_total{outcome="success"} 4' "restore success events"
expect_body_contains 'aerospike_backup_service_restore_events_total{outcome="failure"} 1' "restore failure events"
expect_body_contains 'aerospike_backup_service_restore_in_progress 0' "no restore in progress"
finish
