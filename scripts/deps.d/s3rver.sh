#!/usr/bin/env bash
# Installs the S3 emulator (npm `s3rver`, pinned) used by the s3-storage tests into the tools
# cache outside the repository, once; re-runs are no-ops. Prints the directory it lives in
# (nothing else on stdout). tests/services/s3rver.sh starts it.
set -euo pipefail
source "$(dirname "$0")/../lib/npm-tool.sh"
npm_tool_install s3rver s3rver 3.7.1 node_modules/.bin/s3rver
echo "$NPM_TOOL_DIR"
