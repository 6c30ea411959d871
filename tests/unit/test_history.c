/*
 * test_history.c - backup history (src/jobs/history.c) over local storage in a temp dir: loading
 * a fake ABS layout (fulls and incrementals, several namespaces, timestamp-format folder names,
 * folders that are not backups, namespace folders without metadata.yaml, corrupt metadata),
 * sort order; the cache (refresh, add without relisting, forget, remove/retain, last success,
 * snapshot) including a refresh that races with add and forget (a gated storage wrapper holds
 * the refresh after its first listing); listing JSON for one routine and for all routines with
 * from/to filters and storage; a table of retention plans; retention applied to storage; and
 * the time to list 10,000 cached backups to JSON (printed; only a generous bound is asserted);
 * the start-up clean-up of partial backups and the "history loaded" flag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/cfg_model.h"
#include "jobs/backup_meta.h"
#include "jobs/history.h"
#include "storage/storage.h"
#include "temp_storage.h"

#define T0 1704110400000LL /* 2024-01-01T12:00:00Z */
#define HOUR 3600000LL

/* ---- fixture ------------------------------------------------------------------------------ */

static int setup(void **state) { return temp_fx_setup(state, "/tmp/abs_hist_test.XXXXXX"); }

static int teardown(void **state) { return temp_fx_teardown(state); }

static struct backup_meta mk_meta(const char *ns, int64_t created, int64_t from, uint64_t records)
{
    struct backup_meta m = {.created_ms = created, .finished_ms = created + 2500, .from_ms = from,
                            .record_count = records, .byte_count = records * 100, .file_count = 1,
                            .compression = "ZSTD", .encryption = "NONE"};
    snprintf(m.namespace_, sizeof m.namespace_, "%s", ns);
    return m;
}

static void put_text(struct stor *s, const char *key, const char *text)
{
    struct err e = {0};
    int rc = stor_put(s, key, text, strlen(text), &e);
    if (rc)
        fprintf(stderr, "put %s: %s\n", key, e.msg);
    assert_int_equal(rc, 0);
}

/* A namespace backup with a data file; with_meta false leaves it incomplete. */
static void put_backup(struct stor *s, const char *routine, enum history_kind kind,
                       const char *ts_folder, const char *ns, int64_t created, int64_t from,
                       bool with_meta)
{
    char key[512];
    snprintf(key, sizeof key, "%s/%s/%s/data/%s/0_%s_1.asb", routine, history_kind_folder(kind),
             ts_folder, ns, ns);
    put_text(s, key, "Version 3.1\n");
    if (!with_meta)
        return;
    struct backup_meta m = mk_meta(ns, created, from, 10);
    char *text;
    struct err e = {0};
    assert_int_equal(meta_render(&m, &text, &e), 0);
    snprintf(key, sizeof key, "%s/%s/%s/data/%s/metadata.yaml", routine, history_kind_folder(kind),
             ts_folder, ns);
    put_text(s, key, text);
    free(text);
}

static void put_simple(struct stor *s, const char *routine, enum history_kind kind, int64_t ts,
                       const char *ns)
{
    char name[32];
    snprintf(name, sizeof name, "%" PRId64, ts);
    put_backup(s, routine, kind, name, ns, ts, kind == HISTORY_FULL ? META_ZERO_TIME_MS : ts - HOUR,
               true);
}

static bool exists(struct temp_fx *f, const char *rel)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", f->root, rel);
    return stat(p, &st) == 0;
}

/* The standard layout of routine "daily":
 *   backup/T0           data/test (+ metadata), data/bar (no metadata: incomplete)
 *   incremental/T0+1h   data/test
 *   backup/T0+2h_ISO    data/bar, data/test   (timestamp-format folder name)
 *   incremental/T0+3h   data/test  (corrupt metadata)
 *   incremental/T0+4h   data/test
 *   backup/notats/      data/test  (not a backup folder name: ignored)
 *   backup/T0+2h_ISO/configuration/aerospike_0.conf
 */
static void std_layout(struct stor *s)
{
    put_simple(s, "daily", HISTORY_FULL, T0, "test");
    put_backup(s, "daily", HISTORY_FULL, "1704110400000", "bar", T0, META_ZERO_TIME_MS, false);
    put_simple(s, "daily", HISTORY_INCREMENTAL, T0 + HOUR, "test");
    put_backup(s, "daily", HISTORY_FULL, "1704117600000_2024-01-01T14-00-00", "test", T0 + 2 * HOUR,
               META_ZERO_TIME_MS, true);
    put_backup(s, "daily", HISTORY_FULL, "1704117600000_2024-01-01T14-00-00", "bar", T0 + 2 * HOUR,
               META_ZERO_TIME_MS, true);
    put_text(s, "daily/backup/1704117600000_2024-01-01T14-00-00/configuration/aerospike_0.conf",
             "service {}\n");
    put_backup(s, "daily", HISTORY_INCREMENTAL, "1704121200000", "test", T0 + 3 * HOUR, T0, false);
    put_text(s, "daily/incremental/1704121200000/data/test/metadata.yaml", "created: [oops\n");
    put_simple(s, "daily", HISTORY_INCREMENTAL, T0 + 4 * HOUR, "test");
    put_backup(s, "daily", HISTORY_FULL, "notats", "test", T0, META_ZERO_TIME_MS, true);
    /* another routine sharing the storage */
    put_simple(s, "weekly", HISTORY_FULL, T0 + 10 * HOUR, "test");
}

/* ---- loading ------------------------------------------------------------------------------ */

