/*
 * scheduler.c - the backup scheduler (see scheduler.h for the rules and the locking contract).
 *
 * State: the current config snapshot, one `struct sroutine` per configured routine (parsed
 * cron expressions, counters) and a binary min-heap of pending entries. Each heap entry points
 * at its routine; routines are only created and freed by sched_update (and sched_free), which
 * hold the work lock, the same lock sched_tick holds while it hands entries to the runner - so
 * a popped entry's routine, its name and the snapshot stay valid without the state mutex while
 * the runner is called.
 *
 * A tick pops one due entry at a time under the state mutex, re-arms periodic entries from
 * `now` (cron_next is strictly after its argument, so the loop always ends), drops the mutex,
 * decides start or skip by asking the runner and the history, and re-takes the mutex only to
 * count. Entries due at the same instant are handled full first, so an incremental sharing a
 * fire time with a full sees that full running.
 */
#include "sched/scheduler.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/cfg_model.h"
#include "sched/cron.h"
#include "util/log.h"
#include "util/clock.h"

#define MOD "scheduler"

enum ent_kind { ENT_CRON = 0, ENT_ONCE, ENT_CATCHUP };

struct sroutine {
    char *name;
    bool enabled;
    char *cron_src[SCHED_TYPE_COUNT]; /* expression text as configured (NULL: none) */
    bool has_cron[SCHED_TYPE_COUNT];  /* cron_src parsed into cron[] */
    struct cron_expr cron[SCHED_TYPE_COUNT];
    struct sched_type_stats st[SCHED_TYPE_COUNT]; /* next_fire_ms unused here */
    int64_t history_retry_ms; /* next backoff of an unreadable history (0: none pending) */
};

struct ent {
    int64_t when;
    uint64_t seq;
    struct sroutine *r;
    uint8_t type; /* enum sched_backup_type */
    uint8_t kind; /* enum ent_kind */
};

struct sched {
    struct sched_runner runner;
    struct sched_history history;
    struct sched_clock clock;
    int64_t late_ms, max_wait_ms;

    pthread_mutex_t work; /* serialises sched_tick and sched_update; taken before mu */
    pthread_mutex_t mu;   /* everything below */
    pthread_cond_t cv;    /* CLOCK_MONOTONIC; signalled on wake/stop */

    struct cfg *snap;
    struct sroutine **routines; /* configuration order */
    size_t n_routines;

    struct ent *heap;
    size_t heap_n, heap_cap;
    uint64_t seq;

    bool wake, stopping;

    pthread_mutex_t life; /* serialises sched_start / sched_stop */
    bool thread_running;
    pthread_t thread;
};

/* ---- small helpers ---------------------------------------------------------------- */

const char *sched_type_name(enum sched_backup_type type)
{
    return type == SCHED_INCREMENTAL ? "incremental" : "full";
}

const char *sched_skip_reason_name(enum sched_skip_reason reason)
{
    switch (reason) {
    case SCHED_SKIP_FULL_RUNNING: return "full-running";
    case SCHED_SKIP_BUSY: return "backup-running";
    case SCHED_SKIP_NO_FULL: return "no-full-backup";
    case SCHED_SKIP_LATE: return "late";
    case SCHED_SKIP_NO_HISTORY: return "history-unreadable";
    default: return "unknown";
    }
}

static int64_t now_ms(struct sched *s)
{
    return s->clock.now_ms ? s->clock.now_ms(s->clock.ctx) : clock_now_ms();
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static struct sroutine *find_routine(struct sched *s, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < s->n_routines; i++)
        if (strcmp(s->routines[i]->name, name) == 0)
            return s->routines[i];
    return NULL;
}

static void routine_free(struct sroutine *r)
{
    if (!r)
        return;
    free(r->name);
    for (int t = 0; t < SCHED_TYPE_COUNT; t++)
        free(r->cron_src[t]);
    free(r);
}

/* ---- the heap (caller holds mu) ------------------------------------------------------ */

static bool ent_less(const struct ent *a, const struct ent *b)
{
    if (a->when != b->when)
        return a->when < b->when;
    if (a->type != b->type)
        return a->type < b->type; /* full first */
    return a->seq < b->seq;
}

static void sift_up(struct ent *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ent_less(&h[i], &h[p]))
            break;
        struct ent tmp = h[i];
        h[i] = h[p];
        h[p] = tmp;
        i = p;
    }
}

