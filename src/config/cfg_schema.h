/*
 * cfg_schema.h - the field tables that describe every configuration struct, and the generic
 * machinery driven by them: decode (JSON tree -> struct, strict: unknown keys, wrong types,
 * ranges, enums, required fields), encode (struct -> JSON tree, with optional secret
 * redaction), free, and the "[secret]" placeholder merge used by API updates.
 *
 * Rules that span several fields of one struct live in the type's `check` hook
 * (cfg_validate.c); rules that span entities (references, in-use) live in cfg_validate.c too.
 */
#ifndef ABS_CONFIG_SCHEMA_H
#define ABS_CONFIG_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg_model.h"
#include "util/err.h"

#define CFG_SECRET_PLACEHOLDER "[secret]"

enum cfg_field_kind {
    CFK_STR,
    CFK_INT,
    CFK_BOOL,
    CFK_DOUBLE,
    CFK_STRLIST,
    CFK_INTLIST,
    CFK_OBJ,     /* pointer to a struct of `sub` */
    CFK_OBJLIST, /* cfg_objlist of `sub` */
    CFK_MAP,     /* cfg_map name -> `sub` */
};

enum cfg_field_flag {
    CFF_REQUIRED = 1u << 0,  /* must be present */
    CFF_SECRET = 1u << 1,    /* redacted on output unless a secrets: reference */
    CFF_NONEMPTY = 1u << 2,  /* string must not be empty; list must not be empty */
    CFF_UNIQUE = 1u << 3,    /* list items must be distinct and non-empty */
    CFF_RANGE = 1u << 4,     /* min/max apply (ints, list items, doubles) */
    CFF_ENUM_CI = 1u << 5,   /* enum match is case-insensitive */
};

struct cfg_type;

struct cfg_field {
    const char *key;
    enum cfg_field_kind kind;
    size_t offset;
    unsigned flags;
    int64_t min, max;
    const char *const *enums; /* NULL-terminated allowed values for CFK_STR */
    const struct cfg_type *sub;
};

struct cfg_type {
    const char *name;
    size_t size;
    const struct cfg_field *fields;
    size_t n_fields;
    /* Cross-field rules of one struct; `path` names the struct in messages. */
    int (*check)(const void *obj, const char *path, struct err *e);
};

/* Decoding context: YAML input lets plain numbers stand for strings (as Go's yaml does). */
struct cfg_decode_ctx {
    bool lenient_strings;
};

extern const struct cfg_type cfg_type_config;
extern const struct cfg_type cfg_type_cluster;
extern const struct cfg_type cfg_type_storage;
extern const struct cfg_type cfg_type_policy;
extern const struct cfg_type cfg_type_routine;
extern const struct cfg_type cfg_type_secret_agent;
extern const struct cfg_type cfg_type_service;

/* Decodes `json` (an object) into a freshly allocated struct of type `t`. */
int cfg_decode(const struct cfg_type *t, const json_t *json, const char *path,
               const struct cfg_decode_ctx *ctx, void **out, struct err *e);
/* Encodes a struct of type `t`; `redact` replaces literal secrets with "[secret]". */
json_t *cfg_encode(const struct cfg_type *t, const void *obj, bool redact);
/* Frees a struct of type `t` and everything it owns (NULL is fine). */
void cfg_free_obj(const struct cfg_type *t, void *obj);

/*
 * Replaces every "[secret]" placeholder in `incoming` (an unredacted JSON of type `t`) by the
 * value at the same place in `stored` (may be NULL). A placeholder with nothing stored is an
 * error naming the field.
 */
int cfg_merge_secrets(const struct cfg_type *t, json_t *incoming, const json_t *stored,
                      const char *path, struct err *e);

/* True for a `secrets:<resource>:<key>` reference. */
bool cfg_is_secret_ref(const char *s);

#endif
