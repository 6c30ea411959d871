/*
 * bench_backup.c - backup throughput and memory against a running emulator (or server):
 * one configuration per process so that the peak RSS printed is that configuration's.
 *
 *   bench_backup HOST PORT NAMESPACE MODE PARALLEL [ZSTD_LEVEL] [AES_KEY_PEM]
 *   MODE = scan     raw partition scan into a discarding callback (the client's rate)
 *        | backup   full backup to local storage under /tmp (removed afterwards)
 *        | restore  backup (parallel 4, untimed), then a timed restore of it into the same
 *                   namespace with `replace` and batch writes (restore-single: single writes)
 *        | batchwrite  1M generated records (keys key-<i>, ~200 B) written with as_write_batch,
 *                   batch size 128, PARALLEL threads, one batch at a time each (the client's
 *                   batch write rate, issue 3); batchwrite-async: the same through the write
 *                   pipe with 16 batches in flight per thread
 *        | sink     the same batches encoded beforehand, then sent raw on PARALLEL
 *                   connections: the emulator's own write-sink rate (the bound of restores)
 *
 * Prints one line: mode, parallel, compression, encryption, records, seconds, records/s,
 * MB/s (of .asb output for backups, of reply bytes for scans), peak RSS MiB.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "aerospike/as_scan.h"
#include "aerospike/as_write.h"
#include "config/config.h"
#include "jobs/backup_job.h"
#include "jobs/cluster_link.h"
#include "jobs/restore_job.h"
#include "bench_util.h"
#include "storage/storage.h"
#include "util/strutil.h"


static int discard(void *ctx, const struct as_record *r, struct err *e)
{
    (void)r;
    (void)e;
    __atomic_fetch_add((uint64_t *)ctx, 1, __ATOMIC_RELAXED);
    return 0;
}

struct scan_worker {
    struct as_cluster *c;
    const char *ns;
    unsigned index, n;
    uint64_t records, bytes;
    pthread_t t;
};

static void *scan_main(void *arg)
{
    struct scan_worker *w = arg;
    struct as_scanner *s;
    struct as_scan_parts parts = {0};
    struct err e = {0};
    uint32_t begin = 4096 * w->index / w->n, end = 4096 * (w->index + 1) / w->n;
    struct as_scan_policy p = {.ns = w->ns};
    struct as_scan_stats st = {0};
    if (as_scanner_new(&s, &e) || as_scan_parts_range(&parts, begin, end - begin, &e) ||
        as_scan_run(s, w->c, &p, &parts, discard, &w->records, &st, &e))
        fprintf(stderr, "scan: %s\n", e.msg);
    w->bytes = st.bytes;
    as_scan_parts_free(&parts);
    as_scanner_free(s);
    return NULL;
}

static int bench_scan(const char *host, int port, const char *ns, unsigned parallel)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "aerospike-clusters: {c: {seed-nodes: [{host-name: %s, port: %d}]}}\n", host, port);
    struct cfg *cfg;
    struct err e = {0};
    struct as_cluster *c;
    if (cfg_from_yaml(yaml, strlen(yaml), "bench", &cfg, &e) ||
        job_cluster_connect("c", cfg_map_get(&cfg->clusters, "c"), NULL, &c, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    struct scan_worker *ws = calloc(parallel, sizeof *ws);
    double t0 = now_s();
    for (unsigned i = 0; i < parallel; i++) {
        ws[i] = (struct scan_worker){.c = c, .ns = ns, .index = i, .n = parallel};
        pthread_create(&ws[i].t, NULL, scan_main, &ws[i]);
    }
    uint64_t records = 0, bytes = 0;
    for (unsigned i = 0; i < parallel; i++) {
        pthread_join(ws[i].t, NULL);
        records += ws[i].records;
        bytes += ws[i].bytes;
    }
    double secs = now_s() - t0;
    printf("scan    parallel=%u compression=-    encryption=-      records=%" PRIu64 " seconds=%.2f "
           "records/s=%.0f MB/s=%.1f peak_rss_MiB=%.1f\n",
           parallel, records, secs, records / secs, bytes / secs / 1e6, peak_rss_mib());
    free(ws);
    as_cluster_free(c);
    cfg_release(cfg);
    return 0;
}

struct restore_bench {
    bool enabled;
    bool single;
    unsigned parallel;
};

static int timed_restore(struct as_cluster *c, struct stor *s, const char *key, unsigned parallel, bool single,
                         int zstd_level, struct err *e)
{
    struct restore_policy pol;
    restore_policy_init(&pol);
    pol.parallel = parallel;
    pol.replace = true;
    pol.no_generation = true;
    pol.disable_batch_writes = single;
    if (getenv("BENCH_MAX_ASYNC_BATCHES")) /* A/B runs of the in-flight depth */
        pol.max_async_batches = atoi(getenv("BENCH_MAX_ASYNC_BATCHES"));
    struct restore_folder f = {0};
    if (restore_folder_load(s, key, &pol, &f, e))
        return e->code;
    struct restore_spec spec = {.folders = &f, .n_folders = 1, .policy = &pol};
    struct restore_progress prog = {0};
    double t0 = now_s();
    int rc = restore_run(&spec, c, s, &prog, NULL, e);
    double secs = now_s() - t0;
    if (rc == 0)
        printf("restore parallel=%u writes=%-6s max-async-batches=%-3ld compression=%-4s records=%" PRIu64 " seconds=%.2f "
               "records/s=%.0f MB/s=%.1f peak_rss_MiB=%.1f\n",
               parallel, single ? "single" : "batch", (long)pol.max_async_batches, zstd_level > 0 ? "zstd" : "none", prog.inserted_records, secs,
               prog.inserted_records / secs, prog.total_bytes / secs / 1e6, peak_rss_mib());
    restore_folder_free(&f);
    restore_policy_free(&pol);
    return rc;
}

