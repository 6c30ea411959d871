#!/usr/bin/env bash
# Installs the Azure Blob Storage emulator (npm `azurite`, pinned) used by the azure-storage
# tests into the tools cache outside the repository, once; re-runs are no-ops. Prints the
# directory of the `azurite-blob` binary's package on success (nothing else on stdout).
set -euo pipefail

AZURITE_VERSION=3.37.0

cache_root=${ABS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerospike-backup-service}
tool_dir=$cache_root/azurite-$AZURITE_VERSION
bin=$tool_dir/node_modules/.bin/azurite-blob

die() { echo "deps azurite: $*" >&2; exit 1; }

if [ ! -f "$tool_dir/.installed" ] || [ ! -x "$bin" ]; then
  command -v npm >/dev/null || die "npm is not installed (run scripts/deps.sh)"
  echo "deps azurite: installing azurite@$AZURITE_VERSION into $tool_dir" >&2
  rm -rf "$tool_dir"
  mkdir -p "$tool_dir"
  echo '{"private": true}' >"$tool_dir/package.json"
  npm install --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
    --prefix "$tool_dir" "azurite@$AZURITE_VERSION" >&2 ||
    { rm -rf "$tool_dir"; die "npm install azurite@$AZURITE_VERSION failed"; }
  [ -x "$bin" ] || { rm -rf "$tool_dir"; die "azurite-blob binary missing after install"; }
  touch "$tool_dir/.installed"
fi
echo "$tool_dir"
