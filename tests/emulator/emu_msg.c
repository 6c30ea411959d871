/*
 * emu_msg.c - the emulator's AS_MSG (type 3) commands: single-record reads, writes, deletes
 * and operate-style ops; batch-index requests; partition scans with the PARTITION_DONE
 * protocol.
 *
 * Result codes and their order follow CE 8.1.2 (shared/wire/g-errors, f1-f6) and the server's
 * write path: namespace (20), durable delete (25), TTL range (4), bin names (21) and values
 * (4, 1, 160); then, under the namespace lock: must-exist (2), create-only (5, reply carries the
 * stored generation), generation EQ/GT against the stored generation (0 for a new record) (3),
 * set name of an existing record (4), stored key (19), filter (27), record size (13).
 *
 * Scans stream records partition by partition (descending digest inside a partition) in
 * messages of about `chunk_size` bytes, report partitions this node does not hold (or that a
 * fault marks unavailable) with a PARTITION_DONE header (result 11, generation = pid), and end
 * with a LAST header in a message of its own. Rejections are one header without LAST.
 */
#include "emu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NFIELD 46

struct fields {
    bool has[NFIELD];
    struct as_field f[NFIELD];
};

static void collect_fields(const struct as_msg_view *v, struct fields *fs)
{
    memset(fs->has, 0, sizeof fs->has);
    struct as_iter it;
    struct as_field f;
    as_msg_fields(v, &it);
    while (as_field_next(&it, &f)) {
        if (f.type < NFIELD && !fs->has[f.type]) {
            fs->has[f.type] = true;
            fs->f[f.type] = f;
        }
    }
}

/* One single-record request, from a plain message or from a batch row. */
struct req {
    struct emu_ns *ns;
    const uint8_t *set;
    uint32_t set_len;
    bool has_set;
    const uint8_t *key;
    uint32_t key_len;
    bool has_key;
    const uint8_t *digest;
    uint8_t info1, info2, info3;
    uint32_t generation;
    uint32_t ttl;
    const uint8_t *filter;
    uint32_t filter_len;
    const uint8_t *ops;
    size_t ops_len;
    unsigned n_ops;
};

/* Sleeps in slices so that a shutdown is not held up by throttling or a delay fault. */
static void sleep_ms(long ms)
{
    while (ms > 0 && !atomic_load(&emu_stopping)) {
        long step = ms < 50 ? ms : 50;
        struct timespec ts = { 0, step * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        ms -= step;
    }
}

static void put_header(struct as_buf *o, uint8_t rc, uint8_t info1, uint8_t info3, uint32_t gen,
                       uint32_t ttl, uint32_t tt, uint16_t nf, uint16_t nops)
{
    struct as_msg_header h = { .info1 = info1, .info3 = info3, .result_code = rc, .generation = gen,
                               .record_ttl = ttl, .transaction_ttl = tt, .n_fields = nf, .n_ops = nops };
    as_msg_header_put(o, &h);
}

/* Sends one complete type-3 frame holding a single header. */
static int send_header(struct emu_conn *conn, uint8_t rc, uint8_t info3, uint32_t gen)
{
    as_buf_reset(&conn->out);
    size_t off = as_proto_begin(&conn->out, AS_PROTO_MSG);
    put_header(&conn->out, rc, 0, info3, gen, 0, 0, 0, 0);
    struct err e;
    if (as_proto_end(&conn->out, off, &e) != 0)
        return -1;
    return emu_conn_send(conn, conn->out.data, conn->out.len);
}

static int flush_frame(struct emu_conn *conn, size_t off)
{
    struct err e;
    if (as_proto_end(&conn->out, off, &e) != 0)
        return -1;
    int rc = emu_conn_send(conn, conn->out.data, conn->out.len);
    as_buf_reset(&conn->out);
    return rc;
}

/* ---- value validation ------------------------------------------------------------------------- */

static bool geo_type(const uint8_t *js, uint32_t len, const char **type)
{
    static const char *const types[] = { "Point", "Polygon", "MultiPolygon", "AeroCircle" };
    uint32_t i = 0;
    while (i < len && (js[i] == ' ' || js[i] == '\t' || js[i] == '\n' || js[i] == '\r'))
        i++;
    if (i >= len || js[i] != '{')
        return false;
    for (; i + 6 <= len; i++) {
        if (memcmp(js + i, "\"type\"", 6) != 0)
            continue;
        uint32_t j = i + 6;
        while (j < len && (js[j] == ' ' || js[j] == ':'))
            j++;
        if (j >= len || js[j] != '"')
            return false;
        j++;
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            size_t tl = strlen(types[t]);
            if (j + tl < len && memcmp(js + j, types[t], tl) == 0 && js[j + tl] == '"') {
                *type = types[t];
                return true;
            }
        }
        return false;
    }
    return false;
}

/* Result code for a WRITE op's value (0 = fine). */
static int check_write_value(const struct as_op *op)
{
    switch (op->particle_type) {
    case AS_PARTICLE_NULL:
        return 0;
    case AS_PARTICLE_INTEGER:
        return (op->value_len == 8 || op->value_len == 4 || op->value_len == 2 || op->value_len == 1)
                   ? 0 : AS_ERR_PARAMETER;
    case AS_PARTICLE_FLOAT:
        return op->value_len == 8 ? 0 : AS_ERR_PARAMETER;
    case AS_PARTICLE_BOOL:
        return (op->value_len == 1 && op->value[0] <= 1) ? 0 : AS_ERR_PARAMETER;
    case AS_PARTICLE_STRING: case AS_PARTICLE_BLOB: case AS_PARTICLE_JAVA_BLOB:
    case AS_PARTICLE_CSHARP_BLOB: case AS_PARTICLE_PYTHON_BLOB: case AS_PARTICLE_RUBY_BLOB:
    case AS_PARTICLE_PHP_BLOB: case AS_PARTICLE_ERLANG_BLOB: case AS_PARTICLE_HLL:
        return 0;
    case AS_PARTICLE_MAP: case AS_PARTICLE_LIST:
        return emu_cdt_validate(op->particle_type, op->value, op->value_len);
    case AS_PARTICLE_GEOJSON: {
        const uint8_t *js;
        uint32_t jl;
        const char *t;
        if (as_particle_geojson_text(op->value, op->value_len, &js, &jl) != 0 || !geo_type(js, jl, &t))
            return AS_ERR_GEO_INVALID_GEOJSON;
        return 0;
    }
    default:
        return AS_ERR_PARAMETER;
    }
}

