/*
 * storage_contract.h - the backend-agnostic storage contract (src/storage/storage.h) as a
 * cmocka test suite any backend's test can run: streamed writes visible only at commit, read
 * back whole and by ranges, abort leaving nothing, uncommitted objects invisible, listings
 * (recursive / with delimiter, string prefixes, start-after, pages of 1, 2, 3), the list
 * callback, delete and delete-prefix, put/get with a concurrent reader (no torn reads), stat,
 * rejected keys and prefixes, the io-chain adapters, concurrent writers, and a large object
 * written in several parts.
 *
 * Usage (one test file per backend; a header of static functions, include it once):
 *
 *     #include "storage_contract.h"
 *
 *     // A fresh, EMPTY storage for each test, e.g. a new random prefix in the test bucket.
 *     static int my_open(void *ctx, struct stor **out, struct err *e) { ... }
 *     // Optional: remove what the test left (called before stor_close).
 *     static void my_cleanup(void *ctx, struct stor *s) { ... }
 *     // Optional: count of hidden artefacts under the storage that must not outlive a
 *     // commit/abort (local: temp files and empty directories; cloud: pending multipart
 *     // uploads / uncommitted blocks); -1 = cannot tell (the checks are skipped).
 *     static long my_leftovers(void *ctx, struct stor *s) { ... }
 *
 *     static struct stor_contract my_backend = {
 *         .name = "s3", .open = my_open, .cleanup = my_cleanup, .leftovers = my_leftovers,
 *         .ctx = NULL,
 *         .big_size = 0, .big_part = 0,        // large object test: 0 = 11 MiB + 7, 5 MiB parts
 *         .threads = 0, .per_thread = 0,       // concurrency test: 0 = 4 threads x 60 rounds
 *         .private_churn = false,              // true: each thread creates/deletes objects in
 *                                              // its own folder (for emulators that race on
 *                                              // shared folders, e.g. s3rver crashes)
 *         .no_atomic_replace = false,          // true: skip the reader racing 100 replacing
 *                                              // puts (for emulators that rewrite objects in
 *                                              // place, e.g. s3rver; real stores never do)
 *     };
 *
 *     int main(void) {
 *         const struct CMUnitTest tests[] = {
 *             STOR_CONTRACT_TESTS(&my_backend),
 *             cmocka_unit_test(my_backend_specific_test),
 *         };
 *         return cmocka_run_group_tests(tests, NULL, NULL);
 *     }
 *
 * Each contract test gets a `struct stor_contract_fx *` as its state (fx->s is the open
 * storage); backend-specific tests may use the same fixture with
 * cmocka_unit_test_prestate_setup_teardown(fn, stor_contract_setup, stor_contract_teardown,
 * &my_backend). The helpers sc_pattern, sc_put_str, sc_write_obj, sc_read_range,
 * sc_list_str and sc_assert_list are part of the API too.
 *
 * Error messages are part of the contract: a missing key's ERR_NOT_FOUND names the key.
 */
#ifndef ABS_TESTS_STORAGE_CONTRACT_H
#define ABS_TESTS_STORAGE_CONTRACT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "io/io.h"
#include "storage/cloud_http.h"
#include "storage/storage.h"

#define SC_UNUSED __attribute__((unused))

struct stor_contract {
    const char *name;
    int (*open)(void *ctx, struct stor **out, struct err *e);
    void (*cleanup)(void *ctx, struct stor *s);
    long (*leftovers)(void *ctx, struct stor *s);
    void *ctx;
    size_t big_size;
    size_t big_part;
    int threads;
    int per_thread;
    bool private_churn;
    bool no_atomic_replace;
};

struct stor_contract_fx {
    const struct stor_contract *be;
    struct stor *s;
};

/* ---- fixture ------------------------------------------------------------------------------ */

static SC_UNUSED int stor_contract_setup(void **state)
{
    const struct stor_contract *be = *state;
    struct stor_contract_fx *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fx->be = be;
    struct err e = {0};
    if (be->open(be->ctx, &fx->s, &e) != 0) {
        fprintf(stderr, "%s: open: %s\n", be->name, e.msg);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static SC_UNUSED int stor_contract_teardown(void **state)
{
    struct stor_contract_fx *fx = *state;
    if (!fx)
        return 0;
    if (fx->be->cleanup)
        fx->be->cleanup(fx->be->ctx, fx->s);
    stor_close(fx->s);
    free(fx);
    return 0;
}

/* Asserts that no hidden artefact is left (when the backend can tell). */
static SC_UNUSED void sc_assert_no_leftovers(struct stor_contract_fx *fx)
{
    if (!fx->be->leftovers)
        return;
    long n = fx->be->leftovers(fx->be->ctx, fx->s);
    if (n > 0)
        fail_msg("%s: %ld leftover artefact(s) in %s", fx->be->name, n, stor_name(fx->s));
}

/* ---- helpers ------------------------------------------------------------------------------ */

static SC_UNUSED void sc_pattern(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 31 + seed * 7 + (i >> 8)) & 0xff);
}

/* A quick retry policy for tests against fakes and emulators: 2 retries, 2 s to connect, the
 * given first backoff and per-attempt timeout; a backoff cap of 0 keeps the default. */
static SC_UNUSED struct cloud_retry sc_short_retry(int64_t base_delay_ms, int64_t max_delay_ms,
                                                   int64_t timeout_ms)
{
    struct cloud_retry r;
    cloud_retry_default(&r);
    r.max_retries = 2;
    r.base_delay_ms = base_delay_ms;
    if (max_delay_ms)
        r.max_delay_ms = max_delay_ms;
    r.timeout_ms = timeout_ms;
    r.connect_timeout_ms = 2000;
    return r;
}