static void test_load_layout(void **state)
{
    struct temp_fx *f = *state;
    std_layout(f->s);
    struct history h;
    struct err e = {0};
    assert_int_equal(history_load(f->s, "daily", &h, &e), 0);
    assert_int_equal(h.n, 5);
    assert_int_equal(h.incomplete, 1);
    assert_int_equal(h.corrupt, 1);

    assert_int_equal(h.v[0].kind, HISTORY_FULL);
    assert_true(h.v[0].timestamp_ms == T0);
    assert_string_equal(h.v[0].folder, "daily/backup/1704110400000/");
    assert_string_equal(h.v[0].key, "daily/backup/1704110400000/data/test");
    assert_string_equal(h.v[0].meta.namespace_, "test");
    assert_true(h.v[0].meta.from_ms == META_ZERO_TIME_MS);

    assert_int_equal(h.v[1].kind, HISTORY_INCREMENTAL);
    assert_true(h.v[1].timestamp_ms == T0 + HOUR);
    assert_string_equal(h.v[1].folder, "daily/incremental/1704114000000/");
    assert_true(h.v[1].meta.from_ms == T0);

    /* two namespaces of one run: same folder, keys in order */
    assert_true(h.v[2].timestamp_ms == T0 + 2 * HOUR && h.v[3].timestamp_ms == T0 + 2 * HOUR);
    assert_string_equal(h.v[2].folder, "daily/backup/1704117600000_2024-01-01T14-00-00/");
    assert_string_equal(h.v[2].key, "daily/backup/1704117600000_2024-01-01T14-00-00/data/bar");
    assert_string_equal(h.v[3].key, "daily/backup/1704117600000_2024-01-01T14-00-00/data/test");

    assert_int_equal(h.v[4].kind, HISTORY_INCREMENTAL);
    assert_true(h.v[4].timestamp_ms == T0 + 4 * HOUR);
    for (size_t i = 1; i < h.n; i++)
        assert_true(h.v[i - 1].timestamp_ms <= h.v[i].timestamp_ms);

    assert_true(history_last_created(&h, HISTORY_FULL) == T0 + 2 * HOUR);
    assert_true(history_last_created(&h, HISTORY_INCREMENTAL) == T0 + 4 * HOUR);

    struct history copy;
    assert_int_equal(history_copy(&h, &copy, &e), 0);
    assert_int_equal(copy.n, h.n);
    assert_string_equal(copy.v[4].key, h.v[4].key);
    assert_true(copy.v[4].key != h.v[4].key);
    history_free(&copy);
    history_free(&h);

    /* the other routine and a routine with nothing */
    assert_int_equal(history_load(f->s, "weekly", &h, &e), 0);
    assert_int_equal(h.n, 1);
    history_free(&h);
    assert_int_equal(history_load(f->s, "nothing", &h, &e), 0);
    assert_int_equal(h.n, 0);
    assert_true(history_last_created(&h, HISTORY_FULL) == -1);
    history_free(&h);

    /* names that cannot be a folder */
    assert_int_equal(history_load(f->s, "a/b", &h, &e), ERR_INVALID);
    history_free(&h);
    assert_int_equal(history_load(f->s, "", &h, &e), ERR_INVALID);
    history_free(&h);
}

static void test_load_empty_and_oversized_metadata(void **state)
{
    struct temp_fx *f = *state;
    put_backup(f->s, "r", HISTORY_FULL, "1704110400000", "test", T0, META_ZERO_TIME_MS, false);
    put_text(f->s, "r/backup/1704110400000/data/test/metadata.yaml", "");
    char *big = malloc(HISTORY_META_MAX + 2);
    memset(big, '#', HISTORY_META_MAX + 1);
    big[HISTORY_META_MAX + 1] = '\0';
    put_backup(f->s, "r", HISTORY_FULL, "1704114000000", "test", T0 + HOUR, META_ZERO_TIME_MS, false);
    put_text(f->s, "r/backup/1704114000000/data/test/metadata.yaml", big);
    free(big);
    put_simple(f->s, "r", HISTORY_FULL, T0 + 2 * HOUR, "test");
    struct history h;
    struct err e = {0};
    assert_int_equal(history_load(f->s, "r", &h, &e), 0);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.corrupt, 2);
    assert_true(h.v[0].timestamp_ms == T0 + 2 * HOUR);
    history_free(&h);
}

static void test_insert_remove(void **state)
{
    (void)state;
    struct history h = {0};
    struct err e = {0};
    struct backup_meta m = mk_meta("test", T0, META_ZERO_TIME_MS, 1);
    assert_int_equal(history_insert(&h, HISTORY_FULL, T0 + 2 * HOUR, "r/backup/2/", "r/backup/2/data/b", &m, &e), 0);
    assert_int_equal(history_insert(&h, HISTORY_FULL, T0, "r/backup/0/", "r/backup/0/data/a", &m, &e), 0);
    assert_int_equal(history_insert(&h, HISTORY_FULL, T0 + 2 * HOUR, "r/backup/2/", "r/backup/2/data/a", &m, &e), 0);
    assert_int_equal(history_insert(&h, HISTORY_INCREMENTAL, T0 + HOUR, "r/incremental/1/", "r/incremental/1/data/a", &m, &e), 0);
    assert_int_equal(h.n, 4);
    assert_string_equal(h.v[0].key, "r/backup/0/data/a");
    assert_string_equal(h.v[1].key, "r/incremental/1/data/a");
    assert_string_equal(h.v[2].key, "r/backup/2/data/a");
    assert_string_equal(h.v[3].key, "r/backup/2/data/b");
    /* same key replaces */
    m.record_count = 99;
    assert_int_equal(history_insert(&h, HISTORY_FULL, T0 + 2 * HOUR, "r/backup/2/", "r/backup/2/data/a", &m, &e), 0);
    assert_int_equal(h.n, 4);
    assert_int_equal(h.v[2].meta.record_count, 99);
    assert_int_equal(history_remove_folder(&h, "r/backup/2/"), 2);
    assert_int_equal(history_remove_folder(&h, "r/backup/2/"), 0);
    assert_int_equal(h.n, 2);
    history_free(&h);
    assert_int_equal(h.n, 0);
}

/* ---- cache -------------------------------------------------------------------------------- */

