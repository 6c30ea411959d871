/*
 * api.c - the HTTP server: libmicrohttpd set-up, the per-request pipeline and shutdown.
 *
 * Pipeline of one request (libmicrohttpd calls the access handler several times):
 *   URI-log callback   the request starts: allocate its state, keep the *raw* path (MHD
 *                      percent-decodes the path it hands the handler, which would turn a
 *                      "%2F" inside a name into a separator), start the clock.
 *   1st call           route it, rate-limit it (429), refuse a declared Content-Length
 *                      above the cap (413) before reading it (these close the connection).
 *   upload calls       collect the body up to API_MAX_BODY, discard beyond (and discard
 *                      everything for unrouted requests).
 *   last call          404 / 405, then 413 / 415 / 400 body checks, run the handler, send
 *                      the response, record metrics, log one access line (never the body).
 *   completed callback free the request state.
 *
 * Shutdown (api_stop): quiesce (stop accepting), wait for in-flight requests (bounded),
 * then stop the daemon, which also closes idle keep-alive connections.
 */
#include "api/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "api/ratelimit.h"
#include "api/router.h"
#include "config/config.h"
#include "metrics/metrics.h"
#include "util/log.h"

#define API_THREADS 4u

struct api_server {
    struct api_deps deps;
    struct MHD_Daemon *daemon;
    struct router *router;
    struct ratelimit *limiter;
    struct metrics_family *m_requests;
    struct metrics_family *m_duration;
    atomic_int inflight;
    int port;
};

/* State of one request, from the URI-log callback to the completed callback. */
struct api_call {
    struct api_server *srv;
    int64_t start_ns;
    char *raw_path;
    bool started;
    bool responded;
    bool too_large;
    enum router_status rs;
    struct router_match match;
    char *body;
    size_t len, cap;
};

typedef const struct api_route *(*api_group_fn)(size_t *n);

/* Every resource group of the API; a new group file adds one line here. */
static const api_group_fn api_groups[] = {
    api_system_routes,
    api_config_routes,
    api_backups_routes,
    api_restore_routes,
    api_retrieve_routes,
};

static int64_t api_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- request accessors ---------------------------------------------------------------- */

const char *api_param(const struct api_request *req, const char *name)
{
    return req->match ? router_param(req->match, name) : NULL;
}

const char *api_query(const struct api_request *req, const char *key)
{
    return req->conn_ ? MHD_lookup_connection_value(req->conn_, MHD_GET_ARGUMENT_KIND, key)
                      : NULL;
}

bool api_query_i64(struct api_request *req, struct api_response *res, const char *key, int64_t *out)
{
    const char *v = api_query(req, key);
    *out = -1;
    if (!v)
        return true;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < 0) {
        api_reply_error(res, 400, "invalid query param %s: must be a non-negative integer", key);
        return false;
    }
    *out = n;
    return true;
}

const char *api_header(const struct api_request *req, const char *name)
{
    return req->conn_ ? MHD_lookup_connection_value(req->conn_, MHD_HEADER_KIND, name) : NULL;
}

/* ---- sending ------------------------------------------------------------------------ */

/* Bounded label set: unknown methods would otherwise create unbounded series. */
static const char *api_method_label(const char *method)
{
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                        "OPTIONS", "PATCH",   "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(method, known[i]) == 0)
            return known[i];
    return "OTHER";
}

static void api_record(struct api_call *c, const char *method, int status)
{
    struct api_server *srv = c->srv;
    double secs = (double)(api_now_ns() - c->start_ns) / 1e9;
    const char *route = c->rs == ROUTER_FOUND ? c->match.pattern : "unmatched";
    const char *mlabel = api_method_label(method);
    char code[16];
    snprintf(code, sizeof code, "%d", status);
    metrics_inc(srv->m_requests, (const char *[]){mlabel, route, code});
    metrics_observe(srv->m_duration, (const char *[]){mlabel, route}, secs);
    LOG_D("api", "%s %s %d %.3fms", mlabel, c->raw_path, status, secs * 1000.0);
}

