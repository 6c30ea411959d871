/*
 * as_proto.h - the Aerospike wire protocol codec shared by our client and the test emulator.
 *
 * This module owns the byte layouts and nothing else: no sockets, no threads, no policy.
 *   - the 8-byte proto header (version 2, type, 48-bit BE body size, 128 MiB limit);
 *   - the 22-byte AS_MSG header, fields (4-byte size counting the type byte, type, data) and
 *     ops (4-byte size, op type, particle type, flags, name length, name, value);
 *   - info requests ("cmd\n" lines) and replies ("cmd\tvalue\n" lines), with helpers to split
 *     command names/parameters, look up key=value items and recognise ERROR:/FAIL:/error= forms;
 *   - the record digest (RIPEMD-160 of set || key type || key bytes, via OpenSSL EVP) and the
 *     partition id derived from it;
 *   - the constant tables (info bits, field/op/particle types, result codes with names).
 *
 * Encoding appends to a growable `struct as_buf`. Appends never fail loudly: an allocation
 * failure or an over-size length sets a sticky `failed` flag that the *_end/finish functions
 * report, so encoders can be written as straight-line code and checked once.
 *
 * Decoding works on caller-owned memory and never copies: views point into the buffer.
 * as_msg_parse() validates a whole message (every field and op inside its bounds, known
 * field/op/particle types) before anything is handed out, so the iterators that follow can
 * not over-read. Truncated, oversized or unknown input gives ERR_INVALID, never a crash.
 *
 * Facts come from shared/docs/aerospike-protocol.md and the captures in shared/wire/.
 */
#ifndef ABS_AEROSPIKE_AS_PROTO_H
#define ABS_AEROSPIKE_AS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* ---- proto header ------------------------------------------------------------------- */

#define AS_PROTO_VERSION 2
#define AS_PROTO_HEADER_SIZE 8
#define AS_PROTO_SIZE_MAX ((uint64_t)128 * 1024 * 1024) /* body bytes, both directions */

enum as_proto_type {
    AS_PROTO_INFO = 1,       /* text info protocol */
    AS_PROTO_ADMIN = 2,      /* security: login, authenticate, user admin */
    AS_PROTO_MSG = 3,        /* AS_MSG data commands */
    AS_PROTO_COMPRESSED = 4, /* zlib-wrapped type-3 message (Enterprise only) */
};

struct as_proto_header {
    uint8_t version;
    uint8_t type;
    uint64_t size; /* body bytes following the 8-byte header */
};

/* Writes the 8 header bytes. The caller guarantees size <= AS_PROTO_SIZE_MAX. */
void as_proto_header_encode(uint8_t out[AS_PROTO_HEADER_SIZE], uint8_t type, uint64_t size);
/* Reads and validates a header: version 2, type 1..4, size <= 128 MiB. ERR_INVALID otherwise. */
int as_proto_header_decode(const uint8_t in[AS_PROTO_HEADER_SIZE], struct as_proto_header *h,
                           struct err *e);

/* ---- AS_MSG constants ---------------------------------------------------------------- */

#define AS_MSG_HEADER_SIZE 22

/* info1 */
#define AS_INFO1_READ 0x01
#define AS_INFO1_GET_ALL 0x02
#define AS_INFO1_SHORT_QUERY 0x04
#define AS_INFO1_BATCH 0x08
#define AS_INFO1_XDR 0x10
#define AS_INFO1_NOBINDATA 0x20
#define AS_INFO1_READ_MODE_AP_ALL 0x40
#define AS_INFO1_COMPRESS_RESPONSE 0x80
/* info2 */
#define AS_INFO2_WRITE 0x01
#define AS_INFO2_DELETE 0x02
#define AS_INFO2_GENERATION 0x04
#define AS_INFO2_GENERATION_GT 0x08
#define AS_INFO2_DURABLE_DELETE 0x10
#define AS_INFO2_CREATE_ONLY 0x20
#define AS_INFO2_RELAX_AP_LONG_QUERY 0x40
#define AS_INFO2_RESPOND_ALL_OPS 0x80
/* info3 */
#define AS_INFO3_LAST 0x01
#define AS_INFO3_COMMIT_MASTER 0x02
#define AS_INFO3_PARTITION_DONE 0x04
#define AS_INFO3_UPDATE_ONLY 0x08
#define AS_INFO3_CREATE_OR_REPLACE 0x10
#define AS_INFO3_REPLACE_ONLY 0x20
#define AS_INFO3_SC_READ_TYPE 0x40
#define AS_INFO3_SC_READ_RELAX 0x80