/* A backend's cleanup: deletes every object and prefix the test left under the store's root. */
static SC_UNUSED void sc_cleanup_delete_all(void *ctx, struct stor *s)
{
    (void)ctx;
    struct stor_list_opts o = {.delimiter = true};
    struct stor_page p;
    struct err e = {0};
    if (stor_list_page(s, &o, NULL, &p, &e) == 0) {
        for (size_t i = 0; i < p.n; i++) {
            if (p.entries[i].is_prefix)
                stor_delete_prefix(s, p.entries[i].key, &e);
            else
                stor_delete(s, p.entries[i].key, &e);
        }
    }
    stor_page_free(&p);
}

static SC_UNUSED void sc_put_str(struct stor *s, const char *key, const char *text)
{
    struct err e = {0};
    int rc = stor_put(s, key, text, strlen(text), &e);
    if (rc)
        fail_msg("put %s: %s", key, e.msg);
}

/* Writes `n` pattern bytes through a streamed writer (part size hint `part`, 0 = default) in
 * uneven chunks and commits. */
static SC_UNUSED void sc_write_obj_part(struct stor *s, const char *key, size_t n,
                                        unsigned seed, size_t part)
{
    unsigned char *p = malloc(n ? n : 1);
    assert_non_null(p);
    sc_pattern(p, n, seed);
    struct err e = {0};
    struct stor_writer *w;
    if (stor_writer_open(s, key, part, &w, &e) != 0)
        fail_msg("writer_open %s: %s", key, e.msg);
    size_t off = 0, step = 1;
    while (off < n) {
        size_t c = step < n - off ? step : n - off;
        if (stor_writer_write(w, p + off, c, &e) != 0)
            fail_msg("write %s: %s", key, e.msg);
        off += c;
        step = step * 3 + 7;
    }
    assert_int_equal(stor_writer_bytes(w), n);
    if (stor_writer_commit(w, &e) != 0)
        fail_msg("commit %s: %s", key, e.msg);
    free(p);
}

static SC_UNUSED void sc_write_obj(struct stor *s, const char *key, size_t n, unsigned seed)
{
    sc_write_obj_part(s, key, n, seed, 0);
}

/* Reads the range into a heap buffer (free()). */
static SC_UNUSED unsigned char *sc_read_range(struct stor *s, const char *key, uint64_t off,
                                              int64_t len, size_t *out_n)
{
    struct err e = {0};
    struct stor_reader *r;
    if (stor_reader_open(s, key, off, len, &r, &e) != 0)
        fail_msg("reader_open %s: %s", key, e.msg);
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (n == cap)
            buf = realloc(buf, cap *= 2);
        size_t got;
        if (stor_reader_read(r, buf + n, cap - n < 100000 ? cap - n : 100000, &got, &e) != 0)
            fail_msg("read %s: %s", key, e.msg);
        if (got == 0)
            break;
        n += got;
    }
    stor_reader_close(r);
    *out_n = n;
    return buf;
}

/* Whole listing joined as "k1,k2,..." (prefix entries keep their '/'); pages of page_size. */
static SC_UNUSED char *sc_list_str(struct stor *s, const char *prefix, bool delim,
                                   size_t page_size, const char *start_after, int *pages)
{
    struct stor_list_opts o = {.prefix = prefix, .delimiter = delim, .page_size = page_size,
                               .start_after = start_after};
    size_t cap = 4096, len = 0;
    char *out = calloc(1, cap);
    char *token = NULL;
    int np = 0;
    for (;;) {
        struct stor_page p;
        struct err e = {0};
        int rc = stor_list_page(s, &o, token, &p, &e);
        free(token);
        if (rc)
            fail_msg("list %s: %s", prefix ? prefix : "(null)", e.msg);
        np++;
        if (np > 100000)
            fail_msg("list %s: endless paging", prefix ? prefix : "(null)");
        if (page_size)
            assert_true(p.n <= page_size);
        for (size_t i = 0; i < p.n; i++) {
            size_t kl = strlen(p.entries[i].key);
            while (len + kl + 2 > cap)
                out = realloc(out, cap *= 2);
            if (len)
                out[len++] = ',';
            memcpy(out + len, p.entries[i].key, kl + 1);
            len += kl;
            assert_int_equal(p.entries[i].is_prefix, p.entries[i].key[kl - 1] == '/');
            if (i > 0)
                assert_true(strcmp(p.entries[i - 1].key, p.entries[i].key) < 0);
        }
        token = p.next_token;
        p.next_token = NULL;
        stor_page_free(&p);
        if (!token)
            break;
    }
    if (pages)
        *pages = np;
    return out;
}

/* The listing equals `expect`, whole and through pages of one and two entries. */
static SC_UNUSED void sc_assert_list(struct stor *s, const char *prefix, bool delim,
                                     const char *expect)
{
    char *got = sc_list_str(s, prefix, delim, 0, NULL, NULL);
    assert_string_equal(got, expect);
    free(got);
    for (size_t ps = 1; ps <= 2; ps++) {
        int pages;
        got = sc_list_str(s, prefix, delim, ps, NULL, &pages);
        assert_string_equal(got, expect);
        free(got);
    }
}

struct sc_count_ctx {
    int seen;
    int stop_at;
};

static SC_UNUSED int sc_count_cb(void *ctx, const struct stor_entry *ent, struct err *e)
{
    (void)e;
    struct sc_count_ctx *c = ctx;
    assert_non_null(ent->key);
    if (++c->seen == c->stop_at)
        return 1;
    return 0;
}

static SC_UNUSED int sc_fail_cb(void *ctx, const struct stor_entry *ent, struct err *e)
{
    (void)ctx;
    return err_set(e, ERR_INTERNAL, "stop at %s", ent->key);
}