static struct MHD_Response *api_mhd_response(struct api_response *res)
{
    struct MHD_Response *r;
    if (res->body_static || !res->body) {
        r = MHD_create_response_from_buffer(res->len, res->body, MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer(res->len, res->body, MHD_RESPMEM_MUST_FREE);
        if (r)
            res->body = NULL; /* now owned by the MHD response */
    }
    if (!r)
        return NULL;
    if (res->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
    if (res->content_type && strcmp(res->content_type, API_CT_TEXT) == 0 && res->status >= 400)
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (res->allow[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, res->allow);
    if (res->location)
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, res->location);
    if (res->disposition)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, res->disposition);
    return r;
}

static enum MHD_Result api_send(struct api_call *c, struct MHD_Connection *conn,
                                const char *method, struct api_response *res)
{
    if (res->status < 100 || res->status > 599)
        api_reply_error(res, 500, "internal error: handler produced no response");
    struct MHD_Response *r = api_mhd_response(res);
    int status = res->status;
    api_response_clear(res);
    if (!r) {
        LOG_E("api", "cannot create response (out of memory)");
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    c->responded = true;
    api_record(c, method, status);
    return ok;
}

static enum MHD_Result api_send_error(struct api_call *c, struct MHD_Connection *conn,
                                      const char *method, int status, const char *msg)
{
    struct api_response res = {0};
    api_reply_error(&res, status, "%s", msg);
    if (status == 405)
        snprintf(res.allow, sizeof res.allow, "%s", c->match.allow);
    return api_send(c, conn, method, &res);
}

/* ---- the pipeline ------------------------------------------------------------------- */

static bool api_rate_ok(struct api_server *srv, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    struct ratelimit_addr addr;
    if (!srv->limiter || !ci || ratelimit_addr_from_sockaddr(ci->client_addr, &addr) != 0)
        return true;
    return ratelimit_allow(srv->limiter, &addr);
}

static bool api_declared_too_large(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    return errno == ERANGE || (end != cl && n > API_MAX_BODY);
}

static enum MHD_Result api_begin(struct api_call *c, struct MHD_Connection *conn,
                                 const char *method)
{
    c->rs = router_match(c->srv->router, method, c->raw_path, &c->match);
    if (!api_rate_ok(c->srv, conn))
        return api_send_error(c, conn, method, 429, "Too Many Requests");
    if (api_declared_too_large(conn))
        return api_send_error(c, conn, method, 413, "http: request body too large");
    return MHD_YES; /* 404/405 wait for the end of the request so keep-alive survives */
}

static void api_collect(struct api_call *c, const char *data, size_t n)
{
    if (c->too_large || c->rs != ROUTER_FOUND)
        return; /* discarded */
    if (n > API_MAX_BODY - c->len) {
        c->too_large = true;
        free(c->body);
        c->body = NULL;
        c->len = c->cap = 0;
        return;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n + 1)
            cap *= 2;
        char *p = realloc(c->body, cap);
        if (!p) {
            c->too_large = true; /* treated like an oversized body */
            return;
        }
        c->body = p;
        c->cap = cap;
    }
    memcpy(c->body + c->len, data, n);
    c->len += n;
    c->body[c->len] = '\0';
}

/* 415 / 400 checks of a JSON-body route; on success *out holds the parsed body. */
static int api_read_json_body(struct api_call *c, struct MHD_Connection *conn, json_t **out,
                              struct api_response *res)
{
    struct err e;
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (c->len > 0 && !api_is_json_content_type(ct)) {
        api_reply_error(res, 415, "unsupported Content-Type: expected application/json");
        return ERR_INVALID;
    }
    if (api_parse_json(c->body, c->len, out, &e) != 0) {
        api_reply_err(res, &e);
        return e.code;
    }
    return 0;
}

static enum MHD_Result api_finish(struct api_call *c, struct MHD_Connection *conn,
                                  const char *method)
{
    struct api_response res = {0};
    if (c->rs == ROUTER_NOT_FOUND)
        return api_send_error(c, conn, method, 404, "404 page not found");
    if (c->rs == ROUTER_METHOD_NOT_ALLOWED)
        return api_send_error(c, conn, method, 405, "Method Not Allowed");
    if (c->too_large)
        return api_send_error(c, conn, method, 413, "http: request body too large");
    const struct api_route *route = c->match.data;
    json_t *body = NULL;
    if ((route->flags & API_ROUTE_JSON_BODY) && api_read_json_body(c, conn, &body, &res) != 0)
        return api_send(c, conn, method, &res);
    struct api_request req = {
        .deps = &c->srv->deps,
        .route = route,
        .match = &c->match,
        .method = method,
        .path = c->raw_path,
        .body = body,
        .conn_ = conn,
    };
    route->handler(&req, &res);
    json_decref(body);
    return api_send(c, conn, method, &res);
}

static enum MHD_Result api_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_size,
                                      void **req_cls)
{
    struct api_call *c = *req_cls;
    if (!c)
        return MHD_NO; /* state allocation failed in the URI callback */
    if (c->responded) {
        *upload_size = 0; /* answered early (429 or declared 413): drop the rest */
        return MHD_YES;
    }
    if (!c->started) {
        c->started = true;
        return api_begin(c, conn, method);
    }
    if (*upload_size) {
        api_collect(c, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    return api_finish(c, conn, method);
}

/* "/a/b?x=1" → "/a/b"; absolute-form "http://h:1/a?x" → "/a". */
static char *api_raw_path(const char *uri)
{
    if (strncasecmp(uri, "http://", 7) == 0 || strncasecmp(uri, "https://", 8) == 0) {
        const char *p = strstr(uri, "://") + 3;
        uri = p + strcspn(p, "/?");
        if (*uri != '/')
            return strdup("/");
    }
    return strndup(uri, strcspn(uri, "?#"));
}

static void *api_on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct api_server *srv = cls;
    struct api_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->start_ns = api_now_ns();
    c->raw_path = api_raw_path(uri ? uri : "/");
    if (!c->raw_path) {
        free(c);
        return NULL;
    }
    atomic_fetch_add(&srv->inflight, 1);
    return c;
}

static void api_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                             enum MHD_RequestTerminationCode toe)
{
    struct api_server *srv = cls;
    struct api_call *c = *req_cls;
    if (!c)
        return;
    router_match_clear(&c->match);
    free(c->body);
    free(c->raw_path);
    free(c);
    *req_cls = NULL;
    atomic_fetch_sub(&srv->inflight, 1);
}

