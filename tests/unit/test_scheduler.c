/*
 * test_scheduler.c - the backup scheduler (src/sched/scheduler.c), driven through sched_tick with
 * a fake clock, a fake runner that records every call and a fake history: fire times over a
 * simulated day, ABS's skip rules and their counters, the start-up catch-up full, disabled
 * routines, configuration changes (removal, rescheduling, cancel on disable, through the real
 * config store listener too), on-demand triggers, next-fire reporting, never-firing
 * expressions, late fires, start errors, callbacks re-entering the scheduler; then a short run
 * of the real thread with the real clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "sched/scheduler.h"
#include "util/fsutil.h"
#include "util/log.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define T0 1704067200000LL /* 2024-01-01T00:00:00Z */

/* ---- fakes ---------------------------------------------------------------------------------- */

#define MAX_RT 8
#define NAME_MAX_LEN 32

struct call {
    char routine[NAME_MAX_LEN];
    int type;
    int64_t scheduled;
    struct cfg *snap; /* borrowed pointer, compared only */
};

struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t now;
    struct {
        char name[NAME_MAX_LEN];
        int64_t last[SCHED_TYPE_COUNT];
        bool running[SCHED_TYPE_COUNT];
        int ensure_fail; /* history reads that still fail */
        int ensure_calls;
    } rt[MAX_RT];
    size_t nrt;
    bool run_on_start; /* start marks the job running */
    int start_rc;
    struct call calls[8192];
    size_t ncalls;
    char cancels[16][NAME_MAX_LEN];
    size_t ncancel;
    struct sched *s;  /* for callbacks that re-enter the scheduler */
    bool reenter;
    int reenter_ok;
};

static size_t rt_index(struct fake *f, const char *name)
{
    for (size_t i = 0; i < f->nrt; i++)
        if (strcmp(f->rt[i].name, name) == 0)
            return i;
    assert_true(f->nrt < MAX_RT);
    size_t i = f->nrt++;
    snprintf(f->rt[i].name, NAME_MAX_LEN, "%s", name);
    f->rt[i].last[0] = f->rt[i].last[1] = -1;
    f->rt[i].running[0] = f->rt[i].running[1] = false;
    return i;
}

static void set_last(struct fake *f, const char *name, int type, int64_t when)
{
    pthread_mutex_lock(&f->mu);
    f->rt[rt_index(f, name)].last[type] = when;
    pthread_mutex_unlock(&f->mu);
}

static void set_running(struct fake *f, const char *name, int type, bool on)
{
    pthread_mutex_lock(&f->mu);
    f->rt[rt_index(f, name)].running[type] = on;
    pthread_mutex_unlock(&f->mu);
}

static int fake_start(void *ctx, struct cfg *snap, const char *routine, enum sched_backup_type type,
                      int64_t scheduled_ms, struct err *e)
{
    struct fake *f = ctx;
    assert_non_null(snap);
    if (f->reenter) {
        /* everything but update/tick/stop/free may be called from a callback */
        struct err te = {0};
        struct sched_routine_stats st;
        int ok = sched_trigger(f->s, routine, SCHED_INCREMENTAL, 10 * SEC, &te) == 0;
        ok &= sched_report_result(f->s, routine, SCHED_FULL, true, 5) == 0;
        ok &= sched_next_fire(f->s, routine, SCHED_INCREMENTAL) >= 0;
        ok &= sched_routine_stats(f->s, routine, &st, &te) == 0;
        f->reenter_ok += ok;
    }
    pthread_mutex_lock(&f->mu);
    if (f->start_rc) {
        pthread_mutex_unlock(&f->mu);
        return err_set(e, f->start_rc, "fake start failure");
    }
    assert_true(f->ncalls < sizeof f->calls / sizeof f->calls[0]);
    struct call *c = &f->calls[f->ncalls++];
    snprintf(c->routine, sizeof c->routine, "%s", routine);
    c->type = type;
    c->scheduled = scheduled_ms;
    c->snap = snap;
    if (f->run_on_start)
        f->rt[rt_index(f, routine)].running[type] = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static bool fake_is_running(void *ctx, const char *routine, enum sched_backup_type type)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    bool on = f->rt[rt_index(f, routine)].running[type];
    pthread_mutex_unlock(&f->mu);
    return on;
}

static void fake_cancel(void *ctx, const char *routine)
{
    struct fake *f = ctx;
    if (f->reenter) {
        struct sched_routine_stats st;
        struct err te = {0};
        f->reenter_ok += sched_routine_stats(f->s, routine, &st, &te) == 0;
    }
    pthread_mutex_lock(&f->mu);
    assert_true(f->ncancel < 16);
    snprintf(f->cancels[f->ncancel++], NAME_MAX_LEN, "%s", routine);
    size_t i = rt_index(f, routine);
    f->rt[i].running[0] = f->rt[i].running[1] = false;
    pthread_mutex_unlock(&f->mu);
}

static int64_t fake_last(void *ctx, const char *routine, enum sched_backup_type type)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    int64_t v = f->rt[rt_index(f, routine)].last[type];
    pthread_mutex_unlock(&f->mu);
    return v;
}

static int fake_ensure(void *ctx, const struct cfg *snap, const char *routine, struct err *e)
{
    struct fake *f = ctx;
    assert_non_null(snap);
    pthread_mutex_lock(&f->mu);
    size_t i = rt_index(f, routine);
    f->rt[i].ensure_calls++;
    bool fail = f->rt[i].ensure_fail > 0;
    if (fail)
        f->rt[i].ensure_fail--;
    pthread_mutex_unlock(&f->mu);
    return fail ? err_set(e, ERR_IO, "fake storage: listing failed") : 0;
}

static void set_ensure_fail(struct fake *f, const char *name, int times)
{
    pthread_mutex_lock(&f->mu);
    f->rt[rt_index(f, name)].ensure_fail = times;
    pthread_mutex_unlock(&f->mu);
}

static int64_t fake_now(void *ctx)
{
    return ((struct fake *)ctx)->now;
}

