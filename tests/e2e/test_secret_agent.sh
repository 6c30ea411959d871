#!/usr/bin/env bash
# Secret agents end to end: the cluster password and the encryption key (key-secret) of a routine
# come from the test Secret Agent (tests/secret_agent/) over TCP; the backup is restored into a
# second cluster through a request agent over a Unix socket and through a configured TLS agent.
# Faults: unknown key, agent down. No secret value may appear in the service log or in any API
# reply.
source "$(dirname "$0")/lib.sh"
AGENT=$(dirname "$BIN")/tests/secret_agent/secret-agent
DATA=$(cd "$(dirname "$0")/../data" && pwd)
KEY_PEM=$DATA/asb/e-backup-aes256/key.pem
CLUSTER_PW='Cl-pw-9f8e7d6c5b4a'
# a line from the middle of the key: it must never show up anywhere
KEY_LINE=$(sed -n 5p "$KEY_PEM")

# the agent's table: the key as PEM text, the cluster password
jq -n --rawfile pem "$KEY_PEM" --arg pw "$CLUSTER_PW" \
  '{keys: {aes: $pem}, vault: {cluster: $pw, wrong: "not-the-password"}}' >"$WORK/secrets.json"

start_agent() { # start_agent NAME ARGS...: sets <NAME>_PID, and <NAME>_PORT for TCP agents
  local name=$1; shift
  "$AGENT" --secrets "$WORK/secrets.json" "$@" >"$WORK/$name.log" 2>&1 &
  BG_PIDS+=($!) # killed at exit by lib.sh's cleanup
  printf -v "${name}_PID" '%s' "$!"
  for _ in $(seq 1 100); do grep -q listening "$WORK/$name.log" 2>/dev/null && break; sleep 0.1; done
  [ -s "$WORK/$name.port" ] && printf -v "${name}_PORT" '%s' "$(head -1 "$WORK/$name.port")"
  return 0
}

start_emulator src --namespace test --generate test:500:demo:64 --user "admin:$CLUSTER_PW"
start_emulator dst --namespace test --user "admin:$CLUSTER_PW"
start_agent tcpagent --port 0 --port-file "$WORK/tcpagent.port"
start_agent tlsagent --port 0 --port-file "$WORK/tlsagent.port" \
  --tls-cert "$DATA/secret/agent.pem" --tls-key "$DATA/secret/agent.key"
start_agent unixagent --unix "$WORK/agent.sock"

PORT=$(free_port)
cat >"$WORK/c.yml" <<YAML
service:
  http: {address: 127.0.0.1, port: $PORT}
  logger: {level: DEBUG}
secret-agents:
  sa: {connection-type: tcp, address: 127.0.0.1, port: $tcpagent_PORT, timeout: 2000}
  sa-tls: {connection-type: tcp, address: 127.0.0.1, port: $tlsagent_PORT, tls-ca-file: $DATA/secret/ca.pem}
aerospike-clusters:
  source:
    seed-nodes: [{host-name: 127.0.0.1, port: $src_PORT}]
    credentials: {user: admin, password: 'secrets:vault:cluster', secret-agent-name: sa}
  wrongpw:
    seed-nodes: [{host-name: 127.0.0.1, port: $src_PORT}]
    credentials: {user: admin, password: 'secrets:vault:wrong', secret-agent-name: sa}
  target:
    seed-nodes: [{host-name: 127.0.0.1, port: $dst_PORT}]
    credentials:
      user: admin
      password: 'secrets:vault:cluster'
      secret-agent: {connection-type: unix, address: $WORK/agent.sock}
storage:
  local: {local-storage: {path: $WORK/backups}}
backup-policies:
  enc: {parallel: 2, encryption: {mode: AES256, key-secret: 'secrets:keys:aes'}}
backup-routines:
  r1: {source-cluster: source, storage: local, backup-policy: enc, interval-cron: '@yearly',
       namespaces: [test], secret-agent: sa}
  r2: {source-cluster: wrongpw, storage: local, interval-cron: '@yearly', namespaces: [test]}
YAML
start_service "$WORK/c.yml" || exit 1

# ---- the start-up full backup: password and key from the agent
wait_fulls r1 1
check "encrypted full backup done ($(tail -3 "$WORK/service.log"))" test "$(json_get 'length')" = "1"
check "listed as AES256" test "$(json_get '.[0].encryption')" = "AES256"
key=$(json_get '.[0].key')
check "the agent was asked for the cluster password" grep -q "resource=vault key=cluster found" "$WORK/tcpagent.log"
check "the agent was asked for the key" grep -q "resource=keys key=aes found" "$WORK/tcpagent.log"
first=$(find "$WORK/backups/$key" -name '*.asb' | head -1)
check "data file written" test -n "$first"
check "data file is encrypted" bash -c "! head -c 7 '$first' | grep -q Version"
# the password really is the agent's: another value from the agent is refused by the cluster
wait_log "resource=vault key=wrong found" "$WORK/tcpagent.log" && wait_log "routine r2"
req GET /v1/backups/full/r2
check "a wrong password from the agent: no backup" test "$(json_get 'length')" = "0"
check "a wrong password from the agent: login refused" grep -Eqi "routine r2.*(auth|password|login|credential)" "$WORK/service.log"

