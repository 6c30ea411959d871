/*
 * restores.c - the restore job table (see restores.h).
 *
 * A request is decoded completely before a job exists: source storage (inline `source` or
 * configured `source-name`), destination cluster (inline `destination` or `destination-name`),
 * policy, and what to restore (`backup-data-path`, or `routine` + `time`). The job thread
 * opens storage and cluster, builds the folder list and runs restore_run(); its counters are
 * read live by the status routes.
 */
#include "jobs/restores.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/cfg_schema.h"
#include "jobs/backup_meta.h"
#include "jobs/cluster_link.h"
#include "jobs/restore_job.h"
#include "jobs/stor_link.h"
#include "metrics/metrics.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/strutil.h"

enum restore_state { RS_RUNNING = 0, RS_SUCCESS, RS_FAILURE, RS_CANCELED };
static const char *const state_names[] = {"running", "success", "failure", "canceled"};

struct restore {
    struct restores *owner;
    struct restore *next;
    int64_t id;
    enum restore_request_kind kind;
    int64_t start_ms, finish_ms;
    enum restore_state state;
    char error[ERR_MSG_MAX];
    volatile bool cancel;
    bool counted; /* finished and added to restore_events_total */

    struct cfg *snapshot;              /* for named source / destination */
    struct cfg_storage *source;        /* inline source (owned), else from the snapshot */
    struct cfg_cluster *destination;   /* inline destination (owned), else from the snapshot */
    struct cfg_secret_agent *agent;    /* inline secret-agent (owned), else secret-agent-name's */
    char agent_name[256];
    char source_name[256], destination_name[256];
    char data_path[1024];              /* full / incremental */
    char routine[256];                 /* timestamp */
    int64_t time_ms;
    bool disable_reordering;
    struct restore_policy policy;
    struct restore_progress progress;
};

struct restores {
    pthread_mutex_t lock;
    pthread_cond_t idle;
    struct cfg_store *store;
    struct restore *jobs; /* newest first */
    unsigned running;
};

static int64_t random_id(void)
{
    uint32_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v)
        v = (uint32_t)clock_now_ms() ^ (uint32_t)getpid();
    if (fd >= 0)
        close(fd);
    return (int64_t)(v & 0x7fffffff) + 1;
}

/* ---- request decoding ------------------------------------------------------------------- */

static const char *const common_keys[] = {"source", "source-name", "storage-name", "destination", "destination-name",
                                          "policy", "secret-agent", "secret-agent-name", NULL};

static bool key_allowed(const char *key, enum restore_request_kind kind)
{
    for (const char *const *k = common_keys; *k; k++)
        if (strcmp(*k, key) == 0)
            return true;
    if (kind == RESTORE_TIMESTAMP)
        return strcmp(key, "routine") == 0 || strcmp(key, "time") == 0 || strcmp(key, "disable-reordering") == 0;
    return strcmp(key, "backup-data-path") == 0;
}

static int get_string(const json_t *body, const char *key, char *out, size_t cap, bool required, struct err *e)
{
    const json_t *v = json_object_get(body, key);
    out[0] = '\0';
    if (!v || json_is_null(v))
        return required ? err_set(e, ERR_INVALID, "%s: required field is missing", key) : 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return err_set(e, ERR_INVALID, "%s: must be a non-empty string", key);
    if (json_string_length(v) >= cap)
        return err_set(e, ERR_INVALID, "%s: too long", key);
    strcpy(out, json_string_value(v));
    return 0;
}

/* `inline_key` (an inline entity) or `name_key` (a configured one); exactly one unless optional. */
static int decode_target(struct restore *job, const json_t *body, bool source, bool optional, struct err *e)
{
    const char *inline_key = source ? "source" : "destination";
    const char *name_key = source ? "source-name" : "destination-name";
    const json_t *inl = json_object_get(body, inline_key);
    char *name = source ? job->source_name : job->destination_name;
    if (get_string(body, name_key, name, 256, false, e))
        return ERR_INVALID;
    if (source && !name[0] && get_string(body, "storage-name", name, 256, false, e)) /* older alias */
        return ERR_INVALID;
    bool has_inline = inl && !json_is_null(inl);
    if (has_inline && name[0])
        return err_set(e, ERR_INVALID, "%s and %s are mutually exclusive", inline_key, name_key);
    if (!has_inline && !name[0])
        return optional ? 0 : err_set(e, ERR_INVALID, "one of %s or %s is required", inline_key, name_key);
    if (has_inline) {
        void *obj;
        const struct cfg_type *t = source ? &cfg_type_storage : &cfg_type_cluster;
        json_t *copy = json_deep_copy(inl);
        if (source)
            json_object_del(copy, "type"); /* legacy storage type field: ignored */
        int rc = cfg_decode(t, copy, inline_key, NULL, &obj, e);
        json_decref(copy);
        if (rc)
            return ERR_INVALID;
        if (source)
            job->source = obj;
        else
            job->destination = obj;
        return 0;
    }
    const cfg_map *m = source ? &job->snapshot->storage : &job->snapshot->clusters;
    if (!cfg_map_get(m, name))
        return err_set(e, ERR_INVALID, "%s: %s %s is not defined", name_key, source ? "storage" : "cluster", name);
    return 0;
}

