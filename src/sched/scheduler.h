/*
 * scheduler.h - the backup scheduler: decides *when* a routine's full and incremental backups
 * start, applies ABS's run/skip rules and counts what it did. It never runs a backup itself:
 * it calls a runner (struct sched_runner) given at creation, asks a history
 * (struct sched_history) for the last successful backups, and reads time from a clock
 * (struct sched_clock) so tests can drive it with a fake one.
 *
 * Model: one min-heap of pending fires ordered by time (ties: full before incremental, then
 * insertion order). Three kinds of entries:
 *   - periodic:  the next fire of a routine's `interval-cron` (full) or `incr-interval-cron`
 *                (incremental); re-armed from the cron expression each time it is popped;
 *   - on-demand: a run-once entry queued by sched_trigger();
 *   - catch-up:  a run-once full check queued when a routine is (re)scheduled (see below).
 * sched_tick(s, now) pops and handles everything due at `now` and returns the next due time;
 * the scheduler thread (sched_start) is only a loop around sched_tick and a condition-variable
 * wait, woken early by sched_update / sched_trigger / sched_stop. Unit tests call sched_tick
 * directly with a fake clock and never start the thread.
 *
 * Rules (abs-reference §8.2):
 *   - Only enabled routines (`disabled` unset or false) are scheduled; a routine's fulls fire on
 *     `interval-cron`, its incrementals on `incr-interval-cron` when that is set. An expression
 *     with no future fire time (cron_next = -1) is simply not armed.
 *   - Full due while a full of the routine runs: skipped, counted (SCHED_SKIP_FULL_RUNNING),
 *     never queued. A full starts even while an incremental runs.
 *   - Incremental due before any successful full exists (history last_success(FULL) = -1):
 *     skipped, counted (SCHED_SKIP_NO_FULL).
 *   - Incremental due while a backup of the routine runs: skipped, counted
 *     (SCHED_SKIP_BUSY) - unless the routine's policy has `concurrent-incremental: true`, in
 *     which case it starts while a full runs. Incrementals never overlap each other (two at
 *     once would read the same modification window), so one due while an incremental runs is
 *     skipped (SCHED_SKIP_BUSY) whatever the policy says.
 *   - A periodic fire handled more than `late_ms` after its time (the host was suspended, the
 *     clock jumped) is dropped and counted (SCHED_SKIP_LATE), like go-quartz's "outdated"
 *     triggers; several missed fires of one expression collapse into that one. The next fire is
 *     computed from `now`, so a late scheduler never bursts.
 *   - Catch-up full: when a routine is first scheduled (start-up, newly added, newly enabled) or
 *     its `interval-cron` changes, a full runs at once if the routine has no successful full, or
 *     if the cron's first fire time after the last successful full is not after the moment of
 *     scheduling (a scheduled full was missed while the service was down). It obeys the full
 *     overlap rule, but a catch-up that finds a full running is dropped without counting a skip
 *     (it was not a scheduled fire). Its scheduled time is the tick's `now`. When the
 *     routine's history could not be read from storage (history->ensure fails), that is not
 *     taken as "no full": the check is logged and queued again with doubling backoff, and
 *     decided only once the history has been read.
 *   - On-demand (sched_trigger): fires once after max(delay, 50 ms) and obeys the rules above
 *     like a periodic fire (skips are counted).
 * Config changes (sched_update) apply at once: removed routines lose their pending entries
 * (periodic, on-demand and catch-up) and counters; a changed cron expression re-arms only that
 * expression from now; unchanged routines keep their pending entries; a routine that turns
 * disabled loses its entries and its running jobs are cancelled through runner->cancel. A
 * running job keeps the snapshot it was started with (the runner retains it).
 *
 * Locking (the rule the callbacks must follow):
 *   - The scheduler has a state mutex, held only for short bookkeeping, and a work lock that
 *     serialises sched_tick and sched_update (lock order: work lock, then state mutex).
 *   - Every callback (runner start/is_running/cancel, history last_success, clock now_ms) is
 *     called WITHOUT the state mutex; start/is_running/cancel/last_success are called while the
 *     work lock is held, so no update or other tick can interleave with a start decision.
 *   - Callbacks may therefore call sched_trigger, sched_report_result, sched_next_fire and the
 *     stats functions (they take only the state mutex), but must NOT call sched_update,
 *     sched_tick, sched_start, sched_stop or sched_free, nor anything that ends in sched_update
 *     (a config store write, whose listener calls sched_update) - that would self-deadlock.
 *   - sched_update may be called from the config store's change listener (it is called with the
 *     store's write lock held; the scheduler never calls into the store).
 *   - All functions are thread safe.
 */
