#!/usr/bin/env bash
# Lints docs/openapi.yaml and checks that it documents every route of docs/routes.txt.
#
#  1. `redocly lint` (@redocly/cli, pinned below) with docs/redocly.yaml: zero errors required.
#  2. Every `METHOD /path` line of docs/routes.txt is an operation of the spec, and every
#     operation of the spec is listed in docs/routes.txt (so the two stay in step); and no
#     unquoted on/off/yes/no value, which YAML 1.1 readers would turn into a boolean.
#
# The CLI is installed once with npm into a cache directory outside the repository
# ($ABS_TOOLS_CACHE, default ~/.cache/aerospike-backup-service) and reused afterwards, so a
# re-run needs no network. Requires node >= 18.17 and npm (scripts/deps.sh installs them).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

REDOCLY_VERSION=1.34.20 # supports node >= 18.17 (Debian 12 ships 18.19); 2.x needs node >= 20.19
SPEC=docs/openapi.yaml
ROUTES=docs/routes.txt
LINT_CONFIG=docs/redocly.yaml

cache_root=${ABS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aerospike-backup-service}
tool_dir=$cache_root/redocly-cli-$REDOCLY_VERSION
redocly=$tool_dir/node_modules/.bin/redocly

die() { echo "lint-openapi: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (run scripts/deps.sh)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>18||(a===18&&b>=17)?0:1)' ||
  die "node $(node --version) is too old: @redocly/cli $REDOCLY_VERSION needs >= 18.17"
[ -f "$SPEC" ] || die "$SPEC is missing"
[ -f "$ROUTES" ] || die "$ROUTES is missing"

# ---- install the pinned CLI once (the .installed marker is written only after success) ----
if [ ! -f "$tool_dir/.installed" ] || [ ! -x "$redocly" ]; then
  command -v npm >/dev/null || die "npm is not installed (run scripts/deps.sh)"
  echo "lint-openapi: installing @redocly/cli@$REDOCLY_VERSION into $tool_dir"
  rm -rf "$tool_dir"
  mkdir -p "$tool_dir"
  echo '{"private": true}' >"$tool_dir/package.json"
  npm install --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
    --prefix "$tool_dir" "@redocly/cli@$REDOCLY_VERSION" >&2 ||
    { rm -rf "$tool_dir"; die "npm install @redocly/cli@$REDOCLY_VERSION failed"; }
  [ -x "$redocly" ] || { rm -rf "$tool_dir"; die "redocly binary missing after install"; }
  touch "$tool_dir/.installed"
fi

# No telemetry and no update check: the lint must work offline and quietly.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1

status=0

# ---- 1. redocly lint ------------------------------------------------------------------------
echo "== redocly lint ($REDOCLY_VERSION) $SPEC =="
if ! "$redocly" lint --config "$LINT_CONFIG" --format=stylish "$SPEC"; then
  echo "lint-openapi: redocly lint reported errors" >&2
  status=1
fi

# ---- 2. routes.txt <-> spec -------------------------------------------------------------------
echo "== routes: $ROUTES vs $SPEC =="
if ! JSYAML="$tool_dir/node_modules/js-yaml" node - "$SPEC" "$ROUTES" <<'EOF'
const fs = require('fs');
const yaml = require(process.env.JSYAML);
const [specPath, routesPath] = process.argv.slice(2);
const spec = yaml.load(fs.readFileSync(specPath, 'utf8'));
const methods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const inSpec = new Set();
for (const [path, item] of Object.entries(spec.paths || {}))
  for (const m of methods) if (item && item[m]) inSpec.add(`${m.toUpperCase()} ${path}`);
const listed = new Set();
let bad = 0;
fs.readFileSync(routesPath, 'utf8').split('\n').forEach((raw, i) => {
  const line = raw.replace(/#.*/, '').trim();
  if (!line) return;
  const m = /^([A-Z]+)\s+(\/\S*)$/.exec(line);
  if (!m || !methods.includes(m[1].toLowerCase())) {
    console.error(`${routesPath}:${i + 1}: expected "METHOD /path", got "${raw}"`); bad++; return;
  }
  const route = `${m[1]} ${m[2]}`;
  if (listed.has(route)) { console.error(`${routesPath}:${i + 1}: duplicate route ${route}`); bad++; }
  listed.add(route);
  if (!inSpec.has(route)) { console.error(`missing from ${specPath}: ${route}`); bad++; }
});
for (const route of inSpec)
  if (!listed.has(route)) { console.error(`not listed in ${routesPath}: ${route}`); bad++; }
// YAML 1.1 readers (libyaml-based tools, PyYAML) read plain on/off/yes/no/y/n as booleans:
// such words must be quoted so that every reader of the spec sees the same strings.
fs.readFileSync(specPath, 'utf8').split('\n').forEach((line, i) => {
  if (/^\s*(description|summary|title):/.test(line)) return;
  if (/(?::\s+|[\[,]\s*)(on|off|yes|no|y|n)\s*(?:[\],]|$)/i.test(line)) {
    console.error(`${specPath}:${i + 1}: quote the YAML 1.1 boolean-like word: ${line.trim()}`); bad++;
  }
});
if (bad) process.exit(1);
console.log(`${listed.size} routes listed, all documented; no undocumented extras.`);
EOF
then
  echo "lint-openapi: routes/spec check failed" >&2
  status=1
fi

[ "$status" -eq 0 ] && echo "lint-openapi: OK"
exit "$status"