static int bench_backup(const char *host, int port, const char *ns, unsigned parallel, int zstd_level,
                        const char *key, struct restore_bench rb)
{
    /* BENCH_TMPDIR: where the backup is written (e.g. /dev/shm to take the disk out) */
    char dir[512];
    str_printf(dir, sizeof dir, "%s/abs-bench-XXXXXX", getenv("BENCH_TMPDIR") ? getenv("BENCH_TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    char yaml[2048], compression[64] = "", encryption[600] = "";
    if (zstd_level > 0)
        snprintf(compression, sizeof compression, ", compression: {mode: ZSTD, level: %d}", zstd_level);
    if (key)
        snprintf(encryption, sizeof encryption, ", encryption: {mode: AES256, key-file: '%s'}", key);
    snprintf(yaml, sizeof yaml,
             "aerospike-clusters: {c: {seed-nodes: [{host-name: %s, port: %d}]}}\n"
             "storage: {s: {local-storage: {path: %s}}}\n"
             "backup-policies: {p: {parallel: %u%s%s}}\n"
             "backup-routines: {r: {interval-cron: '@yearly', source-cluster: c, storage: s, backup-policy: p,"
             " namespaces: [%s]}}\n",
             host, port, dir, rb.enabled ? 4 : parallel, compression, encryption, ns);
    struct cfg *cfg;
    struct err e = {0};
    struct as_cluster *c;
    struct stor *s;
    if (cfg_from_yaml(yaml, strlen(yaml), "bench", &cfg, &e) ||
        job_cluster_connect("c", cfg_map_get(&cfg->clusters, "c"), NULL, &c, &e) ||
        stor_open(cfg_map_get(&cfg->storage, "s"), &s, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    struct backup_spec spec = {.cfg = cfg, .routine = "r", .kind = BACKUP_FULL, .start_ms = (int64_t)time(NULL) * 1000,
                               .modified_after_ms = -1, .modified_before_ms = -1};
    struct backup_progress prog = {0};
    struct backup_outcome out;
    bool cancel = false;
    double t0 = now_s();
    int rc = backup_run(&spec, c, s, &prog, &cancel, &out, &e);
    double secs = now_s() - t0;
    if (rc) {
        fprintf(stderr, "backup: %s\n", e.msg);
    } else if (rb.enabled) {
        char data_key[700];
        snprintf(data_key, sizeof data_key, "%sdata/%s", out.folder, ns);
        rc = timed_restore(c, s, data_key, rb.parallel, rb.single, zstd_level, &e);
        if (rc)
            fprintf(stderr, "restore: %s\n", e.msg);
    } else {
        printf("backup  parallel=%u compression=%-4s encryption=%-6s records=%" PRIu64 " seconds=%.2f "
               "records/s=%.0f MB/s=%.1f peak_rss_MiB=%.1f\n",
               parallel, zstd_level == 1 ? "zstd1" : zstd_level > 0 ? "zstd3" : "none", key ? "AES256" : "none", out.records, secs,
               out.records / secs, out.bytes / secs / 1e6, peak_rss_mib());
    }
    backup_outcome_free(&out);
    stor_delete_prefix(s, "r/", &e);
    stor_close(s);
    as_cluster_free(c);
    cfg_release(cfg);
    rmdir(dir);
    return rc ? 1 : 0;
}

/* ---- batch writes ---------------------------------------------------------------------------- */

#define WRITE_RECORDS 1000000u
#define WRITE_BATCH 128u
#define PAD_BYTES 150u

/* Generated records (about the emulator's --generate shape): key-<i>, bins id, name, pad. */
struct gen_records {
    struct as_record *recs;
    struct as_bin *bins;
    char *keys;   /* 16 bytes per key */
    uint8_t pad[PAD_BYTES];
    size_t n;
};

static int gen_alloc(struct gen_records *g, size_t n)
{
    g->n = n;
    g->recs = calloc(n, sizeof *g->recs);
    g->bins = calloc(n * 3, sizeof *g->bins);
    g->keys = calloc(n, 16);
    for (size_t i = 0; i < PAD_BYTES; i++)
        g->pad[i] = (uint8_t)(i * 7);
    return g->recs && g->bins && g->keys ? 0 : -1;
}

/* Fills slot `slot` of g with the record of index `index`. */
static int gen_one(struct gen_records *g, const char *ns, size_t slot, size_t index)
{
    char *k = g->keys + slot * 16;
    int kl = snprintf(k, 16, "key-%zu", index);
    struct as_record *r = &g->recs[slot];
    struct as_bin *b = &g->bins[slot * 3];
    b[0] = (struct as_bin){.name = "id", .name_len = 2, .v = {.type = AS_PARTICLE_INTEGER, .i = (int64_t)index}};
    b[1] = (struct as_bin){.name = "name", .name_len = 4,
                           .v = {.type = AS_PARTICLE_STRING, .data = (const uint8_t *)k, .len = (uint32_t)kl}};
    b[2] = (struct as_bin){.name = "pad", .name_len = 3, .v = {.type = AS_PARTICLE_BLOB, .data = g->pad, .len = PAD_BYTES}};
    *r = (struct as_record){.ns = ns, .ns_len = (uint32_t)strlen(ns), .generation = 1, .n_bins = 3, .bins = b,
                            .key = {.type = AS_PARTICLE_STRING, .data = (const uint8_t *)k, .len = (uint32_t)kl}};
    struct err e = {0};
    return as_digest_str(NULL, k, r->digest, &e) ? -1 : 0;
}

static void gen_free(struct gen_records *g)
{
    free(g->recs);
    free(g->bins);
    free(g->keys);
}

static const struct as_write_policy WRITE_POLICY = {.exists = AS_EXISTS_CREATE_OR_REPLACE, .send_key = true};

struct write_worker {
    struct as_cluster *c;
    const char *ns;
    size_t begin, end;
    unsigned depth; /* 0 = as_write_batch, else pipe depth */
    uint64_t written;
    int first_bad;
    pthread_t t;
};

static void count_results(struct write_worker *w, const struct as_write_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        w->written += items[i].result == 0;
        if (items[i].result != 0 && !w->first_bad)
            w->first_bad = items[i].result;
    }
}

/* Records are generated a batch at a time into (depth + 1) windows of WRITE_BATCH slots. */
static void *write_main(void *arg)
{
    struct write_worker *w = arg;
    struct err e = {0};
    size_t windows = w->depth + 1;
    struct gen_records g = {0};
    struct as_write_item *items = calloc(windows * WRITE_BATCH, sizeof *items);
    size_t *win_n = calloc(windows, sizeof *win_n); /* records in each window */
    struct as_writer *wr = NULL;
    struct as_write_pipe *pp = NULL;
    if (!items || !win_n || gen_alloc(&g, windows * WRITE_BATCH) ||
        (w->depth ? as_write_pipe_new(&pp, w->depth, &e) : as_writer_new(&wr, &e))) {
        fprintf(stderr, "batchwrite: cannot start\n");
        free(items);
        free(win_n);
        gen_free(&g);
        return NULL;
    }
    size_t win = 0;
    for (size_t first = w->begin; first < w->end; first += WRITE_BATCH) {
        size_t n = w->end - first > WRITE_BATCH ? WRITE_BATCH : w->end - first;
        struct as_write_item *it = items + win * WRITE_BATCH;
        for (size_t i = 0; i < n; i++) {
            if (gen_one(&g, w->ns, win * WRITE_BATCH + i, first + i))
                return NULL;
            it[i] = (struct as_write_item){.rec = &g.recs[win * WRITE_BATCH + i], .ttl = AS_TTL_NEVER_EXPIRE};
        }
        int rc = 0;
        if (pp) {
            win_n[win] = n;
            rc = as_write_pipe_submit(pp, w->c, &WRITE_POLICY, it, n, false, (void *)(uintptr_t)win, &e);
            win = (win + 1) % windows;
            void *tag;
            int wrc;
            /* at most depth out: the next window to fill is then free */
            while (rc == 0 && as_write_pipe_in_flight(pp) >= w->depth &&
                   as_write_pipe_next(pp, w->c, &WRITE_POLICY, &tag, &wrc, &e) == 0) {
                rc = wrc;
                size_t done = (size_t)(uintptr_t)tag;
                count_results(w, items + done * WRITE_BATCH, win_n[done]);
            }
        } else {
            rc = as_write_batch(wr, w->c, &WRITE_POLICY, it, n, &e);
            count_results(w, it, n);
        }
        if (rc) {
            fprintf(stderr, "batchwrite: %s\n", e.msg);
            break;
        }
    }
    void *tag;
    int wrc;
    while (pp && as_write_pipe_next(pp, w->c, &WRITE_POLICY, &tag, &wrc, &e) == 0) {
        size_t done = (size_t)(uintptr_t)tag;
        count_results(w, items + done * WRITE_BATCH, win_n[done]);
        if (wrc)
            fprintf(stderr, "batchwrite: %s\n", e.msg);
    }
    if (w->first_bad)
        fprintf(stderr, "batchwrite: some records answered %d\n", w->first_bad);
    as_write_pipe_free(pp);
    as_writer_free(wr);
    free(items);
    free(win_n);
    gen_free(&g);
    return NULL;
}

static int connect_cluster(const char *host, int port, struct cfg **cfg, struct as_cluster **c)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "aerospike-clusters: {c: {seed-nodes: [{host-name: %s, port: %d}]}}\n", host, port);
    struct err e = {0};
    if (cfg_from_yaml(yaml, strlen(yaml), "bench", cfg, &e) ||
        job_cluster_connect("c", cfg_map_get(&(*cfg)->clusters, "c"), NULL, c, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    return 0;
}

static int bench_batchwrite(const char *host, int port, const char *ns, unsigned parallel, unsigned depth)
{
    struct cfg *cfg;
    struct as_cluster *c;
    if (connect_cluster(host, port, &cfg, &c))
        return 1;
    struct write_worker *ws = calloc(parallel, sizeof *ws);
    double t0 = now_s();
    for (unsigned i = 0; i < parallel; i++) {
        ws[i] = (struct write_worker){.c = c, .ns = ns, .begin = (size_t)WRITE_RECORDS * i / parallel,
                                      .end = (size_t)WRITE_RECORDS * (i + 1) / parallel, .depth = depth};
        pthread_create(&ws[i].t, NULL, write_main, &ws[i]);
    }
    uint64_t written = 0;
    for (unsigned i = 0; i < parallel; i++) {
        pthread_join(ws[i].t, NULL);
        written += ws[i].written;
    }
    double secs = now_s() - t0;
    printf("batchwrite parallel=%u batch=%u in-flight=%-3u records=%" PRIu64 " seconds=%.2f records/s=%.0f "
           "peak_rss_MiB=%.1f\n",
           parallel, WRITE_BATCH, depth ? depth : 1, written, secs, written / secs, peak_rss_mib());
    free(ws);
    as_cluster_free(c);
    cfg_release(cfg);
    return written == WRITE_RECORDS ? 0 : 1;
}

/* ---- emulator write sink ------------------------------------------------------------------------ */

struct sink_worker {
    struct as_node *node;
    struct as_buf *reqs;
    size_t begin, end;
    uint64_t rows;
    pthread_t t;
};

static void *sink_main(void *arg)
{
    struct sink_worker *w = arg;
    struct err e = {0};
    struct as_conn *conn;
    struct as_buf body;
    as_buf_init(&body);
    if (as_node_conn_get(w->node, &conn, &e)) {
        fprintf(stderr, "sink: %s\n", e.msg);
        return NULL;
    }
    for (size_t i = w->begin; i < w->end; i++) {
        if (as_conn_write(conn, w->reqs[i].data, w->reqs[i].len, 0, 30000, &e))
            break;
        bool last = false;
        while (!last) {
            struct as_proto_header h;
            if (as_conn_read_proto(conn, &h, &body, 0, 30000, &e))
                goto out;
            for (size_t off = 0; off < body.len;) {
                struct as_msg_view v;
                if (as_msg_parse(body.data + off, body.len - off, &v, &e))
                    goto out;
                off += v.size;
                if (v.h.info3 & AS_INFO3_LAST) {
                    last = true;
                    break;
                }
                w->rows += v.h.result_code == 0;
            }
        }
    }
out:
    as_node_conn_drop(w->node, conn);
    as_buf_free(&body);
    return NULL;
}

static int bench_sink(const char *host, int port, const char *ns, unsigned parallel)
{
    struct cfg *cfg;
    struct as_cluster *c;
    if (connect_cluster(host, port, &cfg, &c))
        return 1;
    struct gen_records g = {0};
    size_t nreq = (WRITE_RECORDS + WRITE_BATCH - 1) / WRITE_BATCH;
    struct as_buf *reqs = calloc(nreq, sizeof *reqs);
    struct as_write_item *items = calloc(WRITE_BATCH, sizeof *items);
    struct as_write_item **ptrs = calloc(WRITE_BATCH, sizeof *ptrs);
    uint32_t index[WRITE_BATCH];
    struct err e = {0};
    if (!reqs || !items || !ptrs || gen_alloc(&g, WRITE_BATCH))
        return 1;
    for (size_t r = 0; r < nreq; r++) {
        size_t n = 0;
        for (size_t i = r * WRITE_BATCH; i < WRITE_RECORDS && n < WRITE_BATCH; i++, n++) {
            if (gen_one(&g, ns, n, i))
                return 1;
            items[n] = (struct as_write_item){.rec = &g.recs[n], .ttl = AS_TTL_NEVER_EXPIRE};
            ptrs[n] = &items[n];
            index[n] = (uint32_t)n;
        }
        as_buf_init(&reqs[r]);
        if (as_write_encode_batch(&reqs[r], &WRITE_POLICY, ptrs, n, index, &e))
            return 1;
    }
    struct as_node *node = as_cluster_random_node(c);
    struct sink_worker *ws = calloc(parallel, sizeof *ws);
    double t0 = now_s();
    for (unsigned i = 0; i < parallel; i++) {
        ws[i] = (struct sink_worker){.node = node, .reqs = reqs, .begin = nreq * i / parallel,
                                     .end = nreq * (i + 1) / parallel};
        pthread_create(&ws[i].t, NULL, sink_main, &ws[i]);
    }
    uint64_t rows = 0;
    for (unsigned i = 0; i < parallel; i++) {
        pthread_join(ws[i].t, NULL);
        rows += ws[i].rows;
    }
    double secs = now_s() - t0;
    printf("sink    parallel=%u batch=%u (emulator only)  records=%" PRIu64 " seconds=%.2f records/s=%.0f\n",
           parallel, WRITE_BATCH, rows, secs, rows / secs);
    as_node_release(node);
    for (size_t r = 0; r < nreq; r++)
        as_buf_free(&reqs[r]);
    free(reqs);
    free(items);
    free(ptrs);
    free(ws);
    gen_free(&g);
    as_cluster_free(c);
    cfg_release(cfg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s HOST PORT NAMESPACE scan|backup|restore|restore-single|batchwrite|batchwrite-async|sink "
                        "PARALLEL [ZSTD_LEVEL] "
                        "[AES_KEY_PEM]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[2]);
    unsigned parallel = (unsigned)atoi(argv[5]);
    if (strcmp(argv[4], "scan") == 0)
        return bench_scan(argv[1], port, argv[3], parallel);
    if (strcmp(argv[4], "batchwrite") == 0)
        return bench_batchwrite(argv[1], port, argv[3], parallel, 0);
    if (strcmp(argv[4], "batchwrite-async") == 0)
        return bench_batchwrite(argv[1], port, argv[3], parallel, 16);
    if (strcmp(argv[4], "sink") == 0)
        return bench_sink(argv[1], port, argv[3], parallel);
    struct restore_bench rb = {.enabled = strncmp(argv[4], "restore", 7) == 0,
                               .single = strcmp(argv[4], "restore-single") == 0, .parallel = parallel};
    return bench_backup(argv[1], port, argv[3], parallel, argc > 6 ? atoi(argv[6]) : 0,
                        argc > 7 ? argv[7] : NULL, rb);
}