static void sift_down(struct ent *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && ent_less(&h[l], &h[m]))
            m = l;
        if (r < n && ent_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        struct ent tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

static int heap_push(struct sched *s, int64_t when, struct sroutine *r, int type, int kind)
{
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 16;
        struct ent *h = realloc(s->heap, cap * sizeof *h);
        if (!h)
            return ERR_NOMEM;
        s->heap = h;
        s->heap_cap = cap;
    }
    s->heap[s->heap_n] = (struct ent){.when = when, .seq = s->seq++, .r = r,
                                      .type = (uint8_t)type, .kind = (uint8_t)kind};
    sift_up(s->heap, s->heap_n);
    s->heap_n++;
    return 0;
}

static struct ent heap_pop(struct sched *s)
{
    struct ent top = s->heap[0];
    s->heap[0] = s->heap[--s->heap_n];
    sift_down(s->heap, s->heap_n, 0);
    return top;
}

/* Removes the entries of routine `r` matching type (-1: any) and kind (-1: any). */
static void heap_remove(struct sched *s, const struct sroutine *r, int type, int kind)
{
    size_t w = 0;
    for (size_t i = 0; i < s->heap_n; i++) {
        const struct ent *e = &s->heap[i];
        bool match = e->r == r && (type < 0 || e->type == type) && (kind < 0 || e->kind == kind);
        if (!match)
            s->heap[w++] = *e;
    }
    if (w == s->heap_n)
        return;
    s->heap_n = w;
    for (size_t i = w / 2; i-- > 0;)
        sift_down(s->heap, s->heap_n, i);
}

