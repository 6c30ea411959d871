/*
 * router.c - route table and matching (see router.h for the rules).
 *
 * Routes are kept in a flat array; each pattern is pre-split into segments. Matching splits
 * the request path once, decodes every segment, then scans all routes: the table is a few
 * dozen entries, so a linear scan is both simple and fast enough. The best candidate among
 * the routes whose segments fit is picked by specificity; the methods of all fitting routes
 * make the Allow header when none accepts the request method.
 */
#include "api/router.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct route_seg {
    const char *text; /* literal text, or the parameter name */
    bool param;
};

struct route {
    char *method;
    char *pattern;
    char *segbuf; /* segment texts point in here */
    unsigned flags;
    void *data;
    size_t nsegs;
    struct route_seg segs[ROUTER_MAX_SEGMENTS];
};

struct router {
    struct route **routes;
    size_t n, cap;
};

/* ---- construction ------------------------------------------------------------------- */

int router_new(struct router **out, struct err *e)
{
    struct router *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, ERR_NOMEM, "router: out of memory");
    *out = r;
    return 0;
}

static void route_free(struct route *rt)
{
    if (!rt)
        return;
    free(rt->method);
    free(rt->pattern);
    free(rt->segbuf);
    free(rt);
}

void router_free(struct router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        route_free(r->routes[i]);
    free(r->routes);
    free(r);
}

/* Splits "a/b/c" in place into at most max segments; false when there are more. */
static bool router_split(char *s, char **segs, size_t max, size_t *n)
{
    *n = 0;
    for (;;) {
        if (*n == max)
            return false;
        segs[(*n)++] = s;
        char *slash = strchr(s, '/');
        if (!slash)
            return true;
        *slash = '\0';
        s = slash + 1;
    }
}

static bool router_is_param(const char *seg)
{
    size_t len = strlen(seg);
    return len > 2 && seg[0] == '{' && seg[len - 1] == '}';
}

/* Fills rt->segs from rt->segbuf; checks the parameter syntax. */
static int route_parse_segments(struct route *rt, struct err *e)
{
    char *segs[ROUTER_MAX_SEGMENTS];
    if (!router_split(rt->segbuf, segs, ROUTER_MAX_SEGMENTS, &rt->nsegs))
        return err_set(e, ERR_INVALID, "router: pattern '%s' has too many segments",
                       rt->pattern);
    size_t nparams = 0;
    for (size_t i = 0; i < rt->nsegs; i++) {
        char *s = segs[i];
        rt->segs[i].param = router_is_param(s);
        if (!rt->segs[i].param) {
            if (strpbrk(s, "{}"))
                return err_set(e, ERR_INVALID, "router: bad segment '%s' in '%s'", s,
                               rt->pattern);
            rt->segs[i].text = s;
            continue;
        }
        s[strlen(s) - 1] = '\0';
        rt->segs[i].text = s + 1;
        if (strpbrk(rt->segs[i].text, "{}") || ++nparams > ROUTER_MAX_PARAMS)
            return err_set(e, ERR_INVALID, "router: bad parameters in '%s'", rt->pattern);
        for (size_t j = 0; j < i; j++)
            if (rt->segs[j].param && strcmp(rt->segs[j].text, rt->segs[i].text) == 0)
                return err_set(e, ERR_INVALID, "router: duplicate parameter in '%s'",
                               rt->pattern);
    }
    return 0;
}

static bool router_valid_method(const char *m)
{
    if (!m || !*m)
        return false;
    for (; *m; m++)
        if (*m < 'A' || *m > 'Z')
            return false;
    return true;
}

static int router_check_duplicate(const struct router *r, const char *method,
                                  const char *pattern, struct err *e)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->routes[i]->method, method) == 0 &&
            strcmp(r->routes[i]->pattern, pattern) == 0)
            return err_set(e, ERR_CONFLICT, "router: duplicate route %s %s", method, pattern);
    return 0;
}

static int router_push(struct router *r, struct route *rt, struct err *e)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        struct route **p = realloc(r->routes, cap * sizeof *p);
        if (!p)
            return err_set(e, ERR_NOMEM, "router: out of memory");
        r->routes = p;
        r->cap = cap;
    }
    r->routes[r->n++] = rt;
    return 0;
}

