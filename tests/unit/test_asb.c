/*
 * test_asb.c - the .asb format (src/asb): byte-exact round trips of every golden asbackup
 * 4.5.8 file (decode -> encode -> same bytes, reads split at every kind of boundary), the
 * dataset's documented contents, encoder output for every particle / key type, escaping and
 * compact forms, global lines, strict decoder errors with line and offset, a bounded
 * fuzz loop (truncations and bit flips) and a quick throughput measurement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <math.h>

#include "asb/asb.h"

#include "rec_set.h"
#include "slurp.h"

#define DATA TEST_DATA_DIR "/asb/"

/* ---- helpers ------------------------------------------------------------------------------ */

/* memory source handing out chunks of `chunk` bytes (0 = everything), or pseudo-random sizes */
struct msrc {
    const uint8_t *p;
    size_t len, pos, chunk;
    uint64_t rnd; /* != 0: random chunk sizes 1..chunk */
};

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int msrc_read(void *ctx, void *buf, size_t cap, size_t *got, struct err *e)
{
    (void)e;
    struct msrc *m = ctx;
    size_t n = m->len - m->pos;
    size_t c = m->chunk ? m->chunk : n;
    if (m->rnd && m->chunk)
        c = 1 + (size_t)(xorshift(&m->rnd) % m->chunk);
    if (n > c)
        n = c;
    if (n > cap)
        n = cap;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    *got = n;
    return 0;
}

struct mbuf {
    uint8_t *p;
    size_t len, cap;
};

static int mbuf_sink(void *ctx, const void *data, size_t len, struct err *e)
{
    (void)e;
    struct mbuf *m = ctx;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2 + 1024;
        m->p = realloc(m->p, m->cap);
        assert_non_null(m->p);
    }
    memcpy(m->p + m->len, data, len);
    m->len += len;
    return 0;
}

struct rt_result {
    long records, udfs, sindexes;
    bool first_file;
    char ns[64];
};

/* Decodes `in` (with the given read pattern) and re-encodes everything; returns the output. */
static struct mbuf reencode(const uint8_t *in, size_t len, size_t chunk, uint64_t rnd,
                            bool compact, struct rt_result *res)
{
    struct msrc src = {in, len, 0, chunk, rnd};
    struct asb_dec *d = asb_dec_new(msrc_read, &src, NULL);
    assert_non_null(d);
    struct mbuf out = {0};
    struct asb_writer w;
    struct err e;
    assert_int_equal(asb_writer_init(&w, 0, compact, mbuf_sink, &out, &e), 0);
    if (asb_dec_header(d, &e) != 0)
        fail_msg("header: %s", e.msg);
    const char *ns = asb_dec_namespace(d);
    assert_non_null(ns);
    memset(res, 0, sizeof *res);
    snprintf(res->ns, sizeof res->ns, "%s", ns);
    res->first_file = asb_dec_first_file(d);
    assert_int_equal(asb_writer_header(&w, ns, (uint32_t)strlen(ns), res->first_file, &e), 0);
    for (;;) {
        struct asb_item it;
        if (asb_dec_next(d, &it, &e) != 0)
            fail_msg("decode: %s", e.msg);
        if (it.kind == ASB_ITEM_EOF)
            break;
        int rc;
        if (it.kind == ASB_ITEM_RECORD) {
            res->records++;
            rc = asb_writer_record(&w, &it.u.rec, &e);
        } else if (it.kind == ASB_ITEM_UDF) {
            res->udfs++;
            rc = asb_writer_udf(&w, &it.u.udf, &e);
        } else {
            res->sindexes++;
            rc = asb_writer_sindex(&w, &it.u.sindex, &e);
        }
        if (rc != 0)
            fail_msg("encode: %s", e.msg);
    }
    assert_int_equal(asb_writer_flush(&w, &e), 0);
    assert_int_equal(w.records, (uint64_t)res->records);
    assert_int_equal(w.bytes, out.len);
    asb_writer_free(&w);
    asb_dec_free(d);
    return out;
}

static void assert_same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                              const char *what)
{
    size_t i = 0;
    while (i < alen && i < blen && a[i] == b[i])
        i++;
    if (i != alen || alen != blen)
        fail_msg("%s: outputs differ at byte %zu (lengths %zu / %zu)", what, i, alen, blen);
}

/* ---- golden round trips ------------------------------------------------------------------ */

struct golden {
    const char *path;
    long records;
    bool first_file;
    bool compact;
    long sindexes;
};

static const struct golden GOLDEN[] = {
    {"b-backup-full-p1/test_00000.asb", 2000, true, false, 6},
    {"b-backup-full-p4/test_00000.asb", 542, true, false, 6},
    {"b-backup-full-p4/test_00001.asb", 495, false, false, 6},
    {"b-backup-full-p4/test_00002.asb", 492, false, false, 6},
    {"b-backup-full-p4/test_00003.asb", 471, false, false, 6},
    {"c-backup-modified-after/test_00000.asb", 400, true, false, 6},
    {"c-backup-modified-before/test_00000.asb", 1900, true, false, 6},
    {"c-backup-modified-range/test_00000.asb", 400, true, false, 6},
    {"d-backup-after-digest/test_00000.asb", 270, true, false, 6},
    {"d-backup-bin-list/test_00000.asb", 900, true, false, 6},
    {"d-backup-compact/test_00000.asb", 2000, true, true, 6},
    {"d-backup-max-records/test_00000.asb", 10, true, false, 6},
    {"d-backup-no-bins/test_00000.asb", 2000, true, false, 6},
    {"d-backup-no-ttl-only/test_00000.asb", 1476, true, false, 6},
    {"d-backup-partition-list/test_00000.asb", 74, true, false, 6},
    {"d-backup-set-users/test_00000.asb", 900, true, false, 2},
    {"h3-cluster-backup-p2/test_00000.asb", 1013, true, false, 6},
    {"h3-cluster-backup-p2/test_00001.asb", 987, false, false, 6},
    {"dataset.asb", 2000, true, false, 6},
};

