#!/usr/bin/env bash
# Azure Blob Storage end to end: a routine whose storage is an azure-storage block on Azurite
# (started by tests/services/azurite.sh when the caller did not) backs up the emulator's
# namespace at start-up; the backup is listed through the API, its blobs follow the ABS
# layout (<path>/<routine>/backup/<13-digit ms>/data/<ns>/{metadata.yaml, 0_<ns>_1.asb}), and
# it restores into a second, empty emulator (by path and by timestamp). A routine on a second
# storage with a wrong account key gets a clear error naming the storage and the cause, with
# no key in the log, writes nothing, and the service stays up.
if [ -z "${AZURITE_ENDPOINT:-}" ]; then
  exec bash "$(dirname "$0")/../services/azurite.sh" bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
HELPER=$(dirname "$0")/../services/azure_container.py

start_emulator src --namespace test --generate test:3000:demo:150
start_emulator dst --namespace test

WRONG_KEY=d3Jvbmcta2V5LWZvci1lMmUtdGVzdHMtMDEyMzQ1Njc4OWFiY2RlZg==
PREFIX=e2e-$$
write_src_dst_config "$WORK/c.yml" <<YAML
storage:
  azure:
    azure-storage:
      endpoint: $AZURITE_ENDPOINT
      container-name: $AZURITE_CONTAINER
      path: $PREFIX
      account-name: $AZURITE_ACCOUNT
      account-key: $AZURITE_KEY
      min-part-size: 1048576
      storage-class: {data: Cool, metadata: Hot}
  azure-bad:
    azure-storage:
      endpoint: $AZURITE_ENDPOINT
      container-name: $AZURITE_CONTAINER
      path: bad-$PREFIX
      account-name: $AZURITE_ACCOUNT
      account-key: $WRONG_KEY
backup-policies:
  p: {parallel: 2, compression: {mode: ZSTD, level: 1}}
backup-routines:
  r1: {source-cluster: source, storage: azure, backup-policy: p, interval-cron: '@yearly', namespaces: [test]}
YAML
start_service "$WORK/c.yml" || exit 1

# ---- backup at start-up, listed through the API
expect_startup_full r1 3000
key=$KEY

# ---- layout in the container
python3 "$HELPER" list "$AZURITE_ENDPOINT" "$AZURITE_CONTAINER" "$PREFIX/" "$AZURITE_ACCOUNT" \
  "$AZURITE_KEY" >"$WORK/ours" || fail "list the container"
check "metadata.yaml at the ABS path" grep -Eq "^$PREFIX/r1/backup/[0-9]{13}/data/test/metadata.yaml$" "$WORK/ours"
# Data files share one counter with the UDF/sindex file: <worker>_<ns>_<n>.asb, metadata_<ns>_<n>.asb
check "record data files at the ABS path" grep -Eq "^$PREFIX/r1/backup/[0-9]{13}/data/test/[0-9]+_test_[0-9]+\.asb$" "$WORK/ours"
check "UDF/sindex file at the ABS path" grep -Eq "^$PREFIX/r1/backup/[0-9]{13}/data/test/metadata_test_[0-9]+\.asb$" "$WORK/ours"
check "nothing outside the routine folder" test "$(grep -vc "^$PREFIX/r1/backup/" "$WORK/ours")" = "0"
check "every blob under one timestamp" test "$(sed -E 's|^[^/]+/r1/backup/([0-9]{13})/.*|\1|' "$WORK/ours" | sort -u | wc -l)" = "1"

# ---- restore into the empty target
restore_and_wait restore/full /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"azure\", \"destination-name\": \"target\"}"
check "restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "all records inserted" test "$(json_get '."inserted-records"')" = "3000"

# ---- restore by timestamp finds the backup through the azure listing
now=$(($(date +%s) * 1000 + 1000))
restore_and_wait restore/timestamp /v1/restore/timestamp "{\"routine\": \"r1\", \"time\": $now, \"destination-name\": \"target\"}"
check "timestamp restore succeeded ($BODY)" test "$(json_get .status)" = "success"

# ---- a routine on a storage with the wrong key fails clearly, without the key
req POST /v1/config/routines/r2 "{\"source-cluster\": \"source\", \"storage\": \"azure-bad\", \"backup-policy\": \"p\", \"interval-cron\": \"@yearly\", \"namespaces\": [\"test\"]}"
expect_status 201 "routine on the bad storage added"
req POST /v1/config/apply
expect_status 200 "config applied"
wait_log "routine r2: .*authentication failed"
# (whether the start-up backup fails or waits for a readable history is the scheduler's call)
check "wrong key: the routine's error names storage and cause" \
  grep -q "routine r2: .*azure://$AZURITE_CONTAINER/bad-$PREFIX: .*authentication failed (check account-key)" "$WORK/service.log"
check "wrong key: key never logged" test "$(grep -c -- "$WRONG_KEY" "$WORK/service.log")" = "0"
check "account key never logged" test "$(grep -c -- "$AZURITE_KEY" "$WORK/service.log")" = "0"
req GET /v1/backups/full/r2
check "no backup listed for the failed routine" test "$(json_get 'length')" = "0"
python3 "$HELPER" list "$AZURITE_ENDPOINT" "$AZURITE_CONTAINER" "bad-$PREFIX/" >"$WORK/blobs2"
check "nothing written under the bad storage" test "$(wc -l <"$WORK/blobs2")" = "0"
req GET /health
expect_status 200 "service still up"
finish
