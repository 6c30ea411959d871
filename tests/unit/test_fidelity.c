/*
 * test_fidelity.c - record-for-record fidelity of restores and backups against the official
 * tools, through the protocol emulator (a child process on loopback; skipped when the binary
 * is missing).
 *
 *  - restore: every full backup written by asbackup 4.5.8 (tests/data/asb: plain p1 and p4,
 *    zstd, AES-128, AES-256, zstd+AES-256, compact `!` forms, the 2-node cluster backup) is
 *    restored into an emptied namespace, the emulator dumps it (emulator-dump) and every
 *    record is compared with the corpus dataset (dataset.asb, 2000 records): digest, set, key
 *    (type and value), generation as the server leaves it (1: the backup's generation is only
 *    the GEN_GT condition), void-time (asbackup's +1 s, plus at most 2 s of restore drift,
 *    never-expiring stays 0), and every bin in order: name, particle type and value (doubles
 *    bit for bit, so -0.0 counts; unordered maps compared with their pairs sorted, as the
 *    server returns them sorted - wire README "facts corrected" 3);
 *  - backup: dataset.asb is restored, then backed up by backup_run; the .asb records are
 *    compared with asbackup's own backup of the same data (b-backup-full-p1), order
 *    independent: each record's text is byte-identical apart from the `+ t` line (void-times
 *    within 2 s), and the UDF and index lines are the same set.
 *
 * The emulator binary is found through $ABS_EMULATOR or at <test dir>/emulator/aerospike-emulator.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aerospike/as_cluster.h"
#include "aerospike/as_info.h"
#include "asb/asb.h"
#include "config/config.h"
#include "io/io.h"
#include "jobs/backup_job.h"
#include "jobs/backup_meta.h"
#include "jobs/restore_job.h"
#include "storage/storage.h"
#include "emu_launch.h"
#include "slurp.h"
#include "temp_storage.h"

#define ASB_DIR TEST_DATA_DIR "/asb"
#define DATASET_RECORDS 2000

/* ---- a record table: deep copies of decoded records, by digest ---------------------------- */

struct vrec {
    uint8_t digest[ASB_DIGEST_LEN];
    char *set;
    struct asb_value key;
    uint16_t generation;
    uint32_t void_time;
    uint32_t n_bins;
    struct asb_bin *bins;
    char *text; /* the record encoded again with void_time 0 (for the backup comparison) */
    size_t text_len;
};

struct table {
    struct vrec *v;
    size_t n, cap;
    char **globals; /* UDF and index lines, encoded */
    size_t n_globals;
};

static void *dup_mem(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    assert_non_null(d);
    if (n)
        memcpy(d, p, n);
    return d;
}

static void copy_value(struct asb_value *dst, const struct asb_value *src)
{
    *dst = *src;
    if (src->data)
        dst->data = dup_mem(src->data, src->len);
}

static void add_global(struct table *t, const uint8_t *line, size_t len)
{
    t->globals = realloc(t->globals, (t->n_globals + 1) * sizeof *t->globals);
    assert_non_null(t->globals);
    char *s = dup_mem(line, len + 1);
    s[len] = 0;
    t->globals[t->n_globals++] = s;
}

