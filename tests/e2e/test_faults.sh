#!/usr/bin/env bash
# Storage faults: the backup storage runs out of space in the middle of a backup (a small tmpfs
# when running as root, else RLIMIT_FSIZE on the service, whose SIGXFSZ is ignored). The job
# fails with an error naming the file and the cause, no partial backup stays visible, the
# service keeps running, and the next backup works once space is back. Also the start-up
# clean-up of the partial folders an interrupted run left behind, and a routine whose storage
# cannot be read at start-up: no start-up full until its history could be read.
source "$(dirname "$0")/lib.sh"

start_emulator EMU --namespace test --generate test:5000:demo:200
DISK=$WORK/disk
MOUNTED=""
teardown() { # the service first (the tmpfs cannot be unmounted while it writes there)
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  PID=""
  [ -n "$MOUNTED" ] && umount "$DISK" 2>/dev/null
  cleanup
}
trap teardown EXIT

# ---- the storage: a 4 MiB tmpfs nearly filled, or a 256 KiB file-size limit
mkdir -p "$DISK"
if [ "${ABS_FAULTS_MODE:-}" != fsize ] && [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=4m,mode=0700 tmpfs "$DISK" 2>/dev/null; then
  MOUNTED=1
  MODE=tmpfs
  # leave about 200 KiB: the 5000 records (about 1 MiB of .asb) cannot fit
  dd if=/dev/zero of="$DISK/filler" bs=1k count=$((4096 - 200)) status=none 2>/dev/null
  CAUSE="No space left on device"
else
  MODE=fsize
  CAUSE="File too large"
fi
echo "full-disk mode: $MODE"

PORT=$(free_port)
write_faults_config() {
  cat >"$WORK/c.yml" <<YAML
service:
  http: {address: 127.0.0.1, port: $PORT}
  logger: {level: DEBUG, stdout-writer: true}
aerospike-clusters:
  emu: {seed-nodes: [{host-name: 127.0.0.1, port: $EMU_PORT}]}
storage:
  disk: {local-storage: {path: $DISK/backups}}
  blocked: {local-storage: {path: $WORK/blocked/backups}}
backup-policies:
  p: {parallel: 2, retry-policy: {base-timeout: 200, max-retries: 1}}
backup-routines:
  r: {source-cluster: emu, storage: disk, backup-policy: p, interval-cron: '@yearly', namespaces: [test]}
  late: {source-cluster: emu, storage: blocked, backup-policy: p, interval-cron: '@yearly', namespaces: [test]}
YAML
}
write_faults_config

# ---- the storage of routine `late` cannot be read at start-up (its parent is a file)
echo "not a directory" >"$WORK/blocked"

# ---- partial folders of an interrupted run, present before the service starts
mkdir -p "$DISK/backups/r/backup/1700000000000/data/test" "$DISK/backups/r/incremental/1700000001000/data/test"
echo "Version 3.1" >"$DISK/backups/r/backup/1700000000000/data/test/0_test_00000.asb"
echo "partial" >"$DISK/backups/r/backup/1700000000000/data/test/.0_test_00001.asb.tmp-abcdef"
echo "partial" >"$DISK/backups/r/incremental/1700000001000/data/test/.metadata.yaml.tmp-123456"

if [ "$MODE" = fsize ]; then
  ulimit -S -f 256 # KiB (soft limit, so it can be raised again); inherited by the service (and by nothing else that writes big files here)
fi
start_service "$WORK/c.yml" || exit 1
[ "$MODE" = fsize ] && ulimit -S -f unlimited

check "partial folder of an interrupted full deleted" test ! -e "$DISK/backups/r/backup/1700000000000"
check "temporary-only incremental folder deleted" test ! -e "$DISK/backups/r/incremental/1700000001000"
check "clean-up logged" grep -q 'deleted partial backup r/backup/1700000000000/' "$WORK/service.log"

# ---- the start-up full runs into the full disk
check "the full backup failed" wait_log 'routine r: full backup failure'
line=$(grep 'routine r: full backup failure' "$WORK/service.log" | head -1)
echo "error: $line"
check "the error names the cause ($CAUSE)" grep -q "$CAUSE" <<<"$line"
check "the error names the file" grep -Eq "backups/r/backup/[0-9]{13}/data/test/[^ :]*\\.asb" <<<"$line"
check "the namespace was tried again first (retry-policy)" \
  grep -q 'routine r: namespace test: .*(attempt 1 of 2); retrying in 200 ms' "$WORK/service.log"
req GET /health
expect_status 200 "service still running after the failure"
check "service process alive" kill -0 "$PID"
req GET /v1/backups/full/r
check "no backup listed" test "$(json_get 'length')" = "0"
check "no file left in the routine's folder" test -z "$(find "$DISK/backups/r" -type f 2>/dev/null)"
req GET /metrics
expect_body_contains 'aerospike_backup_service_backup_events_total{routine="r",type="full",outcome="failure"} 1' \
  "failure counted"
expect_body_contains 'aerospike_backup_service_backup_events_total{routine="r",type="full",outcome="retry"} 1' \
  "retry counted"

# ---- space comes back: the next backup works
if [ "$MODE" = tmpfs ]; then
  rm -f "$DISK/filler"
else
  prlimit --pid "$PID" --fsize=unlimited
fi
req POST /v1/backups/full/r
expect_status 202 "on-demand full accepted"
check "the next full backup succeeded" wait_fulls r 1
check "all records" test "$(json_get '.[0]."record-count"')" = "5000"
dir=$DISK/backups/$(json_get '.[0].key')
check "metadata.yaml written" test -s "$dir/metadata.yaml"

# ---- an unreadable history is not "no full backup": no start-up full until it can be read
check "history read failure logged" grep -q 'routine late: backup history could not be read' "$WORK/service.log"
check "start-up check retried later" grep -q 'routine late: start-up full backup check retried in' "$WORK/service.log"
check "no full started for late while its history is unknown" \
  bash -c "! grep -q 'routine late: start-up full backup started' '$WORK/service.log'"
rm -f "$WORK/blocked"
# retries back off 1, 2, 4, 8, 16 s...
check "once readable, the missing full runs" wait_fulls late 1 60
check "decided by the retried check" grep -q 'routine late: no full backup yet; running one now' "$WORK/service.log"
finish