static bool key_valid(const uint8_t *k, uint32_t len)
{
    if (len < 1)
        return false;
    switch (k[0]) {
    case AS_PARTICLE_INTEGER: case AS_PARTICLE_FLOAT:
        return len == 9;
    case AS_PARTICLE_STRING: case AS_PARTICLE_BLOB: case AS_PARTICLE_JAVA_BLOB:
    case AS_PARTICLE_CSHARP_BLOB: case AS_PARTICLE_PYTHON_BLOB: case AS_PARTICLE_RUBY_BLOB:
    case AS_PARTICLE_PHP_BLOB: case AS_PARTICLE_ERLANG_BLOB:
        return true;
    default:
        return false;
    }
}

/* ---- working bin set for writes ---------------------------------------------------------------- */

struct wbin {
    uint8_t name_len;
    char name[256];
    uint8_t ptype;
    const uint8_t *val;
    uint32_t len;
    uint8_t *owned; /* value computed here (INCR, APPEND, GeoJSON cells) */
};

struct wset {
    struct wbin *b;
    unsigned n, cap;
};

static void wset_free(struct wset *w)
{
    for (unsigned i = 0; i < w->n; i++)
        free(w->b[i].owned);
    free(w->b);
}

static struct wbin *wset_find(struct wset *w, const uint8_t *name, uint8_t nl)
{
    for (unsigned i = 0; i < w->n; i++)
        if (w->b[i].name_len == nl && memcmp(w->b[i].name, name, nl) == 0)
            return &w->b[i];
    return NULL;
}

static struct wbin *wset_get(struct wset *w, const uint8_t *name, uint8_t nl)
{
    struct wbin *b = wset_find(w, name, nl);
    if (b)
        return b;
    if (w->n == w->cap) {
        unsigned cap = w->cap ? w->cap * 2 : 16;
        struct wbin *n = realloc(w->b, cap * sizeof *n);
        if (!n)
            return NULL;
        w->b = n;
        w->cap = cap;
    }
    b = &w->b[w->n++];
    memset(b, 0, sizeof *b);
    b->name_len = nl;
    memcpy(b->name, name, nl);
    return b;
}

static void wbin_set(struct wbin *b, uint8_t ptype, const uint8_t *v, uint32_t len, uint8_t *owned)
{
    free(b->owned);
    b->ptype = ptype;
    b->val = v;
    b->len = len;
    b->owned = owned;
}

static void wset_remove(struct wset *w, struct wbin *b)
{
    free(b->owned);
    unsigned i = (unsigned)(b - w->b);
    memmove(&w->b[i], &w->b[i + 1], (w->n - i - 1) * sizeof *b);
    w->n--;
}

/* The server stores GeoJSON with its cell index: points get 1 cell, regions flag 1 and several. */
uint8_t *emu_geo_with_cells(const uint8_t *js, uint32_t jl, uint32_t *out_len)
{
    const char *type = NULL;
    if (!geo_type(js, jl, &type))
        return NULL;
    bool point = strcmp(type, "Point") == 0;
    unsigned ncells = point ? 1 : strcmp(type, "AeroCircle") == 0 ? 12 : 9;
    uint8_t *p = malloc(3 + 8 * ncells + jl);
    if (!p)
        return NULL;
    p[0] = point ? 0 : 1;
    p[1] = (uint8_t)(ncells >> 8);
    p[2] = (uint8_t)ncells;
    uint64_t h = 1469598103934665603ull; /* fake cell ids derived from the text */
    for (uint32_t i = 0; i < jl; i++)
        h = (h ^ js[i]) * 1099511628211ull;
    for (unsigned c = 0; c < ncells; c++) {
        uint64_t cell = (h + c) | 1;
        for (int i = 0; i < 8; i++)
            p[3 + 8 * c + i] = (uint8_t)(cell >> (56 - 8 * i));
    }
    memcpy(p + 3 + 8 * ncells, js, jl);
    *out_len = 3 + 8 * ncells + jl;
    return p;
}

static bool is_blobish(uint8_t t)
{
    return t == AS_PARTICLE_BLOB || (t >= AS_PARTICLE_JAVA_BLOB && t <= AS_PARTICLE_ERLANG_BLOB);
}

