#!/usr/bin/env bash
# azurite.sh - runs a command against a private Azurite blob service (the Azure Blob Storage
# emulator, npm `azurite` pinned by scripts/deps.d/azurite.sh): starts it on 127.0.0.1 on a
# free port with in-memory persistence and telemetry off, creates the test container with the
# well-known development account, runs "$@" with
#   AZURITE_ENDPOINT  (http://127.0.0.1:PORT/devstoreaccount1)
#   AZURITE_ACCOUNT, AZURITE_KEY (the public dev account), AZURITE_CONTAINER
# exported, stops the emulator, and exits with the command's status.
#
# With --oauth first, Azurite serves HTTPS (a throw-away self-signed certificate for
# 127.0.0.1, exported as AZURITE_CA) and accepts Azure AD bearer tokens (--oauth basic: JWT
# claims checked, signature not); AZURITE_OAUTH=1 is exported too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
oauth=0
if [ "${1:-}" = "--oauth" ]; then oauth=1; shift; fi
[ $# -ge 1 ] || { echo "usage: azurite.sh [--oauth] COMMAND [ARGS...]" >&2; exit 2; }

tool_dir=$(bash "$repo/scripts/deps.d/azurite.sh") || { echo "azurite.sh: azurite unavailable" >&2; exit 1; }
azurite=$tool_dir/node_modules/.bin/azurite-blob

SERVICE_NAME=azurite.sh
source "$here/lib.sh"

scheme=http
tls_args=()
if [ "$oauth" = 1 ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
    -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 ||
    { echo "azurite.sh: cannot make a test certificate" >&2; exit 1; }
  scheme=https
  tls_args=(--cert "$work/cert.pem" --key "$work/key.pem" --oauth basic)
  export AZURITE_CA=$work/cert.pem AZURITE_OAUTH=1
fi

launch() { # launch PORT
  cd "$work" && exec "$azurite" --blobHost 127.0.0.1 --blobPort "$1" --inMemoryPersistence --disableTelemetry \
    --skipApiVersionCheck --silent "${tls_args[@]}"
}
start_on_free_port azurite "$work/azurite.log" 150 tcp_listening

export AZURITE_ACCOUNT=devstoreaccount1
export AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export AZURITE_ENDPOINT=$scheme://127.0.0.1:$port/$AZURITE_ACCOUNT
export AZURITE_CONTAINER=abs-test
python3 "$here/azure_container.py" create "$AZURITE_ENDPOINT" "$AZURITE_CONTAINER"

run_command "$work/azurite.log" "" "$@"
