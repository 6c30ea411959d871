/*
 * as_info.c - info exchange, reply parsers and typed node helpers (see as_info.h).
 *
 * Parsers never trust positions: key=value items are looked up by key, entries are split
 * on their separators, and every number is parsed strictly.
 */
#include "aerospike/as_info.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aerospike/as_cluster.h"
#include "util/log.h"

/* Columns of a `replicas` entry we decode (the map keeps AS_MAX_REPLICAS of them). */
#define AS_MAX_REPLICAS_PARSE 8

/* ---- exchange ------------------------------------------------------------------------- */

int as_info_exec(struct as_conn *c, const char *cmds, struct as_buf *reply, uint64_t deadline_ms,
                 uint32_t socket_timeout_ms, struct err *e)
{
    struct as_buf req;
    as_buf_init(&req);
    int rc = as_info_request(&req, cmds, e);
    if (!rc)
        rc = as_conn_write(c, req.data, req.len, deadline_ms, socket_timeout_ms, e);
    as_buf_free(&req);
    if (rc)
        return rc;
    struct as_proto_header h;
    rc = as_conn_read_proto(c, &h, reply, deadline_ms, socket_timeout_ms, e);
    if (rc)
        return rc;
    if (h.type != AS_PROTO_INFO)
        return err_set(e, ERR_INVALID, "%s: info reply has proto type %u", c->peer, h.type);
    return 0;
}

bool as_info_reply_value(const struct as_buf *reply, const char *cmd, const char **v, size_t *len)
{
    struct as_info_line l;
    if (!reply->data || !as_info_find((const char *)reply->data, reply->len, cmd, &l))
        return false;
    *v = l.value;
    *len = l.value_len;
    return true;
}

int as_info_check(const char *node, const char *cmd, const char *v, size_t len, int *code_out,
                  struct err *e)
{
    int code = -1;
    const char *msg;
    size_t msg_len;
    if (code_out)
        *code_out = 0;
    if (!as_info_value_error(v, len, &code, &msg, &msg_len))
        return 0;
    if (code_out)
        *code_out = code;
    if (msg_len > 200)
        msg_len = 200;
    if (code >= 0)
        return err_set(e, ERR_IO, "node %s: %s: %s (%d): %.*s", node ? node : "?", cmd,
                       as_result_name(code), code, (int)msg_len, msg);
    return err_set(e, ERR_IO, "node %s: %s: %.*s", node ? node : "?", cmd, (int)(len > 200 ? 200 : len), v);
}

bool as_info_parse_u64(const char *v, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)v[i]))
            return false;
        uint64_t d = (uint64_t)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *out = x;
    return true;
}

bool as_info_parse_i64(const char *v, size_t len, int64_t *out)
{
    bool neg = len > 0 && v[0] == '-';
    uint64_t u;
    if (!as_info_parse_u64(v + neg, len - neg, &u))
        return false;
    if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return true;
}

bool as_info_kv_u64(const char *s, size_t len, char sep, const char *key, uint64_t *out)
{
    const char *v = NULL;
    size_t vl = 0;
    return as_info_kv(s, len, sep, key, &v, &vl) && as_info_parse_u64(v, vl, out);
}