#ifndef ABS_SCHED_SCHEDULER_H
#define ABS_SCHED_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg_model.h"
#include "util/err.h"

enum sched_backup_type { SCHED_FULL = 0, SCHED_INCREMENTAL = 1 };
#define SCHED_TYPE_COUNT 2

/* Why a due backup did not start. */
enum sched_skip_reason {
    SCHED_SKIP_FULL_RUNNING = 0, /* full due while a full of the routine runs */
    SCHED_SKIP_BUSY,             /* incremental due while a backup of the routine runs */
    SCHED_SKIP_NO_FULL,          /* incremental due before any successful full */
    SCHED_SKIP_LATE,             /* periodic fire handled more than late_ms after its time */
    SCHED_SKIP_NO_HISTORY,       /* incremental due while the history cannot be read */
    SCHED_SKIP_REASON_COUNT
};

#define SCHED_NEVER INT64_MAX        /* sched_tick: nothing pending */
#define SCHED_MIN_DELAY_MS 50        /* on-demand delays below this are raised to it (ABS) */
#define SCHED_DEFAULT_LATE_MS 60000  /* default tolerance for a late periodic fire */
#define SCHED_DEFAULT_MAX_WAIT_MS 60000

/* Starts and cancels backups. `start` gets the scheduler's current snapshot (borrowed: the
 * runner cfg_retain()s it for the job's lifetime), the routine name (borrowed), the type and
 * the scheduled time (epoch ms, UTC; use it as the backup timestamp). It should return quickly
 * (hand the work to a job thread) and report the outcome later with sched_report_result().
 * A non-zero return means the job did not start; it is counted as a failure.
 * `is_running` tells whether a job of that routine and type runs now. `cancel` cancels every
 * job of the routine (a no-op when none runs). See the locking rule above. */
struct sched_runner {
    void *ctx;
    int (*start)(void *ctx, struct cfg *snapshot, const char *routine, enum sched_backup_type type,
                 int64_t scheduled_ms, struct err *e);
    bool (*is_running)(void *ctx, const char *routine, enum sched_backup_type type);
    void (*cancel)(void *ctx, const char *routine);
};

/* Backup history: the time (epoch ms) of the newest successful backup of that routine and
 * type (metadata `created`), or -1 when there is none. */
struct sched_history {
    void *ctx;
    int64_t (*last_success)(void *ctx, const char *routine, enum sched_backup_type type);
    /* Optional (NULL: the history is always known). 0 when the routine's history has been read
     * from storage, reading it again (with `snapshot`, borrowed) when an earlier read failed;
     * otherwise an error in e. While it fails the scheduler decides nothing that depends on
     * the history: the start-up catch-up check is retried with backoff (SCHED_HISTORY_RETRY_*)
     * instead of taking "no full backup" for an answer, and due incrementals are skipped
     * (SCHED_SKIP_NO_HISTORY). Called like last_success (work lock held, state mutex not). */
    int (*ensure)(void *ctx, const struct cfg *snapshot, const char *routine, struct err *e);
};

#define SCHED_HISTORY_RETRY_MIN_MS 1000   /* first retry of an unreadable history */
#define SCHED_HISTORY_RETRY_MAX_MS 60000  /* backoff doubles up to this */

/* Wall clock, epoch ms UTC. A NULL clock or NULL now_ms means the real clock (CLOCK_REALTIME).
 * The thread sleeps (on a monotonic condition variable) for `next - now_ms()` capped by
 * max_wait_ms, so a clock jump is noticed within max_wait_ms. */
struct sched_clock {
    void *ctx;
    int64_t (*now_ms)(void *ctx);
};

struct sched_options {
    int64_t late_ms;     /* <= 0: SCHED_DEFAULT_LATE_MS */
    int64_t max_wait_ms; /* <= 0: SCHED_DEFAULT_MAX_WAIT_MS (longest single sleep of the thread) */
};