static size_t count_calls(struct fake *f, const char *routine, int type)
{
    size_t n = 0;
    for (size_t i = 0; i < f->ncalls; i++)
        if ((!routine || strcmp(f->calls[i].routine, routine) == 0) && (type < 0 || f->calls[i].type == type))
            n++;
    return n;
}

/* ---- configuration helpers --------------------------------------------------------------------- */

static const char *const base_yaml =
    "aerospike-clusters: {c: {seed-nodes: [{host-name: h, port: 3000}]}}\n"
    "storage: {s: {local-storage: {path: /tmp/x}}}\n"
    "backup-policies: {p: {}, pc: {concurrent-incremental: true}}\n";

/* One routine as a YAML flow entry; incr/policy may be NULL. */
static void routine_yaml(char *buf, size_t size, const char *name, const char *full, const char *incr,
                         const char *policy, bool disabled)
{
    char incr_part[128] = "";
    if (incr)
        snprintf(incr_part, sizeof incr_part, " incr-interval-cron: '%s',", incr);
    snprintf(buf, size,
             "%s: {interval-cron: '%s',%s source-cluster: c, storage: s, backup-policy: %s,"
             " namespaces: [test]%s}",
             name, full, incr_part, policy ? policy : "p", disabled ? ", disabled: true" : "");
}

/* Builds a snapshot from up to 4 routine entries (NULL-terminated). */
static struct cfg *mkcfg(const char *r1, const char *r2, const char *r3, const char *r4)
{
    char yaml[4096];
    const char *rs[4] = {r1, r2, r3, r4};
    size_t off = (size_t)snprintf(yaml, sizeof yaml, "%sbackup-routines: {", base_yaml);
    for (int i = 0; i < 4 && rs[i]; i++)
        off += (size_t)snprintf(yaml + off, sizeof yaml - off, "%s%s", i ? ", " : "", rs[i]);
    snprintf(yaml + off, sizeof yaml - off, "}\n");
    struct cfg *c = NULL;
    struct err e = {0};
    if (cfg_from_yaml(yaml, strlen(yaml), "test.yml", &c, &e))
        fail_msg("bad test config: %s\n%s", e.msg, yaml);
    return c;
}

static struct cfg *cfg1(const char *name, const char *full, const char *incr, const char *policy,
                        bool disabled)
{
    char r[512];
    routine_yaml(r, sizeof r, name, full, incr, policy, disabled);
    return mkcfg(r, NULL, NULL, NULL);
}

/* ---- fixture --------------------------------------------------------------------------------- */

struct env {
    struct fake f;
    struct sched *s;
};

static struct env *env_new(int64_t now, const struct sched_options *opts, bool fake_clock)
{
    struct env *v = calloc(1, sizeof *v);
    assert_non_null(v);
    pthread_mutex_init(&v->f.mu, NULL);
    pthread_cond_init(&v->f.cv, NULL);
    v->f.now = now;
    struct sched_runner runner = {&v->f, fake_start, fake_is_running, fake_cancel};
    struct sched_history hist = {&v->f, fake_last, fake_ensure};
    struct sched_clock clk = {&v->f, fake_now};
    struct err e = {0};
    if (sched_new(&runner, &hist, fake_clock ? &clk : NULL, opts, &v->s, &e))
        fail_msg("%s", e.msg);
    v->f.s = v->s;
    return v;
}

static void env_free(struct env *v)
{
    sched_free(v->s);
    pthread_mutex_destroy(&v->f.mu);
    pthread_cond_destroy(&v->f.cv);
    free(v);
}

static void apply(struct env *v, struct cfg *c)
{
    sched_update(v->s, c);
    cfg_release(c); /* the scheduler keeps its own reference */
}

