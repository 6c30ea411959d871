/*
 * jobs.h - the service's job manager: starts backup jobs (for the scheduler and the API),
 * keeps the table of running jobs with their live progress, cancels them, and after each job
 * updates the backup history and applies retention.
 *
 * It implements the scheduler's runner and history interfaces (sched/scheduler.h). Each job
 * runs in its own thread with the configuration snapshot it started with.
 */
#ifndef ABS_JOBS_JOBS_H
#define ABS_JOBS_JOBS_H

#include <jansson.h>
#include <stdbool.h>

#include "config/config.h"
#include "jobs/history.h"
#include "metrics/metrics.h"
#include "sched/scheduler.h"
#include "util/err.h"

struct jobs;

int jobs_new(struct history_cache *history, struct metrics *metrics, struct jobs **out, struct err *e);
/* Cancels running jobs and waits for them to end. */
void jobs_free(struct jobs *j);

/* Where results are reported (set once the scheduler exists). */
void jobs_set_scheduler(struct jobs *j, struct sched *s);
/* Restores to respect: retention is skipped while one reads the routine's backups. */
struct restores;
void jobs_set_restores(struct jobs *j, struct restores *r);
struct sched_runner jobs_runner(struct jobs *j);
struct sched_history jobs_history(struct jobs *j);

/* Cancels the running jobs of a routine (partial data is deleted by the jobs). */
void jobs_cancel_routine(struct jobs *j, const char *routine);
/* Number of running jobs (all routines). */
unsigned jobs_running_count(struct jobs *j);

/* ABS dto.RoutineState of a routine: running jobs with progress, last and next times. */
json_t *jobs_routine_state(struct jobs *j, const char *routine);

/* Brings the job gauges (in progress, progress pct) and the scheduler's counters (skips, v2
 * legacy counters) up to date in the metrics registry; called before /metrics renders. */
void jobs_export_metrics(struct jobs *j);

/* Rebuilds the history of every routine of `snapshot` from storage (configuration applied). */
void jobs_refresh_history(struct jobs *j, const struct cfg *snapshot);

/* Start-up: reads the history of every routine of `snapshot`, deleting the partial backups of
 * interrupted runs first, in a background thread, and waits for it at most wait_ms: a storage
 * that does not answer must not keep the API (and systemd's READY) from starting. A routine the
 * loader has not read yet is read by the scheduler's history check when it needs it (the two
 * never read the same routine at once); a job of a routine the loader is cleaning up waits for
 * it, and a routine with a running job is read without clean-up, so the clean-up never meets a
 * running backup. */
int jobs_load_history(struct jobs *j, struct cfg *snapshot, int64_t wait_ms, struct err *e);

#endif
