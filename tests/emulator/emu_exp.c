/*
 * emu_exp.c - the emulator's msgpack reader, filter-expression compiler/evaluator and CDT
 * (map/list particle) validation.
 *
 * Expressions (FILTER field 43) are msgpack trees [op, args...] (fact sheet §6). Evaluated for
 * real against each record: EQ NE GT GE LT LE, REGEX, AND OR NOT EXCLUSIVE, DIGEST_MODULO,
 * LAST_UPDATE (ns since 1970), SINCE_UPDATE (ms), VOID_TIME (ns, -1 never), TTL (s, -1 never),
 * SET_NAME, KEY_EXISTS, IS_TOMBSTONE, RECORD_SIZE/DEVICE_SIZE/MEMORY_SIZE, KEY, BIN, BIN_TYPE,
 * ADD SUB MUL DIV on numbers, literals (strings/blobs carry their particle-type byte), QUOTE.
 * A value that cannot be computed (missing bin, type mismatch) is "unknown"; unknown
 * propagates through comparisons and NOT, AND/OR decide when they can, and a record whose
 * filter is not definitely true does not pass. Other op codes make the compile fail (the
 * request then fails with result 4, like a malformed filter).
 */
#include "emu.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

/* ---- msgpack reader ------------------------------------------------------------------------- */

enum mp_type { MP_NIL, MP_BOOL, MP_INT, MP_UINT, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_EXT };

struct mp_obj {
    enum mp_type t;
    bool b;
    int64_t i;   /* MP_INT */
    uint64_t u;  /* MP_UINT (> INT64_MAX) */
    double f;
    const uint8_t *p; /* payload of STR/BIN/EXT */
    uint32_t len;     /* payload length, or element count of ARRAY/MAP */
    int8_t ext_type;
    const uint8_t *start; /* first byte of the value (header) */
};

static bool need(const uint8_t *p, const uint8_t *end, size_t n)
{
    return (size_t)(end - p) >= n;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads one header (and the payload of str/bin/ext). false on truncation or a reserved byte. */
static bool mp_read(const uint8_t **pp, const uint8_t *end, struct mp_obj *o)
{
    const uint8_t *p = *pp;
    if (!need(p, end, 1))
        return false;
    memset(o, 0, sizeof *o);
    o->start = p;
    uint8_t c = *p++;
    int n = 0;
    if (c <= 0x7f) {
        o->t = MP_INT;
        o->i = c;
    } else if (c >= 0xe0) {
        o->t = MP_INT;
        o->i = (int8_t)c;
    } else if ((c & 0xf0) == 0x80) {
        o->t = MP_MAP;
        o->len = c & 0x0f;
    } else if ((c & 0xf0) == 0x90) {
        o->t = MP_ARRAY;
        o->len = c & 0x0f;
    } else if ((c & 0xe0) == 0xa0) {
        o->t = MP_STR;
        o->len = c & 0x1f;
        goto payload;
    } else {
        switch (c) {
        case 0xc0: o->t = MP_NIL; break;
        case 0xc2: o->t = MP_BOOL; o->b = false; break;
        case 0xc3: o->t = MP_BOOL; o->b = true; break;
        case 0xc4: case 0xc5: case 0xc6:
            n = 1 << (c - 0xc4);
            if (!need(p, end, (size_t)n)) return false;
            o->t = MP_BIN;
            o->len = (uint32_t)be(p, n);
            p += n;
            goto payload;
        case 0xc7: case 0xc8: case 0xc9:
            n = 1 << (c - 0xc7);
            if (!need(p, end, (size_t)n + 1)) return false;
            o->t = MP_EXT;
            o->len = (uint32_t)be(p, n);
            o->ext_type = (int8_t)p[n];
            p += n + 1;
            goto payload;
        case 0xca: {
            if (!need(p, end, 4)) return false;
            uint32_t u = (uint32_t)be(p, 4);
            float f;
            memcpy(&f, &u, 4);
            o->t = MP_FLOAT;
            o->f = f;
            p += 4;
            break;
        }
        case 0xcb: {
            if (!need(p, end, 8)) return false;
            uint64_t u = be(p, 8);
            memcpy(&o->f, &u, 8);
            o->t = MP_FLOAT;
            p += 8;
            break;
        }
        case 0xcc: case 0xcd: case 0xce: case 0xcf: {
            n = 1 << (c - 0xcc);
            if (!need(p, end, (size_t)n)) return false;
            uint64_t u = be(p, n);
            p += n;
            if (u > (uint64_t)INT64_MAX) {
                o->t = MP_UINT;
                o->u = u;
            } else {
                o->t = MP_INT;
                o->i = (int64_t)u;
            }
            break;
        }
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
            n = 1 << (c - 0xd0);
            if (!need(p, end, (size_t)n)) return false;
            uint64_t u = be(p, n);
            p += n;
            int bits = 8 * n;
            if (bits < 64 && (u >> (bits - 1)))
                u |= ~0ull << bits; /* sign-extend */
            o->t = MP_INT;
            o->i = (int64_t)u;
            break;
        }
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            if (!need(p, end, 1)) return false;
            o->t = MP_EXT;
            o->ext_type = (int8_t)*p++;
            o->len = 1u << (c - 0xd4);
            goto payload;
        case 0xd9: case 0xda: case 0xdb:
            n = 1 << (c - 0xd9);
            if (!need(p, end, (size_t)n)) return false;
            o->t = MP_STR;
            o->len = (uint32_t)be(p, n);
            p += n;
            goto payload;
        case 0xdc: case 0xdd:
            n = c == 0xdc ? 2 : 4;
            if (!need(p, end, (size_t)n)) return false;
            o->t = MP_ARRAY;
            o->len = (uint32_t)be(p, n);
            p += n;
            break;
        case 0xde: case 0xdf:
            n = c == 0xde ? 2 : 4;
            if (!need(p, end, (size_t)n)) return false;
            o->t = MP_MAP;
            o->len = (uint32_t)be(p, n);
            p += n;
            break;
        default:
            return false; /* 0xc1 is never used */
        }
    }
    *pp = p;
    return true;
payload:
    if (!need(p, end, o->len))
        return false;
    o->p = p;
    *pp = p + o->len;
    return true;
}

