/*
 * cfg_validate.h - configuration rules beyond single fields: mutual exclusions inside one
 * struct (the `check` hooks of the schema tables), references between entities, and the small
 * grammars of the configuration (partition-list, node-list, cron syntax).
 */
#ifndef ABS_CONFIG_VALIDATE_H
#define ABS_CONFIG_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/cfg_model.h"
#include "util/err.h"

#define CFG_PARTITIONS 4096

/* ---- schema check hooks (obj is the struct named by the function) ---- */
int cfg_check_rate(const void *obj, const char *path, struct err *e);
int cfg_check_http(const void *obj, const char *path, struct err *e);
int cfg_check_secret_agent(const void *obj, const char *path, struct err *e);
int cfg_check_credentials(const void *obj, const char *path, struct err *e);
int cfg_check_tls(const void *obj, const char *path, struct err *e);
int cfg_check_s3(const void *obj, const char *path, struct err *e);
int cfg_check_azure(const void *obj, const char *path, struct err *e);
int cfg_check_gcp(const void *obj, const char *path, struct err *e);
int cfg_check_storage(const void *obj, const char *path, struct err *e);
int cfg_check_retention(const void *obj, const char *path, struct err *e);
int cfg_check_encryption(const void *obj, const char *path, struct err *e);
int cfg_check_routine(const void *obj, const char *path, struct err *e);

/* Rules between entities: references resolve, exclusions with cluster settings, cloud part count. */
int cfg_validate_refs(const struct cfg *c, struct err *e);

/* Names of the entities that reference `name` of the given section, or NULL when unused. */
const char *cfg_find_user(const struct cfg *c, const char *section_key, const char *name,
                          char *user_buf, size_t cap);

/* A partition range [begin, begin + count). */
struct cfg_partition_range {
    int begin;
    int count;
};
/*
 * Parses a partition-list: comma-separated items, each `id` (0..4095) or `start-count`
 * (count >= 1, start + count <= 4096); overlaps are errors. Fills at most `max` ranges.
 */
int cfg_parse_partition_list(const char *text, struct cfg_partition_range *out, size_t max,
                             size_t *n_out, struct err *e);

/* Node-list item: `host:port`, `host:tls-name:port`, `[v6]:port`, or a node id. */
int cfg_check_node_spec(const char *spec, struct err *e);

/* Cron check: the Quartz grammar ABS accepts (sched/cron.h), with the reason on failure. */
int cfg_check_cron(const char *expr, struct err *e);

#endif
