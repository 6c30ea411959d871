/*
 * backup_job.c - one backup run (see backup_job.h).
 *
 * Shape of a run:
 *   backup_run            folder "<routine>/<backup|incremental>/<TS>/", one namespace after another
 *    └ backup_namespace   metadata file (UDFs, indexes), `parallel` scan workers, metadata.yaml
 *       └ worker_main     one scanner + one output file at a time: records -> .asb -> [zstd] ->
 *                         [AES] -> storage writer; a new file when file-limit is reached
 * A failing worker (or an external cancel) raises `stop`; every worker checks it per record,
 * the scans check it between chunks, and the run deletes its folder before returning.
 *
 * Hot path (per record, see bench/): the scanned view is encoded straight from the receive
 * buffer into the writer's 256 KiB buffer (no copy, no allocation), records are counted
 * locally and published to the shared counters every PROGRESS_BATCH records (no contended
 * atomic per record), and the bandwidth throttle is only consulted when a limit is set.
 */
#include "jobs/backup_job.h"

#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aerospike/as_exp.h"
#include "aerospike/as_info.h"
#include "aerospike/as_record.h"
#include "aerospike/as_scan.h"
#include "asb/asb.h"
#include "config/cfg_schema.h"
#include "config/cfg_validate.h"
#include "io/io.h"
#include "jobs/record_views.h"
#include "jobs/backup_meta.h"
#include "jobs/cluster_conf.h"
#include "jobs/racks.h"
#include "secret/key_source.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"
#include "util/throttle.h"

#define DEFAULT_PARALLEL 8
#define DEFAULT_FILE_LIMIT_MB 250
#define DEFAULT_SOCKET_TIMEOUT_MS 600000
/* ABS maps level 0 (the default) to -1, which backup-go's encoder runs at its fastest speed
 * class, about zstd level 1; libzstd would read 0 as its own default, level 3 (half as fast). */
#define ZSTD_ABS_DEFAULT_LEVEL 1
#define DEFAULT_RETRY_BASE_MS 60000
#define DEFAULT_RETRY_MAX 5
#define DEFAULT_RETRY_MULTIPLIER 1.5
#define RETRY_DELAY_CAP_MS (24LL * 3600 * 1000)
#define NS_PER_MS 1000000ULL

#define ATOMIC_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

/* ---- one namespace ------------------------------------------------------------------------ */

struct ns_run {
    const struct backup_spec *spec;
    const struct cfg_policy *pol; /* NULL = all defaults */
    const struct cfg_routine *rt;
    struct as_cluster *cluster;
    struct stor *stor;
    struct backup_progress *progress;
    const volatile bool *cancel;
    volatile bool stop;

    const char *ns;
    /* node restriction: the routine's node-list, or the nodes of its rack-list (rack_nodes) */
    const cfg_strlist *nodes;
    cfg_strlist rack_nodes;
    char folder[600]; /* ".../data/<ns>/" */
    bool compact;
    struct io_chain_opts chain;
    uint64_t file_limit;
    struct as_scan_policy scan;
    struct as_buf filter;

    struct throttle bandwidth; /* policy bandwidth (MiB/s) over the encoded bytes */
    uint32_t file_seq; /* shared file counter n of <worker>_<ns>_<n>.asb */
    uint64_t records;
    uint64_t bytes;
    uint64_t files;
    uint64_t sindexes, udfs;

    pthread_mutex_t err_lock;
    bool failed;
    struct err err;
};

static void run_fail(struct ns_run *r, const struct err *e)
{
    err_keep_first(&r->err_lock, &r->failed, &r->err, e);
    r->stop = true;
}

static bool run_stopping(const struct ns_run *r)
{
    return r->stop || (r->cancel && *r->cancel);
}

/* ---- output files ------------------------------------------------------------------------- */

struct out_file {
    bool open;
    struct stor_writer *sw;
    struct io_writer *chain;
    struct io_counter counter; /* bytes handed to storage for this file */
    struct asb_writer aw;
};

/* Takes the next file number n of <prefix><ns>_<n>.asb */
static uint32_t file_number(struct ns_run *r)
{
    return __atomic_add_fetch(&r->file_seq, 1, __ATOMIC_RELAXED);
}

