/*
 * restore_job.c - the restore engine (see restore_job.h).
 *
 * Shape of a run:
 *   restore_run          folders one after another, then the wait for new indexes
 *    └ restore_folder    list .asb files; metadata_* files first (UDFs, then indexes), then
 *       │                `parallel` workers over the record files
 *       └ worker_main    one file at a time: storage reader -> [AES] -> [zstd] -> decoder ->
 *                        filters -> slot (a batch of records copied out of the decoder) ->
 *                        write pipe (up to max-async-batches slots in flight, each request
 *                        on a connection of its own; answers read oldest first)
 * A failing worker (or an external cancel) raises `stop`; workers check it per record, the
 * writer between attempts, the throttles while sleeping.
 */
#include "jobs/restore_job.h"

#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

#include "aerospike/as_info.h"
#include "aerospike/as_record.h"
#include "aerospike/as_write.h"
#include "asb/asb.h"
#include "io/io.h"
#include "jobs/record_views.h"
#include "secret/key_source.h"
#include "util/log.h"
#include "util/strutil.h"

#define ATOMIC_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define MOD "restore"

/* ==== policy ================================================================================ */

void restore_policy_init(struct restore_policy *p)
{
    memset(p, 0, sizeof *p);
    p->parallel = RESTORE_DEFAULT_PARALLEL;
    p->batch_size = RESTORE_DEFAULT_BATCH_SIZE;
    p->max_async_batches = RESTORE_DEFAULT_MAX_ASYNC_BATCHES;
    p->socket_timeout_ms = RESTORE_DEFAULT_SOCKET_TIMEOUT_MS;
    p->retry_base_ms = RESTORE_DEFAULT_RETRY_BASE_MS;
    p->retry_max = RESTORE_DEFAULT_RETRY_MAX;
    p->retry_multiplier = RESTORE_DEFAULT_RETRY_MULTIPLIER;
    str_printf(p->encryption_mode, sizeof p->encryption_mode, "NONE");
    str_printf(p->compression_mode, sizeof p->compression_mode, "NONE");
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void restore_policy_free(struct restore_policy *p)
{
    if (!p)
        return;
    free(p->ns_source);
    free(p->ns_destination);
    strv_free(p->set_list, p->n_set_list);
    strv_free(p->bin_list, p->n_bin_list);
    free(p->key_file);
    free(p->key_env);
    free(p->key_secret);
    restore_policy_init(p);
}

static int get_int(const json_t *v, const char *path, int64_t min, int64_t *out, struct err *e)
{
    if (!json_is_integer(v))
        return err_set(e, ERR_INVALID, "%s: must be an integer", path);
    json_int_t x = json_integer_value(v);
    if (x < min)
        return err_set(e, ERR_INVALID, "%s: must be >= %" PRId64, path, min);
    if (x > INT32_MAX)
        return err_set(e, ERR_INVALID, "%s: must be <= %d", path, INT32_MAX);
    *out = (int64_t)x;
    return 0;
}

static int get_bool(const json_t *v, const char *path, bool *out, struct err *e)
{
    if (!json_is_boolean(v))
        return err_set(e, ERR_INVALID, "%s: must be a boolean", path);
    *out = json_is_true(v);
    return 0;
}

static int get_str(const json_t *v, const char *path, bool nonempty, char **out, struct err *e)
{
    if (!json_is_string(v))
        return err_set(e, ERR_INVALID, "%s: must be a string", path);
    const char *s = json_string_value(v);
    if (nonempty && !*s)
        return err_set(e, ERR_INVALID, "%s: must not be empty", path);
    char *d = strdup(s);
    if (!d)
        return err_set(e, ERR_NOMEM, "out of memory");
    free(*out);
    *out = d;
    return 0;
}

static int get_strlist(const json_t *v, const char *path, char ***out, size_t *n, struct err *e)
{
    if (!json_is_array(v))
        return err_set(e, ERR_INVALID, "%s: must be an array of strings", path);
    size_t cnt = json_array_size(v);
    char **list = calloc(cnt ? cnt : 1, sizeof *list);
    if (!list)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const json_t *it = json_array_get(v, i);
        if (!json_is_string(it) || !(list[i] = strdup(json_string_value(it)))) {
            strv_free(list, i);
            return json_is_string(it) ? err_set(e, ERR_NOMEM, "out of memory")
                                      : err_set(e, ERR_INVALID, "%s[%zu]: must be a string", path, i);
        }
    }
    strv_free(*out, *n);
    *out = list;
    *n = cnt;
    return 0;
}

static int get_mode(const json_t *v, const char *path, const char *const *allowed, char *out, size_t cap,
                    struct err *e)
{
    if (!json_is_string(v))
        return err_set(e, ERR_INVALID, "%s: must be a string", path);
    const char *s = json_string_value(v);
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(s, allowed[i]) == 0) {
            str_printf(out, cap, "%s", s);
            return 0;
        }
    return err_set(e, ERR_INVALID, "%s: invalid value \"%s\"", path, s);
}

static int decode_namespace(const json_t *o, struct restore_policy *p, struct err *e)
{
    if (!json_is_object(o))
        return err_set(e, ERR_INVALID, "policy.namespace: must be an object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (strcmp(k, "source") && strcmp(k, "destination"))
            return err_set(e, ERR_INVALID, "policy.namespace.%s: unknown field", k);
    }
    const json_t *src = json_object_get(o, "source"), *dst = json_object_get(o, "destination");
    if (!src || json_is_null(src))
        return err_set(e, ERR_INVALID, "policy.namespace.source: required");
    if (!dst || json_is_null(dst))
        return err_set(e, ERR_INVALID, "policy.namespace.destination: required");
    if (get_str(src, "policy.namespace.source", true, &p->ns_source, e) ||
        get_str(dst, "policy.namespace.destination", true, &p->ns_destination, e))
        return e->code;
    return 0;
}

static int decode_retry(const json_t *o, struct restore_policy *p, struct err *e)
{
    if (!json_is_object(o))
        return err_set(e, ERR_INVALID, "policy.retry-policy: must be an object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (json_is_null(v))
            continue;
        if (strcmp(k, "base-timeout") == 0) {
            if (get_int(v, "policy.retry-policy.base-timeout", 1, &p->retry_base_ms, e))
                return e->code;
        } else if (strcmp(k, "max-retries") == 0) {
            if (get_int(v, "policy.retry-policy.max-retries", 0, &p->retry_max, e))
                return e->code;
        } else if (strcmp(k, "multiplier") == 0) {
            if (!json_is_number(v))
                return err_set(e, ERR_INVALID, "policy.retry-policy.multiplier: must be a number");
            if (json_number_value(v) < 1.0)
                return err_set(e, ERR_INVALID, "policy.retry-policy.multiplier: must be >= 1");
            p->retry_multiplier = json_number_value(v);
        } else {
            return err_set(e, ERR_INVALID, "policy.retry-policy.%s: unknown field", k);
        }
    }
    return 0;
}