static void test_cache_refresh_add_last_success(void **state)
{
    struct temp_fx *f = *state;
    std_layout(f->s);
    struct history_cache *c;
    struct err e = {0};
    assert_int_equal(history_cache_new(&c, &e), 0);
    assert_true(history_cache_last_success(c, "daily", HISTORY_FULL) == -1);
    assert_int_equal(history_cache_refresh(c, "daily", f->s, &e), 0);
    assert_int_equal(history_cache_refresh(c, "weekly", f->s, &e), 0);
    assert_true(history_cache_last_success(c, "daily", HISTORY_FULL) == T0 + 2 * HOUR);
    assert_true(history_cache_last_success(c, "daily", HISTORY_INCREMENTAL) == T0 + 4 * HOUR);
    assert_true(history_cache_last_success(c, "weekly", HISTORY_FULL) == T0 + 10 * HOUR);
    assert_true(history_cache_last_success(c, "weekly", HISTORY_INCREMENTAL) == -1);
    assert_true(history_cache_last_success(c, "unknown", HISTORY_FULL) == -1);

    /* a job reports a full: visible at once, no storage access (nothing written there) */
    struct backup_meta m = mk_meta("test", T0 + 5 * HOUR, META_ZERO_TIME_MS, 7);
    assert_int_equal(history_cache_add(c, "daily", HISTORY_FULL, "daily/backup/1704128400000/", NULL, &m, &e), 0);
    assert_true(history_cache_last_success(c, "daily", HISTORY_FULL) == T0 + 5 * HOUR);
    struct backup_meta m2 = mk_meta("test", T0 + 5 * HOUR, META_ZERO_TIME_MS, 8);
    assert_int_equal(history_cache_add(c, "daily", HISTORY_FULL, "daily/backup/1704128400000/", "test.2", &m2, &e), 0);
    struct history h;
    assert_int_equal(history_cache_snapshot(c, "daily", &h, &e), 0);
    assert_int_equal(h.n, 7);
    assert_string_equal(h.v[5].key, "daily/backup/1704128400000/data/test");
    assert_string_equal(h.v[6].key, "daily/backup/1704128400000/data/test.2");
    assert_true(h.v[6].timestamp_ms == T0 + 5 * HOUR);
    history_free(&h);
    /* a folder name without a timestamp takes created */
    struct backup_meta m3 = mk_meta("x", T0 + 6 * HOUR, T0, 1);
    assert_int_equal(history_cache_add(c, "daily", HISTORY_INCREMENTAL, "daily/incremental/odd/", NULL, &m3, &e), 0);
    assert_true(history_cache_last_success(c, "daily", HISTORY_INCREMENTAL) == T0 + 6 * HOUR);
    assert_int_equal(history_cache_add(c, "daily", HISTORY_FULL, "no-slash", NULL, &m, &e), ERR_INVALID);

    /* refresh goes back to what storage holds */
    assert_int_equal(history_cache_refresh(c, "daily", f->s, &e), 0);
    assert_true(history_cache_last_success(c, "daily", HISTORY_FULL) == T0 + 2 * HOUR);
    assert_true(history_cache_last_success(c, "daily", HISTORY_INCREMENTAL) == T0 + 4 * HOUR);

    /* forget a folder */
    history_cache_forget(c, "daily", "daily/incremental/1704124800000/");
    assert_true(history_cache_last_success(c, "daily", HISTORY_INCREMENTAL) == T0 + HOUR);
    history_cache_forget(c, "nobody", "x/");

    /* snapshot of an unknown routine, remove, retain */
    assert_int_equal(history_cache_snapshot(c, "unknown", &h, &e), ERR_NOT_FOUND);
    history_free(&h);
    history_cache_remove(c, "weekly");
    assert_true(history_cache_last_success(c, "weekly", HISTORY_FULL) == -1);
    assert_int_equal(history_cache_refresh(c, "weekly", f->s, &e), 0);
    const char *keep[] = {"weekly", "other"};
    history_cache_retain(c, keep, 2);
    assert_true(history_cache_last_success(c, "daily", HISTORY_FULL) == -1);
    assert_true(history_cache_last_success(c, "weekly", HISTORY_FULL) == T0 + 10 * HOUR);
    /* names that cannot be folders */
    assert_int_equal(history_cache_refresh(c, "bad/name", f->s, &e), ERR_INVALID);
    assert_int_equal(history_cache_snapshot(c, "bad/name", &h, &e), ERR_NOT_FOUND);
    history_free(&h);
    history_cache_free(c);
    history_cache_free(NULL);
}

/* A storage wrapper whose first gated list_page call stops until released. */
struct gate {
    struct stor base;
    struct stor *inner;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int armed;    /* 1: the next list call stops */
    int waiting;  /* a list call is stopped */
    int released;
    int fail;     /* list calls fail with ERR_IO */
};

static struct gate *gate_of(struct stor *s) { return (struct gate *)s; }
static void g_close(struct stor *s) { free(s); }
static int g_writer_open(struct stor *s, const char *key, const struct stor_write_opts *o,
                         struct stor_writer **out, struct err *e)
{
    struct stor *in = gate_of(s)->inner; /* the backend itself: the common code wraps once */
    return in->ops->writer_open(in, key, o, out, e);
}
static int g_reader_open(struct stor *s, const char *key, uint64_t off, int64_t len,
                         struct stor_reader **out, struct err *e)
{
    struct stor *in = gate_of(s)->inner;
    return in->ops->reader_open(in, key, off, len, out, e);
}
static int g_stat(struct stor *s, const char *key, uint64_t *size, int64_t *mtime, struct err *e)
{
    return stor_stat(gate_of(s)->inner, key, size, mtime, e);
}
static int g_list_page(struct stor *s, const struct stor_list_opts *o, const char *token,
                       struct stor_page *out, struct err *e)
{
    struct gate *g = gate_of(s);
    stor_page_free(out);
    if (g->fail)
        return err_set(e, ERR_IO, "gate: listing failed");
    int rc = stor_list_page(g->inner, o, token, out, e);
    pthread_mutex_lock(&g->mu);
    if (g->armed) {
        g->armed = 0;
        g->waiting = 1;
        pthread_cond_broadcast(&g->cv);
        while (!g->released)
            pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}
static int g_del(struct stor *s, const char *key, struct err *e)
{
    return stor_delete(gate_of(s)->inner, key, e);
}
static int g_delete_prefix(struct stor *s, const char *prefix, struct err *e)
{
    return stor_delete_prefix(gate_of(s)->inner, prefix, e);
}

static const struct stor_ops gate_ops = {
    .scheme = "gate",
    .close = g_close,
    .writer_open = g_writer_open,
    .reader_open = g_reader_open,
    .stat = g_stat,
    .list_page = g_list_page,
    .del = g_del,
    .delete_prefix = g_delete_prefix,
};

struct refresh_arg {
    struct history_cache *c;
    struct stor *s;
    int rc;
};

static void *refresh_thread(void *p)
{
    struct refresh_arg *a = p;
    struct err e = {0};
    a->rc = history_cache_refresh(a->c, "daily", a->s, &e);
    return NULL;
}

static void test_cache_refresh_races_with_add_and_forget(void **state)
{
    struct temp_fx *f = *state;
    put_simple(f->s, "daily", HISTORY_FULL, T0, "test");
    put_simple(f->s, "daily", HISTORY_INCREMENTAL, T0 + HOUR, "test");
    struct gate *g = calloc(1, sizeof *g);
    struct err e = {0};
    assert_int_equal(stor_base_init(&g->base, &gate_ops, STOR_LOCAL, stor_root(f->s), "gate", 0, &e), 0);
    g->inner = f->s;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);

