#!/usr/bin/env bash
# A node leaves the cluster in the middle of a backup: a 3-node emulator, a throttled backup
# (records-per-second), node 3 stopped while the scans run. The client drops the node from
# its view and partition map and re-scans the node's partitions on their new owners: the
# backup still holds every record exactly once. The node then comes back and the next backup
# uses all three nodes again.
source "$(dirname "$0")/lib.sh"

start_emulator EMU --nodes 3 --namespace test --generate test:4000:demo:150

write_emu_config "$WORK/c.yml" "  logger: {level: DEBUG}" <<YAML
backup-policies:
  slow: {parallel: 1, records-per-second: 1000}
backup-routines:
  r1: {source-cluster: emu, storage: local, backup-policy: slow, interval-cron: '@yearly', namespaces: [test]}
YAML
start_service "$WORK/c.yml" || exit 1

# the start-up full runs about 4 s; node 3 leaves after 1.5 s
sleep 1.5
check "node 3 stopped" test "$(emu_info "$EMU_PORT" emulator-node-stop:2)" = "ok"

check "backup finished despite the lost node" wait_fulls r1 1
check "every record backed up" test "$(json_get '.[0]."record-count"')" = "4000"
dir=$WORK/backups/$(json_get '.[0].key')
count_digests() { cat "$1"/*.asb | grep -c '^+ d'; }
check "each record once in the files" test "$(count_digests "$dir")" = "4000"
check "unique digests" test "$(cat "$dir"/*.asb | grep '^+ d' | sort -u | wc -l)" = "4000"
check "the scan re-ran the lost node's partitions" \
  grep -Eq "node BB9000000000003.*(retrying its partitions|will be retried)" "$WORK/service.log"
check "the node was dropped from the cluster view" \
  grep -q "BB9000000000003 .*removed from the cluster view" "$WORK/service.log"

# the node comes back; the next backup sees all records again
check "node 3 restarted" test "$(emu_info "$EMU_PORT" emulator-node-start:2)" = "ok"
sleep 1
req POST /v1/backups/schedule/r1
check "second backup finished" wait_fulls r1 2
req GET /v1/backups/full/r1
check "second backup complete" test "$(json_get '[.[]."record-count"] | join(",")')" = "4000,4000"
finish
