/*
 * test_as_live.c - the native client against the protocol emulator (tests/emulator), started
 * as a child process on loopback with two nodes: cluster discovery and tend, info helpers,
 * sindex/UDF round trips, batch and single writes with their policies and result codes,
 * full / partition / set / bin-list / no-bin / max-records / filtered scans, parallel scans,
 * and the retry paths (connection closed mid-stream, unavailable partitions, partitions
 * moving between nodes, cancellation); the user agent sent on tend connections;
 * use-services-alternate; a node leaving a 3-node cluster in the middle of a scan (dropped
 * from the view and the partition map, its partitions re-scanned on the new owners) and
 * coming back.
 *
 * The emulator binary is found through $ABS_EMULATOR or next to this test
 * (<build>/tests/emulator/aerospike-emulator); without it every test is skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aerospike/as_cluster.h"
#include "aerospike/as_exp.h"
#include "aerospike/as_info.h"
#include "aerospike/as_scan.h"
#include "aerospike/as_write.h"
#include "version.h"

#include "emu_launch.h"

#define N_RECORDS 2000

static struct emu_proc g_emu = { .pid = -1 };
static struct as_cluster *g_cluster;

/* ---- emulator process -------------------------------------------------------------------- */

/* Another emulator for one test: `nodes` nodes plus extra arguments; 0 or -1. */
static int start_emu2(struct emu_proc *em, const char *nodes, const char *a1, const char *a2)
{
    char port_file[128];
    snprintf(port_file, sizeof port_file, "/tmp/as-live2-%d.ports", (int)getpid());
    const char *args[] = { "--nodes", nodes, a1, a2, NULL };
    return emu_proc_start(em, port_file, atoi(nodes), args);
}

static int start_emulator(void)
{
    char port_file[128];
    snprintf(port_file, sizeof port_file, "/tmp/as-live-%d.ports", (int)getpid());
    const char *args[] = { "--nodes", "2", "--namespace", "test", "--namespace", "bar:2", NULL };
    return emu_proc_start(&g_emu, port_file, 2, args);
}

static int group_setup(void **state)
{
    (void)state;
    if (start_emulator() != 0)
        return 0; /* tests skip */
    return emu_cluster_new(g_emu.ports[0], &g_cluster);
}

static int group_teardown(void **state)
{
    (void)state;
    emu_cluster_close(&g_cluster, &g_emu);
    return 0;
}

#define NEED_EMULATOR() EMU_SKIP_WITHOUT(g_cluster)

/* Runs an info command on the first node and returns its value (static buffer). */
static const char *info1(const char *cmd)
{
    static char buf[4096];
    struct as_node *n = as_cluster_random_node(g_cluster);
    assert_non_null(n);
    char *v;
    struct err e;
    int rc = as_info_node_value(n, cmd, &v, NULL, &e);
    as_node_release(n);
    if (rc)
        fail_msg("%s: %s", cmd, e.msg);
    snprintf(buf, sizeof buf, "%s", v);
    free(v);
    return buf;
}

/* ---- data ---------------------------------------------------------------------------------- */

struct rec_store {
    struct as_record rec;
    struct as_bin bins[8];
    char s[32];
    uint8_t list[16];
    uint8_t map[16];
    char set[8];
};

static const char GEO[] = "{\"type\":\"Point\",\"coordinates\":[1.5,2.5]}";

static void make_record(struct rec_store *r, const char *ns, int64_t k, struct err *e)
{
    memset(r, 0, sizeof *r);
    const char *set = k % 3 == 0 ? "s1" : k % 3 == 1 ? "s2" : "";
    snprintf(r->set, sizeof r->set, "%s", set);
    r->rec.ns = ns;
    r->rec.ns_len = (uint32_t)strlen(ns);
    r->rec.set = r->set;
    r->rec.set_len = (uint32_t)strlen(set);
    assert_int_equal(as_digest_int(set, k, r->rec.digest, e), 0);
    r->rec.key.type = AS_PARTICLE_INTEGER;
    r->rec.key.i = k;
    r->rec.generation = 1;
    uint32_t nb = 0;
    r->bins[nb++] = (struct as_bin){ "i", 1, { .type = AS_PARTICLE_INTEGER, .i = k } };
    int sl = snprintf(r->s, sizeof r->s, "v%lld", (long long)k);
    r->bins[nb++] = (struct as_bin){ "s", 1, { .type = AS_PARTICLE_STRING, .data = (uint8_t *)r->s, .len = (uint32_t)sl } };
    r->bins[nb++] = (struct as_bin){ "d", 1, { .type = AS_PARTICLE_FLOAT, .d = (double)k / 2 } };
    r->bins[nb++] = (struct as_bin){ "b", 1, { .type = AS_PARTICLE_BOOL, .b = k % 2 } };
    r->list[0] = 0x91; /* [k & 0x7f] */
    r->list[1] = (uint8_t)(k & 0x7f);
    r->bins[nb++] = (struct as_bin){ "l", 1, { .type = AS_PARTICLE_LIST, .data = r->list, .len = 2 } };
    const uint8_t m[] = { 0x81, 0xa2, 0x03, 0x61, (uint8_t)(k & 0x7f) }; /* {"a": k & 0x7f} */
    memcpy(r->map, m, sizeof m);
    r->bins[nb++] = (struct as_bin){ "m", 1, { .type = AS_PARTICLE_MAP, .data = r->map, .len = sizeof m } };
    if (k % 100 == 0)
        r->bins[nb++] = (struct as_bin){ "g", 1, { .type = AS_PARTICLE_GEOJSON, .data = (const uint8_t *)GEO,
                                                   .len = (uint32_t)strlen(GEO) } };
    r->rec.n_bins = nb;
    r->rec.bins = r->bins;
}

