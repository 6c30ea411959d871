#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the CI need. Idempotent.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git curl ca-certificates
      libmicrohttpd-dev libjansson-dev libyaml-dev libcurl4-openssl-dev libssl-dev
      libzstd-dev zlib1g-dev libcrypt-dev libcmocka-dev
      jq procps python3 unzip libxml2-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js + npm (OpenAPI lint, s3rver, azurite): keep a preinstalled one (it may bundle npm).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Extra installs owned by features (npm test servers, packaging tools, ...): one file each.
for extra in "$(dirname "$0")"/deps.d/*.sh; do
  [ -e "$extra" ] || continue
  bash "$extra"
done