static bool mp_skip(const uint8_t **pp, const uint8_t *end, int depth)
{
    struct mp_obj o;
    if (depth > 64 || !mp_read(pp, end, &o))
        return false;
    if (o.t == MP_ARRAY || o.t == MP_MAP) {
        uint64_t n = (uint64_t)o.len * (o.t == MP_MAP ? 2 : 1);
        if (n > (uint64_t)(end - *pp)) /* every element needs at least one byte */
            return false;
        for (uint64_t i = 0; i < n; i++)
            if (!mp_skip(pp, end, depth + 1))
                return false;
    }
    return true;
}

/* ---- values ------------------------------------------------------------------------------------ */

enum xv { XV_UNK, XV_NIL, XV_BOOL, XV_INT, XV_FLOAT, XV_STR, XV_BLOB, XV_LIST, XV_MAP, XV_GEO, XV_HLL };

struct xval {
    enum xv t;
    int64_t i;
    double f;
    const uint8_t *p;
    uint32_t len;
};

/* Expression value types used by BIN/KEY (fact sheet §6.1). */
static enum xv exp_type(int64_t t)
{
    switch (t) {
    case 0: return XV_NIL;
    case 1: return XV_BOOL;
    case 2: return XV_INT;
    case 3: return XV_STR;
    case 4: return XV_LIST;
    case 5: return XV_MAP;
    case 6: return XV_BLOB;
    case 7: return XV_FLOAT;
    case 8: return XV_GEO;
    case 9: return XV_HLL;
    default: return XV_UNK;
    }
}

