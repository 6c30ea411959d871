/*
 * as_proto.c - Aerospike wire codec: proto frames, AS_MSG headers/fields/ops, info text,
 * digests and the constant tables (see as_proto.h for the contract).
 *
 * Encoders append to an as_buf with a sticky failure flag; decoders validate every length
 * against the bytes actually available before reading, so hostile input is an error value.
 */
#include "aerospike/as_proto.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/provider.h>

/* ---- tables --------------------------------------------------------------------------- */

bool as_field_type_known(unsigned t)
{
    switch (t) {
    case AS_FIELD_NAMESPACE: case AS_FIELD_SET: case AS_FIELD_KEY: case AS_FIELD_RECORD_VERSION:
    case AS_FIELD_DIGEST: case AS_FIELD_MRT_ID: case AS_FIELD_MRT_DEADLINE: case AS_FIELD_TRID:
    case AS_FIELD_SOCKET_TIMEOUT: case AS_FIELD_RPS: case AS_FIELD_PID_ARRAY:
    case AS_FIELD_DIGEST_ARRAY: case AS_FIELD_MAX_RECORDS: case AS_FIELD_LUT:
    case AS_FIELD_BVAL_ARRAY: case AS_FIELD_INDEX_NAME: case AS_FIELD_INDEX_RANGE:
    case AS_FIELD_INDEX_CONTEXT: case AS_FIELD_INDEX_EXPRESSION: case AS_FIELD_INDEX_TYPE:
    case AS_FIELD_UDF_FILENAME: case AS_FIELD_UDF_FUNCTION: case AS_FIELD_UDF_ARGLIST:
    case AS_FIELD_UDF_OP: case AS_FIELD_QUERY_BINLIST: case AS_FIELD_BATCH:
    case AS_FIELD_BATCH_WITH_SET: case AS_FIELD_FILTER: case AS_FIELD_ERROR_DETAILS:
        return true;
    default:
        return false;
    }
}

const char *as_field_type_name(unsigned t)
{
    switch (t) {
    case AS_FIELD_NAMESPACE: return "NAMESPACE";
    case AS_FIELD_SET: return "SET";
    case AS_FIELD_KEY: return "KEY";
    case AS_FIELD_RECORD_VERSION: return "RECORD_VERSION";
    case AS_FIELD_DIGEST: return "DIGEST";
    case AS_FIELD_MRT_ID: return "MRT_ID";
    case AS_FIELD_MRT_DEADLINE: return "MRT_DEADLINE";
    case AS_FIELD_TRID: return "TRID";
    case AS_FIELD_SOCKET_TIMEOUT: return "SOCKET_TIMEOUT";
    case AS_FIELD_RPS: return "RPS";
    case AS_FIELD_PID_ARRAY: return "PID_ARRAY";
    case AS_FIELD_DIGEST_ARRAY: return "DIGEST_ARRAY";
    case AS_FIELD_MAX_RECORDS: return "MAX_RECORDS";
    case AS_FIELD_LUT: return "LUT";
    case AS_FIELD_BVAL_ARRAY: return "BVAL_ARRAY";
    case AS_FIELD_INDEX_NAME: return "INDEX_NAME";
    case AS_FIELD_INDEX_RANGE: return "INDEX_RANGE";
    case AS_FIELD_INDEX_CONTEXT: return "INDEX_CONTEXT";
    case AS_FIELD_INDEX_EXPRESSION: return "INDEX_EXPRESSION";
    case AS_FIELD_INDEX_TYPE: return "INDEX_TYPE";
    case AS_FIELD_UDF_FILENAME: return "UDF_FILENAME";
    case AS_FIELD_UDF_FUNCTION: return "UDF_FUNCTION";
    case AS_FIELD_UDF_ARGLIST: return "UDF_ARGLIST";
    case AS_FIELD_UDF_OP: return "UDF_OP";
    case AS_FIELD_QUERY_BINLIST: return "QUERY_BINLIST";
    case AS_FIELD_BATCH: return "BATCH";
    case AS_FIELD_BATCH_WITH_SET: return "BATCH_WITH_SET";
    case AS_FIELD_FILTER: return "FILTER";
    case AS_FIELD_ERROR_DETAILS: return "ERROR_DETAILS";
    default: return "?";
    }
}

bool as_op_type_known(unsigned t)
{
    return (t >= AS_OP_READ && t <= AS_OP_HLL_MODIFY && t != 6);
}

