# lib.sh - shared helpers for the end-to-end tests: start the real binary on a free loopback
# port with a temporary configuration, issue HTTP requests with curl, and assert on them.
# Also the bundled Aerospike emulator (start_emulator, emu_info) and waits on backups, restores
# and the service log. Each test script sources this file and calls `finish` at the end.
set -u

BIN=${1:?usage: test_x.sh PATH_TO_BINARY}
BIN=$(readlink -f "$BIN")
EMULATOR=$(dirname "$BIN")/tests/emulator/aerospike-emulator
WORK=$(mktemp -d /tmp/abs-e2e.XXXXXX)
PID=""
BG_PIDS=() # helper processes (emulators, agents) killed by cleanup
PASSED=0
FAILED=0

cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
  [ ${#BG_PIDS[@]} -gt 0 ] && kill "${BG_PIDS[@]}" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; FAILED=$((FAILED + 1)); }
pass() { PASSED=$((PASSED + 1)); }

check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass; else fail "$what"; fi
}

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % 20000))  # below the ephemeral range (32768+)
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
  done
  echo "no free port" >&2; exit 1
}

# write_config FILE PORT [EXTRA_HTTP_YAML]: a small valid configuration.
write_config() {
  local file=$1 port=$2 extra=${3:-}
  cat >"$file" <<YAML
# yaml-language-server: \$schema=https://example.invalid/schema.json
service:
  http:
    address: 127.0.0.1
    port: $port
$extra
  logger:
    level: DEBUG
    stdout-writer: true
aerospike-clusters:
  c1:
    seed-nodes:
      - host-name: 127.0.0.1
        port: 3000
    credentials:
      user: admin
      password: hunter2-cluster-secret
storage:
  local:
    local-storage:
      path: $WORK/backups
backup-policies:
  p1:
    parallel: 2
backup-routines:
  r1:
    interval-cron: '@daily'
    source-cluster: c1
    storage: local
    backup-policy: p1
    namespaces: [test]
YAML
}