/* Client-side hiccups (disconnects, timeouts) are routine: debug level; the rest warns. */
static bool api_mhd_is_noise(const char *msg)
{
    static const char *const noise[] = {"remote side", "reset by peer", "timed out",
                                        "Broken pipe", "incomplete request"};
    for (size_t i = 0; i < sizeof noise / sizeof noise[0]; i++)
        if (strstr(msg, noise[i]))
            return true;
    return false;
}

__attribute__((format(printf, 2, 0)))
static void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (api_mhd_is_noise(msg))
        LOG_D("api", "libmicrohttpd: %s", msg);
    else
        LOG_W("api", "libmicrohttpd: %s", msg);
}

/* ---- start-up ----------------------------------------------------------------------- */

static int api_build_router(struct api_server *s, const char *context_path, struct err *e)
{
    int rc = router_new(&s->router, e);
    for (size_t g = 0; rc == 0 && g < sizeof api_groups / sizeof api_groups[0]; g++) {
        size_t n = 0;
        const struct api_route *routes = api_groups[g](&n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            char *pattern = NULL;
            unsigned flags = routes[i].flags;
            rc = router_mount(context_path, (enum router_mount_point)routes[i].mount,
                              routes[i].path, &pattern, &flags, e);
            if (rc == 0)
                rc = router_add(s->router, routes[i].method, pattern, flags,
                                (void *)(uintptr_t)&routes[i], e);
            free(pattern);
        }
    }
    return rc;
}

static int api_build_limiter(struct api_server *s, const struct cfg_http_eff *http,
                             struct err *e)
{
    const cfg_strlist *wl = http->white_list;
    struct ratelimit_options o = {
        .tps = (double)http->rate_tps,
        .size = (double)http->rate_size,
        .white_list = wl ? (const char *const *)wl->v : NULL,
        .white_list_len = wl ? wl->n : 0,
    };
    return ratelimit_new(&o, &s->limiter, e);
}

static void api_register_metrics(struct api_server *s)
{
    s->m_requests = metrics_counter(s->deps.metrics, "http_requests_total",
                                    "Total number of HTTP requests by method, route and status.",
                                    (const char *[]){"method", "route", "status", NULL});
    s->m_duration = metrics_histogram(s->deps.metrics, "http_request_duration_seconds",
                                      "HTTP request latency in seconds by method and route.",
                                      (const char *[]){"method", "route", NULL}, NULL, 0);
}

