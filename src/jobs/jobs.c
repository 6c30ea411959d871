/*
 * jobs.c - the job manager (see jobs.h): a table of running backup jobs, one thread each.
 *
 * A job: open the routine's storage, connect to its cluster, compute the incremental bounds
 * from the history, run backup_run(), then record the result in the history, apply
 * retention after a successful full, count it in the metrics and report it to the scheduler.
 */
#include "jobs/jobs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_schema.h"
#include "jobs/backup_job.h"
#include "jobs/backup_meta.h"
#include "jobs/cluster_link.h"
#include "jobs/restores.h"
#include "jobs/stor_link.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

#define METRIC_PREFIX "aerospike_backup_service_"

struct job {
    struct jobs *owner;
    struct job *next;
    char routine[256];
    enum sched_backup_type type;
    int64_t scheduled_ms;
    int64_t started_ms;
    struct cfg *snapshot;
    struct backup_progress progress;
    volatile bool cancel;
};

/* max-parallel-scans of one cluster, shared by every job on it. */
struct cluster_slots {
    struct cluster_slots *next;
    char name[256];
    struct slots slots;
};

/* Scheduler counters already exported for one routine (metrics are counters: add deltas). */
struct exported_stats {
    struct exported_stats *next;
    char routine[256];
    struct sched_type_stats type[SCHED_TYPE_COUNT];
};

struct jobs {
    pthread_mutex_t lock;
    struct cluster_slots *slots;
    struct exported_stats *exported;
    pthread_cond_t idle;
    struct job *running;
    unsigned n_running;
    struct sched *sched;
    struct restores *restores; /* retention waits while a restore reads the routine */
    struct history_cache *history;
    struct metrics *metrics;
    /* start-up history loader (see jobs_load_history); under lock: */
    pthread_t loader;
    bool loader_started, loader_done, stopping;
    pthread_cond_t loader_cv;
    char *loader_routine; /* the routine the loader reads now */
    char *ensure_routine; /* the routine the scheduler's history check reads now */
};

