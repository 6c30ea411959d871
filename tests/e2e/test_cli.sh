#!/usr/bin/env bash
# Command line: -h, -v, bad flags, unreadable and invalid configuration files (exit 1, message
# naming the file, the field path and the reason), and a clean SIGTERM exit.
source "$(dirname "$0")/lib.sh"

out=$("$BIN" -h 2>&1); rc=$?
check "-h exits 0" test $rc -eq 0
check "-h shows --config" grep -q -- "--config" <<<"$out"
out=$("$BIN" --version 2>&1); rc=$?
check "--version exits 0" test $rc -eq 0
check "--version shows version and commit" grep -Eq "version [0-9]+\.[0-9]+\.[0-9]+ \(commit [^,]+, built " <<<"$out"

out=$("$BIN" --bogus 2>&1); rc=$?
check "unknown flag exits 1" test $rc -eq 1
check "unknown flag named" grep -q -- "--bogus" <<<"$out"
out=$("$BIN" -c 2>&1); rc=$?
check "missing -c value exits 1" test $rc -eq 1

out=$("$BIN" -c "$WORK/missing.yml" 2>&1); rc=$?
check "missing file exits 1" test $rc -eq 1
check "missing file named" grep -q "$WORK/missing.yml" <<<"$out"

PORT=$(free_port)
write_config "$WORK/bad.yml" "$PORT"
sed -i 's/parallel: 2/parallel: 0/' "$WORK/bad.yml"
out=$("$BIN" -c "$WORK/bad.yml" 2>&1); rc=$?
check "invalid config exits 1" test $rc -eq 1
check "invalid config names file and field" grep -q "$WORK/bad.yml.*backup-policies.p1.parallel: must be >= 1" <<<"$out"

printf 'service: [\n' >"$WORK/syntax.yml"
out=$("$BIN" -c "$WORK/syntax.yml" 2>&1); rc=$?
check "YAML syntax error exits 1" test $rc -eq 1
check "YAML syntax error has line" grep -q "syntax.yml: line" <<<"$out"

write_config "$WORK/ok.yml" "$PORT"
check "service starts" start_service "$WORK/ok.yml"
check "SIGTERM exits 0" stop_service
check "no secret in log" bash -c "! grep -q hunter2 '$WORK/service.log'"

# -r: the -c file says where the real configuration lives
printf 'local-storage:\n  path: %s\n' "$WORK/ok.yml" >"$WORK/remote.yml"
check "remote mode starts" start_service "$WORK/remote.yml" -r
req GET /v1/config/routines
expect_status 200 "remote config served"
expect_body_contains '"r1"' "remote config has the routine"
stop_service

# an http(s) URL as -c is a read-only source: writes answer 503 and change nothing
PORT2=$PORT
PORT=$(free_port)
(cd "$WORK" && exec python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
HTTPD=$!
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT/ok.yml"
PORT=$PORT2
check "URL source starts" start_service "$URL"
req GET /v1/config/policies/p1
expect_status 200 "URL config served"
req POST /v1/config/policies/p9 '{}'
expect_status 503 "URL source is read-only"
stop_service
kill "$HTTPD" 2>/dev/null

finish