static int64_t next_fire_locked(struct sched *s, const struct sroutine *r, int type)
{
    int64_t best = -1;
    for (size_t i = 0; i < s->heap_n; i++) {
        const struct ent *e = &s->heap[i];
        if (e->r == r && e->type == type && (best < 0 || e->when < best))
            best = e->when;
    }
    return best;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

int sched_new(const struct sched_runner *runner, const struct sched_history *history,
              const struct sched_clock *clock, const struct sched_options *opts,
              struct sched **out, struct err *e)
{
    *out = NULL;
    if (!runner || !runner->start || !runner->is_running || !runner->cancel)
        return err_set(e, ERR_INVALID, "scheduler: runner with start, is_running and cancel required");
    if (!history || !history->last_success)
        return err_set(e, ERR_INVALID, "scheduler: history with last_success required");
    struct sched *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->runner = *runner;
    s->history = *history;
    if (clock)
        s->clock = *clock;
    s->late_ms = opts && opts->late_ms > 0 ? opts->late_ms : SCHED_DEFAULT_LATE_MS;
    s->max_wait_ms = opts && opts->max_wait_ms > 0 ? opts->max_wait_ms : SCHED_DEFAULT_MAX_WAIT_MS;

    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (!rc) {
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (!rc)
            rc = pthread_cond_init(&s->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (rc) {
        free(s);
        return err_set(e, ERR_INTERNAL, "scheduler: condition variable: %s", strerror(rc));
    }
    pthread_mutex_init(&s->work, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->life, NULL);
    *out = s;
    return 0;
}

void sched_free(struct sched *s)
{
    if (!s)
        return;
    sched_stop(s);
    for (size_t i = 0; i < s->n_routines; i++)
        routine_free(s->routines[i]);
    free(s->routines);
    free(s->heap);
    cfg_release(s->snap);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->work);
    pthread_mutex_destroy(&s->life);
    free(s);
}

/* ---- configuration ----------------------------------------------------------------------- */

/* Arms the periodic entry of r/type from `now` (caller holds mu). */
static void arm(struct sched *s, struct sroutine *r, int type, int64_t now)
{
    if (!r->has_cron[type])
        return;
    int64_t nx = cron_next(&r->cron[type], now);
    if (nx < 0) {
        LOG_W(MOD, "routine %s: %s cron \"%s\" never fires; not scheduled", r->name,
              sched_type_name(type), r->cron_src[type]);
        return;
    }
    if (heap_push(s, nx, r, type, ENT_CRON))
        LOG_E(MOD, "routine %s: out of memory scheduling %s backups", r->name, sched_type_name(type));
}

/* Brings routine r in line with its configuration `rc` (caller holds mu). Returns true when
 * the routine just turned disabled (its jobs must be cancelled). */
static bool apply_routine(struct sched *s, struct sroutine *r, const struct cfg_routine *rc,
                          bool is_new, int64_t now)
{
    bool enabled = !(rc->disabled.set && rc->disabled.v);
    bool was_enabled = !is_new && r->enabled;
    const char *src[SCHED_TYPE_COUNT] = {rc->interval_cron, rc->incr_interval_cron};
    bool changed[SCHED_TYPE_COUNT];

    for (int t = 0; t < SCHED_TYPE_COUNT; t++) {
        changed[t] = is_new || !str_eq(r->cron_src[t], src[t]);
        if (!changed[t])
            continue;
        free(r->cron_src[t]);
        r->cron_src[t] = src[t] ? strdup(src[t]) : NULL;
        r->has_cron[t] = false;
        if (src[t] && !r->cron_src[t]) {
            LOG_E(MOD, "routine %s: out of memory", r->name);
        } else if (src[t]) {
            struct err pe = {0};
            if (cron_parse(src[t], &r->cron[t], &pe))
                LOG_E(MOD, "routine %s: %s cron \"%s\" rejected: %s", r->name,
                      sched_type_name(t), src[t], pe.msg);
            else
                r->has_cron[t] = true;
        }
    }
    r->enabled = enabled;

    if (!enabled) {
        heap_remove(s, r, -1, -1);
        if (was_enabled)
            LOG_I(MOD, "routine %s disabled: unscheduled", r->name);
        return was_enabled;
    }
    for (int t = 0; t < SCHED_TYPE_COUNT; t++) {
        if (changed[t] || !was_enabled) {
            heap_remove(s, r, t, ENT_CRON);
            arm(s, r, t, now);
        }
    }
    if (changed[SCHED_FULL] || !was_enabled) {
        heap_remove(s, r, SCHED_FULL, ENT_CATCHUP);
        r->history_retry_ms = 0;
        if (r->has_cron[SCHED_FULL] && heap_push(s, now, r, SCHED_FULL, ENT_CATCHUP))
            LOG_E(MOD, "routine %s: out of memory queueing the start-up check", r->name);
    }
    if (is_new || !was_enabled || changed[SCHED_FULL] || changed[SCHED_INCREMENTAL])
        LOG_I(MOD, "routine %s scheduled: full \"%s\", incremental \"%s\"", r->name,
              r->cron_src[SCHED_FULL] ? r->cron_src[SCHED_FULL] : "",
              r->cron_src[SCHED_INCREMENTAL] ? r->cron_src[SCHED_INCREMENTAL] : "none");
    return false;
}

void sched_update(struct sched *s, struct cfg *snapshot)
{
    pthread_mutex_lock(&s->work);
    int64_t now = now_ms(s);
    size_t n_cfg = snapshot ? snapshot->routines.n : 0;
    struct sroutine **next = calloc(n_cfg ? n_cfg : 1, sizeof *next);
    char **cancel = calloc(n_cfg ? n_cfg : 1, sizeof *cancel);
    size_t n_next = 0, n_cancel = 0;
    if (!next || !cancel) {
        LOG_E(MOD, "out of memory applying the configuration; schedule unchanged");
        free(next);
        free(cancel);
        pthread_mutex_unlock(&s->work);
        return;
    }

    pthread_mutex_lock(&s->mu);
    struct cfg *old = s->snap;
    s->snap = cfg_retain(snapshot);
    for (size_t i = 0; i < n_cfg; i++) {
        const char *name = snapshot->routines.names[i];
        const struct cfg_routine *rc = snapshot->routines.items[i];
        struct sroutine *r = find_routine(s, name);
        bool is_new = r == NULL;
        if (is_new) {
            r = calloc(1, sizeof *r);
            if (r && !(r->name = strdup(name))) {
                free(r);
                r = NULL;
            }
            if (!r) {
                LOG_E(MOD, "routine %s: out of memory; not scheduled", name);
                continue;
            }
            for (int t = 0; t < SCHED_TYPE_COUNT; t++)
                r->st[t].last_duration_ms = -1;
        }
        if (apply_routine(s, r, rc, is_new, now))
            cancel[n_cancel++] = r->name; /* r stays alive: we hold the work lock */
        next[n_next++] = r;
    }
    /* routines no longer configured */
    for (size_t i = 0; i < s->n_routines; i++) {
        struct sroutine *r = s->routines[i];
        bool kept = false;
        for (size_t j = 0; j < n_next && !kept; j++)
            kept = next[j] == r;
        if (!kept) {
            LOG_I(MOD, "routine %s removed: unscheduled", r->name);
            heap_remove(s, r, -1, -1);
            routine_free(r);
        }
    }
    free(s->routines);
    s->routines = next;
    s->n_routines = n_next;
    s->wake = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);

    cfg_release(old);
    for (size_t i = 0; i < n_cancel; i++) {
        LOG_I(MOD, "routine %s disabled: cancelling its running backups", cancel[i]);
        s->runner.cancel(s->runner.ctx, cancel[i]);
    }
    free(cancel);
    pthread_mutex_unlock(&s->work);
}

void sched_cfg_listener(void *sched, struct cfg *snapshot)
{
    sched_update(sched, snapshot);
}

/* ---- firing ------------------------------------------------------------------------------ */

static void count_skip(struct sched *s, struct sroutine *r, int type, enum sched_skip_reason why,
                       const char *origin)
{
    pthread_mutex_lock(&s->mu);
    r->st[type].skipped++;
    r->st[type].skipped_by[why]++;
    pthread_mutex_unlock(&s->mu);
    if (why == SCHED_SKIP_LATE)
        LOG_W(MOD, "routine %s: %s %s backup skipped (%s)", r->name, origin, sched_type_name(type),
              sched_skip_reason_name(why));
    else
        LOG_D(MOD, "routine %s: %s %s backup skipped (%s)", r->name, origin, sched_type_name(type),
              sched_skip_reason_name(why));
}

static bool concurrent_incremental(const struct cfg *snap, const char *routine)
{
    if (!snap)
        return false;
    const struct cfg_routine *rc = cfg_map_get(&snap->routines, routine);
    const struct cfg_policy *p = rc ? cfg_map_get(&snap->policies, rc->backup_policy) : NULL;
    return p && p->concurrent_incremental.set && p->concurrent_incremental.v;
}

static const char *kind_name(int kind)
{
    return kind == ENT_CRON ? "scheduled" : kind == ENT_ONCE ? "on-demand" : "start-up";
}

/* Whether the routine's history has been read; false (logged) when reading it failed again. */
static bool history_known(struct sched *s, const struct cfg *snap, struct sroutine *r)
{
    if (!s->history.ensure)
        return true;
    struct err err = {0};
    int rc = s->history.ensure(s->history.ctx, snap, r->name, &err);
    if (rc == 0) {
        r->history_retry_ms = 0;
        return true;
    }
    LOG_W(MOD, "routine %s: backup history could not be read: %s", r->name,
          err.msg[0] ? err.msg : err_code_name(rc));
    return false;
}

/* Queues the start-up check again after a failed history read, with doubling backoff. */
static void retry_catch_up(struct sched *s, struct sroutine *r, int64_t now)
{
    int64_t delay = r->history_retry_ms > 0 ? r->history_retry_ms : SCHED_HISTORY_RETRY_MIN_MS;
    r->history_retry_ms = delay * 2 > SCHED_HISTORY_RETRY_MAX_MS ? SCHED_HISTORY_RETRY_MAX_MS : delay * 2;
    pthread_mutex_lock(&s->mu);
    int rc = heap_push(s, now + delay, r, SCHED_FULL, ENT_CATCHUP);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        LOG_E(MOD, "routine %s: out of memory queueing the start-up check", r->name);
    else
        LOG_W(MOD, "routine %s: start-up full backup check retried in %lld ms", r->name,
              (long long)delay);
}

/* Decides and starts one popped entry; called with the work lock held, mu not held. */
static void handle(struct sched *s, struct cfg *snap, const struct ent *e, int64_t now, bool late)
{
    struct sroutine *r = e->r;
    const char *name = r->name;
    int t = e->type;
    const char *origin = kind_name(e->kind);
    void *rctx = s->runner.ctx;

    if (late) {
        count_skip(s, r, t, SCHED_SKIP_LATE, origin);
        return;
    }
    if (e->kind == ENT_CATCHUP) {
        if (!history_known(s, snap, r)) { /* unknown is not "no full": decide later */
            retry_catch_up(s, r, now);
            return;
        }
        int64_t last = s->history.last_success(s->history.ctx, name, SCHED_FULL);
        if (last >= 0) {
            int64_t nx = cron_next(&r->cron[SCHED_FULL], last);
            if (nx < 0 || nx > e->when) {
                LOG_D(MOD, "routine %s: no full backup missed", name);
                return;
            }
            LOG_I(MOD, "routine %s: a scheduled full backup was missed; running one now", name);
        } else {
            LOG_I(MOD, "routine %s: no full backup yet; running one now", name);
        }
        if (s->runner.is_running(rctx, name, SCHED_FULL)) {
            LOG_D(MOD, "routine %s: start-up full backup not needed, a full backup runs", name);
            return;
        }
    } else if (t == SCHED_FULL) {
        if (s->runner.is_running(rctx, name, SCHED_FULL)) {
            count_skip(s, r, t, SCHED_SKIP_FULL_RUNNING, origin);
            return;
        }
    } else {
        if (!history_known(s, snap, r)) {
            count_skip(s, r, t, SCHED_SKIP_NO_HISTORY, origin);
            return;
        }
        if (s->history.last_success(s->history.ctx, name, SCHED_FULL) < 0) {
            count_skip(s, r, t, SCHED_SKIP_NO_FULL, origin);
            return;
        }
        if (s->runner.is_running(rctx, name, SCHED_INCREMENTAL) ||
            (!concurrent_incremental(snap, name) && s->runner.is_running(rctx, name, SCHED_FULL))) {
            count_skip(s, r, t, SCHED_SKIP_BUSY, origin);
            return;
        }
    }

    int64_t scheduled = e->kind == ENT_CATCHUP ? now : e->when;
    struct err err = {0};
    int rc = s->runner.start(rctx, snap, name, t, scheduled, &err);
    pthread_mutex_lock(&s->mu);
    if (rc == 0)
        r->st[t].started++;
    else
        r->st[t].failed++;
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        LOG_I(MOD, "routine %s: %s %s backup started", name, origin, sched_type_name(t));
    else
        LOG_E(MOD, "routine %s: %s %s backup could not start: %s", name, origin,
              sched_type_name(t), err.msg[0] ? err.msg : err_code_name(rc));
}

int64_t sched_tick(struct sched *s, int64_t now)
{
    int64_t next;
    pthread_mutex_lock(&s->work);
    pthread_mutex_lock(&s->mu);
    uint64_t seq_limit = s->seq; /* entries queued from here on wait for the next tick */
    pthread_mutex_unlock(&s->mu);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (s->heap_n == 0 || s->heap[0].when > now || s->heap[0].seq >= seq_limit) {
            next = s->heap_n ? s->heap[0].when : SCHED_NEVER;
            pthread_mutex_unlock(&s->mu);
            break;
        }
        struct ent e = heap_pop(s);
        bool late = false;
        if (e.kind == ENT_CRON) {
            late = now - e.when > s->late_ms;
            /* re-arm from now: strictly later, so this loop ends; missed fires collapse */
            int64_t nx = cron_next(&e.r->cron[e.type], now);
            if (nx >= 0 && heap_push(s, nx, e.r, e.type, ENT_CRON))
                LOG_E(MOD, "routine %s: out of memory re-arming %s backups", e.r->name,
                      sched_type_name(e.type));
        }
        struct cfg *snap = s->snap;
        pthread_mutex_unlock(&s->mu);
        handle(s, snap, &e, now, late);
    }
    pthread_mutex_unlock(&s->work);
    return next;
}