/* Opens file number n (0 = the next one) with its header. */
static int file_open(struct ns_run *r, struct out_file *f, const char *prefix, uint32_t n, bool first_file,
                     struct err *e)
{
    if (n == 0)
        n = file_number(r);
    char key[800];
    str_printf(key, sizeof key, "%s%s%s_%" PRIu32 ".asb", r->folder, prefix, r->ns, n);
    memset(f, 0, sizeof *f);
    if (stor_writer_open(r->stor, key, 0, &f->sw, e))
        return e->code;
    struct io_writer *sink = io_cb_writer_new(stor_io_write, NULL, f->sw, e);
    struct io_chain_opts opts = r->chain;
    opts.counter = &f->counter;
    f->chain = sink ? io_writer_chain(sink, &opts, e) : NULL;
    if (!f->chain) {
        io_writer_free(sink);
        stor_writer_abort(f->sw);
        return e->code ? e->code : ERR_INTERNAL;
    }
    if (asb_writer_init(&f->aw, ASB_WRITER_DEFAULT_BUF, r->compact, io_write_cb, f->chain, e) ||
        asb_writer_header(&f->aw, r->ns, (uint32_t)strlen(r->ns), first_file, e)) {
        asb_writer_free(&f->aw);
        io_writer_free(f->chain);
        stor_writer_abort(f->sw);
        return e->code ? e->code : ERR_INTERNAL;
    }
    f->open = true;
    return 0;
}

static void file_abort(struct out_file *f)
{
    if (!f->open)
        return;
    asb_writer_free(&f->aw);
    io_writer_free(f->chain);
    stor_writer_abort(f->sw);
    f->open = false;
}

/* Flushes the encoder and finishes the compression frame: only the storage commit is left,
 * with the storage writer and the file's byte count handed over in *sw and *bytes. */
static int file_finish(struct out_file *f, struct stor_writer **sw, uint64_t *bytes, struct err *e)
{
    if (asb_writer_flush(&f->aw, e) || io_writer_close(f->chain, e)) {
        file_abort(f);
        return e->code ? e->code : ERR_IO;
    }
    *bytes = io_counter_bytes(&f->counter);
    *sw = f->sw;
    asb_writer_free(&f->aw);
    io_writer_free(f->chain);
    f->open = false;
    return 0;
}

/* Makes a finished file visible (stor_writer_commit: local fsync and rename, or the upload's
 * completion) and counts it. */
static int file_publish(struct ns_run *r, struct stor_writer *sw, uint64_t bytes, struct err *e)
{
    if (stor_writer_commit(sw, e))
        return e->code;
    ATOMIC_ADD(&r->bytes, bytes);
    ATOMIC_ADD(&r->files, 1);
    ATOMIC_ADD(&r->progress->bytes_written, bytes);
    ATOMIC_ADD(&r->progress->files, 1);
    return 0;
}

static int file_commit(struct ns_run *r, struct out_file *f, struct err *e)
{
    if (!f->open)
        return 0;
    struct stor_writer *sw;
    uint64_t bytes;
    int rc = file_finish(f, &sw, &bytes, e);
    return rc ? rc : file_publish(r, sw, bytes, e);
}

/* A full file's commit running in the background while its worker writes the next file, so the
 * scan does not stall on the fsync (or the upload's last part); at most one per worker. */
struct bg_commit {
    struct ns_run *run;
    struct stor_writer *sw;
    uint64_t bytes;
    pthread_t thread;
    bool running;
    int rc;
    struct err err;
};

static void *bg_commit_main(void *arg)
{
    struct bg_commit *c = arg;
    c->rc = file_publish(c->run, c->sw, c->bytes, &c->err);
    return NULL;
}

/* Waits for the background commit, if one runs; its failure is returned. */
static int bg_commit_wait(struct bg_commit *c, struct err *e)
{
    if (!c->running)
        return 0;
    pthread_join(c->thread, NULL);
    c->running = false;
    if (c->rc)
        *e = c->err;
    return c->rc;
}

/* Bytes of the current file so far, counting what the encoder still buffers when the bytes
 * reach storage unchanged (with compression the buffered text would overstate it). */
static uint64_t file_size_now(const struct ns_run *r, const struct out_file *f)
{
    uint64_t n = io_counter_bytes(&f->counter);
    return (r->chain.zstd || r->chain.aes) ? n : n + f->aw.len;
}

/* ---- scan workers ------------------------------------------------------------------------- */

struct worker {
    struct ns_run *run;
    unsigned index;
    struct as_scan_parts parts;
    const char *nodes[64];
    size_t n_nodes;
    struct out_file file;
    struct bg_commit commit; /* the previous file's, while `file` is written */
    uint64_t unpublished; /* records written, not yet added to the shared counters */
    bool throttled;       /* a bandwidth limit applies */
    pthread_t thread;
    bool started;
};

/* Records counted by a worker are published to the shared counters every this many records
 * (and when the worker ends): no contended atomic per record. */
#define PROGRESS_BATCH 512

static void publish_records(struct worker *w)
{
    if (!w->unpublished)
        return;
    struct ns_run *r = w->run;
    ATOMIC_ADD(&r->records, w->unpublished);
    ATOMIC_ADD(&r->progress->records_done, w->unpublished);
    ATOMIC_ADD(&r->progress->records_written, w->unpublished);
    w->unpublished = 0;
}

/* The file reached file-limit: its commit goes to the background (once the previous file's
 * has ended) and the next record opens a new file. */