    struct history_cache *c;
    assert_int_equal(history_cache_new(&c, &e), 0);
    assert_int_equal(history_cache_refresh(c, "daily", &g->base, &e), 0);

    /* The refresh lists daily/backup/ (sees the T0 full only), then stops. */
    g->armed = 1;
    struct refresh_arg a = {c, &g->base, -1};
    pthread_t th;
    pthread_create(&th, NULL, refresh_thread, &a);
    pthread_mutex_lock(&g->mu);
    while (!g->waiting)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);

    /* Meanwhile a job writes a new full and reports it; retention forgets the old full (whose
     * files are still there when the refresh reads them); listings keep working. */
    put_simple(f->s, "daily", HISTORY_FULL, T0 + 2 * HOUR, "test");
    struct backup_meta m = mk_meta("test", T0 + 2 * HOUR, META_ZERO_TIME_MS, 10);
    assert_int_equal(history_cache_add(c, "daily", HISTORY_FULL, "daily/backup/1704117600000/", NULL, &m, &e), 0);
    history_cache_forget(c, "daily", "daily/backup/1704110400000/");
    assert_true(history_cache_last_success(c, "daily", HISTORY_FULL) == T0 + 2 * HOUR);
    json_t *l = history_list_json(c, NULL, "daily", HISTORY_FULL, -1, -1);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);

    pthread_mutex_lock(&g->mu);
    g->released = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(th, NULL);
    assert_int_equal(a.rc, 0);

    /* Without the journal the refresh would have lost the new full and revived the old one. */
    struct history h;
    assert_int_equal(history_cache_snapshot(c, "daily", &h, &e), 0);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.v[0].folder, "daily/incremental/1704114000000/");
    assert_string_equal(h.v[1].folder, "daily/backup/1704117600000/");
    history_free(&h);

    /* The journal is gone afterwards: a plain refresh sees storage again (old full included). */
    assert_int_equal(history_cache_refresh(c, "daily", &g->base, &e), 0);
    assert_true(history_cache_last_success(c, "daily", HISTORY_FULL) == T0 + 2 * HOUR);
    assert_int_equal(history_cache_snapshot(c, "daily", &h, &e), 0);
    assert_int_equal(h.n, 3);
    history_free(&h);

    /* Failing refreshes: a known routine keeps its history, an unknown one stays unknown. */
    g->fail = 1;
    assert_int_equal(history_cache_refresh(c, "daily", &g->base, &e), ERR_IO);
    assert_true(history_cache_last_success(c, "daily", HISTORY_FULL) == T0 + 2 * HOUR);
    assert_int_equal(history_cache_refresh(c, "fresh", &g->base, &e), ERR_IO);
    assert_int_equal(history_cache_snapshot(c, "fresh", &h, &e), ERR_NOT_FOUND);
    history_free(&h);
    l = history_list_json(c, NULL, NULL, HISTORY_FULL, -1, -1);
    assert_int_equal(json_object_size(l), 1);
    json_decref(l);
    g->fail = 0;

    /* A routine removed during a refresh stays removed. */
    g->armed = 1;
    g->waiting = 0;
    g->released = 0;
    pthread_create(&th, NULL, refresh_thread, &a);
    pthread_mutex_lock(&g->mu);
    while (!g->waiting)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    history_cache_remove(c, "daily");
    pthread_mutex_lock(&g->mu);
    g->released = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(th, NULL);
    assert_int_equal(history_cache_snapshot(c, "daily", &h, &e), ERR_NOT_FOUND);
    history_free(&h);

    history_cache_free(c);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    stor_close(&g->base);
}

/* ---- listing JSON ------------------------------------------------------------------------- */

static int64_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }
static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* history_list_text gives exactly json_dumps(history_list_json(...), JSON_COMPACT). */
static void check_text(struct history_cache *c, const struct cfg *cfg, const char *routine, int kind,
                       int64_t from, int64_t to)
{
    json_t *j = history_list_json(c, cfg, routine, kind, from, to);
    assert_non_null(j);
    char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    char *got = NULL;
    size_t len = 0;
    struct err e = {0};
    assert_int_equal(history_list_text(c, cfg, routine, kind, from, to, &got, &len, &e), 0);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
    free(want);
}