static int decode_encryption(const json_t *o, struct restore_policy *p, struct err *e)
{
    static const char *const modes[] = {"NONE", "AES128", "AES256", NULL};
    if (!json_is_object(o))
        return err_set(e, ERR_INVALID, "policy.encryption: must be an object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (json_is_null(v))
            continue;
        int rc = 0;
        if (strcmp(k, "mode") == 0)
            rc = get_mode(v, "policy.encryption.mode", modes, p->encryption_mode, sizeof p->encryption_mode, e);
        else if (strcmp(k, "key-file") == 0)
            rc = get_str(v, "policy.encryption.key-file", true, &p->key_file, e);
        else if (strcmp(k, "key-env") == 0)
            rc = get_str(v, "policy.encryption.key-env", true, &p->key_env, e);
        else if (strcmp(k, "key-secret") == 0)
            rc = get_str(v, "policy.encryption.key-secret", true, &p->key_secret, e);
        else
            rc = err_set(e, ERR_INVALID, "policy.encryption.%s: unknown field", k);
        if (rc)
            return rc;
    }
    int sources = (p->key_file != NULL) + (p->key_env != NULL) + (p->key_secret != NULL);
    if (sources > 1)
        return err_set(e, ERR_INVALID, "policy.encryption: only one of key-file, key-env, key-secret may be set");
    if (strcmp(p->encryption_mode, "NONE") != 0 && sources == 0)
        return err_set(e, ERR_INVALID, "policy.encryption: mode %s needs key-file, key-env or key-secret",
                       p->encryption_mode);
    p->has_encryption = true;
    return 0;
}

static int decode_compression(const json_t *o, struct restore_policy *p, struct err *e)
{
    static const char *const modes[] = {"NONE", "ZSTD", NULL};
    if (!json_is_object(o))
        return err_set(e, ERR_INVALID, "policy.compression: must be an object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (json_is_null(v))
            continue;
        if (strcmp(k, "mode") == 0) {
            if (get_mode(v, "policy.compression.mode", modes, p->compression_mode, sizeof p->compression_mode, e))
                return e->code;
        } else if (strcmp(k, "level") == 0) { /* meaningless for reading; accepted */
            if (!json_is_integer(v))
                return err_set(e, ERR_INVALID, "policy.compression.level: must be an integer");
        } else {
            return err_set(e, ERR_INVALID, "policy.compression.%s: unknown field", k);
        }
    }
    p->has_compression = true;
    return 0;
}

static int decode_field(const char *k, const json_t *v, bool timestamp, struct restore_policy *p, struct err *e)
{
    char path[96];
    str_printf(path, sizeof path, "policy.%s", k);
    static const struct {
        const char *key;
        size_t off;
    } bools[] = {
        {"no-records", offsetof(struct restore_policy, no_records)},
        {"no-indexes", offsetof(struct restore_policy, no_indexes)},
        {"no-udfs", offsetof(struct restore_policy, no_udfs)},
        {"no-generation", offsetof(struct restore_policy, no_generation)},
        {"replace", offsetof(struct restore_policy, replace)},
        {"unique", offsetof(struct restore_policy, unique)},
        {"disable-batch-writes", offsetof(struct restore_policy, disable_batch_writes)},
    };
    static const struct {
        const char *key;
        size_t off;
        int64_t min;
    } ints[] = {
        {"parallel", offsetof(struct restore_policy, parallel), 1},
        {"extra-ttl", offsetof(struct restore_policy, extra_ttl), 0},
        {"batch-size", offsetof(struct restore_policy, batch_size), 1},
        {"max-async-batches", offsetof(struct restore_policy, max_async_batches), 1},
        {"tps", offsetof(struct restore_policy, tps), 0},
        {"bandwidth", offsetof(struct restore_policy, bandwidth), 0},
        {"socket-timeout", offsetof(struct restore_policy, socket_timeout_ms), 0},
        {"total-timeout", offsetof(struct restore_policy, total_timeout_ms), 0},
    };
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
        if (strcmp(k, bools[i].key) == 0)
            return get_bool(v, path, (bool *)((char *)p + bools[i].off), e);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strcmp(k, ints[i].key) == 0)
            return get_int(v, path, ints[i].min, (int64_t *)(void *)((char *)p + ints[i].off), e);
    if (strcmp(k, "namespace") == 0)
        return decode_namespace(v, p, e);
    if (strcmp(k, "set-list") == 0)
        return get_strlist(v, path, &p->set_list, &p->n_set_list, e);
    if (strcmp(k, "bin-list") == 0)
        return get_strlist(v, path, &p->bin_list, &p->n_bin_list, e);
    if (strcmp(k, "retry-policy") == 0)
        return decode_retry(v, p, e);
    if (strcmp(k, "encryption") == 0)
        return decode_encryption(v, p, e);
    if (strcmp(k, "compression") == 0 && !timestamp)
        return decode_compression(v, p, e);
    return err_set(e, ERR_INVALID, "%s: unknown field", path);
}

int restore_policy_from_json(const json_t *j, bool timestamp, struct restore_policy *p, struct err *e)
{
    restore_policy_init(p);
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_object(j))
        return err_set(e, ERR_INVALID, "policy: must be an object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        if (json_is_null(v))
            continue;
        if (decode_field(k, v, timestamp, p, e)) {
            restore_policy_free(p);
            return e->code;
        }
    }
    if (p->replace && p->unique) {
        restore_policy_free(p);
        return err_set(e, ERR_INVALID, "policy: replace and unique are mutually exclusive");
    }
    return 0;
}

/* ==== folders ============================================================================== */

static int aes_bits_of(const char *mode)
{
    if (strcasecmp(mode, "AES128") == 0)
        return 128;
    if (strcasecmp(mode, "AES256") == 0)
        return 256;
    return 0;
}

void restore_folder_free(struct restore_folder *f)
{
    if (f) {
        free(f->path);
        memset(f, 0, sizeof *f);
    }
}

static int folder_from_meta(const char *path, const struct backup_meta *m, bool incremental,
                            const struct restore_policy *p, struct restore_folder *f, struct err *e)
{
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (p && p->has_compression)
        f->zstd = strcasecmp(p->compression_mode, "ZSTD") == 0;
    else if (m)
        f->zstd = strcasecmp(m->compression, "ZSTD") == 0;
    if (p && p->has_encryption)
        f->aes_bits = aes_bits_of(p->encryption_mode);
    else if (m)
        f->aes_bits = aes_bits_of(m->encryption);
    if (m) {
        f->records = m->record_count;
        f->created_ms = m->created_ms;
    }
    f->incremental = incremental;
    return 0;
}

static int read_meta(struct stor *s, const char *folder, struct backup_meta *m, struct err *e)
{
    char key[STOR_KEY_MAX + 32];
    str_printf(key, sizeof key, "%s/metadata.yaml", folder);
    char *text = NULL;
    size_t len = 0;
    int rc = stor_get(s, key, 1u << 20, &text, &len, e);
    if (rc == 0)
        rc = meta_parse(text, len, key, m, e);
    free(text);
    return rc;
}

int restore_folder_load(struct stor *s, const char *path, const struct restore_policy *p,
                        struct restore_folder *f, struct err *e)
{
    memset(f, 0, sizeof *f);
    char norm[STOR_KEY_MAX + 1];
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    if (n == 0 || n > STOR_KEY_MAX)
        return err_set(e, ERR_INVALID, "backup-data-path: invalid path \"%s\"", path);
    memcpy(norm, path, n);
    norm[n] = 0;
    if (stor_key_valid(norm, e))
        return err_prefix(e, "backup-data-path");
    struct backup_meta m;
    int rc = read_meta(s, norm, &m, e);
    if (rc && rc != ERR_NOT_FOUND)
        return rc;
    bool have = rc == 0;
    err_clear(e);
    bool incremental = strstr(norm, "/incremental/") != NULL || strncmp(norm, "incremental/", 12) == 0;
    return folder_from_meta(norm, have ? &m : NULL, incremental, p, f, e);
}