static int file_split(struct worker *w, struct err *e)
{
    struct ns_run *r = w->run;
    int rc = bg_commit_wait(&w->commit, e);
    if (rc) {
        file_abort(&w->file);
        return rc;
    }
    struct stor_writer *sw;
    uint64_t bytes;
    if ((rc = file_finish(&w->file, &sw, &bytes, e)) != 0)
        return rc;
    w->commit = (struct bg_commit){.run = r, .sw = sw, .bytes = bytes};
    if (pthread_create(&w->commit.thread, NULL, bg_commit_main, &w->commit) == 0) {
        w->commit.running = true;
        return 0;
    }
    return file_publish(r, sw, bytes, e); /* no thread: commit here */
}

static int on_record(void *ctx, const struct as_record *rec, struct err *e)
{
    struct worker *w = ctx;
    struct ns_run *r = w->run;
    if (run_stopping(r))
        return err_set(e, ERR_UNAVAILABLE, "backup cancelled");
    if (!w->file.open) {
        char prefix[16];
        str_printf(prefix, sizeof prefix, "%u_", w->index);
        if (file_open(r, &w->file, prefix, 0, false, e))
            return e->code;
    }
    uint64_t before = w->file.aw.bytes;
    if (asb_writer_record(&w->file.aw, (const struct asb_record *)rec, e))
        return e->code ? e->code : ERR_IO;
    if (w->throttled)
        throttle_take(&r->bandwidth, w->file.aw.bytes - before, &r->stop);
    if (++w->unpublished >= PROGRESS_BATCH)
        publish_records(w);
    if (r->file_limit && file_size_now(r, &w->file) >= r->file_limit)
        return file_split(w, e);
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ns_run *r = w->run;
    struct err e = {0};
    struct as_scanner *scanner = NULL;
    struct as_scan_policy p = r->scan;
    p.nodes = w->n_nodes ? w->nodes : NULL;
    p.n_nodes = w->n_nodes;
    p.cancel = &r->stop;
    struct as_scan_stats stats = {0};
    struct slots *slots = r->spec->scan_slots;
    if (slots && !slots_acquire(slots, &r->stop))
        return NULL; /* stopping before this worker got a scan slot */
    w->throttled = r->bandwidth.rate > 0;
    int rc = as_scanner_new(&scanner, &e);
    if (rc == 0)
        rc = as_scan_run(scanner, r->cluster, &p, &w->parts, on_record, w, &stats, &e);
    publish_records(w);
    if (slots)
        slots_release(slots);
    if (rc == 0)
        rc = file_commit(r, &w->file, &e);
    else
        file_abort(&w->file);
    struct err ce = {0};
    int crc = bg_commit_wait(&w->commit, &ce);
    if (rc == 0 && crc) {
        rc = crc;
        e = ce;
    }
    if (rc && !(stats.cancelled && run_stopping(r)))
        run_fail(r, &e);
    as_scanner_free(scanner);
    return NULL;
}

/* Splits the routine's partitions into `n` contiguous shares, one per worker. */
static int plan_partitions(const struct cfg_routine *rt, uint16_t *pids, size_t *n_pids, struct err *e)
{
    size_t n = 0;
    if (rt->partition_list) {
        struct cfg_partition_range ranges[CFG_PARTITIONS];
        size_t n_ranges;
        if (cfg_parse_partition_list(rt->partition_list, ranges, CFG_PARTITIONS, &n_ranges, e))
            return err_prefix(e, "partition-list");
        for (size_t i = 0; i < n_ranges; i++)
            for (int p = ranges[i].begin; p < ranges[i].begin + ranges[i].count; p++)
                pids[n++] = (uint16_t)p;
    } else {
        for (int p = 0; p < CFG_PARTITIONS; p++)
            pids[n++] = (uint16_t)p;
    }
    *n_pids = n;
    return 0;
}

/* Maps node-list entries (node id, host:port, host:tls-name:port) to node names. */
static int resolve_nodes(struct as_cluster *c, const cfg_strlist *specs, const char **names, struct err *e)
{
    struct as_node **nodes;
    size_t n_nodes;
    if (as_cluster_nodes(c, &nodes, &n_nodes, e))
        return e->code;
    int rc = 0;
    for (size_t i = 0; i < specs->n && rc == 0; i++) {
        const char *spec = specs->v[i];
        names[i] = NULL;
        for (size_t k = 0; k < n_nodes && !names[i]; k++) {
            const char *addr = as_node_address(nodes[k]);
            const char *last = strrchr(spec, ':');
            bool by_name = strcasecmp(as_node_name(nodes[k]), spec) == 0;
            bool by_addr = addr && last && strncmp(addr, spec, strcspn(spec, ":")) == 0 &&
                           strcmp(strrchr(addr, ':') ? strrchr(addr, ':') : "", last) == 0;
            if (by_name || by_addr)
                names[i] = as_node_name(nodes[k]);
        }
        if (!names[i])
            rc = err_set(e, ERR_INVALID, "node-list: node \"%s\" is not in the cluster", spec);
    }
    as_nodes_release(nodes, n_nodes);
    return rc;
}