static enum backup_kind kind_of(enum sched_backup_type t)
{
    return t == SCHED_FULL ? BACKUP_FULL : BACKUP_INCREMENTAL;
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void count_outcome(struct jobs *j, const struct job *job, const char *outcome, int64_t duration_ms)
{
    static const char *const event_labels[] = {"routine", "type", "outcome", NULL};
    static const char *const routine_labels[] = {"routine", "type", NULL};
    if (!j->metrics)
        return;
    const char *type = sched_type_name(job->type);
    const char *values[] = {job->routine, type, outcome};
    metrics_inc(metrics_counter(j->metrics, METRIC_PREFIX "backup_events_total",
                                "Backup jobs by routine, type and outcome.", event_labels), values);
    if (strcmp(outcome, "success") != 0)
        return;
    metrics_set(metrics_gauge(j->metrics, METRIC_PREFIX "last_successful_backup_timestamp",
                              "Epoch seconds of the last successful backup.", routine_labels),
                values, (double)clock_now_ms() / 1000.0);
    metrics_observe(metrics_histogram(j->metrics, METRIC_PREFIX "backup_duration_seconds", "Duration of backup jobs.",
                                      routine_labels, NULL, 0),
                    values, (double)duration_ms / 1000.0);
}

/* ---- one job -------------------------------------------------------------------------------- */

static int open_targets(struct job *job, const struct cfg_routine *rt, struct stor **stor,
                        struct as_cluster **cluster, struct err *e)
{
    const struct cfg_storage *sc = cfg_map_get(&job->snapshot->storage, rt->storage);
    const struct cfg_cluster *cc = cfg_map_get(&job->snapshot->clusters, rt->source_cluster);
    if (!sc || !cc)
        return err_set(e, ERR_INVALID, "routine %s: storage or cluster missing", job->routine);
    struct secret_scope scope = {.agents = &job->snapshot->secret_agents};
    if (job_stor_open(rt->storage, sc, &scope, stor, e))
        return e->code;
    return job_cluster_connect(rt->source_cluster, cc, &scope, cluster, e);
}

/* open_targets, tried again per the policy's retry-policy: a cluster (or a store) that does not
 * answer at the start, e.g. a node restarting, does not fail the run at once. */
static int open_targets_retrying(struct jobs *j, struct job *job, const struct cfg_routine *rt,
                                 const struct backup_retry *retry, struct stor **stor,
                                 struct as_cluster **cluster, struct err *e)
{
    for (int attempt = 0;; attempt++) {
        int rc = open_targets(job, rt, stor, cluster, e);
        if (rc == 0 || job->cancel || attempt >= retry->max_retries)
            return rc;
        stor_close(*stor);
        *stor = NULL;
        count_outcome(j, job, "retry", 0);
        if (!backup_retry_pause(retry, attempt, job->routine, &job->cancel, e))
            return e->code;
    }
}

/* A namespace about to be backed up again (backup_spec.on_retry): counted as a retry event. */
static void on_namespace_retry(void *ctx, const char *ns, int attempt, const struct err *cause)
{
    (void)ns;
    (void)attempt;
    (void)cause; /* logged by the backup engine */
    struct job *job = ctx;
    count_outcome(job->owner, job, "retry", 0);
}

/* Records the new backups in the history cache (no storage listing) and applies retention. */
static void after_success(struct jobs *j, struct job *job, const struct cfg_routine *rt, struct stor *stor,
                          const struct backup_outcome *out)
{
    struct err e = {0};
    for (size_t i = 0; i < out->n_metas; i++)
        if (history_cache_add(j->history, job->routine, job->type, out->folder, NULL, &out->metas[i], &e))
            LOG_W("jobs", "routine %s: history not updated: %s", job->routine, e.msg);
    if (job->type != SCHED_FULL)
        return;
    const struct cfg_policy *pol = cfg_map_get(&job->snapshot->policies, rt->backup_policy);
    if (!pol || !pol->retention)
        return;
    if (j->restores && restores_busy_with(j->restores, job->routine)) {
        LOG_I("jobs", "routine %s: retention skipped while a restore reads its backups", job->routine);
        return;
    }
    int64_t keep_full = pol->retention->full.set ? pol->retention->full.v : -1;
    int64_t keep_incr = pol->retention->incremental.set ? pol->retention->incremental.v : -1;
    if (history_cache_apply_retention(j->history, job->routine, stor, keep_full, keep_incr, &e))
        LOG_W("jobs", "routine %s: retention failed: %s", job->routine, e.msg);
}

/* The scan slots of a cluster (created on first use, capacity kept up to date). */
static struct slots *cluster_slots_for(struct jobs *j, const char *name, const struct cfg_cluster *cc)
{
    int capacity = cc && cc->max_parallel_scans.set ? (int)cc->max_parallel_scans.v : 0;
    pthread_mutex_lock(&j->lock);
    struct cluster_slots *cs = j->slots;
    while (cs && strcmp(cs->name, name) != 0)
        cs = cs->next;
    if (!cs && (cs = calloc(1, sizeof *cs)) != NULL) {
        str_printf(cs->name, sizeof cs->name, "%s", name);
        slots_init(&cs->slots, capacity);
        cs->next = j->slots;
        j->slots = cs;
    }
    if (cs) {
        pthread_mutex_lock(&cs->slots.lock);
        cs->slots.capacity = capacity;
        pthread_mutex_unlock(&cs->slots.lock);
    }
    pthread_mutex_unlock(&j->lock);
    return cs ? &cs->slots : NULL;
}

static int run_job(struct jobs *j, struct job *job, struct err *e)
{
    const struct cfg_routine *rt = cfg_map_get(&job->snapshot->routines, job->routine);
    if (!rt)
        return err_set(e, ERR_NOT_FOUND, "routine %s not found", job->routine);
    const struct cfg_policy *pol = cfg_map_get(&job->snapshot->policies, rt->backup_policy);
    struct stor *stor = NULL;
    struct as_cluster *cluster = NULL;
    struct backup_retry retry;
    backup_retry_of(pol, &retry);
    int rc = open_targets_retrying(j, job, rt, &retry, &stor, &cluster, e);
    if (rc == 0) {
        struct backup_spec spec = {
            .cfg = job->snapshot,
            .routine = job->routine,
            .kind = kind_of(job->type),
            .start_ms = job->scheduled_ms,
            .modified_after_ms = -1,
            .modified_before_ms = pol && pol->sealed.v ? job->scheduled_ms : -1,
            .scan_slots = cluster_slots_for(j, rt->source_cluster,
                                            cfg_map_get(&job->snapshot->clusters, rt->source_cluster)),
            .on_retry = on_namespace_retry,
            .retry_ctx = job,
        };
        if (job->type == SCHED_INCREMENTAL) {
            int64_t full = history_cache_last_success(j->history, job->routine, SCHED_FULL);
            int64_t incr = history_cache_last_success(j->history, job->routine, SCHED_INCREMENTAL);
            spec.modified_after_ms = full > incr ? full : incr;
            if (spec.modified_after_ms < 0)
                rc = err_set(e, ERR_INVALID, "no full backup yet");
        }
        struct backup_outcome out = {0};
        if (rc == 0)
            rc = backup_run(&spec, cluster, stor, &job->progress, &job->cancel, &out, e);
        if (rc == 0) {
            LOG_I("jobs", "routine %s: %s backup %s: %llu records, %llu bytes", job->routine,
                  sched_type_name(job->type), out.empty ? "empty (removed)" : out.folder,
                  (unsigned long long)out.records, (unsigned long long)out.bytes);
            after_success(j, job, rt, stor, &out);
        }
        backup_outcome_free(&out);
    }
    as_cluster_free(cluster);
    stor_close(stor);
    return rc;
}

/* Takes the job out of the table (the routine looks idle from now on); returns the scheduler
 * to report to. The job still counts as running until job_done(). */
static struct sched *job_unlist(struct jobs *j, struct job *job)
{
    pthread_mutex_lock(&j->lock);
    for (struct job **p = &j->running; *p; p = &(*p)->next) {
        if (*p == job) {
            *p = job->next;
            break;
        }
    }
    struct sched *s = j->sched;
    pthread_mutex_unlock(&j->lock);
    return s;
}

/* Last touch of `j` by a job thread: jobs_free() may free it right after. */
static void job_done(struct jobs *j)
{
    pthread_mutex_lock(&j->lock);
    j->n_running--;
    pthread_cond_broadcast(&j->idle);
    pthread_mutex_unlock(&j->lock);
}

static bool routine_running_locked(struct jobs *j, const char *routine)
{
    bool found = false;
    for (struct job *job = j->running; job && !found; job = job->next)
        found = strcmp(job->routine, routine) == 0;
    return found;
}

static bool routine_running(struct jobs *j, const char *routine)
{
    pthread_mutex_lock(&j->lock);
    bool found = routine_running_locked(j, routine);
    pthread_mutex_unlock(&j->lock);
    return found;
}

/* A job whose routine the start-up history loader is cleaning up waits for it to finish: the
 * clean-up deletes folders without metadata.yaml, which the job's own folder is until its end. */
static void wait_for_loader(struct jobs *j, const char *routine)
{
    pthread_mutex_lock(&j->lock);
    while (j->loader_routine && strcmp(j->loader_routine, routine) == 0)
        pthread_cond_wait(&j->loader_cv, &j->lock);
    pthread_mutex_unlock(&j->lock);
}

static void *job_main(void *arg)
{
    struct job *job = arg;
    struct jobs *j = job->owner;
    struct err e = {0};
    wait_for_loader(j, job->routine);
    int rc = run_job(j, job, &e);
    int64_t duration = clock_now_ms() - job->started_ms;
    const char *outcome = rc == 0 ? "success" : (job->cancel ? "canceled" : "failure");
    if (rc)
        LOG_E("jobs", "routine %s: %s backup %s: %s", job->routine, sched_type_name(job->type), outcome, e.msg);
    count_outcome(j, job, outcome, duration);
    struct sched *s = job_unlist(j, job);
    if (s)
        sched_report_result(s, job->routine, job->type, rc == 0, duration);
    cfg_release(job->snapshot);
    free(job);
    job_done(j);
    return NULL;
}

/* ---- runner interface ---------------------------------------------------------------------- */

static int runner_start(void *ctx, struct cfg *snapshot, const char *routine, enum sched_backup_type type,
                        int64_t scheduled_ms, struct err *e)
{
    struct jobs *j = ctx;
    struct job *job = calloc(1, sizeof *job);
    if (!job)
        return err_set(e, ERR_NOMEM, "out of memory");
    job->owner = j;
    str_printf(job->routine, sizeof job->routine, "%s", routine);
    job->type = type;
    job->scheduled_ms = scheduled_ms;
    job->started_ms = clock_now_ms();
    job->snapshot = cfg_retain(snapshot);
    pthread_mutex_lock(&j->lock);
    job->next = j->running;
    j->running = job;
    j->n_running++;
    pthread_mutex_unlock(&j->lock);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, job_main, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        job_unlist(j, job);
        job_done(j);
        cfg_release(job->snapshot);
        free(job);
        return err_set(e, ERR_INTERNAL, "cannot start a job thread");
    }
    LOG_I("jobs", "routine %s: %s backup started", routine, sched_type_name(type));
    return 0;
}

