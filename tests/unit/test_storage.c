/*
 * test_storage.c - the storage interface (src/storage) over the local backend: streamed writes
 * visible only at commit and read back whole and by ranges, abort and failed commits leaving
 * nothing, listings (recursive and with delimiter, string prefixes, start-after, pagination
 * with small pages, S3 key order, hidden temp files and empty directories never listed),
 * delete of keys and prefixes with directory pruning, atomic put/get under a concurrent
 * reader, stat, file and directory modes, rejected keys and prefixes, storages that cannot be
 * created, cloud kinds refused, io-chain adapters, and concurrent writers from 4 threads.
 *
 * The contract tests at the top take any opened `struct stor`; the cloud backends can run the
 * same ones against their emulators.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/io.h"
#include "storage/storage.h"

/* ---- fixture ------------------------------------------------------------------------------ */

struct fx {
    char dir[64];   /* temp dir owned by the test */
    char root[128]; /* storage root inside it */
    struct stor *s;
};

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static int open_local(const char *path, struct stor **s, struct err *e)
{
    struct cfg_local_storage l = {.path = (char *)path};
    struct cfg_storage c = {.local = &l};
    return stor_open(&c, s, e);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/abs_stor_test.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->root, sizeof f->root, "%s/root", f->dir);
    struct err e = {0};
    if (open_local(f->root, &f->s, &e) != 0) {
        fprintf(stderr, "open: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    stor_close(f->s);
    rm_rf(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 31 + seed * 7 + (i >> 8)) & 0xff);
}

static void put_str(struct stor *s, const char *key, const char *text)
{
    struct err e = {0};
    int rc = stor_put(s, key, text, strlen(text), &e);
    if (rc)
        fail_msg("put %s: %s", key, e.msg);
}

/* Writes `n` pattern bytes through a streamed writer in uneven chunks and commits. */
static void write_obj(struct stor *s, const char *key, size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    pattern(p, n, seed);
    struct err e = {0};
    struct stor_writer *w;
    if (stor_writer_open(s, key, 0, &w, &e) != 0)
        fail_msg("writer_open %s: %s", key, e.msg);
    size_t off = 0, step = 1;
    while (off < n) {
        size_t c = step < n - off ? step : n - off;
        assert_int_equal(stor_writer_write(w, p + off, c, &e), 0);
        off += c;
        step = step * 3 + 7;
    }
    assert_int_equal(stor_writer_bytes(w), n);
    if (stor_writer_commit(w, &e) != 0)
        fail_msg("commit %s: %s", key, e.msg);
    free(p);
}

/* Reads the range into a heap buffer. */
static unsigned char *read_range(struct stor *s, const char *key, uint64_t off, int64_t len,
                                 size_t *out_n)
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
        assert_int_equal(stor_reader_read(r, buf + n, cap - n < 1000 ? cap - n : 1000, &got,
                                          &e), 0);
        if (got == 0)
            break;
        n += got;
    }
    stor_reader_close(r);
    *out_n = n;
    return buf;
}

/* Whole listing joined as "k1,k2,..." (prefix entries keep their '/'); pages of page_size. */
static char *list_str(struct stor *s, const char *prefix, bool delim, size_t page_size,
                      const char *start_after, int *pages)
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
            fail_msg("list %s: %s", prefix, e.msg);
        np++;
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

static void assert_list(struct stor *s, const char *prefix, bool delim, const char *expect)
{
    char *got = list_str(s, prefix, delim, 0, NULL, NULL);
    assert_string_equal(got, expect);
    free(got);
    /* The same through one-entry and two-entry pages. */
    for (size_t ps = 1; ps <= 2; ps++) {
        int pages;
        got = list_str(s, prefix, delim, ps, NULL, &pages);
        assert_string_equal(got, expect);
        free(got);
    }
}

/* Number of directory entries (hidden ones included) in a directory tree, dirs counted. */
static int count_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char child[1024];
        snprintf(child, sizeof child, "%s/%s", path, de->d_name);
        n++;
        if (de->d_type == DT_DIR)
            n += count_tree(child);
    }
    closedir(d);
    return n;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

/* ---- contract: writes, reads, ranges ------------------------------------------------------ */