/* Applies one modify op to the working set. Returns a result code. */
static int apply_op(struct wset *w, const struct as_op *op)
{
    struct wbin *b;
    switch (op->op_type) {
    case AS_OP_WRITE:
        if (op->particle_type == AS_PARTICLE_NULL) {
            b = wset_find(w, op->name, op->name_len);
            if (b)
                wset_remove(w, b);
            return 0;
        }
        if (!(b = wset_get(w, op->name, op->name_len)))
            return AS_ERR_UNKNOWN;
        if (op->particle_type == AS_PARTICLE_GEOJSON) {
            const uint8_t *js;
            uint32_t jl, gl;
            uint8_t *g = as_particle_geojson_text(op->value, op->value_len, &js, &jl) == 0
                             ? emu_geo_with_cells(js, jl, &gl) : NULL;
            if (!g)
                return AS_ERR_GEO_INVALID_GEOJSON;
            wbin_set(b, op->particle_type, g, gl, g);
        } else if (op->particle_type == AS_PARTICLE_INTEGER && op->value_len != 8) {
            int64_t v;
            as_particle_int(op->value, op->value_len, &v);
            uint8_t *p = malloc(8);
            if (!p)
                return AS_ERR_UNKNOWN;
            for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
            wbin_set(b, op->particle_type, p, 8, p);
        } else if (op->particle_type == AS_PARTICLE_MAP) {
            uint8_t *m;
            size_t ml;
            if (emu_map_normalize(op->value, op->value_len, &m, &ml) == 0)
                wbin_set(b, op->particle_type, m, (uint32_t)ml, m);
            else
                wbin_set(b, op->particle_type, op->value, op->value_len, NULL);
        } else {
            wbin_set(b, op->particle_type, op->value, op->value_len, NULL);
        }
        return 0;
    case AS_OP_INCR: {
        if (op->particle_type != AS_PARTICLE_INTEGER && op->particle_type != AS_PARTICLE_FLOAT)
            return AS_ERR_PARAMETER;
        b = wset_find(w, op->name, op->name_len);
        if (b && b->ptype != op->particle_type)
            return AS_ERR_INCOMPATIBLE_TYPE;
        uint8_t *p = malloc(8);
        if (!p)
            return AS_ERR_UNKNOWN;
        if (op->particle_type == AS_PARTICLE_INTEGER) {
            int64_t d, cur = 0;
            if (as_particle_int(op->value, op->value_len, &d) != 0) {
                free(p);
                return AS_ERR_PARAMETER;
            }
            if (b)
                as_particle_int(b->val, b->len, &cur);
            uint64_t r = (uint64_t)cur + (uint64_t)d;
            for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(r >> (56 - 8 * i));
        } else {
            double d, cur = 0;
            if (as_particle_double(op->value, op->value_len, &d) != 0) {
                free(p);
                return AS_ERR_PARAMETER;
            }
            if (b)
                as_particle_double(b->val, b->len, &cur);
            cur += d;
            uint64_t u;
            memcpy(&u, &cur, 8);
            for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(u >> (56 - 8 * i));
        }
        if (!b && !(b = wset_get(w, op->name, op->name_len))) {
            free(p);
            return AS_ERR_UNKNOWN;
        }
        wbin_set(b, op->particle_type, p, 8, p);
        return 0;
    }
    case AS_OP_APPEND:
    case AS_OP_PREPEND: {
        if (op->particle_type != AS_PARTICLE_STRING && !is_blobish(op->particle_type))
            return AS_ERR_PARAMETER;
        b = wset_find(w, op->name, op->name_len);
        if (b && b->ptype != op->particle_type)
            return AS_ERR_INCOMPATIBLE_TYPE;
        uint32_t old = b ? b->len : 0;
        uint8_t *p = malloc((size_t)old + op->value_len + 1);
        if (!p)
            return AS_ERR_UNKNOWN;
        if (op->op_type == AS_OP_APPEND) {
            if (old)
                memcpy(p, b->val, old);
            memcpy(p + old, op->value, op->value_len);
        } else {
            memcpy(p, op->value, op->value_len);
            if (old)
                memcpy(p + op->value_len, b->val, old);
        }
        if (!b && !(b = wset_get(w, op->name, op->name_len))) {
            free(p);
            return AS_ERR_UNKNOWN;
        }
        wbin_set(b, op->particle_type, p, old + op->value_len, p);
        return 0;
    }
    case AS_OP_DELETE_ALL:
        while (w->n)
            wset_remove(w, &w->b[w->n - 1]);
        return 0;
    case AS_OP_TOUCH:
    case AS_OP_READ:
        return 0;
    default:
        return AS_ERR_PARAMETER;
    }
}

/* ---- the single-record engine -------------------------------------------------------------------- */

static void put_bins_all(struct as_buf *o, const struct emu_rec *r)
{
    as_buf_append(o, r->bins, r->bins_len);
}

/* Appends an error/short reply. */
static int reply_rc(struct as_buf *o, int rc, uint32_t gen, uint32_t index)
{
    put_header(o, (uint8_t)rc, 0, 0, gen, 0, index, 0, 0);
    return rc;
}

static bool same_set(const struct emu_ns *ns, const struct emu_rec *r, const struct req *q)
{
    const char *name = emu_set_name(ns, r->set_id);
    return strlen(name) == q->set_len && memcmp(name, q->set, q->set_len) == 0;
}

static uint32_t void_time_for(const struct req *q, const struct emu_ns *ns, const struct emu_rec *old,
                              uint32_t now)
{
    uint32_t ttl = q->ttl;
    if (ttl == AS_TTL_NEVER_EXPIRE)
        return 0;
    if (ttl == AS_TTL_DONT_UPDATE) {
        if (old)
            return old->void_time;
        ttl = AS_TTL_NAMESPACE_DEFAULT;
    }
    if (ttl == AS_TTL_NAMESPACE_DEFAULT)
        ttl = ns->default_ttl;
    return ttl == 0 ? 0 : now + ttl;
}

static int do_read(struct emu_cluster *c, const struct req *q, struct as_buf *o, uint32_t index)
{
    struct emu_ns *ns = q->ns;
    uint32_t now = emu_now_cl();
    atomic_fetch_add(&c->n_reads, 1);
    struct emu_exp *fx = NULL;
    if (q->filter) {
        const char *why;
        if (!(fx = emu_exp_compile(q->filter, q->filter_len, &why)))
            return reply_rc(o, AS_ERR_PARAMETER, 0, index);
    }
    pthread_rwlock_rdlock(&ns->lock);
    struct emu_rec *r = emu_rec_find(ns, q->digest);
    int rc = 0;
    if (!r || emu_rec_expired(r, now))
        rc = AS_ERR_NOT_FOUND;
    else if (fx && !emu_exp_match(fx, ns, r, now))
        rc = AS_ERR_FILTERED_OUT;
    if (rc) {
        pthread_rwlock_unlock(&ns->lock);
        emu_exp_free(fx);
        return reply_rc(o, rc, 0, index);
    }
    size_t hdr = o->len;
    put_header(o, 0, 0, 0, r->generation, r->void_time, index, 0, 0);
    unsigned nops = 0;
    if (q->info1 & AS_INFO1_NOBINDATA) {
        /* metadata only */
    } else if ((q->info1 & AS_INFO1_GET_ALL) || q->n_ops == 0) {
        put_bins_all(o, r);
        nops = r->n_bins;
    } else {
        struct as_iter it = { q->ops, q->ops + q->ops_len, q->n_ops };
        struct as_op op, bin;
        while (as_op_next(&it, &op)) {
            if (op.op_type == AS_OP_READ && emu_rec_bin(r, op.name, op.name_len, &bin)) {
                as_op_put(o, AS_OP_READ, bin.particle_type, (const char *)bin.name, bin.name_len,
                          bin.value, bin.value_len);
                nops++;
            }
        }
    }
    pthread_rwlock_unlock(&ns->lock);
    emu_exp_free(fx);
    as_msg_set_counts(o, hdr, 0, (uint16_t)nops);
    return 0;
}

