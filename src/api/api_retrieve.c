/*
 * api_retrieve.c - GET /v1/retrieve/configuration/{name}/{timestamp}: the `configuration/`
 * files of one full backup of a routine (policy with-cluster-configuration), as a zip archive
 * named archive.zip (abs-reference §1.2).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "config/config.h"
#include "jobs/backup_meta.h"
#include "jobs/stor_link.h"
#include "storage/storage.h"
#include "util/strutil.h"
#include "util/zip.h"

#define CONF_MAX_BYTES (4u * 1024u * 1024u)

struct find_folder {
    int64_t timestamp;
    char folder[512]; /* "<routine>/backup/<TS-folder>/" */
};

/* Listing callback over "<routine>/backup/<TS-folder>/" entries: stops at the wanted one. */
static int match_folder(void *ctx, const struct stor_entry *ent, struct err *e)
{
    (void)e;
    struct find_folder *f = ctx;
    size_t len = strlen(ent->key);
    if (!ent->is_prefix || len < 2)
        return 0;
    const char *start = ent->key + len - 1; /* the trailing '/' */
    while (start > ent->key && start[-1] != '/')
        start--;
    char folder[256];
    str_printf(folder, sizeof folder, "%.*s", (int)(ent->key + len - 1 - start), start);
    int64_t ts;
    if (meta_folder_timestamp(folder, &ts) == 0 && ts == f->timestamp) {
        str_printf(f->folder, sizeof f->folder, "%s", ent->key);
        return 1;
    }
    return 0;
}

struct zip_ctx {
    struct stor *stor;
    struct zip *zip;
};

static int add_file(void *ctx, const struct stor_entry *ent, struct err *e)
{
    struct zip_ctx *z = ctx;
    if (ent->is_prefix)
        return 0;
    char *data = NULL;
    size_t len = 0;
    if (stor_get(z->stor, ent->key, CONF_MAX_BYTES, &data, &len, e))
        return e->code;
    const char *base = strrchr(ent->key, '/') ? strrchr(ent->key, '/') + 1 : ent->key;
    int rc = zip_add(z->zip, base, data, len, e);
    free(data);
    return rc;
}

static int build_archive(struct stor *s, const char *routine, int64_t ts, uint8_t **buf, size_t *len, struct err *e)
{
    struct find_folder f = {.timestamp = ts};
    char prefix[300];
    str_printf(prefix, sizeof prefix, "%s/backup/", routine);
    struct stor_list_opts lo = {.prefix = prefix, .delimiter = true};
    if (stor_list(s, &lo, match_folder, &f, e) < 0)
        return e->code;
    if (!f.folder[0])
        return err_set(e, ERR_NOT_FOUND, "full backup %lld of routine %s not found", (long long)ts, routine);
    char conf_prefix[600];
    str_printf(conf_prefix, sizeof conf_prefix, "%sconfiguration/", f.folder);
    struct zip_ctx z = {.stor = s, .zip = zip_new()};
    if (!z.zip)
        return err_set(e, ERR_NOMEM, "out of memory");
    struct stor_list_opts co = {.prefix = conf_prefix};
    int rc = stor_list(s, &co, add_file, &z, e) < 0 ? e->code : 0;
    if (rc == 0)
        rc = zip_finish(z.zip, buf, len, e);
    zip_free(z.zip);
    return rc;
}

static void api_retrieve_configuration(struct api_request *req, struct api_response *res)
{
    struct err e = {0};
    const char *name = api_param(req, "name");
    const char *ts_text = api_param(req, "timestamp");
    if (api_check_name(name, "routine", &e) != 0) {
        api_reply_err(res, &e);
        return;
    }
    char *end;
    errno = 0;
    long long ts = ts_text ? strtoll(ts_text, &end, 10) : -1;
    if (!ts_text || !*ts_text || *end || errno || ts <= 0) {
        api_reply_error(res, 400, "invalid path param timestamp: must be epoch milliseconds");
        return;
    }
    struct cfg *c = cfg_store_snapshot(req->deps->store);
    const struct cfg_routine *rt = cfg_map_get(&c->routines, name);
    struct stor *s = NULL;
    uint8_t *zip = NULL;
    size_t len = 0;
    struct secret_scope scope = {.agents = &c->secret_agents};
    int rc = rt ? job_stor_open(rt->storage, cfg_map_get(&c->storage, rt->storage), &scope, &s, &e)
                : err_set(&e, ERR_NOT_FOUND, "routine %s not found", name);
    if (rc == 0)
        rc = build_archive(s, name, ts, &zip, &len, &e);
    stor_close(s);
    cfg_release(c);
    if (rc) {
        api_reply_err(res, &e);
        return;
    }
    api_reply_owned(res, 200, "application/zip", (char *)zip, len);
    res->disposition = "attachment; filename=archive.zip";
}

static const struct api_route retrieve_routes[] = {
    {"GET", API_MOUNT_V1, "retrieve/configuration/{name}/{timestamp}", 0, api_retrieve_configuration, 0},
};

const struct api_route *api_retrieve_routes(size_t *n)
{
    *n = sizeof retrieve_routes / sizeof retrieve_routes[0];
    return retrieve_routes;
}