/* Writes keys [from, to) of ns in batches of 128; all must answer `want`. */
static void write_range(const char *ns, int64_t from, int64_t to, const struct as_write_policy *p, int want)
{
    struct as_writer *w;
    struct err e;
    assert_int_equal(as_writer_new(&w, &e), 0);
    struct rec_store *rs = calloc(128, sizeof *rs);
    struct as_write_item items[128];
    for (int64_t k = from; k < to;) {
        size_t n = 0;
        for (; n < 128 && k < to; n++, k++) {
            make_record(&rs[n], ns, k, &e);
            items[n] = (struct as_write_item){ .rec = &rs[n].rec, .ttl = AS_TTL_NEVER_EXPIRE };
        }
        int rc = as_write_batch(w, g_cluster, p, items, n, &e);
        if (rc)
            fail_msg("batch: %s", e.msg);
        for (size_t i = 0; i < n; i++)
            if (items[i].result != want)
                fail_msg("row %zu: result %d, want %d", i, items[i].result, want);
    }
    free(rs);
    as_writer_free(w);
}

/* ---- scan helpers ------------------------------------------------------------------------------ */

struct seen {
    uint8_t *hits; /* per key */
    size_t n_keys;
    _Atomic uint64_t records;
    _Atomic uint64_t dups;
    _Atomic uint64_t bad;
    size_t bins_min, bins_max;
    pthread_mutex_t mu;
};

static void seen_init(struct seen *s, size_t n_keys)
{
    memset(s, 0, sizeof *s);
    s->hits = calloc(n_keys, 1);
    s->n_keys = n_keys;
    s->bins_min = SIZE_MAX;
    pthread_mutex_init(&s->mu, NULL);
}

static void seen_free(struct seen *s)
{
    free(s->hits);
    pthread_mutex_destroy(&s->mu);
}