static int start_workers(struct ns_run *r, const uint16_t *plan, size_t n_pids, struct worker *ws,
                         unsigned n_workers, struct err *e)
{
    int rc = 0;
    const char *node_names[64] = {0};
    size_t n_node_names = r->nodes->n < 64 ? r->nodes->n : 64;
    if (rc == 0 && n_node_names)
        rc = resolve_nodes(r->cluster, r->nodes, node_names, e);
    for (unsigned i = 0; rc == 0 && i < n_workers; i++) {
        struct worker *w = &ws[i];
        w->run = r;
        w->index = i;
        if (n_node_names) { /* node-list: every worker scans all partitions of its nodes */
            rc = as_scan_parts_list(&w->parts, plan, n_pids, e);
            for (size_t k = i; k < n_node_names; k += n_workers)
                w->nodes[w->n_nodes++] = node_names[k];
        } else {
            size_t begin = n_pids * i / n_workers, end = n_pids * (i + 1) / n_workers;
            rc = as_scan_parts_list(&w->parts, plan + begin, end - begin, e);
        }
    }
    for (unsigned i = 0; rc == 0 && i < n_workers; i++) {
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            rc = err_set(e, ERR_INTERNAL, "cannot start a backup worker thread");
            r->stop = true;
        } else {
            ws[i].started = true;
        }
    }
    return rc;
}

/* ---- UDFs and secondary indexes (full backups) ---------------------------------------------- */

static char index_type_letter(const char *t)
{
    if (strcasecmp(t, "list") == 0)
        return 'L';
    if (strcasecmp(t, "mapkeys") == 0)
        return 'K';
    if (strcasecmp(t, "mapvalues") == 0)
        return 'V';
    return 'N';
}

static char bin_type_letter(const char *t)
{
    if (strcasecmp(t, "string") == 0)
        return 'S';
    if (strcasecmp(t, "geo2dsphere") == 0)
        return 'G';
    if (strcasecmp(t, "blob") == 0)
        return 'B';
    return 'N';
}

static int write_sindexes(struct ns_run *r, struct as_node *node, struct out_file *f, struct err *e)
{
    struct as_sindex_info *v = NULL;
    size_t n = 0;
    if (as_info_sindex_list(node, r->ns, &v, &n, e))
        return e->code;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct as_sindex_info *s = &v[i];
        if (strcasecmp(s->index_type, "set") == 0)
            continue; /* set indexes have no .asb line */
        struct asb_sindex line = {
            .ns = s->ns, .ns_len = (uint32_t)strlen(s->ns),
            .set = s->set[0] ? s->set : "null", .set_len = s->set[0] ? (uint32_t)strlen(s->set) : 4,
            .name = s->name, .name_len = (uint32_t)strlen(s->name),
            .index_type = index_type_letter(s->index_type),
            .bin = s->bin, .bin_len = (uint32_t)strlen(s->bin),
            .bin_type = bin_type_letter(s->type),
            .ctx = s->context, .ctx_len = s->context ? (uint32_t)strlen(s->context) : 0,
            .expr = s->exp, .expr_len = s->exp ? (uint32_t)strlen(s->exp) : 0,
        };
        rc = asb_writer_sindex(&f->aw, &line, e);
        if (rc == 0)
            r->sindexes++;
    }
    as_sindex_list_free(v, n);
    return rc;
}

static int write_udfs(struct ns_run *r, struct as_node *node, struct out_file *f, struct err *e)
{
    struct as_udf_info *v = NULL;
    size_t n = 0;
    if (as_info_udf_list(node, &v, &n, e))
        return e->code;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t *content = NULL;
        size_t len = 0;
        rc = as_info_udf_get(node, v[i].name, &content, &len, e);
        if (rc == 0) {
            struct asb_udf u = {.type = 'L', .name = v[i].name, .name_len = (uint32_t)strlen(v[i].name),
                                .content = content, .content_len = (uint32_t)len};
            rc = asb_writer_udf(&f->aw, &u, e);
            if (rc == 0)
                r->udfs++;
        }
        free(content);
    }
    free(v);
    return rc;
}

static bool metadata_file_wanted(const struct ns_run *r)
{
    bool indexes = !(r->pol && r->pol->no_indexes.v), udfs = !(r->pol && r->pol->no_udfs.v);
    return r->spec->kind == BACKUP_FULL && (indexes || udfs);
}

/* metadata_<ns>_<n>.asb: the UDFs and secondary indexes of a full backup. */
static int write_metadata_file(struct ns_run *r, uint32_t n, struct err *e)
{
    bool indexes = !(r->pol && r->pol->no_indexes.v), udfs = !(r->pol && r->pol->no_udfs.v);
    struct as_node *node = as_cluster_random_node(r->cluster);
    if (!node)
        return err_set(e, ERR_UNAVAILABLE, "no cluster node available");
    struct out_file f;
    int rc = file_open(r, &f, "metadata_", n, true, e);
    if (rc == 0 && udfs)
        rc = write_udfs(r, node, &f, e);
    if (rc == 0 && indexes)
        rc = write_sindexes(r, node, &f, e);
    if (rc == 0)
        rc = file_commit(r, &f, e);
    else
        file_abort(&f);
    as_node_release(node);
    return rc;
}

