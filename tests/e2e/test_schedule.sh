#!/usr/bin/env bash
# The scheduler on a seconds-level cron: fulls fire on schedule, disabling the routine stops
# them, enabling resumes them; incrementals with nothing new leave nothing behind. Then the
# run/skip rules with an emulator slowed by its delay fault so that jobs overlap: a full never
# overlaps another full of the routine (skipped and counted), an incremental is skipped while a
# backup of the routine runs unless `concurrent-incremental`, and no incremental runs before a full.
source "$(dirname "$0")/lib.sh"
start_emulator EMU --namespace test --generate test:200

write_emu_config "$WORK/c.yml" <<YAML
backup-routines:
  tick:
    source-cluster: emu
    storage: local
    interval-cron: '*/2 * * * * *'
    incr-interval-cron: '1/2 * * * * *'
    namespaces: [test]
YAML
start_service "$WORK/c.yml" || exit 1
count_fulls() { req GET /v1/backups/full/tick; json_get 'length'; }

sleep 5
n1=$(count_fulls)
check "fulls fire on a 2-second cron (got $n1)" test "$n1" -ge 2
req GET /v1/backups/incremental/tick
check "empty incrementals leave nothing" test "$(json_get 'length')" = "0"
req GET /v1/backups/currentBackup/tick
check "next-full reported" test "$(json_get '."next-full"')" != "null"

req PUT /v1/config/routines/tick/disable
expect_status 204 "disable"
sleep 1
n2=$(count_fulls)
sleep 3
n3=$(count_fulls)
check "a disabled routine does not fire ($n2 -> $n3)" test "$n3" = "$n2"

req PUT /v1/config/routines/tick/enable
expect_status 204 "enable"
sleep 3
n4=$(count_fulls)
check "enabling resumes ($n3 -> $n4)" test "$n4" -gt "$n3"
req GET /metrics
expect_body_contains 'aerospike_backup_service_backup_events_total{routine="tick",type="full",outcome="success"}' "events counted"
stop_service

# ---- run/skip rules: every scan of this emulator answers after 6 s (jobs overlap even on a
# slow, shared machine)
start_emulator EMU2 --namespace test --generate test:200 --fault-delay-ms 6000
PORT=$(free_port)
: >"$WORK/service.log"
cat >"$WORK/rules.yml" <<YAML
service:
  http: {address: 127.0.0.1, port: $PORT}
  logger: {level: DEBUG, stdout-writer: true}
aerospike-clusters:
  slow: {seed-nodes: [{host-name: 127.0.0.1, port: $EMU2_PORT}]}
storage:
  local: {local-storage: {path: $WORK/backups2}}
backup-policies:
  serial: {parallel: 1}
  concurrent: {parallel: 1, concurrent-incremental: true}
backup-routines:
  ser: {source-cluster: slow, storage: local, backup-policy: serial, interval-cron: '@yearly', namespaces: [test]}
  conc: {source-cluster: slow, storage: local, backup-policy: concurrent, interval-cron: '@yearly', namespaces: [test]}
YAML
start_service "$WORK/rules.yml" || exit 1

skips() { # skips ROUTINE TYPE: backup_events_total{outcome="skip"} (0 when absent)
  req GET /metrics
  local v
  v=$(grep -F "aerospike_backup_service_backup_events_total{routine=\"$1\",type=\"$2\",outcome=\"skip\"}" <<<"$BODY" | awk '{print $2}')
  echo "${v:-0}"
}
running() { # running ROUTINE TYPE: whether currentBackup shows a job of that type
  req GET "/v1/backups/currentBackup/$1"
  [ "$(json_get "has(\"$2\")")" = "true" ]
}
wait_running() { for _ in $(seq 1 50); do running "$1" "$2" && return 0; sleep 0.1; done; return 1; }
wait_idle() { for _ in $(seq 1 300); do running "$1" full || running "$1" incremental || return 0; sleep 0.1; done; return 1; }
count_of() { req GET "/v1/backups/$2/$1"; json_get 'length'; }

# the start-up fulls run (no full yet); an incremental now must wait for a full
check "start-up full of ser runs" wait_running ser full
req POST /v1/backups/incremental/ser
expect_status 202 "incremental accepted"
req POST /v1/backups/full/ser
expect_status 202 "second full accepted"
sleep 0.5
check "incremental before any full skipped (no-full-backup)" \
  grep -q 'routine ser: on-demand incremental backup skipped (no-full-backup)' "$WORK/service.log"
check "full while a full runs skipped (full-running)" \
  grep -q 'routine ser: on-demand full backup skipped (full-running)' "$WORK/service.log"
check "full skip counted" test "$(skips ser full)" = "1"
check "incremental skip counted" test "$(skips ser incremental)" = "1"
check "ser idle again" wait_idle ser
check "conc idle again" wait_idle conc
check "one full of ser, the skipped one never ran" test "$(count_of ser full)" = "1"
check "no incremental of ser" test "$(count_of ser incremental)" = "0"

# without concurrent-incremental: an incremental due while the full runs is skipped
req POST /v1/backups/full/ser
check "ser full runs" wait_running ser full
req POST /v1/backups/incremental/ser
sleep 0.5
check "incremental while a full runs skipped (backup-running)" \
  grep -q 'routine ser: on-demand incremental backup skipped (backup-running)' "$WORK/service.log"
check "incremental skip counted again" test "$(skips ser incremental)" = "2"
check "the incremental did not run" bash -c "! grep -q 'routine ser: on-demand incremental backup started' '$WORK/service.log'"

# with concurrent-incremental: it starts while the full runs
req POST /v1/backups/full/conc
check "conc full runs" wait_running conc full
req POST /v1/backups/incremental/conc
check "incremental of conc runs beside its full" wait_running conc incremental
check "the full still runs" running conc full
check "no skip for conc" test "$(skips conc incremental)" = "0"
check "ser idle at the end" wait_idle ser
check "conc idle at the end" wait_idle conc
check "two fulls of ser" test "$(count_of ser full)" = "2"
req GET /v1/backups/full/ser
t1=$(json_get '.[0]."created"'); t2=$(json_get '.[1]."created"')
echo "ser fulls created $t1, $t2"
finish
