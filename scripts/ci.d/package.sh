#!/usr/bin/env bash
# CI only, as root on a throwaway machine: the packages and the container recipe, end to end.
#  1. `make packages`: .deb and .rpm with their .sha256 in build/target/, versioned from VERSION.
#  2. `dpkg -i` the .deb: files where the README and man page say, the configuration a conffile,
#     the service user and its directories; `systemd-analyze verify` (and an offline security
#     review) of the installed unit.
#  3. The installed binary, run as the service user with the installed default configuration,
#     answers /health and /version with VERSION's version, and stops cleanly on SIGTERM.
#  4. An upgrade keeps the user's configuration; `dpkg -r` removes everything but the
#     configuration; `dpkg -P` purges it.
#  5. The .rpm's file list, %config(noreplace) and scriptlets; the man page; the Dockerfile
#     (linted, multi-stage, non-root, EXPOSE 8080, HEALTHCHECK, runtime libraries = the .deb's);
#     `make release` on a scratch copy.
# Leaves the machine as it found it (package purged, its user and backup dir removed if new).
set -euo pipefail
cd "$(dirname "$0")/../.."

NAME=aerospike-backup-service
SERVICE_USER=aerospike-backup-service
CONF=/etc/$NAME/$NAME.yml
UNIT=/lib/systemd/system/$NAME.service
VERSION=$(sed -e 's/^v//' VERSION)
WORK=$(mktemp -d /tmp/abs-package.XXXXXX)
chmod 0755 "$WORK"
PASSED=0
FAILED=0
SERVICE_PID=""

[ "$(id -u)" -eq 0 ] || { echo "package.sh: needs root (CI only)" >&2; exit 1; }

fail() { echo "FAIL: $*" >&2; FAILED=$((FAILED + 1)); }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then PASSED=$((PASSED + 1)); else fail "$what"; fi
}
installed_status() { dpkg-query -W -f='${Status}' "$NAME" 2>/dev/null || true; }