struct sched;

/* Creates a scheduler with no routines (call sched_update with a snapshot). `runner` and
 * `history` are required (all their functions set); `clock` and `opts` may be NULL. The structs
 * are copied; their ctx pointers must outlive the scheduler. */
int sched_new(const struct sched_runner *runner, const struct sched_history *history,
              const struct sched_clock *clock, const struct sched_options *opts,
              struct sched **out, struct err *e);
/* Stops the thread if it runs, drops every pending entry, releases the snapshot. Running jobs
 * are not cancelled (they own their snapshot). Unregister the config store listener first.
 * NULL is a no-op. */
void sched_free(struct sched *s);

/* Applies a configuration snapshot (borrowed; the scheduler retains it, NULL = no routines);
 * see "Config changes" above. Wakes the thread. */
void sched_update(struct sched *s, struct cfg *snapshot);
/* Adapter with the config store's listener signature: cfg_store_set_listener(st,
 * sched_cfg_listener, s). */
void sched_cfg_listener(void *sched, struct cfg *snapshot);

/* Handles every entry due at or before `now_ms` (starting or skipping backups) and returns the
 * time of the next pending entry, or SCHED_NEVER when nothing is pending. Entries queued while
 * the tick runs (by callbacks, or by other threads) are left for the next tick even when already
 * due, so a tick always ends; the returned time is then <= now_ms: tick again. */
int64_t sched_tick(struct sched *s, int64_t now_ms);

/* On-demand backup of `routine` after `delay_ms` (>= 0; raised to SCHED_MIN_DELAY_MS).
 * ERR_NOT_FOUND: no such routine in the current snapshot; ERR_INVALID: negative or overflowing
 * delay, or the routine is disabled. Wakes the thread. */
int sched_trigger(struct sched *s, const char *routine, enum sched_backup_type type,
                  int64_t delay_ms, struct err *e);

/* A job started through runner->start finished (`ok` false: failed or cancelled). Updates the
 * counters; ERR_NOT_FOUND (and nothing counted) when the routine is no longer configured. */
int sched_report_result(struct sched *s, const char *routine, enum sched_backup_type type, bool ok,
                        int64_t duration_ms);

/* Time of the next pending fire of that routine and type (periodic, on-demand or, for fulls,
 * catch-up: the earliest), or -1 when none is pending (unknown or disabled routine,
 * no/never-firing expression). */
int64_t sched_next_fire(struct sched *s, const char *routine, enum sched_backup_type type);

struct sched_type_stats {
    uint64_t started;                         /* runner->start returned 0 */
    uint64_t skipped;                         /* sum of skipped_by */
    uint64_t skipped_by[SCHED_SKIP_REASON_COUNT];
    uint64_t succeeded;                       /* sched_report_result ok */
    uint64_t failed;                          /* sched_report_result !ok, plus start errors */
    int64_t last_duration_ms;                 /* of the last reported success; -1 none */
    int64_t next_fire_ms;                     /* as sched_next_fire */
};

struct sched_routine_stats {
    char *name; /* owned, in sched_stats_all results only (NULL from sched_routine_stats) */
    bool enabled;
    struct sched_type_stats type[SCHED_TYPE_COUNT];
};

/* Counters of one routine; ERR_NOT_FOUND when it is not in the current snapshot. */
int sched_routine_stats(struct sched *s, const char *routine, struct sched_routine_stats *out,
                        struct err *e);
/* Counters of every configured routine, in configuration order; free with sched_stats_free. */
int sched_stats_all(struct sched *s, struct sched_routine_stats **out, size_t *n, struct err *e);
void sched_stats_free(struct sched_routine_stats *stats, size_t n);

/* Starts / stops the scheduler thread. sched_start fails with ERR_CONFLICT when it already runs.
 * sched_stop wakes the thread, waits for it to return (a start call in progress completes) and
 * is a no-op when it is not running; the scheduler can be started again. */
int sched_start(struct sched *s, struct err *e);
void sched_stop(struct sched *s);

const char *sched_type_name(enum sched_backup_type type);      /* "full" / "incremental" */
const char *sched_skip_reason_name(enum sched_skip_reason reason);

#endif