/* `secret-agent` (inline) or `secret-agent-name`, both optional: resolves the policy's
 * key-secret and, for entities that name no agent of their own, credential references. */
static int decode_agent(struct restore *job, const json_t *body, struct err *e)
{
    const json_t *inl = json_object_get(body, "secret-agent");
    if (get_string(body, "secret-agent-name", job->agent_name, sizeof job->agent_name, false, e))
        return ERR_INVALID;
    bool has_inline = inl && !json_is_null(inl);
    if (has_inline && job->agent_name[0])
        return err_set(e, ERR_INVALID, "secret-agent and secret-agent-name are mutually exclusive");
    if (has_inline) {
        void *obj;
        if (cfg_decode(&cfg_type_secret_agent, inl, "secret-agent", NULL, &obj, e))
            return ERR_INVALID;
        job->agent = obj;
    } else if (job->agent_name[0] && !cfg_map_get(&job->snapshot->secret_agents, job->agent_name)) {
        return err_set(e, ERR_INVALID, "secret-agent-name: secret agent %s is not defined", job->agent_name);
    }
    return 0;
}

/* The agent of the request (NULL = none). */
static const struct cfg_secret_agent *request_agent(const struct restore *job)
{
    if (job->agent)
        return job->agent;
    return job->agent_name[0] ? cfg_map_get(&job->snapshot->secret_agents, job->agent_name) : NULL;
}

static int decode_request(struct restore *job, const json_t *body, struct err *e)
{
    if (!json_is_object(body))
        return err_set(e, ERR_INVALID, "invalid request: body must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        if (!key_allowed(key, job->kind))
            return err_set(e, ERR_INVALID, "%s: unknown field", key);
    }
    if (decode_agent(job, body, e))
        return ERR_INVALID;
    bool timestamp = job->kind == RESTORE_TIMESTAMP;
    if (restore_policy_from_json(json_object_get(body, "policy"), timestamp, &job->policy, e))
        return ERR_INVALID;
    if (timestamp) {
        if (get_string(body, "routine", job->routine, sizeof job->routine, true, e))
            return ERR_INVALID;
        const json_t *t = json_object_get(body, "time");
        if (!json_is_integer(t) || json_integer_value(t) < 1000000000000LL)
            return err_set(e, ERR_INVALID, "time: must be epoch milliseconds (>= 1000000000000)");
        job->time_ms = json_integer_value(t);
        const json_t *dr = json_object_get(body, "disable-reordering");
        if (dr && !json_is_boolean(dr) && !json_is_null(dr))
            return err_set(e, ERR_INVALID, "disable-reordering: must be a boolean");
        job->disable_reordering = json_is_true(dr);
        const struct cfg_routine *rt = cfg_map_get(&job->snapshot->routines, job->routine);
        bool overridden = json_object_get(body, "source") || json_object_get(body, "source-name");
        bool dest_given = json_object_get(body, "destination") || json_object_get(body, "destination-name");
        if (!rt && !(overridden && dest_given))
            return err_set(e, ERR_INVALID, "routine: routine %s is not defined", job->routine);
        if (decode_target(job, body, true, true, e) || decode_target(job, body, false, true, e))
            return ERR_INVALID;
        if (!job->source && !job->source_name[0])
            str_printf(job->source_name, sizeof job->source_name, "%s", rt->storage);
        if (!job->destination && !job->destination_name[0])
            str_printf(job->destination_name, sizeof job->destination_name, "%s", rt->source_cluster);
        return 0;
    }
    if (get_string(body, "backup-data-path", job->data_path, sizeof job->data_path, true, e))
        return ERR_INVALID;
    return decode_target(job, body, true, false, e) || decode_target(job, body, false, false, e) ? ERR_INVALID : 0;
}

/* ---- the job ------------------------------------------------------------------------------ */

/* Timestamp restore: the namespaces' chains in parallel; a chain going to an empty namespace is
 * applied newest first with create-only writes (unless disable-reordering). */
