#!/usr/bin/env bash
# A node leaves the cluster in the middle of a backup: a 3-node emulator, a throttled backup
# (records-per-second), node 3 stopped while the scans run. The client drops the node from
# its view and partition map and re-scans the node's partitions on their new owners: the
# backup still holds every record exactly once. The node then comes back and the next backup
# uses all three nodes again.
source "$(dirname "$0")/lib.sh"
EMULATOR=$(dirname "$BIN")/tests/emulator/aerospike-emulator

"$EMULATOR" --port 0 --nodes 3 --port-file "$WORK/emu.port" --namespace test \
  --generate test:4000:demo:150 >"$WORK/emulator.log" 2>&1 &
EMU=$!
trap 'kill $EMU 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do
  [ -s "$WORK/emu.port" ] && [ "$(wc -l <"$WORK/emu.port")" = 3 ] && break
  sleep 0.1
done
EMU_PORT=$(head -1 "$WORK/emu.port")

# emu_info PORT CMD: one info command on a raw connection
emu_info() {
  local port=$1 cmd="$2"$'\n' n hdr size
  n=${#cmd}
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf "\\x02\\x01\\x00\\x00\\x00\\x00\\x$(printf %02x $((n >> 8)))\\x$(printf %02x $((n & 255)))%s" "$cmd" >&3
  hdr=$(head -c 8 <&3 | od -An -tu1)
  read -r _ _ _ _ _ _ b6 b7 <<<"$hdr"
  size=$((b6 * 256 + b7))
  head -c "$size" <&3 | cut -f2
  exec 3<&-
}

PORT=$(free_port)
cat >"$WORK/c.yml" <<YAML
service:
  http: {address: 127.0.0.1, port: $PORT}
  logger: {level: DEBUG}
aerospike-clusters:
  emu: {seed-nodes: [{host-name: 127.0.0.1, port: $EMU_PORT}]}
storage:
  local: {local-storage: {path: $WORK/backups}}
backup-policies:
  slow: {parallel: 1, records-per-second: 1000}
backup-routines:
  r1: {source-cluster: emu, storage: local, backup-policy: slow, interval-cron: '@yearly', namespaces: [test]}
YAML
start_service "$WORK/c.yml" || exit 1

# the start-up full runs about 4 s; node 3 leaves after 1.5 s
sleep 1.5
check "node 3 stopped" test "$(emu_info "$EMU_PORT" emulator-node-stop:2)" = "ok"

wait_fulls() { # wait_fulls COUNT
  for _ in $(seq 1 300); do
    req GET /v1/backups/full/r1
    [ "$(json_get 'length')" = "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
check "backup finished despite the lost node" wait_fulls 1
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
check "second backup finished" wait_fulls 2
req GET /v1/backups/full/r1
check "second backup complete" test "$(json_get '[.[]."record-count"] | join(",")')" = "4000,4000"
finish
