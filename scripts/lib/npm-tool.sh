# npm-tool.sh - sourced by scripts/deps.d/*.sh: installs one pinned npm package into its own
# folder of the tools cache outside the repository, once (a .installed marker makes re-runs
# no-ops without network). Prints nothing on stdout; the folder is in $NPM_TOOL_DIR.
#
#   npm_tool_install LABEL PACKAGE VERSION CHECK_PATH [npm install options...]
#     CHECK_PATH: a file, relative to the folder, that must exist after the install
#     (e.g. node_modules/.bin/s3rver); a missing one means "install again".

npm_tool_install() {
  local label=$1 pkg=$2 version=$3 check=$4
  shift 4
  local cache_root=${ABS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerospike-backup-service}
  NPM_TOOL_DIR=$cache_root/$pkg-$version
  if [ -f "$NPM_TOOL_DIR/.installed" ] && [ -e "$NPM_TOOL_DIR/$check" ]; then
    return 0
  fi
  command -v npm >/dev/null || { echo "deps $label: npm is not installed (run scripts/deps.sh)" >&2; return 1; }
  echo "deps $label: installing $pkg@$version into $NPM_TOOL_DIR" >&2
  rm -rf "$NPM_TOOL_DIR"
  mkdir -p "$NPM_TOOL_DIR"
  echo '{"private": true}' >"$NPM_TOOL_DIR/package.json"
  if ! NO_UPDATE_NOTIFIER=1 npm install --no-save --no-audit --no-fund --no-package-lock \
         --loglevel=error "$@" --prefix "$NPM_TOOL_DIR" "$pkg@$version" >&2; then
    rm -rf "$NPM_TOOL_DIR"
    echo "deps $label: npm install $pkg@$version failed" >&2
    return 1
  fi
  if [ ! -e "$NPM_TOOL_DIR/$check" ]; then
    rm -rf "$NPM_TOOL_DIR"
    echo "deps $label: $check missing after installing $pkg@$version" >&2
    return 1
  fi
  touch "$NPM_TOOL_DIR/.installed"
}