/* Nine objects in the ABS layout plus neighbours. */
static SC_UNUSED void sc_make_layout(struct stor *s)
{
    sc_put_str(s, "r/backup/1704110400000/data/test/metadata.yaml", "m");
    sc_put_str(s, "r/backup/1704110400000/data/test/0_test_1.asb", "d");
    sc_put_str(s, "r/backup/1704110400000/data/test/1_test_2.asb", "dd");
    sc_put_str(s, "r/backup/1704110400000/data/bar/metadata.yaml", "m");
    sc_put_str(s, "r/backup/1704196800000_2024-01-02T12-00-00/data/test/metadata.yaml", "m");
    sc_put_str(s, "r/incremental/1704114000000/data/test/metadata.yaml", "m");
    sc_put_str(s, "r/a-b", "order");
    sc_put_str(s, "top", "t");
    sc_put_str(s, "r2/backup/1/data/x/metadata.yaml", "m");
}

/* ---- contract: writes, reads, ranges ------------------------------------------------------ */

static SC_UNUSED void stor_contract_write_commit_read(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    const char *key = "r/backup/1704110400000/data/test/0_test_1.asb";
    const size_t n = 1000003; /* several local writer buffers, odd size, one cloud part */
    sc_write_obj(s, key, n, 1);
    unsigned char *want = malloc(n);
    sc_pattern(want, n, 1);

    uint64_t size;
    int64_t mtime;
    struct err e = {0};
    assert_int_equal(stor_stat(s, key, &size, &mtime, &e), 0);
    assert_int_equal(size, n);
    int64_t now = (int64_t)time(NULL) * 1000;
    assert_true(mtime > now - 60000 && mtime < now + 60000);

    size_t got;
    unsigned char *all = sc_read_range(s, key, 0, -1, &got);
    assert_int_equal(got, n);
    assert_memory_equal(all, want, n);
    free(all);

    struct {
        uint64_t off;
        int64_t len;
        size_t expect_len;
    } ranges[] = {
        {0, 10, 10},     {12345, 70000, 70000}, {n - 5, -1, 5},
        {n - 5, 100, 5}, {n, -1, 0},            {n + 100, 10, 0},
        {500, 0, 0},     {131071, 131074, 131074},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        unsigned char *p = sc_read_range(s, key, ranges[i].off, ranges[i].len, &got);
        assert_int_equal(got, ranges[i].expect_len);
        if (got)
            assert_memory_equal(p, want + ranges[i].off, got);
        free(p);
    }

    /* Reader reports the whole object's size whatever the range. */
    struct stor_reader *r;
    assert_int_equal(stor_reader_open(s, key, 7, 3, &r, &e), 0);
    assert_int_equal(stor_reader_size(r), n);
    stor_reader_close(r);

    /* An empty object and a big single write (bypassing any writer buffer). */
    sc_write_obj(s, "empty", 0, 0);
    assert_int_equal(stor_stat(s, "empty", &size, NULL, &e), 0);
    assert_int_equal(size, 0);
    all = sc_read_range(s, "empty", 0, -1, &got);
    assert_int_equal(got, 0);
    free(all);
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "big", 64 << 20, &w, &e), 0);
    assert_string_equal(stor_writer_key(w), "big");
    assert_int_equal(stor_writer_write(w, want, 10, &e), 0);
    assert_int_equal(stor_writer_write(w, want + 10, n - 10, &e), 0);
    assert_int_equal(stor_writer_commit(w, &e), 0);
    all = sc_read_range(s, "big", 0, -1, &got);
    assert_int_equal(got, n);
    assert_memory_equal(all, want, n);
    free(all);

    /* Commit replaces an existing object. */
    sc_write_obj(s, "big", 77, 9);
    assert_int_equal(stor_stat(s, "big", &size, NULL, &e), 0);
    assert_int_equal(size, 77);
    free(want);
    sc_assert_no_leftovers(fx);
}

/* An object of several parts (big_size bytes in big_part parts), read back whole and across
 * part boundaries. */
static SC_UNUSED void stor_contract_large_object(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    size_t n = fx->be->big_size ? fx->be->big_size : (11u << 20) + 7;
    size_t part = fx->be->big_part ? fx->be->big_part : 5u << 20;
    const char *key = "r/backup/1/data/test/0_test_big.asb";
    sc_write_obj_part(s, key, n, 5, part);
    unsigned char *want = malloc(n);
    sc_pattern(want, n, 5);
    struct err e = {0};
    uint64_t size;
    assert_int_equal(stor_stat(s, key, &size, NULL, &e), 0);
    assert_int_equal(size, n);
    size_t got;
    unsigned char *all = sc_read_range(s, key, 0, -1, &got);
    assert_int_equal(got, n);
    assert_memory_equal(all, want, n);
    free(all);
    /* A range across the first part boundary, and the tail. */
    if (n > part + 1000) {
        unsigned char *p = sc_read_range(s, key, part - 1000, 2000, &got);
        assert_int_equal(got, 2000);
        assert_memory_equal(p, want + part - 1000, 2000);
        free(p);
    }
    unsigned char *p = sc_read_range(s, key, n - 3, -1, &got);
    assert_int_equal(got, 3);
    assert_memory_equal(p, want + n - 3, 3);
    free(p);
    sc_assert_list(s, "", false, key);
    free(want);
    sc_assert_no_leftovers(fx);
}

