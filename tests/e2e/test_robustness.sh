#!/usr/bin/env bash
# Concurrency and crash safety: concurrent writers all land; kill -9 in the middle of a stream
# of writes never leaves a partial configuration file; the rate limiter answers 429 and
# exempts its white-list.
source "$(dirname "$0")/lib.sh"

PORT=$(free_port)
CFG=$WORK/c.yml
write_config "$CFG" "$PORT"
start_service "$CFG" || exit 1

# ---- concurrent writers: 4 clients x 10 distinct policies
writers=()
for w in 1 2 3 4; do
  (for i in $(seq 1 10); do
     curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
       --data "{\"parallel\": $i}" "http://127.0.0.1:$PORT/v1/config/policies/w${w}_$i"
   done) &
  writers+=($!)
done
wait "${writers[@]}"
req GET /v1/config/policies
check "all 40 concurrent creations present" test "$(json_get 'keys | length')" = "41"
check "file has them all" test "$(grep -c '^  w[0-9]_[0-9]*:' "$CFG")" = "40"

# ---- kill -9 during a stream of PUTs: the file always loads
(for i in $(seq 1 400); do
   curl -s -o /dev/null -X PUT -H 'Content-Type: application/json' \
     --data "{\"parallel\": $i}" "http://127.0.0.1:$PORT/v1/config/policies/p1"
 done) &
STREAM=$!
sleep 1
kill -9 "$PID"
wait "$PID" 2>/dev/null
PID=""
kill "$STREAM" 2>/dev/null
wait "$STREAM" 2>/dev/null
check "no temporary files left visible as config" test "$(ls "$WORK" | grep -c '^c.yml$')" = "1"
check "restart after kill -9" start_service "$CFG"
req GET /v1/config/policies/p1
expect_status 200 "config intact after kill -9"
stop_service

# ---- rate limiter
PORT=$(free_port)
write_config "$WORK/rl.yml" "$PORT" "    rate:
      tps: 1
      size: 5
      white-list: [10.0.0.0/8]"
start_service "$WORK/rl.yml" || exit 1
codes=""
limited_body=""
for i in $(seq 1 20); do
  req GET /health
  codes+=" $STATUS"
  if [ "$STATUS" = 429 ]; then limited_body=$BODY; break; fi
done
check "first requests pass ($codes)" test "$(echo $codes | cut -d' ' -f1)" = "200"
check "burst then 429 ($codes)" grep -q 429 <<<"$codes"
check "429 body" test "$limited_body" = "Too Many Requests"
stop_service

PORT=$(free_port)
write_config "$WORK/wl.yml" "$PORT" "    rate:
      tps: 1
      size: 1
      white-list: [127.0.0.0/8]"
start_service "$WORK/wl.yml" || exit 1
codes=""
for i in $(seq 1 10); do
  codes+=" $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")"
done
check "white-listed client never limited ($codes)" bash -c "! grep -q 429 <<<'$codes'"

finish
