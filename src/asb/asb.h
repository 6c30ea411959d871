/*
 * asb.h - the `.asb` backup file format (text format "Version 3.1" of asbackup): the record
 * model, the encoder and the streaming decoder.
 *
 * The model is a set of *views*: every string and byte value is a pointer + length into memory
 * somebody else owns. The encoder reads views the caller filled (typically pointing into a scan
 * reply buffer); the decoder hands out views into its own arena that stay valid until the next
 * call on the same decoder. Neither side allocates per record.
 *
 * Output of the encoder is byte-identical to asbackup 4.5.8 for the same input (escaping of
 * names with `\`, `%.17g` doubles, base64 blobs, `!` raw forms in compact mode, UDF and secondary
 * index lines). The decoder accepts the whole grammar asrestore accepts (plus `* e` expression
 * index lines of format 3.2) and rejects anything else with the byte offset and line number of
 * the problem.
 *
 * Thread-safety: encoder functions are pure; a writer or decoder object is used by one thread.
 */
#ifndef ABS_ASB_ASB_H
#define ABS_ASB_ASB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* ---- record model ------------------------------------------------------------------------ */

/* Aerospike particle types (the numbers used on the wire). ASB_P_NIL also means "no user key". */
enum asb_ptype {
    ASB_P_NIL = 0,
    ASB_P_INTEGER = 1,
    ASB_P_DOUBLE = 2,
    ASB_P_STRING = 3,
    ASB_P_BLOB = 4,
    ASB_P_JAVA = 7,
    ASB_P_CSHARP = 8,
    ASB_P_PYTHON = 9,
    ASB_P_RUBY = 10,
    ASB_P_PHP = 11,
    ASB_P_ERLANG = 12,
    ASB_P_BOOL = 17,
    ASB_P_HLL = 18,
    ASB_P_MAP = 19,  /* raw msgpack particle bytes, kept opaque */
    ASB_P_LIST = 20, /* raw msgpack particle bytes, kept opaque */
    ASB_P_GEOJSON = 23,
};

/* A typed value: a bin value or a user key. Which member is meaningful depends on `type`:
 * INTEGER -> i, DOUBLE -> d, BOOL -> b, NIL -> none, every other type -> data/len. */
struct asb_value {
    uint8_t type; /* enum asb_ptype */
    bool b;
    uint32_t len;
    int64_t i;
    double d;
    const uint8_t *data;
};

struct asb_bin {
    const char *name; /* not escaped; the decoder NUL-terminates it */
    uint32_t name_len;
    struct asb_value v;
};

#define ASB_DIGEST_LEN 20
#define ASB_MAX_BINS 65535u
/* Seconds between the Unix epoch and the Citrusleaf epoch (2010-01-01T00:00:00Z). */
#define ASB_CITRUSLEAF_EPOCH 1262304000u

struct asb_record {
    const char *ns; /* not escaped; the decoder NUL-terminates ns and set */
    uint32_t ns_len;
    const char *set; /* set_len 0 = no set (no `+ s` line) */
    uint32_t set_len;
    uint8_t digest[ASB_DIGEST_LEN];
    struct asb_value key; /* key.type: NIL (no key), INTEGER, DOUBLE, STRING or BLOB */
    uint16_t generation;
    uint32_t void_time; /* seconds since the Citrusleaf epoch; 0 = never expires */
    uint32_t n_bins;
    const struct asb_bin *bins;
};

/* `* u` line. Only Lua ('L') exists. */
struct asb_udf {
    char type; /* 'L' */
    const char *name;
    uint32_t name_len;
    const uint8_t *content;
    uint32_t content_len;
};

/* `* i` line (or `* e`, when `expr` is set; format 3.2). */
struct asb_sindex {
    const char *ns;
    uint32_t ns_len;
    const char *set; /* empty token when set_len is 0; asbackup 4.5.8 writes "null" for none */
    uint32_t set_len;
    const char *name;
    uint32_t name_len;
    char index_type; /* 'N' bin, 'L' list elements, 'K' map keys, 'V' map values */
    const char *bin;
    uint32_t bin_len;
    char bin_type;   /* 'N' numeric, 'S' string, 'G' geo2dsphere, 'B' blob */
    const char *ctx; /* base64 CDT context, ctx_len 0 = none; written verbatim */
    uint32_t ctx_len;
    const char *expr; /* base64 expression, expr_len 0 = plain `* i` line */
    uint32_t expr_len;
};

/* Void-time as asbackup computes it from a record TTL: 0xFFFFFFFF (never) -> 0, else now + ttl
 * where now_cl = Unix seconds - ASB_CITRUSLEAF_EPOCH. */
static inline uint32_t asb_void_time_from_ttl(uint32_t ttl, uint32_t now_cl)
{
    return ttl == UINT32_MAX ? 0 : now_cl + ttl;
}

/* ---- encoder ----------------------------------------------------------------------------- */

/* Upper bound of the bytes asb_encode_record() writes for `r` (cheap: one pass over the bins). */
size_t asb_record_max_size(const struct asb_record *r, bool compact);

/* Encodes one record (`+ k`..`+ b` lines and its bin lines, bins in the given order) into
 * `out`, which must hold `cap` >= asb_record_max_size() bytes. Sets *written.
 * Fails (ERR_INVALID) on an unknown particle or key type, a too long value, or a too small cap. */
int asb_encode_record(const struct asb_record *r, bool compact, uint8_t *out, size_t cap,
                      size_t *written, struct err *e);

/* Header: "Version 3.1\n# namespace <ns>\n[# first-file\n]". `version` NULL means "3.1"
 * (must be 3 characters). Returns bytes written or a negative error when cap is too small
 * (asb_header_max_size() is always enough). */