static void add_record(struct table *t, const struct asb_record *r)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->v = realloc(t->v, t->cap * sizeof *t->v);
        assert_non_null(t->v);
    }
    struct vrec *v = &t->v[t->n++];
    memset(v, 0, sizeof *v);
    memcpy(v->digest, r->digest, ASB_DIGEST_LEN);
    v->set = dup_mem(r->set ? r->set : "", r->set_len + 1);
    v->set[r->set_len] = 0;
    copy_value(&v->key, &r->key);
    v->generation = r->generation;
    v->void_time = r->void_time;
    v->n_bins = r->n_bins;
    v->bins = calloc(r->n_bins ? r->n_bins : 1, sizeof *v->bins);
    assert_non_null(v->bins);
    for (uint32_t i = 0; i < r->n_bins; i++) {
        v->bins[i].name_len = r->bins[i].name_len;
        char *nm = dup_mem(r->bins[i].name, r->bins[i].name_len + 1);
        nm[r->bins[i].name_len] = 0;
        v->bins[i].name = nm;
        copy_value(&v->bins[i].v, &r->bins[i].v);
    }
    struct asb_record tr = *r;
    tr.void_time = 0;
    size_t cap = asb_record_max_size(&tr, false), n = 0;
    v->text = malloc(cap);
    assert_non_null(v->text);
    struct err e;
    assert_int_equal(asb_encode_record(&tr, false, (uint8_t *)v->text, cap, &n, &e), 0);
    v->text_len = n;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        struct vrec *v = &t->v[i];
        free(v->set);
        free((void *)v->key.data);
        for (uint32_t b = 0; b < v->n_bins; b++) {
            free((void *)v->bins[b].name);
            free((void *)v->bins[b].v.data);
        }
        free(v->bins);
        free(v->text);
    }
    free(t->v);
    for (size_t i = 0; i < t->n_globals; i++)
        free(t->globals[i]);
    free(t->globals);
    memset(t, 0, sizeof *t);
}