static struct sched_type_stats stats(struct env *v, const char *routine, int type)
{
    struct sched_routine_stats st;
    struct err e = {0};
    if (sched_routine_stats(v->s, routine, &st, &e))
        fail_msg("%s", e.msg);
    return st.type[type];
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_new_requires_callbacks(void **state)
{
    (void)state;
    struct fake f = {0};
    struct sched_runner runner = {&f, fake_start, fake_is_running, NULL};
    struct sched_history hist = {&f, fake_last, NULL};
    struct sched *s = NULL;
    struct err e = {0};
    assert_int_equal(sched_new(&runner, &hist, NULL, NULL, &s, &e), ERR_INVALID);
    assert_null(s);
    runner.cancel = fake_cancel;
    hist.last_success = NULL;
    assert_int_equal(sched_new(&runner, &hist, NULL, NULL, &s, &e), ERR_INVALID);
    sched_free(NULL);
    assert_string_equal(sched_type_name(SCHED_FULL), "full");
    assert_string_equal(sched_type_name(SCHED_INCREMENTAL), "incremental");
}

/* Hourly fulls and 15-second incrementals over a simulated day: every fire at its cron time,
 * one tick per distinct fire time, full before incremental at the same instant. */
static void test_simulated_day(void **state)
{
    (void)state;
    struct env *v = env_new(T0, NULL, true);
    set_last(&v->f, "r", SCHED_FULL, T0); /* a full just ran: no catch-up */
    apply(v, cfg1("r", "0 0 * * * *", "*/15 * * * * *", NULL, false));
    assert_int_equal(sched_next_fire(v->s, "r", SCHED_FULL), T0); /* pending start-up check */

    int64_t next = sched_tick(v->s, T0);
    assert_int_equal(v->f.ncalls, 0);
    assert_int_equal(next, T0 + 15 * SEC);
    size_t ticks = 0;
    while (next <= T0 + DAY) {
        v->f.now = next;
        int64_t after = sched_tick(v->s, next);
        assert_true(after > next);
        next = after;
        ticks++;
    }
    assert_int_equal(ticks, DAY / (15 * SEC));
    assert_int_equal(next, T0 + DAY + 15 * SEC);
    assert_int_equal(v->f.ncalls, 24 + DAY / (15 * SEC));

    size_t i = 0;
    for (int64_t t = T0 + 15 * SEC; t <= T0 + DAY; t += 15 * SEC) {
        if ((t - T0) % HOUR == 0) {
            assert_int_equal(v->f.calls[i].type, SCHED_FULL);
            assert_int_equal(v->f.calls[i].scheduled, t);
            i++;
        }
        assert_int_equal(v->f.calls[i].type, SCHED_INCREMENTAL);
        assert_int_equal(v->f.calls[i].scheduled, t);
        assert_string_equal(v->f.calls[i].routine, "r");
        i++;
    }
    assert_int_equal(stats(v, "r", SCHED_FULL).started, 24);
    assert_int_equal(stats(v, "r", SCHED_INCREMENTAL).started, 5760);
    assert_int_equal(stats(v, "r", SCHED_FULL).skipped, 0);
    assert_int_equal(stats(v, "r", SCHED_INCREMENTAL).skipped, 0);
    env_free(v);
}

/* A full due while a full runs is skipped and counted, not queued; a full starts while an
 * incremental runs. */
static void test_full_overlap_skipped(void **state)
{
    (void)state;
    struct env *v = env_new(T0, NULL, true);
    v->f.run_on_start = true;
    set_last(&v->f, "r", SCHED_FULL, T0);
    apply(v, cfg1("r", "*/10 * * * * *", NULL, NULL, false));
    assert_int_equal(sched_tick(v->s, T0), T0 + 10 * SEC);
    assert_int_equal(sched_tick(v->s, T0 + 10 * SEC), T0 + 20 * SEC);
    assert_int_equal(v->f.ncalls, 1);
    sched_tick(v->s, T0 + 20 * SEC);
    sched_tick(v->s, T0 + 30 * SEC);
    assert_int_equal(v->f.ncalls, 1);
    struct sched_type_stats st = stats(v, "r", SCHED_FULL);
    assert_int_equal(st.started, 1);
    assert_int_equal(st.skipped, 2);
    assert_int_equal(st.skipped_by[SCHED_SKIP_FULL_RUNNING], 2);
    assert_int_equal(st.last_duration_ms, -1);

    /* the job ends and reports: the next fire starts (nothing was queued meanwhile) */
    set_running(&v->f, "r", SCHED_FULL, false);
    assert_int_equal(sched_report_result(v->s, "r", SCHED_FULL, true, 1234), 0);
    assert_int_equal(sched_report_result(v->s, "r", SCHED_FULL, false, 99), 0);
    assert_int_equal(sched_tick(v->s, T0 + 39 * SEC), T0 + 40 * SEC);
    assert_int_equal(v->f.ncalls, 1);
    sched_tick(v->s, T0 + 40 * SEC);
    assert_int_equal(v->f.ncalls, 2);
    assert_int_equal(v->f.calls[1].scheduled, T0 + 40 * SEC);

    /* a full starts even while an incremental runs */
    set_running(&v->f, "r", SCHED_FULL, false);
    set_running(&v->f, "r", SCHED_INCREMENTAL, true);
    sched_tick(v->s, T0 + 50 * SEC);
    assert_int_equal(v->f.ncalls, 3);
    st = stats(v, "r", SCHED_FULL);
    assert_int_equal(st.started, 3);
    assert_int_equal(st.succeeded, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.last_duration_ms, 1234);
    assert_int_equal(st.skipped, 2);
    env_free(v);
}

/* Incrementals are skipped while a backup runs, unless concurrent-incremental (which still
 * never lets two incrementals of a routine overlap). */
static void test_incremental_busy_rules(void **state)
{
    (void)state;
    struct env *v = env_new(T0, NULL, true);
    char a[512], b[512];
    routine_yaml(a, sizeof a, "a", "0 0 * * * *", "*/10 * * * * *", "p", false);
    routine_yaml(b, sizeof b, "b", "0 0 * * * *", "*/10 * * * * *", "pc", false);
    set_last(&v->f, "a", SCHED_FULL, T0);
    set_last(&v->f, "b", SCHED_FULL, T0);
    apply(v, mkcfg(a, b, NULL, NULL));
    sched_tick(v->s, T0);
    assert_int_equal(v->f.ncalls, 0);

    set_running(&v->f, "a", SCHED_FULL, true);
    set_running(&v->f, "b", SCHED_FULL, true);
    sched_tick(v->s, T0 + 10 * SEC);
    assert_int_equal(v->f.ncalls, 1);
    assert_string_equal(v->f.calls[0].routine, "b");
    assert_int_equal(v->f.calls[0].type, SCHED_INCREMENTAL);
    assert_int_equal(stats(v, "a", SCHED_INCREMENTAL).skipped_by[SCHED_SKIP_BUSY], 1);

    /* an incremental runs: skipped for both routines, whatever the policy */
    set_running(&v->f, "a", SCHED_FULL, false);
    set_running(&v->f, "a", SCHED_INCREMENTAL, true);
    set_running(&v->f, "b", SCHED_INCREMENTAL, true);
    sched_tick(v->s, T0 + 20 * SEC);
    assert_int_equal(v->f.ncalls, 1);
    assert_int_equal(stats(v, "a", SCHED_INCREMENTAL).skipped_by[SCHED_SKIP_BUSY], 2);
    assert_int_equal(stats(v, "b", SCHED_INCREMENTAL).skipped_by[SCHED_SKIP_BUSY], 1);

    /* all idle: both start */
    set_running(&v->f, "a", SCHED_INCREMENTAL, false);
    set_running(&v->f, "b", SCHED_INCREMENTAL, false);
    set_running(&v->f, "b", SCHED_FULL, false);
    sched_tick(v->s, T0 + 30 * SEC);
    assert_int_equal(v->f.ncalls, 3);
    assert_int_equal(stats(v, "a", SCHED_INCREMENTAL).started, 1);
    assert_int_equal(stats(v, "b", SCHED_INCREMENTAL).started, 2);
    assert_int_equal(stats(v, "a", SCHED_INCREMENTAL).skipped, 2);
    env_free(v);
}

/* No incremental before a successful full; the start-up full runs at once. */
static void test_incremental_needs_full(void **state)
{
    (void)state;
    struct env *v = env_new(T0 + 5 * SEC, NULL, true);
    v->f.run_on_start = true;
    apply(v, cfg1("r", "0 0 * * * *", "*/10 * * * * *", NULL, false));
    assert_int_equal(sched_tick(v->s, T0 + 5 * SEC), T0 + 10 * SEC);
    assert_int_equal(v->f.ncalls, 1); /* start-up full: no full exists */
    assert_int_equal(v->f.calls[0].type, SCHED_FULL);
    assert_int_equal(v->f.calls[0].scheduled, T0 + 5 * SEC);

    sched_tick(v->s, T0 + 10 * SEC); /* the full still runs, none succeeded yet */
    sched_tick(v->s, T0 + 20 * SEC);
    assert_int_equal(v->f.ncalls, 1);
    struct sched_type_stats st = stats(v, "r", SCHED_INCREMENTAL);
    assert_int_equal(st.skipped, 2);
    assert_int_equal(st.skipped_by[SCHED_SKIP_NO_FULL], 2);
    assert_int_equal(st.started, 0);

    /* the full succeeds */
    set_running(&v->f, "r", SCHED_FULL, false);
    set_last(&v->f, "r", SCHED_FULL, T0 + 5 * SEC);
    sched_tick(v->s, T0 + 30 * SEC);
    assert_int_equal(v->f.ncalls, 2);
    assert_int_equal(v->f.calls[1].type, SCHED_INCREMENTAL);
    assert_int_equal(v->f.calls[1].scheduled, T0 + 30 * SEC);
    env_free(v);
}

/* Start-up: a full at once when none exists or one was missed; not when the last is recent;
 * a running full absorbs the catch-up without a counted skip; a changed cron re-checks. */
static void test_startup_catch_up(void **state)
{
    (void)state;
    int64_t now = T0 + 10 * HOUR; /* 2024-01-01T10:00Z; the daily fire is 03:00 */
    struct env *v = env_new(now, NULL, true);
    char n[512], m[512], k[512], busy[512];
    routine_yaml(n, sizeof n, "none", "0 0 3 * * *", NULL, NULL, false);
    routine_yaml(m, sizeof m, "missed", "0 0 3 * * *", NULL, NULL, false);
    routine_yaml(k, sizeof k, "recent", "0 0 3 * * *", NULL, NULL, false);
    routine_yaml(busy, sizeof busy, "busy", "0 0 3 * * *", NULL, NULL, false);
    set_last(&v->f, "missed", SCHED_FULL, T0 - 21 * HOUR); /* yesterday 03:00 */
    set_last(&v->f, "recent", SCHED_FULL, T0 + 3 * HOUR);  /* today 03:00 */
    set_running(&v->f, "busy", SCHED_FULL, true);          /* no full yet, but one runs */
    apply(v, mkcfg(n, m, k, busy));

    assert_int_equal(sched_tick(v->s, now), T0 + 27 * HOUR);
    assert_int_equal(v->f.ncalls, 2);
    assert_string_equal(v->f.calls[0].routine, "none");
    assert_string_equal(v->f.calls[1].routine, "missed");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(v->f.calls[i].type, SCHED_FULL);
        assert_int_equal(v->f.calls[i].scheduled, now);
    }
    assert_int_equal(stats(v, "busy", SCHED_FULL).skipped, 0);
    assert_int_equal(stats(v, "busy", SCHED_FULL).started, 0);
    assert_int_equal(stats(v, "none", SCHED_FULL).started, 1);

