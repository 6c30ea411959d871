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
EMULATOR=$(dirname "$BIN")/tests/emulator/aerospike-emulator
HELPER=$(dirname "$0")/../services/azure_container.py

start_emulator() { # start_emulator NAME ARGS...: sets <NAME>_PORT
  local name=$1; shift
  "$EMULATOR" --port 0 --port-file "$WORK/$name.port" "$@" >"$WORK/$name.log" 2>&1 &
  EMUS+=($!)
  for _ in $(seq 1 100); do [ -s "$WORK/$name.port" ] && break; sleep 0.1; done
  printf -v "${name}_PORT" '%s' "$(head -1 "$WORK/$name.port")"
}
EMUS=()
trap 'kill "${EMUS[@]}" 2>/dev/null; cleanup' EXIT
start_emulator src --namespace test --generate test:3000:demo:150
start_emulator dst --namespace test

WRONG_KEY=d3Jvbmcta2V5LWZvci1lMmUtdGVzdHMtMDEyMzQ1Njc4OWFiY2RlZg==
PREFIX=e2e-$$
PORT=$(free_port)
cat >"$WORK/c.yml" <<YAML
service:
  http: {address: 127.0.0.1, port: $PORT}
aerospike-clusters:
  source: {seed-nodes: [{host-name: 127.0.0.1, port: $src_PORT}]}
  target: {seed-nodes: [{host-name: 127.0.0.1, port: $dst_PORT}]}
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
for _ in $(seq 1 300); do
  req GET /v1/backups/full/r1
  [ "$(json_get 'length')" = "1" ] && break
  sleep 0.1
done
check "start-up full backup listed ($BODY)" test "$(json_get 'length')" = "1"
key=$(json_get '.[0].key')
check "backup key is the namespace folder ($key)" grep -Eq '^r1/backup/[0-9]{13}/data/test$' <<<"$key"
check "record count" test "$(json_get '.[0]."record-count"')" = "3000"
check "byte count" test "$(json_get '.[0]."byte-count"')" -gt 0

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
wait_restore() { # wait_restore ID: until it leaves "running"
  for _ in $(seq 1 300); do
    req GET "/v1/restore/status/$1"
    [ "$(json_get .status)" != "running" ] && return 0
    sleep 0.1
  done
  return 1
}
req POST /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"azure\", \"destination-name\": \"target\"}"
expect_status 202 "restore/full accepted"
id=$BODY
check "restore finished" wait_restore "$id"
check "restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "all records inserted" test "$(json_get '."inserted-records"')" = "3000"

# ---- restore by timestamp finds the backup through the azure listing
now=$(($(date +%s) * 1000 + 1000))
req POST /v1/restore/timestamp "{\"routine\": \"r1\", \"time\": $now, \"destination-name\": \"target\"}"
expect_status 202 "restore/timestamp accepted"
check "timestamp restore finished" wait_restore "$BODY"
check "timestamp restore succeeded ($BODY)" test "$(json_get .status)" = "success"

# ---- a routine on a storage with the wrong key fails clearly, without the key
req POST /v1/config/routines/r2 "{\"source-cluster\": \"source\", \"storage\": \"azure-bad\", \"backup-policy\": \"p\", \"interval-cron\": \"@yearly\", \"namespaces\": [\"test\"]}"
expect_status 201 "routine on the bad storage added"
req POST /v1/config/apply
expect_status 200 "config applied"
for _ in $(seq 1 200); do
  grep -q "routine r2: .*authentication failed" "$WORK/service.log" && break
  sleep 0.1
done
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
