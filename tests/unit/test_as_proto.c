/*
 * test_as_proto.c - unit tests for aerospike/as_proto.c: proto header limits, AS_MSG
 * encoding against the fact sheet's worked examples, digests and partition ids, info
 * request/reply text helpers, strict decoding (truncation at every length, unknown types,
 * random mutations) and decoding of real replies captured from Aerospike CE 8.1.2.0
 * (tests/data/wire/, copied from the project's wire corpus).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aerospike/as_proto.h"

#include "wire_capture.h"

/* Validates the proto header of a captured message and returns its body. */
static const uint8_t *body_of(const struct cap_msg *m, size_t *len)
{
    struct as_proto_header h;
    struct err e;
    assert_int_equal(as_proto_header_decode(m->bytes, &h, &e), 0);
    assert_int_equal(h.type, m->type);
    assert_int_equal(h.size + 8, m->len);
    *len = (size_t)h.size;
    return m->bytes + 8;
}

static void digest_hex(const uint8_t *d, char out[41])
{
    for (int i = 0; i < 20; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* ---- proto header ----------------------------------------------------------------------- */

static void test_proto_header(void **state)
{
    (void)state;
    uint8_t h[8];
    struct as_proto_header ph;
    struct err e;
    as_proto_header_encode(h, AS_PROTO_INFO, 11);
    const uint8_t want[8] = { 0x02, 0x01, 0, 0, 0, 0, 0, 0x0b };
    assert_memory_equal(h, want, 8);
    assert_int_equal(as_proto_header_decode(h, &ph, &e), 0);
    assert_int_equal(ph.version, 2);
    assert_int_equal(ph.type, 1);
    assert_int_equal(ph.size, 11);

    as_proto_header_encode(h, AS_PROTO_MSG, AS_PROTO_SIZE_MAX);
    assert_int_equal(as_proto_header_decode(h, &ph, &e), 0);
    as_proto_header_encode(h, AS_PROTO_MSG, AS_PROTO_SIZE_MAX + 1);
    assert_int_equal(as_proto_header_decode(h, &ph, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "128 MiB"));
    const uint8_t huge[8] = { 2, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    assert_int_equal(as_proto_header_decode(huge, &ph, &e), ERR_INVALID);

    const uint8_t v3[8] = { 3, 1, 0, 0, 0, 0, 0, 6 };
    assert_int_equal(as_proto_header_decode(v3, &ph, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "version 3"));
    const uint8_t t0[8] = { 2, 0, 0, 0, 0, 0, 0, 6 };
    assert_int_equal(as_proto_header_decode(t0, &ph, &e), ERR_INVALID);
    const uint8_t t5[8] = { 2, 5, 0, 0, 0, 0, 0, 6 };
    assert_int_equal(as_proto_header_decode(t5, &ph, &e), ERR_INVALID);
    const uint8_t t4[8] = { 2, 4, 0, 0, 0, 0, 0, 6 };
    assert_int_equal(as_proto_header_decode(t4, &ph, &e), 0);
}

/* ---- encoding: the fact sheet's worked write (§7.5) ---------------------------------------- */

static const uint8_t k1_digest[20] = { 0xc2, 0x05, 0xa2, 0x7d, 0x3c, 0x20, 0x2a, 0x8e, 0x52, 0x89,
                                       0xa9, 0xd3, 0xf6, 0x42, 0xc1, 0xe8, 0xbf, 0x3d, 0x4a, 0x1f };

static void test_encode_write_example(void **state)
{
    (void)state;
    static const uint8_t want[95] = {
        0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x57,
        0x16, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x03, 0xe8,
        0x00, 0x04, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x05, 0x00, 0x74, 0x65, 0x73, 0x74,
        0x00, 0x00, 0x00, 0x02, 0x01, 0x73,
        0x00, 0x00, 0x00, 0x15, 0x04, 0xc2, 0x05, 0xa2, 0x7d, 0x3c, 0x20, 0x2a, 0x8e, 0x52, 0x89,
        0xa9, 0xd3, 0xf6, 0x42, 0xc1, 0xe8, 0xbf, 0x3d, 0x4a, 0x1f,
        0x00, 0x00, 0x00, 0x04, 0x02, 0x03, 0x6b, 0x31,
        0x00, 0x00, 0x00, 0x0d, 0x02, 0x01, 0x00, 0x01, 0x61,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    };
    struct as_buf b;
    as_buf_init(&b);
    struct as_msgw w;
    struct as_msg_header h = { .info2 = AS_INFO2_WRITE, .transaction_ttl = 1000 };
    struct err e;
    as_msgw_begin(&w, &b, &h);
    as_msgw_field_str(&w, AS_FIELD_NAMESPACE, "test");
    as_msgw_field_str(&w, AS_FIELD_SET, "s");
    as_msgw_field(&w, AS_FIELD_DIGEST, k1_digest, 20);
    as_msgw_field(&w, AS_FIELD_KEY, "\x03k1", 3);
    uint8_t one[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    as_msgw_op(&w, AS_OP_WRITE, AS_PARTICLE_INTEGER, "a", 1, one, 8);
    assert_int_equal(as_msgw_end(&w, &e), 0);
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);

    /* and it decodes back */
    struct as_msg_view v;
    assert_int_equal(as_msg_parse(b.data + 8, b.len - 8, &v, &e), 0);
    assert_int_equal(v.size, b.len - 8);
    assert_int_equal(v.h.info2, AS_INFO2_WRITE);
    assert_int_equal(v.h.transaction_ttl, 1000);
    struct as_field f;
    assert_true(as_msg_find_field(&v, AS_FIELD_KEY, &f));
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.data, "\x03k1", 3);
    assert_false(as_msg_find_field(&v, AS_FIELD_FILTER, &f));
    struct as_iter it;
    struct as_op op;
    as_msg_ops(&v, &it);
    assert_true(as_op_next(&it, &op));
    assert_int_equal(op.op_type, AS_OP_WRITE);
    assert_int_equal(op.name_len, 1);
    int64_t iv;
    assert_int_equal(as_particle_int(op.value, op.value_len, &iv), 0);
    assert_int_equal(iv, 1);
    assert_false(as_op_next(&it, &op));

    /* a field after an op is a programming error the writer reports */
    as_buf_reset(&b);
    as_msgw_begin(&w, &b, &h);
    as_msgw_op(&w, AS_OP_WRITE, AS_PARTICLE_INTEGER, "a", 1, one, 8);
    as_msgw_field_str(&w, AS_FIELD_NAMESPACE, "test");
    assert_int_equal(as_msgw_end(&w, &e), ERR_INTERNAL);

    /* an unencodable op name length is sticky and reported at the end */
    as_buf_reset(&b);
    char longname[300];
    memset(longname, 'x', sizeof longname);
    as_msgw_begin(&w, &b, &h);
    as_msgw_op(&w, AS_OP_WRITE, AS_PARTICLE_NULL, longname, sizeof longname, NULL, 0);
    assert_int_equal(as_msgw_end(&w, &e), ERR_NOMEM);
    as_buf_free(&b);
}

static void test_encode_scan_filter_example(void **state)
{
    (void)state;
    /* §5.2 worked scan: first 0x4f bytes up to the PID_ARRAY field header. */
    static const uint8_t want_head[] = {
        0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x20, 0x4c,
        0x16, 0x01, 0x00, 0x04, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
        0xff, 0xff, 0xff, 0xff,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x05, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x05, 0x00, 0x74, 0x65, 0x73, 0x74,
        0x00, 0x00, 0x00, 0x05, 0x09, 0x00, 0x00, 0x27, 0x10,
        0x00, 0x00, 0x00, 0x09, 0x07, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        0x00, 0x00, 0x00, 0x0e, 0x2b, 0x93, 0x04, 0x91, 0x42, 0xcf, 0x17, 0x97, 0x9c, 0xfe,
        0x36, 0x2a, 0x00, 0x00,
        0x00, 0x00, 0x20, 0x01, 0x0b, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00,
    };
    static const uint8_t filter[13] = { 0x93, 0x04, 0x91, 0x42, 0xcf, 0x17, 0x97, 0x9c, 0xfe,
                                        0x36, 0x2a, 0x00, 0x00 };
    struct as_buf b;
    as_buf_init(&b);
    struct as_msgw w;
    struct as_msg_header h = { .info1 = AS_INFO1_READ, .info3 = AS_INFO3_PARTITION_DONE,
                               .record_ttl = AS_READ_TOUCH_OFF };
    struct err e;
    as_msgw_begin(&w, &b, &h);
    as_msgw_field_str(&w, AS_FIELD_NAMESPACE, "test");
    as_msgw_field_u32(&w, AS_FIELD_SOCKET_TIMEOUT, 10000);
    as_msgw_field_u64(&w, AS_FIELD_TRID, 0x0123456789ABCDEFull);
    as_msgw_field(&w, AS_FIELD_FILTER, filter, sizeof filter);
    size_t f = as_msgw_field_begin(&w, AS_FIELD_PID_ARRAY);
    for (unsigned p = 0; p < AS_PARTITIONS; p++)
        as_buf_put_u16le(&b, (uint16_t)p);
    as_field_end(&b, f);
    assert_int_equal(as_msgw_end(&w, &e), 0);
    assert_int_equal(b.len, 8276);
    assert_memory_equal(b.data, want_head, sizeof want_head);
    const uint8_t tail[4] = { 0xfe, 0x0f, 0xff, 0x0f };
    assert_memory_equal(b.data + b.len - 4, tail, 4);
    as_buf_free(&b);
}

/* ---- digests and partitions --------------------------------------------------------------- */

static void test_digest(void **state)
{
    (void)state;
    uint8_t d[20];
    char hex[41];
    struct err e;
    assert_int_equal(as_digest_str("s", "k1", d, &e), 0);
    digest_hex(d, hex);
    assert_string_equal(hex, "c205a27d3c202a8e5289a9d3f642c1e8bf3d4a1f");
    assert_int_equal(as_partition_id(d), 1474);

    assert_int_equal(as_digest_int(NULL, 1, d, &e), 0);
    digest_hex(d, hex);
    assert_string_equal(hex, "a443f05d05d962202b59abb402afae1737dbf66a");

    assert_int_equal(as_digest_str(NULL, "edge-bool", d, &e), 0);
    digest_hex(d, hex);
    assert_string_equal(hex, "87202193385d66e8878807283668897f565473a4");
    assert_int_equal(as_partition_id(d), 135);

    assert_int_equal(as_digest_str("errs", "k1", d, &e), 0);
    digest_hex(d, hex);
    assert_string_equal(hex, "a63140a843f38a50f9d63faa611cf4839984565b");

    assert_int_equal(as_digest_compute("", 0, AS_PARTICLE_STRING, "edge-bool", 9, d, &e), 0);
    digest_hex(d, hex);
    assert_string_equal(hex, "87202193385d66e8878807283668897f565473a4");

    const uint8_t c6[2] = { 0xc6, 0x5d };
    assert_int_equal(as_partition_id(c6), 3526);
}

/* ---- info text ------------------------------------------------------------------------------ */

static void test_info_request(void **state)
{
    (void)state;
    struct as_buf b;
    as_buf_init(&b);
    struct err e;
    assert_int_equal(as_info_request(&b, "namespaces", &e), 0);
    const uint8_t want[19] = { 0x02, 0x01, 0, 0, 0, 0, 0, 0x0b, 'n', 'a', 'm', 'e', 's', 'p',
                               'a', 'c', 'e', 's', '\n' };
    assert_int_equal(b.len, 19);
    assert_memory_equal(b.data, want, 19);

    as_buf_reset(&b);
    const char *cmds[] = { "node", "partition-generation", "build" };
    assert_int_equal(as_info_request_v(&b, cmds, 3, &e), 0);
    assert_int_equal(b.len, 8 + 32);
    assert_memory_equal(b.data + 8, "node\npartition-generation\nbuild\n", 32);

    as_buf_reset(&b);
    const char *bad[] = { "a\nb" };
    assert_int_equal(as_info_request_v(&b, bad, 1, &e), ERR_INVALID);

    as_buf_reset(&b);
    assert_int_equal(as_info_request(&b, "", &e), 0); /* empty body = legacy summary */
    assert_int_equal(b.len, 8);
    as_buf_free(&b);
}

static void test_info_reply_parse(void **state)
{
    (void)state;
    const char *body = "namespaces\ttest;bar\nservices\t\nnode\tBB9000000000001";
    const char *cur = body, *end = body + strlen(body);
    struct as_info_line l;
    struct err e;
    assert_int_equal(as_info_next_line(&cur, end, &l, &e), 1);
    assert_int_equal(l.name_len, 10);
    assert_memory_equal(l.value, "test;bar", 8);
    assert_int_equal(l.value_len, 8);
    assert_int_equal(as_info_next_line(&cur, end, &l, &e), 1);
    assert_int_equal(l.value_len, 0);
    assert_int_equal(as_info_next_line(&cur, end, &l, &e), 1); /* no final '\n' */
    assert_memory_equal(l.value, "BB9000000000001", 15);
    assert_int_equal(as_info_next_line(&cur, end, &l, &e), 0);

    const char *bad = "novalue\n";
    cur = bad;
    assert_int_equal(as_info_next_line(&cur, bad + strlen(bad), &l, &e), ERR_INVALID);

    assert_true(as_info_find(body, strlen(body), "node", &l));
    assert_false(as_info_find(body, strlen(body), "nod", &l));

    const char *name, *params;
    size_t nl, pl;
    as_info_cmd_split("namespace/test", 14, &name, &nl, &params, &pl);
    assert_int_equal(nl, 9);
    assert_int_equal(pl, 4);
    assert_memory_equal(params, "test", 4);
    as_info_cmd_split("sindex-list:ns=test;b64=true", 28, &name, &nl, &params, &pl);
    assert_int_equal(nl, 11);
    assert_int_equal(pl, 16);
    as_info_cmd_split("build", 5, &name, &nl, &params, &pl);
    assert_int_equal(nl, 5);
    assert_int_equal(pl, 0);

    const char *v;
    size_t vl;
    const char *p = "ns=test;b64=true;indexname=idx";
    assert_true(as_info_kv(p, strlen(p), ';', "b64", &v, &vl));
    assert_int_equal(vl, 4);
    assert_memory_equal(v, "true", 4);
    assert_true(as_info_kv(p, strlen(p), ';', "indexname", &v, &vl));
    assert_memory_equal(v, "idx", 3);
    assert_false(as_info_kv(p, strlen(p), ';', "ns=", &v, &vl));
    assert_false(as_info_kv(p, strlen(p), ';', "b6", &v, &vl));
    assert_true(as_info_kv("a=", 2, ';', "a", &v, &vl));
    assert_int_equal(vl, 0);
    assert_false(as_info_kv("", 0, ';', "a", &v, &vl));
    const char *set = "ns=test:set=users:objects=900:tombstones=0";
    assert_true(as_info_kv(set, strlen(set), ':', "objects", &v, &vl));
    assert_memory_equal(v, "900", 3);
}

static void test_info_errors(void **state)
{
    (void)state;
    int code;
    const char *m;
    size_t ml;
#define ISERR(s) as_info_value_error(s, strlen(s), &code, &m, &ml)
    assert_true(ISERR("ERROR:4:unrecognized command"));
    assert_int_equal(code, 4);
    assert_int_equal(ml, strlen("unrecognized command"));
    assert_true(ISERR("ERROR::something"));
    assert_int_equal(code, 1);
    assert_memory_equal(m, "something", 9);
    assert_true(ISERR("ERROR:20:namespace not found on node;ERROR:20:namespace not found on node"));
    assert_int_equal(code, 20);
    assert_true(ISERR("FAIL:201:no index"));
    assert_int_equal(code, 201);
    assert_true(ISERR("ERROR:25"));
    assert_int_equal(code, 25);
    assert_int_equal(ml, 0);
    assert_true(ISERR("error=not_found"));
    assert_int_equal(code, -1);
    assert_memory_equal(m, "not_found", 9);
    assert_true(ISERR("ERROR:oops"));
    assert_int_equal(code, -1);
    assert_false(ISERR("ok"));
    assert_false(ISERR("OK"));
    assert_false(ISERR("type=LUA;content=abc;"));
    assert_false(ISERR(""));
#undef ISERR
}

/* ---- strict decoding --------------------------------------------------------------------------- */

static void build_sample(struct as_buf *b)
{
    struct as_msgw w;
    struct as_msg_header h = { .generation = 7, .record_ttl = 600000001 };
    struct err e;
    as_msgw_begin(&w, b, &h);
    as_msgw_field_str(&w, AS_FIELD_NAMESPACE, "test");
    as_msgw_field(&w, AS_FIELD_DIGEST, k1_digest, 20);
    as_msgw_field_str(&w, AS_FIELD_SET, "s");
    as_msgw_field(&w, AS_FIELD_KEY, "\x03k1", 3);
    uint8_t one[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    as_msgw_op(&w, AS_OP_READ, AS_PARTICLE_INTEGER, "a", 1, one, 8);
    as_msgw_op(&w, AS_OP_READ, AS_PARTICLE_STRING, "str", 3, "hello", 5);
    as_msgw_op(&w, AS_OP_READ, AS_PARTICLE_NULL, "", 0, NULL, 0);
    assert_int_equal(as_msgw_end(&w, &e), 0);
}

static void test_decode_truncated_everywhere(void **state)
{
    (void)state;
    struct as_buf b;
    as_buf_init(&b);
    build_sample(&b);
    size_t body = b.len - 8;
    struct as_msg_view v;
    struct err e;
    assert_int_equal(as_msg_parse(b.data + 8, body, &v, &e), 0);
    assert_int_equal(v.size, body);
    for (size_t n = 0; n < body; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size so ASan sees any over-read */
        assert_non_null(copy);
        memcpy(copy, b.data + 8, n);
        assert_int_equal(as_msg_parse(copy, n, &v, &e), ERR_INVALID);
        free(copy);
    }
    as_buf_free(&b);
}

static void test_decode_rejects_bad_things(void **state)
{
    (void)state;
    struct as_buf b;
    as_buf_init(&b);
    build_sample(&b);
    uint8_t *m = b.data + 8;
    size_t n = b.len - 8;
    struct as_msg_view v;
    struct err e;

    m[0] = 23; /* header_sz */
    assert_int_equal(as_msg_parse(m, n, &v, &e), ERR_INVALID);
    m[0] = 22;

    /* first field: [22..25] size, [26] type */
    m[26] = 8; /* unused field id */
    assert_int_equal(as_msg_parse(m, n, &v, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "unknown field type 8"));
    m[26] = 0;
    m[25] = 0; /* size 0 */
    assert_int_equal(as_msg_parse(m, n, &v, &e), ERR_INVALID);
    m[25] = 0xff; /* overruns */
    assert_int_equal(as_msg_parse(m, n, &v, &e), ERR_INVALID);
    m[25] = 5;
    assert_int_equal(as_msg_parse(m, n, &v, &e), 0);

    /* first op starts after the fields */
    size_t op = (size_t)(v.ops - m);
    m[op + 4] = 6; /* unused op type */
    assert_int_equal(as_msg_parse(m, n, &v, &e), ERR_INVALID);
    m[op + 4] = 99;
    assert_int_equal(as_msg_parse(m, n, &v, &e), ERR_INVALID);
    m[op + 4] = AS_OP_READ;
    m[op + 5] = 5; /* unknown particle */
    assert_int_equal(as_msg_parse(m, n, &v, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "particle"));
    m[op + 5] = AS_PARTICLE_INTEGER;
    m[op + 7] = 20; /* name longer than the op */
    assert_int_equal(as_msg_parse(m, n, &v, &e), ERR_INVALID);
    m[op + 7] = 1;
    m[op + 6] = 1; /* has-LUT flag: 8 more bytes needed, op has exactly 8 value bytes -> ok */
    assert_int_equal(as_msg_parse(m, n, &v, &e), 0);
    struct as_iter it;
    struct as_op o;
    as_msg_ops(&v, &it);
    assert_true(as_op_next(&it, &o));
    assert_int_equal(o.value_len, 0);
    m[op + 6] = 0;
    m[op + 3] = 3; /* op size < 4 */
    assert_int_equal(as_msg_parse(m, n, &v, &e), ERR_INVALID);
    m[op + 3] = 13;
    assert_int_equal(as_msg_parse(m, n, &v, &e), 0);

    /* n_ops larger than present */
    m[21] = 4;
    assert_int_equal(as_msg_parse(m, n, &v, &e), ERR_INVALID);
    m[21] = 3;
    /* two messages back to back: the first parse consumes exactly one */
    uint8_t *two = malloc(2 * n);
    assert_non_null(two);
    memcpy(two, m, n);
    memcpy(two + n, m, n);
    assert_int_equal(as_msg_parse(two, 2 * n, &v, &e), 0);
    assert_int_equal(v.size, n);
    assert_int_equal(as_msg_parse(two + v.size, n, &v, &e), 0);
    free(two);
    as_buf_free(&b);
}

static void test_decode_random_mutations(void **state)
{
    (void)state;
    struct as_buf b;
    as_buf_init(&b);
    build_sample(&b);
    size_t n = b.len - 8;
    srand(12345);
    struct err e;
    for (int round = 0; round < 20000; round++) {
        uint8_t *m = malloc(n);
        assert_non_null(m);
        memcpy(m, b.data + 8, n);
        int flips = 1 + rand() % 4;
        for (int i = 0; i < flips; i++)
            m[(size_t)rand() % n] = (uint8_t)rand();
        size_t len = (rand() % 4 == 0) ? (size_t)rand() % (n + 1) : n;
        struct as_msg_view v;
        if (as_msg_parse(m, len, &v, &e) == 0) {
            assert_true(v.size <= len);
            struct as_iter it;
            struct as_field f;
            struct as_op o;
            unsigned nf = 0, no = 0;
            as_msg_fields(&v, &it);
            while (as_field_next(&it, &f)) {
                assert_true(f.data + f.len <= m + len);
                nf++;
            }
            as_msg_ops(&v, &it);
            while (as_op_next(&it, &o)) {
                assert_true(o.value + o.value_len <= m + len);
                no++;
            }
            assert_int_equal(nf, v.h.n_fields);
            assert_int_equal(no, v.h.n_ops);
        }
        free(m);
    }
    as_buf_free(&b);
}

static void test_particles(void **state)
{
    (void)state;
    int64_t i;
    double d;
    bool bo;
    const uint8_t neg[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe };
    assert_int_equal(as_particle_int(neg, 8, &i), 0);
    assert_int_equal(i, -2);
    assert_int_equal(as_particle_int(neg, 2, &i), 0);
    assert_int_equal(i, 0xffff);
    assert_int_equal(as_particle_int(neg, 3, &i), ERR_INVALID);
    const uint8_t dbl[8] = { 0x3f, 0xf8, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(as_particle_double(dbl, 8, &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(as_particle_double(dbl, 4, &d), ERR_INVALID);
    assert_int_equal(as_particle_bool((const uint8_t *)"\x01", 1, &bo), 0);
    assert_true(bo);
    assert_int_equal(as_particle_bool((const uint8_t *)"\x01\x00", 2, &bo), ERR_INVALID);

    const uint8_t geo[] = { 0x00, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, '{', '}' };
    const uint8_t *js;
    uint32_t jl;
    assert_int_equal(as_particle_geojson_text(geo, sizeof geo, &js, &jl), 0);
    assert_int_equal(jl, 2);
    assert_memory_equal(js, "{}", 2);
    assert_int_equal(as_particle_geojson_text(geo, 10, &js, &jl), ERR_INVALID);
    assert_int_equal(as_particle_geojson_text(geo, 2, &js, &jl), ERR_INVALID);

    assert_string_equal(as_result_name(0), "OK");
    assert_string_equal(as_result_name(2), "NOT_FOUND");
    assert_string_equal(as_result_name(22), "FORBIDDEN");
    assert_string_equal(as_result_name(51), "SECURITY_NOT_SUPPORTED");
    assert_string_equal(as_result_name(160), "GEO_INVALID_GEOJSON");
    assert_string_equal(as_result_name(999), "UNKNOWN_RESULT");
    assert_string_equal(as_particle_type_name(23), "GEOJSON");
    assert_string_equal(as_field_type_name(11), "PID_ARRAY");
    assert_string_equal(as_op_type_name(2), "WRITE");
}

/* ---- captured traffic ----------------------------------------------------------------------------- */

/* Every info reply of a-info-commands parses, echoes the request's command lines in order, and
 * the values have the documented grammar. */
static void test_capture_info(void **state)
{
    (void)state;
    struct capture c;
    capture_load(&c, "a-info-commands.jsonl");
    size_t pairs = 0;
    int saw_replicas = 0, saw_err4 = 0, saw_err25 = 0, saw_summary = 0;
    for (size_t i = 0; i + 1 < c.n; i++) {
        if (!c.m[i].c2s || c.m[i].type != 1)
            continue;
        assert_false(c.m[i + 1].c2s);
        size_t rlen, slen;
        const char *req = (const char *)body_of(&c.m[i], &rlen);
        const char *rep = (const char *)body_of(&c.m[i + 1], &slen);
        pairs++;
        struct err e;
        struct as_info_line l;
        const char *cur = rep, *end = rep + slen;
        if (rlen == 0) { /* legacy summary */
            int lines = 0;
            while (as_info_next_line(&cur, end, &l, &e) == 1)
                lines++;
            assert_int_equal(lines, 15);
            assert_true(as_info_find(rep, slen, "partition-generation", &l));
            saw_summary = 1;
            continue;
        }
        /* each '\n'-terminated request line is echoed, in order */
        const char *rq = req, *rend = req + rlen;
        while (rq < rend) {
            const char *nl = memchr(rq, '\n', (size_t)(rend - rq));
            if (!nl)
                break; /* a last command without '\n' is ignored by the server */
            assert_int_equal(as_info_next_line(&cur, end, &l, &e), 1);
            assert_int_equal(l.name_len, (size_t)(nl - rq));
            assert_memory_equal(l.name, rq, l.name_len);
            int code;
            const char *m;
            size_t ml;
            if (as_info_value_error(l.value, l.value_len, &code, &m, &ml)) {
                assert_true(code == 4 || code == 25 || code == 20 || code == 201 || code == -1);
                if (code == 4)
                    saw_err4 = 1;
                if (code == 25)
                    saw_err25 = 1;
            }
            if (l.name_len == 8 && memcmp(l.name, "replicas", 8) == 0) {
                /* test:0,1,<684 b64>;bar:0,1,<684 b64> */
                const char *v;
                size_t vl;
                assert_true(as_info_kv(l.value, l.value_len, ';', "x", &v, &vl) == false);
                const char *colon = memchr(l.value, ':', l.value_len);
                assert_non_null(colon);
                const char *semi = memchr(l.value, ';', l.value_len);
                assert_non_null(semi);
                assert_int_equal(semi - (colon + 1), 4 + 684);
                saw_replicas = 1;
            }
            rq = nl + 1;
        }
        assert_int_equal(as_info_next_line(&cur, end, &l, &e), 0);
    }
    assert_true(pairs >= 59);
    assert_true(saw_replicas && saw_err4 && saw_err25 && saw_summary);

    /* a few exact values */
    for (size_t i = 0; i < c.n; i++) {
        if (c.m[i].c2s)
            continue;
        size_t slen;
        const char *rep = (const char *)body_of(&c.m[i], &slen);
        struct as_info_line l;
        if (as_info_find(rep, slen, "build", &l))
            assert_true(l.value_len == 7 && memcmp(l.value, "8.1.2.0", 7) == 0);
        if (as_info_find(rep, slen, "peers-clear-std", &l))
            assert_true(l.value_len == 9 && memcmp(l.value, "0,3000,[]", 9) == 0);
        if (as_info_find(rep, slen, "sets/test/users", &l)) {
            const char *v;
            size_t vl;
            assert_true(as_info_kv(l.value, l.value_len, ':', "objects", &v, &vl));
            assert_true(vl == 3 && memcmp(v, "900", 3) == 0);
        }
        if (as_info_find(rep, slen, "namespace/test", &l)) {
            const char *v;
            size_t vl;
            assert_true(as_info_kv(l.value, l.value_len, ';', "objects", &v, &vl));
            assert_true(vl == 4 && memcmp(v, "2000", 4) == 0);
            assert_true(as_info_kv(l.value, l.value_len, ';', "replication-factor", &v, &vl));
            assert_true(vl == 1 && v[0] == '1');
        }
    }
    capture_free(&c);
}

/* Every AS_MSG of g-errors parses (requests and replies) and the replies carry the result codes
 * the corpus documents, per connection. */
static void test_capture_errors(void **state)
{
    (void)state;
    struct capture c;
    capture_load(&c, "g-errors.jsonl");
    /* expected result codes of the type-3 replies, in order, per conn (-1 = none expected) */
    static const int want[][3] = {
        [0] = { 20, -1 }, [1] = { 16, -1 }, [2] = { 4, -1 }, [3] = { 4, -1 }, [4] = { 4, -1 },
        [5] = { 20, -1 }, [6] = { 2, -1 }, [7] = { 0, 5, -1 }, [8] = { 3, 3, -1 },
        [9] = { 2, 2, -1 }, [10] = { 19, -1 }, [11] = { 4, -1 }, [12] = { 4, -1 },
        [13] = { 21, -1 }, [14] = { 4, -1 }, [15] = { 1, -1 }, [16] = { 1, -1 },
        [17] = { 160, -1 }, [18] = { 25, -1 }, [19] = { 2, -1 }, [20] = { 0, 2, -1 },
        [23] = { 25, -1 },
    };
    int seen[32] = { 0 };
    int batch_rows = 0;
    for (size_t i = 0; i < c.n; i++) {
        struct cap_msg *m = &c.m[i];
        if (m->type == 2) {
            size_t len;
            const uint8_t *body = body_of(m, &len);
            assert_int_equal(len, m->c2s ? 91 : 16);
            if (!m->c2s)
                assert_int_equal(body[1], AS_SEC_ERR_NOT_SUPPORTED);
            continue;
        }
        if (m->type != 3)
            continue;
        size_t len;
        const uint8_t *body = body_of(m, &len);
        size_t pos = 0;
        struct err e;
        while (pos < len) {
            struct as_msg_view v;
            assert_int_equal(as_msg_parse(body + pos, len - pos, &v, &e), 0);
            pos += v.size;
            if (m->c2s)
                continue;
            if (m->conn == 21) { /* batch read: rows 0 (found), 1 (missing), 2 (found), then LAST */
                if (v.h.info3 & AS_INFO3_LAST) {
                    assert_int_equal(v.h.result_code, 0);
                    assert_int_equal(batch_rows, 3);
                } else {
                    static const int rows[3] = { 0, 2, 0 };
                    assert_int_equal(v.h.transaction_ttl, batch_rows);
                    assert_int_equal(v.h.result_code, rows[batch_rows]);
                    assert_int_equal(v.h.n_ops, v.h.result_code ? 0 : 5);
                    batch_rows++;
                }
                continue;
            }
            assert_true(m->conn < 24);
            int k = seen[m->conn]++;
            assert_int_equal(v.h.result_code, want[m->conn][k]);
            assert_int_equal(v.h.info3 & AS_INFO3_LAST, 0); /* single replies and rejections: no LAST */
            if (m->conn == 7 && k == 1)
                assert_int_equal(v.h.generation, 1); /* RECORD_EXISTS carries the stored generation */
        }
        assert_int_equal(pos, len);
    }
    for (int conn = 0; conn < 24; conn++)
        if (conn != 21 && conn != 22)
            assert_int_equal(want[conn][seen[conn]], -1);
    capture_free(&c);
}

/* The full-scan request has the documented fields; every record of a real reply chunk parses, its
 * digest matches RIPEMD-160(set, key) whenever the key is stored, and records of one partition come
 * in descending digest order. */
static void test_capture_scan(void **state)
{
    (void)state;
    struct capture c;
    capture_load(&c, "b-backup-full-p1.scan.jsonl");
    assert_int_equal(c.n, 3);
    struct err e;
    size_t len;

    /* request */
    const uint8_t *body = body_of(&c.m[0], &len);
    struct as_msg_view v;
    assert_int_equal(as_msg_parse(body, len, &v, &e), 0);
    assert_int_equal(v.size, len);
    assert_int_equal(v.h.info1, AS_INFO1_READ);
    assert_int_equal(v.h.info3, AS_INFO3_PARTITION_DONE);
    assert_int_equal(v.h.record_ttl, AS_READ_TOUCH_OFF);
    static const uint8_t order[] = { 0, 9, 7, 11 };
    struct as_iter it;
    struct as_field f;
    unsigned k = 0;
    as_msg_fields(&v, &it);
    while (as_field_next(&it, &f)) {
        assert_true(k < sizeof order);
        assert_int_equal(f.type, order[k++]);
        if (f.type == AS_FIELD_SOCKET_TIMEOUT)
            assert_int_equal(as_get_u32(f.data), 10000);
        if (f.type == AS_FIELD_PID_ARRAY) {
            assert_int_equal(f.len, 8192);
            for (unsigned p = 0; p < 4096; p++)
                assert_int_equal(as_get_u16le(f.data + 2 * p), p);
        }
    }
    assert_int_equal(k, 4);

    /* reply chunk */
    body = body_of(&c.m[1], &len);
    size_t pos = 0;
    unsigned records = 0, with_key = 0, with_set = 0, geo = 0;
    uint8_t last_digest[20] = { 0 };
    int last_pid = -1;
    bool saw_edge_bool = false;
    unsigned particle_seen[32] = { 0 };
    while (pos < len) {
        assert_int_equal(as_msg_parse(body + pos, len - pos, &v, &e), 0);
        pos += v.size;
        records++;
        assert_int_equal(v.h.result_code, 0);
        assert_int_equal(v.h.info3, 0);
        assert_int_equal(v.h.transaction_ttl, 0);
        struct as_field ns, dig, set, key;
        bool has_set = as_msg_find_field(&v, AS_FIELD_SET, &set);
        bool has_key = as_msg_find_field(&v, AS_FIELD_KEY, &key);
        assert_true(as_msg_find_field(&v, AS_FIELD_NAMESPACE, &ns));
        assert_true(ns.len == 4 && memcmp(ns.data, "test", 4) == 0);
        assert_true(as_msg_find_field(&v, AS_FIELD_DIGEST, &dig));
        assert_int_equal(dig.len, 20);
        /* field order NAMESPACE, DIGEST, [SET], [KEY] */
        as_msg_fields(&v, &it);
        assert_true(as_field_next(&it, &f) && f.type == AS_FIELD_NAMESPACE);
        assert_true(as_field_next(&it, &f) && f.type == AS_FIELD_DIGEST);
        if (has_set) {
            with_set++;
            assert_true(as_field_next(&it, &f) && f.type == AS_FIELD_SET);
        }
        if (has_key) {
            with_key++;
            assert_true(key.len >= 1);
            uint8_t d[20];
            assert_int_equal(as_digest_compute(has_set ? set.data : NULL, has_set ? set.len : 0,
                                               key.data[0], key.data + 1, key.len - 1, d, &e), 0);
            assert_memory_equal(d, dig.data, 20);
        }
        int pid = (int)as_partition_id(dig.data);
        if (pid == last_pid)
            assert_true(memcmp(dig.data, last_digest, 20) < 0); /* descending inside a partition */
        last_pid = pid;
        memcpy(last_digest, dig.data, 20);

        struct as_op op;
        as_msg_ops(&v, &it);
        unsigned nops = 0;
        while (as_op_next(&it, &op)) {
            nops++;
            assert_int_equal(op.op_type, AS_OP_READ);
            assert_int_equal(op.flags, 0);
            particle_seen[op.particle_type & 31]++;
            if (op.particle_type == AS_PARTICLE_GEOJSON) {
                const uint8_t *js;
                uint32_t jl;
                assert_int_equal(as_particle_geojson_text(op.value, op.value_len, &js, &jl), 0);
                assert_true(jl > 0 && js[0] == '{');
                geo++;
            }
        }
        assert_int_equal(nops, v.h.n_ops);

        char hex[41];
        digest_hex(dig.data, hex);
        if (strcmp(hex, "87202193385d66e8878807283668897f565473a4") == 0) {
            /* the fact sheet's captured record: no set, key "edge-bool", bins t=true f=false */
            saw_edge_bool = true;
            assert_false(has_set);
            assert_true(key.len == 10 && memcmp(key.data, "\x03" "edge-bool", 10) == 0);
            assert_int_equal(v.h.generation, 1);
            assert_int_equal(v.h.record_ttl, 0);
            assert_int_equal(v.size, 91);
            as_msg_ops(&v, &it);
            bool bv;
            assert_true(as_op_next(&it, &op));
            assert_true(op.particle_type == AS_PARTICLE_BOOL && op.name_len == 1 && op.name[0] == 't');
            assert_int_equal(as_particle_bool(op.value, op.value_len, &bv), 0);
            assert_true(bv);
            assert_true(as_op_next(&it, &op));
            assert_int_equal(as_particle_bool(op.value, op.value_len, &bv), 0);
            assert_false(bv);
        }
    }
    assert_int_equal(pos, len);
    assert_int_equal(records, 526);
    assert_true(saw_edge_bool);
    assert_true(with_key > 300 && with_set > 300 && geo > 0);
    assert_true(particle_seen[AS_PARTICLE_MAP] && particle_seen[AS_PARTICLE_LIST] &&
                particle_seen[AS_PARTICLE_INTEGER] && particle_seen[AS_PARTICLE_STRING]);

    /* LAST: alone, 22 bytes, info3 LAST, result 0 */
    body = body_of(&c.m[2], &len);
    assert_int_equal(len, 22);
    assert_int_equal(as_msg_parse(body, len, &v, &e), 0);
    assert_int_equal(v.h.info3, AS_INFO3_LAST);
    assert_int_equal(v.h.result_code, 0);
    capture_free(&c);
}

/* Requests of the other scan shapes: filter bytes, bin-list ops, no-bins bit, max records. */
static void test_capture_scan_variants(void **state)
{
    (void)state;
    struct capture c;
    struct err e;
    struct as_msg_view v;
    struct as_field f;
    size_t len;
    const uint8_t *body;

    capture_load(&c, "c-backup-modified-range.request.jsonl");
    body = body_of(&c.m[0], &len);
    assert_int_equal(as_msg_parse(body, len, &v, &e), 0);
    assert_true(as_msg_find_field(&v, AS_FIELD_FILTER, &f));
    static const uint8_t range[28] = { 0x93, 0x10, 0x93, 0x05, 0x91, 0x42, 0xcf, 0x18, 0xeb, 0x63,
                                       0xe3, 0x38, 0xdc, 0xe0, 0x00, 0x93, 0x04, 0x91, 0x42, 0xcf,
                                       0x18, 0xeb, 0x63, 0xe2, 0x86, 0x0c, 0x82, 0x00 };
    assert_int_equal(f.len, 28);
    assert_memory_equal(f.data, range, 28);
    capture_free(&c);

    capture_load(&c, "d-backup-bin-list.request.jsonl");
    body = body_of(&c.m[0], &len);
    assert_int_equal(as_msg_parse(body, len, &v, &e), 0);
    assert_int_equal(v.h.info1, AS_INFO1_READ);
    assert_int_equal(v.h.n_ops, 2);
    struct as_iter it;
    struct as_op op;
    as_msg_ops(&v, &it);
    assert_true(as_op_next(&it, &op));
    assert_true(op.op_type == AS_OP_READ && op.particle_type == 0 && op.name_len == 4 &&
                memcmp(op.name, "name", 4) == 0 && op.value_len == 0);
    assert_true(as_op_next(&it, &op));
    assert_true(op.name_len == 3 && memcmp(op.name, "age", 3) == 0);
    capture_free(&c);

    capture_load(&c, "d-backup-no-bins.jsonl");
    body = body_of(&c.m[0], &len);
    assert_int_equal(as_msg_parse(body, len, &v, &e), 0);
    assert_int_equal(v.h.info1, AS_INFO1_READ | AS_INFO1_NOBINDATA);
    capture_free(&c);

    capture_load(&c, "d-backup-max-records.jsonl");
    body = body_of(&c.m[0], &len);
    assert_int_equal(as_msg_parse(body, len, &v, &e), 0);
    assert_true(as_msg_find_field(&v, AS_FIELD_MAX_RECORDS, &f));
    assert_int_equal(f.len, 8);
    assert_int_equal(as_get_u64(f.data), 10);
    body = body_of(&c.m[1], &len);
    size_t pos = 0;
    unsigned n = 0;
    while (pos < len) {
        assert_int_equal(as_msg_parse(body + pos, len - pos, &v, &e), 0);
        pos += v.size;
        n++;
    }
    assert_int_equal(n, 10);
    capture_free(&c);
}

/* Batch write request and reply of asrestore: 128 rows, parent flags 0x0d, reply rows indexed by
 * transaction_ttl with one NULL WRITE op per bin, LAST separately; single write reply with
 * RESPOND_ALL_OPS ops. */
static void test_capture_batch(void **state)
{
    (void)state;
    struct capture c;
    capture_load(&c, "f1-restore.batch.jsonl");
    assert_int_equal(c.n, 5);
    struct err e;
    struct as_msg_view v;
    struct as_field f;
    size_t len;
    const uint8_t *body = body_of(&c.m[0], &len);
    assert_int_equal(as_msg_parse(body, len, &v, &e), 0);
    assert_int_equal(v.h.info1, AS_INFO1_BATCH);
    assert_int_equal(v.h.transaction_ttl, 10000);
    assert_int_equal(v.h.n_fields, 1);
    assert_true(as_msg_find_field(&v, AS_FIELD_BATCH, &f));
    assert_int_equal(as_get_u32(f.data), 128);
    assert_int_equal(f.data[4], 0x0d);

    body = body_of(&c.m[1], &len);
    size_t pos = 0;
    unsigned rows = 0;
    while (pos < len) {
        assert_int_equal(as_msg_parse(body + pos, len - pos, &v, &e), 0);
        pos += v.size;
        assert_int_equal(v.h.transaction_ttl, rows);
        assert_int_equal(v.h.result_code, 0);
        assert_int_equal(v.h.generation, 1);
        struct as_iter it;
        struct as_op op;
        as_msg_ops(&v, &it);
        while (as_op_next(&it, &op)) {
            assert_int_equal(op.op_type, AS_OP_WRITE);
            assert_int_equal(op.particle_type, AS_PARTICLE_NULL);
            assert_int_equal(op.value_len, 0);
        }
        rows++;
    }
    assert_int_equal(rows, 128);
    body = body_of(&c.m[2], &len);
    assert_int_equal(as_msg_parse(body, len, &v, &e), 0);
    assert_int_equal(v.h.info3, AS_INFO3_LAST);

    body = body_of(&c.m[3], &len);
    assert_int_equal(as_msg_parse(body, len, &v, &e), 0);
    assert_int_equal(v.h.info2, AS_INFO2_WRITE | AS_INFO2_GENERATION_GT | AS_INFO2_RESPOND_ALL_OPS);
    assert_true(as_msg_find_field(&v, AS_FIELD_DIGEST, &f));
    body = body_of(&c.m[4], &len);
    assert_int_equal(as_msg_parse(body, len, &v, &e), 0);
    assert_int_equal(v.size, len);
    assert_int_equal(v.h.n_ops, 5);
    capture_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_header),
        cmocka_unit_test(test_encode_write_example),
        cmocka_unit_test(test_encode_scan_filter_example),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_info_request),
        cmocka_unit_test(test_info_reply_parse),
        cmocka_unit_test(test_info_errors),
        cmocka_unit_test(test_decode_truncated_everywhere),
        cmocka_unit_test(test_decode_rejects_bad_things),
        cmocka_unit_test(test_decode_random_mutations),
        cmocka_unit_test(test_particles),
        cmocka_unit_test(test_capture_info),
        cmocka_unit_test(test_capture_errors),
        cmocka_unit_test(test_capture_scan),
        cmocka_unit_test(test_capture_scan_variants),
        cmocka_unit_test(test_capture_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
