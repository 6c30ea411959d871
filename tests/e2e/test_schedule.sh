#!/usr/bin/env bash
# The scheduler on a seconds-level cron: fulls fire on schedule, disabling the routine stops
# them, enabling resumes them; incrementals with nothing new leave nothing behind.
source "$(dirname "$0")/lib.sh"
EMULATOR=$(dirname "$BIN")/tests/emulator/aerospike-emulator
"$EMULATOR" --port 0 --port-file "$WORK/emu.port" --namespace test --generate test:200 >"$WORK/emu.log" 2>&1 &
EMU=$!
trap 'kill $EMU 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/emu.port" ] && break; sleep 0.1; done

PORT=$(free_port)
cat >"$WORK/c.yml" <<YAML
service:
  http: {address: 127.0.0.1, port: $PORT}
aerospike-clusters:
  emu: {seed-nodes: [{host-name: 127.0.0.1, port: $(head -1 "$WORK/emu.port")}]}
storage:
  local: {local-storage: {path: $WORK/backups}}
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
finish