static int on_record(void *ctx, const struct as_record *r, struct err *e)
{
    struct seen *s = ctx;
    atomic_fetch_add(&s->records, 1);
    if (r->key.type != AS_PARTICLE_INTEGER || r->key.i < 0 || (size_t)r->key.i >= s->n_keys) {
        atomic_fetch_add(&s->bad, 1);
        return 0;
    }
    int64_t k = r->key.i;
    for (uint32_t i = 0; i < r->n_bins; i++) {
        const struct as_bin *b = &r->bins[i];
        if (b->name_len != 1)
            continue;
        bool ok = true;
        switch (b->name[0]) {
        case 'i': ok = b->v.type == AS_PARTICLE_INTEGER && b->v.i == k; break;
        case 'd': ok = b->v.type == AS_PARTICLE_FLOAT && b->v.d == (double)k / 2; break;
        case 'b': ok = b->v.type == AS_PARTICLE_BOOL && b->v.b == (k % 2); break;
        case 'g': ok = b->v.type == AS_PARTICLE_GEOJSON && b->v.len == strlen(GEO) &&
                       memcmp(b->v.data, GEO, b->v.len) == 0; break;
        case 'l': ok = b->v.type == AS_PARTICLE_LIST && b->v.len == 2 && b->v.data[1] == (k & 0x7f); break;
        case 's': {
            char want[32];
            int wl = snprintf(want, sizeof want, "v%lld", (long long)k);
            ok = b->v.type == AS_PARTICLE_STRING && b->v.len == (uint32_t)wl && memcmp(b->v.data, want, wl) == 0;
            break;
        }
        default: break;
        }
        if (!ok)
            atomic_fetch_add(&s->bad, 1);
    }
    const char *set = k % 3 == 0 ? "s1" : k % 3 == 1 ? "s2" : "";
    if (r->set_len != strlen(set) || (r->set_len && memcmp(r->set, set, r->set_len) != 0))
        atomic_fetch_add(&s->bad, 1);
    pthread_mutex_lock(&s->mu);
    if (s->hits[k]++)
        atomic_fetch_add(&s->dups, 1);
    if (r->n_bins < s->bins_min)
        s->bins_min = r->n_bins;
    if (r->n_bins > s->bins_max)
        s->bins_max = r->n_bins;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int scan_all(const struct as_scan_policy *p, uint32_t begin, uint32_t count, struct seen *s,
                    struct as_scan_stats *st, struct err *e)
{
    struct as_scanner *sc;
    assert_int_equal(as_scanner_new(&sc, e), 0);
    struct as_scan_parts parts;
    assert_int_equal(as_scan_parts_range(&parts, begin, count, e), 0);
    int rc = as_scan_run(sc, g_cluster, p, &parts, on_record, s, st, e);
    as_scan_parts_free(&parts);
    as_scanner_free(sc);
    return rc;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_live_cluster(void **state)
{
    (void)state;
    NEED_EMULATOR();
    assert_int_equal(as_cluster_node_count(g_cluster), 2);
    assert_int_equal(as_cluster_ns_replicas(g_cluster, "test"), 1);
    assert_int_equal(as_cluster_ns_replicas(g_cluster, "bar"), 2);
    struct as_node **nodes;
    size_t n;
    struct err e;
    assert_int_equal(as_cluster_nodes(g_cluster, &nodes, &n, &e), 0);
    unsigned owned[2] = { 0, 0 };
    for (uint32_t p = 0; p < AS_PARTITIONS; p++) {
        struct as_node *m = as_cluster_partition_node(g_cluster, "test", p, 0);
        assert_non_null(m);
        owned[m == nodes[0] ? 0 : 1]++;
        struct as_node *r1 = as_cluster_partition_node(g_cluster, "bar", p, 1);
        struct as_node *m1 = as_cluster_partition_node(g_cluster, "bar", p, 0);
        assert_non_null(r1);
        assert_ptr_not_equal(r1, m1); /* RF 2: the prole is the other node */
        as_node_release(r1);
        as_node_release(m1);
        as_node_release(m);
    }
    assert_true(owned[0] > 0 && owned[1] > 0);
    assert_int_equal(owned[0] + owned[1], 4096);
    for (size_t i = 0; i < n; i++) {
        char build[32], id[32];
        assert_int_equal(as_info_build(nodes[i], build, sizeof build, &e), 0);
        assert_string_equal(build, "8.1.2.0");
        assert_int_equal(as_info_node_id(nodes[i], id, sizeof id, &e), 0);
        assert_string_equal(id, as_node_name(nodes[i]));
        struct as_node *byname = as_cluster_node_by_name(g_cluster, id);
        assert_ptr_equal(byname, nodes[i]);
        as_node_release(byname);
        int64_t pg;
        assert_int_equal(as_info_partition_generation(nodes[i], &pg, &e), 0);
        struct as_strv ns;
        assert_int_equal(as_info_namespaces(nodes[i], &ns, &e), 0);
        assert_int_equal(ns.n, 2);
        as_strv_free(&ns);
        struct as_ns_info ni;
        assert_int_equal(as_info_namespace(nodes[i], "bar", &ni, &e), 0);
        assert_int_equal(ni.replication_factor, 2);
        assert_int_equal(as_info_namespace(nodes[i], "nosuch", &ni, &e), ERR_NOT_FOUND);
        char *cfg;
        assert_int_equal(as_info_get_config(nodes[i], "service", NULL, &cfg, &e), 0);
        free(cfg);
    }
    /* the tend thread runs while the cluster is held */
    uint64_t t0 = as_cluster_tend_count(g_cluster);
    as_cluster_hold(g_cluster);
    as_sleep_ms(700, NULL);
    as_cluster_unhold(g_cluster);
    assert_true(as_cluster_tend_count(g_cluster) >= t0 + 2);
    /* moving partitions: the next tend sees the new partition-generation and re-reads replicas */
    char cmd[64];
    struct as_node *before = as_cluster_partition_node(g_cluster, "test", 7, 0);
    int target = before == nodes[0] ? 1 : 0;
    snprintf(cmd, sizeof cmd, "emulator-move:pid=0-99;node=%d", target);
    info1(cmd);
    assert_int_equal(as_cluster_tend(g_cluster, &e), 0);
    struct as_node *after = as_cluster_partition_node(g_cluster, "test", 7, 0);
    assert_ptr_equal(after, nodes[target]);
    as_node_release(before);
    as_node_release(after);
    as_nodes_release(nodes, n);
}

static void test_live_sindex_udf(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct as_node *n = as_cluster_random_node(g_cluster);
    struct err e;
    struct as_sindex_info si = { .ns = "test", .name = "idx_age", .set = "s1", .bin = "i",
                                 .type = "numeric", .index_type = "default" };
    assert_int_equal(as_info_sindex_create(n, &si, &e), 0);
    struct as_sindex_info ctx = { .ns = "test", .name = "idx_lvl", .bin = "m", .type = "numeric",
                                  .index_type = "default", .context = "kiKkA2x2bA==" };
    assert_int_equal(as_info_sindex_create(n, &ctx, &e), 0);
    struct as_sindex_info *list;
    size_t count;
    assert_int_equal(as_info_sindex_list(n, "test", &list, &count, &e), 0);
    bool found = false, found_ctx = false;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(list[i].name, "idx_age") == 0) {
            found = true;
            assert_string_equal(list[i].set, "s1");
            assert_string_equal(list[i].bin, "i");
            assert_string_equal(list[i].type, "numeric");
        }
        if (strcmp(list[i].name, "idx_lvl") == 0) {
            found_ctx = true;
            assert_string_equal(list[i].set, "");
            assert_non_null(list[i].context);
            assert_string_equal(list[i].context, "kiKkA2x2bA==");
        }
    }
    assert_true(found && found_ctx);
    as_sindex_list_free(list, count);
    assert_int_equal(as_info_sindex_list(n, "nosuch", &list, &count, &e), ERR_NOT_FOUND);

    const char lua[] = "-- test module\nfunction hello(rec)\n  return 1\nend\n";
    assert_int_equal(as_info_udf_put(n, "t.lua", (const uint8_t *)lua, strlen(lua), &e), 0);
    struct as_udf_info *udfs;
    assert_int_equal(as_info_udf_list(n, &udfs, &count, &e), 0);
    bool have = false;
    for (size_t i = 0; i < count; i++)
        have |= strcmp(udfs[i].name, "t.lua") == 0;
    free(udfs);
    assert_true(have);
    uint8_t *content;
    size_t len;
    assert_int_equal(as_info_udf_get(n, "t.lua", &content, &len, &e), 0);
    assert_int_equal(len, strlen(lua));
    assert_memory_equal(content, lua, len);
    free(content);
    assert_int_equal(as_info_udf_get(n, "missing.lua", &content, &len, &e), ERR_NOT_FOUND);
    as_node_release(n);
}