/* ==== run state ============================================================================ */

struct throttle {
    pthread_mutex_t m;
    double rate; /* units per second; 0 = off */
    int64_t next_ns;
};

struct run {
    const struct restore_policy *pol;
    struct as_cluster *dest;
    struct stor *src;
    struct restore_progress *p;
    const volatile bool *cancel;
    volatile bool stop;

    pthread_mutex_t lock; /* err, globals */
    bool failed;
    struct err err;

    struct as_write_policy wp;
    struct throttle tps, bw;

    /* current folder */
    const struct restore_folder *folder;
    struct io_aes_key key;
    char **files;
    size_t n_files;
    size_t next_file;
    bool records_wanted;
    bool defer_indexes; /* metadata phase: collect indexes, create after the UDFs */

    struct as_sindex_info *pending; /* deferred indexes */
    size_t n_pending;
    struct as_sindex_info *created; /* created by this run, to wait for */
    size_t n_created;
};

static void run_fail(struct run *r, const struct err *e)
{
    err_keep_first(&r->lock, &r->failed, &r->err, e);
    r->stop = true;
}

static bool stopping(struct run *r)
{
    if (!r->stop && r->cancel && *r->cancel)
        r->stop = true;
    return r->stop;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleeps up to ns in slices, returning early when the run stops. */
static void nap(struct run *r, int64_t ns)
{
    while (ns > 0 && !stopping(r)) {
        int64_t slice = ns < 50000000 ? ns : 50000000;
        struct timespec ts = {0, (long)slice};
        nanosleep(&ts, NULL);
        ns -= slice;
    }
}

/* Reserves n units of the rate and waits for their turn. */
static void throttle_take(struct run *r, struct throttle *t, uint64_t n)
{
    if (t->rate <= 0 || n == 0)
        return;
    pthread_mutex_lock(&t->m);
    int64_t now = mono_ns();
    if (t->next_ns < now)
        t->next_ns = now;
    int64_t at = t->next_ns;
    t->next_ns += (int64_t)((double)n * 1e9 / t->rate);
    pthread_mutex_unlock(&t->m);
    if (at > now)
        nap(r, at - now);
}

/* ==== globals: UDFs and secondary indexes ================================================= */

static const char *remap_ns(const struct run *r, const char *ns)
{
    if (r->pol->ns_source && r->pol->ns_destination && strcmp(ns, r->pol->ns_source) == 0)
        return r->pol->ns_destination;
    return ns;
}

static int with_node(struct run *r, struct as_node **out, struct err *e)
{
    *out = as_cluster_random_node(r->dest);
    return *out ? 0 : err_set(e, ERR_UNAVAILABLE, "no node of the destination cluster is available");
}

static int put_udf(struct run *r, const struct asb_udf *u, struct err *e)
{
    char name[256];
    if (u->name_len == 0 || u->name_len >= sizeof name)
        return err_set(e, ERR_INVALID, "UDF name of %u bytes", (unsigned)u->name_len);
    memcpy(name, u->name, u->name_len);
    name[u->name_len] = 0;
    struct as_node *node;
    if (with_node(r, &node, e))
        return e->code;
    int rc = as_info_udf_put(node, name, u->content, u->content_len, e);
    as_node_release(node);
    if (rc)
        return err_prefix(e, "UDF %s", name);
    ATOMIC_ADD(&r->p->udf_count, 1);
    return 0;
}

static int copy_tok(char *dst, size_t cap, const char *s, uint32_t len, const char *what, struct err *e)
{
    if (len >= cap)
        return err_set(e, ERR_INVALID, "index %s too long (%u bytes)", what, (unsigned)len);
    memcpy(dst, s, len);
    dst[len] = 0;
    return 0;
}

static int sindex_from_asb(const struct run *r, const struct asb_sindex *s, struct as_sindex_info *o, struct err *e)
{
    memset(o, 0, sizeof *o);
    char ns[sizeof o->ns];
    if (copy_tok(ns, sizeof ns, s->ns, s->ns_len, "namespace", e) ||
        copy_tok(o->name, sizeof o->name, s->name, s->name_len, "name", e) ||
        copy_tok(o->bin, sizeof o->bin, s->bin ? s->bin : "", s->bin_len, "bin", e) ||
        copy_tok(o->set, sizeof o->set, s->set ? s->set : "", s->set_len, "set", e))
        return e->code;
    str_printf(o->ns, sizeof o->ns, "%s", remap_ns(r, ns));
    if (strcmp(o->set, "null") == 0 || strcmp(o->set, "NULL") == 0)
        o->set[0] = 0;
    const char *it = s->index_type == 'L' ? "list" : s->index_type == 'K' ? "mapkeys"
                   : s->index_type == 'V' ? "mapvalues" : "default";
    const char *bt = s->bin_type == 'S' ? "string" : s->bin_type == 'G' ? "geo2dsphere"
                   : s->bin_type == 'B' ? "blob" : "numeric";
    str_printf(o->index_type, sizeof o->index_type, "%s", it);
    str_printf(o->type, sizeof o->type, "%s", bt);
    str_printf(o->state, sizeof o->state, "%s", "");
    if (s->ctx_len && !(o->context = strndup(s->ctx, s->ctx_len)))
        return err_set(e, ERR_NOMEM, "out of memory");
    if (s->expr_len && !(o->exp = strndup(s->expr, s->expr_len))) {
        free(o->context);
        o->context = NULL;
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

static bool str_eq_opt(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool sindex_same(const struct as_sindex_info *a, const struct as_sindex_info *b)
{
    return strcmp(a->set, b->set) == 0 && strcmp(a->bin, b->bin) == 0 && strcasecmp(a->type, b->type) == 0 &&
           strcasecmp(a->index_type[0] ? a->index_type : "default", b->index_type[0] ? b->index_type : "default") == 0 &&
           str_eq_opt(a->context, b->context) && str_eq_opt(a->exp, b->exp);
}

static void sindex_free_one(struct as_sindex_info *s)
{
    free(s->context);
    free(s->exp);
    s->context = s->exp = NULL;
}

/* Creates one index (caller holds r->lock). */
static int create_sindex(struct run *r, const struct as_sindex_info *s, struct err *e)
{
    struct as_node *node;
    if (with_node(r, &node, e))
        return e->code;
    struct as_sindex_info *list = NULL;
    size_t n = 0;
    int rc = as_info_sindex_list(node, s->ns, &list, &n, e);
    if (rc)
        err_prefix(e, "index %s of namespace %s", s->name, s->ns);
    const struct as_sindex_info *old = NULL;
    for (size_t i = 0; rc == 0 && i < n && !old; i++)
        if (strcmp(list[i].ns, s->ns) == 0 && strcmp(list[i].name, s->name) == 0)
            old = &list[i]; /* 8.1 ignores ns= in sindex-list: match the namespace here */
    if (rc == 0 && old) {
        if (sindex_same(old, s)) {
            ATOMIC_ADD(&r->p->index_count, 1);
        } else {
            ATOMIC_ADD(&r->p->index_conflicts, 1);
            LOG_W(MOD, "index %s of namespace %s exists with another definition: not restored", s->name, s->ns);
        }
    } else if (rc == 0) {
        rc = as_info_sindex_create(node, s, e);
        if (rc == 0) {
            ATOMIC_ADD(&r->p->index_count, 1);
            struct as_sindex_info *c = realloc(r->created, (r->n_created + 1) * sizeof *c);
            if (c) {
                r->created = c;
                c[r->n_created] = *s;
                c[r->n_created].context = c[r->n_created].exp = NULL; /* only names are needed */
                r->n_created++;
            }
        } else {
            err_prefix(e, "index %s of namespace %s", s->name, s->ns);
        }
    }
    as_sindex_list_free(list, n);
    as_node_release(node);
    return rc;
}

static int handle_sindex(struct run *r, const struct asb_sindex *s, struct err *e)
{
    struct as_sindex_info info;
    if (sindex_from_asb(r, s, &info, e))
        return e->code;
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    if (r->defer_indexes) {
        struct as_sindex_info *v = realloc(r->pending, (r->n_pending + 1) * sizeof *v);
        if (!v) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            sindex_free_one(&info);
        } else {
            r->pending = v;
            v[r->n_pending++] = info;
        }
    } else {
        rc = create_sindex(r, &info, e);
        sindex_free_one(&info);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static int create_pending(struct run *r, struct err *e)
{
    int rc = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n_pending; i++) {
        if (rc == 0 && !stopping(r))
            rc = create_sindex(r, &r->pending[i], e);
        sindex_free_one(&r->pending[i]);
    }
    free(r->pending);
    r->pending = NULL;
    r->n_pending = 0;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* Waits until every index this run created reports RW (or no state). */
static int wait_indexes(struct run *r, struct err *e)
{
    for (size_t i = 0; i < r->n_created && !stopping(r); i++) {
        for (;;) {
            struct as_node *node;
            if (with_node(r, &node, e))
                return e->code;
            struct as_sindex_info *list = NULL;
            size_t n = 0;
            int rc = as_info_sindex_list(node, r->created[i].ns, &list, &n, e);
            as_node_release(node);
            if (rc)
                return err_prefix(e, "waiting for index %s", r->created[i].name);
            bool ready = true, broken = false;
            for (size_t k = 0; k < n; k++)
                if (strcmp(list[k].ns, r->created[i].ns) == 0 && strcmp(list[k].name, r->created[i].name) == 0) {
                    ready = !list[k].state[0] || strcasecmp(list[k].state, "RW") == 0;
                    broken = strcasecmp(list[k].state, "ERROR") == 0;
                }
            as_sindex_list_free(list, n);
            if (broken)
                return err_set(e, ERR_IO, "index %s: build failed on the server", r->created[i].name);
            if (ready || stopping(r))
                break;
            nap(r, 200000000);
        }
    }
    return 0;
}

/* ==== records ============================================================================== */

struct chunk {
    uint8_t *p;
    size_t cap, used;
};

struct arena {
    struct chunk *c;
    size_t n, cur;
    size_t chunk; /* size of a new chunk (bigger when one value needs it) */
};

static void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    while (a->cur < a->n && a->c[a->cur].cap - a->c[a->cur].used < n)
        a->cur++;
    if (a->cur == a->n) {
        struct chunk *c = realloc(a->c, (a->n + 1) * sizeof *c);
        if (!c)
            return NULL;
        a->c = c;
        size_t cap = n > a->chunk ? n : a->chunk;
        c[a->n].p = malloc(cap);
        if (!c[a->n].p)
            return NULL;
        c[a->n].cap = cap;
        c[a->n].used = 0;
        a->n++;
    }
    struct chunk *c = &a->c[a->cur];
    void *p = c->p + c->used;
    c->used += n;
    return p;
}

static void arena_reset(struct arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        a->c[i].used = 0;
    a->cur = 0;
}

static void arena_free(struct arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->c[i].p);
    free(a->c);
    memset(a, 0, sizeof *a);
}

/* Records of one batch (or of one single write) copied out of the decoder, and their write
 * items; owned by the writes in flight until they are answered. */
struct slot {
    struct arena arena;
    struct as_record *recs;
    struct as_write_item *items;
    size_t n_items;
    bool in_flight;
};

struct worker {
    struct run *r;
    pthread_t thread;
    bool started;
    volatile bool done;
    struct as_write_pipe *pipe;
    struct slot *slots;  /* max-async-batches in flight + the one being filled */
    size_t n_slots, cur; /* cur = the slot being filled */
    size_t slot_records; /* batch-size, or 1 with single writes */
    int64_t now_unix;
};

static bool bin_wanted(const struct restore_policy *p, const char *name, uint32_t len)
{
    for (size_t i = 0; i < p->n_bin_list; i++)
        if (strlen(p->bin_list[i]) == len && memcmp(p->bin_list[i], name, len) == 0)
            return true;
    return false;
}

static bool set_wanted(const struct restore_policy *p, const char *set, uint32_t len)
{
    for (size_t i = 0; i < p->n_set_list; i++)
        if (strlen(p->set_list[i]) == len && memcmp(p->set_list[i], set, len) == 0)
            return true;
    return false;
}

/* Classifies one answered write; a fatal result fails the run. */
static int classify(struct run *r, const struct as_write_item *it, struct err *e)
{
    switch (it->result) {
    case 0:
        ATOMIC_ADD(&r->p->inserted_records, 1);
        return 0;
    case 3: /* GENERATION: the stored record is as new or newer */
        ATOMIC_ADD(&r->p->fresher_records, 1);
        return 0;
    case 5: /* RECORD_EXISTS (unique) */
        ATOMIC_ADD(&r->p->existed_records, 1);
        return 0;
    case -1:
        ATOMIC_ADD(&r->p->errors_in_doubt, 1);
        return 0;
    case 20:
        return err_set(e, ERR_INVALID, "namespace %.*s not found in the destination cluster",
                       (int)it->rec->ns_len, it->rec->ns);
    default:
        ATOMIC_ADD(&r->p->ignored_records, 1);
        return 0;
    }
}

static int finish_writes(struct run *r, struct as_write_item *items, size_t n, int wrc, struct err *e)
{
    struct err ce = {0};
    int fatal = 0;
    bool cancelled = wrc && stopping(r);
    for (size_t i = 0; i < n; i++) {
        if (cancelled && items[i].result == -1)
            continue; /* cut short by the cancel, not an in-doubt write */
        if (classify(r, &items[i], &ce) && !fatal)
            fatal = ce.code;
    }
    if (fatal) {
        *e = ce;
        return fatal;
    }
    if (wrc) {
        if (stopping(r))
            return err_set(e, ERR_UNAVAILABLE, "restore cancelled");
        return e->code ? e->code : ERR_IO;
    }
    return 0;
}

/* Waits for the oldest slot in flight and counts its results. */
static int reap_one(struct worker *wk, struct err *e)
{
    void *tag = NULL;
    int wrc = 0;
    struct err we;
    if (as_write_pipe_next(wk->pipe, wk->r->dest, &wk->r->wp, &tag, &wrc, &we) != 0)
        return 0;
    struct slot *sl = tag;
    int rc = finish_writes(wk->r, sl->items, sl->n_items, wrc, &we);
    if (rc)
        *e = we;
    sl->n_items = 0;
    sl->in_flight = false;
    arena_reset(&sl->arena);
    return rc;
}

/* Sends the slot being filled and moves to a free one (waiting for the oldest when all are out). */
static int submit_current(struct worker *wk, struct err *e)
{
    struct run *r = wk->r;
    struct slot *sl = &wk->slots[wk->cur];
    if (sl->n_items == 0)
        return 0;
    int rc = as_write_pipe_submit(wk->pipe, r->dest, &r->wp, sl->items, sl->n_items, r->pol->disable_batch_writes,
                                  sl, e);
    if (rc) {
        sl->n_items = 0;
        arena_reset(&sl->arena);
        return rc;
    }
    sl->in_flight = true;
    for (size_t k = 1; k <= wk->n_slots; k++) {
        size_t i = (wk->cur + k) % wk->n_slots;
        if (!wk->slots[i].in_flight) {
            wk->cur = i;
            return 0;
        }
    }
    rc = reap_one(wk, e); /* FIFO: frees the oldest slot */
    for (size_t i = 0; i < wk->n_slots; i++)
        if (!wk->slots[i].in_flight) {
            wk->cur = i;
            break;
        }
    return rc;
}

static bool any_in_flight(const struct worker *wk)
{
    for (size_t i = 0; i < wk->n_slots; i++)
        if (wk->slots[i].in_flight)
            return true;
    return false;
}

/* Sends what is buffered (or drops it when !send) and waits for every answer; returns the
 * first failure. */
static int drain(struct worker *wk, bool send, struct err *e)
{
    int rc = 0;
    if (send) {
        rc = submit_current(wk, e);
    } else {
        wk->slots[wk->cur].n_items = 0;
        arena_reset(&wk->slots[wk->cur].arena);
    }
    while (any_in_flight(wk)) {
        struct err re;
        int r2 = reap_one(wk, &re);
        if (r2 && rc == 0) {
            rc = r2;
            *e = re;
        }
    }
    return rc;
}

static int copy_value(struct arena *a, struct as_value *v, struct err *e)
{
    switch (v->type) {
    case AS_PARTICLE_NULL:
    case AS_PARTICLE_INTEGER:
    case AS_PARTICLE_FLOAT:
    case AS_PARTICLE_BOOL:
        return 0;
    default:
        if (v->len == 0 || !v->data)
            return 0;
        uint8_t *d = arena_alloc(a, v->len);
        if (!d)
            return err_set(e, ERR_NOMEM, "out of memory");
        memcpy(d, v->data, v->len);
        v->data = d;
        return 0;
    }
}

/* Copies the record view (with its kept bins) into the current slot as its next row; sends
 * the slot when it is full. */
static int add_to_slot(struct worker *wk, const struct as_record *src, const char *ns, uint32_t kept,
                       uint32_t ttl, struct err *e)
{
    struct run *r = wk->r;
    struct slot *sl = &wk->slots[wk->cur];
    struct arena *a = &sl->arena;
    struct as_record *rec = &sl->recs[sl->n_items];
    *rec = *src;
    if (ns != src->ns) {
        rec->ns = ns;
        rec->ns_len = (uint32_t)strlen(ns);
    } else {
        char *d = arena_alloc(a, src->ns_len + 1);
        if (!d)
            return err_set(e, ERR_NOMEM, "out of memory");
        memcpy(d, src->ns, src->ns_len);
        d[src->ns_len] = 0;
        rec->ns = d;
    }
    if (src->set_len) {
        char *d = arena_alloc(a, src->set_len + 1);
        if (!d)
            return err_set(e, ERR_NOMEM, "out of memory");
        memcpy(d, src->set, src->set_len);
        d[src->set_len] = 0;
        rec->set = d;
    }
    if (copy_value(a, &rec->key, e))
        return e->code;
    struct as_bin *bins = kept ? arena_alloc(a, kept * sizeof *bins) : NULL;
    if (kept && !bins)
        return err_set(e, ERR_NOMEM, "out of memory");
    uint32_t k = 0;
    for (uint32_t i = 0; i < src->n_bins; i++) {
        const struct as_bin *b = &src->bins[i];
        if (r->pol->n_bin_list && !bin_wanted(r->pol, b->name, b->name_len))
            continue;
        bins[k] = *b;
        char *nm = arena_alloc(a, b->name_len + 1);
        if (!nm)
            return err_set(e, ERR_NOMEM, "out of memory");
        memcpy(nm, b->name, b->name_len);
        nm[b->name_len] = 0;
        bins[k].name = nm;
        if (copy_value(a, &bins[k].v, e))
            return e->code;
        k++;
    }
    rec->bins = bins;
    rec->n_bins = k;
    struct as_write_item *it = &sl->items[sl->n_items++];
    memset(it, 0, sizeof *it);
    it->rec = rec;
    it->ttl = ttl;
    it->result = -1;
    if (sl->n_items >= wk->slot_records)
        return submit_current(wk, e);
    return 0;
}

static int handle_record(struct worker *wk, const struct as_record *rec, struct err *e)
{
    struct run *r = wk->r;
    const struct restore_policy *p = r->pol;
    ATOMIC_ADD(&r->p->read_records, 1);
    if (p->n_set_list && !(rec->set_len && set_wanted(p, rec->set, rec->set_len))) {
        ATOMIC_ADD(&r->p->skipped_records, 1);
        return 0;
    }
    uint32_t kept = rec->n_bins;
    if (p->n_bin_list) {
        kept = 0;
        for (uint32_t i = 0; i < rec->n_bins; i++)
            kept += bin_wanted(p, rec->bins[i].name, rec->bins[i].name_len);
        if (kept == 0) {
            ATOMIC_ADD(&r->p->skipped_records, 1);
            return 0;
        }
    }
    uint32_t ttl = AS_TTL_NEVER_EXPIRE;
    if (rec->void_time) {
        int64_t now_cl = wk->now_unix - (int64_t)AS_CITRUSLEAF_EPOCH;
        int64_t left = (int64_t)rec->void_time - now_cl + p->extra_ttl;
        if ((int64_t)rec->void_time - now_cl <= 0 || left <= 0) {
            ATOMIC_ADD(&r->p->expired_records, 1);
            return 0;
        }
        ttl = left > (int64_t)UINT32_MAX - 3 ? UINT32_MAX - 3 : (uint32_t)left;
    }
    throttle_take(r, &r->tps, 1);
    if (stopping(r))
        return err_set(e, ERR_UNAVAILABLE, "restore cancelled");
    const char *ns = rec->ns;
    if (p->ns_source && rec->ns_len == strlen(p->ns_source) && memcmp(rec->ns, p->ns_source, rec->ns_len) == 0)
        ns = p->ns_destination;
    return add_to_slot(wk, rec, ns, kept, ttl, e);
}

/* ---- one file ---------------------------------------------------------------------------- */

struct src_ctx {
    struct run *r;
    struct stor_reader *sr;
};

static int counted_read(void *ctx, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct src_ctx *s = ctx;
    if (s->r->bw.rate > 0 && cap > 65536)
        cap = 65536; /* keep throttled reads smooth */
    int rc = stor_io_read(s->sr, buf, cap, got, e);
    if (rc == 0 && *got) {
        ATOMIC_ADD(&s->r->p->total_bytes, *got);
        throttle_take(s->r, &s->r->bw, *got);
    }
    return rc;
}

static int process_file(struct worker *wk, const char *key, struct err *e)
{
    struct run *r = wk->r;
    struct src_ctx sc = {.r = r};
    if (stor_reader_open(r->src, key, 0, -1, &sc.sr, e))
        return e->code;
    struct io_reader *src = io_cb_reader_new(counted_read, &sc, e);
    struct io_chain_opts o = {.zstd = r->folder->zstd, .aes = r->folder->aes_bits ? &r->key : NULL};
    struct io_reader *chain = src ? io_reader_chain(src, &o, e) : NULL;
    if (!chain) {
        io_reader_free(src);
        stor_reader_close(sc.sr);
        return err_prefix(e, "%s", key);
    }
    struct asb_dec *dec = asb_dec_new(io_read_cb, chain, NULL);
    int rc = dec ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    struct asb_item item;
    while (rc == 0) {
        if (stopping(r)) {
            rc = err_set(e, ERR_UNAVAILABLE, "restore cancelled");
            break;
        }
        if (asb_dec_next(dec, &item, e)) {
            rc = err_prefix(e, "%s", key);
            break;
        }
        if (item.kind == ASB_ITEM_EOF)
            break;
        if (item.kind == ASB_ITEM_RECORD) {
            if (r->records_wanted)
                rc = handle_record(wk, (const struct as_record *)(const void *)&item.u.rec, e);
        } else if (item.kind == ASB_ITEM_UDF) {
            if (!r->pol->no_udfs && (rc = put_udf(r, &item.u.udf, e)) != 0)
                err_prefix(e, "%s: offset %" PRIu64, key, item.offset);
        } else if (item.kind == ASB_ITEM_SINDEX) {
            if (!r->pol->no_indexes && (rc = handle_sindex(r, &item.u.sindex, e)) != 0)
                err_prefix(e, "%s: offset %" PRIu64, key, item.offset);
        }
    }
    if (rc == 0) {
        rc = drain(wk, true, e);
    } else {
        struct err de;
        (void)drain(wk, false, &de); /* what was sent is still counted */
    }
    asb_dec_free(dec);
    io_reader_free(chain);
    stor_reader_close(sc.sr);
    if (rc == 0)
        ATOMIC_ADD(&r->p->files_done, 1);
    return rc;
}

/* Batches in flight per worker: max-async-batches, within a share of the destination's
 * connection pool (every request in flight holds a connection of its node). */
static size_t async_depth(const struct run *r)
{
    const struct as_cluster_config *cc = as_cluster_config_of(r->dest);
    size_t pool = cc && cc->max_conns_per_node ? cc->max_conns_per_node : 256;
    size_t budget = pool * 3 / 4 / (size_t)r->pol->parallel;
    size_t depth = (size_t)r->pol->max_async_batches;
    if (depth > budget)
        depth = budget;
    return depth ? depth : 1;
}

static int worker_init(struct worker *wk, struct run *r, struct err *e)
{
    memset(wk, 0, sizeof *wk);
    wk->r = r;
    size_t depth = async_depth(r);
    wk->slot_records = r->pol->disable_batch_writes ? 1 : (size_t)r->pol->batch_size;
    wk->n_slots = depth + 1;
    wk->slots = calloc(wk->n_slots, sizeof *wk->slots);
    if (!wk->slots)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t chunk = wk->slot_records == 1 ? 4096 : 256 * 1024;
    for (size_t i = 0; i < wk->n_slots; i++) {
        struct slot *sl = &wk->slots[i];
        sl->arena.chunk = chunk;
        sl->recs = calloc(wk->slot_records, sizeof *sl->recs);
        sl->items = calloc(wk->slot_records, sizeof *sl->items);
        if (!sl->recs || !sl->items)
            return err_set(e, ERR_NOMEM, "out of memory");
    }
    return as_write_pipe_new(&wk->pipe, (unsigned)depth, e);
}

static void worker_free(struct worker *wk)
{
    as_write_pipe_free(wk->pipe);
    for (size_t i = 0; wk->slots && i < wk->n_slots; i++) {
        arena_free(&wk->slots[i].arena);
        free(wk->slots[i].recs);
        free(wk->slots[i].items);
    }
    free(wk->slots);
    wk->slots = NULL;
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct run *r = wk->r;
    struct err e = {0};
    for (;;) {
        if (stopping(r))
            break;
        size_t i = __atomic_fetch_add(&r->next_file, 1, __ATOMIC_RELAXED);
        if (i >= r->n_files)
            break;
        wk->now_unix = (int64_t)time(NULL);
        if (process_file(wk, r->files[i], &e)) {
            if (!(stopping(r) && e.code == ERR_UNAVAILABLE))
                run_fail(r, &e);
            r->stop = true;
            break;
        }
    }
    __atomic_store_n(&wk->done, true, __ATOMIC_RELEASE);
    return NULL;
}

/* Runs `parallel` workers over r->files[first..]; waits for them while watching `cancel`. */
static int run_workers(struct run *r, struct err *e)
{
    size_t left = r->n_files - r->next_file;
    if (left == 0)
        return 0;
    size_t n = (size_t)r->pol->parallel < left ? (size_t)r->pol->parallel : left;
    struct worker *ws = calloc(n, sizeof *ws);
    if (!ws)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = worker_init(&ws[i], r, e);
        if (rc == 0) {
            if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
                rc = err_set(e, ERR_INTERNAL, "cannot start a restore worker thread");
            else
                ws[i].started = true;
        }
    }
    if (rc)
        r->stop = true;
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < n; i++)
            if (ws[i].started && !__atomic_load_n(&ws[i].done, __ATOMIC_ACQUIRE))
                all = false;
        if (all)
            break;
        stopping(r); /* propagates an external cancel to the workers and writers */
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        if (ws[i].started)
            pthread_join(ws[i].thread, NULL);
        worker_free(&ws[i]);
    }
    free(ws);
    return rc;
}

