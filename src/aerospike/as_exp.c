/*
 * as_exp.c - filter expression builder: msgpack primitives and expression nodes (see
 * as_exp.h). Byte-compatible with the official C client's encoding.
 */
#include "aerospike/as_exp.h"

#include <string.h>

void as_mp_array(struct as_buf *b, uint32_t n)
{
    if (n < 16) {
        as_buf_put_u8(b, (uint8_t)(0x90 | n));
    } else if (n <= UINT16_MAX) {
        as_buf_put_u8(b, 0xdc);
        as_buf_put_u16(b, (uint16_t)n);
    } else {
        as_buf_put_u8(b, 0xdd);
        as_buf_put_u32(b, n);
    }
}

void as_mp_uint(struct as_buf *b, uint64_t v)
{
    if (v < 128) {
        as_buf_put_u8(b, (uint8_t)v);
    } else if (v <= UINT8_MAX) {
        as_buf_put_u8(b, 0xcc);
        as_buf_put_u8(b, (uint8_t)v);
    } else if (v <= UINT16_MAX) {
        as_buf_put_u8(b, 0xcd);
        as_buf_put_u16(b, (uint16_t)v);
    } else if (v <= UINT32_MAX) {
        as_buf_put_u8(b, 0xce);
        as_buf_put_u32(b, (uint32_t)v);
    } else {
        as_buf_put_u8(b, 0xcf);
        as_buf_put_u64(b, v);
    }
}

void as_mp_int(struct as_buf *b, int64_t v)
{
    if (v >= 0) {
        as_mp_uint(b, (uint64_t)v);
    } else if (v >= -32) {
        as_buf_put_u8(b, (uint8_t)(int8_t)v);
    } else if (v >= INT8_MIN) {
        as_buf_put_u8(b, 0xd0);
        as_buf_put_u8(b, (uint8_t)(int8_t)v);
    } else if (v >= INT16_MIN) {
        as_buf_put_u8(b, 0xd1);
        as_buf_put_u16(b, (uint16_t)(int16_t)v);
    } else if (v >= INT32_MIN) {
        as_buf_put_u8(b, 0xd2);
        as_buf_put_u32(b, (uint32_t)(int32_t)v);
    } else {
        as_buf_put_u8(b, 0xd3);
        as_buf_put_u64(b, (uint64_t)v);
    }
}

static void mp_str_header(struct as_buf *b, size_t len)
{
    if (len < 32) {
        as_buf_put_u8(b, (uint8_t)(0xa0 | len));
    } else if (len <= UINT8_MAX) {
        as_buf_put_u8(b, 0xd9);
        as_buf_put_u8(b, (uint8_t)len);
    } else if (len <= UINT16_MAX) {
        as_buf_put_u8(b, 0xda);
        as_buf_put_u16(b, (uint16_t)len);
    } else if (len <= UINT32_MAX) {
        as_buf_put_u8(b, 0xdb);
        as_buf_put_u32(b, (uint32_t)len);
    } else {
        b->failed = true;
    }
}

void as_mp_str(struct as_buf *b, const void *s, size_t len)
{
    mp_str_header(b, len);
    as_buf_append(b, s, len);
}

void as_mp_bool(struct as_buf *b, bool v)
{
    as_buf_put_u8(b, v ? 0xc3 : 0xc2);
}

static void op_header(struct as_buf *b, uint32_t n_operands, int op)
{
    as_mp_array(b, n_operands + 1);
    as_mp_int(b, op);
}

void as_exp_cmp(struct as_buf *b, enum as_exp_op op)
{
    op_header(b, 2, op);
}

void as_exp_and(struct as_buf *b, uint32_t n)
{
    op_header(b, n, AS_EXP_AND);
}

void as_exp_or(struct as_buf *b, uint32_t n)
{
    op_header(b, n, AS_EXP_OR);
}

void as_exp_not(struct as_buf *b)
{
    op_header(b, 1, AS_EXP_NOT);
}

void as_exp_last_update(struct as_buf *b)
{
    op_header(b, 0, AS_EXP_LAST_UPDATE);
}

void as_exp_void_time(struct as_buf *b)
{
    op_header(b, 0, AS_EXP_VOID_TIME);
}

void as_exp_ttl(struct as_buf *b)
{
    op_header(b, 0, AS_EXP_TTL);
}

void as_exp_set_name(struct as_buf *b)
{
    op_header(b, 0, AS_EXP_SET_NAME);
}

void as_exp_key_exists(struct as_buf *b)
{
    op_header(b, 0, AS_EXP_KEY_EXISTS);
}

void as_exp_digest_modulo(struct as_buf *b, int64_t mod)
{
    op_header(b, 1, AS_EXP_DIGEST_MODULO);
    as_mp_int(b, mod);
}

void as_exp_bin(struct as_buf *b, enum as_exp_type type, const char *name)
{
    op_header(b, 2, AS_EXP_BIN);
    as_mp_int(b, type);
    as_mp_str(b, name, strlen(name));
}

void as_exp_int(struct as_buf *b, int64_t v)
{
    as_mp_int(b, v);
}

void as_exp_uint(struct as_buf *b, uint64_t v)
{
    as_mp_uint(b, v);
}

void as_exp_str(struct as_buf *b, const char *s)
{
    size_t len = strlen(s);
    mp_str_header(b, len + 1);
    as_buf_put_u8(b, AS_PARTICLE_STRING);
    as_buf_append(b, s, len);
}

void as_exp_bool(struct as_buf *b, bool v)
{
    as_mp_bool(b, v);
}

void as_exp_lut_range(struct as_buf *b, uint64_t after_ns, uint64_t before_ns)
{
    if (after_ns && before_ns)
        as_exp_and(b, 2);
    if (before_ns) {
        as_exp_cmp(b, AS_EXP_LT);
        as_exp_last_update(b);
        as_exp_uint(b, before_ns);
    }
    if (after_ns) {
        as_exp_cmp(b, AS_EXP_GE);
        as_exp_last_update(b);
        as_exp_uint(b, after_ns);
    }
}

void as_exp_set_in(struct as_buf *b, const char *const *sets, size_t n)
{
    if (n == 0)
        return;
    if (n > 1)
        as_exp_or(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        as_exp_cmp(b, AS_EXP_EQ);
        as_exp_set_name(b);
        as_exp_str(b, sets[i]);
    }
}

void as_exp_never_expires(struct as_buf *b)
{
    as_exp_cmp(b, AS_EXP_EQ);
    as_exp_ttl(b);
    as_exp_int(b, -1);
}
