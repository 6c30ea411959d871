/*
 * cluster_link.h - connects to a configured Aerospike cluster: maps a `struct cfg_cluster`
 * (seed nodes, credentials with password or password-path, TLS, timeouts, alternate
 * services) onto the client's `struct as_cluster_config`.
 */
#ifndef ABS_JOBS_CLUSTER_LINK_H
#define ABS_JOBS_CLUSTER_LINK_H

#include "aerospike/as_cluster.h"
#include "config/cfg_model.h"
#include "secret/secret_config.h"
#include "util/err.h"

/* `name` is the cluster's configuration name (for messages); `scope` resolves a `secrets:`
 * password (NULL: literal passwords only). */
int job_cluster_connect(const char *name, const struct cfg_cluster *cc, const struct secret_scope *scope,
                        struct as_cluster **out, struct err *e);

#endif