/* ---- base64 ------------------------------------------------------------------------------ */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t as_b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long as_b64_decode(const char *in, size_t len, uint8_t *out)
{
    if (len % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char ch = in[i + k];
            if (ch == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else {
                if (pad)
                    return -1;
                v[k] = b64_val(ch);
                if (v[k] < 0)
                    return -1;
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(x >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(x >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)x;
    }
    return (long)o;
}

/* ---- string lists -------------------------------------------------------------------------- */

void as_strv_free(struct as_strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

int as_strv_split(const char *s, size_t len, char sep, struct as_strv *out, struct err *e)
{
    out->v = NULL;
    out->n = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != sep)
            j++;
        if (j > i) {
            char **nv = realloc(out->v, (out->n + 1) * sizeof *nv);
            char *item = nv ? strndup(s + i, j - i) : NULL;
            if (!item) {
                if (nv)
                    out->v = nv;
                as_strv_free(out);
                return err_set(e, ERR_NOMEM, "out of memory");
            }
            out->v = nv;
            out->v[out->n++] = item;
        }
        i = j + 1;
    }
    return 0;
}

/* ---- parsers -------------------------------------------------------------------------------- */

static bool span_eq(const char *v, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(v, lit, n) == 0;
}

static void span_copy(char *dst, size_t cap, const char *v, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, v, len);
    dst[len] = 0;
}

/* The next (zeroed) element of a growing array *arrp of *n elements with capacity *cap: the
 * caller counts it in (*n)++ once it keeps it. NULL when out of memory (array left as is). */
static void *list_slot(void *arrp, size_t *n, size_t *cap, size_t size)
{
    char *arr;
    memcpy(&arr, arrp, sizeof arr);
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        char *g = realloc(arr, nc * size);
        if (!g)
            return NULL;
        arr = g;
        *cap = nc;
        memcpy(arrp, &arr, sizeof arr);
    }
    memset(arr + *n * size, 0, size);
    return arr + *n * size;
}

/* Frees a flat array filled by list_slot and reports the allocation failure. */
static int list_fail(void *arrp, size_t *n, struct err *e)
{
    void *arr;
    memcpy(&arr, arrp, sizeof arr);
    free(arr);
    arr = NULL;
    memcpy(arrp, &arr, sizeof arr);
    *n = 0;
    return err_set(e, ERR_NOMEM, "out of memory");
}


int as_info_parse_namespace(const char *v, size_t len, struct as_ns_info *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    const char *t = NULL;
    size_t tl = 0;
    if (as_info_kv(v, len, ';', "type", &t, &tl) && span_eq(t, tl, "unknown"))
        return 0;
    uint64_t x;
    if (!as_info_kv_u64(v, len, ';', "objects", &out->objects))
        return err_set(e, ERR_INVALID, "namespace stats without objects=");
    out->found = true;
    as_info_kv_u64(v, len, ';', "tombstones", &out->tombstones);
    as_info_kv_u64(v, len, ';', "master_objects", &out->master_objects);
    as_info_kv_u64(v, len, ';', "prole_objects", &out->prole_objects);
    as_info_kv_u64(v, len, ';', "current_time", &out->current_time);
    if (as_info_kv_u64(v, len, ';', "replication-factor", &x) && x <= UINT32_MAX)
        out->replication_factor = (uint32_t)x;
    if (as_info_kv_u64(v, len, ';', "effective_replication_factor", &x) && x <= UINT32_MAX)
        out->effective_replication_factor = (uint32_t)x;
    return 0;
}

int as_info_parse_sets(const char *v, size_t len, struct as_set_info **out, size_t *n,
                       struct err *e)
{
    *out = NULL;
    *n = 0;
    const char *t = NULL;
    size_t tl = 0;
    if (as_info_kv(v, len, ';', "ns_type", &t, &tl))
        return err_set(e, ERR_NOT_FOUND, "sets: namespace unknown to the node");
    size_t cap = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && v[j] != ';')
            j++;
        const char *ent = v + i;
        size_t el = j - i;
        i = j + 1;
        const char *sv, *nv;
        size_t sl, nl;
        if (el == 0 || !as_info_kv(ent, el, ':', "set", &sv, &sl))
            continue;
        struct as_set_info *s = list_slot(out, n, &cap, sizeof **out);
        if (!s)
            return list_fail(out, n, e);
        (*n)++;
        span_copy(s->name, sizeof s->name, sv, sl);
        if (as_info_kv(ent, el, ':', "ns", &nv, &nl))
            span_copy(s->ns, sizeof s->ns, nv, nl);
        as_info_kv_u64(ent, el, ':', "objects", &s->objects);
        as_info_kv_u64(ent, el, ':', "tombstones", &s->tombstones);
        as_info_kv_u64(ent, el, ':', "data_used_bytes", &s->data_used_bytes);
        as_info_kv_u64(ent, el, ':', "truncate_lut", &s->truncate_lut);
    }
    return 0;
}