/* record_ttl values in write requests */
#define AS_TTL_NAMESPACE_DEFAULT 0u
#define AS_TTL_NEVER_EXPIRE 0xFFFFFFFFu
#define AS_TTL_DONT_UPDATE 0xFFFFFFFEu
#define AS_TTL_MAX 315360000u /* 10 years; larger is result 4 */
/* record_ttl in read/scan requests: don't reset the TTL on read */
#define AS_READ_TOUCH_OFF 0xFFFFFFFFu

/* Seconds between the Unix epoch and the "citrusleaf" epoch 2010-01-01T00:00:00Z. */
#define AS_CITRUSLEAF_EPOCH 1262304000u

enum as_field_type {
    AS_FIELD_NAMESPACE = 0,
    AS_FIELD_SET = 1,
    AS_FIELD_KEY = 2,
    AS_FIELD_RECORD_VERSION = 3,
    AS_FIELD_DIGEST = 4,
    AS_FIELD_MRT_ID = 5,
    AS_FIELD_MRT_DEADLINE = 6,
    AS_FIELD_TRID = 7,
    AS_FIELD_SOCKET_TIMEOUT = 9,
    AS_FIELD_RPS = 10,
    AS_FIELD_PID_ARRAY = 11,
    AS_FIELD_DIGEST_ARRAY = 12,
    AS_FIELD_MAX_RECORDS = 13,
    AS_FIELD_LUT = 14,
    AS_FIELD_BVAL_ARRAY = 15,
    AS_FIELD_INDEX_NAME = 21,
    AS_FIELD_INDEX_RANGE = 22,
    AS_FIELD_INDEX_CONTEXT = 23,
    AS_FIELD_INDEX_EXPRESSION = 24,
    AS_FIELD_INDEX_TYPE = 26,
    AS_FIELD_UDF_FILENAME = 30,
    AS_FIELD_UDF_FUNCTION = 31,
    AS_FIELD_UDF_ARGLIST = 32,
    AS_FIELD_UDF_OP = 33,
    AS_FIELD_QUERY_BINLIST = 40,
    AS_FIELD_BATCH = 41,
    AS_FIELD_BATCH_WITH_SET = 42,
    AS_FIELD_FILTER = 43,
    AS_FIELD_ERROR_DETAILS = 45,
};

enum as_op_type {
    AS_OP_READ = 1,
    AS_OP_WRITE = 2,
    AS_OP_CDT_READ = 3,
    AS_OP_CDT_MODIFY = 4,
    AS_OP_INCR = 5,
    AS_OP_EXP_READ = 7,
    AS_OP_EXP_MODIFY = 8,
    AS_OP_APPEND = 9,
    AS_OP_PREPEND = 10,
    AS_OP_TOUCH = 11,
    AS_OP_BITS_READ = 12,
    AS_OP_BITS_MODIFY = 13,
    AS_OP_DELETE_ALL = 14,
    AS_OP_HLL_READ = 15,
    AS_OP_HLL_MODIFY = 16,
};

enum as_particle_type {
    AS_PARTICLE_NULL = 0,
    AS_PARTICLE_INTEGER = 1,
    AS_PARTICLE_FLOAT = 2,
    AS_PARTICLE_STRING = 3,
    AS_PARTICLE_BLOB = 4,
    AS_PARTICLE_JAVA_BLOB = 7,
    AS_PARTICLE_CSHARP_BLOB = 8,
    AS_PARTICLE_PYTHON_BLOB = 9,
    AS_PARTICLE_RUBY_BLOB = 10,
    AS_PARTICLE_PHP_BLOB = 11,
    AS_PARTICLE_ERLANG_BLOB = 12,
    AS_PARTICLE_VECTOR = 16,
    AS_PARTICLE_BOOL = 17,
    AS_PARTICLE_HLL = 18,
    AS_PARTICLE_MAP = 19,
    AS_PARTICLE_LIST = 20,
    AS_PARTICLE_GEOJSON = 23,
};