static SC_UNUSED void stor_contract_abort_leaves_nothing(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    struct err e = {0};
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "r/backup/1/data/ns/0_ns_1.asb", 0, &w, &e), 0);
    static unsigned char buf[300000];
    sc_pattern(buf, sizeof buf, 3);
    assert_int_equal(stor_writer_write(w, buf, sizeof buf, &e), 0);
    stor_writer_abort(w);
    stor_writer_abort(NULL);

    assert_int_equal(stor_stat(s, "r/backup/1/data/ns/0_ns_1.asb", NULL, NULL, &e),
                     ERR_NOT_FOUND);
    sc_assert_list(s, "", false, "");
    sc_assert_list(s, "", true, "");
    sc_assert_no_leftovers(fx);

    /* Aborting after several parts went up (multipart on cloud backends). */
    size_t part = fx->be->big_part ? fx->be->big_part : 5u << 20;
    assert_int_equal(stor_writer_open(s, "r/backup/1/data/ns/1_ns_2.asb", part, &w, &e), 0);
    unsigned char *big = malloc(part);
    sc_pattern(big, part, 4);
    for (int i = 0; i < 2; i++)
        assert_int_equal(stor_writer_write(w, big, part, &e), 0);
    assert_int_equal(stor_writer_write(w, big, 100, &e), 0);
    stor_writer_abort(w);
    free(big);
    assert_int_equal(stor_stat(s, "r/backup/1/data/ns/1_ns_2.asb", NULL, NULL, &e),
                     ERR_NOT_FOUND);
    sc_assert_list(s, "", false, "");
    sc_assert_no_leftovers(fx);

    /* Aborting an untouched writer next to a committed object keeps the object. */
    sc_put_str(s, "a/keep", "x");
    assert_int_equal(stor_writer_open(s, "a/gone", 0, &w, &e), 0);
    stor_writer_abort(w);
    sc_assert_list(s, "", false, "a/keep");
    sc_assert_no_leftovers(fx);
}

static SC_UNUSED void stor_contract_uncommitted_invisible(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    struct err e = {0};
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "r/backup/1/data/ns/metadata.yaml", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, "created: x\n", 11, &e), 0);

    sc_assert_list(s, "", false, "");
    sc_assert_list(s, "", true, "");
    sc_assert_list(s, "r/backup/", true, "");
    assert_int_equal(stor_stat(s, "r/backup/1/data/ns/metadata.yaml", NULL, NULL, &e),
                     ERR_NOT_FOUND);
    struct stor_reader *r;
    assert_int_equal(stor_reader_open(s, "r/backup/1/data/ns/metadata.yaml", 0, -1, &r, &e),
                     ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "metadata.yaml"));

    assert_int_equal(stor_writer_commit(w, &e), 0);
    sc_assert_list(s, "", false, "r/backup/1/data/ns/metadata.yaml");
    sc_assert_list(s, "r/backup/", true, "r/backup/1/");
    char *data;
    size_t len;
    assert_int_equal(stor_get(s, "r/backup/1/data/ns/metadata.yaml", 100, &data, &len, &e), 0);
    assert_string_equal(data, "created: x\n");
    free(data);
    sc_assert_no_leftovers(fx);
}

/* ---- contract: listing -------------------------------------------------------------------- */

static SC_UNUSED void stor_contract_list(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    sc_make_layout(s);
    /* Recursive: bytewise key order ("r/a-b" before "r/backup/...", "r/..." before "r2/"). */
    sc_assert_list(s, "", false,
                   "r/a-b,"
                   "r/backup/1704110400000/data/bar/metadata.yaml,"
                   "r/backup/1704110400000/data/test/0_test_1.asb,"
                   "r/backup/1704110400000/data/test/1_test_2.asb,"
                   "r/backup/1704110400000/data/test/metadata.yaml,"
                   "r/backup/1704196800000_2024-01-02T12-00-00/data/test/metadata.yaml,"
                   "r/incremental/1704114000000/data/test/metadata.yaml,"
                   "r2/backup/1/data/x/metadata.yaml,"
                   "top");
    sc_assert_list(s, NULL, true, "r/,r2/,top");
    sc_assert_list(s, "r/", true, "r/a-b,r/backup/,r/incremental/");
    sc_assert_list(s, "r/backup/", true,
                   "r/backup/1704110400000/,r/backup/1704196800000_2024-01-02T12-00-00/");
    sc_assert_list(s, "r/backup/1704110400000/data/", true,
                   "r/backup/1704110400000/data/bar/,r/backup/1704110400000/data/test/");
    sc_assert_list(s, "r/backup/1704110400000/data/test/", true,
                   "r/backup/1704110400000/data/test/0_test_1.asb,"
                   "r/backup/1704110400000/data/test/1_test_2.asb,"
                   "r/backup/1704110400000/data/test/metadata.yaml");
    /* String prefixes, as S3: a partial last segment. */
    sc_assert_list(s, "r", true, "r/,r2/");
    sc_assert_list(s, "r/backup/170411", true, "r/backup/1704110400000/");
    sc_assert_list(s, "r/backup/17041", true,
                   "r/backup/1704110400000/,r/backup/1704196800000_2024-01-02T12-00-00/");
    sc_assert_list(s, "r/backup/1704196", false,
                   "r/backup/1704196800000_2024-01-02T12-00-00/data/test/metadata.yaml");
    sc_assert_list(s, "r/backup/1704110400000/data/test/m", false,
                   "r/backup/1704110400000/data/test/metadata.yaml");
    sc_assert_list(s, "nothing/", false, "");
    sc_assert_list(s, "top/", false, "");
    sc_assert_list(s, "to", false, "top");

    /* start-after (S3 StartAfter), with and without delimiter. */
    char *got = sc_list_str(s, "r/backup/", true, 0, "r/backup/1704110400000", NULL);
    assert_string_equal(got,
                        "r/backup/1704110400000/,r/backup/1704196800000_2024-01-02T12-00-00/");
    free(got);
    got = sc_list_str(s, "r/backup/", true, 0, "r/backup/1704110400000/", NULL);
    assert_string_equal(got, "r/backup/1704196800000_2024-01-02T12-00-00/");
    free(got);
    got = sc_list_str(s, "r/backup/", true, 0, "r/backup/1704110400000/data/test/0", NULL);
    assert_string_equal(got,
                        "r/backup/1704110400000/,r/backup/1704196800000_2024-01-02T12-00-00/");
    free(got);
    got = sc_list_str(s, "r/backup/", true, 0, "r/backup/1704110400000/data/test/metadata.yaml",
                      NULL);
    assert_string_equal(got, "r/backup/1704196800000_2024-01-02T12-00-00/");
    free(got);
    got = sc_list_str(s, "", false, 0, "r/incremental/", NULL);
    assert_string_equal(got, "r/incremental/1704114000000/data/test/metadata.yaml,"
                             "r2/backup/1/data/x/metadata.yaml,top");
    free(got);
    got = sc_list_str(s, "", false, 1, "r2/backup/1/data/x/metadata.yaml", NULL);
    assert_string_equal(got, "top");
    free(got);

    /* Pagination: pages of 2 over 9 keys = 5 pages, the same keys. */
    int pages;
    got = sc_list_str(s, "", false, 2, NULL, &pages);
    assert_int_equal(pages, 5);
    free(got);
    got = sc_list_str(s, "", false, 3, NULL, &pages);
    assert_int_equal(pages, 3); /* exactly full last page: no empty extra page */
    free(got);

    /* Entries carry size / mtime for objects. */
    struct stor_list_opts o = {.prefix = "r/backup/1704110400000/data/test/1"};
    struct stor_page p;
    struct err e = {0};
    assert_int_equal(stor_list_page(s, &o, NULL, &p, &e), 0);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.entries[0].key, "r/backup/1704110400000/data/test/1_test_2.asb");
    assert_int_equal(p.entries[0].size, 2);
    assert_false(p.entries[0].is_prefix);
    assert_true(p.entries[0].mtime_ms > 1700000000000LL);
    assert_null(p.next_token);
    stor_page_free(&p);
}

