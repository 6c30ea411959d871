/*
 * backup_job.h - one backup run of a routine (full or incremental) into the ABS storage
 * layout (abs-reference §4): for every namespace, partition scans split over `parallel`
 * workers, records encoded to .asb, then [zstd], then [AES-CTR], split into files of
 * `file-limit` MiB, written through the storage interface; metadata.yaml last.
 *
 * Nothing partial stays visible: on failure or cancel the run's timestamp folder is deleted;
 * an empty incremental is deleted as well. The caller provides the cluster connection and the
 * storage, and reads the progress counters from any thread while the run goes on.
 */
#ifndef ABS_JOBS_BACKUP_JOB_H
#define ABS_JOBS_BACKUP_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "aerospike/as_cluster.h"
#include "config/cfg_model.h"
#include "jobs/backup_meta.h"
#include "storage/storage.h"
#include "util/err.h"
#include "util/slots.h"

enum backup_kind { BACKUP_FULL = 0, BACKUP_INCREMENTAL = 1 };

/* Live counters (relaxed atomics; read them with __atomic_load_n). */
struct backup_progress {
    uint64_t records_estimate; /* total records expected (0 = unknown yet) */
    uint64_t records_done;     /* records read from the cluster */
    uint64_t records_written;  /* records encoded to files */
    uint64_t bytes_written;    /* bytes handed to storage */
    uint64_t files;
};

struct backup_spec {
    const struct cfg *cfg;      /* snapshot the run uses (kept alive by the caller) */
    const char *routine;
    enum backup_kind kind;
    int64_t start_ms;           /* scheduled start: the folder timestamp and metadata `created` */
    int64_t modified_after_ms;  /* incremental lower bound, -1 = none */
    int64_t modified_before_ms; /* sealed upper bound, -1 = none */
    struct slots *scan_slots;   /* the cluster's max-parallel-scans, shared by jobs; NULL = none */
    /* called before a failed namespace is run again (retry-policy); NULL = nothing to tell */
    void (*on_retry)(void *ctx, const char *ns, int attempt, const struct err *cause);
    void *retry_ctx;
};

/* The zstd level of a compression policy: its `level`, where 0 or unset means what it means to
 * ABS, the fastest speed class (libzstd level 1); -1..22 otherwise as given. */
int backup_zstd_level(const struct cfg_compression *c);

/* The backup policy's retry-policy, ABS's defaults where unset (60 s, 5 retries, x1.5): a failed
 * namespace backup (or a cluster that cannot be reached at the start) is tried again after
 * base x multiplier^attempt ms, up to max-retries times. */
struct backup_retry {
    int64_t base_ms;
    int64_t max_retries;
    double multiplier;
};
void backup_retry_of(const struct cfg_policy *policy, struct backup_retry *out);
int64_t backup_retry_delay_ms(const struct backup_retry *r, int attempt);
/* Sleeps ms unless *cancel turns true first (checked every 100 ms); false when cancelled. */
bool backup_retry_wait(int64_t ms, const volatile bool *cancel);
/* Before retry `attempt` (from 0) of what failed with e: logs it with the delay, waits, and
 * clears e; false (e = "backup cancelled") when cancelled meanwhile. */
bool backup_retry_pause(const struct backup_retry *r, int attempt, const char *routine,
                        const volatile bool *cancel, struct err *e);

struct backup_outcome {
    char folder[512];           /* "<routine>/backup/<TS>/" (deleted again when empty) */
    unsigned namespaces;
    uint64_t records;
    uint64_t bytes;
    bool empty;                 /* incremental without records: nothing kept */
    struct backup_meta *metas;  /* metadata.yaml of each namespace backup kept (owned) */
    size_t n_metas;
};

int backup_run(const struct backup_spec *spec, struct as_cluster *cluster, struct stor *stor,
               struct backup_progress *progress, const volatile bool *cancel,
               struct backup_outcome *out, struct err *e);

/* Frees what backup_run allocated in *out (safe after a failed run). */
void backup_outcome_free(struct backup_outcome *out);

#endif
