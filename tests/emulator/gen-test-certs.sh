#!/usr/bin/env bash
# gen-test-certs.sh DIR [KEY_PASSWORD] [CLIENT_CN] - a throw-away PKI for TLS tests against the
# emulator, made with the openssl CLI (no key is ever committed):
#   ca.pem ca.key              test CA
#   server.pem server.key      CN node1.test, SAN node1.test node2.test *.cluster.test 127.0.0.1
#   client.pem                 CN CLIENT_CN (default backup-user), signed by the CA
#   client.key                 its key, encrypted (AES-256) with KEY_PASSWORD (default kpw)
#   client-plain.key           the same key unencrypted
#   other-ca.pem               a CA nobody signed with (unknown-CA tests)
#   capath/                    ca.pem in a hashed directory (openssl rehash) for ca-path
set -euo pipefail
dir=${1:?usage: gen-test-certs.sh DIR [KEY_PASSWORD] [CLIENT_CN]}
pw=${2:-kpw}
cn=${3:-backup-user}
mkdir -p "$dir/capath"
cd "$dir"
q() { "$@" >/dev/null 2>&1; }

q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=emulator test CA" -keyout ca.key -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=other CA" -keyout other-ca.key -out other-ca.pem \
  -addext "basicConstraints=critical,CA:TRUE"

cat >ext-server.cnf <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:node1.test,DNS:node2.test,DNS:*.cluster.test,IP:127.0.0.1
EOF
cat >ext-client.cnf <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF

q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=node1.test" \
  -keyout server.key -out server.csr
q openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile ext-server.cnf -out server.pem

q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
  -keyout client-plain.key -out client.csr
q openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile ext-client.cnf -out client.pem
q openssl pkey -in client-plain.key -aes256 -passout "pass:$pw" -out client.key

cp ca.pem capath/
q openssl rehash capath || q c_rehash capath
rm -f ./*.csr ./*.cnf ./*.srl
chmod 600 ./*.key