#define AS_BIN_NAME_MAX 15        /* longer names are result 21 */
#define AS_NAMESPACE_NAME_MAX 31
#define AS_SET_NAME_MAX 63
#define AS_DIGEST_SIZE 20
#define AS_PARTITIONS 4096

bool as_field_type_known(unsigned type);
bool as_op_type_known(unsigned type);
bool as_particle_type_known(unsigned type);
/* "NAMESPACE", "INTEGER", "READ" ...; "?" when unknown. */
const char *as_field_type_name(unsigned type);
const char *as_particle_type_name(unsigned type);
const char *as_op_type_name(unsigned type);

/* ---- result codes -------------------------------------------------------------------- */

enum as_result {
    AS_OK = 0,
    AS_ERR_UNKNOWN = 1,
    AS_ERR_NOT_FOUND = 2,
    AS_ERR_GENERATION = 3,
    AS_ERR_PARAMETER = 4,
    AS_ERR_RECORD_EXISTS = 5,
    AS_ERR_BIN_EXISTS = 6,
    AS_ERR_CLUSTER_KEY_MISMATCH = 7,
    AS_ERR_OUT_OF_SPACE = 8,
    AS_ERR_TIMEOUT = 9,
    AS_ERR_ALWAYS_FORBIDDEN = 10,
    AS_ERR_UNAVAILABLE = 11,
    AS_ERR_INCOMPATIBLE_TYPE = 12,
    AS_ERR_RECORD_TOO_BIG = 13,
    AS_ERR_KEY_BUSY = 14,
    AS_ERR_QUERY_ABORT = 15,
    AS_ERR_UNSUPPORTED_FEATURE = 16,
    AS_ERR_BIN_NOT_FOUND = 17,
    AS_ERR_DEVICE_OVERLOAD = 18,
    AS_ERR_KEY_MISMATCH = 19,
    AS_ERR_NAMESPACE = 20,
    AS_ERR_BIN_NAME = 21,
    AS_ERR_FORBIDDEN = 22,
    AS_ERR_ELEMENT_NOT_FOUND = 23,
    AS_ERR_ELEMENT_EXISTS = 24,
    AS_ERR_ENTERPRISE_ONLY = 25,
    AS_ERR_OP_NOT_APPLICABLE = 26,
    AS_ERR_FILTERED_OUT = 27,
    AS_ERR_LOST_CONFLICT = 28,
    AS_ERR_XDR_KEY_BUSY = 32,
    AS_SEC_OK_LAST = 50,
    AS_SEC_ERR_NOT_SUPPORTED = 51,
    AS_SEC_ERR_NOT_CONFIGURED = 52,
    AS_SEC_ERR_SCHEME = 53,
    AS_SEC_ERR_COMMAND = 54,
    AS_SEC_ERR_FIELD = 55,
    AS_SEC_ERR_STATE = 56,
    AS_SEC_ERR_USER = 60,
    AS_SEC_ERR_USER_EXISTS = 61,
    AS_SEC_ERR_PASSWORD = 62,
    AS_SEC_ERR_EXPIRED_PASSWORD = 63,
    AS_SEC_ERR_FORBIDDEN_PASSWORD = 64,
    AS_SEC_ERR_CREDENTIAL = 65,
    AS_SEC_ERR_EXPIRED_SESSION = 66,
    AS_SEC_ERR_ROLE = 70,
    AS_SEC_ERR_ROLE_EXISTS = 71,
    AS_SEC_ERR_PRIVILEGE = 72,
    AS_SEC_ERR_WHITELIST = 73,
    AS_SEC_ERR_QUOTAS_NOT_ENABLED = 74,
    AS_SEC_ERR_QUOTA = 75,
    AS_SEC_ERR_NOT_AUTHENTICATED = 80,
    AS_SEC_ERR_ROLE_VIOLATION = 81,
    AS_SEC_ERR_NOT_WHITELISTED = 82,
    AS_SEC_ERR_QUOTA_EXCEEDED = 83,
    AS_ERR_UDF_EXECUTION = 100,
    AS_ERR_BATCH_DISABLED = 150,
    AS_ERR_BATCH_MAX_REQUESTS = 151,
    AS_ERR_BATCH_QUEUES_FULL = 152,
    AS_ERR_GEO_INVALID_GEOJSON = 160,
    AS_ERR_SINDEX_FOUND = 200,
    AS_ERR_SINDEX_NOT_FOUND = 201,
    AS_ERR_SINDEX_OOM = 202,
    AS_ERR_SINDEX_NOT_READABLE = 203,
    AS_ERR_SINDEX_GENERIC = 204,
    AS_ERR_SINDEX_NAME = 205,
    AS_ERR_SINDEX_MAX_COUNT = 206,
};

