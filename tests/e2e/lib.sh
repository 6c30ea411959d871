# lib.sh - shared helpers for the end-to-end tests: start the real binary on a free loopback
# port with a temporary configuration, issue HTTP requests with curl, and assert on them.
# Each test script sources this file and calls `finish` at the end.
set -u

BIN=${1:?usage: test_x.sh PATH_TO_BINARY}
BIN=$(readlink -f "$BIN")
WORK=$(mktemp -d /tmp/abs-e2e.XXXXXX)
PID=""
PASSED=0
FAILED=0

cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
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

finish() {
  stop_service >/dev/null 2>&1
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