void as_sindex_list_free(struct as_sindex_info *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].context);
        free(v[i].exp);
    }
    free(v);
}

static bool is_null_token(const char *v, size_t len)
{
    return len == 4 && strncasecmp(v, "null", 4) == 0;
}

static void lower_copy(char *dst, size_t cap, const char *v, size_t len)
{
    span_copy(dst, cap, v, len);
    for (char *p = dst; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

int as_info_parse_sindex_list(const char *v, size_t len, struct as_sindex_info **out, size_t *n,
                              struct err *e)
{
    *out = NULL;
    *n = 0;
    int code;
    const char *msg;
    size_t ml;
    if (as_info_value_error(v, len, &code, &msg, &ml))
        return err_set(e, code == AS_ERR_NAMESPACE ? ERR_NOT_FOUND : ERR_IO,
                       "sindex-list: %s (%d): %.*s", as_result_name(code), code,
                       (int)(ml > 200 ? 200 : ml), msg);
    size_t cap = 0, i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && v[j] != ';')
            j++;
        const char *ent = v + i;
        size_t el = j - i;
        i = j + 1;
        const char *x = NULL;
        size_t xl = 0;
        if (el == 0 || !as_info_kv(ent, el, ':', "indexname", &x, &xl))
            continue;
        struct as_sindex_info *s = list_slot(out, n, &cap, sizeof **out);
        if (!s)
            goto nomem;
        (*n)++;
        span_copy(s->name, sizeof s->name, x, xl);
        if (as_info_kv(ent, el, ':', "ns", &x, &xl))
            span_copy(s->ns, sizeof s->ns, x, xl);
        if (as_info_kv(ent, el, ':', "set", &x, &xl) && !is_null_token(x, xl))
            span_copy(s->set, sizeof s->set, x, xl);
        if (as_info_kv(ent, el, ':', "bin", &x, &xl) && !is_null_token(x, xl))
            span_copy(s->bin, sizeof s->bin, x, xl);
        if (as_info_kv(ent, el, ':', "type", &x, &xl) && !is_null_token(x, xl))
            lower_copy(s->type, sizeof s->type, x, xl);
        if (as_info_kv(ent, el, ':', "indextype", &x, &xl))
            lower_copy(s->index_type, sizeof s->index_type, x, xl);
        else
            snprintf(s->index_type, sizeof s->index_type, "default");
        if (as_info_kv(ent, el, ':', "state", &x, &xl))
            span_copy(s->state, sizeof s->state, x, xl);
        if (as_info_kv(ent, el, ':', "context", &x, &xl) && xl && !is_null_token(x, xl)) {
            s->context = strndup(x, xl);
            if (!s->context)
                goto nomem;
        }
        if (as_info_kv(ent, el, ':', "exp", &x, &xl) && xl && !is_null_token(x, xl)) {
            s->exp = strndup(x, xl);
            if (!s->exp)
                goto nomem;
        }
    }
    return 0;
nomem:
    as_sindex_list_free(*out, *n);
    *out = NULL;
    *n = 0;
    return err_set(e, ERR_NOMEM, "out of memory");
}

static bool info_safe(const char *s)
{
    for (; *s; s++)
        if (*s == ';' || *s == '\n' || *s == ':' || *s == '\t')
            return false;
    return true;
}

static void upper_append(char *out, size_t cap, size_t *pos, const char *s)
{
    for (; *s && *pos + 1 < cap; s++)
        out[(*pos)++] = (char)toupper((unsigned char)*s);
    out[*pos] = 0;
}

