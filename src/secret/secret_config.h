/*
 * secret_config.h - where ABS resolves `secrets:` references in the configuration: which agent
 * answers for an entity (its inline `secret-agent`, else its `secret-agent-name` among the
 * configuration's secret-agents, else a fallback such as a restore request's agent), and
 * resolved copies of the entities whose secret fields may be references.
 */
#ifndef ABS_SECRET_SECRET_CONFIG_H
#define ABS_SECRET_SECRET_CONFIG_H

#include "config/cfg_model.h"
#include "util/err.h"

/* What a resolution may use; every member may be NULL. */
struct secret_scope {
    const cfg_map *agents;                   /* the configuration's secret-agents */
    const struct cfg_secret_agent *fallback; /* when the entity names no agent of its own */
};

/* The agent for an entity with an inline agent `inl` and an agent name `name` (either NULL). A
 * name that is not configured: ERR_INVALID naming `what`. *out may end NULL (no agent). */
int secret_agent_pick(const struct secret_scope *s, const struct cfg_secret_agent *inl, const char *name,
                      const char *what, const struct cfg_secret_agent **out, struct err *e);

/*
 * A deep copy of `in` whose credential fields (S3 access-key-id / secret-access-key, Azure
 * account-key / tenant-id / client-id / client-secret, GCP key) hold values: references are
 * fetched through the storage's agent. `name` names the storage in messages. Free the copy
 * with secret_storage_free (wipes the resolved values).
 */
int secret_storage_resolve(const struct cfg_storage *in, const struct secret_scope *s, const char *name,
                           struct cfg_storage **out, struct err *e);
void secret_storage_free(struct cfg_storage *st);

/* The cluster password: `password` (literal or a reference resolved through the credentials'
 * agent) or the content of `password-path` (trailing newlines trimmed); *out NULL when there
 * is neither. `cluster` names the cluster in messages. Release with secret_free. */
int secret_cluster_password(const struct cfg_credentials *cr, const struct secret_scope *s, const char *cluster,
                            char **out, struct err *e);

#endif