static void test_write_commit_read(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    const size_t n = 1000003; /* several writer buffers, odd size */
    write_obj(s, "r/backup/1704110400000/data/test/0_test_1.asb", n, 1);
    unsigned char *want = malloc(n);
    pattern(want, n, 1);

    uint64_t size;
    int64_t mtime;
    struct err e = {0};
    assert_int_equal(stor_stat(s, "r/backup/1704110400000/data/test/0_test_1.asb", &size,
                               &mtime, &e), 0);
    assert_int_equal(size, n);
    int64_t now = (int64_t)time(NULL) * 1000;
    assert_true(mtime > now - 60000 && mtime < now + 60000);

    size_t got;
    unsigned char *all = read_range(s, "r/backup/1704110400000/data/test/0_test_1.asb", 0, -1,
                                    &got);
    assert_int_equal(got, n);
    assert_memory_equal(all, want, n);
    free(all);

    struct {
        uint64_t off;
        int64_t len;
        size_t expect_len;
    } ranges[] = {
        {0, 10, 10},           {12345, 70000, 70000}, {n - 5, -1, 5},
        {n - 5, 100, 5},       {n, -1, 0},            {n + 100, 10, 0},
        {500, 0, 0},           {131071, 131074, 131074},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        unsigned char *p = read_range(s, "r/backup/1704110400000/data/test/0_test_1.asb",
                                      ranges[i].off, ranges[i].len, &got);
        assert_int_equal(got, ranges[i].expect_len);
        if (got)
            assert_memory_equal(p, want + ranges[i].off, got);
        free(p);
    }

    /* Reader reports the whole object's size whatever the range. */
    struct stor_reader *r;
    assert_int_equal(stor_reader_open(s, "r/backup/1704110400000/data/test/0_test_1.asb", 7, 3,
                                      &r, &e), 0);
    assert_int_equal(stor_reader_size(r), n);
    stor_reader_close(r);

    /* An empty object and a big single write (bypassing the writer buffer). */
    write_obj(s, "empty", 0, 0);
    assert_int_equal(stor_stat(s, "empty", &size, NULL, &e), 0);
    assert_int_equal(size, 0);
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "big", 64 << 20, &w, &e), 0);
    assert_string_equal(stor_writer_key(w), "big");
    assert_int_equal(stor_writer_write(w, want, 10, &e), 0);
    assert_int_equal(stor_writer_write(w, want + 10, n - 10, &e), 0);
    assert_int_equal(stor_writer_commit(w, &e), 0);
    all = read_range(s, "big", 0, -1, &got);
    assert_int_equal(got, n);
    assert_memory_equal(all, want, n);
    free(all);

    /* Commit replaces an existing object. */
    write_obj(s, "big", 77, 9);
    assert_int_equal(stor_stat(s, "big", &size, NULL, &e), 0);
    assert_int_equal(size, 77);
    free(want);
}

static void test_abort_leaves_nothing(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    struct err e = {0};
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "r/backup/1/data/ns/0_ns_1.asb", 0, &w, &e), 0);
    unsigned char buf[300000];
    pattern(buf, sizeof buf, 3);
    assert_int_equal(stor_writer_write(w, buf, sizeof buf, &e), 0);
    stor_writer_abort(w);
    stor_writer_abort(NULL);

    assert_int_equal(stor_stat(s, "r/backup/1/data/ns/0_ns_1.asb", NULL, NULL, &e),
                     ERR_NOT_FOUND);
    assert_list(s, "", false, "");
    assert_list(s, "", true, "");
    /* Not even the directories made for it, nor the temp file. */
    assert_int_equal(count_tree(f->root), 0);

    /* Aborting an untouched writer next to a committed object keeps the object. */
    put_str(s, "a/keep", "x");
    assert_int_equal(stor_writer_open(s, "a/gone", 0, &w, &e), 0);
    stor_writer_abort(w);
    assert_list(s, "", false, "a/keep");
    assert_int_equal(count_tree(f->root), 2);
}

static void test_uncommitted_invisible(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    struct err e = {0};
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "r/backup/1/data/ns/metadata.yaml", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, "created: x\n", 11, &e), 0);

    /* The temp file exists on disk but nothing is visible. */
    assert_true(count_tree(f->root) > 0);
    assert_list(s, "", false, "");
    assert_list(s, "", true, "");
    assert_list(s, "r/backup/", true, "");
    assert_int_equal(stor_stat(s, "r/backup/1/data/ns/metadata.yaml", NULL, NULL, &e),
                     ERR_NOT_FOUND);
    struct stor_reader *r;
    assert_int_equal(stor_reader_open(s, "r/backup/1/data/ns/metadata.yaml", 0, -1, &r, &e),
                     ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "metadata.yaml"));

    assert_int_equal(stor_writer_commit(w, &e), 0);
    assert_list(s, "", false, "r/backup/1/data/ns/metadata.yaml");
    assert_list(s, "r/backup/", true, "r/backup/1/");
    /* No temp file left behind: the tree is r, backup, 1, data, ns, metadata.yaml. */
    assert_int_equal(count_tree(f->root), 6);
}