static void test_golden_roundtrip(void **state)
{
    (void)state;
    for (size_t g = 0; g < sizeof GOLDEN / sizeof GOLDEN[0]; g++) {
        char path[512];
        snprintf(path, sizeof path, DATA "%s", GOLDEN[g].path);
        size_t len;
        uint8_t *in = slurp_file(path, &len);
        /* whole buffer, odd fixed chunks, random small chunks */
        static const size_t chunks[] = {0, 4093, 1};
        for (size_t c = 0; c < 3; c++) {
            if (chunks[c] == 1 && len > 100000)
                continue; /* byte-by-byte only on the small files (speed) */
            struct rt_result res;
            struct mbuf out = reencode(in, len, chunks[c], 0, GOLDEN[g].compact, &res);
            assert_same_bytes(out.p, out.len, in, len, path);
            assert_int_equal(res.records, GOLDEN[g].records);
            assert_int_equal(res.first_file, GOLDEN[g].first_file);
            assert_string_equal(res.ns, "test");
            if (GOLDEN[g].first_file && strstr(path, "dataset") == NULL) {
                assert_int_equal(res.udfs, 1);
                assert_int_equal(res.sindexes, GOLDEN[g].sindexes);
            }
            free(out.p);
        }
        struct rt_result res;
        struct mbuf out = reencode(in, len, 97, 0x9e3779b97f4a7c15ull + g, GOLDEN[g].compact,
                                   &res);
        assert_same_bytes(out.p, out.len, in, len, path);
        free(out.p);
        free(in);
    }
}

/* ---- record sets (order-independent comparison) ------------------------------------------ */

/* Every record of the file as (digest, hash of its non-compact encoding), sorted. */
static struct rec_id *record_set(const uint8_t *in, size_t len, size_t *n_out)
{
    struct msrc src = {in, len, 0, 0, 0};
    struct asb_dec *d = asb_dec_new(msrc_read, &src, NULL);
    struct rec_set set = {0};
    struct err e;
    for (;;) {
        struct asb_item it;
        if (asb_dec_next(d, &it, &e) != 0)
            fail_msg("decode: %s", e.msg);
        if (it.kind == ASB_ITEM_EOF)
            break;
        if (it.kind != ASB_ITEM_RECORD)
            continue;
        rec_set_add(&set, &it.u.rec);
    }
    asb_dec_free(d);
    rec_set_finish(&set);
    *n_out = set.n;
    return set.ids;
}

static void test_compact_same_records(void **state)
{
    (void)state;
    size_t l1, l2, n1, n2;
    uint8_t *plain = slurp_file(DATA "b-backup-full-p1/test_00000.asb", &l1);
    uint8_t *compact = slurp_file(DATA "d-backup-compact/test_00000.asb", &l2);
    struct rec_id *a = record_set(plain, l1, &n1);
    struct rec_id *b = record_set(compact, l2, &n2);
    assert_int_equal(n1, 2000);
    assert_int_equal(n2, 2000);
    assert_same_rec_ids(a, n1, b, n2);
    free(a);
    free(b);
    free(plain);
    free(compact);
}

/* ---- dataset facts ------------------------------------------------------------------------ */

static const struct asb_bin *find_bin(const struct asb_record *r, const char *name)
{
    for (uint32_t i = 0; i < r->n_bins; i++)
        if (r->bins[i].name_len == strlen(name) && memcmp(r->bins[i].name, name, r->bins[i].name_len) == 0)
            return &r->bins[i];
    return NULL;
}

static bool key_is(const struct asb_record *r, const char *s)
{
    return r->key.type == ASB_P_STRING && r->key.len == strlen(s) &&
           memcmp(r->key.data, s, r->key.len) == 0;
}

static void test_dataset_contents(void **state)
{
    (void)state;
    size_t len;
    uint8_t *in = slurp_file(DATA "dataset.asb", &len);
    struct msrc src = {in, len, 0, 0, 0};
    struct asb_dec *d = asb_dec_new(msrc_read, &src, NULL);
    struct err e;
    long keys[32] = {0}, bins[32] = {0}, never = 0, records = 0, sindexes = 0, udfs = 0;
    bool saw_float = false, saw_nul = false, saw_names = false, saw_empty_blob = false,
         saw_setless_idx = false, saw_ctx = false, saw_bool = false, saw_int = false;
    for (;;) {
        struct asb_item it;
        if (asb_dec_next(d, &it, &e) != 0)
            fail_msg("decode: %s", e.msg);
        if (it.kind == ASB_ITEM_EOF)
            break;
        if (it.kind == ASB_ITEM_UDF) {
            udfs++;
            assert_string_equal(it.u.udf.name, "wirecorpus.lua");
            assert_int_equal(it.u.udf.content_len, 374);
            assert_memory_equal(it.u.udf.content, "-- wire corpus", 14);
            assert_int_equal(it.line, 4);
            continue;
        }
        if (it.kind == ASB_ITEM_SINDEX) {
            sindexes++;
            const struct asb_sindex *s = &it.u.sindex;
            assert_string_equal(s->ns, "test");
            if (strcmp(s->name, "idx_loc") == 0) {
                saw_setless_idx = true;
                assert_int_equal(s->set_len, 0);
                assert_int_equal(s->bin_type, 'G');
            }
            if (strcmp(s->name, "idx_events_lvl") == 0) {
                saw_ctx = true;
                assert_int_equal(s->ctx_len, 12);
                assert_memory_equal(s->ctx, "kiKkA2x2bA==", 12);
                assert_string_equal(s->bin, "attrs");
            }
            continue;
        }
        const struct asb_record *r = &it.u.rec;
        records++;
        assert_string_equal(r->ns, "test");
        keys[r->key.type]++;
        if (r->void_time == 0)
            never++;
        for (uint32_t i = 0; i < r->n_bins; i++)
            bins[r->bins[i].v.type]++;
        if (key_is(r, "edge-float")) {
            const struct asb_bin *b = find_bin(r, "fneg0");
            assert_non_null(b);
            assert_true(b->v.d == 0.0 && signbit(b->v.d));
            b = find_bin(r, "fdenorm");
            assert_true(b->v.d == 4.9406564584124654e-324);
            b = find_bin(r, "fmax");
            assert_true(b->v.d == 1.7976931348623157e+308);
            saw_float = true;
        }
        if (key_is(r, "edge-str-nul")) {
            for (uint32_t i = 0; i < r->n_bins; i++)
                if (r->bins[i].v.type == ASB_P_STRING &&
                    memchr(r->bins[i].v.data, 0, r->bins[i].v.len))
                    saw_nul = true;
        }
        if (key_is(r, "edge-binnames")) {
            assert_non_null(find_bin(r, "has space"));
            assert_non_null(find_bin(r, "back\\slash"));
            assert_non_null(find_bin(r, "a b\\c"));
            assert_non_null(find_bin(r, "xxxxxxxxxxxxxxx"));
            saw_names = true;
        }
        if (key_is(r, "edge-blob-empty")) {
            assert_int_equal(r->bins[0].v.type, ASB_P_BLOB);
            assert_int_equal(r->bins[0].v.len, 0);
            saw_empty_blob = true;
        }
        if (key_is(r, "edge-bool")) {
            assert_int_equal(r->bins[0].v.type, ASB_P_BOOL);
            saw_bool = true;
        }
        if (key_is(r, "edge-int")) {
            bool min = false, max = false;
            for (uint32_t i = 0; i < r->n_bins; i++) {
                min |= r->bins[i].v.i == INT64_MIN;
                max |= r->bins[i].v.i == INT64_MAX;
            }
            assert_true(min && max);
            saw_int = true;
        }
    }
    assert_int_equal(records, 2000);
    assert_int_equal(udfs, 1);
    assert_int_equal(sindexes, 6);
    assert_int_equal(keys[ASB_P_INTEGER], 774);
    assert_int_equal(keys[ASB_P_STRING], 812);
    assert_int_equal(keys[ASB_P_BLOB], 203);
    assert_int_equal(keys[ASB_P_NIL], 211);
    assert_int_equal(never, 1476);
    assert_int_equal(bins[ASB_P_STRING], 2897);
    assert_int_equal(bins[ASB_P_INTEGER], 2052);
    assert_int_equal(bins[ASB_P_DOUBLE], 1225);
    assert_int_equal(bins[ASB_P_BOOL], 903);
    assert_int_equal(bins[ASB_P_MAP], 855);
    assert_int_equal(bins[ASB_P_LIST], 756);
    assert_int_equal(bins[ASB_P_BLOB], 280);
    assert_int_equal(bins[ASB_P_GEOJSON], 79);
    assert_int_equal(bins[ASB_P_HLL], 3);
    assert_int_equal(bins[ASB_P_JAVA], 1);
    assert_int_equal(bins[ASB_P_PYTHON], 1);
    assert_true(saw_float && saw_nul && saw_names && saw_empty_blob && saw_setless_idx &&
                saw_ctx && saw_bool && saw_int);
    assert_int_equal(asb_dec_offset(d), len);
    asb_dec_free(d);
    free(in);
}

