/*
 * bench_backup.c - backup throughput and memory against a running emulator (or server):
 * one configuration per process so that the peak RSS printed is that configuration's.
 *
 *   bench_backup HOST PORT NAMESPACE MODE PARALLEL [ZSTD_LEVEL] [AES_KEY_PEM]
 *   MODE = scan     raw partition scan into a discarding callback (the client's rate)
 *        | backup   full backup to local storage under /tmp (removed afterwards)
 *        | restore  backup (parallel 4, untimed), then a timed restore of it into the same
 *                   namespace with `replace` and batch writes (restore-single: single writes)
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
#include "config/config.h"
#include "jobs/backup_job.h"
#include "jobs/cluster_link.h"
#include "jobs/restore_job.h"
#include "storage/storage.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

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
        job_cluster_connect("c", cfg_map_get(&cfg->clusters, "c"), &c, &e)) {
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
    struct restore_folder f = {0};
    if (restore_folder_load(s, key, &pol, &f, e))
        return e->code;
    struct restore_spec spec = {.folders = &f, .n_folders = 1, .policy = &pol};
    struct restore_progress prog = {0};
    double t0 = now_s();
    int rc = restore_run(&spec, c, s, &prog, NULL, e);
    double secs = now_s() - t0;
    if (rc == 0)
        printf("restore parallel=%u writes=%-6s compression=%-4s records=%" PRIu64 " seconds=%.2f records/s=%.0f "
               "MB/s=%.1f peak_rss_MiB=%.1f\n",
               parallel, single ? "single" : "batch", zstd_level > 0 ? "zstd" : "none", prog.inserted_records, secs,
               prog.inserted_records / secs, prog.total_bytes / secs / 1e6, peak_rss_mib());
    restore_folder_free(&f);
    restore_policy_free(&pol);
    return rc;
}

static int bench_backup(const char *host, int port, const char *ns, unsigned parallel, int zstd_level,
                        const char *key, struct restore_bench rb)
{
    char dir[] = "/tmp/abs-bench-XXXXXX";
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
        job_cluster_connect("c", cfg_map_get(&cfg->clusters, "c"), &c, &e) ||
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
               parallel, zstd_level > 0 ? "zstd" : "none", key ? "AES256" : "none", out.records, secs,
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

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s HOST PORT NAMESPACE scan|backup|restore|restore-single PARALLEL [ZSTD_LEVEL] "
                        "[AES_KEY_PEM]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[2]);
    unsigned parallel = (unsigned)atoi(argv[5]);
    if (strcmp(argv[4], "scan") == 0)
        return bench_scan(argv[1], port, argv[3], parallel);
    struct restore_bench rb = {.enabled = strncmp(argv[4], "restore", 7) == 0,
                               .single = strcmp(argv[4], "restore-single") == 0, .parallel = parallel};
    return bench_backup(argv[1], port, argv[3], parallel, argc > 6 ? atoi(argv[6]) : 0,
                        argc > 7 ? argv[7] : NULL, rb);
}