    /* a later tick does not repeat the check */
    sched_tick(v->s, now + MIN);
    assert_int_equal(v->f.ncalls, 2);

    /* "recent" becomes hourly: its last full (03:00) missed 04:00..10:00 -> full now */
    v->f.now = now + 2 * MIN;
    routine_yaml(k, sizeof k, "recent", "0 0 * * * *", NULL, NULL, false);
    apply(v, mkcfg(n, m, k, busy));
    assert_int_equal(sched_next_fire(v->s, "recent", SCHED_FULL), now + 2 * MIN);
    assert_int_equal(sched_tick(v->s, now + 2 * MIN), T0 + 11 * HOUR);
    assert_int_equal(v->f.ncalls, 3);
    assert_string_equal(v->f.calls[2].routine, "recent");
    assert_int_equal(v->f.calls[2].scheduled, now + 2 * MIN);
    /* unchanged routines were not re-checked */
    assert_int_equal(count_calls(&v->f, "none", SCHED_FULL), 1);
    env_free(v);
}

/* A history that cannot be read at start-up is not "no full backup": the catch-up check waits
 * (doubling backoff) until the read succeeds, then decides; incrementals meanwhile are skipped. */
static void test_unreadable_history_retried(void **state)
{
    (void)state;
    int64_t now = T0 + 10 * HOUR; /* daily fire at 03:00 */
    struct env *v = env_new(now, NULL, true);
    char none[512], recent[512];
    routine_yaml(none, sizeof none, "none", "0 0 3 * * *", "*/10 * * * * *", NULL, false);
    routine_yaml(recent, sizeof recent, "recent", "0 0 3 * * *", NULL, NULL, false);
    set_last(&v->f, "recent", SCHED_FULL, T0 + 3 * HOUR); /* today's full exists */
    set_ensure_fail(&v->f, "none", 2);
    set_ensure_fail(&v->f, "recent", 1);
    apply(v, mkcfg(none, recent, NULL, NULL));

    /* both reads fail: no full started (not even for "recent", whose last full is unknown) */
    assert_int_equal(sched_tick(v->s, now), now + 1 * SEC);
    assert_int_equal(v->f.ncalls, 0);
    assert_int_equal(stats(v, "none", SCHED_FULL).skipped, 0);

    /* first retry after 1 s: "none" fails again (next retry in 2 s), "recent" reads and finds
     * today's full: nothing to catch up */
    sched_tick(v->s, now + 1 * SEC);
    assert_int_equal(v->f.ncalls, 0);
    assert_int_equal(v->f.rt[rt_index(&v->f, "recent")].ensure_calls, 2);

    /* second retry (1 s + 2 s): the read succeeds, there is no full: it runs now */
    sched_tick(v->s, now + 3 * SEC);
    assert_int_equal(v->f.ncalls, 1);
    assert_string_equal(v->f.calls[0].routine, "none");
    assert_int_equal(v->f.calls[0].type, SCHED_FULL);
    assert_int_equal(v->f.calls[0].scheduled, now + 3 * SEC);
    assert_int_equal(v->f.rt[rt_index(&v->f, "none")].ensure_calls, 3);

    /* no further start-up checks once decided */
    sched_tick(v->s, now + 5 * MIN);
    assert_int_equal(count_calls(&v->f, NULL, SCHED_FULL), 1);
    env_free(v);
}

