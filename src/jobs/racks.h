/*
 * racks.h - resolves a routine's `rack-list` into the names of the nodes serving those racks for
 * one namespace (info `racks:`), so the backup runs as a node-list backup of those nodes.
 */
#ifndef ABS_JOBS_RACKS_H
#define ABS_JOBS_RACKS_H

#include <stddef.h>

#include "aerospike/as_cluster.h"
#include "config/cfg_model.h"
#include "util/err.h"

#define RACKS_MAX 1024

/* Node names (unique, in reply order) of the listed racks of `ns` in a `racks:` reply value.
 * ERR_INVALID naming the rack when one of them has no node. `out` is set up here; free it with
 * racks_nodes_free (done already on failure). */
int racks_parse_nodes(const char *v, size_t len, const char *ns, const cfg_intlist *racks,
                      cfg_strlist *out, struct err *e);

/* Asks one node of the cluster for `racks:` and parses it as above. */
int racks_nodes(struct as_cluster *c, const char *ns, const cfg_intlist *racks, cfg_strlist *out,
                struct err *e);

void racks_nodes_free(cfg_strlist *l);

#endif
