#!/usr/bin/env bash
# Installs the Cloud Storage emulator used by the GCS tests: npm firebase-tools (pinned; the
# launcher tests/gcs-emulator/gcs-emu.js relies on its internals) into the tools cache outside the
# repository, ${ABS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerospike-backup-service}.
# Idempotent: a finished install leaves a .installed marker and is reused without network.
# Prints the install directory (the one holding node_modules/) on stdout.
set -euo pipefail

FIREBASE_TOOLS_VERSION=15.34.2

cache_root=${ABS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerospike-backup-service}
tool_dir=$cache_root/firebase-tools-$FIREBASE_TOOLS_VERSION

die() { echo "deps gcs-emulator: $*" >&2; exit 1; }

if [ ! -f "$tool_dir/.installed" ] ||
   [ ! -f "$tool_dir/node_modules/firebase-tools/package.json" ]; then
  command -v node >/dev/null || die "node is not installed"
  command -v npm >/dev/null || die "npm is not installed"
  echo "deps gcs-emulator: installing firebase-tools@$FIREBASE_TOOLS_VERSION into $tool_dir" >&2
  rm -rf "$tool_dir"
  mkdir -p "$tool_dir"
  echo '{"private": true}' >"$tool_dir/package.json"
  # --omit=optional: skips compiling re2, which the storage emulator does not need.
  NO_UPDATE_NOTIFIER=1 npm install --no-save --no-audit --no-fund --no-package-lock \
    --omit=optional --loglevel=error --prefix "$tool_dir" \
    "firebase-tools@$FIREBASE_TOOLS_VERSION" >&2 ||
    { rm -rf "$tool_dir"; die "npm install firebase-tools@$FIREBASE_TOOLS_VERSION failed"; }
  [ -f "$tool_dir/node_modules/firebase-tools/package.json" ] ||
    { rm -rf "$tool_dir"; die "firebase-tools missing after install"; }
  touch "$tool_dir/.installed"
fi
echo "$tool_dir"