static bool runner_is_running(void *ctx, const char *routine, enum sched_backup_type type)
{
    struct jobs *j = ctx;
    bool found = false;
    pthread_mutex_lock(&j->lock);
    for (struct job *job = j->running; job && !found; job = job->next)
        found = job->type == type && strcmp(job->routine, routine) == 0;
    pthread_mutex_unlock(&j->lock);
    return found;
}

void jobs_cancel_routine(struct jobs *j, const char *routine)
{
    pthread_mutex_lock(&j->lock);
    for (struct job *job = j->running; job; job = job->next)
        if (!routine || strcmp(job->routine, routine) == 0)
            job->cancel = true;
    pthread_mutex_unlock(&j->lock);
}

static void runner_cancel(void *ctx, const char *routine)
{
    jobs_cancel_routine(ctx, routine);
}

/* Reads a routine's history from its storage into the cache. With `clean` (no backup of the
 * routine may run), first deletes the partial backups an interrupted run left behind. */
static int refresh_routine(struct jobs *j, const struct cfg *snapshot, const char *routine, bool clean,
                           struct err *e)
{
    const struct cfg_routine *rt = cfg_map_get(&snapshot->routines, routine);
    const struct cfg_storage *sc = rt ? cfg_map_get(&snapshot->storage, rt->storage) : NULL;
    if (!sc)
        return err_set(e, ERR_NOT_FOUND, "routine %s: storage not configured", routine);
    struct stor *stor = NULL;
    struct secret_scope scope = {.agents = &snapshot->secret_agents};
    int rc = job_stor_open(rt->storage, sc, &scope, &stor, e);
    if (rc == 0 && clean) {
        size_t deleted = 0;
        struct err ce = {0};
        if (history_clean_partial(stor, routine, &deleted, &ce))
            LOG_W("jobs", "routine %s: partial backups not cleaned up: %s", routine, ce.msg);
        else if (deleted)
            LOG_I("jobs", "routine %s: %zu partial backup folder(s) left by an interrupted run deleted",
                  routine, deleted);
    }
    if (rc == 0)
        rc = history_cache_refresh(j->history, routine, stor, e);
    stor_close(stor);
    return rc;
}