static struct xval particle_value(uint8_t ptype, const uint8_t *v, uint32_t len)
{
    struct xval x = { .t = XV_UNK };
    switch (ptype) {
    case AS_PARTICLE_INTEGER:
        if (as_particle_int(v, len, &x.i) == 0)
            x.t = XV_INT;
        break;
    case AS_PARTICLE_FLOAT:
        if (as_particle_double(v, len, &x.f) == 0)
            x.t = XV_FLOAT;
        break;
    case AS_PARTICLE_BOOL:
        if (len == 1) {
            x.t = XV_BOOL;
            x.i = v[0] != 0;
        }
        break;
    case AS_PARTICLE_STRING: x.t = XV_STR; x.p = v; x.len = len; break;
    case AS_PARTICLE_LIST: x.t = XV_LIST; x.p = v; x.len = len; break;
    case AS_PARTICLE_MAP: x.t = XV_MAP; x.p = v; x.len = len; break;
    case AS_PARTICLE_HLL: x.t = XV_HLL; x.p = v; x.len = len; break;
    case AS_PARTICLE_GEOJSON: {
        const uint8_t *js;
        uint32_t jl;
        if (as_particle_geojson_text(v, len, &js, &jl) == 0) {
            x.t = XV_GEO;
            x.p = js;
            x.len = jl;
        }
        break;
    }
    case AS_PARTICLE_NULL: x.t = XV_NIL; break;
    default:
        if (ptype == AS_PARTICLE_BLOB || (ptype >= AS_PARTICLE_JAVA_BLOB && ptype <= AS_PARTICLE_ERLANG_BLOB)) {
            x.t = XV_BLOB;
            x.p = v;
            x.len = len;
        }
        break;
    }
    return x;
}

/* ---- expression tree ------------------------------------------------------------------------------- */

enum {
    OP_EQ = 1, OP_NE = 2, OP_GT = 3, OP_GE = 4, OP_LT = 5, OP_LE = 6, OP_REGEX = 7,
    OP_AND = 16, OP_OR = 17, OP_NOT = 18, OP_EXCLUSIVE = 19,
    OP_ADD = 20, OP_SUB = 21, OP_MUL = 22, OP_DIV = 23,
    OP_DIGEST_MODULO = 64, OP_DEVICE_SIZE = 65, OP_LAST_UPDATE = 66, OP_SINCE_UPDATE = 67,
    OP_VOID_TIME = 68, OP_TTL = 69, OP_SET_NAME = 70, OP_KEY_EXISTS = 71, OP_IS_TOMBSTONE = 72,
    OP_MEMORY_SIZE = 73, OP_RECORD_SIZE = 74, OP_KEY = 80, OP_BIN = 81, OP_BIN_TYPE = 82,
    OP_QUOTE = 126,
    OP_LITERAL = 1000,
};

struct xnode {
    int op;
    struct xval lit;        /* OP_LITERAL */
    int64_t iarg;           /* KEY/BIN type, DIGEST_MODULO modulus, REGEX flags */
    const uint8_t *name;    /* BIN/BIN_TYPE name, REGEX pattern */
    uint32_t name_len;
    regex_t *re;
    struct xnode **args;
    unsigned nargs;
};

struct emu_exp {
    struct xnode *root;
};

static void node_free(struct xnode *n)
{
    if (!n)
        return;
    for (unsigned i = 0; i < n->nargs; i++)
        node_free(n->args[i]);
    free(n->args);
    if (n->re) {
        regfree(n->re);
        free(n->re);
    }
    free(n);
}

struct cctx {
    const uint8_t *end;
    const char *why;
};

static struct xnode *compile_node(struct cctx *x, const uint8_t **pp, int depth);

/* A literal msgpack string/bin: the first payload byte is the particle type. */
static struct xval literal_bytes(const struct mp_obj *o)
{
    struct xval v = { .t = XV_BLOB, .p = o->p, .len = o->len };
    if (o->len == 0)
        return v;
    v.p = o->p + 1;
    v.len = o->len - 1;
    if (o->p[0] == AS_PARTICLE_STRING)
        v.t = XV_STR;
    else if (o->p[0] == AS_PARTICLE_GEOJSON)
        v.t = XV_GEO;
    return v;
}

static bool read_int(struct cctx *x, const uint8_t **pp, int64_t *out)
{
    struct mp_obj o;
    if (!mp_read(pp, x->end, &o) || o.t != MP_INT) {
        x->why = "integer argument expected";
        return false;
    }
    *out = o.i;
    return true;
}

static bool read_raw_str(struct cctx *x, const uint8_t **pp, const uint8_t **s, uint32_t *len)
{
    struct mp_obj o;
    if (!mp_read(pp, x->end, &o) || (o.t != MP_STR && o.t != MP_BIN)) {
        x->why = "string argument expected";
        return false;
    }
    *s = o.p;
    *len = o.len;
    return true;
}

static struct xnode *compile_node(struct cctx *x, const uint8_t **pp, int depth)
{
    if (depth > 64) {
        x->why = "expression too deep";
        return NULL;
    }
    const uint8_t *start = *pp;
    struct mp_obj o;
    if (!mp_read(pp, x->end, &o)) {
        x->why = "malformed msgpack";
        return NULL;
    }
    struct xnode *n = calloc(1, sizeof *n);
    if (!n) {
        x->why = "out of memory";
        return NULL;
    }
    switch (o.t) {
    case MP_NIL: n->op = OP_LITERAL; n->lit.t = XV_NIL; return n;
    case MP_BOOL: n->op = OP_LITERAL; n->lit.t = XV_BOOL; n->lit.i = o.b; return n;
    case MP_INT: n->op = OP_LITERAL; n->lit.t = XV_INT; n->lit.i = o.i; return n;
    case MP_UINT: n->op = OP_LITERAL; n->lit.t = XV_INT; n->lit.i = (int64_t)o.u; return n;
    case MP_FLOAT: n->op = OP_LITERAL; n->lit.t = XV_FLOAT; n->lit.f = o.f; return n;
    case MP_STR: case MP_BIN: n->op = OP_LITERAL; n->lit = literal_bytes(&o); return n;
    case MP_MAP: {
        *pp = start;
        if (!mp_skip(pp, x->end, depth)) {
            x->why = "malformed map literal";
            free(n);
            return NULL;
        }
        n->op = OP_LITERAL;
        n->lit = (struct xval){ .t = XV_MAP, .p = start, .len = (uint32_t)(*pp - start) };
        return n;
    }
    case MP_EXT:
        x->why = "ext literal not supported";
        free(n);
        return NULL;
    case MP_ARRAY:
        break;
    }
    unsigned count = o.len;
    int64_t op;
    if (count < 1 || !read_int(x, pp, &op)) {
        x->why = "operation array without op code";
        free(n);
        return NULL;
    }
    n->op = (int)op;
    unsigned nargs = count - 1;
    switch (op) {
    case OP_EQ: case OP_NE: case OP_GT: case OP_GE: case OP_LT: case OP_LE:
        if (nargs != 2)
            goto arity;
        goto subexprs;
    case OP_AND: case OP_OR: case OP_EXCLUSIVE: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
        if (nargs < 1)
            goto arity;
        goto subexprs;
    case OP_NOT:
        if (nargs != 1)
            goto arity;
        goto subexprs;
    case OP_DIGEST_MODULO:
        if (nargs != 1 || !read_int(x, pp, &n->iarg) || n->iarg <= 0)
            goto bad;
        return n;
    case OP_DEVICE_SIZE: case OP_LAST_UPDATE: case OP_SINCE_UPDATE: case OP_VOID_TIME: case OP_TTL:
    case OP_SET_NAME: case OP_KEY_EXISTS: case OP_IS_TOMBSTONE: case OP_MEMORY_SIZE:
    case OP_RECORD_SIZE:
        if (nargs != 0)
            goto arity;
        return n;
    case OP_KEY:
        if (nargs != 1 || !read_int(x, pp, &n->iarg))
            goto bad;
        return n;
    case OP_BIN:
        if (nargs != 2 || !read_int(x, pp, &n->iarg) || !read_raw_str(x, pp, &n->name, &n->name_len))
            goto bad;
        return n;
    case OP_BIN_TYPE:
        if (nargs != 1 || !read_raw_str(x, pp, &n->name, &n->name_len))
            goto bad;
        return n;
    case OP_QUOTE: {
        if (nargs != 1)
            goto arity;
        const uint8_t *ls = *pp;
        if (!mp_skip(pp, x->end, depth + 1))
            goto bad;
        n->op = OP_LITERAL;
        n->lit = (struct xval){ .t = XV_LIST, .p = ls, .len = (uint32_t)(*pp - ls) };
        return n;
    }
    case OP_REGEX: {
        if (nargs != 3 || !read_int(x, pp, &n->iarg) || !read_raw_str(x, pp, &n->name, &n->name_len))
            goto bad;
        char *pat = strndup((const char *)n->name, n->name_len);
        n->re = calloc(1, sizeof *n->re);
        int cflags = REG_NOSUB | ((n->iarg & 1) ? REG_EXTENDED : 0) | ((n->iarg & 2) ? REG_ICASE : 0) |
                     ((n->iarg & 8) ? REG_NEWLINE : 0);
        if (!pat || !n->re || regcomp(n->re, pat, cflags) != 0) {
            free(pat);
            free(n->re);
            n->re = NULL;
            x->why = "bad regex";
            goto fail;
        }
        free(pat);
        n->args = calloc(1, sizeof *n->args);
        if (!n->args || !(n->args[0] = compile_node(x, pp, depth + 1)))
            goto fail;
        n->nargs = 1;
        return n;
    }
    default:
        x->why = "expression op code not emulated";
        goto fail;
    }
subexprs:
    n->args = calloc(nargs, sizeof *n->args);
    if (!n->args) {
        x->why = "out of memory";
        goto fail;
    }
    for (unsigned i = 0; i < nargs; i++) {
        if (!(n->args[i] = compile_node(x, pp, depth + 1)))
            goto fail;
        n->nargs = i + 1;
    }
    return n;
arity:
    x->why = "wrong number of arguments";
    goto fail;
bad:
    if (!x->why)
        x->why = "bad arguments";
fail:
    node_free(n);
    return NULL;
}

static bool returns_bool(const struct xnode *n)
{
    switch (n->op) {
    case OP_EQ: case OP_NE: case OP_GT: case OP_GE: case OP_LT: case OP_LE: case OP_REGEX:
    case OP_AND: case OP_OR: case OP_NOT: case OP_EXCLUSIVE: case OP_KEY_EXISTS: case OP_IS_TOMBSTONE:
        return true;
    case OP_BIN: case OP_KEY:
        return n->iarg == 1;
    case OP_LITERAL:
        return n->lit.t == XV_BOOL;
    default:
        return false;
    }
}

struct emu_exp *emu_exp_compile(const uint8_t *p, size_t len, const char **why)
{
    struct cctx x = { .end = p + len, .why = NULL };
    const uint8_t *cur = p;
    struct xnode *root = compile_node(&x, &cur, 0);
    if (!root) {
        *why = x.why ? x.why : "bad expression";
        return NULL;
    }
    if (cur != p + len) {
        node_free(root);
        *why = "trailing bytes after the expression";
        return NULL;
    }
    if (!returns_bool(root)) {
        node_free(root);
        *why = "filter does not evaluate to a boolean";
        return NULL;
    }
    struct emu_exp *e = malloc(sizeof *e);
    if (!e) {
        node_free(root);
        *why = "out of memory";
        return NULL;
    }
    e->root = root;
    return e;
}

void emu_exp_free(struct emu_exp *x)
{
    if (!x)
        return;
    node_free(x->root);
    free(x);
}

/* ---- evaluation ------------------------------------------------------------------------------------- */

struct ectx {
    const struct emu_ns *ns;
    const struct emu_rec *r;
    uint32_t now_cl;
};

static struct xval eval(const struct ectx *c, const struct xnode *n);

static struct xval mk_bool(bool b)
{
    return (struct xval){ .t = XV_BOOL, .i = b };
}

static struct xval mk_int(int64_t i)
{
    return (struct xval){ .t = XV_INT, .i = i };
}

static const struct xval unk = { .t = XV_UNK };

/* -2 = not comparable, else <0, 0, >0 */
static int compare(const struct xval *a, const struct xval *b)
{
    if (a->t != b->t)
        return -2;
    switch (a->t) {
    case XV_NIL:
        return 0;
    case XV_BOOL: case XV_INT:
        return a->i < b->i ? -1 : a->i > b->i;
    case XV_FLOAT:
        return a->f < b->f ? -1 : a->f > b->f;
    case XV_STR: case XV_BLOB: case XV_GEO: case XV_LIST: case XV_MAP: case XV_HLL: {
        uint32_t m = a->len < b->len ? a->len : b->len;
        int cmp = m ? memcmp(a->p, b->p, m) : 0;
        if (cmp)
            return cmp < 0 ? -1 : 1;
        return a->len < b->len ? -1 : a->len > b->len;
    }
    default:
        return -2;
    }
}

static struct xval arith(const struct ectx *c, const struct xnode *n)
{
    struct xval acc = eval(c, n->args[0]);
    if (acc.t != XV_INT && acc.t != XV_FLOAT)
        return unk;
    for (unsigned i = 1; i < n->nargs; i++) {
        struct xval v = eval(c, n->args[i]);
        if (v.t != acc.t)
            return unk;
        if (acc.t == XV_INT) {
            uint64_t a = (uint64_t)acc.i, b = (uint64_t)v.i;
            switch (n->op) {
            case OP_ADD: acc.i = (int64_t)(a + b); break;
            case OP_SUB: acc.i = (int64_t)(a - b); break;
            case OP_MUL: acc.i = (int64_t)(a * b); break;
            default:
                if (v.i == 0 || (acc.i == INT64_MIN && v.i == -1))
                    return unk;
                acc.i /= v.i;
            }
        } else {
            switch (n->op) {
            case OP_ADD: acc.f += v.f; break;
            case OP_SUB: acc.f -= v.f; break;
            case OP_MUL: acc.f *= v.f; break;
            default: acc.f /= v.f;
            }
        }
    }
    if (n->nargs == 1 && n->op == OP_SUB) {
        if (acc.t == XV_INT)
            acc.i = (int64_t)(0 - (uint64_t)acc.i);
        else
            acc.f = -acc.f;
    }
    return acc;
}

static struct xval eval(const struct ectx *c, const struct xnode *n)
{
    const struct emu_rec *r = c->r;
    switch (n->op) {
    case OP_LITERAL:
        return n->lit;
    case OP_EQ: case OP_NE: case OP_GT: case OP_GE: case OP_LT: case OP_LE: {
        struct xval a = eval(c, n->args[0]), b = eval(c, n->args[1]);
        if (a.t == XV_UNK || b.t == XV_UNK)
            return unk;
        int cmp = compare(&a, &b);
        if (cmp == -2)
            return unk;
        switch (n->op) {
        case OP_EQ: return mk_bool(cmp == 0);
        case OP_NE: return mk_bool(cmp != 0);
        case OP_GT: return mk_bool(cmp > 0);
        case OP_GE: return mk_bool(cmp >= 0);
        case OP_LT: return mk_bool(cmp < 0);
        default: return mk_bool(cmp <= 0);
        }
    }
    case OP_REGEX: {
        struct xval s = eval(c, n->args[0]);
        if (s.t != XV_STR)
            return unk;
        char *z = strndup((const char *)s.p, s.len);
        if (!z)
            return unk;
        bool m = regexec(n->re, z, 0, NULL, 0) == 0;
        free(z);
        return mk_bool(m);
    }
    case OP_AND: case OP_OR: {
        bool decided = n->op == OP_OR; /* OR: a true decides; AND: a false decides */
        bool saw_unk = false;
        for (unsigned i = 0; i < n->nargs; i++) {
            struct xval v = eval(c, n->args[i]);
            if (v.t != XV_BOOL)
                saw_unk = true;
            else if ((v.i != 0) == decided)
                return mk_bool(decided);
        }
        return saw_unk ? unk : mk_bool(!decided);
    }
    case OP_NOT: {
        struct xval v = eval(c, n->args[0]);
        return v.t == XV_BOOL ? mk_bool(!v.i) : unk;
    }
    case OP_EXCLUSIVE: {
        unsigned t = 0;
        for (unsigned i = 0; i < n->nargs; i++) {
            struct xval v = eval(c, n->args[i]);
            if (v.t != XV_BOOL)
                return unk;
            t += v.i != 0;
        }
        return mk_bool(t == 1);
    }
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
        return arith(c, n);
    case OP_DIGEST_MODULO: {
        /* which digest bytes the server reduces is not verified against a capture */
        uint32_t w = (uint32_t)r->digest[8] | ((uint32_t)r->digest[9] << 8) |
                     ((uint32_t)r->digest[10] << 16) | ((uint32_t)r->digest[11] << 24);
        return mk_int((int64_t)(w % (uint64_t)n->iarg));
    }
    case OP_LAST_UPDATE:
        return mk_int((int64_t)r->lut_ns);
    case OP_SINCE_UPDATE: {
        uint64_t now = emu_now_ns();
        return mk_int(now > r->lut_ns ? (int64_t)((now - r->lut_ns) / 1000000u) : 0);
    }
    case OP_VOID_TIME:
        return mk_int(r->void_time == 0 ? -1
                                        : ((int64_t)r->void_time + AS_CITRUSLEAF_EPOCH) * 1000000000LL);
    case OP_TTL:
        return mk_int(r->void_time == 0 ? -1
                                        : (r->void_time > c->now_cl ? (int64_t)(r->void_time - c->now_cl) : 0));
    case OP_SET_NAME: {
        const char *s = emu_set_name(c->ns, r->set_id);
        return (struct xval){ .t = XV_STR, .p = (const uint8_t *)s, .len = (uint32_t)strlen(s) };
    }
    case OP_KEY_EXISTS:
        return mk_bool(r->key != NULL);
    case OP_IS_TOMBSTONE:
        return mk_bool(false);
    case OP_DEVICE_SIZE: case OP_MEMORY_SIZE: case OP_RECORD_SIZE:
        return mk_int((int64_t)r->bins_len + r->key_len + 64);
    case OP_KEY: {
        if (!r->key)
            return unk;
        struct xval v = particle_value(r->key[0], r->key + 1, r->key_len - 1);
        return v.t == exp_type(n->iarg) ? v : unk;
    }
    case OP_BIN: {
        struct as_op b;
        if (!emu_rec_bin(r, n->name, n->name_len, &b))
            return unk;
        struct xval v = particle_value(b.particle_type, b.value, b.value_len);
        return v.t == exp_type(n->iarg) ? v : unk;
    }
    case OP_BIN_TYPE: {
        struct as_op b;
        return mk_int(emu_rec_bin(r, n->name, n->name_len, &b) ? b.particle_type : 0);
    }
    default:
        return unk;
    }
}

bool emu_exp_match(const struct emu_exp *x, const struct emu_ns *ns, const struct emu_rec *r,
                   uint32_t now_cl)
{
    struct ectx c = { .ns = ns, .r = r, .now_cl = now_cl };
    struct xval v = eval(&c, x->root);
    return v.t == XV_BOOL && v.i;
}

/* ---- CDT validation ------------------------------------------------------------------------------------ */

/* Rank and compare of simple msgpack values; -2 when the pair is not simply comparable (the check is
 * then skipped, so data a real server produced is never refused here). */
static int simple_cmp(const struct mp_obj *a, const struct mp_obj *b)
{
    if (a->t == MP_INT && b->t == MP_INT)
        return a->i < b->i ? -1 : a->i > b->i;
    if ((a->t == MP_STR || a->t == MP_BIN) && (b->t == MP_STR || b->t == MP_BIN) && a->len && b->len &&
        a->p[0] == b->p[0]) {
        uint32_t m = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->p, b->p, m);
        if (c)
            return c < 0 ? -1 : 1;
        return a->len < b->len ? -1 : a->len > b->len;
    }
    return -2;
}

static int cdt_check(const uint8_t **pp, const uint8_t *end, int depth)
{
    struct mp_obj o;
    if (depth > 64 || !mp_read(pp, end, &o))
        return AS_ERR_PARAMETER;
    if (o.t != MP_ARRAY && o.t != MP_MAP)
        return 0;
    bool is_map = o.t == MP_MAP;
    if ((uint64_t)o.len * (is_map ? 2 : 1) > (uint64_t)(end - *pp))
        return AS_ERR_PARAMETER;
    bool ordered = false;
    struct mp_obj prev = { .t = MP_NIL };
    bool have_prev = false;
    for (uint32_t i = 0; i < o.len; i++) {
        const uint8_t *elem = *pp;
        struct mp_obj k;
        if (!mp_read(&elem, end, &k))
            return AS_ERR_PARAMETER;
        if (i == 0 && k.t == MP_EXT) { /* flags header: c7 00 <flags> */
            ordered = (k.ext_type & 0x01) != 0;
            *pp = elem;
            if (is_map && !mp_skip(pp, end, depth + 1))
                return AS_ERR_PARAMETER;
            continue;
        }
        if (is_map && k.t == MP_FLOAT)
            return AS_ERR_UNKNOWN; /* 8.1.2 refuses float map keys with result 1 */
        int rc = cdt_check(pp, end, depth + 1);
        if (rc)
            return rc;
        if (is_map && (rc = cdt_check(pp, end, depth + 1)) != 0)
            return rc;
        if (ordered && have_prev) {
            int c = simple_cmp(&prev, &k);
            if (c > 0 || (is_map && c == 0))
                return AS_ERR_UNKNOWN; /* "map not ordered as expected": result 1 */
        }
        prev = k;
        have_prev = true;
    }
    return 0;
}

int emu_cdt_validate(uint8_t particle, const uint8_t *p, size_t len)
{
    const uint8_t *cur = p, *end = p + len;
    struct mp_obj o;
    const uint8_t *peek = p;
    if (!mp_read(&peek, end, &o) || o.t != (particle == AS_PARTICLE_MAP ? MP_MAP : MP_ARRAY))
        return AS_ERR_PARAMETER;
    int rc = cdt_check(&cur, end, 0);
    if (rc)
        return rc;
    return cur == end ? 0 : AS_ERR_PARAMETER;
}

/* ---- unordered map normalisation ------------------------------------------------------------------------ */

struct kv_span {
    int cls;          /* 0 integer, 1 string/bytes by payload */
    int64_t i;
    const uint8_t *kp; /* key payload (strings/bytes) */
    uint32_t kl;
    const uint8_t *start; /* whole pair */
    size_t len;
    unsigned pos;     /* original position, for a stable sort */
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv_span *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls - y->cls;
    int c;
    if (x->cls == 0) {
        c = x->i < y->i ? -1 : x->i > y->i;
    } else {
        uint32_t m = x->kl < y->kl ? x->kl : y->kl;
        c = m ? memcmp(x->kp, y->kp, m) : 0;
        if (c == 0)
            c = x->kl < y->kl ? -1 : x->kl > y->kl;
    }
    if (c)
        return c;
    return x->pos < y->pos ? -1 : 1;
}

int emu_map_normalize(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len)
{
    const uint8_t *cur = p, *end = p + len;
    struct mp_obj o;
    if (!mp_read(&cur, end, &o) || o.t != MP_MAP || o.len < 2 || o.len > 100000)
        return 1;
    size_t hdr = (size_t)(cur - p);
    struct kv_span *kv = calloc(o.len, sizeof *kv);
    if (!kv)
        return 1;
    bool sorted = true;
    for (uint32_t i = 0; i < o.len; i++) {
        const uint8_t *ps = cur;
        struct mp_obj k;
        const uint8_t *kc = cur;
        if (!mp_read(&kc, end, &k) || k.t == MP_EXT) { /* ordered map (flags ext) or bad: keep */
            free(kv);
            return 1;
        }
        if (k.t == MP_INT) {
            kv[i].cls = 0;
            kv[i].i = k.i;
        } else if (k.t == MP_STR || k.t == MP_BIN) {
            kv[i].cls = 1;
            kv[i].kp = k.p;
            kv[i].kl = k.len;
        } else {
            free(kv);
            return 1; /* other key types: leave the map alone */
        }
        cur = kc;
        if (!mp_skip(&cur, end, 1)) {
            free(kv);
            return 1;
        }
        kv[i].start = ps;
        kv[i].len = (size_t)(cur - ps);
        kv[i].pos = i;
        if (i > 0 && kv_cmp(&kv[i - 1], &kv[i]) > 0)
            sorted = false;
    }
    if (sorted || cur != end) {
        free(kv);
        return 1;
    }
    qsort(kv, o.len, sizeof *kv, kv_cmp);
    uint8_t *b = malloc(len);
    if (!b) {
        free(kv);
        return 1;
    }
    memcpy(b, p, hdr);
    size_t w = hdr;
    for (uint32_t i = 0; i < o.len; i++) {
        memcpy(b + w, kv[i].start, kv[i].len);
        w += kv[i].len;
    }
    free(kv);
    *out = b;
    *out_len = w;
    return 0;
}