static void test_failed_commit_leaves_nothing(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    struct err e = {0};
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "t/1/x.asb", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, "abc", 3, &e), 0);
    /* The folder is deleted under the writer (e.g. a cancel racing it): commit must fail. */
    assert_int_equal(stor_delete_prefix(s, "t/", &e), 0);
    assert_int_equal(stor_writer_commit(w, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "x.asb"));
    assert_list(s, "", false, "");
    assert_int_equal(stor_stat(s, "t/1/x.asb", NULL, NULL, &e), ERR_NOT_FOUND);
}

/* ---- contract: listing -------------------------------------------------------------------- */

static void make_layout(struct stor *s)
{
    put_str(s, "r/backup/1704110400000/data/test/metadata.yaml", "m");
    put_str(s, "r/backup/1704110400000/data/test/0_test_1.asb", "d");
    put_str(s, "r/backup/1704110400000/data/test/1_test_2.asb", "dd");
    put_str(s, "r/backup/1704110400000/data/bar/metadata.yaml", "m");
    put_str(s, "r/backup/1704196800000_2024-01-02T12-00-00/data/test/metadata.yaml", "m");
    put_str(s, "r/incremental/1704114000000/data/test/metadata.yaml", "m");
    put_str(s, "r/a-b", "order");
    put_str(s, "top", "t");
    put_str(s, "r2/backup/1/data/x/metadata.yaml", "m");
}

static void test_list(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    make_layout(s);
    /* Recursive: bytewise key order ("r/a-b" before "r/backup/...", "r/..." before "r2/"). */
    assert_list(s, "", false,
                "r/a-b,"
                "r/backup/1704110400000/data/bar/metadata.yaml,"
                "r/backup/1704110400000/data/test/0_test_1.asb,"
                "r/backup/1704110400000/data/test/1_test_2.asb,"
                "r/backup/1704110400000/data/test/metadata.yaml,"
                "r/backup/1704196800000_2024-01-02T12-00-00/data/test/metadata.yaml,"
                "r/incremental/1704114000000/data/test/metadata.yaml,"
                "r2/backup/1/data/x/metadata.yaml,"
                "top");
    assert_list(s, NULL, true, "r/,r2/,top");
    assert_list(s, "r/", true, "r/a-b,r/backup/,r/incremental/");
    assert_list(s, "r/backup/", true,
                "r/backup/1704110400000/,r/backup/1704196800000_2024-01-02T12-00-00/");
    assert_list(s, "r/backup/1704110400000/data/", true,
                "r/backup/1704110400000/data/bar/,r/backup/1704110400000/data/test/");
    assert_list(s, "r/backup/1704110400000/data/test/", true,
                "r/backup/1704110400000/data/test/0_test_1.asb,"
                "r/backup/1704110400000/data/test/1_test_2.asb,"
                "r/backup/1704110400000/data/test/metadata.yaml");
    /* String prefixes, as S3: a partial last segment. */
    assert_list(s, "r", true, "r/,r2/");
    assert_list(s, "r/backup/170411", true, "r/backup/1704110400000/");
    assert_list(s, "r/backup/17041", true,
                "r/backup/1704110400000/,r/backup/1704196800000_2024-01-02T12-00-00/");
    assert_list(s, "r/backup/1704196", false,
                "r/backup/1704196800000_2024-01-02T12-00-00/data/test/metadata.yaml");
    assert_list(s, "r/backup/1704110400000/data/test/m", false,
                "r/backup/1704110400000/data/test/metadata.yaml");
    assert_list(s, "nothing/", false, "");
    assert_list(s, "top/", false, "");   /* under an object: nothing */
    assert_list(s, "to", false, "top");

    /* start-after (S3 StartAfter), with and without delimiter. */
    char *got = list_str(s, "r/backup/", true, 0, "r/backup/1704110400000", NULL);
    assert_string_equal(got, "r/backup/1704110400000/,r/backup/1704196800000_2024-01-02T12-00-00/");
    free(got);
    got = list_str(s, "r/backup/", true, 0, "r/backup/1704110400000/", NULL);
    assert_string_equal(got, "r/backup/1704196800000_2024-01-02T12-00-00/");
    free(got);
    got = list_str(s, "r/backup/", true, 0, "r/backup/1704110400000/data/test/0", NULL);
    assert_string_equal(got, "r/backup/1704110400000/,r/backup/1704196800000_2024-01-02T12-00-00/");
    free(got);
    got = list_str(s, "r/backup/", true, 0, "r/backup/1704110400000/data/test/metadata.yaml", NULL);
    assert_string_equal(got, "r/backup/1704196800000_2024-01-02T12-00-00/");
    free(got);
    got = list_str(s, "", false, 0, "r/incremental/", NULL);
    assert_string_equal(got, "r/incremental/1704114000000/data/test/metadata.yaml,"
                             "r2/backup/1/data/x/metadata.yaml,top");
    free(got);

    /* Pagination: pages of 2 over 9 keys = 5 pages, the same keys. */
    int pages;
    got = list_str(s, "", false, 2, NULL, &pages);
    assert_int_equal(pages, 5);
    free(got);
    got = list_str(s, "", false, 3, NULL, &pages);
    assert_int_equal(pages, 3); /* exactly full last page: no empty extra page */
    free(got);

    /* Entries carry size / mtime for objects. */
    struct stor_list_opts o = {.prefix = "r/backup/1704110400000/data/test/1"};
    struct stor_page p;
    struct err e = {0};
    assert_int_equal(stor_list_page(s, &o, NULL, &p, &e), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.entries[0].size, 2);
    assert_false(p.entries[0].is_prefix);
    assert_true(p.entries[0].mtime_ms > 0);
    assert_null(p.next_token);
    stor_page_free(&p);
}