/* Upper-case name of a server result code ("OK", "NOT_FOUND", "GENERATION", ...), or
 * "UNKNOWN_RESULT" for a code not in the table. */
const char *as_result_name(int code);

/* ---- growable encode buffer ----------------------------------------------------------- */

struct as_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed; /* sticky: an append could not allocate or a length overflowed */
};

void as_buf_init(struct as_buf *b);
void as_buf_free(struct as_buf *b);
static inline void as_buf_reset(struct as_buf *b) { b->len = 0; b->failed = false; }
/* Makes room for `extra` more bytes. 0 or ERR_NOMEM (also sets `failed`). */
int as_buf_reserve(struct as_buf *b, size_t extra);
int as_buf_append(struct as_buf *b, const void *p, size_t n);
int as_buf_put_u8(struct as_buf *b, uint8_t v);
int as_buf_put_u16(struct as_buf *b, uint16_t v); /* big-endian */
int as_buf_put_u32(struct as_buf *b, uint32_t v);
int as_buf_put_u64(struct as_buf *b, uint64_t v);
int as_buf_put_u16le(struct as_buf *b, uint16_t v);
/* Patches big-endian integers already written at offset `off` (no-op if out of range). */
void as_buf_patch_u16(struct as_buf *b, size_t off, uint16_t v);
void as_buf_patch_u32(struct as_buf *b, size_t off, uint32_t v);

/* Big-endian readers for validated memory. */
static inline uint16_t as_get_u16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t as_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t as_get_u64(const uint8_t *p)
{
    return ((uint64_t)as_get_u32(p) << 32) | as_get_u32(p + 4);
}
static inline uint16_t as_get_u16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* ---- encoding: proto frames, messages, fields, ops ------------------------------------- */

/* Appends a placeholder proto header and returns its offset (pass it to as_proto_end). */
size_t as_proto_begin(struct as_buf *b, uint8_t type);
/* Fills in the size of the frame begun at `off`. ERR_NOMEM if an append failed earlier,
 * ERR_INVALID if the body exceeds 128 MiB. */
int as_proto_end(struct as_buf *b, size_t off, struct err *e);

struct as_msg_header {
    uint8_t info1, info2, info3, info4;
    uint8_t result_code;
    uint32_t generation;      /* partition id in a PARTITION_DONE reply */
    uint32_t record_ttl;      /* TTL in writes, void-time in replies */
    uint32_t transaction_ttl; /* server timeout ms; batch row index in batch replies */
    uint16_t n_fields;
    uint16_t n_ops;
};

/* Appends a 22-byte header; returns its offset (for as_msg_set_counts). */
size_t as_msg_header_put(struct as_buf *b, const struct as_msg_header *h);
void as_msg_set_counts(struct as_buf *b, size_t msg_off, uint16_t n_fields, uint16_t n_ops);