size_t asb_header_max_size(uint32_t ns_len);
int asb_encode_header(const char *version, const char *ns, uint32_t ns_len, bool first_file,
                      uint8_t *out, size_t cap, size_t *written, struct err *e);

size_t asb_udf_max_size(const struct asb_udf *u);
int asb_encode_udf(const struct asb_udf *u, uint8_t *out, size_t cap, size_t *written,
                   struct err *e);

size_t asb_sindex_max_size(const struct asb_sindex *s);
int asb_encode_sindex(const struct asb_sindex *s, uint8_t *out, size_t cap, size_t *written,
                      struct err *e);

/* Escapes `\`, space and LF with a backslash. `out` needs 2 * len bytes. Returns bytes written. */
size_t asb_escape(const char *in, size_t len, char *out);

/* Base64 (standard alphabet, '=' padding). */
static inline size_t asb_b64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }
size_t asb_b64_encode(const uint8_t *in, size_t n, char *out);
/* Strict decode of `n` chars (n % 4 == 0; padding only at the end). Returns 0 and sets *out_len,
 * or -1 on an invalid character or layout. `out` needs n / 4 * 3 bytes. */
int asb_b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len);

/* Writes exactly what printf("%.17g", d) writes (asbackup's double format: "-0", "1e+21",
 * "nan", "inf") into out (>= 40 bytes), without printf for common values. Returns length. */
size_t asb_format_double(double d, char *out);

/* Bin-line letter for a particle type ('I', 'S', 'B', 'M', ...), 0 if it has none. */
char asb_ptype_letter(uint8_t ptype);

/* ---- buffered writer --------------------------------------------------------------------- */

/* Where encoded bytes go (an io stage, a file, a memory buffer). Returns 0 or a negative code
 * and fills e. */
typedef int (*asb_sink_fn)(void *ctx, const void *data, size_t len, struct err *e);

/* Accumulates encoded lines in one buffer and hands full buffers to the sink: no stdio and no
 * allocation per record (the buffer only grows for a record bigger than it). */
struct asb_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool compact;
    asb_sink_fn sink;
    void *sink_ctx;
    uint64_t records; /* records written */
    uint64_t bytes;   /* bytes produced (flushed or still buffered) */
};

#define ASB_WRITER_DEFAULT_BUF (256u * 1024u)

int asb_writer_init(struct asb_writer *w, size_t buf_size, bool compact, asb_sink_fn sink,
                    void *sink_ctx, struct err *e);
int asb_writer_header(struct asb_writer *w, const char *ns, uint32_t ns_len, bool first_file,
                      struct err *e);
int asb_writer_udf(struct asb_writer *w, const struct asb_udf *u, struct err *e);
int asb_writer_sindex(struct asb_writer *w, const struct asb_sindex *s, struct err *e);
int asb_writer_record(struct asb_writer *w, const struct asb_record *r, struct err *e);
/* Hands buffered bytes to the sink (call before closing the sink or rotating files). */
int asb_writer_flush(struct asb_writer *w, struct err *e);
void asb_writer_free(struct asb_writer *w);

/* ---- decoder ----------------------------------------------------------------------------- */

/* Byte source: fill buf with up to cap bytes, set *got (0 = end of input). Returns 0 or a
 * negative code and fills e. */
typedef int (*asb_read_fn)(void *ctx, void *buf, size_t cap, size_t *got, struct err *e);

enum asb_item_kind {
    ASB_ITEM_EOF = 0,
    ASB_ITEM_RECORD,
    ASB_ITEM_UDF,
    ASB_ITEM_SINDEX,
};

struct asb_item {
    enum asb_item_kind kind;
    uint64_t offset; /* byte offset of the item's first byte in the stream */
    uint64_t line;   /* its line number (1-based; LFs inside raw values count) */
    union {
        struct asb_record rec;
        struct asb_udf udf;
        struct asb_sindex sindex;
    } u;
};

struct asb_dec_opts {
    size_t buf_size;        /* read buffer (default 256 KiB) */
    uint64_t max_value_len; /* largest accepted value / UDF body (default 128 MiB) */
};

struct asb_dec;

/* The decoder keeps `read`/`ctx` and never closes them. opts may be NULL. */
struct asb_dec *asb_dec_new(asb_read_fn read, void *ctx, const struct asb_dec_opts *opts);
void asb_dec_free(struct asb_dec *d);

/* Reads and checks "Version x.y" and the `#` meta lines (idempotent; asb_dec_next calls it). */
int asb_dec_header(struct asb_dec *d, struct err *e);
/* Next item. Views in *item stay valid until the next call. At end of input item->kind is
 * ASB_ITEM_EOF. Errors are sticky: after one, every call fails with the same message. Error
 * messages look like "line 12, offset 345: expected ...". */
int asb_dec_next(struct asb_dec *d, struct asb_item *item, struct err *e);

const char *asb_dec_version(const struct asb_dec *d); /* "3.1"; "" before the header */
/* Namespace of the `# namespace` line (NUL-terminated), NULL if the file had none. */
const char *asb_dec_namespace(const struct asb_dec *d);
bool asb_dec_first_file(const struct asb_dec *d);
uint64_t asb_dec_offset(const struct asb_dec *d); /* bytes consumed so far */
uint64_t asb_dec_line(const struct asb_dec *d);

/* What the first bytes of a file look like (for clear errors when options do not match). */
enum asb_sniff_kind { ASB_SNIFF_UNKNOWN = 0, ASB_SNIFF_TEXT, ASB_SNIFF_ZSTD };
enum asb_sniff_kind asb_sniff(const void *data, size_t len);

#endif
