/*
 * router.h - the HTTP route table: (method, path pattern) -> opaque route data.
 *
 * Patterns are absolute paths split on "/"; a segment written `{name}` is a parameter that
 * matches any single segment (also an empty one, so handlers can reject empty names with
 * 400 instead of a confusing 404). Matching works on the raw request path: the path is split
 * on "/" first and each segment is percent-decoded afterwards, so "%2F" inside a parameter
 * stays inside it (the handler sees a "/" and can refuse it).
 *
 * Outcomes mirror Go's ServeMux, which ABS uses: a path no pattern matches is "not found"
 * (404); a path some pattern matches but only for other methods is "method not allowed"
 * (405) with the list for the Allow header. A GET route also answers HEAD. When several
 * patterns match, the most specific wins (a literal segment beats a parameter at the first
 * position where they differ), then the earliest registered.
 *
 * Mounting: ABS serves system routes under `context-path` and API routes under
 * `context-path` + "v1"; router_mount() builds the absolute pattern for either.
 *
 * Ownership: the router copies patterns and methods; `data` is borrowed. A router_match owns
 * its decoded parameter values until router_match_clear(). A built router is read-only and
 * may be matched from many threads at once.
 */
#ifndef ABS_API_ROUTER_H
#define ABS_API_ROUTER_H

#include <stddef.h>

#include "util/err.h"

#define ROUTER_MAX_PARAMS 4
#define ROUTER_MAX_SEGMENTS 32

/* Also match the path with one trailing "/" ("/x/enable/" for "/x/enable"). */
#define ROUTER_TRAILING_SLASH 0x1u

enum router_status { ROUTER_FOUND = 0, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

enum router_mount_point { ROUTER_MOUNT_SYSTEM = 0, ROUTER_MOUNT_API };

struct router;

struct router_match {
    const char *method;  /* the route's method (ROUTER_FOUND) */
    const char *pattern; /* the route's pattern (ROUTER_FOUND); stable while the router lives */
    void *data;          /* the route's data (ROUTER_FOUND) */
    unsigned flags;      /* the route's flags (ROUTER_FOUND) */
    size_t nparams;
    const char *names[ROUTER_MAX_PARAMS];
    char *values[ROUTER_MAX_PARAMS]; /* percent-decoded */
    char allow[96];                  /* ROUTER_METHOD_NOT_ALLOWED: "GET, HEAD, PUT" */
    char *storage_;                  /* internal */
};

int router_new(struct router **out, struct err *e);
void router_free(struct router *r);

/*
 * Adds a route. `pattern` must start with "/"; parameters are whole segments `{name}`
 * with unique names, at most ROUTER_MAX_PARAMS. ERR_INVALID for a malformed pattern,
 * ERR_CONFLICT for an exact duplicate (same method and pattern).
 */
int router_add(struct router *r, const char *method, const char *pattern, unsigned flags,
               void *data, struct err *e);

/*
 * Matches `path` (raw, without the query string). Always initialises *m; call
 * router_match_clear() afterwards whatever the outcome.
 */
enum router_status router_match(const struct router *r, const char *method, const char *path,
                                struct router_match *m);
void router_match_clear(struct router_match *m);

/* Value of a parameter of a successful match, or NULL. */
const char *router_param(const struct router_match *m, const char *name);

/*
 * Absolute pattern of `rel` ("health", "config/clusters/{name}"; "" = the mount's root)
 * under `context_path` (NULL or "" = "/"): system routes at "<ctx>/<rel>", API routes at
 * "<ctx>/v1/<rel>". The root of a non-"/" context ("/abs") is returned without the trailing
 * slash and *flags gets ROUTER_TRAILING_SLASH so both "/abs" and "/abs/" match.
 * *out is a heap string.
 */
int router_mount(const char *context_path, enum router_mount_point mount, const char *rel,
                 char **out, unsigned *flags, struct err *e);

/* Percent-decodes in place ("%41" -> "A"; malformed escapes and "%00" are kept as text). */
void router_unescape(char *s);

#endif
