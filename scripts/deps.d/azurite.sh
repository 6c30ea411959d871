#!/usr/bin/env bash
# Installs the Azure Blob Storage emulator (npm `azurite`, pinned) used by the azure-storage
# tests into the tools cache outside the repository, once; re-runs are no-ops. Prints the
# directory of the `azurite-blob` binary's package on success (nothing else on stdout).
set -euo pipefail
source "$(dirname "$0")/../lib/npm-tool.sh"
npm_tool_install azurite azurite 3.37.0 node_modules/.bin/azurite-blob
echo "$NPM_TOOL_DIR"
