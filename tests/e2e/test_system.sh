#!/usr/bin/env bash
# System endpoints: /, /health, /ready, /version, /metrics, /api-docs; unknown routes and
# wrong methods; context-path mounting.
source "$(dirname "$0")/lib.sh"

PORT=$(free_port)
write_config "$WORK/c.yml" "$PORT"
start_service "$WORK/c.yml" || exit 1

req GET /
expect_status 200 "GET /"
req GET /health
expect_status 200 "health"
check "health body" test "$BODY" = "Ok"
req GET /ready
expect_status 200 "ready"
check "ready body" test "$BODY" = "Ok"
req GET /version
expect_status 200 "version"
check "version json" test "$(json_get .version)" != "null"
check "version commit" test "$(json_get .commit)" != "null"
check "version build-time" test "$(json_get '."build-time"')" != "null"

req GET /nope
expect_status 404 "unknown path"
req GET /v1/nope
expect_status 404 "unknown API path"
req DELETE /health
expect_status 405 "wrong method"
check "405 has Allow" grep -qi '^allow:' "$WORK/headers"

req GET /api-docs/
expect_status 200 "api-docs page"
expect_body_contains "<html" "api-docs is HTML"
req GET /api-docs/openapi.yaml
expect_status 200 "openapi.yaml"
expect_body_contains "openapi: 3" "spec is OpenAPI 3"
req GET /api-docs/openapi.json
expect_status 200 "openapi.json"
check "openapi.json parses" test "$(json_get .openapi | cut -c1-2)" = "3."

req GET /v1/config
req GET /v1/config/nope-kind
req GET /metrics
expect_status 200 "metrics"
check "metrics content type" grep -q "text/plain; version=0.0.4" <<<"$CTYPE"
expect_body_contains '# TYPE http_requests_total counter' "request counter type"
check "health requests counted" grep -Eq '^http_requests_total\{method="GET",route="/health",status="200"\} [1-9][0-9]*$' <<<"$BODY"
expect_body_contains 'status="404"' "404s counted"
expect_body_contains 'http_request_duration_seconds_bucket{' "duration histogram"
stop_service

# context-path: system routes under it, API under it + v1
PORT=$(free_port)
write_config "$WORK/ctx.yml" "$PORT" "    context-path: /abs"
start_service "$WORK/ctx.yml" || exit 1
req GET /abs/health
expect_status 200 "health under context path"
req GET /abs/v1/config/policies
expect_status 200 "API under context path"
req GET /v1/config/policies
expect_status 404 "API not at root with context path"

finish