int as_info_sindex_create_cmd(const struct as_sindex_info *s, char *out, size_t cap, struct err *e)
{
    if (!s->ns[0] || !s->name[0])
        return err_set(e, ERR_INVALID, "sindex-create: namespace and index name are required");
    const char *fields[] = { s->ns, s->name, s->set, s->bin, s->type, s->index_type,
                             s->context ? s->context : "", s->exp ? s->exp : "" };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (!info_safe(fields[i]))
            return err_set(e, ERR_INVALID, "sindex-create: '%s' contains a separator", fields[i]);
    size_t pos = 0;
    int n = snprintf(out, cap, "sindex-create:namespace=%s;", s->ns);
    if (n < 0 || (size_t)n >= cap)
        goto small;
    pos = (size_t)n;
#define APPEND(...)                                                             \
    do {                                                                        \
        int k_ = snprintf(out + pos, cap - pos, __VA_ARGS__);                   \
        if (k_ < 0 || (size_t)k_ >= cap - pos)                                  \
            goto small;                                                         \
        pos += (size_t)k_;                                                      \
    } while (0)
    if (s->set[0])
        APPEND("set=%s;", s->set);
    APPEND("indexname=%s;", s->name);
    bool set_index = strcasecmp(s->index_type, "set") == 0;
    if (set_index) {
        APPEND("indextype=set");
        return 0;
    }
    if (s->exp) {
        APPEND("exp=%s;", s->exp);
    } else if (s->context) {
        APPEND("context=%s;", s->context);
    }
    APPEND("indextype=");
    upper_append(out, cap, &pos, s->index_type[0] ? s->index_type : "default");
    if (pos + 1 >= cap)
        goto small;
    if (!s->exp) {
        if (!s->bin[0])
            return err_set(e, ERR_INVALID, "sindex-create %s: no bin", s->name);
        APPEND(";bin=%s", s->bin);
    }
    if (!s->type[0])
        return err_set(e, ERR_INVALID, "sindex-create %s: no type", s->name);
    APPEND(";type=");
    upper_append(out, cap, &pos, s->type);
    if (pos + 1 >= cap)
        goto small;
#undef APPEND
    return 0;
small:
    return err_set(e, ERR_INVALID, "sindex-create %s: command too long", s->name);
}

int as_info_parse_udf_list(const char *v, size_t len, struct as_udf_info **out, size_t *n,
                           struct err *e)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0, i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && v[j] != ';')
            j++;
        const char *ent = v + i;
        size_t el = j - i;
        i = j + 1;
        const char *x = NULL;
        size_t xl = 0;
        if (el == 0 || !as_info_kv(ent, el, ',', "filename", &x, &xl))
            continue;
        struct as_udf_info *u = list_slot(out, n, &cap, sizeof **out);
        if (!u)
            return list_fail(out, n, e);
        (*n)++;
        span_copy(u->name, sizeof u->name, x, xl);
        if (as_info_kv(ent, el, ',', "hash", &x, &xl))
            span_copy(u->hash, sizeof u->hash, x, xl);
        if (as_info_kv(ent, el, ',', "type", &x, &xl))
            span_copy(u->type, sizeof u->type, x, xl);
    }
    return 0;
}

int as_info_parse_udf_get(const char *v, size_t len, uint8_t **content, size_t *content_len,
                          struct err *e)
{
    *content = NULL;
    *content_len = 0;
    int code;
    const char *msg;
    size_t ml;
    if (as_info_value_error(v, len, &code, &msg, &ml))
        return err_set(e, ERR_NOT_FOUND, "udf-get: %.*s", (int)(ml > 200 ? 200 : ml), msg);
    const char *c;
    size_t cl;
    if (!as_info_kv(v, len, ';', "content", &c, &cl))
        return err_set(e, ERR_INVALID, "udf-get: reply without content=");
    uint8_t *buf = malloc(cl / 4 * 3 + 1);
    if (!buf)
        return err_set(e, ERR_NOMEM, "out of memory");
    long dl = as_b64_decode(c, cl, buf);
    if (dl < 0) {
        free(buf);
        return err_set(e, ERR_INVALID, "udf-get: content is not valid base64");
    }
    *content = buf;
    *content_len = (size_t)dl;
    return 0;
}

/* -- peers -- */

struct cur {
    const char *p, *end;
};