user_existed=no; getent passwd "$SERVICE_USER" >/dev/null && user_existed=yes
state_existed=no; [ -e "/var/lib/$NAME" ] && state_existed=yes
cleanup() {
  [ -n "$SERVICE_PID" ] && kill -9 "$SERVICE_PID" 2>/dev/null || true
  [ -n "$(installed_status)" ] && dpkg -P "$NAME" >/dev/null 2>&1 || true
  if [ "$state_existed" = no ]; then rm -rf "/var/lib/$NAME"; fi
  if [ "$user_existed" = no ] && getent passwd "$SERVICE_USER" >/dev/null; then
    # userdel may take the user's group with it: neither failure may change the exit status
    userdel "$SERVICE_USER" 2>/dev/null || true
    groupdel "$SERVICE_USER" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== tools =="
DOCKERFILE_LINT=$(bash scripts/deps.d/packaging.sh)

echo "== make packages ($VERSION) =="
make --no-print-directory packages >"$WORK/make.log" 2>&1 || { tail -40 "$WORK/make.log"; exit 1; }
DEB=build/target/${NAME}_${VERSION}-1_$(dpkg --print-architecture).deb
RPM=build/target/$NAME-$VERSION-1.$(uname -m).rpm
check "make build left the binary in build/target/" test -x "build/target/$NAME"
for pkg in "$DEB" "$RPM"; do
  check "$pkg exists" test -s "$pkg"
  check "$pkg.sha256 holds its digest" \
    test "$(cat "$pkg.sha256" 2>/dev/null)" = "$(sha256sum "$pkg" | cut -d' ' -f1)"
done
[ -s "$DEB" ] || { echo "no .deb: stopping"; exit 1; }

echo "== .deb metadata =="
check "deb version is VERSION-1" test "$(dpkg-deb -f "$DEB" Version)" = "$VERSION-1"
DEPENDS=$(dpkg-deb -f "$DEB" Depends)
echo "Depends: $DEPENDS"
for lib in libmicrohttpd12 libjansson4 libyaml-0-2 libcurl4 libssl3 libzstd1 zlib1g passwd; do
  check "deb depends on $lib" grep -qE "(^|, )$lib( |,|$)" <<<"$DEPENDS"
done
check "the configuration is the only conffile" \
  test "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles)" = "$CONF"

echo "== dpkg -i =="
[ -n "$(installed_status)" ] && dpkg -P "$NAME" >/dev/null
dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log"; exit 1; }
check "installed" test "$(installed_status)" = "install ok installed"
check "binary in /usr/bin" test -x "/usr/bin/$NAME"
check "cloud module in /usr/lib/$NAME" test -s "/usr/lib/$NAME/$NAME-cloud.so"
check "default configuration in /etc" test -s "$CONF"
check "configuration registered as a conffile" grep -q "$CONF" <(dpkg-query -W -f='${Conffiles}' "$NAME")
check "systemd unit in /lib/systemd/system" test -s "$UNIT"
check "man page gzipped in man1" gzip -t "/usr/share/man/man1/$NAME.1.gz"
check "man page renders" bash -c "man -l /usr/share/man/man1/$NAME.1.gz 2>/dev/null | grep -q NOTIFY_SOCKET"
check "OpenAPI spec in /usr/share/doc" test -s "/usr/share/doc/$NAME/openapi.yaml"
check "system user created" bash -c "getent passwd $SERVICE_USER | grep -q ':/usr/sbin/nologin$'"
check "backup dir owned by the service user" test "$(stat -c %U "/var/lib/$NAME")" = "$SERVICE_USER"
check "log dir owned by the service user" test "$(stat -c %U "/var/log/$NAME")" = "$SERVICE_USER"
check "configuration writable by the service user, hidden from others" \
  bash -c "[ \"\$(stat -c %U:%a $CONF)\" = $SERVICE_USER:640 ] && [ \"\$(stat -c %U $(dirname "$CONF"))\" = $SERVICE_USER ]"
check "unit enabled" test -L "/etc/systemd/system/multi-user.target.wants/$NAME.service"

echo "== unit =="
check "unit is Type=notify" grep -qx 'Type=notify' "$UNIT"
check "unit restarts on failure" grep -qx 'Restart=on-failure' "$UNIT"
check "unit runs as the service user" grep -qx "User=$SERVICE_USER" "$UNIT"
check "unit hardening" bash -c "grep -qx ProtectSystem=strict $UNIT && grep -qx NoNewPrivileges=yes $UNIT \
  && grep -qx ProtectHome=yes $UNIT && grep -qx PrivateTmp=yes $UNIT && grep -q '^ReadWritePaths=/etc/$NAME' $UNIT"
check "unit ExecStart uses the installed binary and configuration" \
  grep -qx "ExecStart=/usr/bin/$NAME --config $CONF" "$UNIT"
if systemd-analyze verify "$UNIT" >"$WORK/verify.log" 2>&1; then
  PASSED=$((PASSED + 1))
else
  fail "systemd-analyze verify $UNIT: $(cat "$WORK/verify.log")"
fi
# Offline exposure review (0 = locked down, 10 = unprotected): stay at "OK" or better.
if systemd-analyze security --offline=true --threshold=25 "$UNIT" >"$WORK/security.log" 2>&1; then
  PASSED=$((PASSED + 1))
  tail -1 "$WORK/security.log"
else
  fail "systemd-analyze security: $(tail -3 "$WORK/security.log")"
fi

echo "== installed binary, as $SERVICE_USER, with the installed configuration =="
check "-v prints VERSION's version" grep -q "version $VERSION " <("/usr/bin/$NAME" -v)
config=$CONF
port=8080
if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
  # Something else holds 8080 (a developer machine): same configuration on another port.
  port=$((20000 + RANDOM % 10000))
  config=$WORK/port-$port.yml
  sed -e "s/^    port: 8080$/    port: $port/" "$CONF" >"$config"
  chmod 0644 "$config"
  echo "port 8080 is busy: using a copy of $CONF on port $port"
fi
# run_installed CONFIG LOG: the installed binary as the service user (setpriv execs the service
# itself, so $! is its pid: SERVICE_PID); waits for /health on $port and sets `health`.
run_installed() {
  setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups \
    "/usr/bin/$NAME" -c "$1" >"$2" 2>&1 &
  SERVICE_PID=$!
  health=""
  for _ in $(seq 1 100); do
    health=$(curl -s "http://127.0.0.1:$port/health" || true)
    [ -n "$health" ] && break
    kill -0 "$SERVICE_PID" 2>/dev/null || break
    sleep 0.1
  done
}
# stop_installed: SIGTERM, then `rc` is the service's exit status.
stop_installed() {
  kill -TERM "$SERVICE_PID" 2>/dev/null || true
  rc=0; wait "$SERVICE_PID" || rc=$?
  SERVICE_PID=""
}
run_installed "$config" "$WORK/service.log"
check "installed service answers /health" test "$health" = "Ok"
check "/version is VERSION's" \
  bash -c "curl -s http://127.0.0.1:$port/version | jq -e --arg v '$VERSION' '.version == \$v' >/dev/null"
stop_installed
check "clean exit on SIGTERM" test "$rc" -eq 0
# A configuration with S3 storage starts only if the installed binary loads its cloud module.
cat >"$WORK/s3.yml" <<YAML
service: {http: {address: 127.0.0.1, port: $port}}
aerospike-clusters: {c: {seed-nodes: [{host-name: 127.0.0.1, port: 3000}]}}
storage: {s3: {s3-storage: {bucket: b, s3-region: us-east-1, s3-endpoint-override: "http://127.0.0.1:9"}}}
backup-policies: {p: {parallel: 1}}
backup-routines: {r: {interval-cron: "@yearly", source-cluster: c, storage: s3, backup-policy: p, namespaces: []}}
YAML
chmod 0644 "$WORK/s3.yml"
run_installed "$WORK/s3.yml" "$WORK/service-s3.log"
check "installed service with S3 storage loads the cloud module and answers /health" test "$health" = "Ok"
stop_installed
[ "$health" = "Ok" ] || cat "$WORK/service-s3.log"
check "service ran as $SERVICE_USER (no permission errors)" bash -c "! grep -qi 'permission denied' '$WORK/service.log'"
[ "$FAILED" -eq 0 ] || cat "$WORK/service.log"

echo "== upgrade keeps the user's configuration =="
echo "# edited by the administrator" >>"$CONF"
mkdir "$WORK/next"
dpkg-deb -R "$DEB" "$WORK/next/root"
sed -i "s/^Version: .*/Version: $VERSION-2/" "$WORK/next/root/DEBIAN/control"
dpkg-deb -b --root-owner-group "$WORK/next/root" "$WORK/next/next.deb" >/dev/null
dpkg -i "$WORK/next/next.deb" </dev/null >"$WORK/dpkg-upgrade.log" 2>&1 || { cat "$WORK/dpkg-upgrade.log"; exit 1; }
check "upgraded" test "$(dpkg-query -W -f='${Version}' "$NAME")" = "$VERSION-2"
check "user's edit survives the upgrade" grep -q '^# edited by the administrator$' "$CONF"
check "still writable by the service user after the upgrade" test "$(stat -c %U "$CONF")" = "$SERVICE_USER"

echo "== dpkg -r =="
dpkg -r "$NAME" >"$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log"; exit 1; }
check "removed, configuration kept" test "$(installed_status)" = "deinstall ok config-files"
check "binary gone" test ! -e "/usr/bin/$NAME"
check "unit gone" test ! -e "$UNIT"
check "man page gone" test ! -e "/usr/share/man/man1/$NAME.1.gz"
check "doc gone" test ! -e "/usr/share/doc/$NAME"
check "user's configuration kept" grep -q '^# edited by the administrator$' "$CONF"