/* The scheduler's history check: a routine whose history never loaded is read again. Called with
 * the scheduler's work lock held, so no scheduled job of the routine starts meanwhile. */
static int history_ensure(void *ctx, const struct cfg *snapshot, const char *routine, struct err *e)
{
    struct jobs *j = ctx;
    if (history_cache_loaded(j->history, routine))
        return 0;
    if (!snapshot)
        return err_set(e, ERR_NOT_FOUND, "routine %s: no configuration", routine);
    pthread_mutex_lock(&j->lock);
    bool loader_has_it = j->loader_routine && strcmp(j->loader_routine, routine) == 0;
    char *mine = loader_has_it ? NULL : strdup(routine);
    j->ensure_routine = mine;
    pthread_mutex_unlock(&j->lock);
    if (loader_has_it)
        return err_set(e, ERR_UNAVAILABLE, "routine %s: history is being read", routine);
    if (!mine)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = refresh_routine(j, snapshot, routine, !routine_running(j, routine), e);
    pthread_mutex_lock(&j->lock);
    j->ensure_routine = NULL;
    pthread_mutex_unlock(&j->lock);
    free(mine);
    return rc;
}

static int64_t history_last(void *ctx, const char *routine, enum sched_backup_type type)
{
    struct jobs *j = ctx;
    return history_cache_last_success(j->history, routine, type);
}

