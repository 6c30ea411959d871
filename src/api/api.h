/*
 * api.h - the REST API server (libmicrohttpd), ABS v3 compatible.
 *
 * api_start() reads service.http from the store's current snapshot (address, port,
 * context-path, rate limiter, header timeout) once: like ABS, listener settings need a
 * restart to change. The server runs on libmicrohttpd's own thread pool; handlers never
 * block on backups. Every request goes through: rate limiter → router (404/405) → body
 * collection (1 MiB cap, JSON content type and syntax checks) → handler; every response is
 * counted in http_requests_total / http_request_duration_seconds when metrics are given.
 *
 * Ownership: the server borrows `deps` (store, metrics), which must outlive api_stop().
 */
#ifndef ABS_API_H
#define ABS_API_H

#include "util/err.h"

struct cfg_store;
struct metrics;
struct sched;
struct jobs;
struct history_cache;
struct restores;

struct api_deps {
    struct cfg_store *store;
    struct metrics *metrics; /* may be NULL: no request metrics, empty /metrics */
    struct sched *sched;     /* backup triggers; NULL: backup routes answer 503 */
    struct jobs *jobs;       /* running jobs, cancel, progress */
    struct history_cache *history; /* backup listing */
    struct restores *restores;     /* restore jobs; NULL: restore routes answer 503 */
};

struct api_server;

/* Binds and starts serving. ERR_INVALID for a bad address/white-list, ERR_IO if the bind fails. */
int api_start(const struct api_deps *deps, struct api_server **out, struct err *e);

/* The bound TCP port (useful when the configured port was 0). */
int api_port(const struct api_server *s);

/*
 * Graceful stop: stops accepting connections, waits (bounded, API_STOP_GRACE_MS) for requests
 * in flight to finish, then stops the daemon and frees the server. NULL is a no-op.
 */
#define API_STOP_GRACE_MS 10000
void api_stop(struct api_server *s);

#endif