static void test_list_json(void **state)
{
    struct temp_fx *f = *state;
    std_layout(f->s);
    struct history_cache *c;
    struct err e = {0};
    assert_int_equal(history_cache_new(&c, &e), 0);
    assert_int_equal(history_cache_refresh(c, "daily", f->s, &e), 0);
    assert_int_equal(history_cache_refresh(c, "weekly", f->s, &e), 0);

    /* one routine, no config: fulls sorted by time, one item per namespace */
    json_t *l = history_list_json(c, NULL, "daily", HISTORY_FULL, -1, -1);
    assert_true(json_is_array(l));
    assert_int_equal(json_array_size(l), 3);
    json_t *it = json_array_get(l, 0);
    assert_true(jint(it, "timestamp") == T0);
    assert_string_equal(jstr(it, "key"), "daily/backup/1704110400000/data/test");
    assert_string_equal(jstr(it, "created"), "2024-01-01T12:00:00Z");
    assert_string_equal(jstr(it, "finished"), "2024-01-01T12:00:02.5Z");
    assert_int_equal(jint(it, "duration"), 2);
    assert_string_equal(jstr(it, "namespace"), "test");
    assert_int_equal(jint(it, "record-count"), 10);
    assert_string_equal(jstr(it, "compression"), "ZSTD");
    assert_null(json_object_get(it, "from"));
    assert_null(json_object_get(it, "storage"));
    assert_string_equal(jstr(json_array_get(l, 1), "namespace"), "bar");
    assert_string_equal(jstr(json_array_get(l, 2), "namespace"), "test");
    json_decref(l);

    /* incrementals with `from` */
    l = history_list_json(c, NULL, "daily", HISTORY_INCREMENTAL, -1, -1);
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(jstr(json_array_get(l, 0), "from"), "2024-01-01T12:00:00Z");
    assert_true(jint(json_array_get(l, 1), "timestamp") == T0 + 4 * HOUR);
    json_decref(l);

    /* from inclusive, to "not after" (inclusive) */
    l = history_list_json(c, NULL, "daily", HISTORY_FULL, T0 + 2 * HOUR, -1);
    assert_int_equal(json_array_size(l), 2);
    json_decref(l);
    l = history_list_json(c, NULL, "daily", HISTORY_FULL, T0 + 1, -1);
    assert_int_equal(json_array_size(l), 2);
    json_decref(l);
    l = history_list_json(c, NULL, "daily", HISTORY_FULL, -1, T0);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    l = history_list_json(c, NULL, "daily", HISTORY_FULL, -1, T0 + 2 * HOUR - 1);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    l = history_list_json(c, NULL, "daily", HISTORY_INCREMENTAL, T0 + HOUR, T0 + HOUR);
    assert_int_equal(json_array_size(l), 1);
    assert_true(jint(json_array_get(l, 0), "timestamp") == T0 + HOUR);
    json_decref(l);
    l = history_list_json(c, NULL, "daily", HISTORY_INCREMENTAL, T0 + 5 * HOUR, -1);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    /* unknown routine: empty array */
    l = history_list_json(c, NULL, "unknown", HISTORY_FULL, -1, -1);
    assert_true(json_is_array(l));
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);

    /* all routines without config: the cached ones */
    l = history_list_json(c, NULL, NULL, HISTORY_FULL, -1, -1);
    assert_true(json_is_object(l));
    assert_int_equal(json_object_size(l), 2);
    assert_int_equal(json_array_size(json_object_get(l, "daily")), 3);
    assert_int_equal(json_array_size(json_object_get(l, "weekly")), 1);
    json_decref(l);

    /* with a configuration: every configured routine (empty ones too), storage redacted */
    struct cfg_local_storage loc = {.path = "/var/backups"};
    struct cfg_storage st = {.local = &loc};
    struct cfg_routine r_daily = {.storage = "local1"}, r_new = {.storage = "local1"},
                       r_weekly = {.storage = "missing"};
    char *snames[] = {"local1"};
    void *sitems[] = {&st};
    char *rnames[] = {"weekly", "daily", "new"};
    void *ritems[] = {&r_weekly, &r_daily, &r_new};
    struct cfg cfg = {.refcount = 1,
                      .storage = {1, snames, sitems},
                      .routines = {3, rnames, ritems}};
    l = history_list_json(c, &cfg, NULL, HISTORY_FULL, -1, T0 + 2 * HOUR);
    assert_int_equal(json_object_size(l), 3);
    json_t *daily = json_object_get(l, "daily");
    assert_int_equal(json_array_size(daily), 3);
    json_t *storage = json_object_get(json_array_get(daily, 0), "storage");
    assert_true(json_is_object(storage));
    assert_string_equal(jstr(json_object_get(storage, "local-storage"), "path"), "/var/backups");
    assert_true(json_is_array(json_object_get(l, "new")));
    assert_int_equal(json_array_size(json_object_get(l, "new")), 0);
    assert_int_equal(json_array_size(json_object_get(l, "weekly")), 0); /* 10h > to */
    const char *first = json_object_iter_key(json_object_iter(l));
    assert_string_equal(first, "daily");
    json_decref(l);
    l = history_list_json(c, &cfg, NULL, HISTORY_FULL, T0 + 10 * HOUR, -1);
    json_t *wk = json_object_get(l, "weekly");
    assert_int_equal(json_array_size(wk), 1);
    assert_null(json_object_get(json_array_get(wk, 0), "storage")); /* storage not configured */
    json_decref(l);
    l = history_list_json(c, &cfg, "daily", HISTORY_INCREMENTAL, -1, -1);
    assert_int_equal(json_array_size(l), 2);
    assert_non_null(json_object_get(json_array_get(l, 1), "storage"));
    char *dump = json_dumps(l, JSON_COMPACT);
    assert_non_null(strstr(dump, "\"key\":\"daily/incremental/1704124800000/data/test\""));
    free(dump);
    json_decref(l);

    /* the text form, with odd characters that need escaping */
    struct backup_meta odd = mk_meta("we\"ird \xc3\xbc\\", T0 + 6 * HOUR, META_ZERO_TIME_MS, 3);
    assert_int_equal(history_cache_add(c, "daily", HISTORY_FULL, "daily/backup/1704132000000/", NULL, &odd, &e), 0);
    const struct cfg *cfgs[] = {NULL, &cfg};
    const char *routines[] = {"daily", "weekly", "new", "unknown", NULL};
    for (size_t ci = 0; ci < 2; ci++)
        for (size_t ri = 0; ri < 5; ri++)
            for (int kind = 0; kind < 2; kind++) {
                check_text(c, cfgs[ci], routines[ri], kind, -1, -1);
                check_text(c, cfgs[ci], routines[ri], kind, T0 + HOUR, T0 + 4 * HOUR);
                check_text(c, cfgs[ci], routines[ri], kind, T0 + 20 * HOUR, -1);
            }
    char *text;
    assert_int_equal(history_list_text(c, NULL, "daily", HISTORY_FULL, T0 + 6 * HOUR, -1, &text, NULL, &e), 0);
    json_t *back = json_loads(text, 0, NULL);
    assert_string_equal(jstr(json_array_get(back, 0), "namespace"), "we\"ird \xc3\xbc\\");
    json_decref(back);
    free(text);
    struct history_cache *empty;
    assert_int_equal(history_cache_new(&empty, &e), 0);
    assert_int_equal(history_list_text(empty, NULL, NULL, HISTORY_FULL, -1, -1, &text, NULL, &e), 0);
    assert_string_equal(text, "{}");
    free(text);
    assert_int_equal(history_list_text(empty, NULL, "x", HISTORY_FULL, -1, -1, &text, NULL, &e), 0);
    assert_string_equal(text, "[]");
    free(text);
    history_cache_free(empty);
    history_cache_free(c);
}

/* ---- retention ---------------------------------------------------------------------------- */