const char *as_op_type_name(unsigned t)
{
    static const char *const names[] = {
        "?", "READ", "WRITE", "CDT_READ", "CDT_MODIFY", "INCR", "?", "EXP_READ", "EXP_MODIFY",
        "APPEND", "PREPEND", "TOUCH", "BITS_READ", "BITS_MODIFY", "DELETE_ALL", "HLL_READ",
        "HLL_MODIFY",
    };
    return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

bool as_particle_type_known(unsigned t)
{
    switch (t) {
    case AS_PARTICLE_NULL: case AS_PARTICLE_INTEGER: case AS_PARTICLE_FLOAT:
    case AS_PARTICLE_STRING: case AS_PARTICLE_BLOB: case AS_PARTICLE_JAVA_BLOB:
    case AS_PARTICLE_CSHARP_BLOB: case AS_PARTICLE_PYTHON_BLOB: case AS_PARTICLE_RUBY_BLOB:
    case AS_PARTICLE_PHP_BLOB: case AS_PARTICLE_ERLANG_BLOB: case AS_PARTICLE_VECTOR:
    case AS_PARTICLE_BOOL: case AS_PARTICLE_HLL: case AS_PARTICLE_MAP: case AS_PARTICLE_LIST:
    case AS_PARTICLE_GEOJSON:
        return true;
    default:
        return false;
    }
}

const char *as_particle_type_name(unsigned t)
{
    switch (t) {
    case AS_PARTICLE_NULL: return "NULL";
    case AS_PARTICLE_INTEGER: return "INTEGER";
    case AS_PARTICLE_FLOAT: return "FLOAT";
    case AS_PARTICLE_STRING: return "STRING";
    case AS_PARTICLE_BLOB: return "BLOB";
    case AS_PARTICLE_JAVA_BLOB: return "JAVA_BLOB";
    case AS_PARTICLE_CSHARP_BLOB: return "CSHARP_BLOB";
    case AS_PARTICLE_PYTHON_BLOB: return "PYTHON_BLOB";
    case AS_PARTICLE_RUBY_BLOB: return "RUBY_BLOB";
    case AS_PARTICLE_PHP_BLOB: return "PHP_BLOB";
    case AS_PARTICLE_ERLANG_BLOB: return "ERLANG_BLOB";
    case AS_PARTICLE_VECTOR: return "VECTOR";
    case AS_PARTICLE_BOOL: return "BOOL";
    case AS_PARTICLE_HLL: return "HLL";
    case AS_PARTICLE_MAP: return "MAP";
    case AS_PARTICLE_LIST: return "LIST";
    case AS_PARTICLE_GEOJSON: return "GEOJSON";
    default: return "?";
    }
}

const char *as_result_name(int code)
{
    switch (code) {
    case AS_OK: return "OK";
    case AS_ERR_UNKNOWN: return "UNKNOWN";
    case AS_ERR_NOT_FOUND: return "NOT_FOUND";
    case AS_ERR_GENERATION: return "GENERATION";
    case AS_ERR_PARAMETER: return "PARAMETER";
    case AS_ERR_RECORD_EXISTS: return "RECORD_EXISTS";
    case AS_ERR_BIN_EXISTS: return "BIN_EXISTS";
    case AS_ERR_CLUSTER_KEY_MISMATCH: return "CLUSTER_KEY_MISMATCH";
    case AS_ERR_OUT_OF_SPACE: return "OUT_OF_SPACE";
    case AS_ERR_TIMEOUT: return "TIMEOUT";
    case AS_ERR_ALWAYS_FORBIDDEN: return "ALWAYS_FORBIDDEN";
    case AS_ERR_UNAVAILABLE: return "UNAVAILABLE";
    case AS_ERR_INCOMPATIBLE_TYPE: return "INCOMPATIBLE_TYPE";
    case AS_ERR_RECORD_TOO_BIG: return "RECORD_TOO_BIG";
    case AS_ERR_KEY_BUSY: return "KEY_BUSY";
    case AS_ERR_QUERY_ABORT: return "QUERY_ABORT";
    case AS_ERR_UNSUPPORTED_FEATURE: return "UNSUPPORTED_FEATURE";
    case AS_ERR_BIN_NOT_FOUND: return "BIN_NOT_FOUND";
    case AS_ERR_DEVICE_OVERLOAD: return "DEVICE_OVERLOAD";
    case AS_ERR_KEY_MISMATCH: return "KEY_MISMATCH";
    case AS_ERR_NAMESPACE: return "NAMESPACE";
    case AS_ERR_BIN_NAME: return "BIN_NAME";
    case AS_ERR_FORBIDDEN: return "FORBIDDEN";
    case AS_ERR_ELEMENT_NOT_FOUND: return "ELEMENT_NOT_FOUND";
    case AS_ERR_ELEMENT_EXISTS: return "ELEMENT_EXISTS";
    case AS_ERR_ENTERPRISE_ONLY: return "ENTERPRISE_ONLY";
    case AS_ERR_OP_NOT_APPLICABLE: return "OP_NOT_APPLICABLE";
    case AS_ERR_FILTERED_OUT: return "FILTERED_OUT";
    case AS_ERR_LOST_CONFLICT: return "LOST_CONFLICT";
    case AS_ERR_XDR_KEY_BUSY: return "XDR_KEY_BUSY";
    case AS_SEC_OK_LAST: return "QUERY_END";
    case AS_SEC_ERR_NOT_SUPPORTED: return "SECURITY_NOT_SUPPORTED";
    case AS_SEC_ERR_NOT_CONFIGURED: return "SECURITY_NOT_ENABLED";
    case AS_SEC_ERR_SCHEME: return "SECURITY_SCHEME_NOT_SUPPORTED";
    case AS_SEC_ERR_COMMAND: return "INVALID_COMMAND";
    case AS_SEC_ERR_FIELD: return "INVALID_FIELD";
    case AS_SEC_ERR_STATE: return "ILLEGAL_STATE";
    case AS_SEC_ERR_USER: return "INVALID_USER";
    case AS_SEC_ERR_USER_EXISTS: return "USER_ALREADY_EXISTS";
    case AS_SEC_ERR_PASSWORD: return "INVALID_PASSWORD";
    case AS_SEC_ERR_EXPIRED_PASSWORD: return "EXPIRED_PASSWORD";
    case AS_SEC_ERR_FORBIDDEN_PASSWORD: return "FORBIDDEN_PASSWORD";
    case AS_SEC_ERR_CREDENTIAL: return "INVALID_CREDENTIAL";
    case AS_SEC_ERR_EXPIRED_SESSION: return "EXPIRED_SESSION";
    case AS_SEC_ERR_ROLE: return "INVALID_ROLE";
    case AS_SEC_ERR_ROLE_EXISTS: return "ROLE_ALREADY_EXISTS";
    case AS_SEC_ERR_PRIVILEGE: return "INVALID_PRIVILEGE";
    case AS_SEC_ERR_WHITELIST: return "INVALID_WHITELIST";
    case AS_SEC_ERR_QUOTAS_NOT_ENABLED: return "QUOTAS_NOT_ENABLED";
    case AS_SEC_ERR_QUOTA: return "INVALID_QUOTA";
    case AS_SEC_ERR_NOT_AUTHENTICATED: return "NOT_AUTHENTICATED";
    case AS_SEC_ERR_ROLE_VIOLATION: return "ROLE_VIOLATION";
    case AS_SEC_ERR_NOT_WHITELISTED: return "NOT_WHITELISTED";
    case AS_SEC_ERR_QUOTA_EXCEEDED: return "QUOTA_EXCEEDED";
    case 90: return "LDAP_NOT_CONFIGURED";
    case 91: return "LDAP_SETUP";
    case 92: return "LDAP_TLS_SETUP";
    case 93: return "LDAP_AUTHENTICATION";
    case 94: return "LDAP_QUERY";
    case AS_ERR_UDF_EXECUTION: return "UDF_EXECUTION";
    case 120: return "MRT_BLOCKED";
    case 121: return "MRT_VERSION_MISMATCH";
    case 122: return "MRT_EXPIRED";
    case 123: return "MRT_TOO_MANY_WRITES";
    case 124: return "MRT_COMMITTED";
    case 125: return "MRT_ABORTED";
    case 126: return "MRT_ALREADY_LOCKED";
    case 127: return "MRT_MONITOR_EXISTS";
    case AS_ERR_BATCH_DISABLED: return "BATCH_DISABLED";
    case AS_ERR_BATCH_MAX_REQUESTS: return "BATCH_MAX_REQUESTS";
    case AS_ERR_BATCH_QUEUES_FULL: return "BATCH_QUEUES_FULL";
    case AS_ERR_GEO_INVALID_GEOJSON: return "GEO_INVALID_GEOJSON";
    case AS_ERR_SINDEX_FOUND: return "INDEX_FOUND";
    case AS_ERR_SINDEX_NOT_FOUND: return "INDEX_NOT_FOUND";
    case AS_ERR_SINDEX_OOM: return "INDEX_OOM";
    case AS_ERR_SINDEX_NOT_READABLE: return "INDEX_NOT_READABLE";
    case AS_ERR_SINDEX_GENERIC: return "INDEX_GENERIC";
    case AS_ERR_SINDEX_NAME: return "INDEX_NAME_MAXLEN";
    case AS_ERR_SINDEX_MAX_COUNT: return "INDEX_MAXCOUNT";
    default: return "UNKNOWN_RESULT";
    }
}

/* ---- buffer ----------------------------------------------------------------------------- */

void as_buf_init(struct as_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
}

void as_buf_free(struct as_buf *b)
{
    free(b->data);
    as_buf_init(b);
}

int as_buf_reserve(struct as_buf *b, size_t extra)
{
    if (b->failed)
        return ERR_NOMEM;
    if (extra > SIZE_MAX - b->len) {
        b->failed = true;
        return ERR_NOMEM;
    }
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int as_buf_append(struct as_buf *b, const void *p, size_t n)
{
    if (as_buf_reserve(b, n) != 0)
        return ERR_NOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int as_buf_put_u8(struct as_buf *b, uint8_t v)
{
    return as_buf_append(b, &v, 1);
}

int as_buf_put_u16(struct as_buf *b, uint16_t v)
{
    uint8_t t[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    return as_buf_append(b, t, 2);
}

int as_buf_put_u16le(struct as_buf *b, uint16_t v)
{
    uint8_t t[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    return as_buf_append(b, t, 2);
}

int as_buf_put_u32(struct as_buf *b, uint32_t v)
{
    uint8_t t[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    return as_buf_append(b, t, 4);
}

int as_buf_put_u64(struct as_buf *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 7; i >= 0; i--) {
        t[i] = (uint8_t)v;
        v >>= 8;
    }
    return as_buf_append(b, t, 8);
}

void as_buf_patch_u16(struct as_buf *b, size_t off, uint16_t v)
{
    if (b->failed || off > b->len || b->len - off < 2)
        return;
    b->data[off] = (uint8_t)(v >> 8);
    b->data[off + 1] = (uint8_t)v;
}

void as_buf_patch_u32(struct as_buf *b, size_t off, uint32_t v)
{
    if (b->failed || off > b->len || b->len - off < 4)
        return;
    b->data[off] = (uint8_t)(v >> 24);
    b->data[off + 1] = (uint8_t)(v >> 16);
    b->data[off + 2] = (uint8_t)(v >> 8);
    b->data[off + 3] = (uint8_t)v;
}

/* ---- proto header ------------------------------------------------------------------------ */

void as_proto_header_encode(uint8_t out[AS_PROTO_HEADER_SIZE], uint8_t type, uint64_t size)
{
    out[0] = AS_PROTO_VERSION;
    out[1] = type;
    for (int i = 7; i >= 2; i--) {
        out[i] = (uint8_t)size;
        size >>= 8;
    }
}

int as_proto_header_decode(const uint8_t in[AS_PROTO_HEADER_SIZE], struct as_proto_header *h,
                           struct err *e)
{
    h->version = in[0];
    h->type = in[1];
    h->size = 0;
    for (int i = 2; i < 8; i++)
        h->size = (h->size << 8) | in[i];
    if (h->version != AS_PROTO_VERSION)
        return err_set(e, ERR_INVALID, "proto: version %u, expected 2", h->version);
    if (h->type < AS_PROTO_INFO || h->type > AS_PROTO_COMPRESSED)
        return err_set(e, ERR_INVALID, "proto: unknown message type %u", h->type);
    if (h->size > AS_PROTO_SIZE_MAX)
        return err_set(e, ERR_INVALID, "proto: body size %" PRIu64 " over the 128 MiB limit",
                       h->size);
    return 0;
}

size_t as_proto_begin(struct as_buf *b, uint8_t type)
{
    size_t off = b->len;
    uint8_t hdr[AS_PROTO_HEADER_SIZE];
    as_proto_header_encode(hdr, type, 0);
    as_buf_append(b, hdr, sizeof hdr);
    return off;
}

int as_proto_end(struct as_buf *b, size_t off, struct err *e)
{
    if (b->failed)
        return err_set(e, ERR_NOMEM, "proto: out of memory while encoding");
    if (off > b->len || b->len - off < AS_PROTO_HEADER_SIZE)
        return err_set(e, ERR_INTERNAL, "proto: bad frame offset");
    uint64_t size = b->len - off - AS_PROTO_HEADER_SIZE;
    if (size > AS_PROTO_SIZE_MAX)
        return err_set(e, ERR_INVALID, "proto: message of %" PRIu64 " bytes over the 128 MiB limit",
                       size);
    as_proto_header_encode(b->data + off, b->data[off + 1], size);
    return 0;
}

/* ---- AS_MSG encoding ---------------------------------------------------------------------- */

size_t as_msg_header_put(struct as_buf *b, const struct as_msg_header *h)
{
    size_t off = b->len;
    uint8_t t[AS_MSG_HEADER_SIZE];
    t[0] = AS_MSG_HEADER_SIZE;
    t[1] = h->info1;
    t[2] = h->info2;
    t[3] = h->info3;
    t[4] = h->info4;
    t[5] = h->result_code;
    uint32_t v[3] = { h->generation, h->record_ttl, h->transaction_ttl };
    for (int i = 0; i < 3; i++) {
        t[6 + 4 * i] = (uint8_t)(v[i] >> 24);
        t[7 + 4 * i] = (uint8_t)(v[i] >> 16);
        t[8 + 4 * i] = (uint8_t)(v[i] >> 8);
        t[9 + 4 * i] = (uint8_t)v[i];
    }
    t[18] = (uint8_t)(h->n_fields >> 8);
    t[19] = (uint8_t)h->n_fields;
    t[20] = (uint8_t)(h->n_ops >> 8);
    t[21] = (uint8_t)h->n_ops;
    as_buf_append(b, t, sizeof t);
    return off;
}

void as_msg_set_counts(struct as_buf *b, size_t msg_off, uint16_t n_fields, uint16_t n_ops)
{
    as_buf_patch_u16(b, msg_off + 18, n_fields);
    as_buf_patch_u16(b, msg_off + 20, n_ops);
}

int as_field_put(struct as_buf *b, uint8_t type, const void *data, size_t len)
{
    if (len >= UINT32_MAX) {
        b->failed = true;
        return ERR_NOMEM;
    }
    if (as_buf_reserve(b, 5 + len) != 0)
        return ERR_NOMEM;
    as_buf_put_u32(b, (uint32_t)len + 1);
    as_buf_put_u8(b, type);
    return as_buf_append(b, data, len);
}

int as_field_put_str(struct as_buf *b, uint8_t type, const char *s)
{
    return as_field_put(b, type, s, s ? strlen(s) : 0);
}

int as_field_put_u32(struct as_buf *b, uint8_t type, uint32_t v)
{
    uint8_t t[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    return as_field_put(b, type, t, 4);
}

int as_field_put_u64(struct as_buf *b, uint8_t type, uint64_t v)
{
    uint8_t t[8];
    for (int i = 7; i >= 0; i--) {
        t[i] = (uint8_t)v;
        v >>= 8;
    }
    return as_field_put(b, type, t, 8);
}

size_t as_field_begin(struct as_buf *b, uint8_t type)
{
    size_t off = b->len;
    as_buf_put_u32(b, 1);
    as_buf_put_u8(b, type);
    return off;
}

void as_field_end(struct as_buf *b, size_t off)
{
    if (b->failed || off > b->len || b->len - off < 5)
        return;
    size_t sz = b->len - off - 4;
    if (sz > UINT32_MAX) {
        b->failed = true;
        return;
    }
    as_buf_patch_u32(b, off, (uint32_t)sz);
}

int as_op_put(struct as_buf *b, uint8_t op_type, uint8_t particle, const char *name, size_t name_len,
              const void *value, size_t value_len)
{
    if (name_len > 255 || value_len > UINT32_MAX - 4 - name_len) {
        b->failed = true;
        return ERR_NOMEM;
    }
    if (as_buf_reserve(b, 8 + name_len + value_len) != 0)
        return ERR_NOMEM;
    as_buf_put_u32(b, (uint32_t)(4 + name_len + value_len));
    uint8_t t[4] = { op_type, particle, 0, (uint8_t)name_len };
    as_buf_append(b, t, 4);
    as_buf_append(b, name, name_len);
    return as_buf_append(b, value, value_len);
}

int as_op_put_int(struct as_buf *b, uint8_t op_type, const char *name, int64_t v)
{
    uint8_t t[8];
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        t[i] = (uint8_t)u;
        u >>= 8;
    }
    return as_op_put(b, op_type, AS_PARTICLE_INTEGER, name, strlen(name), t, 8);
}

int as_op_put_double(struct as_buf *b, uint8_t op_type, const char *name, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    uint8_t t[8];
    for (int i = 7; i >= 0; i--) {
        t[i] = (uint8_t)u;
        u >>= 8;
    }
    return as_op_put(b, op_type, AS_PARTICLE_FLOAT, name, strlen(name), t, 8);
}

int as_op_put_str(struct as_buf *b, uint8_t op_type, const char *name, const char *s)
{
    return as_op_put(b, op_type, AS_PARTICLE_STRING, name, strlen(name), s, strlen(s));
}

/* ---- counting writer ---------------------------------------------------------------------- */

void as_msgw_begin(struct as_msgw *w, struct as_buf *b, const struct as_msg_header *h)
{
    w->b = b;
    w->n_fields = 0;
    w->n_ops = 0;
    w->order_error = false;
    w->proto_off = as_proto_begin(b, AS_PROTO_MSG);
    w->msg_off = as_msg_header_put(b, h);
}

static void msgw_count_field(struct as_msgw *w)
{
    if (w->n_ops)
        w->order_error = true;
    if (w->n_fields == UINT16_MAX)
        w->b->failed = true;
    else
        w->n_fields++;
}

void as_msgw_field(struct as_msgw *w, uint8_t type, const void *data, size_t len)
{
    msgw_count_field(w);
    as_field_put(w->b, type, data, len);
}

void as_msgw_field_str(struct as_msgw *w, uint8_t type, const char *s)
{
    msgw_count_field(w);
    as_field_put_str(w->b, type, s);
}

void as_msgw_field_u32(struct as_msgw *w, uint8_t type, uint32_t v)
{
    msgw_count_field(w);
    as_field_put_u32(w->b, type, v);
}

void as_msgw_field_u64(struct as_msgw *w, uint8_t type, uint64_t v)
{
    msgw_count_field(w);
    as_field_put_u64(w->b, type, v);
}

size_t as_msgw_field_begin(struct as_msgw *w, uint8_t type)
{
    msgw_count_field(w);
    return as_field_begin(w->b, type);
}

void as_msgw_op(struct as_msgw *w, uint8_t op_type, uint8_t particle, const char *name,
                size_t name_len, const void *value, size_t value_len)
{
    if (w->n_ops == UINT16_MAX)
        w->b->failed = true;
    else
        w->n_ops++;
    as_op_put(w->b, op_type, particle, name, name_len, value, value_len);
}

int as_msgw_end(struct as_msgw *w, struct err *e)
{
    if (w->order_error)
        return err_set(e, ERR_INTERNAL, "as_msg: field added after an op");
    as_msg_set_counts(w->b, w->msg_off, w->n_fields, w->n_ops);
    return as_proto_end(w->b, w->proto_off, e);
}

/* ---- AS_MSG decoding ---------------------------------------------------------------------- */

int as_msg_header_decode(const uint8_t *p, size_t avail, struct as_msg_header *h, struct err *e)
{
    if (avail < AS_MSG_HEADER_SIZE)
        return err_set(e, ERR_INVALID, "as_msg: truncated header (%zu of 22 bytes)", avail);
    if (p[0] != AS_MSG_HEADER_SIZE)
        return err_set(e, ERR_INVALID, "as_msg: header size %u, expected 22", p[0]);
    h->info1 = p[1];
    h->info2 = p[2];
    h->info3 = p[3];
    h->info4 = p[4];
    h->result_code = p[5];
    h->generation = as_get_u32(p + 6);
    h->record_ttl = as_get_u32(p + 10);
    h->transaction_ttl = as_get_u32(p + 14);
    h->n_fields = as_get_u16(p + 18);
    h->n_ops = as_get_u16(p + 20);
    return 0;
}

int as_msg_parse(const uint8_t *p, size_t avail, struct as_msg_view *v, struct err *e)
{
    memset(v, 0, sizeof *v);
    int rc = as_msg_header_decode(p, avail, &v->h, e);
    if (rc)
        return rc;
    size_t pos = AS_MSG_HEADER_SIZE;
    v->fields = p + pos;
    for (unsigned i = 0; i < v->h.n_fields; i++) {
        if (avail - pos < 4)
            return err_set(e, ERR_INVALID, "as_msg: truncated field %u of %u", i + 1, v->h.n_fields);
        uint32_t sz = as_get_u32(p + pos);
        if (sz < 1)
            return err_set(e, ERR_INVALID, "as_msg: field %u has size 0", i + 1);
        if (sz > avail - pos - 4)
            return err_set(e, ERR_INVALID, "as_msg: field %u of %u bytes overruns the message",
                           i + 1, sz);
        uint8_t type = p[pos + 4];
        if (!as_field_type_known(type))
            return err_set(e, ERR_INVALID, "as_msg: unknown field type %u", type);
        pos += 4 + (size_t)sz;
    }
    v->fields_len = (size_t)(p + pos - v->fields);
    v->ops = p + pos;
    for (unsigned i = 0; i < v->h.n_ops; i++) {
        if (avail - pos < 4)
            return err_set(e, ERR_INVALID, "as_msg: truncated op %u of %u", i + 1, v->h.n_ops);
        uint32_t sz = as_get_u32(p + pos);
        if (sz < 4)
            return err_set(e, ERR_INVALID, "as_msg: op %u has size %u (< 4)", i + 1, sz);
        if (sz > avail - pos - 4)
            return err_set(e, ERR_INVALID, "as_msg: op %u of %u bytes overruns the message",
                           i + 1, sz);
        const uint8_t *o = p + pos + 4;
        if (!as_op_type_known(o[0]))
            return err_set(e, ERR_INVALID, "as_msg: unknown op type %u", o[0]);
        if (!as_particle_type_known(o[1]))
            return err_set(e, ERR_INVALID, "as_msg: unknown particle type %u", o[1]);
        size_t need = 4 + (size_t)o[3] + ((o[2] & 1) ? 8 : 0);
        if (need > sz)
            return err_set(e, ERR_INVALID, "as_msg: op %u name of %u bytes overruns the op",
                           i + 1, o[3]);
        pos += 4 + (size_t)sz;
    }
    v->ops_len = (size_t)(p + pos - v->ops);
    v->size = pos;
    return 0;
}

void as_msg_fields(const struct as_msg_view *v, struct as_iter *it)
{
    it->p = v->fields;
    it->end = v->fields + v->fields_len;
    it->left = v->h.n_fields;
}

bool as_field_next(struct as_iter *it, struct as_field *f)
{
    if (it->left == 0 || it->end - it->p < 5)
        return false;
    uint32_t sz = as_get_u32(it->p);
    if (sz < 1 || sz > (size_t)(it->end - it->p) - 4)
        return false;
    f->type = it->p[4];
    f->len = sz - 1;
    f->data = it->p + 5;
    it->p += 4 + (size_t)sz;
    it->left--;
    return true;
}

void as_msg_ops(const struct as_msg_view *v, struct as_iter *it)
{
    it->p = v->ops;
    it->end = v->ops + v->ops_len;
    it->left = v->h.n_ops;
}

bool as_op_next(struct as_iter *it, struct as_op *op)
{
    if (it->left == 0 || it->end - it->p < 8)
        return false;
    uint32_t sz = as_get_u32(it->p);
    if (sz < 4 || sz > (size_t)(it->end - it->p) - 4)
        return false;
    const uint8_t *o = it->p + 4;
    size_t lut = (o[2] & 1) ? 8 : 0;
    if (4 + (size_t)o[3] + lut > sz)
        return false;
    op->op_type = o[0];
    op->particle_type = o[1];
    op->flags = o[2];
    op->name_len = o[3];
    op->name = o + 4;
    op->value = o + 4 + o[3] + lut;
    op->value_len = (uint32_t)(sz - 4 - o[3] - lut);
    it->p += 4 + (size_t)sz;
    it->left--;
    return true;
}

bool as_msg_find_field(const struct as_msg_view *v, uint8_t type, struct as_field *f)
{
    struct as_iter it;
    as_msg_fields(v, &it);
    while (as_field_next(&it, f))
        if (f->type == type)
            return true;
    return false;
}

int as_particle_int(const uint8_t *v, uint32_t len, int64_t *out)
{
    uint64_t u = 0;
    switch (len) {
    case 8:
        u = as_get_u64(v);
        break;
    case 4:
        u = as_get_u32(v);
        break;
    case 2:
        u = as_get_u16(v);
        break;
    case 1:
        u = v[0];
        break;
    default:
        return ERR_INVALID;
    }
    *out = (int64_t)u;
    return 0;
}

int as_particle_double(const uint8_t *v, uint32_t len, double *out)
{
    if (len != 8)
        return ERR_INVALID;
    uint64_t u = as_get_u64(v);
    memcpy(out, &u, 8);
    return 0;
}

int as_particle_bool(const uint8_t *v, uint32_t len, bool *out)
{
    if (len != 1)
        return ERR_INVALID;
    *out = v[0] != 0;
    return 0;
}

int as_particle_geojson_text(const uint8_t *v, uint32_t len, const uint8_t **json, uint32_t *json_len)
{
    if (len < 3)
        return ERR_INVALID;
    uint64_t skip = 3 + 8 * (uint64_t)as_get_u16(v + 1);
    if (skip > len)
        return ERR_INVALID;
    *json = v + skip;
    *json_len = (uint32_t)(len - skip);
    return 0;
}

/* ---- info ------------------------------------------------------------------------------------ */

int as_info_request(struct as_buf *b, const char *cmds, struct err *e)
{
    size_t off = as_proto_begin(b, AS_PROTO_INFO);
    size_t n = strlen(cmds);
    as_buf_append(b, cmds, n);
    if (n > 0 && cmds[n - 1] != '\n')
        as_buf_put_u8(b, '\n');
    return as_proto_end(b, off, e);
}

int as_info_request_v(struct as_buf *b, const char *const *cmds, size_t n, struct err *e)
{
    size_t off = as_proto_begin(b, AS_PROTO_INFO);
    for (size_t i = 0; i < n; i++) {
        if (strchr(cmds[i], '\n')) {
            b->len = off;
            return err_set(e, ERR_INVALID, "info: command %zu contains a newline", i);
        }
        as_buf_append(b, cmds[i], strlen(cmds[i]));
        as_buf_put_u8(b, '\n');
    }
    return as_proto_end(b, off, e);
}

int as_info_next_line(const char **cur, const char *end, struct as_info_line *line, struct err *e)
{
    const char *p = *cur;
    if (!p || p >= end)
        return 0;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    const char *tab = memchr(p, '\t', (size_t)(le - p));
    if (!tab)
        return err_set(e, ERR_INVALID, "info: reply line without TAB: %.*s",
                       (int)((le - p) > 80 ? 80 : (le - p)), p);
    line->name = p;
    line->name_len = (size_t)(tab - p);
    line->value = tab + 1;
    line->value_len = (size_t)(le - tab - 1);
    *cur = nl ? nl + 1 : end;
    return 1;
}

bool as_info_find(const char *body, size_t len, const char *name, struct as_info_line *line)
{
    const char *cur = body, *end = body + len;
    size_t nlen = strlen(name);
    struct as_info_line l;
    while (as_info_next_line(&cur, end, &l, NULL) == 1) {
        if (l.name_len == nlen && memcmp(l.name, name, nlen) == 0) {
            *line = l;
            return true;
        }
    }
    return false;
}

void as_info_cmd_split(const char *cmd, size_t len, const char **name, size_t *name_len,
                       const char **params, size_t *params_len)
{
    size_t i = 0;
    while (i < len && cmd[i] != '/' && cmd[i] != ':' && cmd[i] != ';')
        i++;
    *name = cmd;
    *name_len = i;
    if (i < len) {
        *params = cmd + i + 1;
        *params_len = len - i - 1;
    } else {
        *params = cmd + len;
        *params_len = 0;
    }
}

bool as_info_kv(const char *s, size_t len, char sep, const char *key, const char **val,
                size_t *val_len)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && s[j] != sep)
            j++;
        /* token s[i..j) */
        if (j - i > klen && memcmp(s + i, key, klen) == 0 && s[i + klen] == '=') {
            *val = s + i + klen + 1;
            *val_len = j - i - klen - 1;
            return true;
        }
        i = j + 1;
    }
    return false;
}

static bool prefix_ci(const char *v, size_t len, const char *pfx)
{
    size_t n = strlen(pfx);
    return len >= n && strncasecmp(v, pfx, n) == 0;
}

bool as_info_value_error(const char *v, size_t len, int *code, const char **msg, size_t *msg_len)
{
    size_t skip;
    if (prefix_ci(v, len, "ERROR:"))
        skip = 6;
    else if (prefix_ci(v, len, "FAIL:"))
        skip = 5;
    else if (len >= 6 && memcmp(v, "error=", 6) == 0) {
        *code = -1;
        *msg = v + 6;
        *msg_len = len - 6;
        return true;
    } else {
        return false;
    }
    const char *p = v + skip, *end = v + len;
    const char *q = p;
    long c = 0;
    while (q < end && isdigit((unsigned char)*q) && c < 100000) {
        c = c * 10 + (*q - '0');
        q++;
    }
    if (q == p && q < end && *q == ':') { /* "ERROR::msg": code 1 */
        *code = 1;
        *msg = q + 1;
    } else if (q > p && (q == end || *q == ':')) {
        *code = (int)c;
        *msg = q < end ? q + 1 : end;
    } else {
        *code = -1;
        *msg = p;
    }
    *msg_len = (size_t)(end - *msg);
    return true;
}

/* ---- digest -------------------------------------------------------------------------------- */

static pthread_once_t g_md_once = PTHREAD_ONCE_INIT;
static EVP_MD *g_ripemd160;

static void md_init(void)
{
    /* OpenSSL >= 3.0.7 ships RIPEMD-160 in the default provider; older 3.0.x only in legacy. */
    g_ripemd160 = EVP_MD_fetch(NULL, "RIPEMD160", NULL);
    if (g_ripemd160)
        return;
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    if (!ctx)
        return;
    if (!OSSL_PROVIDER_load(ctx, "legacy") || !OSSL_PROVIDER_load(ctx, "default"))
        return; /* ctx intentionally kept: process lifetime */
    g_ripemd160 = EVP_MD_fetch(ctx, "RIPEMD160", NULL);
}

int as_digest_compute(const void *set, size_t set_len, uint8_t key_type, const void *key,
                      size_t key_len, uint8_t out[AS_DIGEST_SIZE], struct err *e)
{
    pthread_once(&g_md_once, md_init);
    if (!g_ripemd160)
        return err_set(e, ERR_INTERNAL, "digest: OpenSSL offers no RIPEMD-160");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return err_set(e, ERR_NOMEM, "digest: out of memory");
    unsigned int n = 0;
    int ok = EVP_DigestInit_ex2(ctx, g_ripemd160, NULL) &&
             (set_len == 0 || EVP_DigestUpdate(ctx, set, set_len)) &&
             EVP_DigestUpdate(ctx, &key_type, 1) &&
             (key_len == 0 || EVP_DigestUpdate(ctx, key, key_len)) &&
             EVP_DigestFinal_ex(ctx, out, &n);
    EVP_MD_CTX_free(ctx);
    if (!ok || n != AS_DIGEST_SIZE)
        return err_set(e, ERR_INTERNAL, "digest: RIPEMD-160 computation failed");
    return 0;
}

int as_digest_int(const char *set, int64_t key, uint8_t out[AS_DIGEST_SIZE], struct err *e)
{
    uint8_t t[8];
    uint64_t u = (uint64_t)key;
    for (int i = 7; i >= 0; i--) {
        t[i] = (uint8_t)u;
        u >>= 8;
    }
    return as_digest_compute(set, set ? strlen(set) : 0, AS_PARTICLE_INTEGER, t, 8, out, e);
}

int as_digest_str(const char *set, const char *key, uint8_t out[AS_DIGEST_SIZE], struct err *e)
{
    return as_digest_compute(set, set ? strlen(set) : 0, AS_PARTICLE_STRING, key, strlen(key), out, e);
}
