/*
 * as_exp.h - filter expressions (FILTER field 43) encoded as Aerospike msgpack.
 *
 * An expression is a msgpack tree: every operation is an array [op, operand...]; metadata
 * reads are one-element arrays ([66] = LAST_UPDATE); integer literals use the smallest
 * msgpack int (uint64 0xcf for large positives, as the C client); string literals carry the
 * 0x03 particle-type prefix inside the msgpack string.
 *
 * The builder writes in prefix order into an as_buf: open an operation with its operand
 * count, then write the operands. Example "LUT >= A and LUT < B" exactly as asbackup 4.5.8
 * sends it (LT term first, seen in wire/c-backup-modified-range):
 *     as_exp_and(b, 2);
 *       as_exp_cmp(b, AS_EXP_LT); as_exp_last_update(b); as_exp_int(b, B);
 *       as_exp_cmp(b, AS_EXP_GE); as_exp_last_update(b); as_exp_int(b, A);
 * or simply as_exp_lut_range(b, A, B). Errors (allocation) are sticky in b->failed.
 */
#ifndef ABS_AEROSPIKE_AS_EXP_H
#define ABS_AEROSPIKE_AS_EXP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aerospike/as_proto.h"

enum as_exp_op {
    AS_EXP_EQ = 1,
    AS_EXP_NE = 2,
    AS_EXP_GT = 3,
    AS_EXP_GE = 4,
    AS_EXP_LT = 5,
    AS_EXP_LE = 6,
    AS_EXP_AND = 16,
    AS_EXP_OR = 17,
    AS_EXP_NOT = 18,
    AS_EXP_DIGEST_MODULO = 64,
    AS_EXP_LAST_UPDATE = 66,
    AS_EXP_SINCE_UPDATE = 67,
    AS_EXP_VOID_TIME = 68,
    AS_EXP_TTL = 69,
    AS_EXP_SET_NAME = 70,
    AS_EXP_KEY_EXISTS = 71,
    AS_EXP_BIN = 81,
    AS_EXP_BIN_TYPE = 82,
};

/* Expression value types for BIN reads. */
enum as_exp_type {
    AS_EXP_TYPE_NIL = 0,
    AS_EXP_TYPE_BOOL = 1,
    AS_EXP_TYPE_INT = 2,
    AS_EXP_TYPE_STR = 3,
    AS_EXP_TYPE_LIST = 4,
    AS_EXP_TYPE_MAP = 5,
    AS_EXP_TYPE_BLOB = 6,
    AS_EXP_TYPE_FLOAT = 7,
    AS_EXP_TYPE_GEO = 8,
    AS_EXP_TYPE_HLL = 9,
};

/* msgpack primitives */
void as_mp_array(struct as_buf *b, uint32_t n);
void as_mp_int(struct as_buf *b, int64_t v);
void as_mp_uint(struct as_buf *b, uint64_t v);
void as_mp_str(struct as_buf *b, const void *s, size_t len); /* raw msgpack str */
void as_mp_bool(struct as_buf *b, bool v);

/* operations: write the header, then the operands */
void as_exp_cmp(struct as_buf *b, enum as_exp_op op); /* EQ..LE: two operands follow */
void as_exp_and(struct as_buf *b, uint32_t n);        /* n operands follow */
void as_exp_or(struct as_buf *b, uint32_t n);
void as_exp_not(struct as_buf *b);                    /* one operand follows */
/* leaves */
void as_exp_last_update(struct as_buf *b); /* ns since the Unix epoch */
void as_exp_void_time(struct as_buf *b);
void as_exp_ttl(struct as_buf *b);          /* seconds left, -1 = never expires */
void as_exp_set_name(struct as_buf *b);
void as_exp_key_exists(struct as_buf *b);
void as_exp_digest_modulo(struct as_buf *b, int64_t mod);
void as_exp_bin(struct as_buf *b, enum as_exp_type type, const char *name);
void as_exp_int(struct as_buf *b, int64_t v);
void as_exp_uint(struct as_buf *b, uint64_t v);
void as_exp_str(struct as_buf *b, const char *s);  /* string literal: 0x03 prefix */
void as_exp_bool(struct as_buf *b, bool v);

/* Ready-made filters. Times are nanoseconds since the Unix epoch; 0 = no bound. Writes
 * nothing (b unchanged) when both are 0. Range order as asbackup: AND(LT before, GE after). */
void as_exp_lut_range(struct as_buf *b, uint64_t after_ns, uint64_t before_ns);
/* set_name == s (n == 1) or OR(set_name == s1, ...) */
void as_exp_set_in(struct as_buf *b, const char *const *sets, size_t n);
/* ttl == -1 (asbackup --no-ttl-only) */
void as_exp_never_expires(struct as_buf *b);

#endif
