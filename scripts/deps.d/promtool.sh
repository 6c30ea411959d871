#!/usr/bin/env bash
# Provides `promtool` (metrics lint of GET /metrics, scripts/test.d/40-promtool.sh) without
# installing or starting a Prometheus server: Debian 12's `prometheus` package is downloaded
# with apt-get and only its promtool binary is extracted (dpkg-deb -x) into the tools cache,
# ${ABS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerospike-backup-service}/promtool/.
# Idempotent: a finished extraction is reused. Prints the promtool path on stdout.
set -euo pipefail

cache_root=${ABS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerospike-backup-service}
tool_dir=$cache_root/promtool
bin=$tool_dir/promtool

die() { echo "deps promtool: $*" >&2; exit 1; }

if [ ! -x "$bin" ] || ! "$bin" --version >/dev/null 2>&1; then
  command -v apt-get >/dev/null || die "apt-get is not available (Debian 12 expected)"
  work=$(mktemp -d)
  chmod 755 "$work" # apt downloads as the _apt user
  trap 'rm -rf "$work"' EXIT
  echo "deps promtool: extracting promtool from Debian's prometheus package into $tool_dir" >&2
  if ! (cd "$work" && apt-get download prometheus >&2); then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq >&2
    (cd "$work" && apt-get download prometheus >&2) || die "apt-get download prometheus failed"
  fi
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root" || die "dpkg-deb -x failed"
  [ -x "$work/root/usr/bin/promtool" ] || die "no usr/bin/promtool in the prometheus package"
  mkdir -p "$tool_dir"
  install -m 0755 "$work/root/usr/bin/promtool" "$bin.tmp"
  mv "$bin.tmp" "$bin"
  "$bin" --version >/dev/null 2>&1 || die "the extracted promtool does not run"
fi
echo "$bin"