/* ---- estimation --------------------------------------------------------------------------- */

static uint64_t estimate_records(struct ns_run *r, size_t n_partitions)
{
    struct as_node **nodes;
    size_t n_nodes;
    struct err e = {0};
    if (as_cluster_nodes(r->cluster, &nodes, &n_nodes, &e))
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        struct as_ns_info info;
        if (as_info_namespace(nodes[i], r->ns, &info, &e) || !info.found)
            continue;
        uint32_t rf = info.effective_replication_factor ? info.effective_replication_factor
                                                        : (info.replication_factor ? info.replication_factor : 1);
        total += info.master_objects ? info.master_objects : info.objects / rf;
    }
    as_nodes_release(nodes, n_nodes);
    return total * n_partitions / CFG_PARTITIONS;
}

/* ---- policy -> run settings ----------------------------------------------------------------- */

static int load_key(const struct ns_run *r, const struct cfg_encryption *enc, struct io_aes_key *key, struct err *e)
{
    int bits = strcasecmp(enc->mode, "AES128") == 0 ? 128 : 256;
    struct key_source src = {.key_file = enc->key_file, .key_env = enc->key_env, .key_secret = enc->key_secret,
                             .agent = cfg_map_get(&r->spec->cfg->secret_agents, r->rt->secret_agent)};
    return key_source_load(&src, bits, key, e);
}

static int build_filter(struct ns_run *r, struct err *e)
{
    const struct backup_spec *s = r->spec;
    bool after = s->modified_after_ms >= 0, before = s->modified_before_ms >= 0;
    bool sets = r->rt->set_list.n > 1;
    unsigned terms = (after || before) + sets;
    if (terms == 0)
        return 0;
    as_buf_init(&r->filter);
    if (terms > 1)
        as_exp_and(&r->filter, terms);
    if (after || before)
        as_exp_lut_range(&r->filter, after ? (uint64_t)s->modified_after_ms * NS_PER_MS : 0,
                         before ? (uint64_t)s->modified_before_ms * NS_PER_MS : 0);
    if (sets)
        as_exp_set_in(&r->filter, (const char *const *)r->rt->set_list.v, r->rt->set_list.n);
    if (r->filter.failed)
        return err_set(e, ERR_NOMEM, "cannot build the filter expression");
    r->scan.filter = r->filter.data;
    r->scan.filter_len = r->filter.len;
    return 0;
}

static int configure_run(struct ns_run *r, struct io_aes_key *key, struct err *e)
{
    const struct cfg_policy *p = r->pol;
    r->compact = p && p->compact.v;
    r->file_limit = io_split_limit_from_mb(p && p->file_limit.set ? p->file_limit.v : DEFAULT_FILE_LIMIT_MB);
    if (p && p->compression && p->compression->mode && strcasecmp(p->compression->mode, "ZSTD") == 0) {
        r->chain.zstd = true;
        r->chain.zstd_level = backup_zstd_level(p->compression);
    }
    if (p && p->encryption && p->encryption->mode && strcasecmp(p->encryption->mode, "NONE") != 0) {
        if (load_key(r, p->encryption, key, e))
            return e->code;
        r->chain.aes = key;
    }
    r->scan.ns = r->ns;
    if (r->rt->set_list.n == 1)
        r->scan.set = r->rt->set_list.v[0];
    r->scan.bins = (const char *const *)r->rt->bin_list.v;
    r->scan.n_bins = r->rt->bin_list.n;
    r->scan.socket_timeout_ms = (uint32_t)(p && p->socket_timeout.set ? p->socket_timeout.v : DEFAULT_SOCKET_TIMEOUT_MS);
    r->scan.total_timeout_ms = (uint32_t)(p && p->total_timeout.set ? p->total_timeout.v : 0);
    r->scan.unknown_set_empty = true;
    r->nodes = &r->rt->node_list;
    if (r->rt->rack_list.n) {
        if (racks_nodes(r->cluster, r->ns, &r->rt->rack_list, &r->rack_nodes, e))
            return e->code;
        r->nodes = &r->rack_nodes;
    }
    return build_filter(r, e);
}

static unsigned worker_count(const struct ns_run *r, size_t n_partitions)
{
    int64_t parallel = r->pol && r->pol->parallel.set ? r->pol->parallel.v : DEFAULT_PARALLEL;
    if (r->nodes->n && (size_t)parallel > r->nodes->n)
        parallel = (int64_t)r->nodes->n;
    if ((size_t)parallel > n_partitions)
        parallel = (int64_t)n_partitions;
    return parallel < 1 ? 1 : (unsigned)parallel;
}

