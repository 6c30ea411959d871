#!/usr/bin/env bash
# The service backs up and restores through TLS: two 2-node emulators with TLS listeners that
# require client certificates (mutual TLS) and security (users), a cluster configuration with
# ca-file, cert-file, an encrypted key-file whose key-file-password comes from the environment
# (env:), tls-name and credentials. The clear ports stay unused (the emulators record the TLS
# server name of each handshake), secrets never reach the log, and a wrong key password is a
# clear job error. Certificates are made for the run with the openssl CLI.
source "$(dirname "$0")/lib.sh"
EMULATOR=$(dirname "$BIN")/tests/emulator/aerospike-emulator
GEN_CERTS=$(cd "$(dirname "$0")/../emulator" && pwd)/gen-test-certs.sh
command -v openssl >/dev/null || { echo "SKIP: no openssl CLI"; exit 0; }

KEY_PW=kpw-e2e-$RANDOM-secret
CLUSTER_PW=cluster-e2e-$RANDOM-secret
PKI=$WORK/pki
bash "$GEN_CERTS" "$PKI" "$KEY_PW" backup-user || { echo "FAIL: certificates"; exit 1; }

start_emulator() { # start_emulator NAME ARGS...: sets <NAME>_PORT (clear) and <NAME>_TLS
  local name=$1; shift
  "$EMULATOR" --port 0 --nodes 2 --port-file "$WORK/$name.port" --tls-port 0 \
    --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" --tls-ca "$PKI/ca.pem" \
    --tls-name node1.test,node2.test --user "admin:$CLUSTER_PW" "$@" >"$WORK/$name.log" 2>&1 &
  EMUS+=($!)
  for _ in $(seq 1 100); do
    [ -s "$WORK/$name.port" ] && [ "$(wc -l <"$WORK/$name.port")" = 4 ] && break
    sleep 0.1
  done
  printf -v "${name}_PORT" '%s' "$(sed -n 1p "$WORK/$name.port")"
  printf -v "${name}_TLS" '%s' "$(sed -n 3p "$WORK/$name.port")"
}

# emu_info PORT CMD: one info command on the clear port (emulator-* knobs answer without login)
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

EMUS=()
trap 'kill "${EMUS[@]}" 2>/dev/null; cleanup' EXIT
start_emulator src --namespace test --generate test:3000:demo:150
start_emulator dst --namespace test

export ABS_E2E_KEY_PW=$KEY_PW
PORT=$(free_port)
cluster_yaml() { # cluster_yaml TLS_PORT KEY_PASSWORD_SPEC
  cat <<YAML
    seed-nodes: [{host-name: 127.0.0.1, port: $1, tls-name: node1.test}]
    credentials: {user: admin, password: $CLUSTER_PW}
    tls:
      ca-file: $PKI/ca.pem
      cert-file: $PKI/client.pem
      key-file: $PKI/client.key
      key-file-password: "$2"
      protocols: TLSv1.2 TLSv1.3
YAML
}
cat >"$WORK/c.yml" <<YAML
service:
  http: {address: 127.0.0.1, port: $PORT}
  logger: {level: DEBUG}
aerospike-clusters:
  source:
$(cluster_yaml "$src_TLS" "env:ABS_E2E_KEY_PW")
  target:
$(cluster_yaml "$dst_TLS" "env:ABS_E2E_KEY_PW")
  bad-key:
$(cluster_yaml "$src_TLS" "env:ABS_E2E_NO_SUCH_VAR")
storage:
  local: {local-storage: {path: $WORK/backups}}
backup-policies:
  p: {parallel: 2}
backup-routines:
  r1: {source-cluster: source, storage: local, backup-policy: p, interval-cron: '@yearly', namespaces: [test]}
  bad: {source-cluster: bad-key, storage: local, backup-policy: p, interval-cron: '@yearly', namespaces: [test]}
YAML
start_service "$WORK/c.yml" || exit 1

for _ in $(seq 1 150); do
  req GET /v1/backups/full/r1
  [ "$(json_get 'length')" = "1" ] && break
  sleep 0.1
done
check "backup through mutual TLS finished" test "$(json_get 'length')" = "1"
check "all records backed up" test "$(json_get '.[0]."record-count"')" = "3000"
key=$(json_get '.[0].key')
check "the source saw TLS handshakes with the configured name" \
  grep -q 'last_sni=node[12]\.test' <<<"$(emu_info "$src_PORT" emulator-stats)"
check "the source saw logins" grep -Eq 'logins=[1-9]' <<<"$(emu_info "$src_PORT" emulator-stats)"

wait_restore() { # wait_restore ID: until it leaves "running"
  for _ in $(seq 1 300); do
    req GET "/v1/restore/status/$1"
    [ "$(json_get .status)" != "running" ] && return 0
    sleep 0.1
  done
  return 1
}
req POST /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"local\", \"destination-name\": \"target\"}"
expect_status 202 "restore/full accepted"
id=$BODY
check "restore through mutual TLS finished" wait_restore "$id"
check "restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "all records restored" test "$(json_get '."inserted-records"')" = "3000"
check "the target saw TLS handshakes" grep -q 'last_sni=node[12]\.test' <<<"$(emu_info "$dst_PORT" emulator-stats)"
emu_info "$dst_PORT" "emulator-dump:namespace=test;file=$WORK/dst.asb" >/dev/null
check "the target holds the records" test "$(grep -c '^+ d' "$WORK/dst.asb")" = 3000

# a key password variable that is not set: the routine's backup fails with a clear reason
req POST /v1/backups/schedule/bad
for _ in $(seq 1 100); do
  grep -q "ABS_E2E_NO_SUCH_VAR" "$WORK/service.log" && break
  sleep 0.1
done
check "unset key-file-password variable named in the log" grep -q "ABS_E2E_NO_SUCH_VAR is not set" "$WORK/service.log"
check "no key password in the log" bash -c "! grep -qF '$KEY_PW' '$WORK/service.log'"
check "no cluster password in the log" bash -c "! grep -qF '$CLUSTER_PW' '$WORK/service.log'"
req GET /v1/config/clusters/source
check "no cluster password in the API" bash -c "! grep -qF '$CLUSTER_PW' <<<'$BODY'"
finish