/* Builds a history from "F1 I2+ ..." (kind, hour after T0, '+' = a second namespace). */
static void build(struct history *h, const char *spec)
{
    memset(h, 0, sizeof *h);
    struct err e = {0};
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        enum history_kind k = tok[0] == 'F' ? HISTORY_FULL : HISTORY_INCREMENTAL;
        int hour = atoi(tok + 1);
        int64_t ts = T0 + hour * HOUR;
        char folder[128], key[160];
        snprintf(folder, sizeof folder, "r/%s/%" PRId64 "/", history_kind_folder(k), ts);
        struct backup_meta m = mk_meta("a", ts, k == HISTORY_FULL ? META_ZERO_TIME_MS : ts - HOUR, 1);
        snprintf(key, sizeof key, "%sdata/a", folder);
        assert_int_equal(history_insert(h, k, ts, folder, key, &m, &e), 0);
        if (strchr(tok, '+')) {
            snprintf(key, sizeof key, "%sdata/b", folder);
            assert_int_equal(history_insert(h, k, ts, folder, key, &m, &e), 0);
        }
    }
}

static void render_victims(const struct history_victims *v, char *out, size_t cap)
{
    out[0] = '\0';
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        int hour = (int)((v->v[i].timestamp_ms - T0) / HOUR);
        n += (size_t)snprintf(out + n, cap - n, "%s%c%d", i ? " " : "",
                              v->v[i].kind == HISTORY_FULL ? 'F' : 'I', hour);
        char want[128];
        snprintf(want, sizeof want, "r/%s/%" PRId64 "/", history_kind_folder(v->v[i].kind),
                 v->v[i].timestamp_ms);
        assert_string_equal(v->v[i].folder, want);
    }
}

static void test_retention_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int64_t full, incr;
        const char *history; /* oldest first; the newest full is the backup just written */
        const char *victims; /* oldest first */
    } cases[] = {
        {"full=1 incr=0", 1, 0, "F1 I2 I3 F4 I5 F6", "F1 I2 I3 F4 I5"},
        {"full=1 incr=0 keeps incrementals after the newest full", 1, 0, "F1 I2 F3 I4", "F1 I2"},
        {"full=3 incr=1", 3, 1, "F1 I2 F3 I4 I5 F6 I7 F8", "F1 I2 I4 I5 I7"},
        {"full=3 incr=2", 3, 2, "F1 I2 F3 I4 I5 F6 I7 F8", "F1 I2 I4 I5"},
        {"full=3 incr=3", 3, 3, "F1 I2 F3 I4 I5 F6 I7 F8", "F1 I2"},
        {"no retention", -1, -1, "F1 I2 F3 I4 I5 F6 I7 F8", ""},
        {"full only (incremental missing)", 2, -1, "F1 I2 F3 I4 I5 F6 I7 F8", "F1 F3"},
        {"incremental only (full missing)", -1, 0, "F1 I2 F3 I4 I5 F6 I7 F8", "I2 I4 I5 I7"},
        {"incrementals between fulls, incr=2", 4, 2, "F1 I2 I3 F4 I5 I6 F7 I8 F9 I10", "I2 I3 I5 I6"},
        {"incrementals before any full", 5, 5, "I1 I2 F3 I4 F5", "I1 I2"},
        {"fewer fulls than kept", 5, -1, "F1 F2", ""},
        {"no full at all", 1, 0, "I1 I2", ""},
        {"one victim per folder", 1, 0, "F1+ I2+ F3+", "F1 I2"},
        {"full=0 keeps the newest", 0, 0, "F1 F2", "F1"},
        {"incr above full is capped", 1, 3, "F1 I2 F3 I4", "F1 I2"},
        {"incremental at the full's time belongs to it", 1, 0, "F1 I2 F3 I3", "F1 I2"},
        {"only the new full", 1, 0, "F1", ""},
        {"empty history", 1, 0, "", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct history h;
        build(&h, cases[i].history);
        struct history_victims v;
        struct err e = {0};
        assert_int_equal(history_retention_plan(&h, cases[i].full, cases[i].incr, &v, &e), 0);
        char got[256];
        render_victims(&v, got, sizeof got);
        if (strcmp(got, cases[i].victims) != 0)
            fail_msg("case \"%s\": victims \"%s\", want \"%s\"", cases[i].name, got, cases[i].victims);
        history_victims_free(&v);
        history_free(&h);
    }
}

static void test_retention_apply_storage(void **state)
{
    struct temp_fx *f = *state;
    put_simple(f->s, "r", HISTORY_FULL, T0, "a");
    put_simple(f->s, "r", HISTORY_FULL, T0, "b");
    put_simple(f->s, "r", HISTORY_INCREMENTAL, T0 + HOUR, "a");
    put_simple(f->s, "r", HISTORY_FULL, T0 + 2 * HOUR, "a");
    put_simple(f->s, "r", HISTORY_INCREMENTAL, T0 + 3 * HOUR, "a");
    put_text(f->s, "r/backup/1704117600000/configuration/aerospike_0.conf", "x\n");
    put_simple(f->s, "r", HISTORY_FULL, T0 + 4 * HOUR, "a");
    put_simple(f->s, "r", HISTORY_INCREMENTAL, T0 + 5 * HOUR, "a"); /* newer than the new full */
    put_simple(f->s, "other", HISTORY_FULL, T0, "a");

    struct history_cache *c;
    struct err e = {0};
    assert_int_equal(history_cache_new(&c, &e), 0);
    assert_int_equal(history_cache_refresh(c, "r", f->s, &e), 0);
    /* missing retention: nothing happens */
    assert_int_equal(history_cache_apply_retention(c, "r", f->s, -1, -1, &e), 0);
    assert_true(exists(f, "r/backup/1704110400000/data/a/metadata.yaml"));

    assert_int_equal(history_cache_apply_retention(c, "r", f->s, 2, 0, &e), 0);
    assert_false(exists(f, "r/backup/1704110400000"));       /* F0: third full */
    assert_false(exists(f, "r/incremental/1704114000000"));  /* I1 */
    assert_true(exists(f, "r/backup/1704117600000/configuration/aerospike_0.conf")); /* F2 kept */
    assert_false(exists(f, "r/incremental/1704121200000"));  /* I3: belongs to F2 */
    assert_true(exists(f, "r/backup/1704124800000/data/a/metadata.yaml"));
    assert_true(exists(f, "r/incremental/1704128400000/data/a/metadata.yaml"));
    assert_true(exists(f, "other/backup/1704110400000/data/a/metadata.yaml"));

    /* the cache forgot the deleted folders, and agrees with a fresh load */
    json_t *l = history_list_json(c, NULL, "r", HISTORY_FULL, -1, -1);
    assert_int_equal(json_array_size(l), 2);
    json_decref(l);
    l = history_list_json(c, NULL, "r", HISTORY_INCREMENTAL, -1, -1);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    struct history h;
    assert_int_equal(history_load(f->s, "r", &h, &e), 0);
    assert_int_equal(h.n, 3);
    history_free(&h);

    /* plan + apply without a cache */
    assert_int_equal(history_load(f->s, "r", &h, &e), 0);
    struct history_victims v;
    assert_int_equal(history_retention_plan(&h, 1, 1, &v, &e), 0);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.v[0].folder, "r/backup/1704117600000/");
    assert_int_equal(history_retention_apply(NULL, "r", f->s, &v, &e), 0);
    assert_false(exists(f, "r/backup/1704117600000"));
    history_victims_free(&v);
    history_free(&h);
    history_cache_free(c);
}

