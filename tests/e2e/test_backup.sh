#!/usr/bin/env bash
# Backups end to end against the bundled Aerospike emulator and local storage: the start-up
# full of a routine without backups, on-demand fulls and incrementals, the ABS folder layout
# and metadata.yaml, file-limit splitting, zstd + AES-256, retention, listing filters,
# currentBackup, cancel and the error answers of the backup routes.
source "$(dirname "$0")/lib.sh"
DATA=$(cd "$(dirname "$0")/../data" && pwd)

start_emulator EMU --namespace test --generate test:5000:demo:200

write_emu_config "$WORK/c.yml" <<YAML
backup-policies:
  small-files: {parallel: 2, file-limit: 1, retention: {full: 2, incremental: 1}}
  secure:
    parallel: 3
    with-cluster-configuration: true
    compression: {mode: ZSTD, level: 3}
    encryption: {mode: AES256, key-file: $DATA/asb/e-backup-aes256/key.pem}
backup-routines:
  r1: {source-cluster: emu, storage: local, backup-policy: small-files, interval-cron: '@yearly', namespaces: [test]}
  enc: {source-cluster: emu, storage: local, backup-policy: secure, interval-cron: '@yearly', namespaces: []}
YAML
start_service "$WORK/c.yml" || exit 1

# ---- the start-up full (no backup yet)
check "start-up full of r1 listed" wait_fulls r1 1
check "start-up full of enc listed" wait_fulls enc 1
req GET /v1/backups/full/r1
check "record count" test "$(json_get '.[0]."record-count"')" = "5000"
check "namespace" test "$(json_get '.[0].namespace')" = "test"
key=$(json_get '.[0].key')
check "key layout" grep -Eq '^r1/backup/[0-9]{13}/data/test$' <<<"$key"
dir=$WORK/backups/$key
check "metadata.yaml written" test -s "$dir/metadata.yaml"
check "metadata keys in ABS order" bash -c "cut -d: -f1 '$dir/metadata.yaml' | tr '\n' ' ' | grep -q '^created finished from namespace record-count byte-count file-count secondary-index-count udf-count compression encryption $'"
check "file-limit split into several files" test "$(ls "$dir" | grep -Ec '^[01]_test_[0-9]+\.asb$')" -ge 2
check "UDF/index file" test -f "$dir/metadata_test_1.asb"
check "files are 0600" test "$(stat -c %a "$dir/metadata.yaml")" = "600"
check "data files start with the .asb header" bash -c "head -1 \$(ls '$dir'/0_test_*.asb | head -1) | grep -qx 'Version 3.1'"
check "file-count matches" test "$(json_get '.[0]."file-count"')" = "$(ls "$dir" | grep -c '\.asb$')"
req GET /v1/backups/full
check "all-routines listing has both" test "$(json_get 'keys | join(",")')" = "enc,r1"

# ---- compressed + encrypted
req GET /v1/backups/full/enc
check "enc compression" test "$(json_get '.[0].compression')" = "ZSTD"
check "enc encryption" test "$(json_get '.[0].encryption')" = "AES256"
check "enc records" test "$(json_get '.[0]."record-count"')" = "5000"
encdir=$WORK/backups/$(json_get '.[0].key')
check "encrypted files are not plain text" bash -c "! grep -q 'Version 3.1' '$encdir'/0_test_*.asb"

# ---- with-cluster-configuration: configuration/aerospike_0.conf and the zip route
encts=$(json_get '.[0].timestamp')
conf=$(dirname "$(dirname "$encdir")")/configuration/aerospike_0.conf
check "cluster configuration written" test -s "$conf"
check "configuration has a namespace stanza" grep -q '^namespace test {' "$conf"
curl -s -o "$WORK/archive.zip" -D "$WORK/zip.headers" "http://127.0.0.1:$PORT/v1/retrieve/configuration/enc/$encts"
check "zip content type" grep -qi '^content-type: application/zip' "$WORK/zip.headers"
check "zip file name" grep -qi 'filename=archive.zip' "$WORK/zip.headers"
check "zip holds the conf file" bash -c "unzip -p '$WORK/archive.zip' aerospike_0.conf | cmp -s - '$conf'"
req GET /v1/retrieve/configuration/enc/1234567890123
expect_status 404 "unknown backup timestamp"
req GET /v1/retrieve/configuration/nope/$encts
expect_status 404 "unknown routine"

# ---- on-demand fulls and retention (full: 2)
for n in 2 3; do
  req POST /v1/backups/full/r1
  expect_status 202 "trigger full $n"
  sleep 0.3
  wait_no_running_full r1
done
check "retention keeps 2 fulls" wait_fulls r1 2
check "retention deleted the folder" test "$(ls "$WORK/backups/r1/backup" | wc -l)" = "2"
req GET /v1/backups/currentBackup/r1
check "currentBackup has last-full" test "$(json_get '."last-full"')" != "null"
check "currentBackup has next-full" test "$(json_get '."next-full"')" != "null"

# ---- listing filters
req GET /v1/backups/full/r1
first=$(json_get '.[0].timestamp')
req GET "/v1/backups/full/r1?from=$((first + 1))"
check "from filter" test "$(json_get 'length')" = "1"
req GET "/v1/backups/full/r1?to=$first"
check "to filter" test "$(json_get 'length')" = "1"
req GET "/v1/backups/full/r1?from=10&to=5"
expect_status 400 "from after to"
req GET "/v1/backups/full/r1?from=abc"
expect_status 400 "bad from"

# ---- an incremental with no changes is not kept
req POST /v1/backups/incremental/r1
expect_status 202 "trigger incremental"
sleep 1
req GET /v1/backups/incremental/r1
check "empty incremental removed" test "$(json_get 'length')" = "0"
check "no incremental folder left" bash -c "[ ! -d '$WORK/backups/r1/incremental' ] || [ -z \"\$(ls '$WORK/backups/r1/incremental')\" ]"

# ---- errors and cancel
req POST /v1/backups/full/nope
expect_status 404 "unknown routine"
req POST "/v1/backups/full/r1?delay=-5"
expect_status 400 "negative delay"
req POST /v1/backups/cancel/r1
expect_status 202 "cancel"
req GET /v1/backups/currentBackup/nope
expect_status 404 "currentBackup unknown routine"

req GET /metrics
expect_body_contains 'aerospike_backup_service_backup_events_total{routine="r1",type="full",outcome="success"} 3' "backup success events"
expect_body_contains 'aerospike_backup_service_backup_in_progress{routine="r1",type="full"} 0' "backup in progress gauge"
expect_body_contains 'aerospike_backup_service_runs_total 4' "legacy runs counter (3 fulls of r1, 1 of enc)"
expect_body_contains 'aerospike_backup_service_last_successful_backup_timestamp{routine="r1",type="full"}' "last success gauge"
finish