# config_head EXTRA_SERVICE_YAML CLUSTER=EMULATOR...: prints the service block on $PORT (with
# EXTRA_SERVICE_YAML when not empty) and one cluster per pair, seeded with the first port of
# the emulator started under that name (CLUSTER=src: port $src_PORT).
config_head() {
  local extra=$1 pair port_var
  shift
  printf 'service:\n  http: {address: 127.0.0.1, port: %s}\n' "$PORT"
  [ -n "$extra" ] && printf '%s\n' "$extra"
  printf 'aerospike-clusters:\n'
  for pair in "$@"; do
    port_var=${pair#*=}_PORT
    printf '  %s: {seed-nodes: [{host-name: 127.0.0.1, port: %s}]}\n' "${pair%%=*}" "${!port_var}"
  done
}

# write_emu_config FILE [EXTRA_SERVICE_YAML] <REST: FILE gets the service on a new free PORT
# (sets PORT), the cluster `emu` (the emulator started as EMU), the storage `local`
# ($WORK/backups), then the rest of the configuration from stdin.
write_emu_config() {
  local file=$1 extra=${2:-}
  PORT=$(free_port)
  {
    config_head "$extra" emu=EMU
    printf 'storage:\n  local: {local-storage: {path: %s}}\n' "$WORK/backups"
    cat
  } >"$file"
}

# write_src_dst_config FILE <REST: FILE gets the service on a new free PORT (sets PORT), the
# clusters `source` (the emulator started as src) and `target` (dst), then the rest of the
# configuration from stdin.
write_src_dst_config() {
  PORT=$(free_port)
  { config_head "" source=src target=dst; cat; } >"$1"
}

# start_service CONFIG [FLAGS...]: starts the binary and waits for /health.
start_service() {
  local cfg=$1; shift
  "$BIN" -c "$cfg" "$@" >>"$WORK/service.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/health"; then return 0; fi
    if ! kill -0 "$PID" 2>/dev/null; then echo "service exited:"; cat "$WORK/service.log"; return 1; fi
    sleep 0.1
  done
  echo "service did not become healthy"; cat "$WORK/service.log"; return 1
}

stop_service() {
  [ -z "$PID" ] && return 0
  kill -TERM "$PID" 2>/dev/null
  local rc=0
  wait "$PID" || rc=$?
  PID=""
  return $rc
}

# req METHOD PATH [BODY [CONTENT_TYPE]]: sets STATUS, BODY, CTYPE.
req() {
  local method=$1 path=$2 body=${3-} ctype=${4-application/json}
  local args=(-s -X "$method" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}')
  if [ -n "$body" ]; then
    printf '%s' "$body" >"$WORK/request"
    args+=(-H "Content-Type: $ctype" --data-binary "@$WORK/request")
  fi
  STATUS=$(curl "${args[@]}" "http://127.0.0.1:$PORT$path")
  BODY=$(cat "$WORK/body")
  CTYPE=$(grep -i '^content-type:' "$WORK/headers" | tr -d '\r' | cut -d' ' -f2-)
}

expect_status() { # expect_status WANT DESCRIPTION
  if [ "$STATUS" = "$1" ]; then pass; else fail "$2: status $STATUS, want $1; body: $BODY"; fi
}

expect_body_contains() {
  if [[ "$BODY" == *"$1"* ]]; then pass; else fail "$2: body lacks '$1': $BODY"; fi
}

expect_body_lacks() {
  if [[ "$BODY" != *"$1"* ]]; then pass; else fail "$2: body has '$1'"; fi
}

# json_get JQ_FILTER: reads a value out of $BODY.
json_get() { printf '%s' "$BODY" | jq -r "$1"; }

# start_emulator NAME ARGS...: starts the Aerospike emulator with ARGS on free ports (log
# $WORK/name.log, ports $WORK/name.port, NAME lower-cased), waits for its port file (written
# once every node listens: clear ports, then TLS ports) and sets NAME_PORT (the first node's
# clear port) and NAME_PID. The emulator is killed at exit.
start_emulator() {
  local name=$1 file; shift
  file=$WORK/${name,,}
  "$EMULATOR" --port 0 --port-file "$file.port" "$@" >"$file.log" 2>&1 &
  BG_PIDS+=($!)
  printf -v "${name}_PID" '%s' "$!"
  for _ in $(seq 1 100); do [ -s "$file.port" ] && break; sleep 0.1; done
  printf -v "${name}_PORT" '%s' "$(head -1 "$file.port")"
}

# emu_info PORT CMD: one info command on a raw connection to an emulator's clear port (the
# emulator-* knobs answer without login); prints the value.
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

# wait_fulls ROUTINE COUNT [SECONDS]: until GET /v1/backups/full/ROUTINE lists COUNT backups
# (default 30 s); BODY is then that listing.
wait_fulls() {
  local tries=$(( ${3:-30} * 10 ))
  for _ in $(seq 1 "$tries"); do
    req GET "/v1/backups/full/$1"
    [ "$(json_get 'length')" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

# expect_startup_full ROUTINE RECORDS: the start-up full backup of ROUTINE gets listed, its key
# is the namespace folder ROUTINE/backup/<13-digit ms>/data/test, and it holds RECORDS records
# in some bytes. Sets KEY; BODY is then the listing.
expect_startup_full() {
  local routine=$1 records=$2
  wait_fulls "$routine" 1
  check "start-up full backup listed ($BODY)" test "$(json_get 'length')" = "1"
  KEY=$(json_get '.[0].key')
  check "backup key is the namespace folder ($KEY)" grep -Eq "^$routine/backup/[0-9]{13}/data/test\$" <<<"$KEY"
  check "record count" test "$(json_get '.[0]."record-count"')" = "$records"
  check "byte count" test "$(json_get '.[0]."byte-count"')" -gt 0
}

# wait_no_running_full ROUTINE: until currentBackup of ROUTINE shows no full backup running.
wait_no_running_full() {
  for _ in $(seq 1 200); do
    req GET "/v1/backups/currentBackup/$1"
    [ "$(json_get 'has("full")')" = "false" ] && return 0
    sleep 0.1
  done
  return 1
}

# wait_restore ID: until restore job ID leaves "running" (30 s); BODY is then its status.
wait_restore() {
  for _ in $(seq 1 300); do
    req GET "/v1/restore/status/$1"
    [ "$(json_get .status)" != "running" ] && return 0
    sleep 0.1
  done
  return 1
}

# restore_and_wait WHAT PATH REQUEST_JSON: POSTs a restore request, expects 202 ("WHAT
# accepted"), sets RESTORE_ID and waits for the job to end ("WHAT finished"); BODY is then
# the job's status.
restore_and_wait() {
  local what=$1 path=$2 body=$3
  req POST "$path" "$body"
  expect_status 202 "$what accepted"
  RESTORE_ID=$BODY
  check "$what finished" wait_restore "$RESTORE_ID"
}

# wait_log PATTERN [FILE]: until FILE (default the service log) has a line matching the basic
# regular expression PATTERN (30 s).
wait_log() {
  local file=${2:-$WORK/service.log}
  for _ in $(seq 1 300); do
    grep -q -- "$1" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

finish() {
  stop_service >/dev/null 2>&1
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