REPLIES=""
record() { REPLIES+="$BODY"$'\n'; }

# ---- restore with the request's agent (inline, Unix socket) for the key
restore_and_wait "restore with an inline agent" /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"local\", \"destination-name\": \"target\",
  \"secret-agent\": {\"connection-type\": \"unix\", \"address\": \"$WORK/agent.sock\"},
  \"policy\": {\"encryption\": {\"mode\": \"AES256\", \"key-secret\": \"secrets:keys:aes\"}}}"
record
check "restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "all records inserted" test "$(json_get '."inserted-records"')" = "500"
check "the unix agent served the key" grep -q "resource=keys key=aes found" "$WORK/unixagent.log"

# ---- timestamp restore with a configured TLS agent (secret-agent-name)
now=$(($(date +%s) * 1000 + 1000))
restore_and_wait "timestamp restore with a TLS agent" /v1/restore/timestamp "{\"routine\": \"r1\", \"time\": $now, \"destination-name\": \"target\",
  \"secret-agent-name\": \"sa-tls\",
  \"policy\": {\"encryption\": {\"mode\": \"AES256\", \"key-secret\": \"secrets:keys:aes\"}}}"
record
check "timestamp restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "records already there" test "$(json_get '."fresher-records"')" = "500"
check "the TLS agent served the key" grep -q "resource=keys key=aes found" "$WORK/tlsagent.log"

# ---- faults: an unknown key, no agent, an agent name that is not configured
restore_and_wait "restore with an unknown key" /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"local\", \"destination-name\": \"target\",
  \"secret-agent-name\": \"sa\", \"policy\": {\"encryption\": {\"mode\": \"AES256\", \"key-secret\": \"secrets:keys:nope\"}}}"
record
check "unknown key fails" test "$(json_get .status)" = "failure"
expect_body_contains "resource keys key nope" "error names the key"
expect_body_contains "secret not found" "error carries the agent's answer"
expect_body_contains "127.0.0.1:$tcpagent_PORT" "error names the agent"

restore_and_wait "restore without an agent" /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"local\", \"destination-name\": \"target\",
  \"policy\": {\"encryption\": {\"mode\": \"AES256\", \"key-secret\": \"secrets:keys:aes\"}}}"
record
check "no agent fails" test "$(json_get .status)" = "failure"
expect_body_contains "no secret agent" "error says there is no agent"

req POST /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"local\", \"destination-name\": \"target\",
  \"secret-agent-name\": \"ghost\"}"
record
expect_status 400 "unknown secret-agent-name rejected"
expect_body_contains "secret agent ghost is not defined" "names the missing agent"
req POST /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"local\", \"destination-name\": \"target\",
  \"secret-agent-name\": \"sa\", \"secret-agent\": {\"connection-type\": \"unix\", \"address\": \"/x\"}}"
record
expect_status 400 "secret-agent and secret-agent-name together rejected"

# ---- the agent goes away: the next backup fails with a clear error
kill "$tcpagent_PID" 2>/dev/null
wait "$tcpagent_PID" 2>/dev/null
req POST /v1/backups/full/r1
expect_status 202 "on-demand backup accepted"
wait_log "127.0.0.1:$tcpagent_PORT: connect"
check "agent down: the error names the field, the agent and the key" \
  grep -q "cluster source credentials.password: resource vault key cluster: secret agent 127.0.0.1:$tcpagent_PORT: connect" "$WORK/service.log"

# ---- the configuration API shows references, never values
req GET /v1/config
record
expect_body_contains "secrets:vault:cluster" "references shown"

# ---- no secret anywhere
printf '%s' "$REPLIES" >"$WORK/replies.txt"
check "cluster password not in the log" bash -c "! grep -qF -- '$CLUSTER_PW' '$WORK/service.log'"
check "key not in the log" bash -c "! grep -qF -- '$KEY_LINE' '$WORK/service.log'"
check "cluster password not in replies" bash -c "! grep -qF -- '$CLUSTER_PW' '$WORK/replies.txt'"
check "key not in replies" bash -c "! grep -qF -- '$KEY_LINE' '$WORK/replies.txt'"
check "no PEM header in the log" bash -c "! grep -q 'PRIVATE KEY' '$WORK/service.log'"

finish