static void test_live_writes(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct as_write_policy p = { .gen = AS_GEN_GT, .send_key = true, .total_timeout_ms = 5000 };
    write_range("test", 0, N_RECORDS, &p, 0);
    /* GEN_GT with the same generation over existing records: 3; create-only: 5 */
    write_range("test", 0, 300, &p, AS_ERR_GENERATION);
    p.gen = AS_GEN_IGNORE;
    p.exists = AS_EXISTS_CREATE;
    write_range("test", 0, 300, &p, AS_ERR_RECORD_EXISTS);
    p.exists = AS_EXISTS_UPDATE;
    write_range("test", N_RECORDS, N_RECORDS + 10, &p, AS_ERR_NOT_FOUND);
    p.exists = AS_EXISTS_REPLACE;
    write_range("test", 0, 10, &p, 0);

    /* single put: result, generation and void-time come back */
    struct as_writer *w;
    struct err e;
    assert_int_equal(as_writer_new(&w, &e), 0);
    struct rec_store r;
    make_record(&r, "test", 5, &e);
    struct as_write_item it = { .rec = &r.rec, .ttl = AS_TTL_NEVER_EXPIRE };
    p.exists = AS_EXISTS_IGNORE;
    assert_int_equal(as_write_put(w, g_cluster, &p, &it, &e), 0);
    assert_int_equal(it.result, 0);
    assert_true(it.generation >= 2);
    assert_int_equal(it.void_time, 0);
    it.ttl = 3600;
    assert_int_equal(as_write_put(w, g_cluster, &p, &it, &e), 0);
    assert_true(it.void_time > 0);
    it.ttl = AS_TTL_NEVER_EXPIRE;
    assert_int_equal(as_write_put(w, g_cluster, &p, &it, &e), 0);
    /* an unknown namespace is a final answer (20), not a retry */
    struct rec_store bad;
    make_record(&bad, "nosuch", 1, &e);
    struct as_write_item bi = { .rec = &bad.rec, .ttl = 0 };
    assert_int_equal(as_write_put(w, g_cluster, &p, &bi, &e), 0);
    assert_int_equal(bi.result, AS_ERR_NAMESPACE);
    as_writer_free(w);
}

static void test_live_scans(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct err e;
    struct seen s;
    struct as_scan_stats st;
    struct as_scan_policy p = { .ns = "test" };
    seen_init(&s, N_RECORDS);
    assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), 0);
    assert_int_equal(s.records, N_RECORDS);
    assert_int_equal(s.dups, 0);
    assert_int_equal(s.bad, 0);
    assert_int_equal(st.node_requests, 2);
    assert_int_equal(st.rounds, 1);
    seen_free(&s);

    /* two halves = the whole */
    seen_init(&s, N_RECORDS);
    assert_int_equal(scan_all(&p, 0, 2048, &s, &st, &e), 0);
    assert_int_equal(scan_all(&p, 2048, 2048, &s, &st, &e), 0);
    assert_int_equal(s.records, N_RECORDS);
    assert_int_equal(s.dups, 0);
    seen_free(&s);

    /* set, bin list, no bins, max records */
    p.set = "s1";
    seen_init(&s, N_RECORDS);
    assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), 0);
    assert_int_equal(s.records, (N_RECORDS + 2) / 3);
    assert_int_equal(s.bad, 0);
    seen_free(&s);
    p.set = NULL;
    const char *bins[] = { "i", "s" };
    p.bins = bins;
    p.n_bins = 2;
    seen_init(&s, N_RECORDS);
    assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), 0);
    assert_int_equal(s.records, N_RECORDS);
    assert_int_equal(s.bins_max, 2);
    assert_int_equal(s.bins_min, 2);
    seen_free(&s);
    p.bins = NULL;
    p.n_bins = 0;
    p.no_bins = true;
    seen_init(&s, N_RECORDS);
    assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), 0);
    assert_int_equal(s.records, N_RECORDS);
    assert_int_equal(s.bins_max, 0);
    seen_free(&s);
    p.no_bins = false;
    p.max_records = 10;
    seen_init(&s, N_RECORDS);
    assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), 0);
    assert_int_equal(s.records, 10);
    seen_free(&s);
    p.max_records = 1500;
    seen_init(&s, N_RECORDS);
    assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), 0);
    assert_int_equal(s.records, 1500);
    assert_int_equal(s.dups, 0);
    seen_free(&s);
    p.max_records = 0;

    /* node restriction: only the partitions the first node masters */
    struct as_node *n0 = as_cluster_random_node(g_cluster);
    const char *only[] = { as_node_name(n0) };
    p.nodes = only;
    p.n_nodes = 1;
    seen_init(&s, N_RECORDS);
    assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), 0);
    assert_true(s.records > 0 && s.records < N_RECORDS);
    assert_int_equal(st.node_requests, 1);
    seen_free(&s);
    as_node_release(n0);
    p.nodes = NULL;
    p.n_nodes = 0;

    /* resume after a digest: the records strictly after it in its partition, plus the rest */
    struct as_scanner *sc;
    assert_int_equal(as_scanner_new(&sc, &e), 0);
    struct as_scan_parts parts;
    uint8_t d[20];
    assert_int_equal(as_digest_int("s1", 0, d, &e), 0);
    assert_int_equal(as_scan_parts_after_digest(&parts, d, &e), 0);
    seen_init(&s, N_RECORDS);
    assert_int_equal(as_scan_run(sc, g_cluster, &p, &parts, on_record, &s, &st, &e), 0);
    assert_int_equal(s.hits[0], 0); /* the boundary record itself is not returned */
    assert_int_equal(as_scan_parts_pending(&parts), 0);
    seen_free(&s);
    as_scan_parts_free(&parts);
    as_scanner_free(sc);

    /* errors: unknown namespace, unknown set */
    p.ns = "nosuch";
    seen_init(&s, N_RECORDS);
    assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), ERR_NOT_FOUND);
    p.ns = "test";
    p.set = "nosuchset";
    int rc = scan_all(&p, 0, 4096, &s, &st, &e);
    if (rc) { /* a real 8.1 server answers 4; then the policy decides */
        assert_int_equal(st.result, AS_ERR_PARAMETER);
        p.unknown_set_empty = true;
        assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), 0);
    }
    assert_int_equal(s.records, 0);
    seen_free(&s);
}