static void set_records_per_second(struct ns_run *r, unsigned n_workers)
{
    if (!r->pol || !r->pol->records_per_second.set)
        return;
    size_t nodes = as_cluster_node_count(r->cluster);
    uint64_t share = (uint64_t)r->pol->records_per_second.v / ((nodes ? nodes : 1) * n_workers);
    r->scan.records_per_second = share ? (uint32_t)share : 1;
}

/* Starts the scan workers (when records are wanted); while they run, writes the UDF/index file
 * (number 1, as asbackup numbers it) and estimates the records, so that neither the info
 * round trips nor the file's sync delay the scan. */
static int run_namespace(struct ns_run *r, bool records_wanted, struct err *e)
{
    uint16_t *plan = malloc(CFG_PARTITIONS * sizeof *plan);
    size_t n_pids = 0;
    if (!plan || plan_partitions(r->rt, plan, &n_pids, e)) {
        free(plan);
        return plan ? e->code : err_set(e, ERR_NOMEM, "out of memory");
    }
    uint32_t metadata_n = metadata_file_wanted(r) ? file_number(r) : 0;
    unsigned n_workers = records_wanted ? worker_count(r, n_pids) : 0;
    struct worker *ws = calloc(n_workers ? n_workers : 1, sizeof *ws);
    int rc = ws ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    if (rc == 0 && n_workers) {
        set_records_per_second(r, n_workers);
        rc = start_workers(r, plan, n_pids, ws, n_workers, e);
    }
    free(plan);
    if (!ws)
        return rc;
    if (rc)
        r->stop = true;
    struct err me = {0};
    if (rc == 0 && metadata_n && write_metadata_file(r, metadata_n, &me))
        run_fail(r, &me);
    if (rc == 0 && n_workers)
        ATOMIC_ADD(&r->progress->records_estimate, estimate_records(r, n_pids));
    for (unsigned i = 0; i < n_workers; i++) {
        if (ws[i].started)
            pthread_join(ws[i].thread, NULL);
        as_scan_parts_free(&ws[i].parts);
    }
    free(ws);
    if (rc)
        return rc;
    if (r->failed) {
        *e = r->err;
        return e->code ? e->code : ERR_IO;
    }
    if (r->cancel && *r->cancel)
        return err_set(e, ERR_UNAVAILABLE, "backup cancelled");
    return 0;
}

/* Writes metadata.yaml (the object that makes the folder a backup) and returns what it says. */
static int write_meta(struct ns_run *r, struct backup_meta *out, struct err *e)
{
    struct backup_meta m = {
        .created_ms = r->spec->start_ms,
        .finished_ms = clock_now_ms(),
        .from_ms = r->spec->kind == BACKUP_INCREMENTAL && r->spec->modified_after_ms >= 0
                       ? r->spec->modified_after_ms : META_ZERO_TIME_MS,
        .record_count = r->records,
        .byte_count = r->bytes,
        .file_count = r->files,
        .secondary_index_count = r->sindexes,
        .udf_count = r->udfs,
    };
    str_printf(m.namespace_, sizeof m.namespace_, "%s", r->ns);
    str_printf(m.compression, sizeof m.compression, "%s", r->chain.zstd ? "ZSTD" : "NONE");
    str_printf(m.encryption, sizeof m.encryption, "%s",
               !r->chain.aes ? "NONE" : (r->chain.aes->bits == 128 ? "AES128" : "AES256"));
    char *text;
    if (meta_render(&m, &text, e))
        return e->code;
    char key[700];
    str_printf(key, sizeof key, "%smetadata.yaml", r->folder);
    int rc = stor_put(r->stor, key, text, strlen(text), e);
    free(text);
    if (rc == 0)
        *out = m;
    return rc;
}

/* Backs up one namespace into `base` + "data/<ns>/". *kept tells whether a backup remains (an
 * empty incremental is removed); then *meta is its metadata. */
