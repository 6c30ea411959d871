/*
 * restore_job.h - the restore engine: applies one or more namespace backup folders (a full
 * backup, then incrementals) to a destination cluster, with the semantics of ABS's
 * dto.RestorePolicy (abs-reference §3.3) and the writes asrestore sends (wire/f1..f6).
 *
 * No HTTP and no job table here: the caller decodes the request (restore_policy_from_json
 * decodes its `policy` object), resolves storage and cluster, builds the folder list (one
 * folder for /restore/full and /incremental, restore_folders_for_timestamp for
 * /restore/timestamp), runs restore_run on a thread of its own and reads the progress
 * counters from any thread.
 *
 * Per folder, in the order given:
 *   1. its `.asb` objects are listed (direct children of the folder; metadata.yaml and other
 *      names are ignored); `metadata_*.asb` files (UDF and index lines of ABS/backup-go
 *      backups) are read first, one after another;
 *   2. UDFs are registered as they are read (udf-put), secondary indexes are collected and
 *      created after them, before any record is written - the order of asrestore 4.x without
 *      --indexes-last (f1: udf-put, sindex-create, then the batch writes). An index that
 *      already exists with the same definition is fine (counted as restored); one with the
 *      same name and another definition is counted in index_conflicts and logged, the
 *      restore goes on. Index set `null` (asbackup 4.5.8's spelling of "no set") = no set;
 *   3. the record files are read by `parallel` workers, one file per worker at a time:
 *      storage reader -> [AES-CTR] -> [zstd] -> .asb decoder -> filters -> writes. Global
 *      lines met in record files (asbackup puts them at the top of its first file) are
 *      applied where they are met;
 *   4. at the end, the run waits (bounded, cancellable) until the indexes it created report
 *      state RW.
 * Folders are applied strictly one after another (an incremental after its full), or newest
 * first with create-only writes when spec->reorder is set.
 *
 * Records: set-list (records without a set never match a non-empty list), bin-list (a record
 * left without bins is skipped), namespace remap; TTL from the void-time: never-expiring stays
 * so, else remaining seconds + extra-ttl; remaining <= 0 -> expired-records, not written.
 * Writes: batch writes of batch-size records (single puts with disable-batch-writes); exists
 * policy replace -> CREATE_OR_REPLACE, unique -> CREATE_ONLY, else UPDATE (merge, as Aerospike
 * "upsert"); generation: no-generation -> none, else GEN_GT with the backup's generation (kept
 * with replace/unique, as asrestore does). Results: 0 inserted, 3 fresher, 5 existed, 20
 * (namespace unknown to the destination) fails the restore, no answer after the retries ->
 * errors-in-doubt and the restore fails, any other code -> ignored. Transient results are
 * retried by the writer: retry n after base-timeout x multiplier^(n-1), max-retries times.
 * Each worker keeps up to max-async-batches batches in flight (single writes with
 * disable-batch-writes: that many records), each on its own connection, bounded by 3/4 of
 * the destination's per-node connection pool shared by the `parallel` workers.
 * tps throttles records/s across all workers; bandwidth throttles bytes read from storage.
 *
 * Errors: a bad backup file fails the restore with "<object key>: line L, offset O: ..."
 * (offset in the decoded .asb stream). What was written stays. A cancel stops the workers
 * between records and the writer between attempts; restore_run then fails with
 * ERR_UNAVAILABLE "restore cancelled".
 */
#ifndef ABS_JOBS_RESTORE_JOB_H
#define ABS_JOBS_RESTORE_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aerospike/as_cluster.h"
#include "jobs/backup_meta.h"
#include "storage/storage.h"
#include "util/err.h"

/* ---- policy (dto.RestorePolicy) ------------------------------------------------------------ */

#define RESTORE_DEFAULT_PARALLEL 8
#define RESTORE_DEFAULT_BATCH_SIZE 128
#define RESTORE_DEFAULT_MAX_ASYNC_BATCHES 128
#define RESTORE_DEFAULT_SOCKET_TIMEOUT_MS 600000
#define RESTORE_DEFAULT_RETRY_BASE_MS 2000
#define RESTORE_DEFAULT_RETRY_MAX 5
#define RESTORE_DEFAULT_RETRY_MULTIPLIER 2.0

struct restore_policy {
    int64_t parallel;          /* files read at once, >= 1 (8) */
    bool no_records, no_indexes, no_udfs;
    bool no_generation;        /* no generation condition (else GEN_GT) */
    bool replace;              /* CREATE_OR_REPLACE */
    bool unique;               /* CREATE_ONLY */
    int64_t extra_ttl;         /* seconds added to expirable records (0) */
    int64_t batch_size;        /* >= 1 (128) */
    int64_t max_async_batches; /* >= 1 (128) */
    bool disable_batch_writes;
    int64_t tps;               /* records/s, 0 = unlimited */
    int64_t bandwidth;         /* MiB/s, 0 = unlimited */
    char *ns_source;           /* namespace remap; both NULL = none */
    char *ns_destination;
    char **set_list;           /* NULL/0 = all sets */
    size_t n_set_list;
    char **bin_list;           /* NULL/0 = all bins */
    size_t n_bin_list;
    int64_t socket_timeout_ms; /* 600000 */
    int64_t total_timeout_ms;  /* 0 = none */
    int64_t retry_base_ms;     /* 2000 */
    int64_t retry_max;         /* 5 */
    double retry_multiplier;   /* 2.0: backoff factor between retries */
    bool has_encryption;       /* `encryption` given */
    char encryption_mode[8];   /* NONE | AES128 | AES256 ("NONE" by default) */
    char *key_file, *key_env, *key_secret;
    const struct cfg_secret_agent *key_agent; /* answers a key-secret reference (not owned, NULL = none) */
    bool has_compression;      /* `compression` given (RestorePolicy only) */
    char compression_mode[8];  /* NONE | ZSTD ("NONE" by default) */
};

