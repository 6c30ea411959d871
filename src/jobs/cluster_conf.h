/*
 * cluster_conf.h - the cluster configuration snapshot of `with-cluster-configuration`:
 * turns one node's `get-config` replies into aerospike.conf text (server stanza syntax),
 * written by full backups as configuration/aerospike_<i>.conf.
 *
 * Rendering rules (cluster_conf_render, a pure function):
 *   - order: service { }, logging { } (when given), network { }, namespace <name> { } ...;
 *     a blank line between top-level stanzas, 4-space indentation;
 *   - dotted keys nest: network "heartbeat.mode=mesh" -> heartbeat { mode mesh };
 *     a key that has a value and sub-keys opens a named stanza: "storage-engine=memory" +
 *     "storage-engine.data-size=1073741824" -> storage-engine memory { data-size 1073741824 };
 *   - indexed keys "name[i]=v" become one "name v" line each (file, device, mesh seeds, ...);
 *     "mesh-seed-address-port=host:port" is written "host port"; comma lists of *address
 *     keys become one line per address;
 *   - dropped: "null" and empty values (unset), port keys (*port) of 0 (disabled), and
 *     storage-engine.stripe[i] (informational names of memory stripes, not settings);
 *   - keys and values keep the server's order and spelling; a key or value holding
 *     whitespace, braces, '#' or control characters is refused (ERR_INVALID).
 * Logging sinks ("stderr" -> console, otherwise a file path) get "context any <level>" for
 * the most common level and one "context <ctx> <level>" line per exception (levels in lower
 * case); their level values are "ctx:LEVEL;..." (or "ctx=LEVEL;...").
 */
#ifndef ABS_JOBS_CLUSTER_CONF_H
#define ABS_JOBS_CLUSTER_CONF_H

#include <stddef.h>

#include "util/err.h"

struct as_node;

struct cluster_conf_log_sink {
    const char *name;   /* "stderr" or a file path, as the `logs` command lists it */
    const char *levels; /* get-config:context=logging;id=<sink id> value */
};

struct cluster_conf_ns {
    const char *name;
    const char *config; /* get-config:context=namespace;id=<name> value */
};

struct cluster_conf_input {
    const char *service; /* get-config:context=service value (NULL = omit the stanza) */
    const char *network; /* get-config:context=network value (NULL = omit) */
    const struct cluster_conf_log_sink *logging; /* n_logging sinks (0 = no logging stanza) */
    size_t n_logging;
    const struct cluster_conf_ns *namespaces;
    size_t n_namespaces;
};

/* Renders aerospike.conf text into *out (malloc'ed, NUL-terminated; caller frees). */
int cluster_conf_render(const struct cluster_conf_input *in, char **out, struct err *e);

/* Reads service, network, logging (`logs` + get-config:context=logging;id=<i>; skipped when
 * the node refuses it) and every namespace's configuration from one node, then renders. */
int cluster_conf_fetch(struct as_node *node, char **out, struct err *e);

#endif