/* ---- one folder --------------------------------------------------------------------------- */

struct list_ctx {
    char **v;
    size_t n, cap;
};

static int on_entry(void *ctx, const struct stor_entry *ent, struct err *e)
{
    struct list_ctx *l = ctx;
    size_t len = strlen(ent->key);
    if (ent->is_prefix || len < 4 || strcmp(ent->key + len - 4, ".asb") != 0)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return err_set(e, ERR_NOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(ent->key)))
        return err_set(e, ERR_NOMEM, "out of memory");
    l->n++;
    return 0;
}

static bool is_meta_file(const char *key)
{
    const char *base = strrchr(key, '/');
    base = base ? base + 1 : key;
    return strncmp(base, "metadata_", 9) == 0;
}

static int load_key(struct run *r, int bits, struct err *e)
{
    const struct restore_policy *p = r->pol;
    if (!p->key_file && !p->key_env && !p->key_secret)
        return err_set(e, ERR_INVALID, "the backup is encrypted (AES%d) but the policy gives no encryption key", bits);
    struct key_source src = {.key_file = p->key_file, .key_env = p->key_env, .key_secret = p->key_secret,
                             .agent = p->key_agent};
    return key_source_load(&src, bits, &r->key, e);
}

static int restore_folder(struct run *r, const struct restore_folder *f, struct err *e)
{
    r->folder = f;
    if (f->aes_bits && load_key(r, f->aes_bits, e))
        return e->code;
    char prefix[STOR_KEY_MAX + 2];
    str_printf(prefix, sizeof prefix, "%s/", f->path);
    struct stor_list_opts lo = {.prefix = prefix, .delimiter = true};
    struct list_ctx l = {0};
    int rc = stor_list(r->src, &lo, on_entry, &l, e);
    if (rc == 0 && l.n == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no backup files (.asb) in %s", f->path);
    /* metadata_* files first (stable: keep the listing order within each group) */
    size_t n_meta = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        if (is_meta_file(l.v[i])) {
            char *t = l.v[i];
            memmove(&l.v[n_meta + 1], &l.v[n_meta], (i - n_meta) * sizeof *l.v);
            l.v[n_meta++] = t;
        }
    r->files = l.v;
    r->n_files = rc == 0 ? l.n : 0;
    r->next_file = 0;
    if (rc == 0 && n_meta) {
        struct worker w0;
        r->defer_indexes = true;
        r->records_wanted = !r->pol->no_records;
        rc = worker_init(&w0, r, e);
        for (size_t i = 0; rc == 0 && i < n_meta; i++) {
            w0.now_unix = (int64_t)time(NULL);
            rc = process_file(&w0, l.v[i], e);
        }
        worker_free(&w0);
        r->defer_indexes = false;
        if (rc == 0)
            rc = create_pending(r, e);
        r->next_file = n_meta;
    }
    /* record files; with no-records they are still read for global lines when the folder has
     * no metadata_ file (asbackup puts them at the top of its first file) */
    bool read_data = !r->pol->no_records || (n_meta == 0 && (!r->pol->no_udfs || !r->pol->no_indexes));
    if (rc == 0 && read_data) {
        r->records_wanted = !r->pol->no_records;
        rc = run_workers(r, e);
        if (rc == 0 && r->failed) {
            *e = r->err;
            rc = e->code ? e->code : ERR_IO;
        }
    }
    if (r->n_pending) {
        for (size_t i = 0; i < r->n_pending; i++)
            sindex_free_one(&r->pending[i]);
        free(r->pending);
        r->pending = NULL;
        r->n_pending = 0;
    }
    strv_free(l.v, l.n);
    r->files = NULL;
    r->n_files = 0;
    memset(&r->key, 0, sizeof r->key);
    return rc;
}

int restore_run(const struct restore_spec *spec, struct as_cluster *dest, struct stor *src,
                struct restore_progress *p, const volatile bool *cancel, struct err *e)
{
    struct restore_policy defaults;
    restore_policy_init(&defaults);
    const struct restore_policy *pol = spec->policy ? spec->policy : &defaults;
    if (pol->replace && pol->unique)
        return err_set(e, ERR_INVALID, "policy: replace and unique are mutually exclusive");
    if (pol->parallel < 1 || pol->batch_size < 1)
        return err_set(e, ERR_INVALID, "policy: parallel and batch-size must be >= 1");
    if (spec->n_folders == 0)
        return err_set(e, ERR_INVALID, "nothing to restore");
    struct run r = {.pol = pol, .dest = dest, .src = src, .p = p, .cancel = cancel};
    pthread_mutex_init(&r.lock, NULL);
    pthread_mutex_init(&r.tps.m, NULL);
    pthread_mutex_init(&r.bw.m, NULL);
    r.tps.rate = (double)pol->tps;
    r.bw.rate = (double)pol->bandwidth * 1024.0 * 1024.0;
    r.wp = (struct as_write_policy){
        .exists = pol->replace ? AS_EXISTS_CREATE_OR_REPLACE : pol->unique ? AS_EXISTS_CREATE : AS_EXISTS_IGNORE,
        .gen = pol->no_generation ? AS_GEN_IGNORE : AS_GEN_GT,
        .send_key = true,
        .respond_all_ops = true,
        .socket_timeout_ms = (uint32_t)pol->socket_timeout_ms,
        .total_timeout_ms = (uint32_t)pol->total_timeout_ms,
        .max_retries = (uint32_t)pol->retry_max,
        .max_retries_set = true,
        .retry_sleep_ms = (uint32_t)pol->retry_base_ms,
        .retry_multiplier = pol->retry_multiplier,
        .cancel = &r.stop,
    };
    if (spec->reorder)
        r.wp.exists = AS_EXISTS_CREATE;
    for (size_t i = 0; i < spec->n_folders; i++)
        ATOMIC_ADD(&p->records_estimate, spec->folders[i].records);

    int rc = 0;
    for (size_t i = 0; rc == 0 && i < spec->n_folders; i++) {
        if (stopping(&r))
            break;
        rc = restore_folder(&r, &spec->folders[spec->reorder ? spec->n_folders - 1 - i : i], e);
    }
    if (rc == 0 && !stopping(&r))
        rc = wait_indexes(&r, e);
    if (rc == 0 && (stopping(&r) || r.failed)) {
        if (r.failed && !(cancel && *cancel))
            *e = r.err;
        else
            err_set(e, ERR_UNAVAILABLE, "restore cancelled");
        rc = e->code ? e->code : ERR_IO;
    }
    if (rc && cancel && *cancel && e->code != ERR_UNAVAILABLE)
        LOG_D(MOD, "cancelled restore ended with: %s", e->msg);
    free(r.created);
    pthread_mutex_destroy(&r.bw.m);
    pthread_mutex_destroy(&r.tps.m);
    pthread_mutex_destroy(&r.lock);
    return rc;
}

/* ---- namespaces in parallel ------------------------------------------------------------------ */

struct ns_task {
    const struct restore_spec *spec;
    struct as_cluster *dest;
    struct stor *src;
    struct restore_progress *p;
    const volatile bool *stop;
    unsigned *finished; /* completion counter shared by the tasks */
    unsigned order;     /* 1-based completion rank */
    int rc;
    struct err err;
    pthread_t thread;
    bool started;
    volatile bool done;
};

static void *ns_task_main(void *arg)
{
    struct ns_task *t = arg;
    err_clear(&t->err);
    t->rc = restore_run(t->spec, t->dest, t->src, t->p, t->stop, &t->err);
    t->order = __atomic_add_fetch(t->finished, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
    return NULL;
}

int restore_run_parallel(const struct restore_spec *specs, size_t n, struct as_cluster *dest, struct stor *src,
                         struct restore_progress *p, const volatile bool *cancel, struct err *e)
{
    if (n == 1)
        return restore_run(&specs[0], dest, src, p, cancel, e);
    if (n == 0)
        return err_set(e, ERR_INVALID, "nothing to restore");
    struct ns_task *ts = calloc(n, sizeof *ts);
    if (!ts)
        return err_set(e, ERR_NOMEM, "out of memory");
    volatile bool stop = false;
    unsigned finished = 0;
    for (size_t i = 0; i < n; i++) {
        ts[i] = (struct ns_task){.spec = &specs[i], .dest = dest, .src = src, .p = p, .stop = &stop,
                                 .finished = &finished};
        ts[i].started = pthread_create(&ts[i].thread, NULL, ns_task_main, &ts[i]) == 0;
        if (!ts[i].started) {
            ts[i].rc = err_set(&ts[i].err, ERR_INTERNAL, "cannot start a restore thread");
            ts[i].done = true;
            stop = true;
        }
    }
    for (;;) { /* the first failure or an external cancel stops every namespace */
        bool all = true;
        for (size_t i = 0; i < n; i++) {
            bool done = __atomic_load_n(&ts[i].done, __ATOMIC_ACQUIRE);
            all = all && done;
            if (done && ts[i].rc)
                stop = true;
        }
        if (cancel && *cancel)
            stop = true;
        if (all)
            break;
        struct timespec nap_ts = {0, 20000000};
        nanosleep(&nap_ts, NULL);
    }
    int rc = 0;
    unsigned first = 0;
    for (size_t i = 0; i < n; i++) {
        if (ts[i].started)
            pthread_join(ts[i].thread, NULL);
        if (ts[i].rc && (!rc || (ts[i].order && ts[i].order < first))) {
            rc = ts[i].rc;
            first = ts[i].order ? ts[i].order : UINT32_MAX;
            *e = ts[i].err;
        }
    }
    if (rc && cancel && *cancel)
        rc = err_set(e, ERR_UNAVAILABLE, "restore cancelled");
    free(ts);
    return rc;
}

int restore_namespace_empty(struct as_cluster *c, const char *ns, bool *empty, struct err *e)
{
    struct as_node **nodes;
    size_t n;
    *empty = false;
    if (as_cluster_nodes(c, &nodes, &n, e))
        return e->code;
    int rc = n ? 0 : err_set(e, ERR_UNAVAILABLE, "no node of the destination cluster is available");
    uint64_t objects = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct as_ns_info info;
        rc = as_info_namespace(nodes[i], ns, &info, e);
        if (rc == 0 && !info.found)
            rc = err_set(e, ERR_INVALID, "namespace %s not found in the destination cluster", ns);
        objects += info.objects;
    }
    as_nodes_release(nodes, n);
    if (rc == 0)
        *empty = objects == 0;
    return rc;
}

/* ==== point in time ========================================================================= */

struct cand {
    char *folder;
    struct backup_meta m;
    bool incremental;
};

struct cand_list {
    struct stor *s;
    struct cand *v;
    size_t n, cap;
    bool incremental;
};

static int on_meta(void *ctx, const struct stor_entry *ent, struct err *e)
{
    struct cand_list *l = ctx;
    static const char suffix[] = "/metadata.yaml";
    size_t len = strlen(ent->key), sl = sizeof suffix - 1;
    if (ent->is_prefix || len <= sl || strcmp(ent->key + len - sl, suffix) != 0)
        return 0;
    char *folder = strndup(ent->key, len - sl);
    if (!folder)
        return err_set(e, ERR_NOMEM, "out of memory");
    struct backup_meta m;
    struct err me = {0};
    if (read_meta(l->s, folder, &m, &me)) {
        LOG_W(MOD, "%s: skipped: %s", ent->key, me.msg); /* incomplete or corrupt: not a backup */
        free(folder);
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct cand *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(folder);
            return err_set(e, ERR_NOMEM, "out of memory");
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (struct cand){.folder = folder, .m = m, .incremental = l->incremental};
    return 0;
}

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    int c = strcmp(x->m.namespace_, y->m.namespace_);
    if (c)
        return c;
    if (x->m.created_ms != y->m.created_ms)
        return x->m.created_ms < y->m.created_ms ? -1 : 1;
    if (x->incremental != y->incremental)
        return x->incremental ? 1 : -1;
    return strcmp(x->folder, y->folder);
}

void restore_chains_free(struct restore_chain *c, size_t n)
{
    if (!c)
        return;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < c[i].n_folders; k++)
            restore_folder_free(&c[i].folders[k]);
        free(c[i].folders);
    }
    free(c);
}

