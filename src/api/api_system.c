/*
 * api_system.c - system endpoints, mounted at the context path: root, health, readiness,
 * version, Prometheus metrics and the API documentation (HTML page + OpenAPI spec, both
 * embedded in the binary; the JSON form of the spec is converted from the YAML on demand).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "api/embedded_docs.h"
#include "config/cfg_yaml.h"
#include "jobs/jobs.h"
#include "jobs/restores.h"
#include "metrics/metrics.h"
#include "version.h"

static void api_sys_root(struct api_request *req, struct api_response *res)
{
    api_reply_empty(res, 200);
}

static void api_sys_ok(struct api_request *req, struct api_response *res)
{
    api_reply_static(res, 200, API_CT_TEXT, "Ok", 2);
}

static void api_sys_version(struct api_request *req, struct api_response *res)
{
    api_reply_json(res, 200,
                   json_pack("{s:s, s:s, s:s}", "version", ABS_VERSION, "commit", ABS_COMMIT,
                             "build-time", ABS_BUILD_TIME));
}

static void api_sys_metrics(struct api_request *req, struct api_response *res)
{
    char *text = NULL;
    size_t len = 0;
    struct err e;
    if (!req->deps->metrics) {
        api_reply_static(res, 200, METRICS_CONTENT_TYPE, "", 0);
        return;
    }
    if (req->deps->jobs)
        jobs_export_metrics(req->deps->jobs);
    if (req->deps->restores)
        restores_export_metrics(req->deps->restores, req->deps->metrics);
    if (metrics_render(req->deps->metrics, &text, &len, &e) != 0) {
        api_reply_err(res, &e);
        return;
    }
    api_reply_owned(res, 200, METRICS_CONTENT_TYPE, text, len);
}

/* "<path>" → "<path>/" (as Go's ServeMux does for a subtree root). */
static void api_sys_docs_redirect(struct api_request *req, struct api_response *res)
{
    char *loc = NULL;
    if (asprintf(&loc, "%s/", req->path) < 0) {
        api_reply_error(res, 500, "out of memory");
        return;
    }
    api_reply_empty(res, 301);
    res->location = loc;
}

static void api_sys_docs_page(struct api_request *req, struct api_response *res)
{
    api_reply_static(res, 200, API_CT_HTML, abs_api_docs_html, abs_api_docs_html_len);
}

static void api_sys_openapi_yaml(struct api_request *req, struct api_response *res)
{
    api_reply_static(res, 200, API_CT_YAML, abs_openapi_yaml, abs_openapi_yaml_len);
}

static void api_sys_openapi_json(struct api_request *req, struct api_response *res)
{
    json_t *spec = NULL;
    struct err e;
    if (cfg_yaml_to_json((const char *)abs_openapi_yaml, abs_openapi_yaml_len, "openapi.yaml",
                         &spec, &e) != 0) {
        api_reply_error(res, 500, "cannot convert the OpenAPI document: %s", e.msg);
        return;
    }
    api_reply_json(res, 200, spec);
}

static const struct api_route api_system_table[] = {
    {"GET", API_MOUNT_SYSTEM, "", 0, api_sys_root, 0},
    {"GET", API_MOUNT_SYSTEM, "health", 0, api_sys_ok, 0},
    {"GET", API_MOUNT_SYSTEM, "ready", 0, api_sys_ok, 0},
    {"GET", API_MOUNT_SYSTEM, "version", 0, api_sys_version, 0},
    {"GET", API_MOUNT_SYSTEM, "metrics", 0, api_sys_metrics, 0},
    {"GET", API_MOUNT_SYSTEM, "api-docs", 0, api_sys_docs_redirect, 0},
    {"GET", API_MOUNT_SYSTEM, "api-docs/", 0, api_sys_docs_page, 0},
    {"GET", API_MOUNT_SYSTEM, "api-docs/index.html", 0, api_sys_docs_page, 0},
    {"GET", API_MOUNT_SYSTEM, "api-docs/openapi.yaml", 0, api_sys_openapi_yaml, 0},
    {"GET", API_MOUNT_SYSTEM, "api-docs/openapi.json", 0, api_sys_openapi_json, 0},
};

const struct api_route *api_system_routes(size_t *n)
{
    *n = sizeof api_system_table / sizeof api_system_table[0];
    return api_system_table;
}
