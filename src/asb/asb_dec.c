/*
 * asb_dec.c - the streaming .asb decoder.
 *
 * Bytes come from a read callback into one read buffer; the parser walks the grammar byte by
 * byte (tokens, numbers) and copies values out in chunks (raw values with memcpy, base64
 * values decoded chunk-wise), so a line may be split across reads anywhere and a value may be
 * larger than the read buffer. Everything an item refers to is copied into an arena that is
 * reset per item and only ever grows: after warm-up the decoder does not allocate.
 * While an item is parsed its strings are kept as arena offsets (the arena may move when it
 * grows) and turned into pointers once the item is complete.
 *
 * The grammar is the one asrestore 4.5.8 reads (see docs: abs-reference.md section 5), parsed
 * strictly: every separator is checked, numbers are range checked, base64 is validated, a
 * value length that runs past the end of input is an error. Every error names the line and
 * byte offset where it was detected; errors are sticky.
 */
#include "asb/asb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEC_DEFAULT_BUF (256u * 1024u)
#define DEC_MIN_BUF (16u * 1024u)
#define DEC_DEFAULT_MAX_VALUE (128ull * 1024 * 1024)
#define MAX_TOKEN 1000u         /* escaped tokens (names), as asbackup's MAX_TOKEN_SIZE */
#define MAX_LINE_TOKEN 65536u   /* unescaped trailing tokens (base64 CDT context, expression) */
#define MAX_NUMBER 64u

enum dec_state { ST_START = 0, ST_ITEMS, ST_EOF, ST_ERROR };

struct bin_off {
    size_t name;
    size_t data;
};

struct asb_dec {
    asb_read_fn read;
    void *rctx;

    uint8_t *buf;
    size_t cap, pos, end;
    bool eof;
    uint64_t base; /* stream offset of buf[0] */
    uint64_t line; /* line number at buf[pos] */
    uint64_t max_value;

    enum dec_state state;
    struct err saved;

    char version[4];
    bool legacy; /* version 3.0: no escaping, no global lines */
    bool first_file;
    char *ns;

    uint8_t *arena;
    size_t acap, alen;

    struct asb_bin *bins;
    struct bin_off *boff;
    uint32_t bins_cap;
};

/* ---- errors ------------------------------------------------------------------------------ */

static const char *show_byte(int c, char tmp[8])
{
    if (c >= 0x21 && c < 0x7f && c != '\'')
        snprintf(tmp, 8, "'%c'", c);
    else if (c == ' ')
        snprintf(tmp, 8, "' '");
    else if (c == '\n')
        snprintf(tmp, 8, "LF");
    else
        snprintf(tmp, 8, "0x%02x", (unsigned)c & 0xffu);
    return tmp;
}