echo "== dpkg -P =="
dpkg -P "$NAME" >"$WORK/dpkg-p.log" 2>&1 || { cat "$WORK/dpkg-p.log"; exit 1; }
check "purged" test -z "$(installed_status)"
check "configuration gone" test ! -e "/etc/$NAME"
check "enablement gone" test ! -e "/etc/systemd/system/multi-user.target.wants/$NAME.service"
check "backups kept" test -d "/var/lib/$NAME"

echo "== .rpm =="
if [ -s "$RPM" ]; then
  files=$(rpm -qpl "$RPM" 2>/dev/null)
  for f in "/usr/bin/$NAME" "/usr/lib/$NAME/$NAME-cloud.so" "$CONF" "/usr/lib/systemd/system/$NAME.service" \
           "/usr/share/man/man1/$NAME.1.gz" "/usr/share/doc/$NAME/openapi.yaml"; do
    check "rpm ships $f" grep -qx "$f" <<<"$files"
  done
  check "rpm ships nothing else than its own paths" \
    bash -c "! grep -vE '^(/usr/bin/$NAME|/usr/lib/$NAME(/.*)?|/etc/$NAME(/.*)?|/usr/lib/systemd/system/$NAME.service|/usr/share/man/man1/$NAME.1.gz|/usr/share/doc/$NAME(/.*)?)$' <<<'$files'"
  check "rpm version is VERSION-1" test "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$RPM" 2>/dev/null)" = "$VERSION-1"
  check "rpm configuration is %config(noreplace)" \
    test "$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RPM" 2>/dev/null | grep "^$CONF ")" = "$CONF cn"
  check "rpm has post/preun/postun scriptlets" \
    test "$(rpm -qp --scripts "$RPM" 2>/dev/null | grep -cE '^(postinstall|preuninstall|postuninstall) scriptlet')" -eq 3
  check "rpm requires the shared libraries" grep -q '^libmicrohttpd.so.12' <(rpm -qp --requires "$RPM" 2>/dev/null)