/* Defaults of §3.3 (nothing allocated). */
void restore_policy_init(struct restore_policy *p);
/*
 * Decodes the `policy` object of a RestoreRequest (NULL or JSON null = all defaults). Strict:
 * unknown keys, wrong types and out-of-range values fail with ERR_INVALID naming the field
 * ("policy.batch-size: must be >= 1"); so do replace+unique together. `timestamp` = the
 * TimestampRestorePolicy of /restore/timestamp (no `compression`). On failure *p is freed and
 * left with defaults.
 */
int restore_policy_from_json(const json_t *j, bool timestamp, struct restore_policy *p, struct err *e);
void restore_policy_free(struct restore_policy *p);

/* ---- progress ------------------------------------------------------------------------------- */

/* Live counters (relaxed atomics: read with __atomic_load_n). At the end of a successful run
 * read = inserted + fresher + existed + ignored + skipped + expired. */
struct restore_progress {
    uint64_t records_estimate; /* sum of the folders' metadata record-count (0 = unknown) */
    uint64_t read_records;
    uint64_t inserted_records;
    uint64_t fresher_records;
    uint64_t existed_records;
    uint64_t ignored_records;
    uint64_t skipped_records;
    uint64_t expired_records;
    uint64_t errors_in_doubt;
    uint64_t index_count;      /* index lines restored: created, or already present with the
                                  same definition (counted per folder that carries them) */
    uint64_t index_conflicts;  /* same name, other definition: not created */
    uint64_t udf_count;
    uint64_t total_bytes;      /* bytes read from storage */
    uint64_t files_done;
};

/* ---- what to restore ------------------------------------------------------------------------ */

struct restore_folder {
    char *path;         /* namespace folder key, e.g. "daily/backup/1704110400000/data/test" */
    bool zstd;          /* files are zstd-compressed */
    int aes_bits;       /* 0 = not encrypted, 128 or 256 */
    uint64_t records;   /* metadata record-count (progress estimate), 0 = unknown */
    int64_t created_ms; /* metadata `created` (0 = unknown) */
    bool incremental;
};

struct restore_spec {
    const struct restore_folder *folders; /* applied in this order (oldest first) */
    size_t n_folders;
    const struct restore_policy *policy;  /* NULL = defaults */
    /* Timestamp restore into an empty namespace (unless disable-reordering): apply the folders
     * newest first with create-only writes, so each record is written once (older versions
     * count as existed-records). */
    bool reorder;
};

/*
 * Fills `f` for the folder `path` (trailing '/' optional) of a /restore/full or /incremental
 * request: compression and encryption from the policy when it has them, else from the
 * folder's metadata.yaml when there is one (a missing metadata.yaml is fine, an unreadable or
 * corrupt one is an error). Free with restore_folder_free.
 */
int restore_folder_load(struct stor *s, const char *path, const struct restore_policy *p,
                        struct restore_folder *f, struct err *e);
void restore_folder_free(struct restore_folder *f);

/* Whether namespace `ns` holds no record on any node of the cluster (decides `reorder`). */
int restore_namespace_empty(struct as_cluster *c, const char *ns, bool *empty, struct err *e);

/* Restores spec->folders in order. `cancel` may be NULL. */
int restore_run(const struct restore_spec *spec, struct as_cluster *dest, struct stor *src,
                struct restore_progress *p, const volatile bool *cancel, struct err *e);
/* Restores several specs (one per namespace) at the same time, one restore_run each, sharing
 * the progress counters. The first failure stops the others and is the one returned; an
 * external cancel gives ERR_UNAVAILABLE "restore cancelled". */
int restore_run_parallel(const struct restore_spec *specs, size_t n, struct as_cluster *dest, struct stor *src,
                         struct restore_progress *p, const volatile bool *cancel, struct err *e);

/* ---- point in time -------------------------------------------------------------------------- */

/* The backups of one namespace to apply for a timestamp restore, oldest first. */
struct restore_chain {
    char ns[256];
    struct restore_folder *folders; /* [0] = the full backup, then incrementals */
    size_t n_folders;
};

/*
 * Reads every metadata.yaml under "<routine>/backup/" and "<routine>/incremental/" and picks,
 * per namespace, the newest full backup created before `time_ms` and every incremental created
 * after it and before `time_ms`, oldest first (compression/encryption/record-count from each
 * metadata.yaml). Namespaces without a full backup before the time are left out; when none
 * has one: ERR_NOT_FOUND. Chains come sorted by namespace. Free with restore_chains_free.
 */
int restore_folders_for_timestamp(struct stor *s, const char *routine, int64_t time_ms,
                                  struct restore_chain **out, size_t *n_out, struct err *e);
void restore_chains_free(struct restore_chain *c, size_t n);

#endif
