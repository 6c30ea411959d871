/*
 * config_store.c - the configuration store (see config.h): source loading (file, http(s) URL,
 * -r remote description), copy-on-write changes validated by the one decoder, atomic saving,
 * snapshot publication and the change listener.
 *
 * Every write follows the same path: encode the current snapshot to JSON, apply the change to
 * that JSON, decode + validate it into a new snapshot, save it, swap it in. Nothing is changed
 * until all of that succeeded.
 */
#include "config/config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/cfg_schema.h"
#include "config/cfg_validate.h"
#include "config/cfg_yaml.h"
#include "storage/cloud_module.h"
#include "storage/storage.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/strutil.h"

#define CONFIG_MAX_BYTES (16u * 1024u * 1024u)
#define URL_TIMEOUT_S 30L

struct cfg_store {
    pthread_mutex_t write_lock; /* serialises changes */
    pthread_mutex_t snap_lock;  /* guards `current` */
    struct cfg *current;
    char *file_path;  /* file to save to; NULL for a read-only URL source */
    char *url;        /* http(s) source, or NULL */
    struct stor *remote; /* -r with a cloud storage: the store holding the file, or NULL */
    char *remote_key;    /* the configuration object's key in `remote` */
    char *source;     /* description for logs */
    char *header;     /* leading comment lines of the file, kept on save */
    cfg_change_fn listener;
    void *listener_ctx;
};

static const char *const kind_keys[CFG_KIND_COUNT] = {
    "aerospike-clusters", "storage", "backup-policies", "backup-routines", "secret-agents"};
static const char *const kind_nouns[CFG_KIND_COUNT] = {
    "cluster", "storage", "policy", "routine", "secret agent"};
static const struct cfg_type *const kind_types[CFG_KIND_COUNT] = {
    &cfg_type_cluster, &cfg_type_storage, &cfg_type_policy, &cfg_type_routine, &cfg_type_secret_agent};

const char *cfg_kind_key(enum cfg_kind kind) { return kind_keys[kind]; }
const char *cfg_kind_noun(enum cfg_kind kind) { return kind_nouns[kind]; }

/* ---- conversions -------------------------------------------------------------------- */

static int decode_config(const json_t *root, bool lenient, struct cfg **out, struct err *e)
{
    struct cfg_decode_ctx ctx = {.lenient_strings = lenient};
    void *obj;
    if (cfg_decode(&cfg_type_config, root, "", &ctx, &obj, e))
        return ERR_INVALID;
    struct cfg *c = obj;
    c->refcount = 1;
    if (cfg_validate_refs(c, e)) {
        cfg_release(c);
        return ERR_INVALID;
    }
    *out = c;
    return 0;
}

int cfg_from_yaml(const char *text, size_t len, const char *origin, struct cfg **out, struct err *e)
{
    json_t *root;
    if (cfg_yaml_to_json(text, len, origin, &root, e))
        return ERR_INVALID;
    int rc = decode_config(root, true, out, e);
    json_decref(root);
    if (rc && origin)
        err_prefix(e, "%s", origin);
    return rc;
}

int cfg_from_json(const json_t *root, struct cfg **out, struct err *e)
{
    return decode_config(root, false, out, e);
}

json_t *cfg_to_json(const struct cfg *c, bool redact)
{
    return cfg_encode(&cfg_type_config, c, redact);
}

int cfg_to_yaml(const struct cfg *c, char **out, struct err *e)
{
    json_t *j = cfg_to_json(c, false);
    int rc = cfg_json_to_yaml(j, out, e);
    json_decref(j);
    return rc;
}

/* ---- sources ------------------------------------------------------------------------ */