static SC_UNUSED void stor_contract_list_callback(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    sc_make_layout(s);
    struct err e = {0};
    struct stor_list_opts o = {.page_size = 2};
    struct sc_count_ctx c = {0, 0};
    assert_int_equal(stor_list(s, &o, sc_count_cb, &c, &e), 0);
    assert_int_equal(c.seen, 9);
    c = (struct sc_count_ctx){0, 5};
    assert_int_equal(stor_list(s, &o, sc_count_cb, &c, &e), 0);
    assert_int_equal(c.seen, 5);
    assert_int_equal(stor_list(s, &o, sc_fail_cb, NULL, &e), ERR_INTERNAL);
    assert_string_equal(e.msg, "stop at r/a-b");
    c = (struct sc_count_ctx){0, 0};
    assert_int_equal(stor_list(s, NULL, sc_count_cb, &c, &e), 0);
    assert_int_equal(c.seen, 9);
}

/* Keys needing URL/XML escaping survive a round trip through listing and reads. */
static SC_UNUSED void stor_contract_odd_keys(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    const char *keys[] = {"o/a&b<c>\"d'", "o/plus+sign", "o/sp ace", "o/pct%20x",
                          "o/q?x=1#f", "o/\xc3\xa9t\xc3\xa9", "o/x=y;z,w"};
    size_t nk = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < nk; i++)
        sc_put_str(s, keys[i], keys[i]);
    struct err e = {0};
    for (size_t i = 0; i < nk; i++) {
        char *data;
        size_t len;
        if (stor_get(s, keys[i], 100, &data, &len, &e) != 0)
            fail_msg("get %s: %s", keys[i], e.msg);
        assert_string_equal(data, keys[i]);
        free(data);
        assert_int_equal(stor_stat(s, keys[i], NULL, NULL, &e), 0);
    }
    /* Sorted bytewise, UTF-8 last. */
    sc_assert_list(s, "o/", false,
                   "o/a&b<c>\"d',o/pct%20x,o/plus+sign,o/q?x=1#f,o/sp ace,o/x=y;z,w,"
                   "o/\xc3\xa9t\xc3\xa9");
    char *got = sc_list_str(s, "o/p", false, 1, "o/pct%20x", NULL);
    assert_string_equal(got, "o/plus+sign");
    free(got);
    for (size_t i = 0; i < nk; i++)
        assert_int_equal(stor_delete(s, keys[i], &e), 0);
    sc_assert_list(s, "", false, "");
}

/* ---- contract: delete --------------------------------------------------------------------- */

static SC_UNUSED void stor_contract_delete(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    sc_make_layout(s);
    struct err e = {0};

    assert_int_equal(stor_delete(s, "r/incremental/1704114000000/data/test/metadata.yaml", &e),
                     0);
    assert_int_equal(stor_stat(s, "r/incremental/1704114000000/data/test/metadata.yaml", NULL,
                               NULL, &e), ERR_NOT_FOUND);
    sc_assert_list(s, "r/", true, "r/a-b,r/backup/");
    /* Missing keys and "directories" are not errors. */
    assert_int_equal(stor_delete(s, "r/incremental/1704114000000/data/test/metadata.yaml", &e),
                     0);
    assert_int_equal(stor_delete(s, "r/backup", &e), 0);
    assert_int_equal(stor_stat(s, "r/backup/1704110400000/data/test/metadata.yaml", NULL, NULL,
                               &e), 0);

    /* Delete a whole backup folder. */
    assert_int_equal(stor_delete_prefix(s, "r/backup/1704110400000/", &e), 0);
    sc_assert_list(s, "r/", false,
                   "r/a-b,r/backup/1704196800000_2024-01-02T12-00-00/data/test/metadata.yaml");
    /* Again: nothing there is fine. */
    assert_int_equal(stor_delete_prefix(s, "r/backup/1704110400000/", &e), 0);
    assert_int_equal(stor_delete_prefix(s, "top/", &e), 0); /* an object, not a folder */
    assert_int_equal(stor_stat(s, "top", NULL, NULL, &e), 0);

    assert_int_equal(stor_delete_prefix(s, "r2/backup/", &e), 0);
    sc_assert_list(s, "", true, "r/,top");

    /* Prefixes must name a folder. */
    assert_int_equal(stor_delete_prefix(s, "", &e), ERR_INVALID);
    assert_int_equal(stor_delete_prefix(s, NULL, &e), ERR_INVALID);
    assert_int_equal(stor_delete_prefix(s, "r/backup", &e), ERR_INVALID);
    assert_int_equal(stor_delete_prefix(s, "/r/", &e), ERR_INVALID);
    assert_int_equal(stor_delete_prefix(s, "../", &e), ERR_INVALID);
    assert_int_equal(stor_delete_prefix(s, "r//", &e), ERR_INVALID);
    sc_assert_list(s, "", false,
                   "r/a-b,r/backup/1704196800000_2024-01-02T12-00-00/data/test/metadata.yaml,top");
    assert_int_equal(stor_delete(s, "top", &e), 0);
    assert_int_equal(stor_delete(s, "r/a-b", &e), 0);
    assert_int_equal(stor_delete_prefix(s, "r/", &e), 0);
    sc_assert_list(s, "", false, "");
    sc_assert_no_leftovers(fx);
}