/* A field: [4 BE] 1 + len, [1] type, [len] data. */
int as_field_put(struct as_buf *b, uint8_t type, const void *data, size_t len);
int as_field_put_str(struct as_buf *b, uint8_t type, const char *s); /* NUL not included */
int as_field_put_u32(struct as_buf *b, uint8_t type, uint32_t v);
int as_field_put_u64(struct as_buf *b, uint8_t type, uint64_t v);
/* For fields built piece by piece (PID_ARRAY, BATCH): begin returns the offset to pass to end,
 * which patches the size. */
size_t as_field_begin(struct as_buf *b, uint8_t type);
void as_field_end(struct as_buf *b, size_t off);

/* An op: [4 BE] 4 + name_len + value_len, op type, particle type, flags 0, name_len, name, value.
 * name_len above 255 sets `failed` (the protocol cannot carry it). */
int as_op_put(struct as_buf *b, uint8_t op_type, uint8_t particle, const char *name, size_t name_len,
              const void *value, size_t value_len);
int as_op_put_int(struct as_buf *b, uint8_t op_type, const char *name, int64_t v);
int as_op_put_double(struct as_buf *b, uint8_t op_type, const char *name, double v);
int as_op_put_str(struct as_buf *b, uint8_t op_type, const char *name, const char *s);

/*
 * A counting writer for one complete single-message frame (proto header + AS_MSG): fields
 * and ops are counted and the header patched by as_msgw_end(). Fields must come before ops.
 */
struct as_msgw {
    struct as_buf *b;
    size_t proto_off;
    size_t msg_off;
    uint16_t n_fields;
    uint16_t n_ops;
    bool order_error; /* a field was added after an op */
};

void as_msgw_begin(struct as_msgw *w, struct as_buf *b, const struct as_msg_header *h);
void as_msgw_field(struct as_msgw *w, uint8_t type, const void *data, size_t len);
void as_msgw_field_str(struct as_msgw *w, uint8_t type, const char *s);
void as_msgw_field_u32(struct as_msgw *w, uint8_t type, uint32_t v);
void as_msgw_field_u64(struct as_msgw *w, uint8_t type, uint64_t v);
size_t as_msgw_field_begin(struct as_msgw *w, uint8_t type); /* then as_field_end(w->b, off) */
void as_msgw_op(struct as_msgw *w, uint8_t op_type, uint8_t particle, const char *name,
                size_t name_len, const void *value, size_t value_len);
int as_msgw_end(struct as_msgw *w, struct err *e);

/* ---- decoding --------------------------------------------------------------------------- */

struct as_field {
    uint8_t type;
    uint32_t len;
    const uint8_t *data;
};

struct as_op {
    uint8_t op_type;
    uint8_t particle_type;
    uint8_t flags;    /* bit 0: an 8-byte LUT follows the name (XDR) */
    uint8_t name_len;
    const uint8_t *name;
    uint32_t value_len;
    const uint8_t *value;
};

/* A validated message inside a caller-owned buffer. */
struct as_msg_view {
    struct as_msg_header h;
    const uint8_t *fields; /* first field */
    size_t fields_len;
    const uint8_t *ops;    /* first op */
    size_t ops_len;
    size_t size;           /* bytes the message occupies (22 + fields + ops) */
};

/* Decodes a 22-byte header; ERR_INVALID if fewer than 22 bytes or header_sz != 22. */
int as_msg_header_decode(const uint8_t *p, size_t avail, struct as_msg_header *h, struct err *e);

/* Validates the message starting at p (at most `avail` bytes; several messages may follow in
 * one chunk): header, n_fields fields and n_ops ops all in bounds, field types, op types and
 * particle types known, op sizes consistent. ERR_INVALID with a message otherwise. */
int as_msg_parse(const uint8_t *p, size_t avail, struct as_msg_view *v, struct err *e);

/* Iteration over a validated view (false at the end). */
struct as_iter {
    const uint8_t *p;
    const uint8_t *end;
    unsigned left;
};

