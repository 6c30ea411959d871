/*
 * config.h - the configuration store: the one place that owns the service configuration.
 *
 * The store holds the current validated configuration as an immutable, reference-counted
 * snapshot (struct cfg, see cfg_model.h). Every change (API write, apply, SIGHUP) builds a
 * complete new candidate, validates it with the same decoder used for files, persists it
 * atomically (temp file + fsync + rename, keeping the file mode) and only then swaps it in.
 * A failed validation or save changes neither memory nor file.
 *
 * The JSON functions below speak the ABS REST shapes (dto.Config, map name -> entity).
 * Secrets are redacted to "[secret]" on every JSON/YAML output meant for clients, unless
 * they are `secrets:` references; "[secret]" in an incoming update means "keep stored".
 *
 * Thread safety: all functions may be called concurrently; writers are serialised.
 */
#ifndef ABS_CONFIG_H
#define ABS_CONFIG_H

#include <jansson.h>
#include <stdbool.h>

#include "config/cfg_model.h"
#include "util/err.h"

/* The five named-entity collections of the REST API. */
enum cfg_kind {
    CFG_KIND_CLUSTER = 0,  /* aerospike-clusters  /v1/config/clusters */
    CFG_KIND_STORAGE,      /* storage             /v1/config/storage */
    CFG_KIND_POLICY,       /* backup-policies     /v1/config/policies */
    CFG_KIND_ROUTINE,      /* backup-routines     /v1/config/routines */
    CFG_KIND_SECRET_AGENT, /* secret-agents       /v1/config/secret-agents */
    CFG_KIND_COUNT
};

/* Top-level YAML/JSON key of a kind ("aerospike-clusters", ...). */
const char *cfg_kind_key(enum cfg_kind kind);
/* Human singular name of a kind ("cluster", "storage", "policy", "routine", "secret agent"). */
const char *cfg_kind_noun(enum cfg_kind kind);

/* ---- whole-configuration conversions (no store involved) ---- */

/* Parses and fully validates a YAML document (`origin` names it in messages). */
int cfg_from_yaml(const char *text, size_t len, const char *origin, struct cfg **out, struct err *e);
/* Decodes and fully validates a JSON tree (strict types). */
int cfg_from_json(const json_t *root, struct cfg **out, struct err *e);
/* Encodes a configuration; `redact` replaces literal secrets by "[secret]". */
json_t *cfg_to_json(const struct cfg *c, bool redact);
/* Emits the unredacted YAML document used for saving (heap string). */
int cfg_to_yaml(const struct cfg *c, char **out, struct err *e);

/* ---- the store ---- */
struct cfg_store;

/*
 * Opens the store. `path` is the -c argument: a YAML file path, or an http(s) URL (read-only
 * source). With `remote`, `path` names a small YAML file holding a dto.Storage
 * (`local-storage: {path: ...}`) whose path is the real configuration file.
 */
int cfg_store_open(const char *path, bool remote, struct cfg_store **out, struct err *e);
void cfg_store_free(struct cfg_store *store);

/* Human description of where the config comes from (for logs). */
const char *cfg_store_source(const struct cfg_store *store);

/* Current snapshot; caller must cfg_release() it. Never NULL after a successful open. */
struct cfg *cfg_store_snapshot(struct cfg_store *store);

/* Change listener (the scheduler registers one); called after each successful swap. */
typedef void (*cfg_change_fn)(void *ctx, struct cfg *new_snapshot);
void cfg_store_set_listener(struct cfg_store *store, cfg_change_fn fn, void *ctx);

/* Re-reads the source (POST /v1/config/apply, SIGHUP). */
int cfg_store_apply(struct cfg_store *store, struct err *e);

/* GET /v1/config: the whole configuration (new reference; caller json_decref). */
json_t *cfg_store_get_json(struct cfg_store *store);
/* PUT /v1/config: replaces everything except static service fields. */
int cfg_store_replace_json(struct cfg_store *store, json_t *body, struct err *e);

/* GET /v1/config/<kind>: object name -> entity (redacted). */
json_t *cfg_store_list(struct cfg_store *store, enum cfg_kind kind);
/* GET /v1/config/<kind>/{name}: ERR_NOT_FOUND if absent. */
json_t *cfg_store_get_entity(struct cfg_store *store, enum cfg_kind kind, const char *name,
                             struct err *e);
/* POST: ERR_CONFLICT if the name exists, ERR_INVALID if the entity or result is invalid. */
int cfg_store_create(struct cfg_store *store, enum cfg_kind kind, const char *name, json_t *body,
                     struct err *e);
/* PUT: ERR_NOT_FOUND if absent. */
int cfg_store_update(struct cfg_store *store, enum cfg_kind kind, const char *name, json_t *body,
                     struct err *e);
/* DELETE: ERR_NOT_FOUND if absent, ERR_IN_USE while referenced. */
int cfg_store_delete(struct cfg_store *store, enum cfg_kind kind, const char *name, struct err *e);
/* Routine enable/disable: sets and persists `disabled`. */
int cfg_store_set_routine_disabled(struct cfg_store *store, const char *name, bool disabled,
                                   struct err *e);

#endif
