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
write_src_dst_config "$WORK/c.yml" <<YAML
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
expect_startup_full r1 3000
key=$KEY
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
restore_and_wait restore/full /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"gcs\", \"destination-name\": \"target\"}"
check "restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "all records inserted" test "$(json_get '."inserted-records"')" = "3000"

# ---- restore by timestamp finds the backup through the gcs listing
now=$(($(date +%s) * 1000 + 1000))
restore_and_wait restore/timestamp /v1/restore/timestamp "{\"routine\": \"r1\", \"time\": $now, \"destination-name\": \"target\"}"
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