/* More objects than one page of a batch delete / listing. */
static SC_UNUSED void stor_contract_delete_many(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    char key[64];
    for (int i = 0; i < 1010; i++) {
        snprintf(key, sizeof key, "m/backup/1/data/ns/%04d.asb", i);
        sc_put_str(s, key, "x");
    }
    sc_put_str(s, "m/backup/2/keep", "k");
    struct err e = {0};
    struct sc_count_ctx c = {0, 0};
    struct stor_list_opts o = {.prefix = "m/backup/1/"};
    assert_int_equal(stor_list(s, &o, sc_count_cb, &c, &e), 0);
    assert_int_equal(c.seen, 1010);
    assert_int_equal(stor_delete_prefix(s, "m/backup/1/", &e), 0);
    sc_assert_list(s, "", false, "m/backup/2/keep");
}

/* ---- contract: put / get / stat ----------------------------------------------------------- */

struct sc_flip_ctx {
    struct stor *s;
    volatile int stop;
    int reads, bad;
    char bad_msg[600];
};

static const char *const SC_FLIP_A = "created: 2024-01-01T00:00:00Z\nnamespace: test\n";
static char sc_flip_b[20000];

static SC_UNUSED void *sc_flip_reader(void *arg)
{
    struct sc_flip_ctx *c = arg;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        char *data;
        size_t len;
        struct err e = {0};
        int rc = stor_get(c->s, "r/backup/1/data/test/metadata.yaml", 1 << 20, &data, &len, &e);
        if (rc != 0) {
            c->bad++;
            snprintf(c->bad_msg, sizeof c->bad_msg, "get: %s", e.msg);
            continue;
        }
        if (!(len == strlen(SC_FLIP_A) && !memcmp(data, SC_FLIP_A, len)) &&
            !(len == strlen(sc_flip_b) && !memcmp(data, sc_flip_b, len))) {
            c->bad++;
            snprintf(c->bad_msg, sizeof c->bad_msg, "torn read of %zu bytes", len);
        }
        free(data);
        c->reads++;
    }
    return NULL;
}

static SC_UNUSED void stor_contract_put_get(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    struct err e = {0};
    char *data;
    size_t len;

    assert_int_equal(stor_get(s, "r/backup/1/data/test/metadata.yaml", 100, &data, &len, &e),
                     ERR_NOT_FOUND);
    assert_null(data);
    assert_non_null(strstr(e.msg, "r/backup/1/data/test/metadata.yaml"));

    sc_put_str(s, "r/backup/1/data/test/metadata.yaml", SC_FLIP_A);
    assert_int_equal(stor_get(s, "r/backup/1/data/test/metadata.yaml", 100, &data, &len, &e),
                     0);
    assert_int_equal(len, strlen(SC_FLIP_A));
    assert_string_equal(data, SC_FLIP_A); /* NUL-terminated */
    free(data);
    assert_int_equal(stor_get(s, "r/backup/1/data/test/metadata.yaml", 10, &data, &len, &e),
                     ERR_INVALID);
    assert_null(data);
    assert_int_equal(stor_get(s, "r/backup/1/data/test/metadata.yaml", strlen(SC_FLIP_A), &data,
                              NULL, &e), 0);
    free(data);

    /* Empty object. */
    assert_int_equal(stor_put(s, "zero", "", 0, &e), 0);
    assert_int_equal(stor_get(s, "zero", 10, &data, &len, &e), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);

    /* Replacing under a concurrent reader: every read sees one whole version. */
    memset(sc_flip_b, 'b', sizeof sc_flip_b - 1);
    if (fx->be->no_atomic_replace) {
        sc_put_str(s, "r/backup/1/data/test/metadata.yaml", sc_flip_b);
        assert_int_equal(stor_get(s, "r/backup/1/data/test/metadata.yaml", 1 << 20, &data, &len,
                                  &e), 0);
        assert_int_equal(len, strlen(sc_flip_b));
        free(data);
        sc_assert_list(s, "r/", false, "r/backup/1/data/test/metadata.yaml");
        return;
    }
    struct sc_flip_ctx c = {.s = s};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sc_flip_reader, &c), 0);
    for (int i = 0; i < 100; i++)
        sc_put_str(s, "r/backup/1/data/test/metadata.yaml", i % 2 ? SC_FLIP_A : sc_flip_b);
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    if (c.bad)
        fail_msg("%d bad reads of %d: %s", c.bad, c.reads, c.bad_msg);
    assert_true(c.reads > 0);
    sc_assert_list(s, "r/", false, "r/backup/1/data/test/metadata.yaml");
    sc_assert_no_leftovers(fx);
}