struct sched_runner jobs_runner(struct jobs *j)
{
    return (struct sched_runner){j, runner_start, runner_is_running, runner_cancel};
}

struct sched_history jobs_history(struct jobs *j)
{
    return (struct sched_history){j, history_last, history_ensure};
}

/* ---- lifetime ------------------------------------------------------------------------------- */

int jobs_new(struct history_cache *history, struct metrics *metrics, struct jobs **out, struct err *e)
{
    struct jobs *j = calloc(1, sizeof *j);
    if (!j)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->idle, NULL);
    pthread_cond_init(&j->loader_cv, NULL);
    j->history = history;
    j->metrics = metrics;
    *out = j;
    return 0;
}

void jobs_set_scheduler(struct jobs *j, struct sched *s)
{
    j->sched = s;
}

void jobs_set_restores(struct jobs *j, struct restores *r)
{
    j->restores = r;
}

void jobs_free(struct jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    j->stopping = true;
    pthread_mutex_unlock(&j->lock);
    if (j->loader_started)
        pthread_join(j->loader, NULL);
    jobs_cancel_routine(j, NULL);
    pthread_mutex_lock(&j->lock);
    j->sched = NULL;
    while (j->n_running > 0)
        pthread_cond_wait(&j->idle, &j->lock);
    pthread_mutex_unlock(&j->lock);
    while (j->exported) {
        struct exported_stats *next = j->exported->next;
        free(j->exported);
        j->exported = next;
    }
    while (j->slots) {
        struct cluster_slots *next = j->slots->next;
        slots_destroy(&j->slots->slots);
        free(j->slots);
        j->slots = next;
    }
    pthread_cond_destroy(&j->idle);
    pthread_cond_destroy(&j->loader_cv);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

unsigned jobs_running_count(struct jobs *j)
{
    pthread_mutex_lock(&j->lock);
    unsigned n = j->n_running;
    pthread_mutex_unlock(&j->lock);
    return n;
}

void jobs_refresh_history(struct jobs *j, const struct cfg *snapshot)
{
    for (size_t i = 0; i < snapshot->routines.n; i++) {
        struct err e = {0};
        if (refresh_routine(j, snapshot, snapshot->routines.names[i], false, &e))
            LOG_W("jobs", "routine %s: history not loaded: %s", snapshot->routines.names[i], e.msg);
    }
}

/* Claims `routine` for the loader unless it is loaded or the scheduler reads it; *clean tells
 * whether its partial backups may go (no job of it runs: from now on a new one waits for the
 * loader, see wait_for_loader). Lock held. */
static bool loader_claim(struct jobs *j, const char *routine, bool *clean)
{
    if (j->stopping || history_cache_loaded(j->history, routine) ||
        (j->ensure_routine && strcmp(j->ensure_routine, routine) == 0))
        return false;
    *clean = !routine_running_locked(j, routine);
    j->loader_routine = strdup(routine);
    return j->loader_routine != NULL;
}

struct loader_args {
    struct jobs *j;
    struct cfg *snapshot;
};

static void *loader_main(void *arg)
{
    struct loader_args *a = arg;
    struct jobs *j = a->j;
    for (size_t i = 0; i < a->snapshot->routines.n; i++) {
        const char *routine = a->snapshot->routines.names[i];
        bool clean = false;
        pthread_mutex_lock(&j->lock);
        bool mine = loader_claim(j, routine, &clean);
        pthread_mutex_unlock(&j->lock);
        if (!mine)
            continue;
        struct err e = {0};
        if (refresh_routine(j, a->snapshot, routine, clean, &e))
            LOG_W("jobs", "routine %s: history not loaded: %s", routine, e.msg);
        pthread_mutex_lock(&j->lock);
        free(j->loader_routine);
        j->loader_routine = NULL;
        pthread_cond_broadcast(&j->loader_cv);
        pthread_mutex_unlock(&j->lock);
    }
    pthread_mutex_lock(&j->lock);
    j->loader_done = true;
    pthread_cond_broadcast(&j->loader_cv);
    pthread_mutex_unlock(&j->lock);
    cfg_release(a->snapshot);
    free(a);
    return NULL;
}

int jobs_load_history(struct jobs *j, struct cfg *snapshot, int64_t wait_ms, struct err *e)
{
    struct loader_args *a = malloc(sizeof *a);
    if (!a)
        return err_set(e, ERR_NOMEM, "out of memory");
    *a = (struct loader_args){j, cfg_retain(snapshot)};
    if (pthread_create(&j->loader, NULL, loader_main, a) != 0) {
        cfg_release(a->snapshot);
        free(a);
        return err_set(e, ERR_INTERNAL, "cannot start the history loader thread");
    }
    j->loader_started = true;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->lock);
    while (!j->loader_done && pthread_cond_timedwait(&j->loader_cv, &j->lock, &until) == 0)
        ;
    bool done = j->loader_done;
    pthread_mutex_unlock(&j->lock);
    if (!done)
        LOG_W("jobs", "backup history still loading after %lld ms; starting without waiting for it",
              (long long)wait_ms);
    return 0;
}