fi

echo "== man page source =="
check "man page has no groff warnings" \
  bash -c "[ -z \"\$(LC_ALL=C.UTF-8 man --warnings -l packaging/$NAME.1 2>&1 >/dev/null)\" ]"

echo "== Dockerfile =="
if "$DOCKERFILE_LINT" lint Dockerfile >"$WORK/docker-lint.log" 2>&1; then
  PASSED=$((PASSED + 1))
else
  fail "dockerfile-utils lint: $(cat "$WORK/docker-lint.log")"
fi
check "build stage on debian:12" grep -qE '^FROM debian:12 AS build$' Dockerfile
check "runtime on debian:12-slim" grep -qE '^FROM debian:12-slim$' Dockerfile
check "non-root user" bash -c "grep -E '^USER ' Dockerfile | tail -1 | grep -qvE '^USER (0|root)(:|$)'"
check "EXPOSE 8080" grep -qx 'EXPOSE 8080' Dockerfile
check "HEALTHCHECK on /health" bash -c "grep -A1 '^HEALTHCHECK' Dockerfile | grep -q '/health'"
check "configuration at /app/config.yml" grep -qx 'CMD \["-c", "/app/config.yml"\]' Dockerfile
# The runtime stage installs every library the .deb depends on (libc6 is in the image).
deb_libs=$(tr ',' '\n' <<<"$DEPENDS" | sed -E 's/^ *//; s/ .*//' | grep -vxE 'libc6|passwd' | sort)
runtime_stage=$(sed -n '/^FROM debian:12-slim/,$p' Dockerfile | grep -v '^#')
for lib in $deb_libs; do
  check "image installs $lib (a dependency of the .deb)" grep -qE "(^| )$lib( |$)" <<<"$runtime_stage"
done

echo "== make release =="
mkdir -p "$WORK/release/docs"
cp VERSION "$WORK/release/VERSION"
cp docs/openapi.yaml "$WORK/release/docs/openapi.yaml"
ABS_RELEASE_ROOT=$WORK/release make --no-print-directory release NEXT_VERSION=9.8.7 >/dev/null
check "release bumps VERSION" test "$(cat "$WORK/release/VERSION")" = "9.8.7"
check "release bumps the OpenAPI info.version" \
  test "$(sed -n '/^info:/,/^[a-z]/p' "$WORK/release/docs/openapi.yaml" | grep -m1 '^  version:')" = "  version: 9.8.7"
check "release changes nothing else in the spec" \
  test "$(diff docs/openapi.yaml "$WORK/release/docs/openapi.yaml" | grep -c '^[<>]')" -eq 2
check "release refuses a malformed version" \
  bash -c "! ABS_RELEASE_ROOT='$WORK/release' make --no-print-directory release NEXT_VERSION=nope >/dev/null 2>&1"
check "the tree's VERSION is untouched" test "$(sed -e 's/^v//' VERSION)" = "$VERSION"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