static void test_list_hidden_and_empty_dirs(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    put_str(s, "a/x", "1");
    char path[512];
    /* An empty directory, a directory holding only a stale temp file, a hidden file. */
    snprintf(path, sizeof path, "%s/empty", f->root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/stale", f->root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/stale/.0_ns_1.asb.tmp-abcdef", f->root);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof path, "%s/a/.hidden", f->root);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    /* A special file is not an object either. */
    snprintf(path, sizeof path, "%s/a/fifo", f->root);
    assert_int_equal(mkfifo(path, 0600), 0);

    assert_list(s, "", false, "a/x");
    assert_list(s, "", true, "a/");
    assert_list(s, "a/", true, "a/x");

    /* delete-prefix removes stale temp files with the folder. */
    struct err e = {0};
    assert_int_equal(stor_delete_prefix(s, "stale/", &e), 0);
    snprintf(path, sizeof path, "%s/stale", f->root);
    assert_int_equal(access(path, F_OK), -1);
}

struct stop_ctx {
    int seen;
    int stop_at;
};

static int stop_cb(void *ctx, const struct stor_entry *ent, struct err *e)
{
    (void)e;
    struct stop_ctx *c = ctx;
    assert_non_null(ent->key);
    if (++c->seen == c->stop_at)
        return 1;
    return 0;
}

static int fail_cb(void *ctx, const struct stor_entry *ent, struct err *e)
{
    (void)ctx;
    return err_set(e, ERR_INTERNAL, "stop at %s", ent->key);
}

static void test_list_callback(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    make_layout(s);
    struct err e = {0};
    struct stor_list_opts o = {.page_size = 2};
    struct stop_ctx c = {0, 0};
    assert_int_equal(stor_list(s, &o, stop_cb, &c, &e), 0);
    assert_int_equal(c.seen, 9);
    c = (struct stop_ctx){0, 5};
    assert_int_equal(stor_list(s, &o, stop_cb, &c, &e), 0);
    assert_int_equal(c.seen, 5);
    assert_int_equal(stor_list(s, &o, fail_cb, NULL, &e), ERR_INTERNAL);
    assert_string_equal(e.msg, "stop at r/a-b");
    c = (struct stop_ctx){0, 0};
    assert_int_equal(stor_list(s, NULL, stop_cb, &c, &e), 0);
    assert_int_equal(c.seen, 9);
}

/* ---- contract: delete --------------------------------------------------------------------- */