/* Incrementals due while the history cannot be read are skipped (history-unreadable). */
static void test_unreadable_history_skips_incremental(void **state)
{
    (void)state;
    int64_t now = T0;
    struct env *v = env_new(now, NULL, true);
    set_last(&v->f, "r", SCHED_FULL, T0); /* this year's full */
    apply(v, cfg1("r", "@yearly", "0 * * * * *", NULL, false));
    sched_tick(v->s, now); /* start-up check: history known, last full recent enough */
    assert_int_equal(v->f.ncalls, 0);
    set_ensure_fail(&v->f, "r", 1);
    sched_tick(v->s, now + MIN);
    assert_int_equal(v->f.ncalls, 0);
    struct sched_type_stats st = stats(v, "r", SCHED_INCREMENTAL);
    assert_int_equal(st.skipped_by[SCHED_SKIP_NO_HISTORY], 1);
    assert_string_equal(sched_skip_reason_name(SCHED_SKIP_NO_HISTORY), "history-unreadable");
    sched_tick(v->s, now + 2 * MIN); /* readable again: the incremental runs */
    assert_int_equal(count_calls(&v->f, "r", SCHED_INCREMENTAL), 1);
    env_free(v);
}

static void test_disabled_not_fired(void **state)
{
    (void)state;
    struct env *v = env_new(T0, NULL, true);
    apply(v, cfg1("d", "*/10 * * * * *", "*/5 * * * * *", NULL, true));
    assert_int_equal(sched_tick(v->s, T0), SCHED_NEVER);
    assert_int_equal(sched_tick(v->s, T0 + HOUR), SCHED_NEVER);
    assert_int_equal(v->f.ncalls, 0);
    assert_int_equal(sched_next_fire(v->s, "d", SCHED_FULL), -1);
    assert_int_equal(sched_next_fire(v->s, "d", SCHED_INCREMENTAL), -1);
    struct sched_routine_stats st;
    struct err e = {0};
    assert_int_equal(sched_routine_stats(v->s, "d", &st, &e), 0);
    assert_false(st.enabled);
    assert_int_equal(sched_trigger(v->s, "d", SCHED_FULL, 0, &e), ERR_INVALID);
    assert_int_equal(v->f.ncancel, 0);

    /* enabling it schedules it, with the start-up check (no full yet -> full now) */
    v->f.now = T0 + HOUR + 1;
    apply(v, cfg1("d", "*/10 * * * * *", "*/5 * * * * *", NULL, false));
    assert_int_equal(sched_tick(v->s, T0 + HOUR + 1), T0 + HOUR + 5 * SEC);
    assert_int_equal(v->f.ncalls, 1);
    assert_int_equal(v->f.calls[0].scheduled, T0 + HOUR + 1);
    env_free(v);
}

/* Config changes: removed routines are unscheduled (with their pending triggers), a changed
 * cron is re-armed, a newly disabled routine has its jobs cancelled, unchanged routines keep
 * their entries, running jobs keep the snapshot they started with. */
static void test_config_update(void **state)
{
    (void)state;
    struct env *v = env_new(T0, NULL, true);
    char a[512], b[512], c[512], u[512];
    routine_yaml(a, sizeof a, "a", "0 0 * * * *", NULL, NULL, false);
    routine_yaml(b, sizeof b, "b", "0 30 * * * *", NULL, NULL, false);
    routine_yaml(c, sizeof c, "c", "0 15 * * * *", NULL, NULL, false);
    routine_yaml(u, sizeof u, "u", "0 45 * * * *", NULL, NULL, false);
    const char *names[] = {"a", "b", "c", "u"};
    for (int i = 0; i < 4; i++)
        set_last(&v->f, names[i], SCHED_FULL, T0);
    struct cfg *first = mkcfg(a, b, c, u);
    sched_update(v->s, first);
    assert_int_equal(sched_tick(v->s, T0), T0 + 15 * MIN);
    assert_int_equal(sched_next_fire(v->s, "a", SCHED_FULL), T0 + HOUR);
    assert_int_equal(sched_next_fire(v->s, "b", SCHED_FULL), T0 + 30 * MIN);
    assert_int_equal(sched_next_fire(v->s, "c", SCHED_FULL), T0 + 15 * MIN);

    struct err e = {0};
    assert_int_equal(sched_trigger(v->s, "b", SCHED_FULL, 5 * SEC, &e), 0);
    assert_int_equal(sched_trigger(v->s, "a", SCHED_FULL, 2 * MIN, &e), 0);
    /* a full of c runs with the first snapshot */
    v->f.run_on_start = true;
    assert_int_equal(sched_trigger(v->s, "c", SCHED_FULL, 0, &e), 0);
    sched_tick(v->s, T0 + 50);
    assert_int_equal(v->f.ncalls, 1);
    assert_ptr_equal(v->f.calls[0].snap, first);
    v->f.run_on_start = false;
    cfg_release(first);

    /* a: cron every 20 minutes; b: removed; c: disabled; u: unchanged */
    v->f.now = T0 + MIN;
    routine_yaml(a, sizeof a, "a", "0 */20 * * * *", NULL, NULL, false);
    routine_yaml(c, sizeof c, "c", "0 15 * * * *", NULL, NULL, true);
    struct cfg *second = mkcfg(a, c, u, NULL);
    sched_update(v->s, second);
    assert_int_equal(v->f.ncancel, 1);
    assert_string_equal(v->f.cancels[0], "c");
    assert_int_equal(sched_next_fire(v->s, "a", SCHED_FULL), T0 + MIN); /* start-up check */
    assert_int_equal(sched_next_fire(v->s, "b", SCHED_FULL), -1);
    assert_int_equal(sched_next_fire(v->s, "c", SCHED_FULL), -1);
    assert_int_equal(sched_next_fire(v->s, "u", SCHED_FULL), T0 + 45 * MIN);
    assert_int_equal(sched_routine_stats(v->s, "b", &(struct sched_routine_stats){0}, &e),
                     ERR_NOT_FOUND);
    assert_int_equal(sched_report_result(v->s, "b", SCHED_FULL, true, 1), ERR_NOT_FOUND);
    assert_int_equal(sched_report_result(v->s, "c", SCHED_FULL, false, 1), 0);
    assert_int_equal(sched_trigger(v->s, "b", SCHED_FULL, 0, &e), ERR_NOT_FOUND);

    /* run to the hour: a at its trigger (2 min) and 20/40/60 min, u at 45 min, nothing else */
    int64_t next = sched_tick(v->s, T0 + MIN);
    assert_int_equal(v->f.ncalls, 1); /* a's last full (T0) missed nothing under the new cron */
    while (next <= T0 + HOUR) {
        v->f.now = next;
        next = sched_tick(v->s, next);
    }
    assert_int_equal(v->f.ncalls, 6);
    const struct { const char *r; int64_t at; } want[] = {
        {"a", T0 + 2 * MIN}, {"a", T0 + 20 * MIN}, {"a", T0 + 40 * MIN}, {"u", T0 + 45 * MIN},
        {"a", T0 + HOUR}};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(v->f.calls[i + 1].routine, want[i].r);
        assert_int_equal(v->f.calls[i + 1].scheduled, want[i].at);
        assert_ptr_equal(v->f.calls[i + 1].snap, second);
    }
    cfg_release(second);

    /* an empty configuration unschedules everything */
    sched_update(v->s, NULL);
    assert_int_equal(sched_tick(v->s, T0 + 2 * HOUR), SCHED_NEVER);
    assert_int_equal(v->f.ncalls, 6);
    assert_int_equal(v->f.ncancel, 1); /* removal does not cancel */
    env_free(v);
}