/* ---- timing ------------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0700);
            *p = '/';
        }
    }
    mkdir(path, 0700);
}

#define N_BIG 10000 /* backups listed */
#define N_DISK 2000 /* of which written to disk and loaded; the rest come through history_cache_add */

static void test_timing_10000(void **state)
{
    struct temp_fx *f = *state;
    /* N_DISK backups on disk (written directly: no fsync per file), 1 full per 10; the
     * metadata text is what meta_render writes (checked on the first ones). */
    double t_start = now_s();
    char base[300];
    snprintf(base, sizeof base, "%s/big/backup", f->root);
    mkdir_p(base);
    snprintf(base, sizeof base, "%s/big/incremental", f->root);
    mkdir_p(base);
    for (int i = 0; i < N_DISK; i++) {
        bool full = i % 10 == 0;
        int64_t ts = T0 + (int64_t)i * 60000;
        struct backup_meta m = mk_meta("test", ts, full ? META_ZERO_TIME_MS : ts - 60000, 1000);
        m.finished_ms = ts + 1234;
        char created[40], finished[40], from[40], text[512];
        meta_format_time(m.created_ms, created, sizeof created);
        meta_format_time(m.finished_ms, finished, sizeof finished);
        meta_format_time(m.from_ms, from, sizeof from);
        snprintf(text, sizeof text,
                 "created: %s\nfinished: %s\nfrom: %s\nnamespace: test\nrecord-count: 1000\n"
                 "byte-count: 100000\nfile-count: 1\nsecondary-index-count: 0\nudf-count: 0\n"
                 "compression: ZSTD\nencryption: NONE\n",
                 created, finished, from);
        if (i < 2) {
            char *want;
            struct err e = {0};
            assert_int_equal(meta_render(&m, &want, &e), 0);
            assert_string_equal(text, want);
            free(want);
        }
        char dir[512], file[600];
        snprintf(dir, sizeof dir, "%s/big/%s/%" PRId64, f->root, full ? "backup" : "incremental", ts);
        assert_int_equal(mkdir(dir, 0700), 0);
        strcat(dir, "/data");
        assert_int_equal(mkdir(dir, 0700), 0);
        strcat(dir, "/test");
        assert_int_equal(mkdir(dir, 0700), 0);
        snprintf(file, sizeof file, "%s/metadata.yaml", dir);
        FILE *fp = fopen(file, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
    }
    double t_made = now_s();

    struct history_cache *c;
    struct err e = {0};
    assert_int_equal(history_cache_new(&c, &e), 0);
    assert_int_equal(history_cache_refresh(c, "big", f->s, &e), 0);
    double t_loaded = now_s();
    struct history h;
    assert_int_equal(history_cache_snapshot(c, "big", &h, &e), 0);
    assert_int_equal(h.n, N_DISK);
    history_free(&h);
    for (int i = N_DISK; i < N_BIG; i++) {
        bool full = i % 10 == 0;
        int64_t ts = T0 + (int64_t)i * 60000;
        struct backup_meta m = mk_meta("test", ts, full ? META_ZERO_TIME_MS : ts - 60000, 1000);
        m.finished_ms = ts + 1234;
        char folder[128];
        snprintf(folder, sizeof folder, "big/%s/%" PRId64 "/", full ? "backup" : "incremental", ts);
        assert_int_equal(history_cache_add(c, "big", full ? HISTORY_FULL : HISTORY_INCREMENTAL, folder, NULL, &m, &e), 0);
    }
    double t_added = now_s();

    /* Listing all incrementals (9,000) and all fulls (1,000) = 10,000 items, to JSON text:
     * history_list_text (what the API should send), and history_list_json + json_dumps. */
    double best = 1e9, best_tree = 1e9;
    size_t items = 0, bytes = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t1 = now_s();
        char *a, *b;
        size_t la, lb;
        assert_int_equal(history_list_text(c, NULL, "big", HISTORY_INCREMENTAL, -1, -1, &a, &la, &e), 0);
        assert_int_equal(history_list_text(c, NULL, "big", HISTORY_FULL, -1, -1, &b, &lb, &e), 0);
        double dt = now_s() - t1;
        bytes = la + lb;
        if (dt < best)
            best = dt;
        if (rep == 0) {
            json_t *inc = json_loads(a, 0, NULL), *full = json_loads(b, 0, NULL);
            items = json_array_size(inc) + json_array_size(full);
            json_decref(inc);
            json_decref(full);
        }
        free(a);
        free(b);

        t1 = now_s();
        json_t *inc = history_list_json(c, NULL, "big", HISTORY_INCREMENTAL, -1, -1);
        json_t *full = history_list_json(c, NULL, "big", HISTORY_FULL, -1, -1);
        a = json_dumps(inc, JSON_COMPACT);
        b = json_dumps(full, JSON_COMPACT);
        json_decref(inc);
        json_decref(full);
        dt = now_s() - t1;
        assert_int_equal(strlen(a) + strlen(b), bytes);
        free(a);
        free(b);
        if (dt < best_tree)
            best_tree = dt;
    }
    assert_int_equal(items, N_BIG);
    /* Filtered: a 1-hour window. */
    double t2 = now_s();
    json_t *win = history_list_json(c, NULL, "big", HISTORY_INCREMENTAL, T0 + 100 * 60000, T0 + 159 * 60000);
    char *w = json_dumps(win, JSON_COMPACT);
    double dt_win = now_s() - t2;
    assert_int_equal(json_array_size(win), 54);
    free(w);
    json_decref(win);
    double t3 = now_s();
    for (int i = 0; i < 1000; i++)
        assert_true(history_cache_last_success(c, "big", HISTORY_FULL) == T0 + (int64_t)(N_BIG - 10) * 60000);
    double dt_last = (now_s() - t3) / 1000;

    printf("[ history  ] %d backups: layout written in %.0f ms, loaded from local storage in %.0f ms; "
           "%d more added in %.0f ms\n",
           N_DISK, (t_made - t_start) * 1e3, (t_loaded - t_made) * 1e3, N_BIG - N_DISK,
           (t_added - t_loaded) * 1e3);
    printf("[ history  ] listing %zu cached backups to JSON text (%zu bytes): %.1f ms with "
           "history_list_text, %.1f ms with history_list_json + json_dumps (best of 3)\n",
           items, bytes, best * 1e3, best_tree * 1e3);
    printf("[ history  ] filtered listing (54 items): %.3f ms; last_success: %.1f us\n", dt_win * 1e3,
           dt_last * 1e6);
    assert_true(best < 1.0);
    history_cache_free(c);
}