static int do_write(struct emu_cluster *c, const struct req *q, struct as_buf *o, uint32_t index)
{
    struct emu_ns *ns = q->ns;
    bool is_delete = (q->info2 & AS_INFO2_DELETE) != 0;
    atomic_fetch_add(&c->n_writes, 1);
    if (q->info2 & AS_INFO2_DURABLE_DELETE)
        return reply_rc(o, AS_ERR_ENTERPRISE_ONLY, 0, index);
    if (q->ttl != AS_TTL_NEVER_EXPIRE && q->ttl != AS_TTL_DONT_UPDATE && q->ttl > AS_TTL_MAX)
        return reply_rc(o, AS_ERR_PARAMETER, 0, index);
    if (q->has_key && !key_valid(q->key, q->key_len))
        return reply_rc(o, AS_ERR_PARAMETER, 0, index);
    if (q->has_set && q->set_len > AS_SET_NAME_MAX)
        return reply_rc(o, AS_ERR_PARAMETER, 0, index);
    struct as_iter it = { q->ops, q->ops + q->ops_len, q->n_ops };
    struct as_op op;
    bool touch = false;
    while (as_op_next(&it, &op)) {
        if (op.op_type != AS_OP_DELETE_ALL && op.op_type != AS_OP_TOUCH && op.name_len > AS_BIN_NAME_MAX)
            return reply_rc(o, AS_ERR_BIN_NAME, 0, index);
        if (op.op_type == AS_OP_WRITE) {
            int vrc = check_write_value(&op);
            if (vrc)
                return reply_rc(o, vrc, 0, index);
        } else if (op.op_type == AS_OP_TOUCH) {
            touch = true;
        } else if (op.op_type != AS_OP_READ && op.op_type != AS_OP_INCR &&
                   op.op_type != AS_OP_APPEND && op.op_type != AS_OP_PREPEND &&
                   op.op_type != AS_OP_DELETE_ALL) {
            if (c->verbose)
                fprintf(stderr, "emulator: op type %u not supported\n", op.op_type);
            return reply_rc(o, AS_ERR_PARAMETER, 0, index);
        }
    }
    struct emu_exp *fx = NULL;
    if (q->filter) {
        const char *why;
        if (!(fx = emu_exp_compile(q->filter, q->filter_len, &why)))
            return reply_rc(o, AS_ERR_PARAMETER, 0, index);
    }

    uint32_t now = emu_now_cl();
    int rc = 0;
    uint32_t err_gen = 0;
    struct wset w = { 0 };
    pthread_rwlock_wrlock(&ns->lock);
    struct emu_rec *old = emu_rec_find(ns, q->digest);
    if (old && emu_rec_expired(old, now)) {
        emu_rec_remove(ns, q->digest);
        old = NULL;
    }
    uint32_t stored_gen = old ? old->generation : 0;
    if (!old && (is_delete || touch || (q->info3 & (AS_INFO3_UPDATE_ONLY | AS_INFO3_REPLACE_ONLY)))) {
        rc = AS_ERR_NOT_FOUND;
    } else if (old && !is_delete && (q->info2 & AS_INFO2_CREATE_ONLY)) {
        rc = AS_ERR_RECORD_EXISTS;
    } else if (((q->info2 & AS_INFO2_GENERATION) && q->generation != stored_gen) ||
               (!(q->info2 & AS_INFO2_GENERATION) && (q->info2 & AS_INFO2_GENERATION_GT) &&
                q->generation <= stored_gen)) {
        rc = AS_ERR_GENERATION;
    } else if (old && q->has_set && q->set_len > 0 && !same_set(ns, old, q)) {
        rc = AS_ERR_PARAMETER;
    } else if (old && old->key && q->has_key &&
               (old->key_len != q->key_len || memcmp(old->key, q->key, q->key_len) != 0)) {
        rc = AS_ERR_KEY_MISMATCH;
    } else if (old && fx && !emu_exp_match(fx, ns, old, now)) {
        rc = AS_ERR_FILTERED_OUT;
    }
    if (rc) {
        err_gen = (rc == AS_ERR_NOT_FOUND) ? 0 : stored_gen;
        goto done;
    }
    if (is_delete) {
        emu_rec_remove(ns, q->digest);
        put_header(o, 0, 0, 0, 0, 0, index, 0, 0);
        goto done;
    }

    /* working bins: existing ones unless the whole record is replaced */
    bool replace = (q->info3 & (AS_INFO3_REPLACE_ONLY | AS_INFO3_CREATE_OR_REPLACE)) != 0;
    if (old && !replace) {
        struct as_iter bi = { old->bins, old->bins + old->bins_len, old->n_bins };
        struct as_op b;
        while (as_op_next(&bi, &b)) {
            struct wbin *wb = wset_get(&w, b.name, b.name_len);
            if (!wb) {
                rc = AS_ERR_UNKNOWN;
                goto done;
            }
            wbin_set(wb, b.particle_type, b.value, b.value_len, NULL);
        }
    }
    /* apply ops in order; reads inside an operate see the state at their position */
    struct as_buf ops_out;
    as_buf_init(&ops_out);
    unsigned n_out = 0;
    bool respond_all = (q->info2 & AS_INFO2_RESPOND_ALL_OPS) != 0;
    it = (struct as_iter){ q->ops, q->ops + q->ops_len, q->n_ops };
    while (as_op_next(&it, &op)) {
        if ((rc = apply_op(&w, &op)) != 0) {
            as_buf_free(&ops_out);
            err_gen = stored_gen;
            goto done;
        }
        if (op.op_type == AS_OP_READ) {
            struct wbin *b = wset_find(&w, op.name, op.name_len);
            if (b) {
                as_op_put(&ops_out, AS_OP_READ, b->ptype, b->name, b->name_len, b->val, b->len);
                n_out++;
            } else if (respond_all) {
                as_op_put(&ops_out, AS_OP_READ, AS_PARTICLE_NULL, (const char *)op.name, op.name_len, NULL, 0);
                n_out++;
            }
        } else if (respond_all) {
            as_op_put(&ops_out, op.op_type, AS_PARTICLE_NULL, (const char *)op.name, op.name_len, NULL, 0);
            n_out++;
        }
    }

    /* serialise the new bins */
    struct as_buf bins;
    as_buf_init(&bins);
    for (unsigned i = 0; i < w.n; i++)
        as_op_put(&bins, AS_OP_READ, w.b[i].ptype, w.b[i].name, w.b[i].name_len, w.b[i].val, w.b[i].len);
    uint64_t size = bins.len + (q->has_key ? q->key_len : 0) + q->set_len + 64;
    if (bins.failed || ops_out.failed) {
        rc = AS_ERR_UNKNOWN;
    } else if (size > ns->max_record_size) {
        rc = AS_ERR_RECORD_TOO_BIG;
    } else if (w.n > 32767) {
        rc = AS_ERR_PARAMETER;
    }
    if (rc) {
        as_buf_free(&bins);
        as_buf_free(&ops_out);
        err_gen = stored_gen;
        goto done;
    }
    if (w.n == 0) {
        /* deleting the last bin deletes the record; a new record without bins is not created */
        as_buf_free(&bins);
        if (old)
            emu_rec_remove(ns, q->digest);
        put_header(o, 0, 0, 0, 0, 0, index, 0, (uint16_t)n_out);
        as_buf_append(o, ops_out.data, ops_out.len);
        as_buf_free(&ops_out);
        goto done;
    }
    struct emu_rec *r = calloc(1, sizeof *r);
    int set_id = 0;
    if (r && !old && q->has_set)
        set_id = emu_set_id(ns, q->set, q->set_len, true);
    if (!r || set_id < 0) {
        free(r);
        as_buf_free(&bins);
        as_buf_free(&ops_out);
        rc = set_id < 0 ? AS_ERR_PARAMETER : AS_ERR_UNKNOWN;
        goto done;
    }
    memcpy(r->digest, q->digest, AS_DIGEST_SIZE);
    r->set_id = old ? old->set_id : (uint16_t)set_id;
    r->generation = old ? (uint16_t)(old->generation == 0xFFFF ? 1 : old->generation + 1) : 1;
    r->void_time = void_time_for(q, ns, old, now);
    r->lut_ns = emu_now_ns();
    r->n_bins = (uint16_t)w.n;
    r->bins = bins.data;
    r->bins_len = (uint32_t)bins.len;
    const uint8_t *key = old && old->key ? old->key : (q->has_key ? q->key : NULL);
    uint32_t key_len = old && old->key ? old->key_len : (q->has_key ? q->key_len : 0);
    if (key) {
        r->key = malloc(key_len);
        if (r->key) {
            memcpy(r->key, key, key_len);
            r->key_len = key_len;
        }
    }
    /* the old record's bins may still be referenced by `w`: serialise happened above, so the
     * replacement (which frees `old`) is safe now */
    if (emu_rec_insert(ns, r) != 0) {
        emu_rec_free(r);
        as_buf_free(&ops_out);
        rc = AS_ERR_UNKNOWN;
        goto done;
    }
    put_header(o, 0, 0, 0, r->generation, r->void_time, index, 0, (uint16_t)n_out);
    as_buf_append(o, ops_out.data, ops_out.len);
    as_buf_free(&ops_out);
done:
    pthread_rwlock_unlock(&ns->lock);
    wset_free(&w);
    emu_exp_free(fx);
    if (rc)
        reply_rc(o, rc, err_gen, index);
    return rc;
}