static bool cur_eat(struct cur *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* Token up to one of the stop characters (not consumed). */
static void cur_token(struct cur *c, const char *stops, const char **t, size_t *tl)
{
    const char *s = c->p;
    while (c->p < c->end && !strchr(stops, *c->p))
        c->p++;
    *t = s;
    *tl = (size_t)(c->p - s);
}

static int parse_addr(const char *t, size_t tl, uint16_t default_port, char *host, size_t hcap,
                      uint16_t *port)
{
    const char *hs = t, *ps = NULL;
    size_t hl = tl;
    if (tl && t[0] == '[') { /* [v6]:port */
        const char *rb = memchr(t, ']', tl);
        if (!rb)
            return -1;
        hs = t + 1;
        hl = (size_t)(rb - hs);
        if (rb + 1 < t + tl) {
            if (rb[1] != ':')
                return -1;
            ps = rb + 2;
        }
    } else {
        const char *colon = memchr(t, ':', tl);
        if (colon) {
            if (memchr(colon + 1, ':', (size_t)(t + tl - colon - 1)))
                return -1; /* bare IPv6 without brackets is ambiguous */
            hl = (size_t)(colon - t);
            ps = colon + 1;
        }
    }
    if (hl == 0 || hl >= hcap)
        return -1;
    memcpy(host, hs, hl);
    host[hl] = 0;
    *port = default_port;
    if (ps) {
        uint64_t p;
        if (!as_info_parse_u64(ps, (size_t)(t + tl - ps), &p) || p == 0 || p > 65535)
            return -1;
        *port = (uint16_t)p;
    }
    return 0;
}

int as_info_parse_peers(const char *v, size_t len, int64_t *generation, struct as_peer **out,
                        size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    struct cur c = { v, v + len };
    const char *t = NULL;
    size_t tl = 0;
    cur_token(&c, ",", &t, &tl);
    if (!as_info_parse_i64(t, tl, generation) || !cur_eat(&c, ','))
        goto bad;
    cur_token(&c, ",", &t, &tl);
    uint64_t dp = 3000;
    if (tl && (!as_info_parse_u64(t, tl, &dp) || dp == 0 || dp > 65535))
        goto bad;
    if (!cur_eat(&c, ',') || !cur_eat(&c, '['))
        goto bad;
    size_t cap = 0;
    if (cur_eat(&c, ']')) {
        if (c.p != c.end)
            goto bad;
        return 0;
    }
    for (;;) {
        if (!cur_eat(&c, '['))
            goto bad;
        struct as_peer *p = list_slot(out, n, &cap, sizeof **out);
        if (!p)
            return list_fail(out, n, e);
        cur_token(&c, ",]", &t, &tl);
        if (tl == 0 || tl >= sizeof p->node)
            goto bad;
        span_copy(p->node, sizeof p->node, t, tl);
        if (!cur_eat(&c, ','))
            goto bad;
        cur_token(&c, ",]", &t, &tl);
        span_copy(p->tls_name, sizeof p->tls_name, t, tl);
        if (!cur_eat(&c, ','))
            goto bad;
        bool listed = false;
        if (cur_eat(&c, '[')) {
            listed = true;
            if (!cur_eat(&c, ']')) {
                for (;;) {
                    /* an address: "[v6]:port" or "host:port" up to ',' or ']' outside brackets */
                    const char *s = c.p;
                    if (c.p < c.end && *c.p == '[') {
                        const char *rb = memchr(c.p, ']', (size_t)(c.end - c.p));
                        if (!rb)
                            goto bad;
                        c.p = rb + 1;
                    }
                    while (c.p < c.end && *c.p != ',' && *c.p != ']')
                        c.p++;
                    t = s;
                    tl = (size_t)(c.p - s);
                    if (p->n_addrs < AS_PEER_MAX_ADDRS) {
                        if (parse_addr(t, tl, (uint16_t)dp, p->addrs[p->n_addrs].host,
                                       sizeof p->addrs[0].host, &p->addrs[p->n_addrs].port))
                            goto bad;
                        p->n_addrs++;
                    }
                    if (cur_eat(&c, ']'))
                        break;
                    if (!cur_eat(&c, ','))
                        goto bad;
                }
            }
        }
        if (!cur_eat(&c, ']'))
            goto bad;
        if (listed) /* "[id,,]" = node left (delta replies): not a peer */
            (*n)++;
        if (cur_eat(&c, ']'))
            break;
        if (!cur_eat(&c, ','))
            goto bad;
    }
    if (c.p != c.end)
        goto bad;
    return 0;
bad:
    free(*out);
    *out = NULL;
    *n = 0;
    return err_set(e, ERR_INVALID, "peers: cannot parse '%.*s'", (int)(len > 200 ? 200 : len), v);
}

int as_info_parse_services(const char *v, size_t len, struct as_peer **out, size_t *n,
                           struct err *e)
{
    *out = NULL;
    *n = 0;
    size_t i = 0, cap = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && v[j] != ';')
            j++;
        if (j > i) {
            struct as_peer *p = list_slot(out, n, &cap, sizeof **out);
            if (!p)
                return list_fail(out, n, e);
            if (parse_addr(v + i, j - i, 3000, p->addrs[0].host, sizeof p->addrs[0].host,
                           &p->addrs[0].port)) {
                free(*out);
                *out = NULL;
                *n = 0;
                return err_set(e, ERR_INVALID, "services: cannot parse '%.*s'", (int)(j - i), v + i);
            }
            p->n_addrs = 1;
            (*n)++;
        }
        i = j + 1;
    }
    return 0;
}