static void test_delete(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    make_layout(s);
    struct err e = {0};

    assert_int_equal(stor_delete(s, "r/incremental/1704114000000/data/test/metadata.yaml", &e),
                     0);
    assert_int_equal(stor_stat(s, "r/incremental/1704114000000/data/test/metadata.yaml", NULL,
                               NULL, &e), ERR_NOT_FOUND);
    /* Its emptied directories went with it, up to (not including) the root. */
    char path[512];
    snprintf(path, sizeof path, "%s/r/incremental", f->root);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/r", f->root);
    assert_int_equal(access(path, F_OK), 0);
    /* Missing keys and directories are not errors. */
    assert_int_equal(stor_delete(s, "r/incremental/1704114000000/data/test/metadata.yaml", &e),
                     0);
    assert_int_equal(stor_delete(s, "r/backup", &e), 0);
    assert_int_equal(stor_stat(s, "r/backup/1704110400000/data/test/metadata.yaml", NULL, NULL,
                               &e), 0);

    /* Delete a whole backup folder. */
    assert_int_equal(stor_delete_prefix(s, "r/backup/1704110400000/", &e), 0);
    snprintf(path, sizeof path, "%s/r/backup/1704110400000", f->root);
    assert_int_equal(access(path, F_OK), -1);
    assert_list(s, "r/", false,
                "r/a-b,r/backup/1704196800000_2024-01-02T12-00-00/data/test/metadata.yaml");
    /* Again: nothing there is fine. */
    assert_int_equal(stor_delete_prefix(s, "r/backup/1704110400000/", &e), 0);
    assert_int_equal(stor_delete_prefix(s, "top/", &e), 0); /* an object, not a folder */
    assert_int_equal(stor_stat(s, "top", NULL, NULL, &e), 0);

    /* The last folder of a routine: the routine folder goes too. */
    assert_int_equal(stor_delete_prefix(s, "r2/backup/", &e), 0);
    snprintf(path, sizeof path, "%s/r2", f->root);
    assert_int_equal(access(path, F_OK), -1);

    /* Prefixes must name a folder. */
    assert_int_equal(stor_delete_prefix(s, "", &e), ERR_INVALID);
    assert_int_equal(stor_delete_prefix(s, NULL, &e), ERR_INVALID);
    assert_int_equal(stor_delete_prefix(s, "r/backup", &e), ERR_INVALID);
    assert_int_equal(stor_delete_prefix(s, "/r/", &e), ERR_INVALID);
    assert_int_equal(stor_delete_prefix(s, "../", &e), ERR_INVALID);
    assert_int_equal(stor_delete_prefix(s, "r//", &e), ERR_INVALID);
    assert_list(s, "", false,
                "r/a-b,r/backup/1704196800000_2024-01-02T12-00-00/data/test/metadata.yaml,top");
    /* The root itself is never removed. */
    assert_int_equal(stor_delete(s, "top", &e), 0);
    assert_int_equal(stor_delete(s, "r/a-b", &e), 0);
    assert_int_equal(stor_delete_prefix(s, "r/", &e), 0);
    assert_int_equal(access(f->root, F_OK), 0);
    assert_int_equal(count_tree(f->root), 0);
}

/* ---- contract: put / get / stat ----------------------------------------------------------- */

struct flip_ctx {
    struct stor *s;
    volatile int stop;
    int reads, bad;
    char bad_msg[600];
};

static const char *const FLIP_A = "created: 2024-01-01T00:00:00Z\nnamespace: test\n";
static char flip_b[20000];

static void *flip_reader(void *arg)
{
    struct flip_ctx *c = arg;
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
        if (!(len == strlen(FLIP_A) && !memcmp(data, FLIP_A, len)) &&
            !(len == strlen(flip_b) && !memcmp(data, flip_b, len))) {
            c->bad++;
            snprintf(c->bad_msg, sizeof c->bad_msg, "torn read of %zu bytes", len);
        }
        free(data);
        c->reads++;
    }
    return NULL;
}