static void test_live_filtered_scan(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct as_write_policy wp = { .total_timeout_ms = 5000, .send_key = true };
    write_range("bar", 0, 500, &wp, 0);
    as_sleep_ms(30, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    as_sleep_ms(30, NULL);
    write_range("bar", 500, 800, &wp, 0);

    struct as_buf f;
    as_buf_init(&f);
    struct err e;
    struct seen s;
    struct as_scan_stats st;
    struct as_scan_policy p = { .ns = "bar" };
    struct { uint64_t after, before; uint64_t want; } cases[] = {
        { t, 0, 300 }, { 0, t, 500 }, { t - 10000000000ull, t, 500 }, { t, t + 10000000000ull, 300 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        as_buf_reset(&f);
        as_exp_lut_range(&f, cases[i].after, cases[i].before);
        p.filter = f.data;
        p.filter_len = f.len;
        seen_init(&s, 1000);
        assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), 0);
        assert_int_equal(s.records, cases[i].want);
        assert_int_equal(s.dups, 0);
        seen_free(&s);
    }
    /* set filter, OR, NOT */
    const char *two[] = { "s1", "s2" };
    as_buf_reset(&f);
    as_exp_not(&f);
    as_exp_set_in(&f, two, 2);
    p.filter = f.data;
    p.filter_len = f.len;
    seen_init(&s, 1000);
    assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), 0);
    assert_int_equal(s.records, 800 / 3); /* keys with k % 3 == 2 have no set */
    seen_free(&s);
    as_buf_free(&f);
}

struct par {
    uint32_t begin;
    struct seen *s;
    int rc;
};

static void *par_scan(void *arg)
{
    struct par *x = arg;
    struct as_scan_policy p = { .ns = "test" };
    struct as_scan_stats st;
    struct err e;
    x->rc = scan_all(&p, x->begin, 1024, x->s, &st, &e);
    return NULL;
}