/* -- replicas -- */

int as_info_parse_replicas(const char *v, size_t len, as_replicas_fn fn, void *ctx, struct err *e)
{
    uint8_t bitmap[AS_PARTITIONS / 8 + 4];
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && v[j] != ';')
            j++;
        const char *ent = v + i;
        size_t el = j - i;
        i = j + 1;
        if (el == 0)
            continue;
        const char *colon = memchr(ent, ':', el);
        if (!colon || colon == ent || (size_t)(colon - ent) > AS_NAMESPACE_NAME_MAX)
            return err_set(e, ERR_INVALID, "replicas: bad entry '%.*s'", (int)(el > 60 ? 60 : el), ent);
        char ns[AS_NAMESPACE_NAME_MAX + 1];
        span_copy(ns, sizeof ns, ent, (size_t)(colon - ent));
        const char *body = colon + 1;
        size_t bl = el - (size_t)(body - ent);
        /* tokens */
        const char *tok[2 + AS_MAX_REPLICAS_PARSE];
        size_t tlen[2 + AS_MAX_REPLICAS_PARSE];
        size_t nt = 0, k = 0;
        while (k <= bl) {
            size_t m = k;
            while (m < bl && body[m] != ',')
                m++;
            if (nt < sizeof tok / sizeof tok[0]) {
                tok[nt] = body + k;
                tlen[nt] = m - k;
            }
            nt++;
            k = m + 1;
        }
        uint64_t a = 0, b = 0;
        size_t first_map, n_cols;
        uint32_t regime = 0;
        if (nt == 1) {
            first_map = 0;
            n_cols = 1;
        } else if (nt >= 3 && as_info_parse_u64(tok[0], tlen[0], &a) &&
                   as_info_parse_u64(tok[1], tlen[1], &b) && nt == 2 + b) {
            regime = (uint32_t)a;
            first_map = 2;
            n_cols = (size_t)b;
        } else if (nt >= 2 && as_info_parse_u64(tok[0], tlen[0], &a) && nt == 1 + a) {
            first_map = 1;
            n_cols = (size_t)a;
        } else {
            return err_set(e, ERR_INVALID, "replicas: bad value for namespace %s", ns);
        }
        for (size_t col = 0; col < n_cols; col++) {
            size_t ti = first_map + col;
            if (ti >= sizeof tok / sizeof tok[0])
                break; /* more columns than we keep */
            if (tlen[ti] > (AS_PARTITIONS / 8 + 2) / 3 * 4 ||
                as_b64_decode(tok[ti], tlen[ti], bitmap) != AS_PARTITIONS / 8)
                return err_set(e, ERR_INVALID, "replicas: bad bitmap for %s column %zu", ns, col);
            int rc = fn(ctx, ns, regime, (unsigned)col, (unsigned)n_cols, bitmap);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- node helpers --------------------------------------------------------------------------- */

int as_info_node_value(struct as_node *n, const char *cmd, char **value, size_t *len,
                       struct err *e)
{
    *value = NULL;
    if (len)
        *len = 0;
    struct as_buf reply;
    as_buf_init(&reply);
    int rc = as_node_info(n, cmd, &reply, e);
    const char *v = NULL;
    size_t vl = 0;
    if (!rc) {
        /* the echo is the whole command text up to its '\n' (udf-put commands are long) */
        char *name = strndup(cmd, strcspn(cmd, "\n"));
        if (!name)
            rc = err_set(e, ERR_NOMEM, "out of memory");
        else if (!as_info_reply_value(&reply, name, &v, &vl))
            rc = err_set(e, ERR_INVALID, "node %s: no reply line for '%.60s'", as_node_name(n), name);
        else
            rc = as_info_check(as_node_name(n), name, v, vl, NULL, e);
        free(name);
    }
    if (!rc) {
        *value = strndup(v, vl);
        if (!*value)
            rc = err_set(e, ERR_NOMEM, "out of memory");
        else if (len)
            *len = vl;
    }
    as_buf_free(&reply);
    return rc;
}

int as_info_namespaces(struct as_node *n, struct as_strv *out, struct err *e)
{
    char *v;
    size_t vl = 0;
    out->v = NULL;
    out->n = 0;
    int rc = as_info_node_value(n, "namespaces", &v, &vl, e);
    if (rc)
        return rc;
    rc = as_strv_split(v, vl, ';', out, e);
    free(v);
    return rc;
}

static int ns_name_ok(const char *ns, struct err *e)
{
    if (!ns || !*ns || strlen(ns) > AS_NAMESPACE_NAME_MAX || !info_safe(ns) || strchr(ns, '/'))
        return err_set(e, ERR_INVALID, "invalid namespace name '%s'", ns ? ns : "");
    return 0;
}

int as_info_namespace(struct as_node *n, const char *ns, struct as_ns_info *out, struct err *e)
{
    int rc = ns_name_ok(ns, e);
    if (rc)
        return rc;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "namespace/%s", ns);
    char *v;
    size_t vl = 0;
    rc = as_info_node_value(n, cmd, &v, &vl, e);
    if (rc)
        return rc;
    rc = as_info_parse_namespace(v, vl, out, e);
    free(v);
    if (!rc && !out->found)
        rc = err_set(e, ERR_NOT_FOUND, "node %s: namespace %s not found", as_node_name(n), ns);
    return rc;
}