static int run_chains(struct restore *job, struct as_cluster *cluster, struct stor *stor, struct err *e)
{
    struct restore_chain *chains = NULL;
    size_t n_chains = 0;
    if (restore_folders_for_timestamp(stor, job->routine, job->time_ms, &chains, &n_chains, e))
        return e->code;
    struct restore_spec *specs = calloc(n_chains, sizeof *specs);
    int rc = specs ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n_chains; i++) {
        const char *dest_ns = job->policy.ns_destination ? job->policy.ns_destination : chains[i].ns;
        bool empty = false;
        if (!job->disable_reordering && chains[i].n_folders > 1)
            rc = restore_namespace_empty(cluster, dest_ns, &empty, e);
        specs[i] = (struct restore_spec){.folders = chains[i].folders, .n_folders = chains[i].n_folders,
                                         .policy = &job->policy, .reorder = empty};
    }
    if (rc == 0) /* namespaces in parallel */
        rc = restore_run_parallel(specs, n_chains, cluster, stor, &job->progress, &job->cancel, e);
    free(specs);
    restore_chains_free(chains, n_chains);
    return rc;
}

static int run_restore(struct restore *job, struct err *e)
{
    const struct cfg_storage *sc = job->source ? job->source : cfg_map_get(&job->snapshot->storage, job->source_name);
    const struct cfg_cluster *cc = job->destination ? job->destination
                                                    : cfg_map_get(&job->snapshot->clusters, job->destination_name);
    struct stor *stor = NULL;
    struct as_cluster *cluster = NULL;
    struct secret_scope scope = {.agents = &job->snapshot->secret_agents, .fallback = request_agent(job)};
    job->policy.key_agent = scope.fallback;
    int rc = job_stor_open(job->source_name[0] ? job->source_name : "source", sc, &scope, &stor, e);
    if (rc == 0)
        rc = job_cluster_connect(job->destination_name[0] ? job->destination_name : "destination", cc, &scope,
                                 &cluster, e);
    if (rc == 0 && job->kind == RESTORE_TIMESTAMP) {
        rc = run_chains(job, cluster, stor, e);
    } else if (rc == 0) {
        struct restore_folder folder = {0};
        rc = restore_folder_load(stor, job->data_path, &job->policy, &folder, e);
        struct restore_spec spec = {.folders = &folder, .n_folders = 1, .policy = &job->policy};
        if (rc == 0)
            rc = restore_run(&spec, cluster, stor, &job->progress, &job->cancel, e);
        restore_folder_free(&folder);
    }
    as_cluster_free(cluster);
    stor_close(stor);
    return rc;
}

static void *restore_main(void *arg)
{
    struct restore *job = arg;
    struct restores *r = job->owner;
    struct err e = {0};
    int rc = run_restore(job, &e);
    pthread_mutex_lock(&r->lock);
    job->finish_ms = clock_now_ms();
    job->state = rc == 0 ? RS_SUCCESS : (job->cancel ? RS_CANCELED : RS_FAILURE);
    if (rc)
        str_printf(job->error, sizeof job->error, "%s", e.msg);
    r->running--;
    pthread_cond_broadcast(&r->idle);
    pthread_mutex_unlock(&r->lock);
    if (rc)
        LOG_E("restore", "job %lld %s: %s", (long long)job->id, state_names[job->state], e.msg);
    else
        LOG_I("restore", "job %lld done: %llu records inserted", (long long)job->id,
              (unsigned long long)job->progress.inserted_records);
    return NULL;
}

static void restore_free_job(struct restore *job)
{
    restore_policy_free(&job->policy);
    cfg_free_obj(&cfg_type_storage, job->source);
    cfg_free_obj(&cfg_type_cluster, job->destination);
    cfg_free_obj(&cfg_type_secret_agent, job->agent);
    cfg_release(job->snapshot);
    free(job);
}

/* Drops the oldest finished jobs beyond RESTORES_KEEP; caller holds the lock. */
static void prune(struct restores *r)
{
    unsigned n = 0;
    for (struct restore **p = &r->jobs; *p;) {
        if (++n > RESTORES_KEEP && (*p)->state != RS_RUNNING) {
            struct restore *dead = *p;
            *p = dead->next;
            restore_free_job(dead);
        } else {
            p = &(*p)->next;
        }
    }
}