/* ---- encoder ------------------------------------------------------------------------------ */

static char *encode(const struct asb_record *r, bool compact, size_t *n)
{
    struct err e;
    size_t cap = asb_record_max_size(r, compact);
    char *buf = malloc(cap + 1);
    if (asb_encode_record(r, compact, (uint8_t *)buf, cap, n, &e) != 0)
        fail_msg("encode: %s", e.msg);
    buf[*n] = 0;
    return buf;
}

static void test_encode_all_types(void **state)
{
    (void)state;
    static const uint8_t blob[] = {0x00, 0x01, 0x02, 0xff, 0xfe};
    struct asb_bin bins[] = {
        {"n", 1, {.type = ASB_P_NIL}},
        {"t", 1, {.type = ASB_P_BOOL, .b = true}},
        {"f", 1, {.type = ASB_P_BOOL, .b = false}},
        {"i", 1, {.type = ASB_P_INTEGER, .i = INT64_MIN}},
        {"i2", 2, {.type = ASB_P_INTEGER, .i = 0}},
        {"d", 1, {.type = ASB_P_DOUBLE, .d = -0.0}},
        {"d2", 2, {.type = ASB_P_DOUBLE, .d = 1e21}},
        {"d3", 2, {.type = ASB_P_DOUBLE, .d = 0.1}},
        {"d4", 2, {.type = ASB_P_DOUBLE, .d = INFINITY}},
        {"d5", 2, {.type = ASB_P_DOUBLE, .d = NAN}},
        {"s", 1, {.type = ASB_P_STRING, .data = (const uint8_t *)"a b\nc\\", .len = 6}},
        {"se", 2, {.type = ASB_P_STRING, .data = (const uint8_t *)"", .len = 0}},
        {"g", 1, {.type = ASB_P_GEOJSON, .data = (const uint8_t *)"{}", .len = 2}},
        {"b", 1, {.type = ASB_P_BLOB, .data = blob, .len = 5}},
        {"be", 2, {.type = ASB_P_BLOB, .data = blob, .len = 0}},
        {"j", 1, {.type = ASB_P_JAVA, .data = blob, .len = 1}},
        {"c", 1, {.type = ASB_P_CSHARP, .data = blob, .len = 2}},
        {"p", 1, {.type = ASB_P_PYTHON, .data = blob, .len = 3}},
        {"r", 1, {.type = ASB_P_RUBY, .data = blob, .len = 4}},
        {"h", 1, {.type = ASB_P_PHP, .data = blob, .len = 5}},
        {"e", 1, {.type = ASB_P_ERLANG, .data = blob, .len = 1}},
        {"y", 1, {.type = ASB_P_HLL, .data = blob, .len = 2}},
        {"m", 1, {.type = ASB_P_MAP, .data = blob, .len = 3}},
        {"l", 1, {.type = ASB_P_LIST, .data = blob, .len = 4}},
        {"sp ace\\", 7, {.type = ASB_P_INTEGER, .i = 7}},
        {"", 0, {.type = ASB_P_INTEGER, .i = -1}},
    };
    struct asb_record r = {
        .ns = "te st",
        .ns_len = 5,
        .set = "se\nt",
        .set_len = 4,
        .key = {.type = ASB_P_INTEGER, .i = INT64_MAX},
        .generation = 65535,
        .void_time = UINT32_MAX,
        .n_bins = sizeof bins / sizeof bins[0],
        .bins = bins,
    };
    for (int i = 0; i < 20; i++)
        r.digest[i] = (uint8_t)(i * 13);
    size_t n;
    char *s = encode(&r, false, &n);
    const char *expect =
        "+ k I 9223372036854775807\n"
        "+ n te\\ st\n"
        "+ d AA0aJzRBTltodYKPnKm2w9Dd6vc=\n"
        "+ s se\\\nt\n"
        "+ g 65535\n+ t 4294967295\n+ b 26\n"
        "- N n\n- Z t T\n- Z f F\n- I i -9223372036854775808\n- I i2 0\n"
        "- D d -0\n- D d2 1e+21\n- D d3 0.10000000000000001\n- D d4 inf\n- D d5 nan\n"
        "- S s 6 a b\nc\\\n- S se 0 \n- G g 2 {}\n"
        "- B b 8 AAEC//4=\n- B be 0 \n- J j 4 AA==\n- C c 4 AAE=\n- P p 4 AAEC\n"
        "- R r 8 AAEC/w==\n- H h 8 AAEC//4=\n- E e 4 AA==\n- Y y 4 AAE=\n- M m 4 AAEC\n"
        "- L l 8 AAEC/w==\n- I sp\\ ace\\\\ 7\n- I  -1\n";
    if (n != strlen(expect) || strcmp(s, expect) != 0)
        fail_msg("encoded:\n%s", s);
    assert_true(n <= asb_record_max_size(&r, false));
    free(s);

    /* compact: bytes family raw, strings unchanged; bytes key raw */
    r.key = (struct asb_value){.type = ASB_P_BLOB, .data = blob, .len = 5};
    r.set_len = 0;
    r.n_bins = 0;
    s = encode(&r, true, &n);
    assert_memory_equal(s, "+ k B! 5 \x00\x01\x02\xff\xfe\n+ n te\\ st\n", 26);
    free(s);
    s = encode(&r, false, &n);
    assert_memory_equal(s, "+ k B 8 AAEC//4=\n", 17);
    assert_null(strstr(s, "+ s"));
    free(s);
    struct asb_bin cb[] = {
        {"b", 1, {.type = ASB_P_BLOB, .data = blob, .len = 2}},
        {"m", 1, {.type = ASB_P_MAP, .data = blob, .len = 1}},
        {"s", 1, {.type = ASB_P_STRING, .data = (const uint8_t *)"xy", .len = 2}},
    };
    r.key = (struct asb_value){.type = ASB_P_DOUBLE, .d = -273.15};
    r.bins = cb;
    r.n_bins = 3;
    s = encode(&r, true, &n);
    assert_non_null(strstr(s, "+ k D -273.14999999999998\n"));
    assert_non_null(memmem(s, n, "- B! b 2 \x00\x01\n- M! m 1 \x00\n- S s 2 xy\n", 33));
    free(s);
    r.key = (struct asb_value){.type = ASB_P_STRING, .data = (const uint8_t *)"k y\n", .len = 4};
    r.n_bins = 0;
    s = encode(&r, false, &n);
    assert_memory_equal(s, "+ k S 4 k y\n\n", 13);
    free(s);
    r.key = (struct asb_value){.type = ASB_P_NIL};
    s = encode(&r, false, &n);
    assert_memory_equal(s, "+ n ", 4);
    free(s);

    /* invalid types */
    struct err e;
    uint8_t buf[4096];
    r.key = (struct asb_value){.type = ASB_P_BOOL};
    assert_int_equal(asb_encode_record(&r, false, buf, sizeof buf, &n, &e), ERR_INVALID);
    r.key = (struct asb_value){.type = ASB_P_NIL};
    struct asb_bin bad = {"x", 1, {.type = 5}};
    r.bins = &bad;
    r.n_bins = 1;
    assert_int_equal(asb_encode_record(&r, false, buf, sizeof buf, &n, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "invalid particle type 5"));
    assert_int_equal(asb_encode_record(&r, false, buf, 10, &n, &e), ERR_INTERNAL);
}

