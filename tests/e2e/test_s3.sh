#!/usr/bin/env bash
# S3 storage end to end, against a private s3rver (tests/services/s3rver.sh) and two Aerospike
# emulators: the service reads its configuration from the bucket (-r with an s3-storage block),
# a routine backs up to s3-storage (start-up full), the backups are listed
# (GET /v1/backups/full), restored into a fresh emulator, retention deletes the oldest full,
# the bucket holds the ABS layout (<path>/<routine>/backup/<ms>/data/<ns>/metadata.yaml +
# .asb files), and a config change through the API is saved back into the bucket object.
# Run without S3_ENDPOINT, the script re-runs itself under s3rver.sh.
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${S3_ENDPOINT:-}" ]; then
  exec bash "$here/../services/s3rver.sh" bash "$0" "$@"
fi
source "$here/lib.sh"

start_emulator src --namespace test --generate test:2000:demo:200
start_emulator dst --namespace test

# s3 REQUEST: signed curl against the emulator (s3rver's account), body to stdout.
s3() {
  curl -s --aws-sigv4 "aws:amz:$S3_REGION:s3" -u "$S3_ACCESS_KEY_ID:$S3_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}
# keys PREFIX: every object key under PREFIX, one a line.
keys() {
  s3 "$S3_ENDPOINT/$S3_BUCKET?list-type=2&max-keys=1000&prefix=$1" |
    grep -o '<Key>[^<]*</Key>' | sed 's/<Key>\(.*\)<\/Key>/\1/' | sort
}

PORT=$(free_port)
cat >"$WORK/abs.yml" <<YAML
# configuration kept in the bucket
service:
  http: {address: 127.0.0.1, port: $PORT}
  logger: {level: DEBUG, stdout-writer: true}
aerospike-clusters:
  source: {seed-nodes: [{host-name: 127.0.0.1, port: $src_PORT}]}
  target: {seed-nodes: [{host-name: 127.0.0.1, port: $dst_PORT}]}
storage:
  s3store:
    s3-storage:
      bucket: $S3_BUCKET
      s3-region: $S3_REGION
      path: backups/abs
      s3-endpoint-override: $S3_ENDPOINT
      access-key-id: $S3_ACCESS_KEY_ID
      secret-access-key: $S3_SECRET_ACCESS_KEY
      min-part-size: 5242880
  nobucket:
    s3-storage:
      bucket: no-such-bucket
      s3-region: $S3_REGION
      s3-endpoint-override: $S3_ENDPOINT
      access-key-id: $S3_ACCESS_KEY_ID
      secret-access-key: $S3_SECRET_ACCESS_KEY
backup-policies:
  p: {parallel: 2, retention: {full: 2}}
  once: {parallel: 1, retry-policy: {max-retries: 0}}
backup-routines:
  r1: {source-cluster: source, storage: s3store, backup-policy: p, interval-cron: '@yearly', namespaces: [test]}
  bad: {source-cluster: source, storage: nobucket, backup-policy: once, interval-cron: '@yearly', namespaces: [test]}
YAML
s3 -X PUT --data-binary "@$WORK/abs.yml" "$S3_ENDPOINT/$S3_BUCKET/conf/abs.yml" >/dev/null
check "config object uploaded" test "$(keys conf/)" = "conf/abs.yml"

cat >"$WORK/remote.yml" <<YAML
s3-storage:
  bucket: $S3_BUCKET
  s3-region: $S3_REGION
  path: conf/abs.yml
  s3-endpoint-override: $S3_ENDPOINT
  access-key-id: $S3_ACCESS_KEY_ID
  secret-access-key: $S3_SECRET_ACCESS_KEY
YAML
start_service "$WORK/remote.yml" -r || exit 1

# ---- start-up full backup into the bucket, listed through the API
expect_startup_full r1 2000
key=$KEY
req GET /v1/backups/full
check "all-routines listing has r1" test "$(json_get '.r1 | length')" = "1"
objs=$(keys backups/abs/)
check "metadata.yaml in the ABS layout" grep -Eq "^backups/abs/$key/metadata.yaml$" <<<"$objs"
check ".asb data files in the ABS layout" grep -Eq "^backups/abs/$key/[0-9]+_test_[0-9]+\.asb$" <<<"$objs"
meta=$(s3 "$S3_ENDPOINT/$S3_BUCKET/backups/abs/$key/metadata.yaml")
check "metadata.yaml content" grep -q '^record-count: 2000$' <<<"$meta"
check "no temp objects" test -z "$(grep -E '/\.' <<<"$objs")"

# ---- restore from S3 into the empty target
restore_and_wait "restore/full from s3" /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"s3store\", \"destination-name\": \"target\"}"
check "restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "all records inserted" test "$(json_get '."inserted-records"')" = "2000"

# ---- retention (full: 2): three fulls leave two folders in the bucket
for n in 2 3; do
  sleep 1.1 # distinct millisecond folders, and a running backup is not restarted
  req POST /v1/backups/full/r1
  expect_status 202 "trigger full $n"
  wait_no_running_full r1
done
check "retention keeps 2 fulls" wait_fulls r1 2
folders=$(keys backups/abs/r1/backup/ | cut -d/ -f5 | sort -u)
check "two backup folders left in the bucket" test "$(wc -l <<<"$folders")" = "2"
check "the oldest folder is gone" test -z "$(keys "backups/abs/$key/")"

# ---- remote configuration: an API change is saved back into the bucket object
req POST /v1/config/policies/p2 '{"parallel": 3}'
expect_status 201 "create policy through the API"
conf=$(s3 "$S3_ENDPOINT/$S3_BUCKET/conf/abs.yml")
check "saved config has the new policy" grep -q 'p2' <<<"$conf"
check "saved config keeps the routine" grep -q 'r1' <<<"$conf"
check "saved config keeps its header" grep -q '^# configuration kept in the bucket' <<<"$conf"
req GET /v1/config/policies/p2
expect_status 200 "new policy served"

# ---- a routine whose bucket does not exist: a clear failure, the service keeps running
wait_log 'bucket no-such-bucket does not exist'
check "missing bucket named in the log" grep -q 'bucket no-such-bucket does not exist' "$WORK/service.log"
req POST /v1/backups/full/bad
expect_status 202 "on-demand full of the bad routine accepted"
for _ in $(seq 1 100); do
  req GET /metrics
  [[ "$BODY" == *'backup_events_total{routine="bad",type="full",outcome="failure"} 1'* ]] && break
  sleep 0.1
done
expect_body_contains 'aerospike_backup_service_backup_events_total{routine="bad",type="full",outcome="failure"} 1' "the failed job is counted"
req GET /health
expect_status 200 "service still healthy"

# ---- secrets never in the log
check "secret key not logged" bash -c "! grep -q '$S3_SECRET_ACCESS_KEY:' '$WORK/service.log'"
finish