int router_add(struct router *r, const char *method, const char *pattern, unsigned flags,
               void *data, struct err *e)
{
    if (!router_valid_method(method))
        return err_set(e, ERR_INVALID, "router: invalid method");
    if (!pattern || pattern[0] != '/')
        return err_set(e, ERR_INVALID, "router: pattern must start with '/'");
    int rc = router_check_duplicate(r, method, pattern, e);
    if (rc)
        return rc;
    struct route *rt = calloc(1, sizeof *rt);
    if (!rt)
        return err_set(e, ERR_NOMEM, "router: out of memory");
    rt->method = strdup(method);
    rt->pattern = strdup(pattern);
    rt->segbuf = strdup(pattern + 1);
    rt->flags = flags;
    rt->data = data;
    if (!rt->method || !rt->pattern || !rt->segbuf)
        rc = err_set(e, ERR_NOMEM, "router: out of memory");
    if (rc == 0)
        rc = route_parse_segments(rt, e);
    if (rc == 0)
        rc = router_push(r, rt, e);
    if (rc)
        route_free(rt);
    return rc;
}

/* ---- matching ----------------------------------------------------------------------- */

static int router_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void router_unescape(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        int hi, lo;
        if (p[0] == '%' && (hi = router_hexval(p[1])) >= 0 && (lo = router_hexval(p[2])) >= 0 &&
            (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

/* The decoded segments of a request path, with and without one trailing empty segment. */
struct router_path {
    char *segs[ROUTER_MAX_SEGMENTS];
    size_t n;
    bool has_trailing; /* last segment is "" and n > 1 */
};

static bool route_fits(const struct route *rt, const struct router_path *p, size_t n)
{
    if (rt->nsegs != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!rt->segs[i].param && strcmp(rt->segs[i].text, p->segs[i]) != 0)
            return false;
    return true;
}

/* 0: no fit; 2: exact fit; 1: fit after dropping the trailing slash. */
static int route_fit(const struct route *rt, const struct router_path *p)
{
    if (route_fits(rt, p, p->n))
        return 2;
    if ((rt->flags & ROUTER_TRAILING_SLASH) && p->has_trailing && route_fits(rt, p, p->n - 1))
        return 1;
    return 0;
}

/* >0 when route a is a better choice than b (both fit). */
static int route_compare(const struct route *a, int fit_a, bool exact_a, const struct route *b,
                         int fit_b, bool exact_b)
{
    size_t n = a->nsegs < b->nsegs ? a->nsegs : b->nsegs;
    for (size_t i = 0; i < n; i++)
        if (a->segs[i].param != b->segs[i].param)
            return b->segs[i].param ? 1 : -1;
    if (fit_a != fit_b)
        return fit_a - fit_b;
    return (int)exact_a - (int)exact_b;
}

static int router_method_fit(const char *route_method, const char *method, bool *exact)
{
    *exact = strcmp(route_method, method) == 0;
    return *exact || (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

static int router_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void router_add_allowed(const char **list, size_t *n, size_t cap, const char *method)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i], method) == 0)
            return;
    if (*n < cap)
        list[(*n)++] = method;
}

/* Allow header for a path that some routes fit: sorted, GET implies HEAD. */
static void router_build_allow(const struct router *r, const struct router_path *p,
                               struct router_match *m)
{
    const char *list[16];
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (!route_fit(r->routes[i], p))
            continue;
        router_add_allowed(list, &n, 16, r->routes[i]->method);
        if (strcmp(r->routes[i]->method, "GET") == 0)
            router_add_allowed(list, &n, 16, "HEAD");
    }
    qsort(list, n, sizeof list[0], router_cmp_str);
    size_t off = 0;
    for (size_t i = 0; i < n && off < sizeof m->allow; i++)
        off += (size_t)snprintf(m->allow + off, sizeof m->allow - off, "%s%s", i ? ", " : "",
                                list[i]);
}

