/*
 * api_backups.c - backup routes (abs-reference §1.2 "Backups"): on-demand triggers, cancel,
 * current state of a routine, and the listing of full and incremental backups.
 */
#include <inttypes.h>
#include <string.h>

#include "api/api_internal.h"
#include "config/config.h"
#include "jobs/history.h"
#include "jobs/jobs.h"
#include "sched/scheduler.h"

enum { ARG_FULL = SCHED_FULL, ARG_INCREMENTAL = SCHED_INCREMENTAL };

/* The {name} routine of the current configuration; NULL after replying 404/400. */
static const char *routine_param(struct api_request *req, struct api_response *res)
{
    struct err e;
    const char *name = api_param(req, "name");
    if (api_check_name(name, "routine", &e) != 0) {
        api_reply_err(res, &e);
        return NULL;
    }
    struct cfg *c = cfg_store_snapshot(req->deps->store);
    bool known = cfg_map_get(&c->routines, name) != NULL;
    cfg_release(c);
    if (!known) {
        api_reply_error(res, 404, "routine %s not found", name);
        return NULL;
    }
    return name;
}

static bool backups_ready(struct api_request *req, struct api_response *res)
{
    if (req->deps->sched && req->deps->jobs && req->deps->history)
        return true;
    api_reply_error(res, 503, "backups are not available");
    return false;
}

static void api_backup_trigger(struct api_request *req, struct api_response *res)
{
    int64_t delay;
    if (!backups_ready(req, res) || !api_query_i64(req, res, "delay", &delay))
        return;
    const char *name = routine_param(req, res);
    if (!name)
        return;
    struct err e = {0};
    if (sched_trigger(req->deps->sched, name, (enum sched_backup_type)req->route->arg, delay < 0 ? 0 : delay, &e)) {
        api_reply_err(res, &e);
        return;
    }
    api_reply_empty(res, 202);
}

static void api_backup_cancel(struct api_request *req, struct api_response *res)
{
    if (!backups_ready(req, res))
        return;
    const char *name = routine_param(req, res);
    if (!name)
        return;
    jobs_cancel_routine(req->deps->jobs, name);
    api_reply_empty(res, 202);
}

static void api_backup_current(struct api_request *req, struct api_response *res)
{
    if (!backups_ready(req, res))
        return;
    const char *name = routine_param(req, res);
    if (name)
        api_reply_json(res, 200, jobs_routine_state(req->deps->jobs, name));
}

static void api_backup_list(struct api_request *req, struct api_response *res)
{
    int64_t from, to;
    if (!backups_ready(req, res) || !api_query_i64(req, res, "from", &from) || !api_query_i64(req, res, "to", &to))
        return;
    if (from >= 0 && to >= 0 && from > to) {
        api_reply_error(res, 400, "invalid query params: from is after to");
        return;
    }
    const char *name = NULL;
    if (api_param(req, "name") && !(name = routine_param(req, res)))
        return;
    struct cfg *c = cfg_store_snapshot(req->deps->store);
    char *text = NULL;
    size_t len = 0;
    struct err e = {0};
    int rc = history_list_text(req->deps->history, c, name, req->route->arg, from, to, &text, &len, &e);
    cfg_release(c);
    if (rc) {
        api_reply_err(res, &e);
        return;
    }
    api_reply_owned(res, 200, API_CT_JSON, text, len); /* text: 10,000 entries in ~1 ms */
}

static const struct api_route backup_routes[] = {
    {"GET", API_MOUNT_V1, "backups/full", 0, api_backup_list, ARG_FULL},
    {"GET", API_MOUNT_V1, "backups/full/{name}", 0, api_backup_list, ARG_FULL},
    {"GET", API_MOUNT_V1, "backups/incremental", 0, api_backup_list, ARG_INCREMENTAL},
    {"GET", API_MOUNT_V1, "backups/incremental/{name}", 0, api_backup_list, ARG_INCREMENTAL},
    {"POST", API_MOUNT_V1, "backups/full/{name}", 0, api_backup_trigger, ARG_FULL},
    {"POST", API_MOUNT_V1, "backups/incremental/{name}", 0, api_backup_trigger, ARG_INCREMENTAL},
    {"POST", API_MOUNT_V1, "backups/schedule/{name}", 0, api_backup_trigger, ARG_FULL},
    {"POST", API_MOUNT_V1, "backups/cancel/{name}", 0, api_backup_cancel, 0},
    {"GET", API_MOUNT_V1, "backups/currentBackup/{name}", 0, api_backup_current, 0},
};

const struct api_route *api_backups_routes(size_t *n)
{
    *n = sizeof backup_routes / sizeof backup_routes[0];
    return backup_routes;
}
