#!/usr/bin/env bash
# Installs what `make packages` and scripts/ci.d/package.sh need beyond scripts/deps.sh:
#  - Debian packages: rpm (rpmbuild for CPack's RPM generator), dpkg-dev (dpkg-shlibdeps for the
#    .deb's library dependencies), systemd (systemd-analyze verify of the unit), man-db (man
#    page check), passwd (useradd in the package's postinst);
#  - the Dockerfile linter: npm `dockerfile-utils` (pinned; hadolint is not packaged in Debian)
#    into the tools cache outside the repository, once.
# Idempotent; prints the linter's path on stdout (nothing else).
set -euo pipefail

DOCKERFILE_UTILS_VERSION=0.16.3

die() { echo "deps packaging: $*" >&2; exit 1; }

PKGS=(rpm dpkg-dev systemd man-db passwd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "deps packaging: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

source "$(dirname "$0")/../lib/npm-tool.sh"
npm_tool_install packaging dockerfile-utils "$DOCKERFILE_UTILS_VERSION" node_modules/.bin/dockerfile-utils
echo "$NPM_TOOL_DIR/node_modules/.bin/dockerfile-utils"
