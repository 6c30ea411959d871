#!/usr/bin/env bash
# release.sh NEXT_VERSION - `make release`: moves the project to NEXT_VERSION (x.y.z, an
# optional leading "v" is dropped): the VERSION file, which feeds -v, GET /version, the packages
# and the image, and the version of the OpenAPI description (docs/openapi.yaml info.version).
# Then, as the seed's README says: git add --all; git commit -m "Release: $(cat VERSION)";
# git tag "$(cat VERSION)". ABS_RELEASE_ROOT overrides the tree to edit (tests).
set -euo pipefail
root=${ABS_RELEASE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
next=${1:-}
next=${next#v}
die() { echo "release: $*" >&2; exit 1; }

[[ "$next" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "usage: make release NEXT_VERSION=x.y.z (got '${1:-}')"
prev=$(sed -e 's/^v//' "$root/VERSION")
[ "$prev" != "$next" ] || die "VERSION is already $next"

printf '%s\n' "$next" >"$root/VERSION"

# info.version: the first "  version:" line after "info:".
spec=$root/docs/openapi.yaml
if [ -f "$spec" ]; then
  awk -v v="$next" '
    /^info:/ { in_info = 1 }
    in_info && !done && /^  version:/ { print "  version: " v; done = 1; next }
    /^[^ ]/ && !/^info:/ { in_info = 0 }
    { print }
  ' "$spec" >"$spec.tmp"
  mv "$spec.tmp" "$spec"
fi
echo "release: $prev -> $next (VERSION, docs/openapi.yaml)"
