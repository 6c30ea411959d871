#!/usr/bin/env bash
# Installs the S3 emulator (npm `s3rver`, pinned) used by the s3-storage tests into the tools
# cache outside the repository, once; re-runs are no-ops. Prints the directory it lives in
# (nothing else on stdout). tests/services/s3rver.sh starts it.
set -euo pipefail

S3RVER_VERSION=3.7.1

cache_root=${ABS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerospike-backup-service}
tool_dir=$cache_root/s3rver-$S3RVER_VERSION
bin=$tool_dir/node_modules/.bin/s3rver

die() { echo "deps s3rver: $*" >&2; exit 1; }

if [ ! -f "$tool_dir/.installed" ] || [ ! -x "$bin" ]; then
  command -v npm >/dev/null || die "npm is not installed (run scripts/deps.sh)"
  echo "deps s3rver: installing s3rver@$S3RVER_VERSION into $tool_dir" >&2
  rm -rf "$tool_dir"
  mkdir -p "$tool_dir"
  echo '{"private": true}' >"$tool_dir/package.json"
  npm install --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
    --prefix "$tool_dir" "s3rver@$S3RVER_VERSION" >&2 ||
    { rm -rf "$tool_dir"; die "npm install s3rver@$S3RVER_VERSION failed"; }
  [ -x "$bin" ] || { rm -rf "$tool_dir"; die "s3rver binary missing after install"; }
  touch "$tool_dir/.installed"
fi
echo "$tool_dir"