static int cmp_vrec(const void *a, const void *b)
{
    return memcmp(((const struct vrec *)a)->digest, ((const struct vrec *)b)->digest, ASB_DIGEST_LEN);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void table_sort(struct table *t)
{
    qsort(t->v, t->n, sizeof *t->v, cmp_vrec);
    qsort(t->globals, t->n_globals, sizeof *t->globals, cmp_str);
}

static const struct vrec *table_find(const struct table *t, const uint8_t *digest)
{
    struct vrec k;
    memcpy(k.digest, digest, ASB_DIGEST_LEN);
    return bsearch(&k, t->v, t->n, sizeof *t->v, cmp_vrec);
}

/* Decodes one .asb stream (any io chain) into the table. */
static void load_stream(struct table *t, struct io_reader *r, const char *what)
{
    struct asb_dec *d = asb_dec_new(io_read_cb, r, NULL);
    assert_non_null(d);
    struct err e = {0};
    for (;;) {
        struct asb_item it;
        if (asb_dec_next(d, &it, &e))
            fail_msg("%s: %s", what, e.msg);
        if (it.kind == ASB_ITEM_EOF)
            break;
        uint8_t line[8192];
        size_t n = 0;
        if (it.kind == ASB_ITEM_RECORD) {
            add_record(t, &it.u.rec);
        } else if (it.kind == ASB_ITEM_UDF) {
            assert_int_equal(asb_encode_udf(&it.u.udf, line, sizeof line, &n, &e), 0);
            add_global(t, line, n);
        } else if (it.kind == ASB_ITEM_SINDEX) {
            assert_int_equal(asb_encode_sindex(&it.u.sindex, line, sizeof line, &n, &e), 0);
            add_global(t, line, n);
        }
    }
    asb_dec_free(d);
}

static void load_file(struct table *t, const char *path)
{
    struct err e = {0};
    struct io_reader *r = io_file_reader_open(path, &e);
    if (!r)
        fail_msg("%s: %s", path, e.msg);
    load_stream(t, r, path);
    io_reader_free(r);
}

/* ---- msgpack: unordered maps with their pairs sorted -------------------------------------- */

struct mbuf {
    uint8_t *p;
    size_t len, cap;
};

static void mput(struct mbuf *b, const uint8_t *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Header of the element at p: its header size, the payload bytes that follow it (scalars) and
 * the number of child elements (arrays: n, maps: 2n). */
static void mp_head(const uint8_t *p, size_t avail, size_t *hdr, size_t *payload, size_t *children, bool *is_map)
{
    uint8_t c = p[0];
    *hdr = 1, *payload = 0, *children = 0, *is_map = false;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
        return;
    if ((c & 0xf0) == 0x80) {
        *children = 2u * (c & 0x0f), *is_map = true;
    } else if ((c & 0xf0) == 0x90) {
        *children = c & 0x0f;
    } else if ((c & 0xe0) == 0xa0) {
        *payload = c & 0x1f;
    } else {
        static const struct { uint8_t c; uint8_t len_bytes; uint8_t fixed; } t[] = {
            {0xc4, 1, 0}, {0xc5, 2, 0}, {0xc6, 4, 0}, {0xc7, 1, 1}, {0xc8, 2, 1}, {0xc9, 4, 1},
            {0xca, 0, 4}, {0xcb, 0, 8}, {0xcc, 0, 1}, {0xcd, 0, 2}, {0xce, 0, 4}, {0xcf, 0, 8},
            {0xd0, 0, 1}, {0xd1, 0, 2}, {0xd2, 0, 4}, {0xd3, 0, 8}, {0xd4, 0, 2}, {0xd5, 0, 3},
            {0xd6, 0, 5}, {0xd7, 0, 9}, {0xd8, 0, 17}, {0xd9, 1, 0}, {0xda, 2, 0}, {0xdb, 4, 0},
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (t[i].c == c) {
                assert_true(avail >= 1u + t[i].len_bytes);
                *hdr = 1u + t[i].len_bytes;
                /* ext: length byte(s) + type byte; fixed = 1 marks the type byte */
                *payload = t[i].len_bytes ? be(p + 1, t[i].len_bytes) + t[i].fixed : t[i].fixed;
                return;
            }
        assert_true(avail >= 5);
        if (c == 0xdc || c == 0xdd)
            *hdr = c == 0xdc ? 3 : 5, *children = be(p + 1, c == 0xdc ? 2 : 4);
        else if (c == 0xde || c == 0xdf)
            *hdr = c == 0xde ? 3 : 5, *children = 2 * be(p + 1, c == 0xde ? 2 : 4), *is_map = true;
        else
            fail_msg("msgpack byte 0x%02x", c);
    }
}

struct pair {
    struct mbuf k, v;
};

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    size_t n = x->k.len < y->k.len ? x->k.len : y->k.len;
    int c = memcmp(x->k.p, y->k.p, n);
    return c ? c : (x->k.len > y->k.len) - (x->k.len < y->k.len);
}

/* Appends the canonical form of the element at p to out; returns its size in the input. */
static size_t canon(const uint8_t *p, size_t avail, struct mbuf *out)
{
    assert_true(avail >= 1);
    size_t hdr, payload, children;
    bool is_map;
    mp_head(p, avail, &hdr, &payload, &children, &is_map);
    assert_true(avail >= hdr + payload);
    mput(out, p, hdr + payload);
    size_t off = hdr + payload;
    if (!children)
        return off;
    if (!is_map) {
        for (size_t i = 0; i < children; i++)
            off += canon(p + off, avail - off, out);
        return off;
    }
    size_t n = children / 2;
    struct pair *pairs = calloc(n, sizeof *pairs);
    assert_non_null(pairs);
    for (size_t i = 0; i < n; i++) {
        off += canon(p + off, avail - off, &pairs[i].k);
        off += canon(p + off, avail - off, &pairs[i].v);
    }
    /* an ordered map starts with an ext key (its flags); keep its order */
    bool ordered = n && pairs[0].k.len && pairs[0].k.p[0] >= 0xc7 && pairs[0].k.p[0] <= 0xd8 &&
                   (pairs[0].k.p[0] <= 0xc9 || pairs[0].k.p[0] >= 0xd4);
    if (!ordered)
        qsort(pairs, n, sizeof *pairs, cmp_pair);
    for (size_t i = 0; i < n; i++) {
        mput(out, pairs[i].k.p, pairs[i].k.len);
        mput(out, pairs[i].v.p, pairs[i].v.len);
        free(pairs[i].k.p);
        free(pairs[i].v.p);
    }
    free(pairs);
    return off;
}

static void assert_same_map(const struct asb_value *a, const struct asb_value *b, const char *bin)
{
    struct mbuf x = {0}, y = {0};
    assert_int_equal(canon(a->data, a->len, &x), a->len);
    assert_int_equal(canon(b->data, b->len, &y), b->len);
    if (x.len != y.len || memcmp(x.p, y.p, x.len) != 0)
        fail_msg("map bin %s differs", bin);
    free(x.p);
    free(y.p);
}

/* ---- comparisons --------------------------------------------------------------------------- */

static void assert_same_value(const struct asb_value *want, const struct asb_value *got, const char *what)
{
    if (want->type != got->type)
        fail_msg("%s: type %u, expected %u", what, got->type, want->type);
    switch (want->type) {
    case ASB_P_NIL:
        return;
    case ASB_P_INTEGER:
        if (want->i != got->i)
            fail_msg("%s: %lld, expected %lld", what, (long long)got->i, (long long)want->i);
        return;
    case ASB_P_DOUBLE:
        if (memcmp(&want->d, &got->d, sizeof want->d) != 0)
            fail_msg("%s: %.17g, expected %.17g", what, got->d, want->d);
        return;
    case ASB_P_BOOL:
        if (want->b != got->b)
            fail_msg("%s: bool differs", what);
        return;
    case ASB_P_MAP:
        assert_same_map(want, got, what);
        return;
    default:
        if (want->len != got->len || (want->len && memcmp(want->data, got->data, want->len) != 0))
            fail_msg("%s: %u bytes differ from the expected %u", what, got->len, want->len);
    }
}

/* `got` (a dump after a restore) against the dataset. */
static void compare_with_dataset(const struct table *dataset, const struct table *got, const char *what)
{
    assert_int_equal(got->n, dataset->n);
    for (size_t i = 0; i < dataset->n; i++) {
        const struct vrec *w = &dataset->v[i];
        const struct vrec *g = table_find(got, w->digest);
        char id[160];
        snprintf(id, sizeof id, "%s: record %zu (set '%s')", what, i, w->set);
        if (!g)
            fail_msg("%s: missing", id);
        if (strcmp(w->set, g->set) != 0)
            fail_msg("%s: set '%s'", id, g->set);
        assert_same_value(&w->key, &g->key, id);
        if (g->generation != 1)
            fail_msg("%s: generation %u, the server leaves 1", id, g->generation);
        if (w->void_time == 0) {
            if (g->void_time != 0)
                fail_msg("%s: void-time %u, expected never", id, g->void_time);
        } else if (g->void_time < w->void_time || g->void_time > w->void_time + 3) {
            fail_msg("%s: void-time %u, expected %u (+1 s of asbackup, +2 s of drift)", id, g->void_time,
                     w->void_time);
        }
        if (g->n_bins != w->n_bins)
            fail_msg("%s: %u bins, expected %u", id, g->n_bins, w->n_bins);
        for (uint32_t b = 0; b < w->n_bins; b++) {
            char bid[240];
            snprintf(bid, sizeof bid, "%s bin %u '%s'", id, b, w->bins[b].name);
            if (w->bins[b].name_len != g->bins[b].name_len ||
                memcmp(w->bins[b].name, g->bins[b].name, w->bins[b].name_len) != 0)
                fail_msg("%s: name '%s'", bid, g->bins[b].name);
            assert_same_value(&w->bins[b].v, &g->bins[b].v, bid);
        }
    }
}

/* ---- emulator ------------------------------------------------------------------------------ */

static struct emu_proc g_emu = { .pid = -1 };
static struct as_cluster *g_cluster;
static char g_dir[64];
static struct stor *g_stor;
static struct table g_dataset;

static int start_emulator(void)
{
    char port_file[128];
    snprintf(port_file, sizeof port_file, "/tmp/fid-live-%d.ports", (int)getpid());
    const char *args[] = { "--namespace", "test", NULL };
    return emu_proc_start(&g_emu, port_file, 1, args);
}

static int setup(void **state)
{
    (void)state;
    load_file(&g_dataset, ASB_DIR "/dataset.asb");
    table_sort(&g_dataset);
    snprintf(g_dir, sizeof g_dir, "/tmp/fid-test-XXXXXX");
    if (temp_storage_open(g_dir, &g_stor) != 0)
        return -1;
    if (start_emulator() != 0)
        return 0; /* tests skip */
    return emu_cluster_new(g_emu.ports[0], &g_cluster);
}

static int teardown(void **state)
{
    (void)state;
    emu_cluster_close(&g_cluster, &g_emu);
    temp_storage_close(&g_stor, g_dir);
    table_free(&g_dataset);
    return 0;
}

#define NEED_EMULATOR() EMU_SKIP_WITHOUT(g_cluster)

static void truncate_test(void)
{
    char out[256];
    emu_cluster_info(g_cluster, "truncate-namespace:namespace=test\n", out, sizeof out);
    if (!strstr(out, "ok"))
        fail_msg("truncate: %s", out);
}

static void dump_test(struct table *t)
{
    char path[128], cmd[256], out[512];
    snprintf(path, sizeof path, "%s-dump.asb", g_dir);
    snprintf(cmd, sizeof cmd, "emulator-dump:namespace=test;file=%s\n", path);
    emu_cluster_info(g_cluster, cmd, out, sizeof out);
    load_file(t, path);
    unlink(path);
    table_sort(t);
}

/* Copies the golden folder's .asb files into storage under `folder` and restores them. */
static void restore_golden(const char *golden, const char *folder, const char *compression, const char *encryption,
                           bool parallel_and_single)
{
    char path[512], key[512];
    static const char *names[] = {"test_00000.asb", "test_00001.asb", "test_00002.asb", "test_00003.asb"};
    size_t files = 0;
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", ASB_DIR, golden, names[i]);
        if (access(path, R_OK) != 0)
            continue;
        size_t len;
        void *d = slurp_file(path, &len);
        snprintf(key, sizeof key, "%s/%zu_test_%zu.asb", folder, i, i + 1);
        struct err e;
        if (stor_put(g_stor, key, d, len, &e))
            fail_msg("put: %s", e.msg);
        free(d);
        files++;
    }
    assert_true(files > 0);
    struct restore_policy pol;
    restore_policy_init(&pol);
    pol.parallel = 2;
    pol.disable_batch_writes = parallel_and_single;
    pol.max_async_batches = parallel_and_single ? 8 : 3;
    pol.has_compression = true;
    snprintf(pol.compression_mode, sizeof pol.compression_mode, "%s", compression);
    pol.has_encryption = true;
    snprintf(pol.encryption_mode, sizeof pol.encryption_mode, "%s", encryption);
    if (strcmp(encryption, "NONE") != 0) {
        snprintf(path, sizeof path, "%s/%s/key.pem", ASB_DIR, golden);
        pol.key_file = strdup(path);
    }
    struct restore_folder f;
    struct err e;
    if (restore_folder_load(g_stor, folder, &pol, &f, &e))
        fail_msg("folder: %s", e.msg);
    struct restore_spec spec = {.folders = &f, .n_folders = 1, .policy = &pol};
    struct restore_progress p = {0};
    if (restore_run(&spec, g_cluster, g_stor, &p, NULL, &e))
        fail_msg("restore of %s: %s", golden, e.msg);
    assert_int_equal(p.inserted_records, DATASET_RECORDS);
    restore_folder_free(&f);
    restore_policy_free(&pol);
}

static void check_restore_of(const char *golden, const char *compression, const char *encryption, bool single)
{
    truncate_test();
    char folder[128];
    snprintf(folder, sizeof folder, "fid/%s/data/test", golden);
    restore_golden(golden, folder, compression, encryption, single);
    struct table got = {0};
    dump_test(&got);
    compare_with_dataset(&g_dataset, &got, golden);
    table_free(&got);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_msgpack_canon(void **state)
{
    (void)state;
    /* {"b":1,"a":[{"d":2,"c":3}]} and the same with both maps sorted are equal; an ordered
     * map ({ext:1,"b":1,"a":2}) keeps its order */
    static const uint8_t a[] = {0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x91, 0x82, 0xa1, 'd', 0x02, 0xa1, 'c', 0x03};
    static const uint8_t b[] = {0x82, 0xa1, 'a', 0x91, 0x82, 0xa1, 'c', 0x03, 0xa1, 'd', 0x02, 0xa1, 'b', 0x01};
    static const uint8_t o1[] = {0x83, 0xc7, 0x00, 0x01, 0xc0, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02};
    static const uint8_t o2[] = {0x83, 0xc7, 0x00, 0x01, 0xc0, 0xa1, 'a', 0x02, 0xa1, 'b', 0x01};
    struct asb_value va = {.type = ASB_P_MAP, .data = a, .len = sizeof a};
    struct asb_value vb = {.type = ASB_P_MAP, .data = b, .len = sizeof b};
    assert_same_map(&va, &vb, "sorted");
    struct mbuf x = {0}, y = {0};
    assert_int_equal(canon(o1, sizeof o1, &x), sizeof o1);
    assert_int_equal(canon(o2, sizeof o2, &y), sizeof o2);
    assert_memory_not_equal(x.p, y.p, x.len);
    free(x.p);
    free(y.p);
    assert_int_equal(g_dataset.n, DATASET_RECORDS);
    assert_int_equal(g_dataset.n_globals, 7);
}

static void test_restore_plain(void **state)
{
    (void)state;
    NEED_EMULATOR();
    check_restore_of("b-backup-full-p1", "NONE", "NONE", false);
    check_restore_of("b-backup-full-p4", "NONE", "NONE", false);
    check_restore_of("d-backup-compact", "NONE", "NONE", false);
    check_restore_of("h3-cluster-backup-p2", "NONE", "NONE", true);
}

static void test_restore_compressed_encrypted(void **state)
{
    (void)state;
    NEED_EMULATOR();
    check_restore_of("e-backup-zstd", "ZSTD", "NONE", false);
    check_restore_of("e-backup-aes128", "NONE", "AES128", false);
    check_restore_of("e-backup-aes256", "NONE", "AES256", false);
    check_restore_of("e-backup-zstd-aes256", "ZSTD", "AES256", false);
}

struct dir_ctx {
    struct table *t;
    struct stor *s;
};

static int on_backup_file(void *ctx, const struct stor_entry *ent, struct err *e)
{
    (void)e;
    struct dir_ctx *c = ctx;
    size_t len = strlen(ent->key);
    if (ent->is_prefix || len < 4 || strcmp(ent->key + len - 4, ".asb") != 0)
        return 0;
    char *data = NULL;
    size_t n = 0;
    struct err ge = {0};
    if (stor_get(c->s, ent->key, 1u << 30, &data, &n, &ge))
        fail_msg("get %s: %s", ent->key, ge.msg);
    struct io_reader *r = io_mem_reader_new(data, n, &ge);
    assert_non_null(r);
    load_stream(c->t, r, ent->key);
    io_reader_free(r);
    free(data);
    return 0;
}

static void test_backup_matches_asbackup(void **state)
{
    (void)state;
    NEED_EMULATOR();
    /* the server state asbackup saw: the dataset restored */
    truncate_test();
    char path[512];
    snprintf(path, sizeof path, "%s/dataset.asb", ASB_DIR);
    size_t len;
    void *d = slurp_file(path, &len);
    struct err e;
    if (stor_put(g_stor, "ds/data/test/dataset.asb", d, len, &e))
        fail_msg("put: %s", e.msg);
    free(d);
    struct restore_policy pol;
    restore_policy_init(&pol);
    struct restore_folder f;
    if (restore_folder_load(g_stor, "ds/data/test", &pol, &f, &e))
        fail_msg("folder: %s", e.msg);
    struct restore_spec spec = {.folders = &f, .n_folders = 1, .policy = &pol};
    struct restore_progress p = {0};
    if (restore_run(&spec, g_cluster, g_stor, &p, NULL, &e))
        fail_msg("restore: %s", e.msg);
    restore_folder_free(&f);
    assert_int_equal(p.inserted_records, DATASET_RECORDS);

    /* our backup of it */
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "aerospike-clusters: {c: {seed-nodes: [{host-name: 127.0.0.1, port: %d}]}}\n"
             "storage: {s: {local-storage: {path: %s}}}\n"
             "backup-policies: {p: {parallel: 3}}\n"
             "backup-routines: {r: {interval-cron: '@yearly', source-cluster: c, storage: s, backup-policy: p,"
             " namespaces: [test]}}\n",
             g_emu.ports[0], g_dir);
    struct cfg *cfg;
    if (cfg_from_yaml(yaml, strlen(yaml), "fidelity", &cfg, &e))
        fail_msg("config: %s", e.msg);
    struct backup_spec bs = {.cfg = cfg, .routine = "r", .kind = BACKUP_FULL, .start_ms = 1700000000000,
                             .modified_after_ms = -1, .modified_before_ms = -1};
    struct backup_progress bp = {0};
    struct backup_outcome out;
    if (backup_run(&bs, g_cluster, g_stor, &bp, NULL, &out, &e))
        fail_msg("backup: %s", e.msg);
    assert_int_equal(out.records, DATASET_RECORDS);

    struct table ours = {0}, theirs = {0};
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%sdata/test/", out.folder);
    struct stor_list_opts lo = {.prefix = prefix, .delimiter = true};
    struct dir_ctx dc = {.t = &ours, .s = g_stor};
    if (stor_list(g_stor, &lo, on_backup_file, &dc, &e))
        fail_msg("list: %s", e.msg);
    table_sort(&ours);
    load_file(&theirs, ASB_DIR "/b-backup-full-p1/test_00000.asb");
    table_sort(&theirs);

    assert_int_equal(ours.n, theirs.n);
    for (size_t i = 0; i < theirs.n; i++) {
        const struct vrec *t = &theirs.v[i];
        const struct vrec *o = table_find(&ours, t->digest);
        if (!o)
            fail_msg("record %zu of asbackup's backup is missing", i);
        if (o->text_len != t->text_len || memcmp(o->text, t->text, t->text_len) != 0)
            fail_msg("record %zu differs:\n--- asbackup\n%.*s--- ours\n%.*s", i, (int)t->text_len, t->text,
                     (int)o->text_len, o->text);
        int64_t dv = (int64_t)o->void_time - (int64_t)t->void_time;
        if ((t->void_time == 0) != (o->void_time == 0) || dv < -2 || dv > 2)
            fail_msg("record %zu: void-time %u, asbackup %u", i, o->void_time, t->void_time);
    }
    assert_int_equal(ours.n_globals, theirs.n_globals);
    for (size_t i = 0; i < theirs.n_globals; i++)
        assert_string_equal(ours.globals[i], theirs.globals[i]);

    table_free(&ours);
    table_free(&theirs);
    backup_outcome_free(&out);
    restore_policy_free(&pol);
    cfg_release(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgpack_canon),
        cmocka_unit_test(test_restore_plain),
        cmocka_unit_test(test_restore_compressed_encrypted),
        cmocka_unit_test(test_backup_matches_asbackup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