/* Appends exactly one reply message for one record request. */
static int rec_op(struct emu_cluster *c, const struct req *q, struct as_buf *o, uint32_t index)
{
    if (!q->ns)
        return reply_rc(o, AS_ERR_NAMESPACE, 0, index);
    if (q->info2 & AS_INFO2_WRITE)
        return do_write(c, q, o, index);
    if (q->info1 & AS_INFO1_READ)
        return do_read(c, q, o, index);
    return reply_rc(o, AS_ERR_PARAMETER, 0, index);
}

/* With security on: 80 before login, 81 without the read / write permission the request needs. */
static int sec_rc(const struct emu_conn *conn, const struct req *q)
{
    return emu_sec_check(conn, (q->info2 & AS_INFO2_WRITE) ? EMU_PERM_WRITE : EMU_PERM_READ);
}

static void req_from_fields(struct emu_cluster *c, const struct fields *fs, struct req *q)
{
    q->ns = fs->has[AS_FIELD_NAMESPACE]
                ? emu_ns_find(c, fs->f[AS_FIELD_NAMESPACE].data, fs->f[AS_FIELD_NAMESPACE].len)
                : NULL;
    q->has_set = fs->has[AS_FIELD_SET];
    q->set = q->has_set ? fs->f[AS_FIELD_SET].data : NULL;
    q->set_len = q->has_set ? fs->f[AS_FIELD_SET].len : 0;
    q->has_key = fs->has[AS_FIELD_KEY];
    q->key = q->has_key ? fs->f[AS_FIELD_KEY].data : NULL;
    q->key_len = q->has_key ? fs->f[AS_FIELD_KEY].len : 0;
    q->filter = fs->has[AS_FIELD_FILTER] ? fs->f[AS_FIELD_FILTER].data : NULL;
    q->filter_len = fs->has[AS_FIELD_FILTER] ? fs->f[AS_FIELD_FILTER].len : 0;
}

