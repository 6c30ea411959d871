/*
 * cfg_model.c - snapshot lifetime (reference counting), map lookup and the effective values
 * of service settings with the built-in defaults of abs-reference §2.8.
 */
#include "config/cfg_model.h"

#include <string.h>

#include "config/cfg_schema.h"

struct cfg *cfg_retain(struct cfg *c)
{
    if (c)
        __atomic_add_fetch(&c->refcount, 1, __ATOMIC_RELAXED);
    return c;
}

void cfg_release(struct cfg *c)
{
    if (c && __atomic_sub_fetch(&c->refcount, 1, __ATOMIC_ACQ_REL) == 0)
        cfg_free_obj(&cfg_type_config, c);
}

void *cfg_map_get(const cfg_map *m, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0)
            return m->items[i];
    return NULL;
}

static const cfg_strlist empty_list = {0};

void cfg_eff_http(const struct cfg *c, struct cfg_http_eff *out)
{
    const struct cfg_http *h = c && c->service ? c->service->http : NULL;
    const struct cfg_rate *r = h ? h->rate : NULL;
    out->address = h && h->address ? h->address : "0.0.0.0";
    out->port = h && h->port.set ? (int)h->port.v : 8080;
    out->context_path = h && h->context_path ? h->context_path : "/";
    out->timeout_ms = h && h->timeout.set ? h->timeout.v : 5000;
    out->rate_tps = r && r->tps.set ? r->tps.v : 1024;
    out->rate_size = r && r->size.set ? r->size.v : 1024;
    out->white_list = r ? &r->white_list : &empty_list;
}

void cfg_eff_logger(const struct cfg *c, struct cfg_logger_eff *out)
{
    const struct cfg_logger *l = c && c->service ? c->service->logger : NULL;
    const struct cfg_file_writer *f = l ? l->file_writer : NULL;
    out->level = l && l->level ? l->level : "INFO";
    out->format = l && l->format ? l->format : "PLAIN";
    out->stdout_writer = l && l->stdout_writer.set ? l->stdout_writer.v : true;
    out->file = f ? f->filename : NULL;
    out->max_size_mb = f && f->maxsize.set ? f->maxsize.v : 0;
    out->max_age_days = f && f->maxage.set ? f->maxage.v : 0;
    out->max_backups = f && f->maxbackups.set ? f->maxbackups.v : 0;
    out->compress = f && f->compress.set ? f->compress.v : false;
}