int as_info_sets(struct as_node *n, const char *ns, struct as_set_info **out, size_t *count,
                 struct err *e)
{
    *out = NULL;
    *count = 0;
    int rc = ns_name_ok(ns, e);
    if (rc)
        return rc;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "sets/%s", ns);
    char *v;
    size_t vl = 0;
    rc = as_info_node_value(n, cmd, &v, &vl, e);
    if (rc)
        return rc;
    rc = as_info_parse_sets(v, vl, out, count, e);
    free(v);
    return rc;
}

int as_info_sindex_list(struct as_node *n, const char *ns, struct as_sindex_info **out,
                        size_t *count, struct err *e)
{
    *out = NULL;
    *count = 0;
    int rc = ns_name_ok(ns, e);
    if (rc)
        return rc;
    char cmd[80];
    snprintf(cmd, sizeof cmd, "sindex-list:ns=%s;b64=true", ns);
    struct as_buf reply;
    as_buf_init(&reply);
    rc = as_node_info(n, cmd, &reply, e);
    const char *v = NULL;
    size_t vl = 0;
    if (!rc && !as_info_reply_value(&reply, cmd, &v, &vl))
        rc = err_set(e, ERR_INVALID, "node %s: no reply line for %s", as_node_name(n), cmd);
    if (!rc)
        rc = as_info_parse_sindex_list(v, vl, out, count, e);
    as_buf_free(&reply);
    return rc;
}

int as_info_sindex_create(struct as_node *n, const struct as_sindex_info *s, struct err *e)
{
    char cmd[2048];
    int rc = as_info_sindex_create_cmd(s, cmd, sizeof cmd, e);
    if (rc)
        return rc;
    char *v;
    rc = as_info_node_value(n, cmd, &v, NULL, e);
    if (rc)
        return rc;
    LOG_D("as", "node %s: %s -> %s", as_node_name(n), cmd, v);
    free(v);
    return 0;
}