static SC_UNUSED void stor_contract_stat(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    struct err e = {0};
    sc_put_str(s, "d/obj", "12345");
    uint64_t size = 99;
    int64_t mtime = 0;
    assert_int_equal(stor_stat(s, "d/obj", &size, &mtime, &e), 0);
    assert_int_equal(size, 5);
    assert_true(mtime > 1700000000000LL);
    assert_int_equal(stor_stat(s, "d/obj", NULL, NULL, &e), 0);
    assert_int_equal(stor_stat(s, "d/missing", &size, &mtime, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "d/missing"));
    assert_int_equal(stor_stat(s, "d", &size, &mtime, &e), ERR_NOT_FOUND); /* a folder */
    assert_int_equal(stor_stat(s, "d/obj/below", &size, &mtime, &e), ERR_NOT_FOUND);
    struct stor_reader *r;
    assert_int_equal(stor_reader_open(s, "d", 0, -1, &r, &e), ERR_NOT_FOUND);
    assert_int_equal(stor_reader_open(s, "d/missing", 0, -1, &r, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "d/missing"));
    assert_int_equal(stor_reader_open(s, "d/obj", 0, -2, &r, &e), ERR_INVALID);
}

static SC_UNUSED void stor_contract_bad_keys(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    char longkey[STOR_KEY_MAX + 2];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    const char *bad[] = {"",     "/abs", "a//b", "a/../b", "..",   "../x",     ".",  "./a",
                         "a/.",  "a/",   "/",    ".hid",   "a/.tmp-x", "a\nb", "a\tb",
                         longkey};
    struct err e;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *k = bad[i];
        struct stor_writer *w = (void *)1;
        struct stor_reader *r = (void *)1;
        char *data = (void *)1;
        err_clear(&e);
        assert_int_equal(stor_writer_open(s, k, 0, &w, &e), ERR_INVALID);
        assert_null(w);
        assert_true(e.msg[0] != '\0');
        assert_int_equal(stor_reader_open(s, k, 0, -1, &r, &e), ERR_INVALID);
        assert_null(r);
        assert_int_equal(stor_stat(s, k, NULL, NULL, &e), ERR_INVALID);
        assert_int_equal(stor_put(s, k, "x", 1, &e), ERR_INVALID);
        assert_int_equal(stor_get(s, k, 10, &data, NULL, &e), ERR_INVALID);
        assert_int_equal(stor_delete(s, k, &e), ERR_INVALID);
        assert_int_equal(stor_key_valid(k, &e), ERR_INVALID);
    }
    assert_int_equal(stor_key_valid(NULL, &e), ERR_INVALID);
    assert_int_equal(stor_writer_open(s, "a/../b", 0, &(struct stor_writer *){NULL}, &e),
                     ERR_INVALID);
    assert_non_null(strstr(e.msg, "a/../b"));
    sc_assert_list(s, "", false, "");
    sc_assert_no_leftovers(fx);

    const char *good[] = {"k", "a/b.c", "r/backup/1/data/ns.2/metadata.yaml", "a..b", "a/b..",
                          "x y/z"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(stor_key_valid(good[i], &e), 0);
        sc_put_str(s, good[i], good[i]);
    }
    sc_assert_list(s, "", false, "a..b,a/b..,a/b.c,k,r/backup/1/data/ns.2/metadata.yaml,x y/z");

    const char *bad_prefixes[] = {"/", "/a", "../", "a//", "a/../", "./", ".x", "a/.t", "a\n"};
    for (size_t i = 0; i < sizeof bad_prefixes / sizeof bad_prefixes[0]; i++) {
        struct stor_list_opts o = {.prefix = bad_prefixes[i]};
        struct stor_page p;
        assert_int_equal(stor_list_page(s, &o, NULL, &p, &e), ERR_INVALID);
        assert_int_equal(p.n, 0);
        stor_page_free(&p);
        assert_int_equal(stor_prefix_valid(bad_prefixes[i], &e), ERR_INVALID);
    }
    assert_int_equal(stor_prefix_valid("a/b", &e), 0);
    assert_int_equal(stor_prefix_valid("", &e), 0);
    assert_int_equal(stor_prefix_valid(NULL, &e), 0);
}

static SC_UNUSED void stor_contract_io_adapters(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    struct err e = {0};
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "z/0_test_1.asb", 0, &w, &e), 0);
    struct io_writer *sink = io_cb_writer_new(stor_io_write, NULL, w, &e);
    assert_non_null(sink);
    struct io_chain_opts co = {.zstd = true, .zstd_level = 3};
    struct io_writer *top = io_writer_chain(sink, &co, &e);
    assert_non_null(top);
    char line[64];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(line, sizeof line, "- I value %d\n", i);
        assert_int_equal(io_write(top, line, (size_t)n, &e), 0);
    }
    assert_int_equal(io_writer_close(top, &e), 0);
    io_writer_free(top);
    assert_true(stor_writer_bytes(w) > 0);
    assert_int_equal(stor_writer_commit(w, &e), 0);

    struct stor_reader *r;
    assert_int_equal(stor_reader_open(s, "z/0_test_1.asb", 0, -1, &r, &e), 0);
    struct io_reader *src = io_cb_reader_new(stor_io_read, r, &e);
    struct io_reader *rtop = io_reader_chain(src, &co, &e);
    assert_non_null(rtop);
    static char out[200000];
    size_t got;
    assert_int_equal(io_read_full(rtop, out, sizeof out, &got, &e), 0);
    io_reader_free(rtop);
    stor_reader_close(r);
    int pos = 0;
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(line, sizeof line, "- I value %d\n", i);
        assert_memory_equal(out + pos, line, (size_t)n);
        pos += n;
    }
    assert_int_equal(got, (size_t)pos);
}