int restores_start(struct restores *r, enum restore_request_kind kind, const json_t *body, int64_t *id,
                   struct err *e)
{
    struct restore *job = calloc(1, sizeof *job);
    if (!job)
        return err_set(e, ERR_NOMEM, "out of memory");
    job->owner = r;
    job->kind = kind;
    job->snapshot = cfg_store_snapshot(r->store);
    restore_policy_init(&job->policy);
    if (decode_request(job, body, e)) {
        restore_free_job(job);
        return ERR_INVALID;
    }
    job->id = random_id();
    job->start_ms = clock_now_ms();
    pthread_mutex_lock(&r->lock);
    job->next = r->jobs;
    r->jobs = job;
    r->running++;
    prune(r);
    pthread_mutex_unlock(&r->lock);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, restore_main, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&r->lock);
        job->state = RS_FAILURE;
        str_printf(job->error, sizeof job->error, "cannot start a restore thread");
        r->running--;
        pthread_mutex_unlock(&r->lock);
        return err_set(e, ERR_INTERNAL, "cannot start a restore thread");
    }
    *id = job->id;
    LOG_I("restore", "job %lld started", (long long)job->id);
    return 0;
}

/* ---- status ---------------------------------------------------------------------------------- */

#define LOAD(f) ((json_int_t)__atomic_load_n(&job->progress.f, __ATOMIC_RELAXED))

static json_t *time_json(int64_t ms)
{
    char buf[40];
    meta_format_time(ms, buf, sizeof buf);
    return json_string(buf);
}

static json_t *current_job_json(const struct restore *job, int64_t now)
{
    uint64_t total = (uint64_t)LOAD(records_estimate), done = (uint64_t)LOAD(read_records);
    int64_t elapsed = now - job->start_ms > 0 ? now - job->start_ms : 1;
    int pct = total ? (int)(done * 100 / total) : 0;
    pct = pct > 100 ? 100 : pct;
    json_t *o = json_object();
    json_object_set_new(o, "total-records", json_integer((json_int_t)total));
    json_object_set_new(o, "done-records", json_integer((json_int_t)done));
    json_object_set_new(o, "start-time", time_json(job->start_ms));
    json_object_set_new(o, "finish-time", json_null());
    json_object_set_new(o, "percentage-done", json_integer(pct));
    json_object_set_new(o, "estimated-end-time", pct >= 1 ? time_json(job->start_ms + elapsed * 100 / pct) : json_null());
    json_t *m = json_object();
    json_object_set_new(m, "records-per-second", json_integer((json_int_t)(done * 1000 / (uint64_t)elapsed)));
    json_object_set_new(m, "kilobytes-per-second", json_integer(LOAD(total_bytes) / elapsed));
    json_object_set_new(m, "pipeline", json_integer(0));
    json_object_set_new(o, "metrics", m);
    return o;
}

/* Caller holds the lock. */
static json_t *status_json(const struct restore *job)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(state_names[job->state]));
    if (job->error[0])
        json_object_set_new(o, "error", json_string(job->error));
    json_object_set_new(o, "read-records", json_integer(LOAD(read_records)));
    json_object_set_new(o, "inserted-records", json_integer(LOAD(inserted_records)));
    json_object_set_new(o, "fresher-records", json_integer(LOAD(fresher_records)));
    json_object_set_new(o, "existed-records", json_integer(LOAD(existed_records)));
    json_object_set_new(o, "ignored-records", json_integer(LOAD(ignored_records)));
    json_object_set_new(o, "skipped-records", json_integer(LOAD(skipped_records)));
    json_object_set_new(o, "expired-records", json_integer(LOAD(expired_records)));
    json_object_set_new(o, "errors-in-doubt", json_integer(LOAD(errors_in_doubt)));
    json_object_set_new(o, "index-count", json_integer(LOAD(index_count)));
    json_object_set_new(o, "udf-count", json_integer(LOAD(udf_count)));
    json_object_set_new(o, "total-bytes", json_integer(LOAD(total_bytes)));
    if (job->state == RS_RUNNING)
        json_object_set_new(o, "current-job", current_job_json(job, clock_now_ms()));
    return o;
}

static struct restore *find(struct restores *r, int64_t id)
{
    for (struct restore *job = r->jobs; job; job = job->next)
        if (job->id == id)
            return job;
    return NULL;
}

json_t *restores_status(struct restores *r, int64_t id, struct err *e)
{
    pthread_mutex_lock(&r->lock);
    struct restore *job = find(r, id);
    json_t *o = job ? status_json(job) : NULL;
    pthread_mutex_unlock(&r->lock);
    if (!o)
        err_set(e, ERR_NOT_FOUND, "restore job %lld not found", (long long)id);
    return o;
}