static int backup_namespace(const struct backup_spec *spec, struct as_cluster *cluster, struct stor *stor,
                            struct backup_progress *progress, const volatile bool *cancel,
                            const char *base, const char *ns, struct backup_meta *meta, bool *kept,
                            struct err *e)
{
    const struct cfg_routine *rt = cfg_map_get(&spec->cfg->routines, spec->routine);
    struct ns_run r = {
        .spec = spec,
        .pol = cfg_map_get(&spec->cfg->policies, rt->backup_policy),
        .rt = rt,
        .cluster = cluster,
        .stor = stor,
        .progress = progress,
        .cancel = cancel,
        .ns = ns,
        .nodes = &rt->node_list,
    };
    pthread_mutex_init(&r.err_lock, NULL);
    throttle_init(&r.bandwidth, r.pol && r.pol->bandwidth.set ? (uint64_t)r.pol->bandwidth.v * 1024 * 1024 : 0);
    str_printf(r.folder, sizeof r.folder, "%sdata/%s/", base, ns);
    struct io_aes_key key;
    int rc = configure_run(&r, &key, e);
    bool records_wanted = !(r.pol && r.pol->no_records.v);
    if (rc == 0)
        rc = run_namespace(&r, records_wanted, e);
    bool empty_incremental = spec->kind == BACKUP_INCREMENTAL && r.records == 0;
    *kept = false;
    if (rc == 0 && empty_incremental)
        rc = stor_delete_prefix(stor, r.folder, e);
    else if (rc == 0 && (rc = write_meta(&r, meta, e)) == 0)
        *kept = true;
    if (r.scan.filter)
        as_buf_free(&r.filter);
    racks_nodes_free(&r.rack_nodes);
    memset(&key, 0, sizeof key);
    pthread_mutex_destroy(&r.err_lock);
    throttle_destroy(&r.bandwidth);
    if (rc)
        err_prefix(e, "namespace %s", ns);
    return rc;
}

/* with-cluster-configuration: configuration/aerospike_<i>.conf per node, for full backups. */
static int write_cluster_configuration(const struct backup_spec *spec, struct as_cluster *cluster,
                                       struct stor *stor, const char *base, struct err *e)
{
    const struct cfg_routine *rt = cfg_map_get(&spec->cfg->routines, spec->routine);
    const struct cfg_policy *pol = cfg_map_get(&spec->cfg->policies, rt->backup_policy);
    if (spec->kind != BACKUP_FULL || !pol || !pol->with_cluster_configuration.v)
        return 0;
    struct as_node **nodes;
    size_t n;
    if (as_cluster_nodes(cluster, &nodes, &n, e))
        return e->code;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *conf = NULL, key[700];
        rc = cluster_conf_fetch(nodes[i], &conf, e);
        str_printf(key, sizeof key, "%sconfiguration/aerospike_%zu.conf", base, i);
        if (rc == 0)
            rc = stor_put(stor, key, conf, strlen(conf), e);
        free(conf);
    }
    as_nodes_release(nodes, n);
    return rc ? err_prefix(e, "cluster configuration") : 0;
}

static int list_namespaces(struct as_cluster *c, const struct cfg_routine *rt, struct as_strv *out, struct err *e)
{
    if (rt->namespaces.n) {
        out->n = rt->namespaces.n;
        out->v = calloc(out->n, sizeof(char *));
        for (size_t i = 0; out->v && i < out->n; i++)
            out->v[i] = strdup(rt->namespaces.v[i]);
        return out->v ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    }
    struct as_node *node = as_cluster_random_node(c);
    if (!node)
        return err_set(e, ERR_UNAVAILABLE, "no cluster node available");
    int rc = as_info_namespaces(node, out, e);
    as_node_release(node);
    return rc;
}

/* ---- policy values ---------------------------------------------------------------------------- */

int backup_zstd_level(const struct cfg_compression *c)
{
    int64_t level = c && c->level.set ? c->level.v : 0;
    return level == 0 ? ZSTD_ABS_DEFAULT_LEVEL : (int)level;
}

/* ---- retries -------------------------------------------------------------------------------- */

void backup_retry_of(const struct cfg_policy *policy, struct backup_retry *out)
{
    const struct cfg_retry_policy *rp = policy ? policy->retry_policy : NULL;
    out->base_ms = rp && rp->base_timeout.set ? rp->base_timeout.v : DEFAULT_RETRY_BASE_MS;
    out->max_retries = rp && rp->max_retries.set ? rp->max_retries.v : DEFAULT_RETRY_MAX;
    out->multiplier = rp && rp->multiplier.set ? rp->multiplier.v : DEFAULT_RETRY_MULTIPLIER;
}

int64_t backup_retry_delay_ms(const struct backup_retry *r, int attempt)
{
    double d = (double)r->base_ms;
    for (int i = 0; i < attempt && d < (double)RETRY_DELAY_CAP_MS; i++)
        d *= r->multiplier;
    return d < (double)RETRY_DELAY_CAP_MS ? (int64_t)d : RETRY_DELAY_CAP_MS;
}

bool backup_retry_pause(const struct backup_retry *r, int attempt, const char *routine,
                        const volatile bool *cancel, struct err *e)
{
    int64_t delay = backup_retry_delay_ms(r, attempt);
    LOG_W("backup", "routine %s: %s (attempt %d of %lld); retrying in %lld ms", routine, e->msg, attempt + 1,
          (long long)r->max_retries + 1, (long long)delay);
    if (!backup_retry_wait(delay, cancel)) {
        err_set(e, ERR_UNAVAILABLE, "backup cancelled");
        return false;
    }
    err_clear(e);
    return true;
}

bool backup_retry_wait(int64_t ms, const volatile bool *cancel)
{
    while (ms > 0) {
        if (cancel && *cancel)
            return false;
        int64_t slice = ms < 100 ? ms : 100;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
        ms -= slice;
    }
    return !(cancel && *cancel);
}