static bool path_exists(const struct temp_fx *f, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", f->root, rel);
    struct stat st;
    return stat(path, &st) == 0;
}

/* A file written straight into the storage directory (a temporary file a crash left). */
static void put_raw(const struct temp_fx *f, const char *dir_rel, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", f->root, dir_rel);
    char *p = path + strlen(f->root) + 1;
    for (char *q = p; *q; q++)
        if (*q == '/') {
            *q = '\0';
            mkdir(path, 0700);
            *q = '/';
        }
    mkdir(path, 0700);
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("partial", fp);
    fclose(fp);
}

/* Start-up clean-up of interrupted runs: a timestamp folder without any metadata.yaml goes
 * whole (temporary and configuration files included), a namespace folder without metadata.yaml
 * goes when its siblings are complete, folders of temporary files only go, complete backups and
 * other routines stay; the history afterwards has no incomplete entries. */
static void test_clean_partial(void **state)
{
    struct temp_fx *f = *state;
    put_backup(f->s, "r", HISTORY_FULL, "1704110400000", "test", T0, 0, true);
    put_backup(f->s, "r", HISTORY_FULL, "1704114000000", "test", T0 + HOUR, 0, false);
    put_text(f->s, "r/backup/1704114000000/configuration/aerospike_0.conf", "namespace test {}\n");
    put_raw(f, "r/backup/1704114000000/data/test", ".0_test_2.asb.tmp-abc123");
    put_backup(f->s, "r", HISTORY_INCREMENTAL, "1704117600000", "a", T0 + 2 * HOUR, T0, true);
    put_backup(f->s, "r", HISTORY_INCREMENTAL, "1704117600000", "b", T0 + 2 * HOUR, T0, false);
    put_raw(f, "r/backup/1704121200000/data/test", ".0_test_1.asb.tmp-xyz789");
    put_backup(f->s, "other", HISTORY_FULL, "1704114000000", "test", T0 + HOUR, 0, false);
    put_text(f->s, "r/backup/not-a-backup/keep.txt", "x");

    struct history h;
    struct err e = {0};
    assert_int_equal(history_load(f->s, "r", &h, &e), 0);
    assert_int_equal(h.incomplete, 2);
    history_free(&h);

    size_t deleted = 99;
    assert_int_equal(history_clean_partial(f->s, "r", &deleted, &e), 0);
    assert_int_equal(deleted, 3);
    assert_true(path_exists(f, "r/backup/1704110400000/data/test/metadata.yaml"));
    assert_false(path_exists(f, "r/backup/1704114000000"));
    assert_true(path_exists(f, "r/incremental/1704117600000/data/a/metadata.yaml"));
    assert_false(path_exists(f, "r/incremental/1704117600000/data/b"));
    assert_false(path_exists(f, "r/backup/1704121200000"));
    assert_true(path_exists(f, "r/backup/not-a-backup/keep.txt"));
    assert_true(path_exists(f, "other/backup/1704114000000/data/test/0_test_1.asb"));

    assert_int_equal(history_load(f->s, "r", &h, &e), 0);
    assert_int_equal(h.incomplete, 0);
    assert_int_equal(h.n, 2);
    history_free(&h);

    /* nothing left to do; a routine without folders is fine; bad names are refused */
    assert_int_equal(history_clean_partial(f->s, "r", &deleted, &e), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(history_clean_partial(f->s, "none", &deleted, &e), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(history_clean_partial(f->s, "a/b", &deleted, &e), ERR_INVALID);
}

/* history_cache_loaded: false until a refresh succeeds (a failed first read is "unknown"). */
static void test_cache_loaded(void **state)
{
    struct temp_fx *f = *state;
    struct history_cache *c;
    struct err e = {0};
    assert_int_equal(history_cache_new(&c, &e), 0);
    assert_false(history_cache_loaded(c, "r"));
    assert_int_equal(history_cache_refresh(c, "bad/name", f->s, &e), ERR_INVALID);
    assert_false(history_cache_loaded(c, "bad/name"));
    struct backup_meta m = mk_meta("test", T0, 0, 1);
    assert_int_equal(history_cache_add(c, "r", HISTORY_FULL, "r/backup/1704110400000/", NULL, &m, &e), 0);
    assert_false(history_cache_loaded(c, "r")); /* a job's backup does not make it known */
    assert_int_equal(history_cache_refresh(c, "r", f->s, &e), 0);
    assert_true(history_cache_loaded(c, "r"));
    history_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_empty_and_oversized_metadata, setup, teardown),
        cmocka_unit_test(test_insert_remove),
        cmocka_unit_test_setup_teardown(test_cache_refresh_add_last_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_refresh_races_with_add_and_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_json, setup, teardown),
        cmocka_unit_test(test_retention_table),
        cmocka_unit_test_setup_teardown(test_retention_apply_storage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timing_10000, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_loaded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