static void router_fill_params(const struct route *rt, const struct router_path *p,
                               struct router_match *m)
{
    m->method = rt->method;
    m->pattern = rt->pattern;
    m->data = rt->data;
    m->flags = rt->flags;
    for (size_t i = 0; i < rt->nsegs; i++) {
        if (!rt->segs[i].param)
            continue;
        m->names[m->nparams] = rt->segs[i].text;
        m->values[m->nparams] = p->segs[i];
        m->nparams++;
    }
}

/* Splits and decodes the path into m->storage_; false when it cannot match anything. */
static bool router_prepare_path(const char *path, struct router_match *m, struct router_path *p)
{
    if (!path || path[0] != '/')
        return false;
    m->storage_ = strdup(path + 1);
    if (!m->storage_ || !router_split(m->storage_, p->segs, ROUTER_MAX_SEGMENTS, &p->n))
        return false;
    for (size_t i = 0; i < p->n; i++)
        router_unescape(p->segs[i]);
    p->has_trailing = p->n > 1 && p->segs[p->n - 1][0] == '\0';
    return true;
}

enum router_status router_match(const struct router *r, const char *method, const char *path,
                                struct router_match *m)
{
    memset(m, 0, sizeof *m);
    struct router_path p;
    if (!method || !router_prepare_path(path, m, &p))
        return ROUTER_NOT_FOUND;
    const struct route *best = NULL;
    int best_fit = 0;
    bool best_exact = false, any_fit = false;
    for (size_t i = 0; i < r->n; i++) {
        const struct route *rt = r->routes[i];
        int fit = route_fit(rt, &p);
        bool exact;
        if (!fit)
            continue;
        any_fit = true;
        if (!router_method_fit(rt->method, method, &exact))
            continue;
        if (!best || route_compare(rt, fit, exact, best, best_fit, best_exact) > 0) {
            best = rt;
            best_fit = fit;
            best_exact = exact;
        }
    }
    if (best) {
        router_fill_params(best, &p, m);
        return ROUTER_FOUND;
    }
    if (!any_fit)
        return ROUTER_NOT_FOUND;
    router_build_allow(r, &p, m);
    return ROUTER_METHOD_NOT_ALLOWED;
}

void router_match_clear(struct router_match *m)
{
    if (!m)
        return;
    free(m->storage_);
    memset(m, 0, sizeof *m);
}

const char *router_param(const struct router_match *m, const char *name)
{
    for (size_t i = 0; i < m->nparams; i++)
        if (strcmp(m->names[i], name) == 0)
            return m->values[i];
    return NULL;
}

/* ---- mounting ----------------------------------------------------------------------- */

/* "/abs/" or "abs" → "/abs"; "/" or "" → "" (so prefix + "/x" is always right). */
static int router_norm_context(const char *ctx, char *out, size_t cap)
{
    if (!ctx)
        ctx = "";
    while (*ctx == '/')
        ctx++;
    size_t len = strlen(ctx);
    while (len > 0 && ctx[len - 1] == '/')
        len--;
    if (len == 0) {
        out[0] = '\0';
        return 0;
    }
    if (len + 2 > cap)
        return ERR_INVALID;
    out[0] = '/';
    memcpy(out + 1, ctx, len);
    out[len + 1] = '\0';
    return 0;
}

int router_mount(const char *context_path, enum router_mount_point mount, const char *rel,
                 char **out, unsigned *flags, struct err *e)
{
    char ctx[512];
    if (router_norm_context(context_path, ctx, sizeof ctx) != 0)
        return err_set(e, ERR_INVALID, "router: context path too long");
    while (rel && *rel == '/')
        rel++;
    if (!rel)
        rel = "";
    const char *mid = mount == ROUTER_MOUNT_API ? "/v1" : "";
    char *s = NULL;
    int n;
    if (*rel)
        n = asprintf(&s, "%s%s/%s", ctx, mid, rel);
    else if (*ctx || *mid)
        n = asprintf(&s, "%s%s", ctx, mid);
    else
        n = asprintf(&s, "/");
    if (n < 0)
        return err_set(e, ERR_NOMEM, "router: out of memory");
    if (flags && !*rel && strcmp(s, "/") != 0)
        *flags |= ROUTER_TRAILING_SLASH;
    *out = s;
    return 0;
}