static int fail_at(struct asb_dec *d, struct err *e, uint64_t off, uint64_t line,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail_at(struct asb_dec *d, struct err *e, uint64_t off, uint64_t line,
                   const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_set(&d->saved, ERR_INVALID, "asb: line %llu, offset %llu: %s", (unsigned long long)line,
            (unsigned long long)off, msg);
    d->state = ST_ERROR;
    if (e)
        *e = d->saved;
    return ERR_INVALID;
}

#define CUR_OFF(d) ((d)->base + (d)->pos)
#define FAIL(d, e, ...) fail_at((d), (e), CUR_OFF(d), (d)->line, __VA_ARGS__)

/* ---- input ------------------------------------------------------------------------------- */

/* Ensures `need` (<= DEC_MIN_BUF) bytes at pos. 0 = available, 1 = input ended first,
 * negative = read error (reported). */
static int fill(struct asb_dec *d, size_t need, struct err *e)
{
    if (d->end - d->pos >= need)
        return 0;
    if (d->eof)
        return 1;
    if (d->cap - d->pos < need || d->pos > d->cap / 2) {
        size_t n = d->end - d->pos;
        if (n)
            memmove(d->buf, d->buf + d->pos, n);
        d->base += d->pos;
        d->pos = 0;
        d->end = n;
    }
    while (d->end - d->pos < need) {
        size_t got = 0;
        struct err re;
        err_clear(&re);
        int rc = d->read(d->rctx, d->buf + d->end, d->cap - d->end, &got, &re);
        if (rc < 0) {
            err_set(&d->saved, rc, "asb: reading input at offset %llu: %s",
                    (unsigned long long)(d->base + d->end), re.msg);
            d->state = ST_ERROR;
            if (e)
                *e = d->saved;
            return rc;
        }
        if (got > d->cap - d->end) {
            err_set(&d->saved, ERR_INTERNAL, "asb: read callback returned too many bytes");
            d->state = ST_ERROR;
            if (e)
                *e = d->saved;
            return ERR_INTERNAL;
        }
        if (got == 0) {
            d->eof = true;
            return 1;
        }
        d->end += got;
    }
    return 0;
}

static int truncated(struct asb_dec *d, struct err *e, const char *what)
{
    return FAIL(d, e, "unexpected end of input (truncated file?), expected %s", what);
}

/* Next byte (>= 0) or a negative error. */
static inline int get(struct asb_dec *d, struct err *e, const char *what)
{
    if (d->pos == d->end) {
        int rc = fill(d, 1, e);
        if (rc < 0)
            return rc;
        if (rc > 0)
            return truncated(d, e, what);
    }
    return d->buf[d->pos++];
}

static inline int expect(struct asb_dec *d, struct err *e, int ch, const char *what)
{
    int c = get(d, e, what);
    if (c < 0)
        return c;
    if (c != ch) {
        char tmp[8];
        d->pos--;
        return FAIL(d, e, "expected %s, found %s", what, show_byte(c, tmp));
    }
    if (ch == '\n')
        d->line++;
    return 0;
}

/* ---- arena ------------------------------------------------------------------------------- */

static int arena_room(struct asb_dec *d, size_t n, struct err *e)
{
    if (d->acap - d->alen >= n)
        return 0;
    size_t ncap = d->acap ? d->acap : 64 * 1024;
    while (ncap - d->alen < n) {
        if (ncap > SIZE_MAX / 2)
            return FAIL(d, e, "item too large");
        ncap *= 2;
    }
    uint8_t *na = realloc(d->arena, ncap);
    if (!na) {
        err_set(&d->saved, ERR_NOMEM, "asb: out of memory (%zu-byte item buffer)", ncap);
        d->state = ST_ERROR;
        if (e)
            *e = d->saved;
        return ERR_NOMEM;
    }
    d->arena = na;
    d->acap = ncap;
    return 0;
}

/* ---- tokens and numbers ------------------------------------------------------------------ */

/* Reads an escaped token up to (not including) LF or, if stop_space, a space. The unescaped
 * bytes go to the arena, NUL-terminated; *off and *len describe them. */
static int read_token(struct asb_dec *d, struct err *e, bool stop_space, size_t max,
                      const char *what, size_t *off, uint32_t *len)
{
    int rc = arena_room(d, max + 1, e);
    if (rc < 0)
        return rc;
    uint8_t *out = d->arena + d->alen;
    size_t n = 0;
    uint64_t start_off = CUR_OFF(d), start_line = d->line;
    for (;;) {
        while (d->pos < d->end) {
            uint8_t c = d->buf[d->pos];
            if (c == '\n' || (c == ' ' && stop_space))
                goto done;
            if (c == '\\' && !d->legacy) {
                if (d->pos + 1 == d->end)
                    break; /* need the escaped byte */
                c = d->buf[d->pos + 1];
                if (c == '\n')
                    d->line++;
                d->pos += 2;
            } else {
                d->pos++;
            }
            if (c == 0)
                return fail_at(d, e, CUR_OFF(d) - 1, d->line, "NUL byte in %s", what);
            if (n == max)
                return fail_at(d, e, start_off, start_line, "%s longer than %zu bytes", what,
                               max);
            out[n++] = c;
        }
        rc = fill(d, d->pos < d->end ? 2 : 1, e);
        if (rc < 0)
            return rc;
        if (rc > 0)
            return truncated(d, e, what);
    }
done:
    out[n] = 0;
    *off = d->alen;
    *len = (uint32_t)n;
    d->alen += n + 1;
    return 0;
}

/* Unsigned decimal (at least one digit, no sign) not above `max`. */
static int read_u64(struct asb_dec *d, struct err *e, uint64_t max, const char *what,
                    uint64_t *out)
{
    uint64_t start_off = CUR_OFF(d);
    uint64_t v = 0;
    size_t digits = 0;
    for (;;) {
        if (d->pos == d->end) {
            int rc = fill(d, 1, e);
            if (rc < 0)
                return rc;
            if (rc > 0)
                return truncated(d, e, what);
        }
        uint8_t c = d->buf[d->pos];
        if (c < '0' || c > '9')
            break;
        if (v > (max - (uint64_t)(c - '0')) / 10)
            return fail_at(d, e, start_off, d->line, "%s out of range (max %llu)", what,
                           (unsigned long long)max);
        v = v * 10 + (uint64_t)(c - '0');
        d->pos++;
        digits++;
    }
    if (!digits) {
        char tmp[8];
        return FAIL(d, e, "expected %s (digits), found %s", what, show_byte(d->buf[d->pos], tmp));
    }
    *out = v;
    return 0;
}

static int read_i64(struct asb_dec *d, struct err *e, const char *what, int64_t *out)
{
    int c = get(d, e, what);
    if (c < 0)
        return c;
    bool neg = c == '-';
    if (!neg)
        d->pos--;
    uint64_t v;
    int rc = read_u64(d, e, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, what, &v);
    if (rc < 0)
        return rc;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static bool double_char_ok(uint8_t c)
{
    if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')
        return true;
    /* e/E exponent, and the letters of nan / inf / infinity */
    return strchr("eEnNaAiIfFtTyY", c) != NULL && c != 0;
}

/* A double token up to LF: what strtod accepts, restricted to decimal notation and
 * nan/inf spellings (no hex floats, no leading blanks). */
static int read_double(struct asb_dec *d, struct err *e, const char *what, double *out)
{
    char tmp[MAX_NUMBER + 1];
    size_t n = 0;
    uint64_t start_off = CUR_OFF(d);
    for (;;) {
        if (d->pos == d->end) {
            int rc = fill(d, 1, e);
            if (rc < 0)
                return rc;
            if (rc > 0)
                return truncated(d, e, what);
        }
        uint8_t c = d->buf[d->pos];
        if (c == '\n')
            break;
        if (!double_char_ok(c)) {
            char t[8];
            return FAIL(d, e, "invalid character %s in %s", show_byte(c, t), what);
        }
        if (n == MAX_NUMBER)
            return fail_at(d, e, start_off, d->line, "%s too long", what);
        tmp[n++] = (char)c;
        d->pos++;
    }
    tmp[n] = 0;
    char *endp = NULL;
    double v = n ? strtod(tmp, &endp) : 0;
    if (!n || !endp || *endp != 0)
        return fail_at(d, e, start_off, d->line, "invalid %s '%s'", what, tmp);
    *out = v;
    return 0;
}

/* ---- values ------------------------------------------------------------------------------ */

static size_t count_lf(const uint8_t *p, size_t n)
{
    size_t lines = 0;
    const uint8_t *end = p + n;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        lines++;
        p++;
    }
    return lines;
}

/* `len` raw bytes -> arena (NUL-terminated). */
static int read_raw(struct asb_dec *d, struct err *e, uint64_t len, const char *what,
                    size_t *off)
{
    if (len > d->max_value)
        return FAIL(d, e, "%s length %llu exceeds the limit of %llu bytes", what,
                    (unsigned long long)len, (unsigned long long)d->max_value);
    size_t start = d->alen;
    uint64_t left = len;
    while (left) {
        if (d->pos == d->end) {
            int rc = fill(d, 1, e);
            if (rc < 0)
                return rc;
            if (rc > 0)
                return FAIL(d, e,
                            "unexpected end of input (truncated file?): %s needs %llu more "
                            "bytes",
                            what, (unsigned long long)left);
        }
        size_t n = d->end - d->pos;
        if (n > left)
            n = (size_t)left;
        int rc = arena_room(d, n + 1, e);
        if (rc < 0)
            return rc;
        memcpy(d->arena + d->alen, d->buf + d->pos, n);
        d->line += count_lf(d->buf + d->pos, n);
        d->alen += n;
        d->pos += n;
        left -= n;
    }
    int rc = arena_room(d, 1, e);
    if (rc < 0)
        return rc;
    d->arena[d->alen++] = 0;
    *off = start;
    return 0;
}

/* `enc_len` base64 characters -> decoded bytes in the arena (NUL-terminated). */
static int read_b64(struct asb_dec *d, struct err *e, uint64_t enc_len, const char *what,
                    size_t *off, uint32_t *dec_len)
{
    if (enc_len % 4 != 0)
        return FAIL(d, e, "%s: base64 length %llu is not a multiple of 4", what,
                    (unsigned long long)enc_len);
    if (enc_len / 4 * 3 > d->max_value)
        return FAIL(d, e, "%s length %llu exceeds the limit of %llu bytes", what,
                    (unsigned long long)enc_len, (unsigned long long)d->max_value);
    size_t start = d->alen;
    uint64_t left = enc_len;
    while (left) {
        if (d->end - d->pos < 4) {
            int rc = fill(d, 4, e);
            if (rc < 0)
                return rc;
            if (rc > 0)
                return FAIL(d, e,
                            "unexpected end of input (truncated file?): %s needs %llu more "
                            "base64 characters",
                            what, (unsigned long long)left);
        }
        size_t n = (d->end - d->pos) & ~(size_t)3;
        if (n > left)
            n = (size_t)left;
        int rc = arena_room(d, n / 4 * 3 + 1, e);
        if (rc < 0)
            return rc;
        size_t got = 0;
        if (asb_b64_decode((const char *)d->buf + d->pos, n, d->arena + d->alen, &got) != 0 ||
            (n < left && got != n / 4 * 3))
            return FAIL(d, e, "%s: invalid base64 data", what);
        d->alen += got;
        d->pos += n;
        left -= n;
    }
    int rc = arena_room(d, 1, e);
    if (rc < 0)
        return rc;
    d->arena[d->alen++] = 0;
    *off = start;
    *dec_len = (uint32_t)(d->alen - 1 - start);
    return 0;
}

/* "<len> <raw bytes>" or "<len> <base64>" */
static int read_sized(struct asb_dec *d, struct err *e, bool b64, const char *what, size_t *off,
                      uint32_t *len)
{
    uint64_t n;
    int rc = read_u64(d, e, UINT32_MAX, what, &n);
    if (rc == 0)
        rc = expect(d, e, ' ', "' ' after the length");
    if (rc < 0)
        return rc;
    if (b64)
        return read_b64(d, e, n, what, off, len);
    *len = (uint32_t)n;
    return read_raw(d, e, n, what, off);
}

/* ---- header ------------------------------------------------------------------------------ */

enum asb_sniff_kind asb_sniff(const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len >= 8 && memcmp(p, "Version ", 8) == 0)
        return ASB_SNIFF_TEXT;
    if (len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return ASB_SNIFF_ZSTD;
    return ASB_SNIFF_UNKNOWN;
}

int asb_dec_header(struct asb_dec *d, struct err *e)
{
    if (d->state == ST_ERROR) {
        if (e)
            *e = d->saved;
        return d->saved.code;
    }
    if (d->state != ST_START)
        return 0;
    int rc = fill(d, 12, e);
    if (rc < 0)
        return rc;
    size_t avail = d->end - d->pos;
    if (avail < 8 || memcmp(d->buf + d->pos, "Version ", 8) != 0) {
        if (avail == 0)
            return FAIL(d, e, "empty input: not an .asb backup file");
        if (asb_sniff(d->buf + d->pos, avail) == ASB_SNIFF_ZSTD)
            return FAIL(d, e,
                        "input is zstd-compressed: not an .asb text file (compression option "
                        "missing?)");
        return FAIL(d, e,
                    "not an .asb backup file: expected \"Version \" (file encrypted or "
                    "compressed, or wrong encryption key?)");
    }
    if (avail < 12 || d->buf[d->pos + 11] != '\n') {
        d->pos += 8;
        return FAIL(d, e, "expected a 3-character version and LF after \"Version \"");
    }
    memcpy(d->version, d->buf + d->pos + 8, 3);
    d->version[3] = 0;
    if (strcmp(d->version, "3.0") != 0 && strcmp(d->version, "3.1") != 0 &&
        strcmp(d->version, "3.2") != 0) {
        d->pos += 8;
        return FAIL(d, e, "unsupported backup format version \"%s\" (3.0 to 3.2 are supported)",
                    d->version);
    }
    d->legacy = strcmp(d->version, "3.0") == 0;
    d->pos += 12;
    d->line++;

    /* meta lines */
    for (;;) {
        rc = fill(d, 1, e);
        if (rc < 0)
            return rc;
        if (rc > 0 || d->buf[d->pos] != '#')
            break;
        d->pos++;
        d->alen = 0;
        size_t off;
        uint32_t len;
        if ((rc = expect(d, e, ' ', "' ' after '#'")) < 0)
            return rc;
        uint64_t tok_off = CUR_OFF(d);
        if ((rc = read_token(d, e, true, MAX_TOKEN, "meta data token", &off, &len)) < 0)
            return rc;
        const char *tok = (const char *)d->arena + off;
        if (strcmp(tok, "namespace") == 0) {
            if ((rc = expect(d, e, ' ', "' ' after \"namespace\"")) < 0)
                return rc;
            if ((rc = read_token(d, e, false, MAX_TOKEN, "namespace", &off, &len)) < 0)
                return rc;
            char *ns = malloc(len + 1);
            if (!ns)
                return err_set(e, ERR_NOMEM, "asb: out of memory");
            memcpy(ns, d->arena + off, len + 1);
            free(d->ns);
            d->ns = ns;
        } else if (strcmp(tok, "first-file") == 0) {
            d->first_file = true;
        } else {
            return fail_at(d, e, tok_off, d->line, "unknown meta data line \"# %.64s\"", tok);
        }
        if ((rc = expect(d, e, '\n', "LF at the end of the meta data line")) < 0)
            return rc;
    }
    d->state = ST_ITEMS;
    return 0;
}

/* ---- items ------------------------------------------------------------------------------- */

static int line_prefix(struct asb_dec *d, struct err *e, int type, const char *what)
{
    int rc;
    if ((rc = expect(d, e, '+', what)) < 0 || (rc = expect(d, e, ' ', what)) < 0 ||
        (rc = expect(d, e, type, what)) < 0 || (rc = expect(d, e, ' ', what)) < 0)
        return rc;
    return 0;
}

static int parse_key(struct asb_dec *d, struct err *e, struct asb_value *k, size_t *off)
{
    int c = get(d, e, "key type");
    if (c < 0)
        return c;
    int rc;
    memset(k, 0, sizeof *k);
    switch (c) {
    case 'I':
        k->type = ASB_P_INTEGER;
        if ((rc = expect(d, e, ' ', "' ' after the key type")) < 0)
            return rc;
        return read_i64(d, e, "integer key", &k->i);
    case 'D':
        k->type = ASB_P_DOUBLE;
        if ((rc = expect(d, e, ' ', "' ' after the key type")) < 0)
            return rc;
        return read_double(d, e, "double key", &k->d);
    case 'S':
    case 'X':
        k->type = ASB_P_STRING;
        if ((rc = expect(d, e, ' ', "' ' after the key type")) < 0)
            return rc;
        return read_sized(d, e, c == 'X', "string key", off, &k->len);
    case 'B': {
        k->type = ASB_P_BLOB;
        int c2 = get(d, e, "' ' or '!' after the key type");
        if (c2 < 0)
            return c2;
        bool compact = c2 == '!';
        if (!compact)
            d->pos--;
        if ((rc = expect(d, e, ' ', "' ' after the key type")) < 0)
            return rc;
        return read_sized(d, e, !compact, "bytes key", off, &k->len);
    }
    default: {
        char tmp[8];
        d->pos--;
        return FAIL(d, e, "invalid key type %s (expected I, D, S, X or B)", show_byte(c, tmp));
    }
    }
}

static uint8_t bytes_type(int letter)
{
    switch (letter) {
    case 'B': return ASB_P_BLOB;
    case 'J': return ASB_P_JAVA;
    case 'C': return ASB_P_CSHARP;
    case 'P': return ASB_P_PYTHON;
    case 'R': return ASB_P_RUBY;
    case 'H': return ASB_P_PHP;
    case 'E': return ASB_P_ERLANG;
    case 'Y': return ASB_P_HLL;
    case 'M': return ASB_P_MAP;
    case 'L': return ASB_P_LIST;
    default: return 0;
    }
}

static int parse_bin(struct asb_dec *d, struct err *e, struct asb_bin *b, struct bin_off *bo)
{
    int rc;
    if ((rc = expect(d, e, '-', "bin line ('-')")) < 0 ||
        (rc = expect(d, e, ' ', "' ' after '-'")) < 0)
        return rc;
    int t = get(d, e, "bin type");
    if (t < 0)
        return t;
    uint8_t btype = bytes_type(t);
    if (!btype && (t == 0 || !strchr("NZIDSXGU", t))) {
        char tmp[8];
        d->pos--;
        return FAIL(d, e, "invalid bin type %s", show_byte(t, tmp));
    }
    if (t == 'U') {
        d->pos--;
        return FAIL(d, e, "the backup contains LDT bins ('U'), which are not supported");
    }
    int c2 = get(d, e, "' ' after the bin type");
    if (c2 < 0)
        return c2;
    bool compact = false;
    if (c2 == '!') {
        if (!btype) {
            d->pos--;
            return FAIL(d, e, "raw form '!' is only valid for bytes-like bin types");
        }
        compact = true;
    } else {
        d->pos--;
    }
    if ((rc = expect(d, e, ' ', "' ' after the bin type")) < 0)
        return rc;
    if ((rc = read_token(d, e, true, MAX_TOKEN, "bin name", &bo->name, &b->name_len)) < 0)
        return rc;
    memset(&b->v, 0, sizeof b->v);
    bo->data = SIZE_MAX;
    if (t == 'N') {
        b->v.type = ASB_P_NIL;
        return expect(d, e, '\n', "LF after a nil bin");
    }
    if ((rc = expect(d, e, ' ', "' ' after the bin name")) < 0)
        return rc;
    switch (t) {
    case 'Z': {
        b->v.type = ASB_P_BOOL;
        int c = get(d, e, "boolean value");
        if (c < 0)
            return c;
        if (c != 'T' && c != 'F') {
            char tmp[8];
            d->pos--;
            return FAIL(d, e, "invalid boolean value %s (expected T or F)", show_byte(c, tmp));
        }
        b->v.b = c == 'T';
        break;
    }
    case 'I':
        b->v.type = ASB_P_INTEGER;
        rc = read_i64(d, e, "integer value", &b->v.i);
        break;
    case 'D':
        b->v.type = ASB_P_DOUBLE;
        rc = read_double(d, e, "double value", &b->v.d);
        break;
    case 'S':
    case 'X':
        b->v.type = ASB_P_STRING;
        rc = read_sized(d, e, t == 'X', "string value", &bo->data, &b->v.len);
        break;
    case 'G':
        b->v.type = ASB_P_GEOJSON;
        rc = read_sized(d, e, false, "GeoJSON value", &bo->data, &b->v.len);
        break;
    default:
        b->v.type = btype;
        rc = read_sized(d, e, !compact, "bytes value", &bo->data, &b->v.len);
        break;
    }
    if (rc < 0)
        return rc;
    return expect(d, e, '\n', "LF at the end of the bin line");
}

static int ensure_bins(struct asb_dec *d, uint32_t n, struct err *e)
{
    if (n <= d->bins_cap)
        return 0;
    uint32_t ncap = d->bins_cap ? d->bins_cap : 64;
    while (ncap < n)
        ncap *= 2;
    struct asb_bin *nb = realloc(d->bins, ncap * sizeof *nb);
    if (nb)
        d->bins = nb;
    struct bin_off *no = nb ? realloc(d->boff, ncap * sizeof *no) : NULL;
    if (!nb || !no)
        return err_set(e, ERR_NOMEM, "asb: out of memory for %u bins", n);
    d->boff = no;
    d->bins_cap = ncap;
    return 0;
}

/* After the leading '+'. */
static int parse_record(struct asb_dec *d, struct err *e, struct asb_record *r)
{
    int rc;
    size_t key_off = SIZE_MAX, ns_off = 0, set_off = SIZE_MAX;
    memset(r, 0, sizeof *r);
    if ((rc = expect(d, e, ' ', "' ' after '+'")) < 0)
        return rc;
    int c = get(d, e, "record header line type");
    if (c < 0)
        return c;
    if (c == 'k') {
        if ((rc = expect(d, e, ' ', "' ' after \"+ k\"")) < 0 ||
            (rc = parse_key(d, e, &r->key, &key_off)) < 0 ||
            (rc = expect(d, e, '\n', "LF at the end of the key line")) < 0 ||
            (rc = expect(d, e, '+', "\"+ n\" line after the key")) < 0 ||
            (rc = expect(d, e, ' ', "' ' after '+'")) < 0)
            return rc;
        c = get(d, e, "record header line type");
        if (c < 0)
            return c;
    }
    if (c != 'n') {
        char tmp[8];
        d->pos--;
        return FAIL(d, e, "expected the namespace line \"+ n\", found %s", show_byte(c, tmp));
    }
    if ((rc = expect(d, e, ' ', "' ' after \"+ n\"")) < 0 ||
        (rc = read_token(d, e, false, MAX_TOKEN, "namespace", &ns_off, &r->ns_len)) < 0 ||
        (rc = expect(d, e, '\n', "LF after the namespace")) < 0 ||
        (rc = line_prefix(d, e, 'd', "digest line \"+ d \"")) < 0)
        return rc;

    rc = fill(d, 28, e);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return truncated(d, e, "a 28-character base64 digest");
    size_t dlen = 0;
    uint8_t dig[21];
    if (asb_b64_decode((const char *)d->buf + d->pos, 28, dig, &dlen) != 0 ||
        dlen != ASB_DIGEST_LEN)
        return FAIL(d, e, "invalid digest (expected 28 base64 characters for 20 bytes)");
    memcpy(r->digest, dig, ASB_DIGEST_LEN);
    d->pos += 28;
    if ((rc = expect(d, e, '\n', "LF after the digest")) < 0 ||
        (rc = expect(d, e, '+', "'+' (set or generation line)")) < 0 ||
        (rc = expect(d, e, ' ', "' ' after '+'")) < 0)
        return rc;
    c = get(d, e, "record header line type");
    if (c < 0)
        return c;
    if (c == 's') {
        if ((rc = expect(d, e, ' ', "' ' after \"+ s\"")) < 0 ||
            (rc = read_token(d, e, false, MAX_TOKEN, "set", &set_off, &r->set_len)) < 0 ||
            (rc = expect(d, e, '\n', "LF after the set")) < 0 ||
            (rc = expect(d, e, '+', "generation line \"+ g\"")) < 0 ||
            (rc = expect(d, e, ' ', "' ' after '+'")) < 0)
            return rc;
        c = get(d, e, "record header line type");
        if (c < 0)
            return c;
    }
    if (c != 'g') {
        char tmp[8];
        d->pos--;
        return FAIL(d, e, "expected the generation line \"+ g\", found %s", show_byte(c, tmp));
    }
    uint64_t gen, vt, nb;
    if ((rc = expect(d, e, ' ', "' ' after \"+ g\"")) < 0 ||
        (rc = read_u64(d, e, 65535, "generation", &gen)) < 0 ||
        (rc = expect(d, e, '\n', "LF after the generation")) < 0 ||
        (rc = line_prefix(d, e, 't', "expiration line \"+ t \"")) < 0 ||
        (rc = read_u64(d, e, UINT32_MAX, "expiration time", &vt)) < 0 ||
        (rc = expect(d, e, '\n', "LF after the expiration time")) < 0 ||
        (rc = line_prefix(d, e, 'b', "bin count line \"+ b \"")) < 0 ||
        (rc = read_u64(d, e, ASB_MAX_BINS, "bin count", &nb)) < 0 ||
        (rc = expect(d, e, '\n', "LF after the bin count")) < 0)
        return rc;
    r->generation = (uint16_t)gen;
    r->void_time = (uint32_t)vt;
    r->n_bins = (uint32_t)nb;
    if ((rc = ensure_bins(d, r->n_bins, e)) < 0)
        return rc;
    for (uint32_t i = 0; i < r->n_bins; i++)
        if ((rc = parse_bin(d, e, &d->bins[i], &d->boff[i])) < 0)
            return rc;

    /* offsets -> pointers (the arena no longer moves for this item) */
    r->ns = (const char *)d->arena + ns_off;
    r->set = set_off != SIZE_MAX && r->set_len ? (const char *)d->arena + set_off : NULL;
    if (set_off != SIZE_MAX && r->set_len == 0)
        r->set = "";
    if (key_off != SIZE_MAX)
        r->key.data = d->arena + key_off;
    for (uint32_t i = 0; i < r->n_bins; i++) {
        d->bins[i].name = (const char *)d->arena + d->boff[i].name;
        d->bins[i].v.data = d->boff[i].data != SIZE_MAX ? d->arena + d->boff[i].data : NULL;
    }
    r->bins = d->bins;
    return 0;
}

/* After "* i" or "* e". */
static int parse_sindex(struct asb_dec *d, struct err *e, bool expr, struct asb_sindex *s)
{
    int rc;
    size_t ns_off, set_off, name_off, bin_off, x1_off = 0, x2_off = 0;
    uint32_t x1_len = 0, x2_len = 0;
    int extra = 0;
    memset(s, 0, sizeof *s);
    if ((rc = expect(d, e, ' ', "' ' after the index line type")) < 0 ||
        (rc = read_token(d, e, true, MAX_TOKEN, "index namespace", &ns_off, &s->ns_len)) < 0 ||
        (rc = expect(d, e, ' ', "' ' after the index namespace")) < 0 ||
        (rc = read_token(d, e, true, MAX_TOKEN, "index set", &set_off, &s->set_len)) < 0 ||
        (rc = expect(d, e, ' ', "' ' after the index set")) < 0 ||
        (rc = read_token(d, e, true, MAX_TOKEN, "index name", &name_off, &s->name_len)) < 0 ||
        (rc = expect(d, e, ' ', "' ' after the index name")) < 0)
        return rc;
    int c = get(d, e, "index type");
    if (c < 0)
        return c;
    if (c != 'N' && c != 'L' && c != 'K' && c != 'V') {
        char tmp[8];
        d->pos--;
        return FAIL(d, e, "invalid index type %s (expected N, L, K or V)", show_byte(c, tmp));
    }
    s->index_type = (char)c;
    uint64_t npaths;
    if ((rc = expect(d, e, ' ', "' ' after the index type")) < 0)
        return rc;
    uint64_t np_off = CUR_OFF(d);
    if ((rc = read_u64(d, e, 1000000, "index path count", &npaths)) < 0)
        return rc;
    if (npaths != 1)
        return fail_at(d, e, np_off, d->line,
                       "index path count %llu is not supported (exactly 1 path expected)",
                       (unsigned long long)npaths);
    if ((rc = expect(d, e, ' ', "' ' after the path count")) < 0 ||
        (rc = read_token(d, e, true, MAX_TOKEN, "index bin", &bin_off, &s->bin_len)) < 0 ||
        (rc = expect(d, e, ' ', "' ' after the index bin")) < 0)
        return rc;
    c = get(d, e, "index bin type");
    if (c < 0)
        return c;
    if (c != 'N' && c != 'S' && c != 'G' && c != 'B') {
        char tmp[8];
        d->pos--;
        return FAIL(d, e, "invalid index bin type %s (expected N, S, G or B)", show_byte(c, tmp));
    }
    s->bin_type = (char)c;
    /* optional trailing tokens: [ctx] for `i`, [ctx] expr for `e` */
    bool saved_legacy = d->legacy;
    for (;;) {
        c = get(d, e, "LF at the end of the index line");
        if (c < 0)
            return c;
        if (c == '\n') {
            d->line++;
            break;
        }
        if (c != ' ' || extra == 2 || (!expr && extra == 1)) {
            char tmp[8];
            d->pos--;
            return FAIL(d, e, "expected LF at the end of the index line, found %s",
                        show_byte(c, tmp));
        }
        d->legacy = true; /* base64 tokens are not escaped */
        rc = read_token(d, e, true, MAX_LINE_TOKEN, expr ? "index expression" : "index context",
                        extra ? &x2_off : &x1_off, extra ? &x2_len : &x1_len);
        d->legacy = saved_legacy;
        if (rc < 0)
            return rc;
        if ((extra ? x2_len : x1_len) == 0)
            return FAIL(d, e, "empty token at the end of the index line");
        extra++;
    }
    if (expr && extra == 0)
        return FAIL(d, e, "expression index line without an expression");
    s->ns = (const char *)d->arena + ns_off;
    s->set = (const char *)d->arena + set_off;
    s->name = (const char *)d->arena + name_off;
    s->bin = (const char *)d->arena + bin_off;
    if (expr) {
        if (extra == 2) {
            s->ctx = (const char *)d->arena + x1_off;
            s->ctx_len = x1_len;
            s->expr = (const char *)d->arena + x2_off;
            s->expr_len = x2_len;
        } else {
            s->expr = (const char *)d->arena + x1_off;
            s->expr_len = x1_len;
        }
    } else if (extra == 1) {
        s->ctx = (const char *)d->arena + x1_off;
        s->ctx_len = x1_len;
    }
    return 0;
}

/* After "* u". */
static int parse_udf(struct asb_dec *d, struct err *e, struct asb_udf *u)
{
    int rc;
    size_t name_off, data_off;
    memset(u, 0, sizeof *u);
    if ((rc = expect(d, e, ' ', "' ' after \"* u\"")) < 0 ||
        (rc = expect(d, e, 'L', "UDF type 'L' (Lua)")) < 0 ||
        (rc = expect(d, e, ' ', "' ' after the UDF type")) < 0 ||
        (rc = read_token(d, e, true, MAX_TOKEN, "UDF name", &name_off, &u->name_len)) < 0 ||
        (rc = expect(d, e, ' ', "' ' after the UDF name")) < 0 ||
        (rc = read_sized(d, e, false, "UDF content", &data_off, &u->content_len)) < 0 ||
        (rc = expect(d, e, '\n', "LF after the UDF content")) < 0)
        return rc;
    u->type = 'L';
    u->name = (const char *)d->arena + name_off;
    u->content = d->arena + data_off;
    return 0;
}

int asb_dec_next(struct asb_dec *d, struct asb_item *item, struct err *e)
{
    memset(item, 0, sizeof *item);
    if (d->state == ST_ERROR) {
        if (e)
            *e = d->saved;
        return d->saved.code;
    }
    int rc = asb_dec_header(d, e);
    if (rc < 0)
        return rc;
    if (d->state == ST_EOF)
        return 0;
    rc = fill(d, 1, e);
    if (rc < 0)
        return rc;
    if (rc > 0) {
        d->state = ST_EOF;
        item->kind = ASB_ITEM_EOF;
        item->offset = CUR_OFF(d);
        item->line = d->line;
        return 0;
    }
    d->alen = 0;
    item->offset = CUR_OFF(d);
    item->line = d->line;
    int c = d->buf[d->pos++];
    if (c == '+') {
        item->kind = ASB_ITEM_RECORD;
        return parse_record(d, e, &item->u.rec);
    }
    if (c == '*' && !d->legacy) {
        if ((rc = expect(d, e, ' ', "' ' after '*'")) < 0)
            return rc;
        c = get(d, e, "global line type");
        if (c < 0)
            return c;
        if (c == 'i' || (c == 'e' && strcmp(d->version, "3.2") >= 0)) {
            item->kind = ASB_ITEM_SINDEX;
            return parse_sindex(d, e, c == 'e', &item->u.sindex);
        }
        if (c == 'u') {
            item->kind = ASB_ITEM_UDF;
            return parse_udf(d, e, &item->u.udf);
        }
        char tmp[8];
        d->pos--;
        return FAIL(d, e, "invalid global line type %s (expected i or u%s)", show_byte(c, tmp),
                    strcmp(d->version, "3.2") >= 0 ? ", e" : "");
    }
    char tmp[8];
    d->pos--;
    if (c == '#')
        return FAIL(d, e, "meta data line ('#') after the start of the data section");
    return FAIL(d, e, "expected a record ('+') or a global line ('*'), found %s",
                show_byte(c, tmp));
}

/* ---- object ------------------------------------------------------------------------------ */

struct asb_dec *asb_dec_new(asb_read_fn read, void *ctx, const struct asb_dec_opts *opts)
{
    struct asb_dec *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    size_t bs = opts && opts->buf_size ? opts->buf_size : DEC_DEFAULT_BUF;
    if (bs < DEC_MIN_BUF)
        bs = DEC_MIN_BUF;
    d->buf = malloc(bs);
    if (!d->buf) {
        free(d);
        return NULL;
    }
    d->cap = bs;
    d->read = read;
    d->rctx = ctx;
    d->line = 1;
    d->max_value = opts && opts->max_value_len ? opts->max_value_len : DEC_DEFAULT_MAX_VALUE;
    if (d->max_value > UINT32_MAX)
        d->max_value = UINT32_MAX;
    return d;
}

void asb_dec_free(struct asb_dec *d)
{
    if (!d)
        return;
    free(d->buf);
    free(d->arena);
    free(d->bins);
    free(d->boff);
    free(d->ns);
    free(d);
}

const char *asb_dec_version(const struct asb_dec *d) { return d->version; }
const char *asb_dec_namespace(const struct asb_dec *d) { return d->ns; }
bool asb_dec_first_file(const struct asb_dec *d) { return d->first_file; }
uint64_t asb_dec_offset(const struct asb_dec *d) { return d->base + d->pos; }
uint64_t asb_dec_line(const struct asb_dec *d) { return d->line; }
