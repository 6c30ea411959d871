/*
 * stor_link.c - configuration -> open storage, secrets resolved (see stor_link.h). The
 * resolved copy lives only for the stor_open call: backends copy what they keep.
 */
#include "jobs/stor_link.h"

int job_stor_open(const char *name, const struct cfg_storage *sc, const struct secret_scope *scope,
                  struct stor **out, struct err *e)
{
    *out = NULL;
    if (!sc || sc->local) /* nothing secret in a local storage */
        return stor_open(sc, out, e);
    struct cfg_storage *resolved = NULL;
    if (secret_storage_resolve(sc, scope, name ? name : "source", &resolved, e))
        return e->code;
    int rc = stor_open(resolved, out, e);
    secret_storage_free(resolved);
    return rc;
}