/* ---- RoutineState ------------------------------------------------------------------------ */

static json_t *time_or_null(int64_t ms)
{
    if (ms < 0)
        return json_null();
    char buf[40];
    meta_format_time(ms, buf, sizeof buf);
    return json_string(buf);
}

static json_t *running_job_json(const struct job *job, int64_t now)
{
    uint64_t total = __atomic_load_n(&job->progress.records_estimate, __ATOMIC_RELAXED);
    uint64_t done = __atomic_load_n(&job->progress.records_done, __ATOMIC_RELAXED);
    uint64_t written = __atomic_load_n(&job->progress.records_written, __ATOMIC_RELAXED);
    uint64_t bytes = __atomic_load_n(&job->progress.bytes_written, __ATOMIC_RELAXED);
    int64_t elapsed = now - job->started_ms > 0 ? now - job->started_ms : 1;
    int pct = total ? (int)(done * 100 / total) : 0;
    if (pct > 100)
        pct = 100;
    json_t *o = json_object();
    json_object_set_new(o, "total-records", json_integer((json_int_t)total));
    json_object_set_new(o, "done-records", json_integer((json_int_t)done));
    json_object_set_new(o, "start-time", time_or_null(job->started_ms));
    json_object_set_new(o, "finish-time", json_null());
    json_object_set_new(o, "percentage-done", json_integer(pct));
    json_object_set_new(o, "estimated-end-time",
                        pct >= 1 ? time_or_null(job->started_ms + elapsed * 100 / pct) : json_null());
    json_t *m = json_object();
    json_object_set_new(m, "records-per-second", json_integer((json_int_t)(done * 1000 / (uint64_t)elapsed)));
    json_object_set_new(m, "kilobytes-per-second", json_integer((json_int_t)(bytes / (uint64_t)elapsed)));
    json_object_set_new(m, "pipeline", json_integer((json_int_t)(done - written)));
    json_object_set_new(o, "metrics", m);
    return o;
}

json_t *jobs_routine_state(struct jobs *j, const char *routine)
{
    json_t *o = json_object();
    int64_t now = clock_now_ms();
    pthread_mutex_lock(&j->lock);
    for (struct job *job = j->running; job; job = job->next)
        if (strcmp(job->routine, routine) == 0)
            json_object_set_new(o, job->type == SCHED_FULL ? "full" : "incremental", running_job_json(job, now));
    pthread_mutex_unlock(&j->lock);
    int64_t last_full = history_cache_last_success(j->history, routine, SCHED_FULL);
    int64_t last_incr = history_cache_last_success(j->history, routine, SCHED_INCREMENTAL);
    if (last_full >= 0)
        json_object_set_new(o, "last-full", time_or_null(last_full));
    if (last_incr >= 0)
        json_object_set_new(o, "last-incremental", time_or_null(last_incr));
    if (j->sched) {
        int64_t next_full = sched_next_fire(j->sched, routine, SCHED_FULL);
        int64_t next_incr = sched_next_fire(j->sched, routine, SCHED_INCREMENTAL);
        if (next_full >= 0)
            json_object_set_new(o, "next-full", time_or_null(next_full));
        if (next_incr >= 0)
            json_object_set_new(o, "next-incremental", time_or_null(next_incr));
    }
    return o;
}

/* ---- gauges and scheduler counters for /metrics ------------------------------------------- */