static void test_encode_header_and_globals(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t n;
    struct err e;
    assert_int_equal(asb_encode_header(NULL, "a b", 3, true, buf, sizeof buf, &n, &e), 0);
    assert_int_equal(n, strlen("Version 3.1\n# namespace a\\ b\n# first-file\n"));
    assert_memory_equal(buf, "Version 3.1\n# namespace a\\ b\n# first-file\n", n);
    assert_int_equal(asb_encode_header("3.2", "t", 1, false, buf, sizeof buf, &n, &e), 0);
    assert_memory_equal(buf, "Version 3.2\n# namespace t\n", n);
    assert_int_equal(asb_encode_header("3.10", "t", 1, false, buf, sizeof buf, &n, &e),
                     ERR_INVALID);

    struct asb_udf u = {'L', "my udf.lua", 10, (const uint8_t *)"x\ny", 3};
    assert_int_equal(asb_encode_udf(&u, buf, sizeof buf, &n, &e), 0);
    assert_memory_equal(buf, "* u L my\\ udf.lua 3 x\ny\n", n);
    u.type = 'X';
    assert_int_equal(asb_encode_udf(&u, buf, sizeof buf, &n, &e), ERR_INVALID);

    struct asb_sindex s = {.ns = "test", .ns_len = 4, .set = "", .set_len = 0,
                           .name = "idx loc", .name_len = 7, .index_type = 'N',
                           .bin = "loc", .bin_len = 3, .bin_type = 'G'};
    assert_int_equal(asb_encode_sindex(&s, buf, sizeof buf, &n, &e), 0);
    assert_memory_equal(buf, "* i test  idx\\ loc N 1 loc G\n", n);
    s.ctx = "kiKkA2x2bA==";
    s.ctx_len = 12;
    s.index_type = 'K';
    s.bin_type = 'S';
    assert_int_equal(asb_encode_sindex(&s, buf, sizeof buf, &n, &e), 0);
    assert_memory_equal(buf, "* i test  idx\\ loc K 1 loc S kiKkA2x2bA==\n", n);
    s.expr = "EXPR";
    s.expr_len = 4;
    assert_int_equal(asb_encode_sindex(&s, buf, sizeof buf, &n, &e), 0);
    assert_memory_equal(buf, "* e test  idx\\ loc K 1 loc S kiKkA2x2bA== EXPR\n", n);
    s.bin_type = 'Q';
    assert_int_equal(asb_encode_sindex(&s, buf, sizeof buf, &n, &e), ERR_INVALID);
    s.bin_type = 'S';
    s.index_type = 0;
    assert_int_equal(asb_encode_sindex(&s, buf, sizeof buf, &n, &e), ERR_INVALID);

    char esc[32];
    assert_int_equal(asb_escape("a\\ \nb", 5, esc), 8);
    assert_memory_equal(esc, "a\\\\\\ \\\nb", 8);
}