static void progress_load(const struct backup_progress *p, struct backup_progress *out)
{
    out->records_done = __atomic_load_n(&p->records_done, __ATOMIC_RELAXED);
    out->records_written = __atomic_load_n(&p->records_written, __ATOMIC_RELAXED);
    out->bytes_written = __atomic_load_n(&p->bytes_written, __ATOMIC_RELAXED);
    out->files = __atomic_load_n(&p->files, __ATOMIC_RELAXED);
}

/* Progress back to what it was before a failed attempt (its records will be read again). */
static void progress_rewind(struct backup_progress *p, const struct backup_progress *to)
{
    __atomic_store_n(&p->records_done, to->records_done, __ATOMIC_RELAXED);
    __atomic_store_n(&p->records_written, to->records_written, __ATOMIC_RELAXED);
    __atomic_store_n(&p->bytes_written, to->bytes_written, __ATOMIC_RELAXED);
    __atomic_store_n(&p->files, to->files, __ATOMIC_RELAXED);
}

/* backup_namespace, run again per the policy's retry-policy after a failure: the failed
 * attempt's files are deleted first, so a retry starts from an empty namespace folder. */
static int backup_namespace_retrying(const struct backup_spec *spec, struct as_cluster *cluster,
                                     struct stor *stor, struct backup_progress *progress,
                                     const volatile bool *cancel, const char *base, const char *ns,
                                     struct backup_meta *meta, bool *kept, struct err *e)
{
    const struct cfg_routine *rt = cfg_map_get(&spec->cfg->routines, spec->routine);
    struct backup_retry retry;
    backup_retry_of(cfg_map_get(&spec->cfg->policies, rt->backup_policy), &retry);
    struct backup_progress before;
    progress_load(progress, &before);
    for (int attempt = 0;; attempt++) {
        int rc = backup_namespace(spec, cluster, stor, progress, cancel, base, ns, meta, kept, e);
        if (rc == 0 || (cancel && *cancel) || attempt >= retry.max_retries)
            return rc;
        char folder[700];
        str_printf(folder, sizeof folder, "%sdata/%s/", base, ns);
        struct err de = {0};
        if (stor_delete_prefix(stor, folder, &de))
            LOG_W("backup", "routine %s: cannot remove the failed attempt's files: %s", spec->routine, de.msg);
        progress_rewind(progress, &before);
        if (spec->on_retry)
            spec->on_retry(spec->retry_ctx, ns, attempt + 1, e);
        if (!backup_retry_pause(&retry, attempt, spec->routine, cancel, e))
            return e->code;
    }
}

int backup_run(const struct backup_spec *spec, struct as_cluster *cluster, struct stor *stor,
               struct backup_progress *progress, const volatile bool *cancel,
               struct backup_outcome *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    const struct cfg_routine *rt = cfg_map_get(&spec->cfg->routines, spec->routine);
    if (!rt)
        return err_set(e, ERR_NOT_FOUND, "routine %s not found", spec->routine);
    const struct cfg_service *svc = spec->cfg->service;
    char ts[96];
    if (meta_folder_name(spec->start_ms, svc && svc->backup ? svc->backup->timestamp_format : NULL, ts,
                         sizeof ts, e))
        return e->code;
    str_printf(out->folder, sizeof out->folder, "%s/%s/%s/", spec->routine,
               spec->kind == BACKUP_FULL ? "backup" : "incremental", ts);

    struct as_strv namespaces = {0};
    int rc = list_namespaces(cluster, rt, &namespaces, e);
    out->metas = calloc(namespaces.n ? namespaces.n : 1, sizeof *out->metas);
    if (rc == 0 && !out->metas)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < namespaces.n; i++) {
        bool kept = false;
        struct backup_meta *m = &out->metas[out->n_metas];
        rc = backup_namespace_retrying(spec, cluster, stor, progress, cancel, out->folder, namespaces.v[i], m,
                                       &kept, e);
        out->namespaces++;
        if (rc == 0 && kept) {
            out->records += m->record_count;
            out->bytes += m->byte_count;
            out->n_metas++;
        }
    }
    as_strv_free(&namespaces);
    if (rc == 0)
        rc = write_cluster_configuration(spec, cluster, stor, out->folder, e);
    out->empty = rc == 0 && spec->kind == BACKUP_INCREMENTAL && out->records == 0;
    if (rc || out->empty) {
        struct err de = {0};
        if (stor_delete_prefix(stor, out->folder, &de))
            LOG_E("backup", "routine %s: cannot remove %s: %s", spec->routine, out->folder, de.msg);
        out->n_metas = 0; /* nothing of this run is kept */
    }
    return rc;
}

void backup_outcome_free(struct backup_outcome *out)
{
    free(out->metas);
    out->metas = NULL;
    out->n_metas = 0;
}