/* ---- on demand, results, queries ----------------------------------------------------------- */

int sched_trigger(struct sched *s, const char *routine, enum sched_backup_type type,
                  int64_t delay_ms, struct err *e)
{
    if (type != SCHED_FULL && type != SCHED_INCREMENTAL)
        return err_set(e, ERR_INVALID, "unknown backup type");
    if (delay_ms < 0)
        return err_set(e, ERR_INVALID, "delay must be a non-negative number of milliseconds");
    if (delay_ms < SCHED_MIN_DELAY_MS)
        delay_ms = SCHED_MIN_DELAY_MS;
    int64_t now = now_ms(s);
    if (delay_ms > INT64_MAX - 1 - now)
        return err_set(e, ERR_INVALID, "delay %lld ms is too large", (long long)delay_ms);

    pthread_mutex_lock(&s->mu);
    int rc = 0;
    struct sroutine *r = find_routine(s, routine);
    if (!r)
        rc = err_set(e, ERR_NOT_FOUND, "routine %s not found", routine ? routine : "");
    else if (!r->enabled)
        rc = err_set(e, ERR_INVALID, "routine %s is disabled", routine);
    else if (heap_push(s, now + delay_ms, r, type, ENT_ONCE))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    if (rc == 0) {
        s->wake = true;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        LOG_I(MOD, "routine %s: on-demand %s backup in %lld ms", routine, sched_type_name(type),
              (long long)delay_ms);
    return rc;
}

int sched_report_result(struct sched *s, const char *routine, enum sched_backup_type type, bool ok,
                        int64_t duration_ms)
{
    if (type != SCHED_FULL && type != SCHED_INCREMENTAL)
        return ERR_INVALID;
    pthread_mutex_lock(&s->mu);
    struct sroutine *r = find_routine(s, routine);
    if (r) {
        if (ok) {
            r->st[type].succeeded++;
            r->st[type].last_duration_ms = duration_ms;
        } else {
            r->st[type].failed++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return r ? 0 : ERR_NOT_FOUND;
}

int64_t sched_next_fire(struct sched *s, const char *routine, enum sched_backup_type type)
{
    if (type != SCHED_FULL && type != SCHED_INCREMENTAL)
        return -1;
    pthread_mutex_lock(&s->mu);
    struct sroutine *r = find_routine(s, routine);
    int64_t next = r ? next_fire_locked(s, r, type) : -1;
    pthread_mutex_unlock(&s->mu);
    return next;
}

static void fill_stats(struct sched *s, const struct sroutine *r, struct sched_routine_stats *out)
{
    out->enabled = r->enabled;
    for (int t = 0; t < SCHED_TYPE_COUNT; t++) {
        out->type[t] = r->st[t];
        out->type[t].next_fire_ms = next_fire_locked(s, r, t);
    }
}

int sched_routine_stats(struct sched *s, const char *routine, struct sched_routine_stats *out,
                        struct err *e)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    struct sroutine *r = find_routine(s, routine);
    if (r)
        fill_stats(s, r, out);
    pthread_mutex_unlock(&s->mu);
    if (!r)
        return err_set(e, ERR_NOT_FOUND, "routine %s not found", routine ? routine : "");
    return 0;
}

int sched_stats_all(struct sched *s, struct sched_routine_stats **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    size_t cnt = s->n_routines;
    struct sched_routine_stats *v = calloc(cnt ? cnt : 1, sizeof *v);
    bool ok = v != NULL;
    for (size_t i = 0; ok && i < cnt; i++) {
        fill_stats(s, s->routines[i], &v[i]);
        ok = (v[i].name = strdup(s->routines[i]->name)) != NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        sched_stats_free(v, cnt);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    *out = v;
    *n = cnt;
    return 0;
}

void sched_stats_free(struct sched_routine_stats *stats, size_t n)
{
    if (!stats)
        return;
    for (size_t i = 0; i < n; i++)
        free(stats[i].name);
    free(stats);
}

/* ---- the thread ---------------------------------------------------------------------------- */

static void *sched_main(void *arg)
{
    struct sched *s = arg;
    for (;;) {
        int64_t next = sched_tick(s, now_ms(s));
        int64_t now = now_ms(s);
        int64_t wait = next == SCHED_NEVER ? s->max_wait_ms : next - now;
        if (wait > s->max_wait_ms)
            wait = s->max_wait_ms;

        pthread_mutex_lock(&s->mu);
        if (!s->stopping && !s->wake && wait > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            int rc;
            do
                rc = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            while (rc == 0 && !s->stopping && !s->wake); /* spurious wake-up: keep waiting */
        }
        bool stop = s->stopping;
        s->wake = false;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
    }
    return NULL;
}

int sched_start(struct sched *s, struct err *e)
{
    pthread_mutex_lock(&s->life);
    int rc = 0;
    if (s->thread_running) {
        rc = err_set(e, ERR_CONFLICT, "scheduler already running");
    } else {
        pthread_mutex_lock(&s->mu);
        s->stopping = false;
        s->wake = false;
        pthread_mutex_unlock(&s->mu);
        int prc = pthread_create(&s->thread, NULL, sched_main, s);
        if (prc)
            rc = err_set(e, ERR_INTERNAL, "scheduler thread: %s", strerror(prc));
        else
            s->thread_running = true;
    }
    pthread_mutex_unlock(&s->life);
    if (rc == 0)
        LOG_D(MOD, "scheduler thread started");
    return rc;
}

void sched_stop(struct sched *s)
{
    pthread_mutex_lock(&s->life);
    if (s->thread_running) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        s->thread_running = false;
        pthread_mutex_lock(&s->mu);
        s->stopping = false;
        pthread_mutex_unlock(&s->mu);
        LOG_D(MOD, "scheduler thread stopped");
    }
    pthread_mutex_unlock(&s->life);
}
