#!/usr/bin/env bash
# The service itself, measured as a user runs it: 1M records of ~200 B in the emulator; for
# parallel 1/4/8 a fresh aerospike-backup-service (Release) takes a full backup through
# POST /v1/backups/full, then restores it through POST /v1/restore/full, both to/from local
# storage. Prints the records/s of each (backup: the metadata's created..finished span;
# restore: POST to the first status poll that is no longer running, polled every 20 ms) and the daemon's peak RSS (VmHWM) at the end: the figures
# the acceptance suite compares with asbackup/asrestore.
# Usage: bash bench/service.sh [RECORDS]   (prints figures only)
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-1000000}
source bench/lib.sh
bench_build aerospike-backup-service
bench_emulator "$RECORDS"
bin=./build/bench/aerospike-backup-service
http=$((20000 + RANDOM % 20000))
api() { curl -sf -X "$1" "http://127.0.0.1:$http$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
# ms since the epoch of an RFC 3339 time
ms() { python3 -c 'import sys, datetime; print(int(datetime.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00")).timestamp() * 1000))' "$1"; }

echo "# $RECORDS records of ~200 B in the emulator on 127.0.0.1:$port; service on 127.0.0.1:$http"
for p in 1 4 8; do
  rm -rf "$work/store"
  cat >"$work/service.yml" <<EOF
service: {http: {address: 127.0.0.1, port: $http}, logger: {level: WARN}}
aerospike-clusters: {c: {seed-nodes: [{host-name: 127.0.0.1, port: $port}]}}
storage: {s: {local-storage: {path: $work/store}}}
backup-policies: {p: {parallel: $p}}
backup-routines: {r: {interval-cron: '@yearly', source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}}
EOF
  "$bin" -c "$work/service.yml" >"$work/service.log" 2>&1 &
  svc=$!
  trap 'kill $svc $emu 2>/dev/null; cat "$work/service.log" >&2; rm -rf "$work"' EXIT
  # the start-up full backup (no full exists yet) is the timed one
  for _ in $(seq 1 600); do
    n=$(api GET /v1/backups/full/r 2>/dev/null | jq length 2>/dev/null || echo 0)
    [ "$n" = 1 ] && break
    sleep 0.1
  done
  details=$(api GET /v1/backups/full/r)
  key=$(jq -r '.[0].key' <<<"$details")
  span=$(( $(ms "$(jq -r '.[0].finished' <<<"$details")") - $(ms "$(jq -r '.[0].created' <<<"$details")") ))
  recs=$(jq -r '.[0]."record-count"' <<<"$details")
  bhwm=$(awk '/VmHWM/{print $2}' "/proc/$svc/status")
  t0=$(date +%s%3N)
  job=$(api POST /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"s\", \"destination-name\": \"c\",
    \"policy\": {\"parallel\": $p, \"replace\": true, \"no-generation\": true}}")
  for _ in $(seq 1 3000); do
    status=$(api GET "/v1/restore/status/$job")
    [ "$(jq -r .status <<<"$status")" != running ] && break
    sleep 0.02
  done
  rspan=$(( $(date +%s%3N) - t0 ))
  rrecs=$(jq -r '."inserted-records"' <<<"$status")
  hwm=$(awk '/VmHWM/{print $2}' "/proc/$svc/status")
  kill "$svc"; wait "$svc" || true
  echo "service parallel=$p backup: records=$recs ms=$span records/s=$(( recs * 1000 / (span > 0 ? span : 1) )) peak_rss_MiB=$((bhwm / 1024))" \
       " | restore: status=$(jq -r .status <<<"$status") records=$rrecs ms=$rspan records/s=$(( rrecs * 1000 / (rspan > 0 ? rspan : 1) )) peak_rss_MiB=$((hwm / 1024))"
done