static void test_trigger(void **state)
{
    (void)state;
    struct env *v = env_new(T0, NULL, true);
    set_last(&v->f, "r", SCHED_FULL, T0);
    apply(v, cfg1("r", "0 0 0 1 1 ? 2099", NULL, NULL, false));
    int64_t far = 4070908800000LL; /* 2099-01-01T00:00:00Z */
    assert_int_equal(sched_tick(v->s, T0), far);

    struct err e = {0};
    assert_int_equal(sched_trigger(v->s, "r", SCHED_FULL, 0, &e), 0);
    assert_int_equal(sched_next_fire(v->s, "r", SCHED_FULL), T0 + 50);
    assert_int_equal(sched_tick(v->s, T0), T0 + 50);
    assert_int_equal(sched_tick(v->s, T0 + 49), T0 + 50);
    assert_int_equal(v->f.ncalls, 0);
    assert_int_equal(sched_tick(v->s, T0 + 50), far);
    assert_int_equal(v->f.ncalls, 1);
    assert_int_equal(v->f.calls[0].type, SCHED_FULL);
    assert_int_equal(v->f.calls[0].scheduled, T0 + 50);

    /* delays above the minimum are kept; incrementals too (no incr cron needed) */
    v->f.now = T0 + SEC;
    assert_int_equal(sched_trigger(v->s, "r", SCHED_INCREMENTAL, 1500, &e), 0);
    assert_int_equal(sched_trigger(v->s, "r", SCHED_FULL, 20, &e), 0);
    assert_int_equal(sched_next_fire(v->s, "r", SCHED_INCREMENTAL), T0 + 2500);
    assert_int_equal(sched_next_fire(v->s, "r", SCHED_FULL), T0 + SEC + 50);
    assert_int_equal(sched_tick(v->s, T0 + 2500), far);
    assert_int_equal(v->f.ncalls, 3);
    assert_int_equal(v->f.calls[1].type, SCHED_FULL);
    assert_int_equal(v->f.calls[1].scheduled, T0 + SEC + 50);
    assert_int_equal(v->f.calls[2].type, SCHED_INCREMENTAL);
    assert_int_equal(v->f.calls[2].scheduled, T0 + 2500);

    /* same overlap rules, counted */
    set_running(&v->f, "r", SCHED_FULL, true);
    v->f.now = T0 + 3 * SEC;
    assert_int_equal(sched_trigger(v->s, "r", SCHED_FULL, 100, &e), 0);
    sched_tick(v->s, T0 + 4 * SEC);
    assert_int_equal(v->f.ncalls, 3);
    assert_int_equal(stats(v, "r", SCHED_FULL).skipped_by[SCHED_SKIP_FULL_RUNNING], 1);
    assert_int_equal(stats(v, "r", SCHED_FULL).started, 2);

    /* errors */
    assert_int_equal(sched_trigger(v->s, "nope", SCHED_FULL, 0, &e), ERR_NOT_FOUND);
    assert_int_equal(sched_trigger(v->s, "r", SCHED_FULL, -1, &e), ERR_INVALID);
    assert_int_equal(sched_trigger(v->s, "r", SCHED_FULL, INT64_MAX, &e), ERR_INVALID);
    assert_int_equal(sched_trigger(v->s, "r", (enum sched_backup_type)7, 0, &e), ERR_INVALID);
    assert_int_equal(sched_next_fire(v->s, "r", SCHED_FULL), far);
    env_free(v);
}

