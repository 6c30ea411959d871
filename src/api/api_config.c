/*
 * api_config.c - configuration endpoints under <context-path>v1/config (and the routine
 * enable/disable aliases under v1/routines). Each handler is a thin call into the config
 * store (config/config.h), which validates, persists and swaps; errors come back as
 * struct err and become statuses in api_status_from_err().
 *
 * Entity routes are one table row per (kind, method); the kind travels in api_route.arg.
 */
#include <stdbool.h>

#include "api/api_internal.h"
#include "config/config.h"

/* ---- whole configuration ------------------------------------------------------------ */

static void api_cfg_get(struct api_request *req, struct api_response *res)
{
    api_reply_json(res, 200, cfg_store_get_json(req->deps->store));
}

static void api_cfg_put(struct api_request *req, struct api_response *res)
{
    struct err e;
    if (!json_is_object(req->body)) {
        api_reply_error(res, 400, "invalid JSON payload: configuration must be an object");
        return;
    }
    if (cfg_store_replace_json(req->deps->store, req->body, &e) != 0) {
        api_reply_err(res, &e);
        return;
    }
    api_reply_empty(res, 200);
}

static void api_cfg_apply(struct api_request *req, struct api_response *res)
{
    struct err e;
    if (cfg_store_apply(req->deps->store, &e) != 0) {
        api_reply_err(res, &e);
        return;
    }
    api_reply_empty(res, 200);
}

/* ---- named entities ----------------------------------------------------------------- */

/* The {name} parameter, validated; NULL after replying 400. */
static const char *api_cfg_name(struct api_request *req, struct api_response *res,
                                enum cfg_kind kind)
{
    struct err e;
    const char *name = api_param(req, "name");
    if (api_check_name(name, cfg_kind_noun(kind), &e) != 0) {
        api_reply_err(res, &e);
        return NULL;
    }
    return name;
}

static bool api_cfg_object_body(struct api_request *req, struct api_response *res,
                                enum cfg_kind kind)
{
    if (json_is_object(req->body))
        return true;
    api_reply_error(res, 400, "invalid JSON payload: %s must be an object", cfg_kind_noun(kind));
    return false;
}

static void api_cfg_list(struct api_request *req, struct api_response *res)
{
    api_reply_json(res, 200, cfg_store_list(req->deps->store, (enum cfg_kind)req->route->arg));
}

static void api_cfg_read(struct api_request *req, struct api_response *res)
{
    enum cfg_kind kind = (enum cfg_kind)req->route->arg;
    const char *name = api_cfg_name(req, res, kind);
    struct err e;
    if (!name)
        return;
    err_clear(&e);
    json_t *j = cfg_store_get_entity(req->deps->store, kind, name, &e);
    if (!j) {
        if (e.code == ERR_OK)
            err_set(&e, ERR_NOT_FOUND, "%s %s not found", cfg_kind_noun(kind), name);
        api_reply_err(res, &e);
        return;
    }
    api_reply_json(res, 200, j);
}

static void api_cfg_create(struct api_request *req, struct api_response *res)
{
    enum cfg_kind kind = (enum cfg_kind)req->route->arg;
    const char *name = api_cfg_name(req, res, kind);
    struct err e;
    if (!name || !api_cfg_object_body(req, res, kind))
        return;
    if (cfg_store_create(req->deps->store, kind, name, req->body, &e) != 0) {
        api_reply_err(res, &e);
        return;
    }
    api_reply_empty(res, 201);
}

static void api_cfg_update(struct api_request *req, struct api_response *res)
{
    enum cfg_kind kind = (enum cfg_kind)req->route->arg;
    const char *name = api_cfg_name(req, res, kind);
    struct err e;
    if (!name || !api_cfg_object_body(req, res, kind))
        return;
    if (cfg_store_update(req->deps->store, kind, name, req->body, &e) != 0) {
        api_reply_err(res, &e);
        return;
    }
    api_reply_empty(res, 200);
}

static void api_cfg_delete(struct api_request *req, struct api_response *res)
{
    enum cfg_kind kind = (enum cfg_kind)req->route->arg;
    const char *name = api_cfg_name(req, res, kind);
    struct err e;
    if (!name)
        return;
    if (cfg_store_delete(req->deps->store, kind, name, &e) != 0) {
        api_reply_err(res, &e);
        return;
    }
    api_reply_empty(res, 204);
}

/* arg: 1 = disable, 0 = enable. */
static void api_cfg_routine_toggle(struct api_request *req, struct api_response *res)
{
    const char *name = api_cfg_name(req, res, CFG_KIND_ROUTINE);
    struct err e;
    if (!name)
        return;
    if (cfg_store_set_routine_disabled(req->deps->store, name, req->route->arg != 0, &e) != 0) {
        api_reply_err(res, &e);
        return;
    }
    api_reply_empty(res, 204);
}

/* ---- route table -------------------------------------------------------------------- */

#define API_JSON API_ROUTE_JSON_BODY
#define API_TS ROUTER_TRAILING_SLASH

#define API_CFG_KIND_ROUTES(seg, kind)                                                         \
    {"GET", API_MOUNT_V1, "config/" seg, 0, api_cfg_list, kind},                               \
    {"GET", API_MOUNT_V1, "config/" seg "/{name}", 0, api_cfg_read, kind},                     \
    {"POST", API_MOUNT_V1, "config/" seg "/{name}", API_JSON, api_cfg_create, kind},           \
    {"PUT", API_MOUNT_V1, "config/" seg "/{name}", API_JSON, api_cfg_update, kind},            \
    {"DELETE", API_MOUNT_V1, "config/" seg "/{name}", 0, api_cfg_delete, kind}

static const struct api_route api_config_table[] = {
    {"GET", API_MOUNT_V1, "config", 0, api_cfg_get, 0},
    {"PUT", API_MOUNT_V1, "config", API_JSON, api_cfg_put, 0},
    {"POST", API_MOUNT_V1, "config/apply", 0, api_cfg_apply, 0},
    API_CFG_KIND_ROUTES("clusters", CFG_KIND_CLUSTER),
    API_CFG_KIND_ROUTES("storage", CFG_KIND_STORAGE),
    API_CFG_KIND_ROUTES("policies", CFG_KIND_POLICY),
    API_CFG_KIND_ROUTES("routines", CFG_KIND_ROUTINE),
    API_CFG_KIND_ROUTES("secret-agents", CFG_KIND_SECRET_AGENT),
    {"PUT", API_MOUNT_V1, "config/routines/{name}/enable", API_TS, api_cfg_routine_toggle, 0},
    {"PUT", API_MOUNT_V1, "config/routines/{name}/disable", API_TS, api_cfg_routine_toggle, 1},
    {"POST", API_MOUNT_V1, "routines/{name}/enable", API_TS, api_cfg_routine_toggle, 0},
    {"POST", API_MOUNT_V1, "routines/{name}/disable", API_TS, api_cfg_routine_toggle, 1},
};

const struct api_route *api_config_routes(size_t *n)
{
    *n = sizeof api_config_table / sizeof api_config_table[0];
    return api_config_table;
}