static int handle_single(struct emu_conn *conn, const struct as_msg_view *v, const struct fields *fs)
{
    struct req q = { 0 };
    req_from_fields(conn->c, fs, &q);
    q.digest = fs->f[AS_FIELD_DIGEST].data;
    q.info1 = v->h.info1;
    q.info2 = v->h.info2;
    q.info3 = v->h.info3;
    q.generation = v->h.generation;
    q.ttl = v->h.record_ttl;
    q.ops = v->ops;
    q.ops_len = v->ops_len;
    q.n_ops = v->h.n_ops;
    as_buf_reset(&conn->out);
    size_t off = as_proto_begin(&conn->out, AS_PROTO_MSG);
    int src = sec_rc(conn, &q);
    if (src)
        reply_rc(&conn->out, src, 0, 0);
    else if (fs->f[AS_FIELD_DIGEST].len != AS_DIGEST_SIZE)
        reply_rc(&conn->out, AS_ERR_PARAMETER, 0, 0);
    else
        rec_op(conn->c, &q, &conn->out, 0);
    return flush_frame(conn, off);
}

/* ---- batch ---------------------------------------------------------------------------------------- */

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

static uint32_t rd_u32(struct rd *r)
{
    const uint8_t *p = rd_take(r, 4);
    return p ? as_get_u32(p) : 0;
}

static uint16_t rd_u16(struct rd *r)
{
    const uint8_t *p = rd_take(r, 2);
    return p ? as_get_u16(p) : 0;
}

static uint8_t rd_u8(struct rd *r)
{
    const uint8_t *p = rd_take(r, 1);
    return p ? p[0] : 0;
}

/* Reads n_fields fields then n_ops ops at r->p with the codec's bounds and type rules. */
static bool rd_fields_ops(struct rd *r, uint16_t nf, uint16_t nops, struct fields *fs, struct req *q)
{
    memset(fs->has, 0, sizeof fs->has);
    for (unsigned i = 0; i < nf; i++) {
        uint32_t sz = rd_u32(r);
        const uint8_t *p = sz >= 1 ? rd_take(r, sz) : NULL;
        if (!p || !as_field_type_known(p[0]))
            return false;
        if (p[0] < NFIELD && !fs->has[p[0]]) {
            fs->has[p[0]] = true;
            fs->f[p[0]] = (struct as_field){ .type = p[0], .len = sz - 1, .data = p + 1 };
        }
    }
    q->ops = r->p;
    for (unsigned i = 0; i < nops; i++) {
        uint32_t sz = rd_u32(r);
        const uint8_t *p = sz >= 4 ? rd_take(r, sz) : NULL;
        if (!p || !as_op_type_known(p[0]) || !as_particle_type_known(p[1]) ||
            4 + (size_t)p[3] + ((p[2] & 1) ? 8 : 0) > sz)
            return false;
    }
    q->ops_len = (size_t)(r->p - q->ops);
    q->n_ops = nops;
    return !r->bad;
}

static int handle_batch(struct emu_conn *conn, const struct as_msg_view *v, const struct fields *fs)
{
    struct emu_cluster *c = conn->c;
    atomic_fetch_add(&c->n_batches, 1);
    const struct as_field *bf = &fs->f[AS_FIELD_BATCH];
    struct rd r = { bf->data, bf->data + bf->len, false };
    uint32_t n_rows = rd_u32(&r);
    uint8_t parent = rd_u8(&r);
    as_buf_reset(&conn->out);
    size_t off = as_proto_begin(&conn->out, AS_PROTO_MSG);
    struct req q = { 0 }, prev = { 0 };
    bool have_prev = false;
    int batch_rc = 0;
    for (uint32_t i = 0; i < n_rows && !r.bad; i++) {
        uint32_t index = rd_u32(&r);
        const uint8_t *digest = rd_take(&r, AS_DIGEST_SIZE);
        uint8_t flags = rd_u8(&r);
        if (r.bad)
            break;
        if (flags & 0x01) { /* REPEAT */
            if (!have_prev) {
                r.bad = true;
                break;
            }
            q = prev;
        } else {
            memset(&q, 0, sizeof q);
            q.info1 = rd_u8(&r);
            if (flags & 0x02) {
                q.info2 = rd_u8(&r);
                q.info3 = rd_u8(&r);
            }
            if (flags & 0x10)
                rd_u8(&r); /* info4 */
            if (flags & 0x04)
                q.generation = rd_u16(&r);
            if (flags & 0x08)
                q.ttl = rd_u32(&r);
            uint16_t nf = rd_u16(&r), nops = rd_u16(&r);
            struct fields rf;
            if (r.bad || !rd_fields_ops(&r, nf, nops, &rf, &q)) {
                r.bad = true;
                break;
            }
            if (!rf.has[AS_FIELD_NAMESPACE]) {
                r.bad = true;
                break;
            }
            req_from_fields(c, &rf, &q);
            if (!q.filter && fs->has[AS_FIELD_FILTER]) {
                q.filter = fs->f[AS_FIELD_FILTER].data;
                q.filter_len = fs->f[AS_FIELD_FILTER].len;
            }
            prev = q;
            have_prev = true;
        }
        q.digest = digest;
        int rc = sec_rc(conn, &q);
        if (rc)
            reply_rc(&conn->out, rc, 0, index);
        else
            rc = rec_op(c, &q, &conn->out, index);
        if (rc && rc != AS_ERR_NOT_FOUND && rc != AS_ERR_FILTERED_OUT && !(parent & 0x04))
            break; /* without respond-all-keys the first real error ends the batch */
        if (conn->out.len - off > c->chunk_size) {
            if (flush_frame(conn, off) != 0)
                return -1;
            off = as_proto_begin(&conn->out, AS_PROTO_MSG);
        }
    }
    if (r.bad)
        batch_rc = AS_ERR_PARAMETER;
    (void)v;
    if (conn->out.len - off > AS_PROTO_HEADER_SIZE) {
        if (flush_frame(conn, off) != 0)
            return -1;
    } else {
        as_buf_reset(&conn->out);
    }
    return send_header(conn, (uint8_t)batch_rc, AS_INFO3_LAST, 0);
}