static bool is_url(const char *s)
{
    return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

static int fetch_url(const char *url, char **out, size_t *out_len, struct err *e)
{
    const struct cloud_module *cloud;
    if (cloud_module_get(&cloud, e))
        return err_prefix(e, "%s", url);
    return cloud->fetch_url(url, CONFIG_MAX_BYTES, URL_TIMEOUT_S, out, out_len, e);
}

/* Leading comment and blank lines (e.g. "# yaml-language-server: $schema=..."). */
static char *leading_comments(const char *text)
{
    const char *p = text;
    while (*p == '#' || *p == '\n' || *p == '\r') {
        const char *nl = strchr(p, '\n');
        if (!nl) {
            p += strlen(p);
            break;
        }
        p = nl + 1;
    }
    /* drop trailing blank lines of the block */
    const char *end = p;
    while (end > text && (end[-1] == '\n' || end[-1] == '\r') && end - 1 > text &&
           (end[-2] == '\n' || end[-2] == '\r'))
        end--;
    return strndup(text, (size_t)(end - text));
}

static int read_source(struct cfg_store *s, struct cfg **out, char **header, struct err *e)
{
    char *text;
    size_t len;
    int rc = s->url      ? fetch_url(s->url, &text, &len, e)
             : s->remote ? stor_get(s->remote, s->remote_key, CONFIG_MAX_BYTES, &text, &len, e)
                         : fs_read_file(s->file_path, CONFIG_MAX_BYTES, &text, &len, e);
    if (rc)
        return rc;
    rc = cfg_from_yaml(text, len, s->url ? s->url : s->remote ? s->source : s->file_path, out, e);
    if (rc == 0 && header)
        *header = leading_comments(text);
    free(text);
    return rc;
}

/* The `path` member of whichever storage kind is set (the configuration file's path or key). */
static char **storage_path_field(struct cfg_storage *st)
{
    if (st->local)
        return &st->local->path;
    if (st->s3)
        return &st->s3->path;
    if (st->azure)
        return &st->azure->path;
    return st->gcp ? &st->gcp->path : NULL;
}

/* -r: the -c file holds a dto.Storage telling where the real configuration file is: a local
 * file (local-storage.path), or an object of a cloud storage (`path` is its key in the bucket
 * or container), read and written through the storage interface. */
static int resolve_remote(struct cfg_store *s, const char *path, struct err *e)
{
    char *text;
    size_t len;
    json_t *root;
    void *obj;
    if (fs_read_file(path, CONFIG_MAX_BYTES, &text, &len, e))
        return ERR_IO;
    int rc = cfg_yaml_to_json(text, len, path, &root, e);
    free(text);
    if (rc)
        return rc;
    struct cfg_decode_ctx ctx = {.lenient_strings = true};
    rc = cfg_decode(&cfg_type_storage, root, "", &ctx, &obj, e);
    json_decref(root);
    if (rc)
        return err_prefix(e, "%s", path);
    struct cfg_storage *st = obj;
    char **field = storage_path_field(st);
    if (!field || !*field || !**field) {
        rc = err_set(e, ERR_INVALID, "%s: path (the configuration file in the storage) is required",
                     path);
    } else if (st->local) {
        s->file_path = strdup(st->local->path);
    } else {
        /* The storage is opened at the bucket root; `path` is the object's key. */
        const char *key = *field;
        while (*key == '/')
            key++;
        s->remote_key = strdup(key);
        free(*field);
        *field = NULL;
        rc = s->remote_key ? stor_key_valid(s->remote_key, e)
                           : err_set(e, ERR_NOMEM, "out of memory");
        if (rc == 0)
            rc = stor_open(st, &s->remote, e);
        if (rc)
            err_prefix(e, "%s", path);
    }
    cfg_free_obj(&cfg_type_storage, st);
    return rc;
}

int cfg_store_open(const char *path, bool remote, struct cfg_store **out, struct err *e)
{
    struct cfg_store *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->snap_lock, NULL);
    int rc = 0;
    if (is_url(path))
        s->url = strdup(path);
    else if (remote)
        rc = resolve_remote(s, path, e);
    else
        s->file_path = strdup(path);
    if (rc == 0) {
        size_t n = strlen(path) + (s->file_path ? strlen(s->file_path) : 0) + 32 +
                   (s->remote ? strlen(stor_name(s->remote)) + strlen(s->remote_key) : 0);
        s->source = malloc(n);
        if (s->url)
            str_printf(s->source, n, "%s (read-only)", s->url);
        else if (s->remote)
            str_printf(s->source, n, "%s '%s' (via %s)", stor_name(s->remote), s->remote_key, path);
        else if (remote)
            str_printf(s->source, n, "%s (via %s)", s->file_path, path);
        else
            str_printf(s->source, n, "%s", s->file_path);
        rc = read_source(s, &s->current, &s->header, e);
    }
    if (rc) {
        cfg_store_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void cfg_store_free(struct cfg_store *s)
{
    if (!s)
        return;
    cfg_release(s->current);
    stor_close(s->remote);
    free(s->remote_key);
    free(s->file_path);
    free(s->url);
    free(s->source);
    free(s->header);
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->snap_lock);
    free(s);
}

const char *cfg_store_source(const struct cfg_store *s)
{
    return s->source;
}

struct cfg *cfg_store_snapshot(struct cfg_store *s)
{
    pthread_mutex_lock(&s->snap_lock);
    struct cfg *c = cfg_retain(s->current);
    pthread_mutex_unlock(&s->snap_lock);
    return c;
}

void cfg_store_set_listener(struct cfg_store *s, cfg_change_fn fn, void *ctx)
{
    pthread_mutex_lock(&s->write_lock);
    s->listener = fn;
    s->listener_ctx = ctx;
    pthread_mutex_unlock(&s->write_lock);
}

/* Swaps in `next` (taking ownership) and tells the listener; caller holds write_lock. */
static void publish(struct cfg_store *s, struct cfg *next)
{
    pthread_mutex_lock(&s->snap_lock);
    struct cfg *old = s->current;
    s->current = next;
    pthread_mutex_unlock(&s->snap_lock);
    cfg_release(old);
    if (s->listener)
        s->listener(s->listener_ctx, next);
}

static int save(struct cfg_store *s, const struct cfg *c, struct err *e)
{
    char *yaml;
    if (cfg_to_yaml(c, &yaml, e))
        return ERR_INTERNAL;
    size_t hlen = s->header ? strlen(s->header) : 0, ylen = strlen(yaml);
    char *doc = malloc(hlen + ylen + 2);
    if (!doc) {
        free(yaml);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    memcpy(doc, s->header ? s->header : "", hlen);
    memcpy(doc + hlen, yaml, ylen + 1);
    /* A cloud object is replaced whole by one put (readers see the old or the new one). */
    int rc = s->remote ? stor_put(s->remote, s->remote_key, doc, hlen + ylen, e)
                       : fs_write_atomic(s->file_path, doc, hlen + ylen, 0600, e);
    free(doc);
    free(yaml);
    if (rc)
        return err_set(e, ERR_UNAVAILABLE, "configuration could not be persisted: %s", e->msg);
    return 0;
}

/* Validates the candidate JSON, saves it and publishes it; caller holds write_lock. */
static int commit(struct cfg_store *s, const json_t *candidate, struct err *e)
{
    if (!s->file_path && !s->remote)
        return err_set(e, ERR_UNAVAILABLE, "configuration source %s is read-only; change not applied", s->url);
    struct cfg *next;
    if (cfg_from_json(candidate, &next, e))
        return ERR_INVALID;
    if (save(s, next, e)) {
        cfg_release(next);
        return e->code;
    }
    publish(s, next);
    return 0;
}

typedef int (*mutation_fn)(json_t *config, void *ctx, struct err *e);

/* Runs one change: current -> JSON -> mutation -> validate -> save -> publish. */
static int mutate(struct cfg_store *s, mutation_fn fn, void *ctx, struct err *e)
{
    pthread_mutex_lock(&s->write_lock);
    json_t *config = cfg_to_json(s->current, false);
    int rc = fn(config, ctx, e);
    if (rc == 0)
        rc = commit(s, config, e);
    json_decref(config);
    pthread_mutex_unlock(&s->write_lock);
    return rc;
}

int cfg_store_apply(struct cfg_store *s, struct err *e)
{
    pthread_mutex_lock(&s->write_lock);
    struct cfg *next;
    char *header = NULL;
    int rc = read_source(s, &next, &header, e);
    if (rc == 0) {
        free(s->header);
        s->header = header;
        publish(s, next);
    }
    pthread_mutex_unlock(&s->write_lock);
    return rc;
}

json_t *cfg_store_get_json(struct cfg_store *s)
{
    struct cfg *c = cfg_store_snapshot(s);
    json_t *j = cfg_to_json(c, true);
    cfg_release(c);
    return j;
}

/* ---- whole-config replacement ------------------------------------------------------- */

static json_t *canonical_service(const json_t *service, struct err *e)
{
    void *obj;
    if (cfg_decode(&cfg_type_service, service, "service", NULL, &obj, e))
        return NULL;
    json_t *j = cfg_encode(&cfg_type_service, obj, false);
    cfg_free_obj(&cfg_type_service, obj);
    return j;
}

static int replace_mutation(json_t *config, void *ctx, struct err *e)
{
    json_t *body = ctx;
    if (!json_is_object(body))
        return err_set(e, ERR_INVALID, "configuration: must be an object");
    json_t *stored_service = json_object_get(config, "service");
    json_t *new_service = json_object_get(body, "service");
    if (new_service && !json_is_null(new_service)) {
        if (cfg_merge_secrets(&cfg_type_service, new_service, stored_service, "service", e))
            return ERR_INVALID;
        json_t *canon = canonical_service(new_service, e);
        if (!canon)
            return ERR_INVALID;
        json_t *empty = json_object();
        bool same = json_equal(canon, stored_service ? stored_service : empty);
        json_decref(empty);
        json_decref(canon);
        if (!same)
            return err_set(e, ERR_INVALID, "service: static settings cannot be changed through the API; "
                           "edit the configuration file and restart");
    }
    if (cfg_merge_secrets(&cfg_type_config, body, config, "", e))
        return ERR_INVALID;
    /* The body replaces every section; the service section always stays as stored. */
    json_t *service = json_incref(stored_service);
    json_object_clear(config);
    json_object_update(config, body);
    json_object_del(config, "service");
    if (service)
        json_object_set_new(config, "service", service);
    return 0;
}

int cfg_store_replace_json(struct cfg_store *s, json_t *body, struct err *e)
{
    json_t *copy = json_deep_copy(body);
    int rc = mutate(s, replace_mutation, copy, e);
    json_decref(copy);
    return rc;
}

/* ---- entities ----------------------------------------------------------------------- */

json_t *cfg_store_list(struct cfg_store *s, enum cfg_kind kind)
{
    json_t *all = cfg_store_get_json(s);
    json_t *section = json_object_get(all, kind_keys[kind]);
    json_t *out = section ? json_incref(section) : json_object();
    json_decref(all);
    return out;
}

json_t *cfg_store_get_entity(struct cfg_store *s, enum cfg_kind kind, const char *name, struct err *e)
{
    json_t *section = cfg_store_list(s, kind);
    json_t *item = json_object_get(section, name);
    json_t *out = item ? json_incref(item) : NULL;
    json_decref(section);
    if (!out)
        err_set(e, ERR_NOT_FOUND, "%s %s not found", kind_nouns[kind], name);
    return out;
}

struct entity_change {
    enum cfg_kind kind;
    const char *name;
    json_t *body;       /* NULL for delete */
    bool must_exist;    /* update/delete: 404 when absent */
    bool must_not_exist;/* create: 409 when present */
};

static json_t *section_of(json_t *config, enum cfg_kind kind)
{
    json_t *section = json_object_get(config, kind_keys[kind]);
    if (!section) {
        section = json_object();
        json_object_set_new(config, kind_keys[kind], section);
    }
    return section;
}

static int entity_mutation(json_t *config, void *ctx, struct err *e)
{
    struct entity_change *ch = ctx;
    const char *noun = kind_nouns[ch->kind];
    if (!ch->name[0] || strchr(ch->name, '/'))
        return err_set(e, ERR_INVALID, "invalid %s name \"%s\": must be non-empty and contain no '/'", noun, ch->name);
    json_t *section = section_of(config, ch->kind);
    json_t *stored = json_object_get(section, ch->name);
    if (ch->must_exist && !stored)
        return err_set(e, ERR_NOT_FOUND, "%s %s not found", noun, ch->name);
    if (ch->must_not_exist && stored)
        return err_set(e, ERR_CONFLICT, "A %s with that name already exists: %s", noun, ch->name);
    if (!ch->body) { /* delete */
        struct cfg *current;
        if (cfg_from_json(config, &current, e))
            return ERR_INTERNAL;
        char user[320];
        const char *used_by = cfg_find_user(current, kind_keys[ch->kind], ch->name, user, sizeof user);
        int rc = used_by ? err_set(e, ERR_IN_USE, "cannot delete %s %s: it is used by %s", noun, ch->name, used_by) : 0;
        cfg_release(current);
        if (rc == 0)
            json_object_del(section, ch->name);
        return rc;
    }
    if (!json_is_object(ch->body))
        return err_set(e, ERR_INVALID, "%s %s: body must be a JSON object", noun, ch->name);
    char path[300];
    str_printf(path, sizeof path, "%s.%s", kind_keys[ch->kind], ch->name);
    if (cfg_merge_secrets(kind_types[ch->kind], ch->body, stored, path, e))
        return ERR_INVALID;
    json_object_set(section, ch->name, ch->body);
    return 0;
}

static int change_entity(struct cfg_store *s, struct entity_change *ch, struct err *e)
{
    json_t *copy = ch->body ? json_deep_copy(ch->body) : NULL;
    ch->body = copy;
    int rc = mutate(s, entity_mutation, ch, e);
    json_decref(copy);
    return rc;
}

int cfg_store_create(struct cfg_store *s, enum cfg_kind kind, const char *name, json_t *body, struct err *e)
{
    struct entity_change ch = {kind, name, body, false, true};
    return change_entity(s, &ch, e);
}

int cfg_store_update(struct cfg_store *s, enum cfg_kind kind, const char *name, json_t *body, struct err *e)
{
    struct entity_change ch = {kind, name, body, true, false};
    return change_entity(s, &ch, e);
}

int cfg_store_delete(struct cfg_store *s, enum cfg_kind kind, const char *name, struct err *e)
{
    struct entity_change ch = {kind, name, NULL, true, false};
    return change_entity(s, &ch, e);
}

struct disable_change {
    const char *name;
    bool disabled;
};

static int disable_mutation(json_t *config, void *ctx, struct err *e)
{
    struct disable_change *ch = ctx;
    json_t *routine = json_object_get(section_of(config, CFG_KIND_ROUTINE), ch->name);
    if (!routine)
        return err_set(e, ERR_NOT_FOUND, "routine %s not found", ch->name);
    if (ch->disabled)
        json_object_set_new(routine, "disabled", json_true());
    else
        json_object_del(routine, "disabled");
    return 0;
}

int cfg_store_set_routine_disabled(struct cfg_store *s, const char *name, bool disabled, struct err *e)
{
    struct disable_change ch = {name, disabled};
    return mutate(s, disable_mutation, &ch, e);
}