static void test_next_fire_times(void **state)
{
    (void)state;
    int64_t now = T0 + 10 * HOUR + 5 * MIN;
    struct env *v = env_new(now, NULL, true);
    char x[512], y[512];
    routine_yaml(x, sizeof x, "x", "0 0 3 * * *", "0 */30 * * * *", NULL, false);
    routine_yaml(y, sizeof y, "y", "@hourly", NULL, NULL, false);
    set_last(&v->f, "x", SCHED_FULL, T0 + 3 * HOUR);
    set_last(&v->f, "y", SCHED_FULL, T0 + 10 * HOUR);
    apply(v, mkcfg(x, y, NULL, NULL));
    sched_tick(v->s, now);
    assert_int_equal(v->f.ncalls, 0);
    assert_int_equal(sched_next_fire(v->s, "x", SCHED_FULL), T0 + 27 * HOUR);
    assert_int_equal(sched_next_fire(v->s, "x", SCHED_INCREMENTAL), T0 + 10 * HOUR + 30 * MIN);
    assert_int_equal(sched_next_fire(v->s, "y", SCHED_FULL), T0 + 11 * HOUR);
    assert_int_equal(sched_next_fire(v->s, "y", SCHED_INCREMENTAL), -1);
    assert_int_equal(sched_next_fire(v->s, "zz", SCHED_FULL), -1);

    struct sched_routine_stats *all;
    size_t n;
    struct err e = {0};
    assert_int_equal(sched_stats_all(v->s, &all, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(all[0].name, "x");
    assert_string_equal(all[1].name, "y");
    assert_true(all[0].enabled);
    assert_int_equal(all[0].type[SCHED_FULL].next_fire_ms, T0 + 27 * HOUR);
    assert_int_equal(all[0].type[SCHED_INCREMENTAL].next_fire_ms, T0 + 10 * HOUR + 30 * MIN);
    assert_int_equal(all[1].type[SCHED_INCREMENTAL].next_fire_ms, -1);
    sched_stats_free(all, n);

    /* after the incremental fires, the next one is reported */
    sched_tick(v->s, T0 + 10 * HOUR + 30 * MIN);
    assert_int_equal(sched_next_fire(v->s, "x", SCHED_INCREMENTAL), T0 + 11 * HOUR);
    env_free(v);
}

/* An expression with no future fire time is never armed, and ticks do not spin on it. */
static void test_never_firing(void **state)
{
    (void)state;
    struct env *v = env_new(T0, NULL, true);
    set_last(&v->f, "old", SCHED_FULL, T0 - DAY);
    char o[512], f[512];
    routine_yaml(o, sizeof o, "old", "0 0 0 1 1 ? 2000", "0 0 0 1 1 ? 2001", NULL, false);
    routine_yaml(f, sizeof f, "feb30", "0 0 0 30 2 ?", NULL, NULL, false);
    set_last(&v->f, "feb30", SCHED_FULL, T0 - DAY);
    apply(v, mkcfg(o, f, NULL, NULL));
    assert_int_equal(sched_tick(v->s, T0), SCHED_NEVER);
    assert_int_equal(sched_next_fire(v->s, "old", SCHED_FULL), -1);
    assert_int_equal(sched_next_fire(v->s, "old", SCHED_INCREMENTAL), -1);
    assert_int_equal(sched_next_fire(v->s, "feb30", SCHED_FULL), -1);
    assert_int_equal(sched_tick(v->s, T0 + 3650 * DAY), SCHED_NEVER);
    assert_int_equal(v->f.ncalls, 0);
    assert_int_equal(stats(v, "old", SCHED_FULL).skipped, 0);
    env_free(v);
}

/* A periodic fire handled too late is dropped and counted; the next is computed from now. */
static void test_late_fire_dropped(void **state)
{
    (void)state;
    struct sched_options opts = {.late_ms = 30 * SEC};
    struct env *v = env_new(T0, &opts, true);
    set_last(&v->f, "r", SCHED_FULL, T0);
    apply(v, cfg1("r", "*/10 * * * * *", NULL, NULL, false));
    assert_int_equal(sched_tick(v->s, T0), T0 + 10 * SEC);
    /* within the tolerance: runs, with its scheduled time; missed fires collapse */
    assert_int_equal(sched_tick(v->s, T0 + 35 * SEC), T0 + 40 * SEC);
    assert_int_equal(v->f.ncalls, 1);
    assert_int_equal(v->f.calls[0].scheduled, T0 + 10 * SEC);
    /* beyond it: dropped */
    assert_int_equal(sched_tick(v->s, T0 + 75 * SEC), T0 + 80 * SEC);
    assert_int_equal(v->f.ncalls, 1);
    struct sched_type_stats st = stats(v, "r", SCHED_FULL);
    assert_int_equal(st.skipped_by[SCHED_SKIP_LATE], 1);
    assert_int_equal(st.skipped, 1);
    sched_tick(v->s, T0 + 80 * SEC);
    assert_int_equal(v->f.ncalls, 2);
    env_free(v);
}

static void test_start_error_counted(void **state)
{
    (void)state;
    struct env *v = env_new(T0, NULL, true);
    v->f.start_rc = ERR_IO;
    apply(v, cfg1("r", "*/10 * * * * *", NULL, NULL, false));
    sched_tick(v->s, T0); /* start-up full fails to start */
    sched_tick(v->s, T0 + 10 * SEC);
    struct sched_type_stats st = stats(v, "r", SCHED_FULL);
    assert_int_equal(st.started, 0);
    assert_int_equal(st.failed, 2);
    assert_int_equal(v->f.ncalls, 0);
    env_free(v);
}

/* Callbacks may call back into the scheduler (trigger, report, queries) without deadlock. */
static void test_callbacks_reenter(void **state)
{
    (void)state;
    struct env *v = env_new(T0, NULL, true);
    v->f.reenter = true;
    apply(v, cfg1("r", "0 0 * * * *", NULL, NULL, false));
    sched_tick(v->s, T0); /* start-up full; its start queues an incremental in 10 s */
    assert_int_equal(v->f.ncalls, 1);
    assert_int_equal(v->f.reenter_ok, 1);
    assert_int_equal(stats(v, "r", SCHED_FULL).succeeded, 1);
    set_last(&v->f, "r", SCHED_FULL, T0);
    v->f.now = T0 + 10 * SEC;
    assert_int_equal(sched_tick(v->s, T0 + 10 * SEC), T0 + 20 * SEC); /* re-queued by start */
    assert_int_equal(v->f.ncalls, 2);
    assert_int_equal(v->f.calls[1].type, SCHED_INCREMENTAL);
    assert_int_equal(v->f.reenter_ok, 2);
    apply(v, cfg1("r", "0 0 * * * *", NULL, NULL, true)); /* cancel re-enters too */
    assert_int_equal(v->f.ncancel, 1);
    assert_int_equal(v->f.reenter_ok, 3);

    /* an entry queued during a tick is left for the next tick, even when already due: a start
     * that keeps re-triggering cannot trap the tick in a loop */
    v->f.now = T0 + HOUR;
    apply(v, cfg1("r", "0 0 * * * *", NULL, NULL, false));
    v->f.now = T0; /* the clock seen by sched_trigger lags the tick's now */
    size_t before = v->f.ncalls;
    int64_t next = sched_tick(v->s, T0 + HOUR);
    assert_int_equal(v->f.ncalls, before + 1);  /* the start-up full only */
    assert_int_equal(next, T0 + 10 * SEC);      /* due already: the caller ticks again */
    assert_int_equal(sched_tick(v->s, T0 + HOUR), T0 + 10 * SEC);
    assert_int_equal(v->f.ncalls, before + 2);
    env_free(v);
}

/* The config store's change listener drives the scheduler: disabling a routine through the
 * store cancels its jobs and unschedules it. */
static void test_store_listener(void **state)
{
    (void)state;
    char dir[] = "/tmp/abs-sched-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/config.yml", dir);
    char yaml[2048], r[512];
    routine_yaml(r, sizeof r, "r", "0 0 * * * *", NULL, NULL, false);
    snprintf(yaml, sizeof yaml, "%sbackup-routines: {%s}\n", base_yaml, r);
    struct err e = {0};
    assert_int_equal(fs_write_atomic(path, yaml, strlen(yaml), 0600, &e), 0);
    struct cfg_store *st = NULL;
    if (cfg_store_open(path, false, &st, &e))
        fail_msg("%s", e.msg);

    struct env *v = env_new(T0, NULL, true);
    set_last(&v->f, "r", SCHED_FULL, T0);
    struct cfg *snap = cfg_store_snapshot(st);
    apply(v, snap);
    cfg_store_set_listener(st, sched_cfg_listener, v->s);
    assert_int_equal(sched_tick(v->s, T0), T0 + HOUR);

    set_running(&v->f, "r", SCHED_FULL, true);
    if (cfg_store_set_routine_disabled(st, "r", true, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(v->f.ncancel, 1);
    assert_int_equal(sched_next_fire(v->s, "r", SCHED_FULL), -1);
    if (cfg_store_set_routine_disabled(st, "r", false, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(sched_next_fire(v->s, "r", SCHED_FULL), T0); /* start-up check queued */
    assert_int_equal(v->f.ncancel, 1);

    cfg_store_set_listener(st, NULL, NULL);
    env_free(v);
    cfg_store_free(st);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The real thread with the real clock: an on-demand trigger wakes it (the only periodic fire is
 * in 2099, so without the wake-up it would sleep max_wait_ms), the runner is called after the
 * 50 ms minimum delay, and stop returns promptly. */
static void test_thread_real_clock(void **state)
{
    (void)state;
    struct env *v = env_new(0, NULL, false);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    set_last(&v->f, "r", SCHED_FULL, wall); /* recent full: no start-up run */
    struct err e = {0};
    assert_int_equal(sched_start(v->s, &e), 0);
    assert_int_equal(sched_start(v->s, &e), ERR_CONFLICT);
    apply(v, cfg1("r", "0 0 0 1 1 ? 2099", NULL, NULL, false));

    struct timespec t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(sched_trigger(v->s, "r", SCHED_FULL, 0, &e), 0);

    /* wait for the call on the fake's condition variable (bounded, no sleeping) */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&v->f.mu);
    while (v->f.ncalls == 0)
        if (pthread_cond_timedwait(&v->f.cv, &v->f.mu, &deadline))
            break;
    size_t calls = v->f.ncalls;
    pthread_mutex_unlock(&v->f.mu);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    assert_int_equal(calls, 1);
    int64_t elapsed = (t2.tv_sec - t1.tv_sec) * 1000 + (t2.tv_nsec - t1.tv_nsec) / 1000000;
    assert_true(elapsed >= 40);   /* the 50 ms minimum delay (ms rounding of the wall clock) */
    assert_true(elapsed < 2000);
    assert_true(v->f.calls[0].scheduled >= wall + 50);

    clock_gettime(CLOCK_MONOTONIC, &t1);
    sched_stop(v->s);
    sched_stop(v->s); /* no-op */
    clock_gettime(CLOCK_MONOTONIC, &t2);
    elapsed = (t2.tv_sec - t1.tv_sec) * 1000 + (t2.tv_nsec - t1.tv_nsec) / 1000000;
    assert_true(elapsed < 1000);

    /* restartable; free stops it */
    assert_int_equal(sched_start(v->s, &e), 0);
    env_free(v);
}

int main(void)
{
    /* one INFO line per started backup would flood the simulated day */
    struct log_options lo = {.level = LOG_WARN, .format = LOG_FORMAT_PLAIN, .to_stdout = true};
    struct err le = {0};
    log_configure(&lo, &le);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_requires_callbacks),
        cmocka_unit_test(test_simulated_day),
        cmocka_unit_test(test_full_overlap_skipped),
        cmocka_unit_test(test_incremental_busy_rules),
        cmocka_unit_test(test_incremental_needs_full),
        cmocka_unit_test(test_startup_catch_up),
        cmocka_unit_test(test_unreadable_history_retried),
        cmocka_unit_test(test_unreadable_history_skips_incremental),
        cmocka_unit_test(test_disabled_not_fired),
        cmocka_unit_test(test_config_update),
        cmocka_unit_test(test_trigger),
        cmocka_unit_test(test_next_fire_times),
        cmocka_unit_test(test_never_firing),
        cmocka_unit_test(test_late_fire_dropped),
        cmocka_unit_test(test_start_error_counted),
        cmocka_unit_test(test_callbacks_reenter),
        cmocka_unit_test(test_store_listener),
        cmocka_unit_test(test_thread_real_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
