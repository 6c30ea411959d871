#!/usr/bin/env bash
# The cloud module (src/storage/cloud_module.h): the service binary itself needs neither libcurl
# nor libxml2 and a service on local storage never maps them; the binary carries the module, so a
# copy of the binary alone (an ABS binary swapped for ours) still serves cloud storage. With
# the module, a store that does not answer delays neither start-up nor shutdown.
source "$(dirname "$0")/lib.sh"

needed=$(readelf -d "$BIN" | grep NEEDED)
check "binary does not link libcurl ($needed)" eval '! grep -q libcurl <<<"$needed"'
check "binary does not link libxml2" eval '! grep -q libxml2 <<<"$needed"'
check "module built next to the binary" test -f "$(dirname "$BIN")/aerospike-backup-service-cloud.so"

PORT=$(free_port)
write_config "$WORK/local.yml" "$PORT"
cat >"$WORK/s3.yml" <<YAML
$(sed -n '/^service:/,/^storage:/p' "$WORK/local.yml" | sed '$d')
storage:
  s3:
    s3-storage:
      bucket: backups
      s3-region: us-east-1
      s3-endpoint-override: http://127.0.0.1:9
$(sed -n '/^backup-policies:/,$p' "$WORK/local.yml" | sed 's/storage: local/storage: s3/')
YAML

# ---- the binary alone, away from the module file
mkdir -p "$WORK/bin"
cp "$BIN" "$WORK/bin/"
BIN_SAVED=$BIN
BIN="$WORK/bin/$(basename "$BIN")"
check "local storage: the service runs" start_service "$WORK/local.yml"
req GET /health
expect_status 200 "health on local storage"
check "local storage: libcurl never mapped" eval "! grep -q libcurl /proc/$PID/maps"
stop_service

# the S3 endpoint does not answer (connections refused, retried for hours): the API and the
# service's readiness must not wait for the backup history, and stopping must not either
check "S3 storage, binary alone, store down: the service runs" start_service "$WORK/s3.yml"
req GET /v1/config/storage/s3
expect_status 200 "s3 storage configured"
check "the embedded module is loaded (libcurl mapped)" grep -q libcurl "/proc/$PID/maps"
check "history load left running in the background" wait_log "backup history still loading"
t0=$(date +%s)
stop_service
check "stopping does not wait for the store's retries ($(( $(date +%s) - t0 )) s)" test $(( $(date +%s) - t0 )) -le 5
# ---- under MemoryDenyWriteExecute (the systemd unit sets it): the kernel's PR_SET_MDWE, set by
# a wrapper that then execs the service, must not keep the module from loading
cat >"$WORK/mdwe.py" <<'PY'
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, REFUSE_EXEC_GAIN
    sys.exit(77)
os.execv(sys.argv[1], sys.argv[1:])
PY
if python3 "$WORK/mdwe.py" /bin/true; then
  REAL_BIN=$BIN
  printf '#!/bin/sh\nexec python3 %s %s "$@"\n' "$WORK/mdwe.py" "$REAL_BIN" >"$WORK/bin/mdwe-service"
  chmod +x "$WORK/bin/mdwe-service"
  BIN=$WORK/bin/mdwe-service
  check "S3 storage under MDWE: the service runs" start_service "$WORK/s3.yml"
  check "the embedded module is loaded under MDWE" grep -q libcurl "/proc/$PID/maps"
  stop_service
  BIN=$REAL_BIN
else
  echo "SKIP: this kernel has no PR_SET_MDWE"
fi
BIN=$BIN_SAVED
finish
