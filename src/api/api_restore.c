/*
 * api_restore.c - restore routes (abs-reference §1.2 "Restore"): start a restore of one
 * backup, of an incremental, or to a point in time (202 with the bare job id), job status,
 * the job listing and cancel.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "jobs/restores.h"

static bool restores_ready(struct api_request *req, struct api_response *res)
{
    if (req->deps->restores)
        return true;
    api_reply_error(res, 503, "restores are not available");
    return false;
}

static void api_restore_start(struct api_request *req, struct api_response *res)
{
    if (!restores_ready(req, res))
        return;
    int64_t id = 0;
    struct err e = {0};
    if (restores_start(req->deps->restores, (enum restore_request_kind)req->route->arg, req->body, &id, &e)) {
        api_reply_error(res, api_status_from_err(e.code), "invalid request: %s", e.msg);
        return;
    }
    char *body = NULL;
    int len = asprintf(&body, "%lld", (long long)id);
    if (len < 0) {
        api_reply_error(res, 500, "out of memory");
        return;
    }
    api_reply_owned(res, 202, API_CT_JSON, body, (size_t)len);
}

/* {jobId} as a positive int64; false after replying 400. */
static bool job_id_param(struct api_request *req, struct api_response *res, int64_t *id)
{
    const char *v = api_param(req, "jobId");
    char *end;
    errno = 0;
    long long n = v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || n <= 0) {
        api_reply_error(res, 400, "invalid path param jobId: must be a positive integer");
        return false;
    }
    *id = n;
    return true;
}

static void api_restore_status(struct api_request *req, struct api_response *res)
{
    int64_t id;
    if (!restores_ready(req, res) || !job_id_param(req, res, &id))
        return;
    struct err e = {0};
    json_t *status = restores_status(req->deps->restores, id, &e);
    if (!status)
        api_reply_err(res, &e);
    else
        api_reply_json(res, 200, status);
}

static void api_restore_cancel(struct api_request *req, struct api_response *res)
{
    int64_t id;
    if (!restores_ready(req, res) || !job_id_param(req, res, &id))
        return;
    struct err e = {0};
    if (restores_cancel(req->deps->restores, id, &e))
        api_reply_err(res, &e);
    else
        api_reply_empty(res, 202);
}

static void api_restore_jobs(struct api_request *req, struct api_response *res)
{
    int64_t from, to;
    if (!restores_ready(req, res) || !api_query_i64(req, res, "from", &from) || !api_query_i64(req, res, "to", &to))
        return;
    if (from >= 0 && to >= 0 && from > to) {
        api_reply_error(res, 400, "invalid query params: from is after to");
        return;
    }
    struct err e = {0};
    json_t *list = restores_list(req->deps->restores, from, to, api_query(req, "status"), &e);
    if (!list)
        api_reply_err(res, &e);
    else
        api_reply_json(res, 200, list);
}

static const struct api_route restore_routes[] = {
    {"POST", API_MOUNT_V1, "restore/full", API_ROUTE_JSON_BODY, api_restore_start, RESTORE_FULL},
    {"POST", API_MOUNT_V1, "restore/incremental", API_ROUTE_JSON_BODY, api_restore_start, RESTORE_INCREMENTAL},
    {"POST", API_MOUNT_V1, "restore/timestamp", API_ROUTE_JSON_BODY, api_restore_start, RESTORE_TIMESTAMP},
    {"GET", API_MOUNT_V1, "restore/status/{jobId}", 0, api_restore_status, 0},
    {"GET", API_MOUNT_V1, "restore/jobs", 0, api_restore_jobs, 0},
    {"POST", API_MOUNT_V1, "restore/cancel/{jobId}", 0, api_restore_cancel, 0},
};

const struct api_route *api_restore_routes(size_t *n)
{
    *n = sizeof restore_routes / sizeof restore_routes[0];
    return restore_routes;
}