static void test_put_get(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    struct err e = {0};
    char *data;
    size_t len;

    assert_int_equal(stor_get(s, "r/backup/1/data/test/metadata.yaml", 100, &data, &len, &e),
                     ERR_NOT_FOUND);
    assert_null(data);
    assert_non_null(strstr(e.msg, "r/backup/1/data/test/metadata.yaml"));

    put_str(s, "r/backup/1/data/test/metadata.yaml", FLIP_A);
    assert_int_equal(stor_get(s, "r/backup/1/data/test/metadata.yaml", 100, &data, &len, &e),
                     0);
    assert_int_equal(len, strlen(FLIP_A));
    assert_string_equal(data, FLIP_A); /* NUL-terminated */
    free(data);
    assert_int_equal(stor_get(s, "r/backup/1/data/test/metadata.yaml", 10, &data, &len, &e),
                     ERR_INVALID);
    assert_null(data);
    assert_int_equal(stor_get(s, "r/backup/1/data/test/metadata.yaml", strlen(FLIP_A), &data,
                              NULL, &e), 0);
    free(data);

    /* Empty object. */
    assert_int_equal(stor_put(s, "zero", "", 0, &e), 0);
    assert_int_equal(stor_get(s, "zero", 10, &data, &len, &e), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);

    /* Replacing under a concurrent reader: every read sees one whole version. */
    memset(flip_b, 'b', sizeof flip_b - 1);
    struct flip_ctx c = {.s = s};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flip_reader, &c), 0);
    for (int i = 0; i < 200; i++)
        put_str(s, "r/backup/1/data/test/metadata.yaml", i % 2 ? FLIP_A : flip_b);
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    if (c.bad)
        fail_msg("%d bad reads of %d: %s", c.bad, c.reads, c.bad_msg);
    assert_true(c.reads > 0);
    /* No temp files left in the folder. */
    char path[512];
    snprintf(path, sizeof path, "%s/r/backup/1/data/test", f->root);
    assert_int_equal(count_tree(path), 1);
}

static void test_stat(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    struct err e = {0};
    put_str(s, "d/obj", "12345");
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
    assert_int_equal(stor_reader_open(s, "d/obj", 0, -2, &r, &e), ERR_INVALID);
}

/* ---- local backend specifics -------------------------------------------------------------- */

static void test_modes(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    mode_t old = umask(0);
    write_obj(s, "r/backup/1/data/test/0_test_1.asb", 10, 1);
    put_str(s, "r/backup/1/data/test/metadata.yaml", "m");
    umask(old);
    char path[512];
    assert_int_equal(mode_of(f->root), 0700);
    const char *dirs[] = {"r", "r/backup", "r/backup/1", "r/backup/1/data",
                          "r/backup/1/data/test"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->root, dirs[i]);
        assert_int_equal(mode_of(path), 0700);
    }
    snprintf(path, sizeof path, "%s/r/backup/1/data/test/0_test_1.asb", f->root);
    assert_int_equal(mode_of(path), 0600);
    snprintf(path, sizeof path, "%s/r/backup/1/data/test/metadata.yaml", f->root);
    assert_int_equal(mode_of(path), 0600);

    /* A relative root resolves against the current directory, once. */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->dir), 0);
    struct stor *rel;
    struct err e = {0};
    int rc = open_local("rel/store", &rel, &e);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    snprintf(path, sizeof path, "%s/rel/store", f->dir);
    assert_string_equal(stor_root(rel), path);
    assert_int_equal(stor_get_kind(rel), STOR_LOCAL);
    assert_non_null(strstr(stor_name(rel), path));
    assert_int_equal(stor_part_size(rel), 0);
    put_str(rel, "k", "v"); /* cwd changed back: still lands in the resolved root */
    snprintf(path, sizeof path, "%s/rel/store/k", f->dir);
    assert_int_equal(access(path, F_OK), 0);
    stor_close(rel);
}