static void test_base64(void **state)
{
    (void)state;
    char out[64];
    uint8_t dec[64];
    size_t n;
    assert_int_equal(asb_b64_encode((const uint8_t *)"", 0, out), 0);
    assert_int_equal(asb_b64_encode((const uint8_t *)"f", 1, out), 4);
    assert_memory_equal(out, "Zg==", 4);
    assert_int_equal(asb_b64_encode((const uint8_t *)"foobar", 6, out), 8);
    assert_memory_equal(out, "Zm9vYmFy", 8);
    assert_int_equal(asb_b64_decode("Zm9vYg==", 8, dec, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(dec, "foob", 4);
    assert_int_equal(asb_b64_decode("Zm9vYmE=", 8, dec, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(asb_b64_decode("", 0, dec, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(asb_b64_decode("Zm9", 3, dec, &n), -1);
    assert_int_equal(asb_b64_decode("Zm=v", 4, dec, &n), -1);
    assert_int_equal(asb_b64_decode("Zg==Zg==", 8, dec, &n), -1);
    assert_int_equal(asb_b64_decode("Zm9v\nmFy", 8, dec, &n), -1);
    assert_int_equal(asb_b64_decode("=AAA", 4, dec, &n), -1);
}

/* The 6-bytes-per-step encoder against a 1-character-at-a-time reference, for every length
 * 0..300 (all tail shapes) and every byte value, and the round trip through the decoder. */
static void reference_b64(const uint8_t *in, size_t n, char *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = A[v >> 18];
        out[o++] = A[(v >> 12) & 63];
        out[o++] = i + 1 < n ? A[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? A[v & 63] : '=';
    }
}

static void test_base64_fast_path(void **state)
{
    (void)state;
    uint8_t in[300] = {0}, back[300];
    char got[400], want[400];
    uint32_t x = 12345;
    for (size_t len = 0; len <= sizeof in; len++) {
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            in[i] = len == 256 ? (uint8_t)i : (uint8_t)(x >> 16);
        }
        size_t n = asb_b64_encode(in, len, got);
        reference_b64(in, len, want);
        assert_int_equal(n, asb_b64_encoded_len(len));
        assert_memory_equal(got, want, n);
        size_t bn = 0;
        assert_int_equal(asb_b64_decode(got, n, back, &bn), 0);
        assert_int_equal(bn, len);
        assert_memory_equal(back, in, len);
    }
}

/* ---- decoder: grammar corners and errors ------------------------------------------------- */

struct dec_out {
    int rc;
    long records, udfs, sindexes;
    char msg[ERR_MSG_MAX];
};

static struct dec_out decode_all(const char *text, size_t len, size_t chunk)
{
    struct dec_out o = {0};
    struct msrc src = {(const uint8_t *)text, len, 0, chunk, 0};
    struct asb_dec *d = asb_dec_new(msrc_read, &src, NULL);
    struct err e;
    err_clear(&e);
    for (;;) {
        struct asb_item it;
        o.rc = asb_dec_next(d, &it, &e);
        if (o.rc != 0) {
            snprintf(o.msg, sizeof o.msg, "%s", e.msg);
            /* sticky */
            struct err e2;
            assert_int_equal(asb_dec_next(d, &it, &e2), o.rc);
            assert_string_equal(e2.msg, e.msg);
            break;
        }
        if (it.kind == ASB_ITEM_EOF)
            break;
        if (it.kind == ASB_ITEM_RECORD)
            o.records++;
        else if (it.kind == ASB_ITEM_UDF)
            o.udfs++;
        else
            o.sindexes++;
    }
    asb_dec_free(d);
    return o;
}

#define HDR "Version 3.1\n# namespace test\n"
#define REC_HEAD "+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n"

static void test_decode_corners(void **state)
{
    (void)state;
    static const char *ok[] = {
        "Version 3.1\n",
        HDR,
        HDR "# first-file\n",
        "Version 3.0\n# namespace test\n" REC_HEAD "+ b 1\n- S a\\b 1 x\n",
        "Version 3.2\n# namespace test\n* e test set idx N 1 bin N EXPR\n"
        "* e test set idx N 1 bin N CTX EXPR\n",
        HDR REC_HEAD "+ b 0\n",
        HDR "+ k X 4 Zm9v\n" REC_HEAD "+ b 1\n- X s 8 Zm9vYmFy\n",
        HDR "+ k D nan\n" REC_HEAD "+ b 2\n- D x -inf\n- D y 1.5E-3\n",
        HDR "+ k B! 2 \n\n\n" REC_HEAD "+ b 1\n- B! x 3 \n \\\n",
        HDR "+ k I -0\n" REC_HEAD "+ b 1\n- I x 0009\n",
        HDR "+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ s \n+ g 1\n+ t 0\n+ b 0\n",
        HDR "* i test  idx N 1 b\\ in B\n* u L x 0 \n",
    };
    static const long recs[] = {0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 0};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        for (size_t chunk = 0; chunk < 3; chunk++) {
            struct dec_out o = decode_all(ok[i], strlen(ok[i]), chunk);
            if (o.rc != 0)
                fail_msg("case %zu: %s", i, o.msg);
            assert_int_equal(o.records, recs[i]);
        }
    }
    /* values decode to what they say */
    const char *t = HDR "+ k X 4 Zm9v\n" REC_HEAD "+ b 2\n- X s 8 Zm9vYmFy\n- B! r 3 \n \\\n";
    struct msrc src = {(const uint8_t *)t, strlen(t), 0, 0, 0};
    struct asb_dec *d = asb_dec_new(msrc_read, &src, NULL);
    struct asb_item it;
    struct err e;
    assert_int_equal(asb_dec_next(d, &it, &e), 0);
    assert_int_equal(it.kind, ASB_ITEM_RECORD);
    assert_int_equal(it.line, 3);
    assert_int_equal(it.offset, strlen(HDR));
    assert_int_equal(it.u.rec.key.type, ASB_P_STRING);
    assert_int_equal(it.u.rec.key.len, 3);
    assert_memory_equal(it.u.rec.key.data, "foo", 3);
    assert_int_equal(it.u.rec.bins[0].v.type, ASB_P_STRING);
    assert_memory_equal(it.u.rec.bins[0].v.data, "foobar", 6);
    assert_int_equal(it.u.rec.bins[1].v.len, 3);
    assert_memory_equal(it.u.rec.bins[1].v.data, "\n \\", 3);
    assert_null(it.u.rec.set);
    assert_int_equal(asb_dec_next(d, &it, &e), 0);
    assert_int_equal(it.kind, ASB_ITEM_EOF);
    assert_int_equal(asb_dec_line(d), 12); /* the raw LF counts */
    assert_string_equal(asb_dec_version(d), "3.1");
    asb_dec_free(d);
}

struct bad_case {
    const char *text;
    const char *msg; /* substring expected in the error */
};

static void test_decode_errors(void **state)
{
    (void)state;
    static const struct bad_case bad[] = {
        {"", "line 1, offset 0: empty input"},
        {"Version", "expected \"Version \""},
        {"version 3.1\n", "not an .asb backup file"},
        {"\x28\xb5\x2f\xfd\x00\x00", "zstd-compressed"},
        {"Version 4.0\n", "unsupported backup format version \"4.0\""},
        {"Version 3.1 \n", "3-character version"},
        {"Version 3.1\n# namespace test", "line 2, offset 28: unexpected end of input"},
        {"Version 3.1\n# colour blue\n", "line 2, offset 14: unknown meta data line"},
        {HDR "# first-file\n" REC_HEAD "+ b 0\n# first-file\n", "meta data line ('#') after"},
        {HDR "x", "line 3, offset 29: expected a record ('+') or a global line ('*'), found 'x'"},
        {HDR "+ n test\n+ d AAAA\n", "truncated"},
        {HDR "+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAA!AAAA=\n+ g 1\n", "invalid digest"},
        {HDR "+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAAA\n+ g 1\n", "invalid digest"},
        {HDR "+ k Q 1\n", "line 3, offset 33: invalid key type 'Q'"},
        {HDR "+ k I 9223372036854775808\n", "integer key out of range"},
        {HDR "+ k I -9223372036854775809\n", "integer key out of range"},
        {HDR "+ k I 12a\n", "expected LF at the end of the key line, found 'a'"},
        {HDR "+ k I \n", "expected integer key (digits), found LF"},
        {HDR "+ k D 0x10\n", "invalid character 'x' in double key"},
        {HDR "+ k D e\n", "invalid double key 'e'"},
        {HDR "+ k S 5 abc\n", "string key needs 1 more bytes"},
        {HDR "+ k B 3 AAA\n", "not a multiple of 4"},
        {HDR "+ k B 4 AA=A\n", "invalid base64"},
        {HDR "+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "expected the namespace line \"+ n\""},
        {HDR "+ n test\n+ g 1\n", "expected digest line"},
        {HDR "+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ t 0\n", "expected the generation line"},
        {HDR "+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 65536\n", "generation out of range"},
        {HDR "+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g -1\n", "expected generation (digits)"},
        {HDR REC_HEAD "+ b 65536\n", "bin count out of range"},
        {HDR "+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 4294967296\n", "expiration time out of range"},
        {HDR REC_HEAD "+ b 2\n- I a 1\n", "truncated"},
        {HDR REC_HEAD "+ b 2\n- I a 1\n+ n test\n", "expected bin line ('-'), found '+'"},
        {HDR REC_HEAD "+ b 1\n- Q a 1\n", "invalid bin type 'Q'"},
        {HDR REC_HEAD "+ b 1\n- U a 1\n", "LDT"},
        {HDR REC_HEAD "+ b 1\n- S! a 1 x\n", "raw form '!' is only valid"},
        {HDR REC_HEAD "+ b 1\n- Z a X\n", "invalid boolean value 'X'"},
        {HDR REC_HEAD "+ b 1\n- Z a T \n", "expected LF at the end of the bin line, found ' '"},
        {HDR REC_HEAD "+ b 1\n- N a 1\n", "expected LF after a nil bin, found ' '"},
        {HDR REC_HEAD "+ b 1\n- I a 1", "truncated"},
        {HDR REC_HEAD "+ b 1\n- S a 3 xy\n", "expected LF at the end of the bin line"},
        {HDR REC_HEAD "+ b 1\n- S a 1 xy\n", "expected LF at the end of the bin line, found 'y'"},
        {HDR REC_HEAD "+ b 1\n- S a 4294967296 x\n", "string value out of range"},
        {HDR REC_HEAD "+ b 1\n- S a 999999999 x\n", "exceeds the limit"},
        {HDR REC_HEAD "+ b 1\n- B a 8 AAAA====\n", "invalid base64"},
        {HDR REC_HEAD "+ b 1\n- I a\\", "truncated"},
        {HDR REC_HEAD "+ b 1\n- I a\x00 1\n", "NUL byte in bin name"},
        {HDR "* x\n", "invalid global line type 'x'"},
        {HDR "* e test set idx N 1 bin N EXPR\n", "invalid global line type 'e'"},
        {"Version 3.0\n# namespace test\n* i test s i N 1 b N\n", "expected a record"},
        {HDR "* i test set idx Q 1 bin N\n", "invalid index type 'Q'"},
        {HDR "* i test set idx N 2 bin N bin2 S\n", "index path count 2 is not supported"},
        {HDR "* i test set idx N 1 bin X\n", "invalid index bin type 'X'"},
        {HDR "* i test set idx N 1 bin N ctx more\n", "expected LF at the end of the index line"},
        {HDR "* i test set idx N 1 bin N \n", "empty token"},
        {"Version 3.2\n* e test set idx N 1 bin N\n", "without an expression"},
        {HDR "* u X a 1 x\n", "expected UDF type 'L'"},
        {HDR "* u L a 10 x\n", "UDF content needs 8 more bytes"},
    };
    /* a name longer than the token limit */
    char *longname = malloc(2000);
    memcpy(longname, HDR REC_HEAD "+ b 1\n- I ", strlen(HDR REC_HEAD "+ b 1\n- I "));
    size_t p = strlen(HDR REC_HEAD "+ b 1\n- I ");
    memset(longname + p, 'a', 1200);
    memcpy(longname + p + 1200, " 1\n", 4);

    for (size_t i = 0; i < sizeof bad / sizeof bad[0] + 1; i++) {
        const char *text = i < sizeof bad / sizeof bad[0] ? bad[i].text : longname;
        const char *msg = i < sizeof bad / sizeof bad[0] ? bad[i].msg : "bin name longer than 1000";
        size_t len = strlen(text);
        if (strstr(msg, "NUL byte"))
            len = strlen(HDR REC_HEAD "+ b 1\n- I a") + 4;
        for (size_t chunk = 0; chunk < 3; chunk++) {
            struct dec_out o = decode_all(text, len, chunk);
            if (o.rc == 0)
                fail_msg("case %zu accepted: %s", i, text);
            if (!strstr(o.msg, msg))
                fail_msg("case %zu: got \"%s\", expected \"%s\"", i, o.msg, msg);
            assert_non_null(strstr(o.msg, "asb: line "));
        }
    }
    free(longname);
}

/* read errors from the source keep their message and code */
static int failing_read(void *ctx, void *buf, size_t cap, size_t *got, struct err *e)
{
    int *calls = ctx;
    if ((*calls)++ == 0) {
        const char *t = HDR;
        memcpy(buf, t, strlen(t));
        *got = strlen(t);
        return 0;
    }
    (void)cap;
    return err_set(e, ERR_IO, "disk on fire");
}

static void test_decode_read_error(void **state)
{
    (void)state;
    int calls = 0;
    struct asb_dec *d = asb_dec_new(failing_read, &calls, NULL);
    struct asb_item it;
    struct err e;
    assert_int_equal(asb_dec_next(d, &it, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "disk on fire"));
    assert_non_null(strstr(e.msg, "offset 29"));
    asb_dec_free(d);
}

/* ---- writer ------------------------------------------------------------------------------- */

static int failing_sink(void *ctx, const void *data, size_t len, struct err *e)
{
    (void)ctx;
    (void)data;
    (void)len;
    return err_set(e, ERR_IO, "no space left");
}

static void test_writer_buffering(void **state)
{
    (void)state;
    struct mbuf out = {0};
    struct asb_writer w;
    struct err e;
    assert_int_equal(asb_writer_init(&w, 4096, false, mbuf_sink, &out, &e), 0);
    assert_int_equal(asb_writer_header(&w, "test", 4, false, &e), 0);
    /* a record much larger than the buffer grows it */
    size_t big = 100000;
    uint8_t *data = malloc(big);
    memset(data, 'x', big);
    struct asb_bin b = {"s", 1, {.type = ASB_P_STRING, .data = data, .len = (uint32_t)big}};
    struct asb_record r = {.ns = "test", .ns_len = 4, .n_bins = 1, .bins = &b};
    for (int i = 0; i < 3; i++)
        assert_int_equal(asb_writer_record(&w, &r, &e), 0);
    assert_int_equal(asb_writer_flush(&w, &e), 0);
    assert_int_equal(out.len, w.bytes);
    assert_int_equal(w.records, 3);
    struct dec_out o = decode_all((const char *)out.p, out.len, 1000);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.records, 3);
    asb_writer_free(&w);

    assert_int_equal(asb_writer_init(&w, 4096, false, failing_sink, NULL, &e), 0);
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = asb_writer_record(&w, &r, &e);
    assert_int_equal(rc, ERR_IO);
    assert_string_equal(e.msg, "no space left");
    asb_writer_free(&w);
    free(data);
    free(out.p);
}

/* ---- fuzz-ish robustness ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_fuzz_truncate_and_flip(void **state)
{
    (void)state;
    size_t l1, l2;
    uint8_t *a = slurp_file(DATA "dataset.asb", &l1);
    uint8_t *b = slurp_file(DATA "d-backup-compact/test_00000.asb", &l2);
    uint64_t rnd = 0x1234567887654321ull;
    size_t max_slice = 24 * 1024;
    uint8_t *buf = malloc(max_slice + 64);
    double t0 = now_s();
    long iterations = 0, errors = 0;
    while (now_s() - t0 < 1.0) {
        const uint8_t *src = (xorshift(&rnd) & 1) ? a : b;
        size_t srclen = src == a ? l1 : l2;
        /* a slice: the file start (header, globals) or a window starting at a record line */
        size_t start = 0;
        if (xorshift(&rnd) % 3) {
            start = (size_t)(xorshift(&rnd) % (srclen - max_slice));
            const uint8_t *q = memmem(src + start, srclen - start, "\n+ k", 4);
            start = q ? (size_t)(q - src) + 1 : 0;
        }
        size_t n = 1 + (size_t)(xorshift(&rnd) % max_slice);
        if (start + n > srclen)
            n = srclen - start;
        size_t hdr = 0;
        if (start) {
            memcpy(buf, HDR, strlen(HDR));
            hdr = strlen(HDR);
        }
        memcpy(buf + hdr, src + start, n);
        n += hdr;
        int mode = (int)(xorshift(&rnd) % 4);
        if (mode >= 1) { /* flip 1..4 bits */
            int flips = 1 + (int)(xorshift(&rnd) % 4);
            for (int f = 0; f < flips; f++) {
                size_t pos = (size_t)(xorshift(&rnd) % n);
                buf[pos] ^= (uint8_t)(1u << (xorshift(&rnd) % 8));
            }
        }
        if (mode == 3) { /* replace a byte by a delimiter-like one */
            static const uint8_t special[] = {' ', '\n', '\\', '+', '-', '*', '#', '0', '9', 0};
            buf[xorshift(&rnd) % n] = special[xorshift(&rnd) % sizeof special];
        }
        struct dec_out o = decode_all((const char *)buf, n, (xorshift(&rnd) & 1) ? 0 : 61);
        if (o.rc != 0) {
            errors++;
            assert_true(o.rc == ERR_INVALID || o.rc == ERR_NOMEM);
            assert_non_null(strstr(o.msg, "asb: line "));
        }
        iterations++;
    }
    /* a truncation inside the item following the cut always fails */
    for (size_t cut = 1; cut < 4000; cut += 7) {
        struct dec_out o = decode_all((const char *)a, cut, 0);
        if (o.rc == 0) {
            /* only at an item boundary: the next byte starts a line with '+' or '*' */
            assert_true(a[cut - 1] == '\n' && (a[cut] == '+' || a[cut] == '*' || a[cut] == '#'));
        }
    }
    print_message("fuzz: %ld iterations in 1 s, %ld rejected\n", iterations, errors);
    assert_true(iterations > 50);
    assert_true(errors > iterations / 4);
    free(buf);
    free(a);
    free(b);
}

/* ---- throughput --------------------------------------------------------------------------- */

static int null_sink(void *ctx, const void *data, size_t len, struct err *e)
{
    (void)data;
    (void)e;
    *(size_t *)ctx += len;
    return 0;
}

struct owned {
    struct asb_record *recs;
    size_t n;
    uint8_t **blocks;
};

/* Decodes a file keeping deep copies of every record (for encoder timing). */
static struct owned load_records(const char *path)
{
    size_t len;
    uint8_t *in = slurp_file(path, &len);
    struct msrc src = {in, len, 0, 0, 0};
    struct asb_dec *d = asb_dec_new(msrc_read, &src, NULL);
    struct owned o = {calloc(4096, sizeof(struct asb_record)), 0, calloc(4096, sizeof(uint8_t *))};
    struct err e;
    for (;;) {
        struct asb_item it;
        assert_int_equal(asb_dec_next(d, &it, &e), 0);
        if (it.kind == ASB_ITEM_EOF)
            break;
        if (it.kind != ASB_ITEM_RECORD)
            continue;
        const struct asb_record *r = &it.u.rec;
        size_t need = sizeof(struct asb_bin) * r->n_bins + r->ns_len + r->set_len + r->key.len + 3;
        for (uint32_t i = 0; i < r->n_bins; i++)
            need += r->bins[i].name_len + r->bins[i].v.len;
        uint8_t *blk = malloc(need + 1), *p = blk;
        struct asb_bin *bins = (struct asb_bin *)p;
        p += sizeof(struct asb_bin) * r->n_bins;
        struct asb_record c = *r;
        c.ns = memcpy(p, r->ns, r->ns_len);
        p += r->ns_len;
        c.set = r->set_len ? memcpy(p, r->set, r->set_len) : NULL;
        p += r->set_len;
        if (r->key.len)
            c.key.data = memcpy(p, r->key.data, r->key.len);
        p += r->key.len;
        for (uint32_t i = 0; i < r->n_bins; i++) {
            bins[i] = r->bins[i];
            bins[i].name = memcpy(p, r->bins[i].name, r->bins[i].name_len);
            p += r->bins[i].name_len;
            if (r->bins[i].v.len)
                bins[i].v.data = memcpy(p, r->bins[i].v.data, r->bins[i].v.len);
            p += r->bins[i].v.len;
        }
        c.bins = bins;
        o.recs[o.n] = c;
        o.blocks[o.n++] = blk;
    }
    asb_dec_free(d);
    free(in);
    return o;
}

static void test_throughput(void **state)
{
    (void)state;
    struct owned o = load_records(DATA "b-backup-full-p1/test_00000.asb");
    assert_int_equal(o.n, 2000);
    size_t total = 0;
    struct asb_writer w;
    struct err e;
    assert_int_equal(asb_writer_init(&w, 0, false, null_sink, &total, &e), 0);
    double t0 = now_s(), t;
    long loops = 0;
    do {
        for (size_t i = 0; i < o.n; i++)
            assert_int_equal(asb_writer_record(&w, &o.recs[i], &e), 0);
        loops++;
        t = now_s() - t0;
    } while (t < 0.3);
    assert_int_equal(asb_writer_flush(&w, &e), 0);
    print_message("encode: %.1f MB/s, %.0f records/s\n", (double)total / t / 1e6,
                  (double)loops * (double)o.n / t);
    asb_writer_free(&w);

    size_t len;
    uint8_t *in = slurp_file(DATA "b-backup-full-p1/test_00000.asb", &len);
    t0 = now_s();
    loops = 0;
    do {
        struct dec_out r = decode_all((const char *)in, len, 0);
        assert_int_equal(r.records, 2000);
        loops++;
        t = now_s() - t0;
    } while (t < 0.3);
    print_message("decode: %.1f MB/s, %.0f records/s\n", (double)len * (double)loops / t / 1e6,
                  2000.0 * (double)loops / t);
    free(in);
    for (size_t i = 0; i < o.n; i++)
        free(o.blocks[i]);
    free(o.blocks);
    free(o.recs);
}

/* asb_format_double must equal printf("%.17g") everywhere */
static void check_double(double d)
{
    char want[64], got[64];
    snprintf(want, sizeof want, "%.17g", d);
    size_t n = asb_format_double(d, got);
    got[n] = 0;
    if (strcmp(want, got) != 0)
        fail_msg("%%.17g of %a: printf \"%s\", asb \"%s\"", d, want, got);
}

static void test_double_format(void **state)
{
    (void)state;
    static const double fixed[] = {0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1e-4, 1e-5, 1.5e-5, 9.9999e-5,
                                   1e15, 1e16, 1e17, 1e21, 123456789012345678.0, 0.3,
                                   2.5, 632.3655, 798.26, -273.15, 1.7976931348623157e308,
                                   2.2250738585072014e-308, 4.9406564584124654e-324, 3.141592653589793,
                                   99999999999999999.0, 9999999999999998.0, 0.000123456789,
                                   9007199254740993.0, 4503599627370496.5, 1e-6, 1e-7, 1e22,
                                   1e38, 1e39, 123.0, 1e100, -1e-300};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_double(fixed[i]);
    check_double(INFINITY);
    check_double(-INFINITY);
    check_double(NAN);
    uint64_t rnd = 0x0123456789abcdefull;
    for (long i = 0; i < 200000; i++) {
        uint64_t r = xorshift(&rnd);
        double d;
        switch (i % 5) {
        case 0: /* any bit pattern */
            memcpy(&d, &r, sizeof d);
            break;
        case 1: /* "money" values */
            d = (double)(int64_t)(r % 100000000) / 100.0;
            break;
        case 2: /* 4-decimal values, both signs */
            d = (double)(int64_t)(r % 2000000001 - 1000000000) / 10000.0;
            break;
        case 3: /* around powers of ten */
            d = pow(10.0, (double)(int)(r % 60) - 20) * (1.0 + (double)(r >> 40) / 1e12);
            break;
        default: /* integers of every size */
            d = (double)(int64_t)(r >> (r % 64));
            break;
        }
        check_double(d);
    }
}

static void test_sniff_and_helpers(void **state)
{
    (void)state;
    assert_int_equal(asb_sniff("Version 3.1\n", 12), ASB_SNIFF_TEXT);
    assert_int_equal(asb_sniff("\x28\xb5\x2f\xfd", 4), ASB_SNIFF_ZSTD);
    assert_int_equal(asb_sniff("xx", 2), ASB_SNIFF_UNKNOWN);
    assert_int_equal(asb_void_time_from_ttl(UINT32_MAX, 1000), 0);
    assert_int_equal(asb_void_time_from_ttl(60, 1000), 1060);
    assert_int_equal(asb_ptype_letter(ASB_P_HLL), 'Y');
    assert_int_equal(asb_ptype_letter(99), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_roundtrip),
        cmocka_unit_test(test_compact_same_records),
        cmocka_unit_test(test_dataset_contents),
        cmocka_unit_test(test_encode_all_types),
        cmocka_unit_test(test_encode_header_and_globals),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_base64_fast_path),
        cmocka_unit_test(test_decode_corners),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_read_error),
        cmocka_unit_test(test_writer_buffering),
        cmocka_unit_test(test_fuzz_truncate_and_flip),
        cmocka_unit_test(test_double_format),
        cmocka_unit_test(test_sniff_and_helpers),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