static struct exported_stats *exported_for(struct jobs *j, const char *routine)
{
    struct exported_stats *x = j->exported;
    while (x && strcmp(x->routine, routine) != 0)
        x = x->next;
    if (!x && (x = calloc(1, sizeof *x)) != NULL) {
        str_printf(x->routine, sizeof x->routine, "%s", routine);
        x->next = j->exported;
        j->exported = x;
    }
    return x;
}

/* Skips (backup_events_total{outcome="skip"}) and the v2 legacy counters, from the scheduler. */
static void export_sched_counters(struct jobs *j, struct metrics *m)
{
    static const char *const event_labels[] = {"routine", "type", "outcome", NULL};
    static const char *const legacy[SCHED_TYPE_COUNT][3] = {
        {METRIC_PREFIX "runs_total", METRIC_PREFIX "failure_total", METRIC_PREFIX "skip_total"},
        {METRIC_PREFIX "incremental_runs_total", METRIC_PREFIX "incremental_failure_total",
         METRIC_PREFIX "incremental_skip_total"}};
    static const char *const durations[SCHED_TYPE_COUNT] = {METRIC_PREFIX "duration_millis",
                                                           METRIC_PREFIX "incremental_duration_millis"};
    struct sched_routine_stats *stats = NULL;
    size_t n = 0;
    struct err e = {0};
    if (!j->sched || sched_stats_all(j->sched, &stats, &n, &e))
        return;
    for (size_t i = 0; i < n; i++) {
        struct exported_stats *x = exported_for(j, stats[i].name);
        for (int t = 0; x && t < SCHED_TYPE_COUNT; t++) {
            const struct sched_type_stats *now = &stats[i].type[t], *was = &x->type[t];
            const char *values[] = {stats[i].name, sched_type_name((enum sched_backup_type)t), "skip"};
            metrics_add(metrics_counter(m, METRIC_PREFIX "backup_events_total",
                                        "Backup jobs by routine, type and outcome.", event_labels),
                        values, (double)(now->skipped - was->skipped));
            metrics_add(metrics_counter(m, legacy[t][0], "Deprecated (v2): backups started.", NULL), NULL,
                        (double)(now->started - was->started));
            metrics_add(metrics_counter(m, legacy[t][1], "Deprecated (v2): backups failed.", NULL), NULL,
                        (double)(now->failed - was->failed));
            metrics_add(metrics_counter(m, legacy[t][2], "Deprecated (v2): backups skipped.", NULL), NULL,
                        (double)(now->skipped - was->skipped));
            if (now->last_duration_ms >= 0)
                metrics_set(metrics_gauge(m, durations[t], "Deprecated (v2): duration of the last backup.", NULL),
                            NULL, (double)now->last_duration_ms);
            x->type[t] = *now;
        }
    }
    sched_stats_free(stats, n);
}

void jobs_export_metrics(struct jobs *j)
{
    static const char *const labels[] = {"routine", "type", NULL};
    struct metrics *m = j->metrics;
    if (!m)
        return;
    struct metrics_family *running = metrics_gauge(m, METRIC_PREFIX "backup_in_progress",
                                                   "1 while a backup of the routine and type runs.", labels);
    struct metrics_family *pct = metrics_gauge(m, METRIC_PREFIX "backup_progress_pct",
                                               "Progress of the running backup, percent.", labels);
    pthread_mutex_lock(&j->lock);
    export_sched_counters(j, m); /* also learns the routines, for the gauges below */
    /* Gauges of routines that no longer run go back to 0. */
    for (struct exported_stats *x = j->exported; x; x = x->next)
        for (int t = 0; t < SCHED_TYPE_COUNT; t++) {
            const char *values[] = {x->routine, sched_type_name((enum sched_backup_type)t)};
            metrics_set(running, values, 0);
        }
    for (struct job *job = j->running; job; job = job->next) {
        const char *values[] = {job->routine, sched_type_name(job->type)};
        uint64_t total = __atomic_load_n(&job->progress.records_estimate, __ATOMIC_RELAXED);
        uint64_t done = __atomic_load_n(&job->progress.records_done, __ATOMIC_RELAXED);
        metrics_set(running, values, 1);
        metrics_set(pct, values, total ? (done >= total ? 100.0 : 100.0 * (double)done / (double)total) : 0);
    }
    pthread_mutex_unlock(&j->lock);
}
