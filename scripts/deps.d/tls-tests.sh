#!/usr/bin/env bash
# The TLS tests (tests/unit/test_as_tls.c, tests/e2e/test_tls.sh) make their certificates with
# the openssl command line tool (tests/emulator/gen-test-certs.sh): install Debian's `openssl`
# package when the command is missing. Idempotent.
set -euo pipefail
command -v openssl >/dev/null 2>&1 && exit 0
command -v apt-get >/dev/null || { echo "deps tls-tests: apt-get is not available" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl
