/*
 * asb_enc.c - the .asb encoder: records, header, UDF and secondary-index lines, and the
 * buffered writer that feeds an output sink.
 *
 * Every line is produced exactly as asbackup 4.5.8 prints it (its printf formats, reproduced
 * by hand for speed): integers in decimal, doubles with "%.17g", strings and GeoJSON as
 * "<len> <raw bytes>", blobs/lists/maps/HLL as "<b64 len> <b64>" or, in compact mode,
 * "X! <len> <raw>", names escaped with a backslash before `\`, space and LF.
 *
 * The hot path (asb_encode_record) works on a caller buffer sized by asb_record_max_size():
 * no bounds checks per byte, no allocation, no stdio except snprintf for doubles.
 */
#include "asb/asb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small writers (the caller guarantees room) ------------------------------------------ */

static inline uint8_t *put_mem(uint8_t *p, const void *s, size_t n)
{
    if (n)
        memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put_mem((p), (lit), sizeof(lit) - 1)

static inline uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put_mem(p, tmp + sizeof tmp - n, n);
}

static inline uint8_t *put_i64(uint8_t *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

/* ---- doubles: exactly printf("%.17g") ------------------------------------------------------
 *
 * asbackup prints doubles with "%.17g"; glibc's printf costs ~280 ns per call. The fast path
 * below produces the same bytes for every finite normal double from 1e-6 up to ~1e38: the
 * value m * 2^e2 is scaled by a power of ten in exact 128-bit integer arithmetic, rounded to
 * 17 significant digits half-to-even (what glibc does in the default rounding mode), then laid
 * out with %g's rules (fixed notation for exponents -4..16, else d.ddde+XX; trailing zeros
 * removed). Everything else (zero handled apart; subnormals, tiny, huge, inf, nan) goes to
 * snprintf. Tests compare both on millions of values. */

typedef unsigned __int128 u128;

static const uint64_t POW10_64[20] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
    100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
    10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
    100000000000000000ull, 1000000000000000000ull, 10000000000000000000ull,
};

static inline u128 pow10_u128(int n) /* 0 <= n <= 38 */
{
    return n < 20 ? (u128)POW10_64[n] : (u128)POW10_64[19] * POW10_64[n - 19];
}

static const uint64_t P10_16 = 10000000000000000ull, P10_17 = 100000000000000000ull;

/* |d| scaled by 10^p: truncated (*t_out) and rounded half-to-even (*q_out). Returns false
 * when the exact arithmetic would not fit. */
static bool scaled_digits(uint64_t m, int e2, int p, uint64_t *t_out, uint64_t *q_out)
{
    u128 q, rem, div;
    if (e2 >= 0) {
        if (e2 > 74)
            return false;
        u128 v = (u128)m << e2;
        if (p >= 0) {
            if (p > 2)
                return false;
            *t_out = *q_out = (uint64_t)(v * pow10_u128(p));
            return true;
        }
        if (-p > 38)
            return false;
        div = pow10_u128(-p);
        q = v / div;
        rem = v % div;
    } else {
        int k = -e2;
        if (p < 0 || p > 22 || k > 120)
            return false;
        u128 n = (u128)m * pow10_u128(p);
        q = n >> k;
        rem = n & (((u128)1 << k) - 1);
        div = (u128)1 << k;
    }
    if (q >= (u128)UINT64_MAX)
        return false;
    *t_out = (uint64_t)q;
    u128 twice = rem * 2; /* rem < div <= 2^127: no overflow */
    if (twice > div || (twice == div && (q & 1)))
        q++;
    *q_out = (uint64_t)q;
    return true;
}

static size_t fmt_g17_slow(double d, char *out)
{
    char tmp[40];
    int n = snprintf(tmp, sizeof tmp, "%.17g", d);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof tmp)
        n = (int)sizeof tmp - 1;
    memcpy(out, tmp, (size_t)n);
    return (size_t)n;
}

size_t asb_format_double(double d, char *out)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    bool neg = bits >> 63;
    int be = (int)((bits >> 52) & 0x7ff);
    uint64_t frac = bits & ((1ull << 52) - 1);
    char *o = out;
    if (be == 0 && frac == 0) {
        if (neg)
            *o++ = '-';
        *o++ = '0';
        return (size_t)(o - out);
    }
    if (be == 0 || be == 0x7ff)
        return fmt_g17_slow(d, out);
    uint64_t m = frac | (1ull << 52);
    int e2 = be - 1075;
    /* estimate of floor(log10 |d|) from the binary exponent; corrected below */
    int b2 = e2 + 52; /* floor(log2 |d|) */
    int x = b2 >= 0 ? (b2 * 78913) >> 18 : -((-b2 * 78913 + (1 << 18) - 1) >> 18);
    uint64_t q = 0, t = 0;
    bool ok = false;
    /* find the exact decimal exponent x (10^x <= |d| < 10^(x+1)) from the truncated digits */
    for (int attempt = 0; attempt < 4; attempt++) {
        if (!scaled_digits(m, e2, 16 - x, &t, &q))
            return fmt_g17_slow(d, out);
        if (t >= P10_17)
            x++;
        else if (t < P10_16)
            x--;
        else {
            ok = true;
            break;
        }
    }
    if (!ok)
        return fmt_g17_slow(d, out);
    if (q == P10_17) { /* 9.99...95 rounded up to the next power of ten */
        q = P10_16;
        x++;
    }

    char dig[17];
    for (int i = 16; i >= 0; i--) {
        dig[i] = (char)('0' + q % 10);
        q /= 10;
    }
    int last = 16; /* last significant digit after stripping trailing zeros */
    while (last > 0 && dig[last] == '0')
        last--;
    if (neg)
        *o++ = '-';
    if (x < -4 || x >= 17) {
        *o++ = dig[0];
        if (last > 0) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)last);
            o += last;
        }
        *o++ = 'e';
        int ex = x;
        if (ex < 0) {
            *o++ = '-';
            ex = -ex;
        } else {
            *o++ = '+';
        }
        if (ex >= 100)
            *o++ = (char)('0' + ex / 100);
        *o++ = (char)('0' + ex / 10 % 10);
        *o++ = (char)('0' + ex % 10);
    } else if (x >= 0) {
        memcpy(o, dig, (size_t)x + 1);
        o += x + 1;
        if (last > x) {
            *o++ = '.';
            memcpy(o, dig + x + 1, (size_t)(last - x));
            o += last - x;
        }
    } else {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -x - 1; i++)
            *o++ = '0';
        memcpy(o, dig, (size_t)last + 1);
        o += last + 1;
    }
    return (size_t)(o - out);
}

static inline uint8_t *put_double(uint8_t *p, double d)
{
    return p + asb_format_double(d, (char *)p);
}

size_t asb_escape(const char *in, size_t len, char *out)
{
    char *o = out;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\\' || c == ' ' || c == '\n')
            *o++ = '\\';
        *o++ = c;
    }
    return (size_t)(o - out);
}

static inline uint8_t *put_esc(uint8_t *p, const char *s, size_t n)
{
    /* fast path: most names need no escaping */
    size_t i = 0;
    while (i < n && s[i] != '\\' && s[i] != ' ' && s[i] != '\n')
        i++;
    p = put_mem(p, s, i);
    if (i < n)
        p += asb_escape(s + i, n - i, (char *)p);
    return p;
}

/* "<len> <raw>" */
static inline uint8_t *put_raw_value(uint8_t *p, const uint8_t *data, uint32_t len)
{
    p = put_u64(p, len);
    *p++ = ' ';
    return put_mem(p, data, len);
}

/* "<b64 len> <b64>" */
static inline uint8_t *put_b64_value(uint8_t *p, const uint8_t *data, uint32_t len)
{
    p = put_u64(p, asb_b64_encoded_len(len));
    *p++ = ' ';
    return p + asb_b64_encode(data, len, (char *)p);
}

char asb_ptype_letter(uint8_t ptype)
{
    switch (ptype) {
    case ASB_P_NIL: return 'N';
    case ASB_P_INTEGER: return 'I';
    case ASB_P_DOUBLE: return 'D';
    case ASB_P_STRING: return 'S';
    case ASB_P_BLOB: return 'B';
    case ASB_P_JAVA: return 'J';
    case ASB_P_CSHARP: return 'C';
    case ASB_P_PYTHON: return 'P';
    case ASB_P_RUBY: return 'R';
    case ASB_P_PHP: return 'H';
    case ASB_P_ERLANG: return 'E';
    case ASB_P_BOOL: return 'Z';
    case ASB_P_HLL: return 'Y';
    case ASB_P_MAP: return 'M';
    case ASB_P_LIST: return 'L';
    case ASB_P_GEOJSON: return 'G';
    default: return 0;
    }
}

/* ---- records ----------------------------------------------------------------------------- */

/* Digits of a decimal length plus one space; 10 digits cover any uint32 and any b64 length. */
#define LEN_FIELD_MAX 12u
#define DOUBLE_MAX 40u

static size_t value_max(const struct asb_value *v, bool compact)
{
    switch (v->type) {
    case ASB_P_NIL: return 0;
    case ASB_P_BOOL: return 1;
    case ASB_P_INTEGER: return 20;
    case ASB_P_DOUBLE: return DOUBLE_MAX;
    case ASB_P_STRING:
    case ASB_P_GEOJSON: return LEN_FIELD_MAX + v->len;
    default:
        return LEN_FIELD_MAX + (compact ? v->len : asb_b64_encoded_len(v->len));
    }
}

size_t asb_record_max_size(const struct asb_record *r, bool compact)
{
    /* "+ k B! " + len field + value + LF; "+ n " ns LF; "+ d " 28 LF; "+ s " set LF;
     * "+ g 65535\n"; "+ t 4294967295\n"; "+ b 65535\n" */
    size_t n = 8 + value_max(&r->key, compact);
    n += 5 + 2 * (size_t)r->ns_len;
    n += 5 + 28;
    n += 5 + 2 * (size_t)r->set_len;
    n += 10 + 15 + 10;
    for (uint32_t i = 0; i < r->n_bins; i++) {
        const struct asb_bin *b = &r->bins[i];
        /* "- X! " name " " value LF */
        n += 5 + 2 * (size_t)b->name_len + 1 + value_max(&b->v, compact) + 1;
    }
    return n;
}

/* The caller guarantees asb_record_max_size() bytes at out. */
static int encode_record(const struct asb_record *r, bool compact, uint8_t *out,
                         size_t *written, struct err *e)
{
    if (r->n_bins > ASB_MAX_BINS)
        return err_set(e, ERR_INVALID, "asb: record has %u bins (max %u)", r->n_bins,
                       ASB_MAX_BINS);
    uint8_t *p = out;

    switch (r->key.type) {
    case ASB_P_NIL:
        break;
    case ASB_P_INTEGER:
        p = PUT_LIT(p, "+ k I ");
        p = put_i64(p, r->key.i);
        *p++ = '\n';
        break;
    case ASB_P_DOUBLE:
        p = PUT_LIT(p, "+ k D ");
        p = put_double(p, r->key.d);
        *p++ = '\n';
        break;
    case ASB_P_STRING:
        p = PUT_LIT(p, "+ k S ");
        p = put_raw_value(p, r->key.data, r->key.len);
        *p++ = '\n';
        break;
    case ASB_P_BLOB:
        if (compact) {
            p = PUT_LIT(p, "+ k B! ");
            p = put_raw_value(p, r->key.data, r->key.len);
        } else {
            p = PUT_LIT(p, "+ k B ");
            p = put_b64_value(p, r->key.data, r->key.len);
        }
        *p++ = '\n';
        break;
    default:
        return err_set(e, ERR_INVALID, "asb: invalid user key type %u", r->key.type);
    }

    p = PUT_LIT(p, "+ n ");
    p = put_esc(p, r->ns, r->ns_len);
    p = PUT_LIT(p, "\n+ d ");
    p += asb_b64_encode(r->digest, ASB_DIGEST_LEN, (char *)p);
    *p++ = '\n';
    if (r->set_len) {
        p = PUT_LIT(p, "+ s ");
        p = put_esc(p, r->set, r->set_len);
        *p++ = '\n';
    }
    p = PUT_LIT(p, "+ g ");
    p = put_u64(p, r->generation);
    p = PUT_LIT(p, "\n+ t ");
    p = put_u64(p, r->void_time);
    p = PUT_LIT(p, "\n+ b ");
    p = put_u64(p, r->n_bins);
    *p++ = '\n';

    for (uint32_t i = 0; i < r->n_bins; i++) {
        const struct asb_bin *b = &r->bins[i];
        const struct asb_value *v = &b->v;
        char letter = asb_ptype_letter(v->type);
        if (!letter)
            return err_set(e, ERR_INVALID, "asb: bin '%.*s' has invalid particle type %u",
                           (int)(b->name_len > 64 ? 64 : b->name_len), b->name, v->type);
        *p++ = '-';
        *p++ = ' ';
        *p++ = (uint8_t)letter;
        switch (v->type) {
        case ASB_P_NIL:
            *p++ = ' ';
            p = put_esc(p, b->name, b->name_len);
            break;
        case ASB_P_BOOL:
            *p++ = ' ';
            p = put_esc(p, b->name, b->name_len);
            *p++ = ' ';
            *p++ = v->b ? 'T' : 'F';
            break;
        case ASB_P_INTEGER:
            *p++ = ' ';
            p = put_esc(p, b->name, b->name_len);
            *p++ = ' ';
            p = put_i64(p, v->i);
            break;
        case ASB_P_DOUBLE:
            *p++ = ' ';
            p = put_esc(p, b->name, b->name_len);
            *p++ = ' ';
            p = put_double(p, v->d);
            break;
        case ASB_P_STRING:
        case ASB_P_GEOJSON:
            *p++ = ' ';
            p = put_esc(p, b->name, b->name_len);
            *p++ = ' ';
            p = put_raw_value(p, v->data, v->len);
            break;
        default: /* the bytes family */
            if (compact)
                *p++ = '!';
            *p++ = ' ';
            p = put_esc(p, b->name, b->name_len);
            *p++ = ' ';
            p = compact ? put_raw_value(p, v->data, v->len) : put_b64_value(p, v->data, v->len);
            break;
        }
        *p++ = '\n';
    }
    *written = (size_t)(p - out);
    return 0;
}

int asb_encode_record(const struct asb_record *r, bool compact, uint8_t *out, size_t cap,
                      size_t *written, struct err *e)
{
    if (cap < asb_record_max_size(r, compact))
        return err_set(e, ERR_INTERNAL, "asb: output buffer too small for record");
    return encode_record(r, compact, out, written, e);
}

/* ---- header and global lines ------------------------------------------------------------- */

size_t asb_header_max_size(uint32_t ns_len)
{
    return sizeof("Version 3.1\n# namespace \n# first-file\n") + 2 * (size_t)ns_len;
}

int asb_encode_header(const char *version, const char *ns, uint32_t ns_len, bool first_file,
                      uint8_t *out, size_t cap, size_t *written, struct err *e)
{
    if (!version)
        version = "3.1";
    if (strlen(version) != 3)
        return err_set(e, ERR_INVALID, "asb: version must have 3 characters");
    if (cap < asb_header_max_size(ns_len))
        return err_set(e, ERR_INTERNAL, "asb: output buffer too small for header");
    uint8_t *p = out;
    p = PUT_LIT(p, "Version ");
    p = put_mem(p, version, 3);
    p = PUT_LIT(p, "\n# namespace ");
    p = put_esc(p, ns, ns_len);
    *p++ = '\n';
    if (first_file)
        p = PUT_LIT(p, "# first-file\n");
    *written = (size_t)(p - out);
    return 0;
}

size_t asb_udf_max_size(const struct asb_udf *u)
{
    return 8 + 2 * (size_t)u->name_len + LEN_FIELD_MAX + u->content_len + 1;
}

int asb_encode_udf(const struct asb_udf *u, uint8_t *out, size_t cap, size_t *written,
                   struct err *e)
{
    if (u->type != 'L')
        return err_set(e, ERR_INVALID, "asb: invalid UDF type '%c'", u->type);
    if (cap < asb_udf_max_size(u))
        return err_set(e, ERR_INTERNAL, "asb: output buffer too small for UDF");
    uint8_t *p = out;
    p = PUT_LIT(p, "* u L ");
    p = put_esc(p, u->name, u->name_len);
    *p++ = ' ';
    p = put_raw_value(p, u->content, u->content_len);
    *p++ = '\n';
    *written = (size_t)(p - out);
    return 0;
}

size_t asb_sindex_max_size(const struct asb_sindex *s)
{
    return 32 + 2 * ((size_t)s->ns_len + s->set_len + s->name_len + s->bin_len) + s->ctx_len +
           s->expr_len;
}

