/*
 * bench_storage.c - full-backup throughput and memory to any storage kind, one configuration
 * per process so the peak RSS printed is that storage's:
 *
 *   bench_storage HOST PORT NAMESPACE PARALLEL LABEL 'STORAGE_BLOCK'
 *
 * STORAGE_BLOCK is the storage's YAML flow text, e.g. '{local-storage: {path: /tmp/x}}' or
 * '{azure-storage: {endpoint: ..., container-name: ..., account-name: ..., account-key: ...,
 * min-part-size: 5242880}}'. The backup is deleted from the storage afterwards (untimed).
 * Prints one line: label, parallel, records, seconds, records/s, MB/s of .asb output, peak RSS.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "config/config.h"
#include "jobs/backup_job.h"
#include "jobs/cluster_link.h"
#include "bench_util.h"
#include "storage/storage.h"


int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT NAMESPACE PARALLEL LABEL 'STORAGE_BLOCK'\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *ns = argv[3], *label = argv[5], *block = argv[6];
    int port = atoi(argv[2]);
    unsigned parallel = (unsigned)atoi(argv[4]);
    /* BENCH_FILE_LIMIT_MB: the policy's file-limit (default 250), e.g. to keep every object
     * under an emulator's upload limit */
    long file_limit_mb = getenv("BENCH_FILE_LIMIT_MB") ? atol(getenv("BENCH_FILE_LIMIT_MB")) : 250;
    size_t cap = strlen(block) + 1024;
    char *yaml = malloc(cap);
    if (!yaml)
        return 1;
    snprintf(yaml, cap,
             "aerospike-clusters: {c: {seed-nodes: [{host-name: %s, port: %d}]}}\n"
             "storage: {s: %s}\n"
             "backup-policies: {p: {parallel: %u, file-limit: %ld}}\n"
             "backup-routines: {r: {interval-cron: '@yearly', source-cluster: c, storage: s,"
             " backup-policy: p, namespaces: [%s]}}\n",
             host, port, block, parallel, file_limit_mb, ns);
    struct cfg *cfg;
    struct err e = {0};
    struct as_cluster *c;
    struct stor *s;
    if (cfg_from_yaml(yaml, strlen(yaml), "bench", &cfg, &e) ||
        job_cluster_connect("c", cfg_map_get(&cfg->clusters, "c"), NULL, &c, &e) ||
        stor_open(cfg_map_get(&cfg->storage, "s"), &s, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        free(yaml);
        return 1;
    }
    free(yaml);
    struct backup_spec spec = {.cfg = cfg, .routine = "r", .kind = BACKUP_FULL,
                               .start_ms = (int64_t)time(NULL) * 1000,
                               .modified_after_ms = -1, .modified_before_ms = -1};
    struct backup_progress prog = {0};
    struct backup_outcome out;
    bool cancel = false;
    double t0 = now_s();
    int rc = backup_run(&spec, c, s, &prog, &cancel, &out, &e);
    double secs = now_s() - t0;
    if (rc)
        fprintf(stderr, "backup to %s: %s\n", stor_name(s), e.msg);
    else
        printf("backup  storage=%-6s parallel=%u part_MiB=%zu records=%" PRIu64
               " seconds=%.2f records/s=%.0f MB/s=%.1f peak_rss_MiB=%.1f\n",
               label, parallel, stor_part_size(s) >> 20, out.records, secs, out.records / secs,
               out.bytes / secs / 1e6, peak_rss_mib());
    backup_outcome_free(&out);
    if (stor_delete_prefix(s, "r/", &e))
        fprintf(stderr, "cleanup: %s\n", e.msg);
    stor_close(s);
    as_cluster_free(c);
    cfg_release(cfg);
    return rc ? 1 : 0;
}