static void test_bad_keys(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
    char longkey[STOR_KEY_MAX + 2];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    const char *bad[] = {"",       "/abs",    "a//b",      "a/../b", "..",   "../x", ".",
                         "./a",    "a/.",     "a/",        "/",      ".hid", "a/.tmp-x",
                         "a\nb",   "a\tb",    longkey};
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
    /* Nothing was created outside (or inside) the root. */
    assert_int_equal(count_tree(f->root), 0);

    const char *good[] = {"k", "a/b.c", "r/backup/1/data/ns.2/metadata.yaml", "a..b", "a/b..",
                          "x y/z"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(stor_key_valid(good[i], &e), 0);
        put_str(s, good[i], good[i]);
    }
    assert_list(s, "", false, "a..b,a/b..,a/b.c,k,r/backup/1/data/ns.2/metadata.yaml,x y/z");

    /* List prefixes. */
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

static void test_unwritable(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct stor *s = (void *)1;
    char path[512];

    /* Root below a regular file. */
    snprintf(path, sizeof path, "%s/plainfile", f->dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof path, "%s/plainfile/store", f->dir);
    assert_int_equal(open_local(path, &s, &e), ERR_IO);
    assert_null(s);
    assert_non_null(strstr(e.msg, "plainfile"));
    /* Root that is a regular file. */
    snprintf(path, sizeof path, "%s/plainfile", f->dir);
    assert_int_equal(open_local(path, &s, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "not a directory"));
    /* Root in /proc (no directory can be made there, even by root). */
    assert_int_equal(open_local("/proc/abs_stor_test/x", &s, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "/proc/abs_stor_test"));
    assert_int_equal(open_local("", &s, &e), ERR_INVALID);
    assert_int_equal(open_local(NULL, &s, &e), ERR_INVALID);

    /* A key whose folder would sit under an object. */
    put_str(f->s, "obj", "x");
    struct stor_writer *w = (void *)1;
    assert_int_equal(stor_writer_open(f->s, "obj/sub/file", 0, &w, &e), ERR_IO);
    assert_null(w);
    assert_non_null(strstr(e.msg, "obj"));
    assert_int_equal(stor_put(f->s, "obj/x", "y", 1, &e), ERR_IO);
    /* A key naming an existing folder cannot be committed over it. */
    put_str(f->s, "dir/x", "x");
    assert_int_equal(stor_put(f->s, "dir", "y", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "dir"));
    assert_list(f->s, "", false, "dir/x,obj");
    char root_entries[512];
    snprintf(root_entries, sizeof root_entries, "%s", f->root);
    assert_int_equal(count_tree(root_entries), 3); /* obj, dir, dir/x: no temp file left */
}

static void test_open_kinds(void **state)
{
    (void)state;
    struct err e = {0};
    struct stor *s = (void *)1;
    struct cfg_s3_storage s3 = {.bucket = "b"};
    struct cfg_azure_storage az = {.container_name = "c"};
    struct cfg_gcp_storage gcp = {.bucket_name = "g"};
    struct cfg_local_storage loc = {.path = "/tmp"};
    struct cfg_storage c = {.s3 = &s3};
    assert_int_equal(stor_open(&c, &s, &e), ERR_INVALID);
    assert_null(s);
    assert_non_null(strstr(e.msg, "s3-storage"));
    assert_non_null(strstr(e.msg, "not supported yet"));
    c = (struct cfg_storage){.azure = &az};
    assert_int_equal(stor_open(&c, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "azure-storage"));
    c = (struct cfg_storage){.gcp = &gcp};
    assert_int_equal(stor_open(&c, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "gcp-storage"));
    c = (struct cfg_storage){0};
    assert_int_equal(stor_open(&c, &s, &e), ERR_INVALID);
    c = (struct cfg_storage){.local = &loc, .s3 = &s3};
    assert_int_equal(stor_open(&c, &s, &e), ERR_INVALID);
    assert_int_equal(stor_open(NULL, &s, &e), ERR_INVALID);
    stor_close(NULL);
}

static void test_path_helpers(void **state)
{
    (void)state;
    char *p;
    struct {
        const char *a, *b, *want;
    } joins[] = {{"a", "b", "a/b"},   {"a/", "b", "a/b"}, {"a", "/b", "a/b"}, {"", "b", "b"},
                 {"a", "", "a"},      {NULL, "b", "b"},   {"a//", "b/c", "a/b/c"},
                 {"", "", ""}};
    for (size_t i = 0; i < sizeof joins / sizeof joins[0]; i++) {
        p = stor_path_join(joins[i].a, joins[i].b);
        assert_string_equal(p, joins[i].want);
        free(p);
    }
    struct {
        const char *in, *want;
    } norms[] = {{"/backups/abs/", "backups/abs"}, {"x", "x"}, {"///", ""}, {NULL, ""}};
    for (size_t i = 0; i < sizeof norms / sizeof norms[0]; i++) {
        p = stor_prefix_normalize(norms[i].in);
        assert_string_equal(p, norms[i].want);
        free(p);
    }
    /* Object names under a cloud-style root prefix, through a bare base handle. */
    struct stor s;
    struct err e = {0};
    static const struct stor_ops ops = {.scheme = "test"};
    assert_int_equal(stor_base_init(&s, &ops, STOR_S3, "pre/fix", "s3://b/pre/fix", 5 << 20, &e),
                     0);
    p = stor_object_name(&s, "r/backup/1/x");
    assert_string_equal(p, "pre/fix/r/backup/1/x");
    assert_string_equal(stor_key_of_object(&s, p), "r/backup/1/x");
    free(p);
    assert_null(stor_key_of_object(&s, "pre/fixx/a"));
    assert_null(stor_key_of_object(&s, "other/a"));
    assert_int_equal(stor_part_size(&s), 5 << 20);
    free(s.root);
    free(s.name);
    assert_int_equal(stor_base_init(&s, &ops, STOR_GCS, "", NULL, 0, &e), 0);
    assert_string_equal(stor_name(&s), "test");
    p = stor_object_name(&s, "k");
    assert_string_equal(p, "k");
    assert_string_equal(stor_key_of_object(&s, "k"), "k");
    free(p);
    free(s.root);
    free(s.name);
}

static void test_io_adapters(void **state)
{
    struct fx *f = *state;
    struct stor *s = f->s;
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

/* ---- concurrency -------------------------------------------------------------------------- */

#define NTHREADS 4
#define PER_THREAD 60

struct thr {
    struct stor *s;
    int id;
    int errors;
    char msg[600];
};

static void *writer_thread(void *arg)
{
    struct thr *t = arg;
    struct err e = {0};
    char key[128];
    unsigned char buf[5000];
    for (int j = 0; j < PER_THREAD; j++) {
        /* A kept object in a shared folder. */
        snprintf(key, sizeof key, "c/shared/t%d_%03d", t->id, j);
        struct stor_writer *w;
        size_t n = (size_t)(j * 37 % 5000);
        pattern(buf, n, (unsigned)(t->id * 1000 + j));
        if (stor_writer_open(t->s, key, 0, &w, &e) || stor_writer_write(w, buf, n, &e) ||
            stor_writer_commit(w, &e))
            goto fail;
        /* Churn in one folder all threads share: create, abort, delete (prunes the folder
         * while other threads are creating in it). */
        snprintf(key, sizeof key, "c/churn/x/t%d", t->id);
        if (stor_put(t->s, key, "x", 1, &e))
            goto fail;
        snprintf(key, sizeof key, "c/churn/x/a%d", t->id);
        if (stor_writer_open(t->s, key, 0, &w, &e))
            goto fail;
        stor_writer_abort(w);
        snprintf(key, sizeof key, "c/churn/x/t%d", t->id);
        if (stor_delete(t->s, key, &e))
            goto fail;
        /* Listing while everything moves. */
        struct stor_page p;
        struct stor_list_opts o = {.prefix = "c/", .page_size = 7};
        if (stor_list_page(t->s, &o, NULL, &p, &e))
            goto fail;
        stor_page_free(&p);
        continue;
    fail:
        t->errors++;
        snprintf(t->msg, sizeof t->msg, "%s", e.msg);
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    struct fx *f = *state;
    pthread_t th[NTHREADS];
    struct thr t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        t[i] = (struct thr){.s = f->s, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &t[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        if (t[i].errors)
            fail_msg("thread %d: %d errors, last: %s", i, t[i].errors, t[i].msg);

    struct stop_ctx c = {0, 0};
    struct err e = {0};
    struct stor_list_opts o = {.prefix = "c/", .page_size = 50};
    assert_int_equal(stor_list(f->s, &o, stop_cb, &c, &e), 0);
    assert_int_equal(c.seen, NTHREADS * PER_THREAD);
    unsigned char want[5000];
    for (int i = 0; i < NTHREADS; i++)
        for (int j = 0; j < PER_THREAD; j++) {
            char key[64];
            snprintf(key, sizeof key, "c/shared/t%d_%03d", i, j);
            size_t n = (size_t)(j * 37 % 5000), got;
            pattern(want, n, (unsigned)(i * 1000 + j));
            unsigned char *p = read_range(f->s, key, 0, -1, &got);
            assert_int_equal(got, n);
            if (n)
                assert_memory_equal(p, want, n);
            free(p);
        }
    /* The churn folder is gone; no temp files anywhere. */
    char path[512];
    snprintf(path, sizeof path, "%s/c/churn", f->root);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/c/shared", f->root);
    assert_int_equal(count_tree(path), NTHREADS * PER_THREAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_commit_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncommitted_invisible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_hidden_and_empty_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
        cmocka_unit_test(test_open_kinds),
        cmocka_unit_test(test_path_helpers),
        cmocka_unit_test_setup_teardown(test_io_adapters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
