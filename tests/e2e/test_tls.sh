#!/usr/bin/env bash
# The service backs up and restores through TLS: two 2-node emulators with TLS listeners that
# require client certificates (mutual TLS) and security (users), a cluster configuration with
# ca-file, cert-file, an encrypted key-file whose key-file-password comes from the environment
# (env:), tls-name and credentials. The clear ports stay unused (the emulators record the TLS
# server name of each handshake), secrets never reach the log, and a wrong key password is a
# clear job error. Certificates are made for the run with the openssl CLI.
source "$(dirname "$0")/lib.sh"
GEN_CERTS=$(cd "$(dirname "$0")/../emulator" && pwd)/gen-test-certs.sh
command -v openssl >/dev/null || { echo "SKIP: no openssl CLI"; exit 0; }

KEY_PW=kpw-e2e-$RANDOM-secret
CLUSTER_PW=cluster-e2e-$RANDOM-secret
PKI=$WORK/pki
bash "$GEN_CERTS" "$PKI" "$KEY_PW" backup-user || { echo "FAIL: certificates"; exit 1; }

start_tls_emulator() { # start_tls_emulator NAME ARGS...: sets <NAME>_PORT (clear) and <NAME>_TLS
  local name=$1; shift
  start_emulator "$name" --nodes 2 --tls-port 0 \
    --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" --tls-ca "$PKI/ca.pem" \
    --tls-name node1.test,node2.test --user "admin:$CLUSTER_PW" "$@"
  # the port file: the clear ports of the 2 nodes, then their TLS ports
  printf -v "${name}_TLS" '%s' "$(sed -n 3p "$WORK/$name.port")"
}

start_tls_emulator src --namespace test --generate test:3000:demo:150
start_tls_emulator dst --namespace test

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

expect_startup_full r1 3000 # through mutual TLS
key=$KEY
check "the source saw TLS handshakes with the configured name" \
  grep -q 'last_sni=node[12]\.test' <<<"$(emu_info "$src_PORT" emulator-stats)"
check "the source saw logins" grep -Eq 'logins=[1-9]' <<<"$(emu_info "$src_PORT" emulator-stats)"

restore_and_wait "restore through mutual TLS" /v1/restore/full "{\"backup-data-path\": \"$key\", \"source-name\": \"local\", \"destination-name\": \"target\"}"
check "restore succeeded ($BODY)" test "$(json_get .status)" = "success"
check "all records restored" test "$(json_get '."inserted-records"')" = "3000"
check "the target saw TLS handshakes" grep -q 'last_sni=node[12]\.test' <<<"$(emu_info "$dst_PORT" emulator-stats)"
emu_info "$dst_PORT" "emulator-dump:namespace=test;file=$WORK/dst.asb" >/dev/null
check "the target holds the records" test "$(grep -c '^+ d' "$WORK/dst.asb")" = 3000

# a key password variable that is not set: the routine's backup fails with a clear reason
req POST /v1/backups/schedule/bad
wait_log "ABS_E2E_NO_SUCH_VAR"
check "unset key-file-password variable named in the log" grep -q "ABS_E2E_NO_SUCH_VAR is not set" "$WORK/service.log"
check "no key password in the log" bash -c "! grep -qF '$KEY_PW' '$WORK/service.log'"
check "no cluster password in the log" bash -c "! grep -qF '$CLUSTER_PW' '$WORK/service.log'"
req GET /v1/config/clusters/source
check "no cluster password in the API" bash -c "! grep -qF '$CLUSTER_PW' <<<'$BODY'"
finish
