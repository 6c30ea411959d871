/*
 * restores.h - the restore job table: decodes ABS restore requests (dto.RestoreRequest and
 * dto.RestoreTimestampRequest, abs-reference §3.1-3.2), runs each restore on its own thread
 * with the restore engine (restore_job.h), and answers status, listing and cancel
 * (dto.RestoreJobStatus, §3.4). Finished jobs are remembered (the newest RESTORES_KEEP).
 */
#ifndef ABS_JOBS_RESTORES_H
#define ABS_JOBS_RESTORES_H

#include <jansson.h>
#include <stdint.h>

#include "config/config.h"
#include "util/err.h"

#define RESTORES_KEEP 1000

enum restore_request_kind { RESTORE_FULL = 0, RESTORE_INCREMENTAL, RESTORE_TIMESTAMP };

struct restores;

int restores_new(struct cfg_store *store, struct restores **out, struct err *e);
/* Cancels running restores and waits for them. */
void restores_free(struct restores *r);

/* Validates the request (ERR_INVALID naming the field) and starts the job; *id = its id. */
int restores_start(struct restores *r, enum restore_request_kind kind, const json_t *body, int64_t *id,
                   struct err *e);
/* dto.RestoreJobStatus; ERR_NOT_FOUND for an unknown id. */
json_t *restores_status(struct restores *r, int64_t id, struct err *e);
/* Map "id" -> status, filtered by start time [from, to] (ms, -1 = open) and a status filter
 * (comma list of running,success,failure,canceled with aliases done/failed; a leading '!'
 * excludes; NULL = all). ERR_INVALID for a bad filter. */
json_t *restores_list(struct restores *r, int64_t from_ms, int64_t to_ms, const char *status, struct err *e);
/* ERR_NOT_FOUND for an unknown id; cancelling a finished job is a no-op. */
int restores_cancel(struct restores *r, int64_t id, struct err *e);
/* Sets restore_in_progress and adds finished jobs to restore_events_total{outcome}. */
struct metrics;
void restores_export_metrics(struct restores *r, struct metrics *m);

/* True while a restore reads from `routine` (retention waits for it). */
bool restores_busy_with(struct restores *r, const char *routine);

#endif