void as_msg_fields(const struct as_msg_view *v, struct as_iter *it);
bool as_field_next(struct as_iter *it, struct as_field *f);
void as_msg_ops(const struct as_msg_view *v, struct as_iter *it);
bool as_op_next(struct as_iter *it, struct as_op *op);
/* First field of a type; false if absent. */
bool as_msg_find_field(const struct as_msg_view *v, uint8_t type, struct as_field *f);

/* Particle value readers; ERR_INVALID for a wrong length. Integers accept 1, 2, 4 or 8 bytes
 * (shorter ones zero-extended, as the server does); floats exactly 8; bools exactly 1. */
int as_particle_int(const uint8_t *v, uint32_t len, int64_t *out);
int as_particle_double(const uint8_t *v, uint32_t len, double *out);
int as_particle_bool(const uint8_t *v, uint32_t len, bool *out);
/* The JSON text of a GEOJSON particle: skips [1] flags [2 BE] ncells [8 x ncells] cells. */
int as_particle_geojson_text(const uint8_t *v, uint32_t len, const uint8_t **json, uint32_t *json_len);

/* ---- info protocol ---------------------------------------------------------------------- */

/* Appends one type-1 frame whose body is `cmds` (one or more commands separated by '\n'); a
 * missing final '\n' is added (the server ignores a last command without it). */
int as_info_request(struct as_buf *b, const char *cmds, struct err *e);
/* Same for an array of single commands (each must not contain '\n'). */
int as_info_request_v(struct as_buf *b, const char *const *cmds, size_t n, struct err *e);

/* One reply line: `name` is the exact command text echoed back, `value` what follows the TAB. */
struct as_info_line {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Reads the next line of a reply body at *cur (< end). Returns 1 with *line filled, 0 at the
 * end, ERR_INVALID for a line without TAB (the value may be empty; a final line without '\n'
 * is accepted). */
int as_info_next_line(const char **cur, const char *end, struct as_info_line *line, struct err *e);
/* Finds the reply line whose echoed command equals `name` exactly. false if absent. */
bool as_info_find(const char *body, size_t len, const char *name, struct as_info_line *line);

/* Splits one command line "name[/args][:params]" at the first '/', ':' or ';': the name, and
 * the parameter text after that separator (empty if none). */
void as_info_cmd_split(const char *cmd, size_t len, const char **name, size_t *name_len,
                       const char **params, size_t *params_len);
/* Looks up `key` in "k=v<sep>k=v..." text (sep is ';' for parameters and namespace stats,
 * ':' inside one sets/sindex entry, ',' for udf-list entries). The value runs to the next sep. */
bool as_info_kv(const char *s, size_t len, char sep, const char *key, const char **val,
                size_t *val_len);

/* Recognises error values: "ERROR:<code>:<msg>", "ERROR::<msg>" (code 1), "FAIL:<code>:<msg>",
 * "error=<reason>[;...]". Returns true for an error, with *code (-1 if none is given) and the
 * message span (which may be empty). */
bool as_info_value_error(const char *v, size_t len, int *code, const char **msg, size_t *msg_len);

/* ---- digest and partition ---------------------------------------------------------------- */

/* digest = RIPEMD-160(set || key_type || key); an absent set is an empty one. Key bytes are
 * integer: 8-byte BE, double: 8-byte BE IEEE, string: UTF-8, blob: raw (type byte its own).
 * ERR_INTERNAL if OpenSSL has no RIPEMD-160 (neither default nor legacy provider). */
int as_digest_compute(const void *set, size_t set_len, uint8_t key_type, const void *key,
                      size_t key_len, uint8_t out[AS_DIGEST_SIZE], struct err *e);
int as_digest_int(const char *set, int64_t key, uint8_t out[AS_DIGEST_SIZE], struct err *e);
int as_digest_str(const char *set, const char *key, uint8_t out[AS_DIGEST_SIZE], struct err *e);

/* Partition id = (LE u16 of digest[0..1]) & 0xFFF. */
static inline uint32_t as_partition_id(const uint8_t *digest)
{
    return (uint32_t)(digest[0] | (digest[1] << 8)) & (AS_PARTITIONS - 1);
}

#endif
