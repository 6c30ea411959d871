#!/usr/bin/env bash
# rack-list end to end: a 3-node emulator with nodes in racks 1, 2, 1; a routine restricted
# to rack 2 backs up only the partitions of that rack's node, racks 1+2 back up everything,
# and a rack no node serves fails the job with the rack named.
source "$(dirname "$0")/lib.sh"

start_emulator EMU --nodes 3 --racks 1,2,1 --namespace test --generate test:6000:demo:100

write_emu_config "$WORK/c.yml" <<YAML
backup-policies:
  p: {parallel: 2}
backup-routines:
  rack2: {source-cluster: emu, storage: local, backup-policy: p, interval-cron: '@yearly', namespaces: [test], rack-list: [2]}
  both: {source-cluster: emu, storage: local, backup-policy: p, interval-cron: '@yearly', namespaces: [test], rack-list: [1, 2]}
  nowhere: {source-cluster: emu, storage: local, backup-policy: p, interval-cron: '@yearly', namespaces: [test], rack-list: [7]}
YAML
start_service "$WORK/c.yml" || exit 1

records_of() { # records_of ROUTINE -> record-count of its first full backup, after waiting
  if wait_fulls "$1" 1; then json_get '.[0]."record-count"'; else echo none; fi
}

both=$(records_of both)
rack2=$(records_of rack2)
check "racks 1+2 back up every record" test "$both" = "6000"
check "rack 2 backs up a share (one node of three)" test "$rack2" -gt 1000 -a "$rack2" -lt 3000
check "rack 2 files written" bash -c "ls '$WORK'/backups/rack2/backup/*/data/test/*.asb >/dev/null"
wait_log 'rack 7'
check "unknown rack fails the job naming the rack" grep -q 'rack-list: rack 7 has no node serving namespace test' "$WORK/service.log"
req GET /v1/backups/full/nowhere
check "no backup for the unknown rack" test "$(json_get 'length')" = "0"
finish