/* Parses the status filter into a 4-bit mask of wanted states. */
static int parse_status_filter(const char *s, unsigned *mask, struct err *e)
{
    *mask = 0xF;
    if (!s || !*s)
        return 0;
    bool exclude = *s == '!';
    unsigned m = 0;
    char buf[256];
    str_printf(buf, sizeof buf, "%s", exclude ? s + 1 : s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        int st = -1;
        for (int i = 0; i < 4; i++)
            if (strcasecmp(tok, state_names[i]) == 0)
                st = i;
        if (strcasecmp(tok, "done") == 0)
            st = RS_SUCCESS;
        else if (strcasecmp(tok, "failed") == 0)
            st = RS_FAILURE;
        else if (strcasecmp(tok, "cancelled") == 0)
            st = RS_CANCELED;
        if (st < 0)
            return err_set(e, ERR_INVALID, "invalid query param status: unknown status \"%s\"", tok);
        m |= 1u << st;
    }
    *mask = exclude ? (~m & 0xF) : m;
    return 0;
}

json_t *restores_list(struct restores *r, int64_t from_ms, int64_t to_ms, const char *status, struct err *e)
{
    unsigned mask;
    if (parse_status_filter(status, &mask, e))
        return NULL;
    json_t *o = json_object();
    pthread_mutex_lock(&r->lock);
    for (struct restore *job = r->jobs; job; job = job->next) {
        if ((from_ms >= 0 && job->start_ms < from_ms) || (to_ms >= 0 && job->start_ms > to_ms) ||
            !(mask & (1u << job->state)))
            continue;
        char id[32];
        str_printf(id, sizeof id, "%lld", (long long)job->id);
        json_object_set_new(o, id, status_json(job));
    }
    pthread_mutex_unlock(&r->lock);
    return o;
}

int restores_cancel(struct restores *r, int64_t id, struct err *e)
{
    pthread_mutex_lock(&r->lock);
    struct restore *job = find(r, id);
    if (job)
        job->cancel = true;
    pthread_mutex_unlock(&r->lock);
    return job ? 0 : err_set(e, ERR_NOT_FOUND, "restore job %lld not found", (long long)id);
}

bool restores_busy_with(struct restores *r, const char *routine)
{
    bool busy = false;
    pthread_mutex_lock(&r->lock);
    for (struct restore *job = r->jobs; job && !busy; job = job->next)
        busy = job->state == RS_RUNNING &&
               (strcmp(job->routine, routine) == 0 || strncmp(job->data_path, routine, strlen(routine)) == 0);
    pthread_mutex_unlock(&r->lock);
    return busy;
}

int restores_new(struct cfg_store *store, struct restores **out, struct err *e)
{
    struct restores *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->idle, NULL);
    r->store = store;
    *out = r;
    return 0;
}

void restores_free(struct restores *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    for (struct restore *job = r->jobs; job; job = job->next)
        job->cancel = true;
    while (r->running > 0)
        pthread_cond_wait(&r->idle, &r->lock);
    pthread_mutex_unlock(&r->lock);
    while (r->jobs) {
        struct restore *next = r->jobs->next;
        restore_free_job(r->jobs);
        r->jobs = next;
    }
    pthread_cond_destroy(&r->idle);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void restores_export_metrics(struct restores *r, struct metrics *m)
{
    static const char *const labels[] = {"outcome", NULL};
    struct metrics_family *events = metrics_counter(m, "aerospike_backup_service_restore_events_total",
                                                    "Finished restore jobs by outcome.", labels);
    struct metrics_family *running = metrics_gauge(m, "aerospike_backup_service_restore_in_progress",
                                                   "Restore jobs running now.", NULL);
    static const char *const pct_labels[] = {"job_id", NULL};
    struct metrics_family *pct = metrics_gauge(m, "aerospike_backup_service_restore_progress_pct",
                                               "Progress of a running restore job, percent.", pct_labels);
    pthread_mutex_lock(&r->lock);
    metrics_set(running, NULL, (double)r->running);
    for (struct restore *job = r->jobs; job; job = job->next) {
        char id[32];
        str_printf(id, sizeof id, "%lld", (long long)job->id);
        const char *id_value[] = {id};
        if (job->state == RS_RUNNING) {
            uint64_t total = __atomic_load_n(&job->progress.records_estimate, __ATOMIC_RELAXED);
            uint64_t done = __atomic_load_n(&job->progress.read_records, __ATOMIC_RELAXED);
            metrics_set(pct, id_value, total ? (done >= total ? 100.0 : 100.0 * (double)done / (double)total) : 0);
            continue;
        }
        metrics_remove(pct, id_value);
        if (job->counted)
            continue;
        const char *values[] = {state_names[job->state]};
        metrics_inc(events, values);
        job->counted = true;
    }
    pthread_mutex_unlock(&r->lock);
}
