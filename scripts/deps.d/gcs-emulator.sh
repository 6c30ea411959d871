#!/usr/bin/env bash
# Installs the Cloud Storage emulator used by the GCS tests: npm firebase-tools (pinned; the
# launcher tests/gcs-emulator/gcs-emu.js relies on its internals) into the tools cache outside the
# repository, once. Prints the install directory (the one holding node_modules/) on stdout.
# --omit=optional: skips compiling re2, which the storage emulator does not need.
set -euo pipefail
source "$(dirname "$0")/../lib/npm-tool.sh"
command -v node >/dev/null || { echo "deps gcs-emulator: node is not installed" >&2; exit 1; }
npm_tool_install gcs-emulator firebase-tools 15.34.2 node_modules/firebase-tools/package.json --omit=optional
echo "$NPM_TOOL_DIR"
