/*
 * api_internal.h - what the API's resource files share: the request/response handed to a
 * handler, the route-definition tables each resource file exports, and the reply helpers
 * (implemented in http.c) that give every response ABS's shape.
 *
 * A handler never touches libmicrohttpd: it reads a struct api_request (route parameters,
 * parsed JSON body, query/header accessors) and fills a struct api_response; api.c turns
 * that into the wire response, records metrics and logs. Adding a resource group = one
 * file exporting `const struct api_route *api_<group>_routes(size_t *n)` plus one line in
 * api.c's group list.
 */
#ifndef ABS_API_INTERNAL_H
#define ABS_API_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "api/router.h"
#include "util/err.h"

#define API_MAX_BODY (1024 * 1024) /* request bodies above 1 MiB → 413 */

#define API_CT_TEXT "text/plain; charset=utf-8"
#define API_CT_JSON "application/json"
#define API_CT_YAML "application/yaml"
#define API_CT_HTML "text/html; charset=utf-8"

/* Route flag (next to ROUTER_TRAILING_SLASH): the handler needs a JSON request body. */
#define API_ROUTE_JSON_BODY 0x100u

struct api_request;
struct api_response;
typedef void (*api_handler_fn)(struct api_request *req, struct api_response *res);

enum api_mount { API_MOUNT_SYSTEM = ROUTER_MOUNT_SYSTEM, API_MOUNT_V1 = ROUTER_MOUNT_API };

struct api_route {
    const char *method;
    enum api_mount mount;
    const char *path;   /* relative to the mount: "health", "config/clusters/{name}"; "" = root */
    unsigned flags;     /* ROUTER_TRAILING_SLASH | API_ROUTE_JSON_BODY */
    api_handler_fn handler;
    int arg;            /* handler-specific (e.g. the enum cfg_kind) */
};

struct api_request {
    const struct api_deps *deps;
    const struct api_route *route;
    const struct router_match *match;
    const char *method;
    const char *path;   /* raw request path, without the query string */
    json_t *body;       /* API_ROUTE_JSON_BODY routes: the parsed body (borrowed) */
    void *conn_;        /* internal: the libmicrohttpd connection */
};

struct api_response {
    int status;
    const char *content_type; /* static string, NULL = no body type */
    char *body;               /* heap unless body_static */
    size_t len;
    bool body_static;         /* body points to data that outlives the response */
    char *location;           /* heap; Location header for redirects */
    const char *disposition;  /* static; Content-Disposition header, NULL = none */
    char allow[96];           /* Allow header for 405 */
};

/* Route tables of the resource groups. */
const struct api_route *api_system_routes(size_t *n);
const struct api_route *api_config_routes(size_t *n);
const struct api_route *api_backups_routes(size_t *n);
const struct api_route *api_restore_routes(size_t *n);
const struct api_route *api_retrieve_routes(size_t *n);

/* ---- request accessors (api.c) ------------------------------------------------------ */

/* URL-decoded path parameter of the matched route, or NULL. */
const char *api_param(const struct api_request *req, const char *name);
/* URL-decoded query argument, or NULL. */
const char *api_query(const struct api_request *req, const char *key);
/* Optional non-negative int64 query argument: *out = -1 when absent; false after replying 400
 * ("invalid query param <key>: ..."). */
bool api_query_i64(struct api_request *req, struct api_response *res, const char *key, int64_t *out);
/* Request header (case-insensitive name), or NULL. */
const char *api_header(const struct api_request *req, const char *name);

/* ---- replies (http.c) --------------------------------------------------------------- */

/* The one mapping from error category (util/err.h) to HTTP status. */
int api_status_from_err(int code);

void api_reply_empty(struct api_response *res, int status);
/* Copies `text` as text/plain; charset=utf-8 (no newline added). */
void api_reply_text(struct api_response *res, int status, const char *text);
/* Serves static data (not copied, not freed). */
void api_reply_static(struct api_response *res, int status, const char *content_type,
                      const void *data, size_t len);
/* Takes ownership of `body` (a heap buffer) as-is. */
void api_reply_owned(struct api_response *res, int status, const char *content_type, char *body,
                     size_t len);
/* Compact JSON; steals the reference to `json`. NULL json → 500. */
void api_reply_json(struct api_response *res, int status, json_t *json);
/* Go http.Error: plain text message + "\n". */
void api_reply_error(struct api_response *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* api_reply_error with api_status_from_err(e->code) and e->msg. */
void api_reply_err(struct api_response *res, const struct err *e);
void api_response_clear(struct api_response *res);

/* "application/json", any case, optional parameters ("; charset=utf-8"). */
bool api_is_json_content_type(const char *content_type);
/* Parses a body; ERR_INVALID "invalid JSON payload: ..." with jansson's line/column. */
int api_parse_json(const char *body, size_t len, json_t **out, struct err *e);
/* A config entity name from a path parameter: non-empty, no "/" (ERR_INVALID otherwise). */
int api_check_name(const char *name, const char *noun, struct err *e);

#endif