static void test_live_parallel_scans(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct seen s;
    seen_init(&s, N_RECORDS);
    pthread_t th[4];
    struct par x[4];
    for (int i = 0; i < 4; i++) {
        x[i] = (struct par){ .begin = (uint32_t)i * 1024, .s = &s };
        pthread_create(&th[i], NULL, par_scan, &x[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(x[i].rc, 0);
    }
    assert_int_equal(s.records, N_RECORDS);
    assert_int_equal(s.dups, 0);
    seen_free(&s);
}

static void *clear_unavailable(void *arg)
{
    (void)arg;
    as_sleep_ms(400, NULL);
    info1("emulator-fault:unavailable=none");
    return NULL;
}

static volatile bool g_cancel;

static int cancel_after_100(void *ctx, const struct as_record *r, struct err *e)
{
    struct seen *s = ctx;
    if (atomic_load(&s->records) >= 100)
        g_cancel = true;
    return on_record(ctx, r, e);
}

static void test_live_scan_faults(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct err e;
    struct seen s;
    struct as_scan_stats st;
    struct as_scan_policy p = { .ns = "test", .total_timeout_ms = 30000, .retry_sleep_ms = 10 };

    /* the server drops the connection after 400 records of every request: resume points */
    info1("emulator-fault:close-after-records=400");
    seen_init(&s, N_RECORDS);
    int rc = scan_all(&p, 0, 4096, &s, &st, &e);
    info1("emulator-fault:close-after-records=0");
    if (rc)
        fail_msg("%s", e.msg);
    assert_int_equal(s.records, N_RECORDS);
    assert_int_equal(s.dups, 0);
    assert_true(st.rounds > 1);
    assert_true(st.partitions_retried > 0);
    seen_free(&s);

    /* partitions answered unavailable for a while, then served */
    info1("emulator-fault:unavailable=0-299");
    pthread_t th;
    pthread_create(&th, NULL, clear_unavailable, NULL);
    seen_init(&s, N_RECORDS);
    rc = scan_all(&p, 0, 4096, &s, &st, &e);
    pthread_join(th, NULL);
    if (rc)
        fail_msg("%s", e.msg);
    assert_int_equal(s.records, N_RECORDS);
    assert_int_equal(s.dups, 0);
    assert_true(st.partitions_retried >= 300);
    seen_free(&s);

    /* permanently unavailable: gives up after max_retries */
    info1("emulator-fault:unavailable=10-19");
    p.total_timeout_ms = 0;
    p.max_retries = 2;
    seen_init(&s, N_RECORDS);
    assert_int_equal(scan_all(&p, 0, 4096, &s, &st, &e), ERR_UNAVAILABLE);
    assert_non_null(strstr(e.msg, "10 partitions"));
    seen_free(&s);
    info1("emulator-fault:unavailable=none");

    /* cancellation */
    g_cancel = false;
    p.cancel = &g_cancel;
    struct as_scanner *sc;
    assert_int_equal(as_scanner_new(&sc, &e), 0);
    struct as_scan_parts parts;
    assert_int_equal(as_scan_parts_range(&parts, 0, 4096, &e), 0);
    seen_init(&s, N_RECORDS);
    assert_int_equal(as_scan_run(sc, g_cluster, &p, &parts, cancel_after_100, &s, &st, &e), ERR_UNAVAILABLE);
    assert_true(st.cancelled);
    assert_true(s.records < N_RECORDS);
    /* ... and resumed with the same partition set: every record exactly once overall */
    g_cancel = false;
    p.cancel = NULL;
    assert_int_equal(as_scan_run(sc, g_cluster, &p, &parts, on_record, &s, &st, &e), 0);
    assert_int_equal(s.records, N_RECORDS);
    assert_int_equal(s.dups, 0);
    seen_free(&s);
    as_scan_parts_free(&parts);
    as_scanner_free(sc);
}

/* ---- user agent, alternate addresses, node removal ------------------------------------------- */

static void test_live_user_agent(void **state)
{
    (void)state;
    NEED_EMULATOR();
    /* every node got "1,c-abs-<version>,not-set" on its tend connection */
    const char *v = info1("user-agents");
    const char *p = strstr(v, "user-agent=");
    assert_non_null(p);
    p += strlen("user-agent=");
    size_t n = strcspn(p, ":");
    uint8_t dec[128];
    long dl = as_b64_decode(p, n, dec);
    assert_true(dl > 0 && dl < (long)sizeof dec);
    dec[dl] = 0;
    assert_string_equal((const char *)dec, "1,c-abs-" ABS_VERSION ",not-set");
    assert_non_null(strstr(p, ":count="));
}

static void test_live_services_alternate(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct emu_proc em;
    assert_int_equal(start_emu2(&em, "2", "--alt-host", "localhost"), 0);
    struct as_host h = { .name = "127.0.0.1", .port = (uint16_t)em.ports[0] };
    struct as_cluster_config cfg = { .seeds = &h, .n_seeds = 1, .connect_timeout_ms = 2000,
                                     .use_services_alternate = true };
    struct as_cluster *c;
    struct err e;
    if (as_cluster_new(&cfg, &c, &e) != 0)
        fail_msg("%s", e.msg);
    /* the peer is reached on its alternate address */
    assert_int_equal(as_cluster_node_count(c), 2);
    struct as_node *n2 = as_cluster_node_by_name(c, "BB9000000000002");
    assert_non_null(n2);
    char want[64];
    snprintf(want, sizeof want, "localhost:%d", em.ports[1]);
    assert_string_equal(as_node_address(n2), want);
    as_node_release(n2);
    as_cluster_free(c);
    /* without the option the standard addresses are used */
    cfg.use_services_alternate = false;
    assert_int_equal(as_cluster_new(&cfg, &c, &e), 0);
    n2 = as_cluster_node_by_name(c, "BB9000000000002");
    assert_non_null(n2);
    snprintf(want, sizeof want, "127.0.0.1:%d", em.ports[1]);
    assert_string_equal(as_node_address(n2), want);
    as_node_release(n2);
    as_cluster_free(c);
    emu_proc_stop(&em);
}

#define GEN_RECORDS 6000

struct gen_seen {
    uint8_t hits[GEN_RECORDS];
    _Atomic uint64_t records, dups, bad;
    pthread_mutex_t mu;
    uint8_t victim_parts[AS_PARTITIONS]; /* partitions of the node to stop */
    unsigned victim_records;
    int stop_port;                       /* > 0: stop node 3 through this port ... */
    unsigned stop_after;                 /* ... after this many of its records */
};

static void send_knob(int port, const char *cmd)
{
    struct as_conn c;
    struct err e;
    if (as_conn_open(&c, "127.0.0.1", (uint16_t)port, NULL, NULL, 2000, &e) == 0) {
        struct as_buf reply;
        as_buf_init(&reply);
        as_info_exec(&c, cmd, &reply, as_deadline_in(5000), 0, &e);
        as_buf_free(&reply);
        as_conn_close(&c);
    }
}

static int on_generated(void *ctx, const struct as_record *r, struct err *e)
{
    struct gen_seen *s = ctx;
    atomic_fetch_add(&s->records, 1);
    char k[32];
    if (r->key.type != AS_PARTICLE_STRING || r->key.len >= sizeof k) {
        atomic_fetch_add(&s->bad, 1);
        return 0;
    }
    memcpy(k, r->key.data, r->key.len);
    k[r->key.len] = 0;
    long i = strncmp(k, "key-", 4) == 0 ? atol(k + 4) : -1;
    if (i < 0 || i >= GEN_RECORDS) {
        atomic_fetch_add(&s->bad, 1);
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    if (s->hits[i]++)
        atomic_fetch_add(&s->dups, 1);
    bool stop = s->victim_parts[as_partition_id(r->digest)] && ++s->victim_records == s->stop_after &&
                s->stop_port > 0;
    pthread_mutex_unlock(&s->mu);
    if (stop) /* the node leaves while its scan stream is open */
        send_knob(s->stop_port, "emulator-node-stop:2");
    return 0;
}

static unsigned owned_by(struct as_cluster *c, const char *node)
{
    unsigned k = 0;
    for (uint32_t p = 0; p < AS_PARTITIONS; p++) {
        struct as_node *n = as_cluster_partition_node(c, "test", p, 0);
        if (n && strcmp(as_node_name(n), node) == 0)
            k++;
        if (n)
            as_node_release(n);
    }
    return k;
}

static void test_live_node_leaves_mid_scan(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct emu_proc em;
    char gen[32];
    snprintf(gen, sizeof gen, "test:%d", GEN_RECORDS);
    assert_int_equal(start_emu2(&em, "3", "--generate", gen), 0);
    struct as_host h = { .name = "127.0.0.1", .port = (uint16_t)em.ports[0] };
    struct as_cluster_config cfg = { .seeds = &h, .n_seeds = 1, .connect_timeout_ms = 2000,
                                     .tend_interval_ms = 100 };
    struct as_cluster *c;
    struct err e;
    if (as_cluster_new(&cfg, &c, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(as_cluster_node_count(c), 3);
    assert_true(owned_by(c, "BB9000000000003") > 0);
    as_cluster_hold(c);

    /* node 3 stops after streaming 100 of its records (the scan is throttled so that the rest
     * of its stream is still to come) */
    struct gen_seen *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    for (uint32_t pid = 0; pid < AS_PARTITIONS; pid++) {
        struct as_node *n = as_cluster_partition_node(c, "test", pid, 0);
        s->victim_parts[pid] = n && strcmp(as_node_name(n), "BB9000000000003") == 0;
        if (n)
            as_node_release(n);
    }
    s->stop_port = em.ports[0];
    s->stop_after = 100;
    struct as_scan_policy p = { .ns = "test", .records_per_second = 3000, .total_timeout_ms = 60000,
                                .retry_sleep_ms = 50 };
    struct as_scanner *sc;
    assert_int_equal(as_scanner_new(&sc, &e), 0);
    struct as_scan_parts parts;
    assert_int_equal(as_scan_parts_range(&parts, 0, 4096, &e), 0);
    struct as_scan_stats stats;
    int rc = as_scan_run(sc, c, &p, &parts, on_generated, s, &stats, &e);
    if (rc)
        fail_msg("scan: %s", e.msg);
    /* every record exactly once, the stopped node's partitions re-scanned on their new owners */
    assert_int_equal(s->records, GEN_RECORDS);
    assert_int_equal(s->dups, 0);
    assert_int_equal(s->bad, 0);
    assert_true(stats.rounds > 1);
    assert_true(stats.partitions_retried > 0);
    as_scan_parts_free(&parts);

    /* the node is dropped from the view and from the partition map */
    for (int i = 0; i < 100 && as_cluster_node_count(c) != 2; i++)
        as_sleep_ms(50, NULL);
    assert_int_equal(as_cluster_node_count(c), 2);
    struct as_node *gone = as_cluster_node_by_name(c, "BB9000000000003");
    assert_null(gone);
    assert_int_equal(owned_by(c, "BB9000000000003"), 0);
    assert_int_equal(owned_by(c, "BB9000000000001") + owned_by(c, "BB9000000000002"), AS_PARTITIONS);

    /* it comes back: the tend finds it through the peers lists, a full scan still sees all */
    s->stop_port = 0;
    send_knob(em.ports[0], "emulator-node-start:2");
    for (int i = 0; i < 100 && as_cluster_node_count(c) != 3; i++)
        as_sleep_ms(50, NULL);
    assert_int_equal(as_cluster_node_count(c), 3);
    for (int i = 0; i < 100 && owned_by(c, "BB9000000000003") == 0; i++)
        as_sleep_ms(50, NULL);
    assert_true(owned_by(c, "BB9000000000003") > 0);
    memset(s->hits, 0, sizeof s->hits);
    s->records = 0;
    p.records_per_second = 0;
    assert_int_equal(as_scan_parts_range(&parts, 0, 4096, &e), 0);
    assert_int_equal(as_scan_run(sc, c, &p, &parts, on_generated, s, &stats, &e), 0);
    assert_int_equal(s->records, GEN_RECORDS);
    assert_int_equal(stats.node_requests, 3);
    as_scan_parts_free(&parts);
    as_scanner_free(sc);
    pthread_mutex_destroy(&s->mu);
    free(s);
    as_cluster_unhold(c);
    as_cluster_free(c);
    emu_proc_stop(&em);
}

/* The client's start-up tend on a single node sends what C client 7.3.0 sent in the capture
 * (wire/a-info-commands tend-asbackup-single-node), request by request on one connection; only
 * the user agent's client part differs ("c-abs-<version>" for "c-7.3.0"). */
static void test_live_tend_requests_as_captured(void **state)
{
    (void)state;
    NEED_EMULATOR();
    char want[8][128];
    size_t n_want = 0;
    FILE *f = fopen(TEST_DATA_DIR "/wire/tend-asbackup-single-node.start.jsonl", "r");
    assert_non_null(f);
    char line[8192];
    while (fgets(line, sizeof line, f) && n_want < 8) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        const char *dir = json_string_value(json_object_get(j, "dir"));
        const char *hex = json_string_value(json_object_get(j, "hex"));
        if (strcmp(dir, "c2s") == 0) {
            size_t hl = strlen(hex), k = 0;
            for (size_t i = 16; i + 1 < hl && k < sizeof want[0] - 1; i += 2) {
                unsigned b;
                sscanf(hex + i, "%2x", &b);
                want[n_want][k++] = b == '\n' ? '|' : (char)b;
            }
            if (k && want[n_want][k - 1] == '|')
                k--;
            want[n_want][k] = 0;
            n_want++;
        }
        json_decref(j);
    }
    fclose(f);
    assert_int_equal(n_want, 5);

    struct emu_proc em;
    assert_int_equal(start_emu2(&em, "1", "--namespace", "test"), 0);
    struct as_host h = { .name = "127.0.0.1", .port = (uint16_t)em.ports[0] };
    struct as_cluster_config cfg = { .seeds = &h, .n_seeds = 1, .connect_timeout_ms = 2000 };
    struct as_cluster *c;
    struct err e;
    if (as_cluster_new(&cfg, &c, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(as_cluster_tend(c, &e), 0); /* the first periodic tend */
    as_cluster_free(c);

    struct as_conn conn;
    assert_int_equal(as_conn_open(&conn, "127.0.0.1", (uint16_t)em.ports[0], NULL, NULL, 2000, &e), 0);
    struct as_buf reply;
    as_buf_init(&reply);
    assert_int_equal(as_info_exec(&conn, "emulator-info-log", &reply, as_deadline_in(5000), 0, &e), 0);
    const char *v;
    size_t vl;
    assert_true(as_info_reply_value(&reply, "emulator-info-log", &v, &vl));
    char *log = strndup(v, vl);
    as_buf_free(&reply);
    as_conn_close(&conn);
    emu_proc_stop(&em);

    /* the first connection's requests */
    char got[8][256];
    size_t n_got = 0;
    char first_conn[16] = "";
    for (char *save = NULL, *tok = strtok_r(log, ";", &save); tok && n_got < 8; tok = strtok_r(NULL, ";", &save)) {
        char *colon = strchr(tok, ':');
        assert_non_null(colon);
        *colon = 0;
        if (!first_conn[0])
            snprintf(first_conn, sizeof first_conn, "%s", tok);
        if (strcmp(tok, first_conn) == 0)
            snprintf(got[n_got++], sizeof got[0], "%s", colon + 1);
    }
    free(log);
    assert_true(n_got >= n_want);
    for (size_t i = 0; i < n_want; i++) {
        if (strncmp(want[i], "user-agent-set:value=", 21) == 0) {
            assert_int_equal(strncmp(got[i], "user-agent-set:value=", 21), 0);
            uint8_t d[128];
            long dl = as_b64_decode(got[i] + 21, strlen(got[i] + 21), d);
            assert_true(dl > 0);
            d[dl] = 0;
            assert_string_equal((const char *)d, "1,c-abs-" ABS_VERSION ",not-set");
            continue;
        }
        assert_string_equal(got[i], want[i]);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_cluster),
        cmocka_unit_test(test_live_sindex_udf),
        cmocka_unit_test(test_live_writes),
        cmocka_unit_test(test_live_scans),
        cmocka_unit_test(test_live_filtered_scan),
        cmocka_unit_test(test_live_parallel_scans),
        cmocka_unit_test(test_live_scan_faults),
        cmocka_unit_test(test_live_user_agent),
        cmocka_unit_test(test_live_tend_requests_as_captured),
        cmocka_unit_test(test_live_services_alternate),
        cmocka_unit_test(test_live_node_leaves_mid_scan),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