/* ---- contract: concurrency ---------------------------------------------------------------- */

struct sc_thr {
    struct stor *s;
    int id, rounds;
    bool private_churn;
    int errors;
    char msg[600];
};

static SC_UNUSED void *sc_writer_thread(void *arg)
{
    struct sc_thr *t = arg;
    struct err e = {0};
    char key[128];
    unsigned char buf[5000];
    for (int j = 0; j < t->rounds; j++) {
        snprintf(key, sizeof key, "c/shared/t%d_%03d", t->id, j);
        struct stor_writer *w = NULL;
        size_t n = (size_t)(j * 37 % 5000);
        sc_pattern(buf, n, (unsigned)(t->id * 1000 + j));
        if (stor_writer_open(t->s, key, 0, &w, &e))
            goto fail;
        if (stor_writer_write(w, buf, n, &e)) {
            stor_writer_abort(w);
            goto fail;
        }
        if (stor_writer_commit(w, &e))
            goto fail;
        /* Churn in one folder all threads share (or one per thread, in a folder that always
         * holds objects): create, abort, delete. */
        char folder[64];
        if (t->private_churn)
            snprintf(folder, sizeof folder, "c/shared/churn-t%d/x", t->id);
        else
            snprintf(folder, sizeof folder, "c/churn/x");
        snprintf(key, sizeof key, "%s/t%d", folder, t->id);
        if (stor_put(t->s, key, "x", 1, &e))
            goto fail;
        snprintf(key, sizeof key, "%s/a%d", folder, t->id);
        if (stor_writer_open(t->s, key, 0, &w, &e))
            goto fail;
        stor_writer_abort(w);
        snprintf(key, sizeof key, "%s/t%d", folder, t->id);
        if (stor_delete(t->s, key, &e))
            goto fail;
        struct stor_page p;
        struct stor_list_opts o = {.prefix = "c/", .page_size = 7};
        int rc = stor_list_page(t->s, &o, NULL, &p, &e);
        stor_page_free(&p);
        if (rc)
            goto fail;
        continue;
    fail:
        t->errors++;
        snprintf(t->msg, sizeof t->msg, "%s", e.msg);
    }
    return NULL;
}

static SC_UNUSED void stor_contract_concurrent_writers(void **state)
{
    struct stor_contract_fx *fx = *state;
    int nth = fx->be->threads > 0 ? fx->be->threads : 4;
    int rounds = fx->be->per_thread > 0 ? fx->be->per_thread : 60;
    if (nth > 16)
        nth = 16;
    pthread_t th[16];
    struct sc_thr t[16];
    for (int i = 0; i < nth; i++) {
        t[i] = (struct sc_thr){.s = fx->s, .id = i, .rounds = rounds,
                               .private_churn = fx->be->private_churn};
        assert_int_equal(pthread_create(&th[i], NULL, sc_writer_thread, &t[i]), 0);
    }
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < nth; i++)
        if (t[i].errors)
            fail_msg("thread %d: %d errors, last: %s", i, t[i].errors, t[i].msg);

    struct sc_count_ctx c = {0, 0};
    struct err e = {0};
    struct stor_list_opts o = {.prefix = "c/", .page_size = 50};
    assert_int_equal(stor_list(fx->s, &o, sc_count_cb, &c, &e), 0);
    assert_int_equal(c.seen, nth * rounds);
    unsigned char want[5000];
    for (int i = 0; i < nth; i++)
        for (int j = 0; j < rounds; j++) {
            char key[64];
            snprintf(key, sizeof key, "c/shared/t%d_%03d", i, j);
            size_t n = (size_t)(j * 37 % 5000), got;
            sc_pattern(want, n, (unsigned)(i * 1000 + j));
            unsigned char *p = sc_read_range(fx->s, key, 0, -1, &got);
            assert_int_equal(got, n);
            if (n)
                assert_memory_equal(p, want, n);
            free(p);
        }
    sc_assert_list(fx->s, "c/churn/", false, "");
    sc_assert_list(fx->s, "c/shared/churn-", false, "");
    sc_assert_no_leftovers(fx);
}

/* ---- the suite ---------------------------------------------------------------------------- */

#define STOR_CONTRACT_TEST(fn, be)                                                           \
    cmocka_unit_test_prestate_setup_teardown(fn, stor_contract_setup, stor_contract_teardown, \
                                             (void *)(be))

/* Every contract test, for a CMUnitTest array initialiser. */
#define STOR_CONTRACT_TESTS(be)                                                              \
    STOR_CONTRACT_TEST(stor_contract_write_commit_read, be),                                 \
        STOR_CONTRACT_TEST(stor_contract_large_object, be),                                  \
        STOR_CONTRACT_TEST(stor_contract_abort_leaves_nothing, be),                          \
        STOR_CONTRACT_TEST(stor_contract_uncommitted_invisible, be),                         \
        STOR_CONTRACT_TEST(stor_contract_list, be),                                          \
        STOR_CONTRACT_TEST(stor_contract_list_callback, be),                                 \
        STOR_CONTRACT_TEST(stor_contract_odd_keys, be),                                      \
        STOR_CONTRACT_TEST(stor_contract_delete, be),                                        \
        STOR_CONTRACT_TEST(stor_contract_delete_many, be),                                   \
        STOR_CONTRACT_TEST(stor_contract_put_get, be),                                       \
        STOR_CONTRACT_TEST(stor_contract_stat, be),                                          \
        STOR_CONTRACT_TEST(stor_contract_bad_keys, be),                                      \
        STOR_CONTRACT_TEST(stor_contract_io_adapters, be),                                   \
        STOR_CONTRACT_TEST(stor_contract_concurrent_writers, be)

#endif
