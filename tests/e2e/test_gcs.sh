#!/usr/bin/env bash
# Google Cloud Storage end to end: a routine whose storage is a gcp-storage block on the Cloud
# Storage emulator (started by tests/services/gcs-emulator.sh when the caller did not) backs up
# the Aerospike emulator's namespace at start-up; the backup is listed through the API, its
# objects follow the ABS layout (<path>/<routine>/backup/<13-digit ms>/data/<ns>/{metadata.yaml,
# 0_<ns>_1.asb}), it restores into a second, empty Aerospike emulator (by path and by
# timestamp), and retention (full: 1) deletes the older backup's objects from the bucket.
# Emulator limits: no auth checks, buckets spring into existence, no multi-chunk resumable
# uploads (the default 50 MiB part keeps every file here in one request); those cases are unit
# tests against a fake (tests/unit/test_stor_gcs.c).
if [ -z "${GCS_EMULATOR_ENDPOINT:-}" ]; then
  exec bash "$(dirname "$0")/../services/gcs-emulator.sh" bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
EMULATOR=$(dirname "$BIN")/tests/emulator/aerospike-emulator

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

# Object names under the test's prefix, one per line, sorted (all pages).
list_objects() {
  local token="" url
  : >"$WORK/objects"
  while :; do
    url="$GCS_EMULATOR_ENDPOINT/storage/v1/b/$GCS_EMULATOR_BUCKET/o?prefix=$PREFIX%2F"
    [ -n "$token" ] && url="$url&pageToken=$(jq -rn --arg t "$token" '$t|@uri')"
    curl -fsS "$url" >"$WORK/page.json" || return 1
    jq -r '.items[]?.name' "$WORK/page.json" >>"$WORK/objects"
    token=$(jq -r '.nextPageToken // empty' "$WORK/page.json")
    [ -z "$token" ] && break
  done
  sort -o "$WORK/objects" "$WORK/objects"
}

PREFIX=e2e-$$
PORT=$(free_port)
cat >"$WORK/c.yml" <<YAML
service:
  http: {address: 127.0.0.1, port: $PORT}
aerospike-clusters:
  source: {seed-nodes: [{host-name: 127.0.0.1, port: $src_PORT}]}
  target: {seed-nodes: [{host-name: 127.0.0.1, port: $dst_PORT}]}
storage:
  gcs:
    gcp-storage:
      bucket-name: $GCS_EMULATOR_BUCKET
      path: $PREFIX
      endpoint: $GCS_EMULATOR_ENDPOINT
      storage-class: {data: NEARLINE, metadata: STANDARD}
backup-policies:
  p: {parallel: 2, compression: {mode: ZSTD, level: 1}, retention: {full: 1}}
backup-routines:
  r1: {source-cluster: source, storage: gcs, backup-policy: p, interval-cron: '@yearly', namespaces: [test]}
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
first_ts=$(sed -E 's|^r1/backup/([0-9]{13})/.*|\1|' <<<"$key")

# ---- layout in the bucket
list_objects || fail "list the bucket"
check "metadata.yaml at the ABS path" grep -Eq "^$PREFIX/r1/backup/[0-9]{13}/data/test/metadata.yaml$" "$WORK/objects"
check "record files at the ABS path" grep -Eq "^$PREFIX/r1/backup/[0-9]{13}/data/test/0_test_[0-9]+.asb$" "$WORK/objects"
check "only <worker>_test_<n>.asb, metadata_test_<n>.asb and metadata.yaml" \
  test "$(grep -Evc '/data/test/(([0-9]+|metadata)_test_[0-9]+\.asb|metadata\.yaml)$' "$WORK/objects")" = "0"
check "nothing outside the routine folder" test "$(grep -vc "^$PREFIX/r1/backup/" "$WORK/objects")" = "0"
check "every object under one timestamp" test "$(sed -E 's|^[^/]+/r1/backup/([0-9]{13})/.*|\1|' "$WORK/objects" | sort -u | wc -l)" = "1"
meta_obj=$(jq -rn --arg n "$PREFIX/$key/metadata.yaml" '$n|@uri')
curl -fsS "$GCS_EMULATOR_ENDPOINT/storage/v1/b/$GCS_EMULATOR_BUCKET/o/$meta_obj?alt=media" >"$WORK/metadata.yaml" ||
  fail "read metadata.yaml"
check "metadata.yaml names the namespace" grep -q '^namespace: test$' "$WORK/metadata.yaml"
check "metadata.yaml has the record count" grep -q '^record-count: 3000$' "$WORK/metadata.yaml"

# ---- restore into the empty target
wait_restore() { # wait_restore ID: until it leaves "running"
  for _ in $(seq 1 300); do
    req GET "/v1/restore/status/$1"
    [ "$(json_get .status)" != "running" ] && return 0
    sleep 0.1
  done
  return 1
}
req POST /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"gcs\", \"destination-name\": \"target\"}"
expect_status 202 "restore/full accepted"
check "restore finished" wait_restore "$BODY"
check "restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "all records inserted" test "$(json_get '."inserted-records"')" = "3000"

# ---- restore by timestamp finds the backup through the gcs listing
now=$(($(date +%s) * 1000 + 1000))
req POST /v1/restore/timestamp "{\"routine\": \"r1\", \"time\": $now, \"destination-name\": \"target\"}"
expect_status 202 "restore/timestamp accepted"
check "timestamp restore finished" wait_restore "$BODY"
check "timestamp restore succeeded ($BODY)" test "$(json_get .status)" = "success"

# ---- a second full; retention (full: 1) deletes the first one's objects
sleep 0.1 # a new millisecond timestamp
req POST /v1/backups/full/r1
expect_status 202 "trigger a second full"
gone=0
for _ in $(seq 1 300); do
  req GET /v1/backups/full/r1
  if [ "$(json_get 'length')" = "1" ] && [ "$(json_get '.[0].key')" != "$key" ]; then
    list_objects
    if ! grep -q "/r1/backup/$first_ts/" "$WORK/objects"; then gone=1; break; fi
  fi
  sleep 0.1
done
check "retention: one full listed, the new one ($BODY)" test "$gone" = "1"
check "retention: the new backup's objects are there" grep -Eq "^$PREFIX/r1/backup/[0-9]{13}/data/test/metadata.yaml$" "$WORK/objects"
check "service log mentions no errors" test "$(grep -ci 'level=error\|ERROR' "$WORK/service.log")" = "0"
req GET /health
expect_status 200 "service still up"

# ---- clean up the test's objects
list_objects
while read -r name; do
  curl -fsS -o /dev/null -X DELETE "$GCS_EMULATOR_ENDPOINT/storage/v1/b/$GCS_EMULATOR_BUCKET/o/$(jq -rn --arg n "$name" '$n|@uri')"
done <"$WORK/objects"
finish