/* ---- scans ---------------------------------------------------------------------------------------- */

struct scan {
    struct emu_ns *ns;
    int set_id;                    /* 0 = all sets */
    bool nobins;
    const uint8_t *bins;           /* READ ops selecting bins */
    size_t bins_len;
    unsigned n_bins;
    struct emu_exp *filter;
    uint64_t max_records;          /* 0 = no limit */
    uint32_t rps;
    uint8_t want[AS_PARTITIONS];   /* 1 = whole partition, 2 = resume after digest */
    const uint8_t *resume[AS_PARTITIONS];
};

static bool has_selected_bin(const struct scan *s, const struct emu_rec *r)
{
    struct as_iter it = { s->bins, s->bins + s->bins_len, s->n_bins };
    struct as_op op, b;
    while (as_op_next(&it, &op))
        if (emu_rec_bin(r, op.name, op.name_len, &b))
            return true;
    return false;
}

static void put_record(struct as_buf *o, const struct scan *s, const struct emu_rec *r)
{
    const char *set = emu_set_name(s->ns, r->set_id);
    size_t set_len = strlen(set);
    uint16_t nf = (uint16_t)(2 + (set_len > 0) + (r->key != NULL));
    size_t hdr = o->len;
    put_header(o, 0, s->nobins ? AS_INFO1_NOBINDATA : 0, 0, r->generation, r->void_time, 0, nf, 0);
    as_field_put_str(o, AS_FIELD_NAMESPACE, s->ns->name);
    as_field_put(o, AS_FIELD_DIGEST, r->digest, AS_DIGEST_SIZE);
    if (set_len)
        as_field_put(o, AS_FIELD_SET, set, set_len);
    if (r->key)
        as_field_put(o, AS_FIELD_KEY, r->key, r->key_len);
    unsigned nops = 0;
    if (s->nobins) {
    } else if (s->n_bins == 0) {
        put_bins_all(o, r);
        nops = r->n_bins;
    } else {
        struct as_iter it = { s->bins, s->bins + s->bins_len, s->n_bins };
        struct as_op op, b;
        while (as_op_next(&it, &op)) {
            if (emu_rec_bin(r, op.name, op.name_len, &b)) {
                as_op_put(o, AS_OP_READ, b.particle_type, (const char *)b.name, b.name_len, b.value,
                          b.value_len);
                nops++;
            }
        }
    }
    as_msg_set_counts(o, hdr, nf, (uint16_t)nops);
}

