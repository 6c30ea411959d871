#!/usr/bin/env bash
# Configuration REST API: CRUD of every entity kind with ABS's status codes, validation
# messages naming the field, secret redaction and "[secret]" keep-stored, PUT /v1/config,
# apply, SIGHUP, routine enable/disable (both forms), malformed requests, persistence across
# restart.
source "$(dirname "$0")/lib.sh"

PORT=$(free_port)
CFG=$WORK/c.yml
write_config "$CFG" "$PORT"
chmod 0640 "$CFG"
start_service "$CFG" || exit 1

# ---- lists and gets for every kind
for kind in clusters storage policies routines secret-agents; do
  req GET /v1/config/$kind
  expect_status 200 "list $kind"
  check "list $kind is an object" test "$(json_get type)" = "object"
done
req GET /v1/config
expect_status 200 "GET config"
check "config has routines" test "$(json_get '."backup-routines".r1.storage')" = "local"

# ---- redaction
req GET /v1/config/clusters/c1
expect_status 200 "GET cluster"
check "password redacted" test "$(json_get .credentials.password)" = "[secret]"
expect_body_lacks "hunter2" "cluster GET leaks no secret"
req GET /v1/config
expect_body_lacks "hunter2" "config GET leaks no secret"

# ---- create / get / update / delete for each kind
declare -A bodies=(
  [clusters]='{"seed-nodes":[{"host-name":"127.0.0.1","port":3100}],"credentials":{"user":"u","password":"clusterpw-zz"}}'
  [storage]='{"local-storage":{"path":"/tmp/abs-e2e-other"}}'
  [policies]='{"parallel":3,"retention":{"full":2,"incremental":1}}'
  [secret-agents]='{"connection-type":"tcp","address":"127.0.0.1","port":3005}'
  [routines]='{"interval-cron":"@hourly","source-cluster":"c1","storage":"local","namespaces":["test"]}'
)
for kind in clusters storage policies secret-agents routines; do
  req POST /v1/config/$kind/new1 "${bodies[$kind]}"
  expect_status 201 "create $kind"
  req POST /v1/config/$kind/new1 "${bodies[$kind]}"
  expect_status 409 "duplicate $kind"
  req GET /v1/config/$kind/new1
  expect_status 200 "get created $kind"
  req GET /v1/config/$kind/missing
  expect_status 404 "get missing $kind"
  check "404 is plain text" grep -q "text/plain" <<<"$CTYPE"
  req PUT /v1/config/$kind/missing "${bodies[$kind]}"
  expect_status 404 "update missing $kind"
  req DELETE /v1/config/$kind/missing
  expect_status 404 "delete missing $kind"
done
req GET /v1/config/clusters/new1
expect_body_lacks "clusterpw-zz" "new cluster secret redacted"

req PUT /v1/config/policies/new1 '{"parallel":5}'
expect_status 200 "update policy"
req GET /v1/config/policies/new1
check "policy updated" test "$(json_get .parallel)" = "5"

# ---- validation messages name the field
req POST /v1/config/policies/bad '{"parallel":0}'
expect_status 400 "invalid policy"
expect_body_contains "backup-policies.bad.parallel: must be >= 1" "policy error names field"
check "400 is plain text" grep -q "text/plain" <<<"$CTYPE"
req POST /v1/config/routines/bad '{"interval-cron":"@daily","source-cluster":"nope","storage":"local","namespaces":[]}'
expect_status 400 "dangling reference"
expect_body_contains "source-cluster" "reference error names field"
req POST /v1/config/policies/bad '{"parallel":2,"colour":"red"}'
expect_status 400 "unknown field"
expect_body_contains "backup-policies.bad.colour: unknown field" "unknown field named"
req POST /v1/config/policies/bad '{"parallel":'
expect_status 400 "malformed JSON"
expect_body_contains "invalid JSON" "malformed JSON message"
req POST /v1/config/policies/bad '{"parallel":2}' text/plain
expect_status 415 "wrong content type"
req POST /v1/config/policies/bad '[1,2]'
expect_status 400 "non-object body"
big=$(head -c 2000000 /dev/zero | tr '\0' 'a')
req POST /v1/config/policies/bad "{\"x\":\"$big\"}"
expect_status 413 "oversized body"
req GET /v1/config/policies/bad
expect_status 404 "nothing created by failed requests"

# ---- in use
req DELETE /v1/config/clusters/c1
expect_status 400 "delete cluster in use"
expect_body_contains "r1" "in-use names the routine"
req DELETE /v1/config/routines/new1
expect_status 204 "delete routine"
for kind in clusters storage policies secret-agents; do
  req DELETE /v1/config/$kind/new1
  expect_status 204 "delete $kind"
done

# ---- "[secret]" keeps the stored value
req GET /v1/config/clusters/c1
cluster=$(printf '%s' "$BODY" | jq -c '.label = "prod"')
req PUT /v1/config/clusters/c1 "$cluster"
expect_status 200 "update cluster with [secret]"
check "file keeps real password" grep -q "hunter2-cluster-secret" "$CFG"
check "file mode kept" test "$(stat -c %a "$CFG")" = "640"
check "header comment kept" grep -q "^# yaml-language-server" "$CFG"

# ---- routine enable / disable, both forms
req PUT /v1/config/routines/r1/disable
expect_status 204 "ABS disable"
req GET /v1/config/routines/r1
check "disabled set" test "$(json_get .disabled)" = "true"
req PUT /v1/config/routines/r1/enable
expect_status 204 "ABS enable"
req GET /v1/config/routines/r1
check "disabled cleared" test "$(json_get '.disabled // false')" = "false"
req POST /v1/routines/r1/disable/
expect_status 204 "seed disable with slash"
req POST /v1/routines/r1/enable
expect_status 204 "seed enable"
req PUT /v1/config/routines/zz/disable
expect_status 404 "disable unknown routine"

# ---- PUT /v1/config
req GET /v1/config
whole=$(printf '%s' "$BODY" | jq -c '."backup-policies".p2 = {"parallel": 7}')
req PUT /v1/config "$whole"
expect_status 200 "PUT whole config"
req GET /v1/config/policies/p2
check "whole config applied" test "$(json_get .parallel)" = "7"
changed=$(printf '%s' "$whole" | jq -c '.service.http.port = 1')
req PUT /v1/config "$changed"
expect_status 400 "static service fields"

# ---- persistence across restart
stop_service
start_service "$CFG" || exit 1
req GET /v1/config/policies/p2
expect_status 200 "persisted across restart"
check "persisted value" test "$(json_get .parallel)" = "7"

# ---- apply and SIGHUP re-read the file
sed -i 's/parallel: 7/parallel: 9/' "$CFG"
req POST /v1/config/apply
expect_status 200 "apply"
req GET /v1/config/policies/p2
check "apply re-read" test "$(json_get .parallel)" = "9"
sed -i 's/parallel: 9/parallel: 11/' "$CFG"
kill -HUP "$PID"
sleep 0.5
req GET /v1/config/policies/p2
check "SIGHUP re-read" test "$(json_get .parallel)" = "11"
cp "$CFG" "$WORK/good.yml"
sed -i 's/parallel: 11/parallel: -1/' "$CFG"
req POST /v1/config/apply
expect_status 400 "apply invalid file"
expect_body_contains "parallel" "apply error names field"
req GET /v1/config/policies/p2
check "invalid apply keeps old config" test "$(json_get .parallel)" = "11"
cp "$WORK/good.yml" "$CFG"

check "no secret in log" bash -c "! grep -q -e hunter2 -e clusterpw-zz '$WORK/service.log'"
finish