int as_info_udf_list(struct as_node *n, struct as_udf_info **out, size_t *count, struct err *e)
{
    char *v;
    size_t vl = 0;
    *out = NULL;
    *count = 0;
    int rc = as_info_node_value(n, "udf-list", &v, &vl, e);
    if (rc)
        return rc;
    rc = as_info_parse_udf_list(v, vl, out, count, e);
    free(v);
    return rc;
}

int as_info_udf_get(struct as_node *n, const char *name, uint8_t **content, size_t *len,
                    struct err *e)
{
    *content = NULL;
    *len = 0;
    if (!name || !*name || !info_safe(name) || strlen(name) > 255)
        return err_set(e, ERR_INVALID, "invalid UDF file name");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "udf-get:filename=%s;", name); /* C client form, trailing ';' */
    struct as_buf reply;
    as_buf_init(&reply);
    int rc = as_node_info(n, cmd, &reply, e);
    const char *v = NULL;
    size_t vl = 0;
    if (!rc && !as_info_reply_value(&reply, cmd, &v, &vl))
        rc = err_set(e, ERR_INVALID, "node %s: no reply line for %s", as_node_name(n), cmd);
    if (!rc)
        rc = as_info_parse_udf_get(v, vl, content, len, e);
    as_buf_free(&reply);
    return rc;
}

int as_info_udf_put(struct as_node *n, const char *name, const uint8_t *content, size_t len,
                    struct err *e)
{
    if (!name || !*name || !info_safe(name) || strlen(name) > 255)
        return err_set(e, ERR_INVALID, "invalid UDF file name");
    size_t b64 = (len + 2) / 3 * 4;
    size_t cap = b64 + strlen(name) + 100;
    char *cmd = malloc(cap);
    if (!cmd)
        return err_set(e, ERR_NOMEM, "out of memory");
    int k = snprintf(cmd, cap, "udf-put:filename=%s;content=", name);
    size_t pos = (size_t)k;
    pos += as_b64_encode(content, len, cmd + pos);
    snprintf(cmd + pos, cap - pos, ";content-len=%zu;udf-type=LUA;", b64);
    char *v;
    int rc = as_info_node_value(n, cmd, &v, NULL, e);
    free(cmd);
    if (rc)
        return rc;
    free(v);
    return 0;
}

int as_info_get_config(struct as_node *n, const char *context, const char *id, char **value,
                       struct err *e)
{
    *value = NULL;
    if (!context || !info_safe(context) || (id && !info_safe(id)))
        return err_set(e, ERR_INVALID, "get-config: invalid context");
    char cmd[200];
    if (id && *id)
        snprintf(cmd, sizeof cmd, "get-config:context=%s;id=%s", context, id);
    else
        snprintf(cmd, sizeof cmd, "get-config:context=%s", context);
    return as_info_node_value(n, cmd, value, NULL, e);
}

static int node_str(struct as_node *n, const char *cmd, char *out, size_t cap, struct err *e)
{
    char *v;
    size_t vl = 0;
    int rc = as_info_node_value(n, cmd, &v, &vl, e);
    if (rc)
        return rc;
    span_copy(out, cap, v, vl);
    free(v);
    return 0;
}

int as_info_build(struct as_node *n, char *out, size_t cap, struct err *e)
{
    return node_str(n, "build", out, cap, e);
}

int as_info_node_id(struct as_node *n, char *out, size_t cap, struct err *e)
{
    return node_str(n, "node", out, cap, e);
}

int as_info_partition_generation(struct as_node *n, int64_t *out, struct err *e)
{
    char buf[32];
    int rc = node_str(n, "partition-generation", buf, sizeof buf, e);
    if (rc)
        return rc;
    if (!as_info_parse_i64(buf, strlen(buf), out))
        return err_set(e, ERR_INVALID, "node %s: bad partition-generation '%s'", as_node_name(n), buf);
    return 0;
}