/* Parses and validates a scan request; returns 0 or the result code of the rejection. */
static int scan_setup(struct emu_conn *conn, const struct as_msg_view *v, const struct fields *fs,
                      struct scan *s)
{
    struct emu_cluster *c = conn->c;
    if (!fs->has[AS_FIELD_NAMESPACE])
        return AS_ERR_PARAMETER;
    s->ns = emu_ns_find(c, fs->f[AS_FIELD_NAMESPACE].data, fs->f[AS_FIELD_NAMESPACE].len);
    if (!s->ns)
        return AS_ERR_NAMESPACE;
    if (!(v->h.info3 & AS_INFO3_PARTITION_DONE))
        return AS_ERR_UNSUPPORTED_FEATURE;
    if (fs->has[AS_FIELD_INDEX_NAME] || fs->has[AS_FIELD_INDEX_RANGE] || fs->has[AS_FIELD_UDF_OP])
        return AS_ERR_PARAMETER; /* secondary-index queries and UDF scans are not emulated */
    if (fs->has[AS_FIELD_SET] && fs->f[AS_FIELD_SET].len > 0) {
        pthread_rwlock_rdlock(&s->ns->lock);
        s->set_id = emu_set_id(s->ns, fs->f[AS_FIELD_SET].data, fs->f[AS_FIELD_SET].len, false);
        pthread_rwlock_unlock(&s->ns->lock);
        if (s->set_id < 0)
            return AS_ERR_PARAMETER; /* 8.1.2 rejects a set it does not know */
    }
    bool any = false;
    if (fs->has[AS_FIELD_PID_ARRAY]) {
        const struct as_field *f = &fs->f[AS_FIELD_PID_ARRAY];
        if (f->len % 2)
            return AS_ERR_PARAMETER;
        for (uint32_t i = 0; i < f->len; i += 2) {
            unsigned pid = as_get_u16le(f->data + i);
            if (pid >= AS_PARTITIONS || s->want[pid])
                return AS_ERR_PARAMETER;
            s->want[pid] = 1;
            any = true;
        }
    }
    if (fs->has[AS_FIELD_DIGEST_ARRAY]) {
        const struct as_field *f = &fs->f[AS_FIELD_DIGEST_ARRAY];
        if (f->len % AS_DIGEST_SIZE)
            return AS_ERR_PARAMETER;
        for (uint32_t i = 0; i < f->len; i += AS_DIGEST_SIZE) {
            unsigned pid = as_partition_id(f->data + i);
            if (s->want[pid])
                return AS_ERR_PARAMETER;
            s->want[pid] = 2;
            s->resume[pid] = f->data + i;
            any = true;
        }
    }
    if (!any)
        memset(s->want, 1, sizeof s->want);
    if (fs->has[AS_FIELD_MAX_RECORDS]) {
        if (fs->f[AS_FIELD_MAX_RECORDS].len != 8)
            return AS_ERR_PARAMETER;
        s->max_records = as_get_u64(fs->f[AS_FIELD_MAX_RECORDS].data);
    }
    if (fs->has[AS_FIELD_RPS]) {
        if (fs->f[AS_FIELD_RPS].len != 4)
            return AS_ERR_PARAMETER;
        s->rps = as_get_u32(fs->f[AS_FIELD_RPS].data);
    }
    s->nobins = (v->h.info1 & AS_INFO1_NOBINDATA) != 0;
    s->bins = v->ops;
    s->bins_len = v->ops_len;
    s->n_bins = v->h.n_ops;
    struct as_iter it;
    struct as_op op;
    as_msg_ops(v, &it);
    while (as_op_next(&it, &op))
        if (op.op_type != AS_OP_READ)
            return AS_ERR_PARAMETER;
    if (fs->has[AS_FIELD_FILTER]) {
        const char *why = "";
        s->filter = emu_exp_compile(fs->f[AS_FIELD_FILTER].data, fs->f[AS_FIELD_FILTER].len, &why);
        if (!s->filter) {
            if (c->verbose)
                fprintf(stderr, "emulator: scan filter rejected: %s\n", why);
            return AS_ERR_PARAMETER;
        }
    }
    return 0;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int handle_scan(struct emu_conn *conn, const struct as_msg_view *v, const struct fields *fs)
{
    struct emu_cluster *c = conn->c;
    atomic_fetch_add(&c->n_scans, 1);
    struct scan *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    int rc = scan_setup(conn, v, fs, s);
    if (rc) {
        emu_exp_free(s->filter);
        free(s);
        return send_header(conn, (uint8_t)rc, 0, 0);
    }
    pthread_mutex_lock(&c->meta);
    long close_after = c->faults.close_after_records;
    pthread_mutex_unlock(&c->meta);

    uint64_t sent = 0, start = mono_ms();
    int result = 0;
    bool stop = false;
    as_buf_reset(&conn->out);
    size_t off = as_proto_begin(&conn->out, AS_PROTO_MSG);
    for (unsigned pid = 0; pid < AS_PARTITIONS && !stop; pid++) {
        if (!s->want[pid])
            continue;
        if (emu_node_column(c, conn->node->idx, s->ns, pid) < 0 || emu_fault_unavailable(c, pid)) {
            put_header(&conn->out, AS_ERR_UNAVAILABLE, 0, AS_INFO3_PARTITION_DONE, pid, 0, 0, 0, 0);
            continue;
        }
        uint32_t now = emu_now_cl();
        pthread_rwlock_rdlock(&s->ns->lock);
        struct emu_part *part = &s->ns->parts[pid];
        for (uint32_t i = 0; i < part->n; i++) {
            struct emu_rec *r = part->recs[i];
            if (s->want[pid] == 2 && memcmp(r->digest, s->resume[pid], AS_DIGEST_SIZE) >= 0)
                continue; /* strictly after the resume digest, in descending order */
            if (emu_rec_expired(r, now))
                continue;
            if (s->set_id > 0 && r->set_id != s->set_id)
                continue;
            if (s->n_bins && !s->nobins && !has_selected_bin(s, r))
                continue;
            if (s->filter && !emu_exp_match(s->filter, s->ns, r, now))
                continue;
            put_record(&conn->out, s, r);
            sent++;
            if ((s->max_records && sent >= s->max_records) ||
                (close_after > 0 && sent >= (uint64_t)close_after)) {
                stop = true;
                break;
            }
        }
        pthread_rwlock_unlock(&s->ns->lock);
        if (conn->out.len - off >= c->chunk_size || stop) {
            if (conn->out.len - off > AS_PROTO_HEADER_SIZE && flush_frame(conn, off) != 0) {
                result = -1;
                goto out;
            }
            as_buf_reset(&conn->out);
            off = as_proto_begin(&conn->out, AS_PROTO_MSG);
        }
        if (s->rps) {
            uint64_t due = start + sent * 1000u / s->rps;
            uint64_t now_ms = mono_ms();
            if (due > now_ms)
                sleep_ms((long)(due - now_ms));
        }
    }
    if (close_after > 0 && sent >= (uint64_t)close_after) {
        conn->close_now = true; /* fault: drop the connection mid-scan, no LAST */
        result = -1;
        goto out;
    }
    if (conn->out.len - off > AS_PROTO_HEADER_SIZE && flush_frame(conn, off) != 0) {
        result = -1;
        goto out;
    }
    result = send_header(conn, 0, AS_INFO3_LAST, 0);
out:
    emu_exp_free(s->filter);
    free(s);
    return result;
}

/* ---- entry ------------------------------------------------------------------------------------------- */

int emu_msg_handle(struct emu_conn *conn, const uint8_t *body, size_t len)
{
    struct as_msg_view v;
    struct err e;
    pthread_mutex_lock(&conn->c->meta);
    long delay = conn->c->faults.delay_ms;
    pthread_mutex_unlock(&conn->c->meta);
    sleep_ms(delay);
    if (as_msg_parse(body, len, &v, &e) != 0 || v.size != len) {
        if (conn->c->verbose)
            fprintf(stderr, "emulator: bad AS_MSG: %s\n", v.size != len ? "trailing bytes" : e.msg);
        return send_header(conn, AS_ERR_PARAMETER, 0, 0);
    }
    struct fields fs;
    collect_fields(&v, &fs);
    if ((v.h.info1 & AS_INFO1_BATCH) && fs.has[AS_FIELD_BATCH])
        return handle_batch(conn, &v, &fs);
    if (fs.has[AS_FIELD_DIGEST])
        return handle_single(conn, &v, &fs);
    int src = emu_sec_check(conn, EMU_PERM_READ);
    if (src)
        return send_header(conn, (uint8_t)src, 0, 0);
    return handle_scan(conn, &v, &fs);
}