int asb_encode_sindex(const struct asb_sindex *s, uint8_t *out, size_t cap, size_t *written,
                      struct err *e)
{
    if (!strchr("NLKV", s->index_type) || s->index_type == 0)
        return err_set(e, ERR_INVALID, "asb: invalid index type '%c'", s->index_type);
    if (!strchr("NSGB", s->bin_type) || s->bin_type == 0)
        return err_set(e, ERR_INVALID, "asb: invalid index bin type '%c'", s->bin_type);
    if (cap < asb_sindex_max_size(s))
        return err_set(e, ERR_INTERNAL, "asb: output buffer too small for index");
    uint8_t *p = out;
    p = s->expr_len ? PUT_LIT(p, "* e ") : PUT_LIT(p, "* i ");
    p = put_esc(p, s->ns, s->ns_len);
    *p++ = ' ';
    p = put_esc(p, s->set, s->set_len);
    *p++ = ' ';
    p = put_esc(p, s->name, s->name_len);
    *p++ = ' ';
    *p++ = (uint8_t)s->index_type;
    p = PUT_LIT(p, " 1 ");
    p = put_esc(p, s->bin, s->bin_len);
    *p++ = ' ';
    *p++ = (uint8_t)s->bin_type;
    if (s->ctx_len) {
        *p++ = ' ';
        p = put_mem(p, s->ctx, s->ctx_len);
    }
    if (s->expr_len) {
        *p++ = ' ';
        p = put_mem(p, s->expr, s->expr_len);
    }
    *p++ = '\n';
    *written = (size_t)(p - out);
    return 0;
}

/* ---- buffered writer --------------------------------------------------------------------- */

int asb_writer_init(struct asb_writer *w, size_t buf_size, bool compact, asb_sink_fn sink,
                    void *sink_ctx, struct err *e)
{
    memset(w, 0, sizeof *w);
    if (buf_size < 4096)
        buf_size = buf_size ? 4096 : ASB_WRITER_DEFAULT_BUF;
    w->buf = malloc(buf_size);
    if (!w->buf)
        return err_set(e, ERR_NOMEM, "asb: out of memory for the writer buffer");
    w->cap = buf_size;
    w->compact = compact;
    w->sink = sink;
    w->sink_ctx = sink_ctx;
    return 0;
}

void asb_writer_free(struct asb_writer *w)
{
    free(w->buf);
    w->buf = NULL;
    w->cap = w->len = 0;
}

int asb_writer_flush(struct asb_writer *w, struct err *e)
{
    if (w->len == 0)
        return 0;
    int rc = w->sink(w->sink_ctx, w->buf, w->len, e);
    if (rc < 0)
        return rc;
    w->len = 0;
    return 0;
}

/* Makes room for `need` more bytes: flush, then grow if one item is bigger than the buffer. */
static int writer_room(struct asb_writer *w, size_t need, struct err *e)
{
    if (w->cap - w->len >= need)
        return 0;
    int rc = asb_writer_flush(w, e);
    if (rc < 0)
        return rc;
    if (w->cap >= need)
        return 0;
    uint8_t *nb = realloc(w->buf, need);
    if (!nb)
        return err_set(e, ERR_NOMEM, "asb: out of memory for a %zu-byte item", need);
    w->buf = nb;
    w->cap = need;
    return 0;
}

int asb_writer_header(struct asb_writer *w, const char *ns, uint32_t ns_len, bool first_file,
                      struct err *e)
{
    int rc = writer_room(w, asb_header_max_size(ns_len), e);
    size_t n = 0;
    if (rc == 0)
        rc = asb_encode_header(NULL, ns, ns_len, first_file, w->buf + w->len, w->cap - w->len,
                               &n, e);
    if (rc < 0)
        return rc;
    w->len += n;
    w->bytes += n;
    return 0;
}

int asb_writer_udf(struct asb_writer *w, const struct asb_udf *u, struct err *e)
{
    int rc = writer_room(w, asb_udf_max_size(u), e);
    size_t n = 0;
    if (rc == 0)
        rc = asb_encode_udf(u, w->buf + w->len, w->cap - w->len, &n, e);
    if (rc < 0)
        return rc;
    w->len += n;
    w->bytes += n;
    return 0;
}

int asb_writer_sindex(struct asb_writer *w, const struct asb_sindex *s, struct err *e)
{
    int rc = writer_room(w, asb_sindex_max_size(s), e);
    size_t n = 0;
    if (rc == 0)
        rc = asb_encode_sindex(s, w->buf + w->len, w->cap - w->len, &n, e);
    if (rc < 0)
        return rc;
    w->len += n;
    w->bytes += n;
    return 0;
}

int asb_writer_record(struct asb_writer *w, const struct asb_record *r, struct err *e)
{
    int rc = writer_room(w, asb_record_max_size(r, w->compact), e);
    size_t n = 0;
    if (rc == 0)
        rc = encode_record(r, w->compact, w->buf + w->len, &n, e);
    if (rc < 0)
        return rc;
    w->len += n;
    w->bytes += n;
    w->records++;
    return 0;
}