/* Numeric IPv4/IPv6 literal (brackets allowed), "localhost", else a resolvable name. */
static int api_resolve(const char *address, int port, struct sockaddr_storage *ss,
                       struct err *e)
{
    char host[256];
    if (!address || !*address)
        address = "0.0.0.0";
    if (strcasecmp(address, "localhost") == 0)
        address = "127.0.0.1";
    size_t len = strlen(address);
    if (len >= sizeof host)
        return err_set(e, ERR_INVALID, "http address too long");
    if (address[0] == '[' && len > 2 && address[len - 1] == ']')
        snprintf(host, sizeof host, "%.*s", (int)(len - 2), address + 1);
    else
        snprintf(host, sizeof host, "%s", address);
    if (port < 0 || port > 65535)
        return err_set(e, ERR_INVALID, "invalid http port %d", port);
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(host, NULL, &hints, &ai);
    if (gai != 0 || !ai)
        return err_set(e, ERR_INVALID, "cannot resolve http address '%s': %s", host,
                       gai_strerror(gai));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (ss->ss_family == AF_INET)
        in4->sin_port = htons((uint16_t)port);
    else
        in6->sin6_port = htons((uint16_t)port);
    return 0;
}

static unsigned api_timeout_secs(int64_t ms)
{
    int64_t s = (ms + 999) / 1000;
    if (s < 1)
        s = 1;
    if (s > 86400)
        s = 86400;
    return (unsigned)s;
}

static int api_start_daemon(struct api_server *s, const struct sockaddr_storage *ss,
                            unsigned timeout_s, struct err *e)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC;
    if (ss->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port = ss->ss_family == AF_INET6
                        ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
                        : ntohs(((const struct sockaddr_in *)ss)->sin_port);
    errno = 0;
    s->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, api_on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, s, /* first, so every message goes to it */
        MHD_OPTION_SOCK_ADDR, ss,
        MHD_OPTION_THREAD_POOL_SIZE, API_THREADS,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
        MHD_OPTION_URI_LOG_CALLBACK, api_on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, api_on_completed, s,
        MHD_OPTION_END);
    if (!s->daemon)
        return err_set(e, ERR_IO, "cannot listen on port %u: %s", (unsigned)port,
                       errno ? strerror(errno) : "libmicrohttpd failed to start");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? (int)di->port : (int)port;
    return 0;
}

static void api_free(struct api_server *s)
{
    router_free(s->router);
    ratelimit_free(s->limiter);
    free(s);
}

int api_start(const struct api_deps *deps, struct api_server **out, struct err *e)
{
    struct api_server *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "api: out of memory");
    s->deps = *deps;
    atomic_init(&s->inflight, 0);
    struct cfg *snap = cfg_store_snapshot(deps->store);
    struct cfg_http_eff http;
    cfg_eff_http(snap, &http);
    struct sockaddr_storage ss;
    int rc = api_build_router(s, http.context_path, e);
    if (rc == 0)
        rc = api_build_limiter(s, &http, e);
    if (rc == 0)
        rc = api_resolve(http.address, http.port, &ss, e);
    if (rc == 0) {
        api_register_metrics(s);
        rc = api_start_daemon(s, &ss, api_timeout_secs(http.timeout_ms), e);
    }
    if (rc == 0)
        LOG_I("api", "HTTP server listening on %s port %d, context path %s",
              http.address ? http.address : "0.0.0.0", s->port,
              http.context_path ? http.context_path : "/");
    cfg_release(snap);
    if (rc) {
        api_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int api_port(const struct api_server *s)
{
    return s ? s->port : 0;
}

void api_stop(struct api_server *s)
{
    if (!s)
        return;
    MHD_socket listen_fd = MHD_quiesce_daemon(s->daemon);
    int64_t deadline = api_now_ns() + (int64_t)API_STOP_GRACE_MS * 1000000LL;
    while (atomic_load(&s->inflight) > 0 && api_now_ns() < deadline) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    int left = atomic_load(&s->inflight);
    if (left > 0)
        LOG_W("api", "stopping with %d request(s) still in flight", left);
    MHD_stop_daemon(s->daemon);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    LOG_I("api", "HTTP server stopped");
    api_free(s);
}