int restore_folders_for_timestamp(struct stor *s, const char *routine, int64_t time_ms,
                                  struct restore_chain **out, size_t *n_out, struct err *e)
{
    *out = NULL;
    *n_out = 0;
    if (!routine || !*routine || strchr(routine, '/') || stor_key_valid(routine, e))
        return err_set(e, ERR_INVALID, "routine: invalid name \"%s\"", routine ? routine : "");
    struct cand_list l = {.s = s};
    char prefix[STOR_KEY_MAX];
    int rc = 0;
    for (int kind = 0; kind < 2 && rc == 0; kind++) {
        str_printf(prefix, sizeof prefix, "%s/%s/", routine, kind ? "incremental" : "backup");
        l.incremental = kind == 1;
        struct stor_list_opts lo = {.prefix = prefix, .delimiter = false};
        rc = stor_list(s, &lo, on_meta, &l, e);
    }
    if (rc == 0 && l.n)
        qsort(l.v, l.n, sizeof *l.v, cmp_cand);
    struct restore_chain *chains = NULL;
    size_t n_chains = 0;
    for (size_t i = 0; rc == 0 && i < l.n;) {
        size_t j = i;
        while (j < l.n && strcmp(l.v[j].m.namespace_, l.v[i].m.namespace_) == 0)
            j++;
        /* [i, j) = one namespace, by created time */
        ssize_t full = -1;
        for (size_t k = i; k < j; k++)
            if (!l.v[k].incremental && l.v[k].m.created_ms <= time_ms)
                full = (ssize_t)k;
        if (full >= 0) {
            struct restore_chain *c = realloc(chains, (n_chains + 1) * sizeof *c);
            if (!c) {
                rc = err_set(e, ERR_NOMEM, "out of memory");
                break;
            }
            chains = c;
            struct restore_chain *ch = &chains[n_chains++];
            memset(ch, 0, sizeof *ch);
            str_printf(ch->ns, sizeof ch->ns, "%s", l.v[i].m.namespace_);
            int64_t full_created = l.v[full].m.created_ms;
            size_t cnt = 1;
            for (size_t k = (size_t)full + 1; k < j; k++)
                cnt += l.v[k].incremental && l.v[k].m.created_ms > full_created && l.v[k].m.created_ms <= time_ms;
            ch->folders = calloc(cnt, sizeof *ch->folders);
            if (!ch->folders) {
                rc = err_set(e, ERR_NOMEM, "out of memory");
                break;
            }
            rc = folder_from_meta(l.v[full].folder, &l.v[full].m, false, NULL, &ch->folders[ch->n_folders++], e);
            for (size_t k = (size_t)full + 1; rc == 0 && k < j; k++)
                if (l.v[k].incremental && l.v[k].m.created_ms > full_created && l.v[k].m.created_ms <= time_ms)
                    rc = folder_from_meta(l.v[k].folder, &l.v[k].m, true, NULL, &ch->folders[ch->n_folders++], e);
        }
        i = j;
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].folder);
    free(l.v);
    if (rc == 0 && n_chains == 0)
        rc = err_set(e, ERR_NOT_FOUND, "routine %s: no full backup created before %" PRId64, routine, time_ms);
    if (rc) {
        restore_chains_free(chains, n_chains);
        return rc;
    }
    *out = chains;
    *n_out = n_chains;
    return 0;
}
