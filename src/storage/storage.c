/*
 * storage.c - the backend-independent half of the storage interface (see storage.h): opening a
 * storage from its config block (one constructor per kind, like curl's handler table),
 * validation of keys and prefixes so that every backend sees only well-formed ones, dispatch
 * to the backend's operations, the common writer/reader bookkeeping (sticky write errors,
 * commit-or-abort, byte counts), key <-> object-name joining under a cloud root prefix, page
 * handling for listings, and the helpers built on the primitives: put / get of small objects,
 * list-with-callback, and delete-by-prefix for backends without a native one.
 */
#include "storage/storage.h"

#include "storage/cloud_module.h"

#include <stdlib.h>
#include <string.h>

/* ---- opening ------------------------------------------------------------------------------ */

int stor_open(const struct cfg_storage *cfg, struct stor **out, struct err *e)
{
    *out = NULL;
    if (!cfg)
        return err_set(e, ERR_INVALID, "storage: no configuration");
    int kinds = !!cfg->local + !!cfg->s3 + !!cfg->azure + !!cfg->gcp;
    if (kinds != 1)
        return err_set(e, ERR_INVALID,
                       "storage: exactly one of local-storage, s3-storage, azure-storage, "
                       "gcp-storage must be set (%d are)", kinds);
    if (cfg->local)
        return stor_local_open(cfg->local, out, e);
    const struct cloud_module *cloud;
    if (cloud_module_get(&cloud, e))
        return e->code;
    if (cfg->s3)
        return cloud->s3_open(cfg->s3, out, e);
    if (cfg->azure)
        return cloud->azure_open(cfg->azure, out, e);
    return cloud->gcs_open(cfg->gcp, out, e);
}

void stor_close(struct stor *s)
{
    if (!s)
        return;
    char *root = s->root, *name = s->name;
    s->ops->close(s);
    free(root);
    free(name);
}

int stor_base_init(struct stor *s, const struct stor_ops *ops, enum stor_kind kind,
                   const char *root, const char *name, size_t part_size, struct err *e)
{
    s->ops = ops;
    s->kind = kind;
    s->part_size = part_size;
    s->root = strdup(root ? root : "");
    s->name = strdup(name ? name : ops->scheme);
    if (!s->root || !s->name) {
        free(s->root);
        free(s->name);
        s->root = s->name = NULL;
        return err_set(e, ERR_NOMEM, "storage: out of memory");
    }
    return 0;
}

enum stor_kind stor_get_kind(const struct stor *s) { return s->kind; }
const char *stor_name(const struct stor *s) { return s->name; }
const char *stor_root(const struct stor *s) { return s->root; }
size_t stor_part_size(const struct stor *s) { return s->part_size; }

/* ---- keys --------------------------------------------------------------------------------- */

/* Checks the '/'-separated segments of key[0..len): non-empty, not "." / "..", no leading '.',
 * no control characters. `what` names the thing for the message. */
static int check_segments(const char *key, size_t len, const char *what, const char *full,
                          struct err *e)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && key[i] != '/') {
            unsigned char c = (unsigned char)key[i];
            if (c < 0x20 || c == 0x7f)
                return err_set(e, ERR_INVALID, "storage: %s '%s': control character", what,
                               full);
            continue;
        }
        size_t seg = i - start;
        if (seg == 0)
            return err_set(e, ERR_INVALID, "storage: %s '%s': empty path segment", what, full);
        if (key[start] == '.') {
            if (seg == 1 || (seg == 2 && key[start + 1] == '.'))
                return err_set(e, ERR_INVALID, "storage: %s '%s': '.' or '..' segment", what,
                               full);
            return err_set(e, ERR_INVALID,
                           "storage: %s '%s': segment starting with '.' (reserved)", what,
                           full);
        }
        start = i + 1;
    }
    return 0;
}

int stor_key_valid(const char *key, struct err *e)
{
    if (!key || !*key)
        return err_set(e, ERR_INVALID, "storage: empty key");
    size_t len = strnlen(key, STOR_KEY_MAX + 1);
    if (len > STOR_KEY_MAX)
        return err_set(e, ERR_INVALID, "storage: key longer than %d bytes", STOR_KEY_MAX);
    if (key[0] == '/')
        return err_set(e, ERR_INVALID, "storage: key '%s' is absolute", key);
    return check_segments(key, len, "key", key, e);
}

int stor_prefix_valid(const char *prefix, struct err *e)
{
    if (!prefix || !*prefix)
        return 0;
    size_t len = strnlen(prefix, STOR_KEY_MAX + 1);
    if (len > STOR_KEY_MAX)
        return err_set(e, ERR_INVALID, "storage: prefix longer than %d bytes", STOR_KEY_MAX);
    if (prefix[0] == '/')
        return err_set(e, ERR_INVALID, "storage: prefix '%s' is absolute", prefix);
    const char *slash = strrchr(prefix, '/');
    if (slash) {
        int rc = check_segments(prefix, (size_t)(slash - prefix), "prefix", prefix, e);
        if (rc)
            return rc;
    }
    /* The partial last segment: may be empty, must not start with '.' or hold controls. */
    const char *last = slash ? slash + 1 : prefix;
    if (*last == '.')
        return err_set(e, ERR_INVALID, "storage: prefix '%s': segment starting with '.'",
                       prefix);
    for (const char *p = last; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return err_set(e, ERR_INVALID, "storage: prefix '%s': control character", prefix);
    return 0;
}

char *stor_path_join(const char *a, const char *b)
{
    a = a ? a : "";
    b = b ? b : "";
    size_t la = strlen(a), lb = strlen(b);
    while (la > 0 && a[la - 1] == '/')
        la--;
    while (lb > 0 && *b == '/') {
        b++;
        lb--;
    }
    bool sep = la > 0 && lb > 0;
    char *out = malloc(la + sep + lb + 1);
    if (!out)
        return NULL;
    memcpy(out, a, la);
    if (sep)
        out[la] = '/';
    memcpy(out + la + sep, b, lb);
    out[la + sep + lb] = '\0';
    return out;
}

char *stor_prefix_normalize(const char *path)
{
    path = path ? path : "";
    while (*path == '/')
        path++;
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    return strndup(path, n);
}

char *stor_object_name(const struct stor *s, const char *key)
{
    return stor_path_join(s->root, key);
}

const char *stor_key_of_object(const struct stor *s, const char *object_name)
{
    size_t n = strlen(s->root);
    if (n == 0)
        return object_name;
    if (strncmp(object_name, s->root, n) != 0 || object_name[n] != '/')
        return NULL;
    return object_name + n + 1;
}

/* ---- writers ------------------------------------------------------------------------------ */

static int writer_open_opts(struct stor *s, const char *key, const struct stor_write_opts *o,
                            struct stor_writer **out, struct err *e)
{
    *out = NULL;
    int rc = stor_key_valid(key, e);
    if (rc)
        return rc;
    char *k = strdup(key);
    if (!k)
        return err_set(e, ERR_NOMEM, "storage: out of memory");
    struct stor_writer *w = NULL;
    rc = s->ops->writer_open(s, key, o, &w, e);
    if (rc) {
        free(k);
        return rc;
    }
    w->stor = s;
    w->key = k;
    w->bytes = 0;
    w->failed = 0;
    *out = w;
    return 0;
}

int stor_writer_open(struct stor *s, const char *key, size_t part_size_hint,
                     struct stor_writer **out, struct err *e)
{
    struct stor_write_opts o = {part_size_hint ? part_size_hint : s->part_size,
                                STOR_CLASS_DATA};
    return writer_open_opts(s, key, &o, out, e);
}

int stor_writer_write(struct stor_writer *w, const void *data, size_t len, struct err *e)
{
    if (w->failed)
        return err_set(e, w->failed, "%s: '%s': writer failed earlier", w->stor->name, w->key);
    if (len == 0)
        return 0;
    int rc = w->ops->write(w, data, len, e);
    if (rc) {
        w->failed = rc;
        return rc;
    }
    w->bytes += len;
    return 0;
}

static void writer_free(struct stor_writer *w)
{
    char *key = w->key;
    w->ops->destroy(w);
    free(key);
}

int stor_writer_commit(struct stor_writer *w, struct err *e)
{
    int rc;
    if (w->failed)
        rc = err_set(e, w->failed, "%s: '%s': not committed, a write failed", w->stor->name,
                     w->key);
    else
        rc = w->ops->commit(w, e);
    if (rc)
        w->ops->abort(w);
    writer_free(w);
    return rc;
}

void stor_writer_abort(struct stor_writer *w)
{
    if (!w)
        return;
    w->ops->abort(w);
    writer_free(w);
}

uint64_t stor_writer_bytes(const struct stor_writer *w) { return w->bytes; }
const char *stor_writer_key(const struct stor_writer *w) { return w->key; }

int stor_io_write(void *writer, const void *data, size_t len, struct err *e)
{
    return stor_writer_write(writer, data, len, e);
}

/* ---- readers ------------------------------------------------------------------------------ */

int stor_reader_open(struct stor *s, const char *key, uint64_t offset, int64_t length,
                     struct stor_reader **out, struct err *e)
{
    *out = NULL;
    int rc = stor_key_valid(key, e);
    if (rc)
        return rc;
    if (length < -1)
        return err_set(e, ERR_INVALID, "storage: '%s': negative read length", key);
    char *k = strdup(key);
    if (!k)
        return err_set(e, ERR_NOMEM, "storage: out of memory");
    struct stor_reader *r = NULL;
    rc = s->ops->reader_open(s, key, offset, length, &r, e);
    if (rc) {
        free(k);
        return rc;
    }
    r->stor = s;
    r->key = k;
    *out = r;
    return 0;
}

int stor_reader_read(struct stor_reader *r, void *buf, size_t cap, size_t *got, struct err *e)
{
    *got = 0;
    if (cap == 0)
        return 0;
    return r->ops->read(r, buf, cap, got, e);
}

uint64_t stor_reader_size(const struct stor_reader *r) { return r->size; }

void stor_reader_close(struct stor_reader *r)
{
    if (!r)
        return;
    char *key = r->key;
    r->ops->destroy(r);
    free(key);
}

int stor_io_read(void *reader, void *buf, size_t cap, size_t *got, struct err *e)
{
    return stor_reader_read(reader, buf, cap, got, e);
}

/* ---- metadata, small objects -------------------------------------------------------------- */

int stor_stat(struct stor *s, const char *key, uint64_t *size, int64_t *mtime_ms, struct err *e)
{
    int rc = stor_key_valid(key, e);
    if (rc)
        return rc;
    uint64_t sz = 0;
    int64_t mt = 0;
    rc = s->ops->stat(s, key, &sz, &mt, e);
    if (rc)
        return rc;
    if (size)
        *size = sz;
    if (mtime_ms)
        *mtime_ms = mt;
    return 0;
}

int stor_put(struct stor *s, const char *key, const void *data, size_t len, struct err *e)
{
    int rc = stor_key_valid(key, e);
    if (rc)
        return rc;
    if (s->ops->put)
        return s->ops->put(s, key, data, len, e);
    struct stor_write_opts o = {s->part_size, STOR_CLASS_METADATA};
    struct stor_writer *w;
    rc = writer_open_opts(s, key, &o, &w, e);
    if (rc)
        return rc;
    rc = stor_writer_write(w, data, len, e);
    if (rc) {
        stor_writer_abort(w);
        return rc;
    }
    return stor_writer_commit(w, e);
}

int stor_get(struct stor *s, const char *key, size_t max, char **data, size_t *len,
             struct err *e)
{
    *data = NULL;
    struct stor_reader *r;
    int rc = stor_reader_open(s, key, 0, -1, &r, e);
    if (rc)
        return rc;
    if (r->size > max) {
        rc = err_set(e, ERR_INVALID, "%s: '%s': object of %llu bytes is larger than %zu",
                     s->name, key, (unsigned long long)r->size, max);
        stor_reader_close(r);
        return rc;
    }
    /* The object may change under us: read up to max + 1 bytes whatever its size said. */
    size_t cap = (size_t)r->size + 1, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        stor_reader_close(r);
        return err_set(e, ERR_NOMEM, "storage: out of memory");
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                stor_reader_close(r);
                return err_set(e, ERR_INVALID, "%s: '%s': object larger than %zu bytes",
                               s->name, key, max);
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                stor_reader_close(r);
                return err_set(e, ERR_NOMEM, "storage: out of memory");
            }
            buf = nb;
            cap = ncap;
        }
        size_t got;
        rc = stor_reader_read(r, buf + n, cap - n, &got, e);
        if (rc) {
            free(buf);
            stor_reader_close(r);
            return rc;
        }
        if (got == 0)
            break;
        n += got;
    }
    stor_reader_close(r);
    if (n > max) {
        free(buf);
        return err_set(e, ERR_INVALID, "%s: '%s': object larger than %zu bytes", s->name, key,
                       max);
    }
    buf[n] = '\0';
    *data = buf;
    if (len)
        *len = n;
    return 0;
}

/* ---- listing ------------------------------------------------------------------------------ */

int stor_page_add(struct stor_page *p, const char *key, bool is_prefix, uint64_t size,
                  int64_t mtime_ms, struct err *e)
{
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 64;
        struct stor_entry *nv = realloc(p->entries, ncap * sizeof *nv);
        if (!nv)
            return err_set(e, ERR_NOMEM, "storage: out of memory");
        p->entries = nv;
        p->cap = ncap;
    }
    char *k = strdup(key);
    if (!k)
        return err_set(e, ERR_NOMEM, "storage: out of memory");
    p->entries[p->n++] = (struct stor_entry){k, is_prefix, size, mtime_ms};
    return 0;
}

void stor_page_free(struct stor_page *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->entries[i].key);
    free(p->entries);
    free(p->next_token);
    memset(p, 0, sizeof *p);
}

int stor_list_page(struct stor *s, const struct stor_list_opts *o, const char *token,
                   struct stor_page *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    struct stor_list_opts eff = o ? *o : (struct stor_list_opts){0};
    if (!eff.prefix)
        eff.prefix = "";
    if (eff.page_size == 0)
        eff.page_size = STOR_PAGE_DEFAULT;
    int rc = stor_prefix_valid(eff.prefix, e);
    if (rc)
        return rc;
    rc = s->ops->list_page(s, &eff, token, out, e);
    if (rc) {
        stor_page_free(out);
        return rc;
    }
    return 0;
}

int stor_list(struct stor *s, const struct stor_list_opts *o, stor_list_fn fn, void *ctx,
              struct err *e)
{
    char *token = NULL;
    for (;;) {
        struct stor_page p;
        int rc = stor_list_page(s, o, token, &p, e);
        free(token);
        token = NULL;
        if (rc)
            return rc;
        for (size_t i = 0; i < p.n; i++) {
            rc = fn(ctx, &p.entries[i], e);
            if (rc) {
                stor_page_free(&p);
                return rc < 0 ? rc : 0;
            }
        }
        token = p.next_token;
        p.next_token = NULL;
        stor_page_free(&p);
        if (!token)
            return 0;
    }
}

/* ---- deleting ----------------------------------------------------------------------------- */

int stor_delete(struct stor *s, const char *key, struct err *e)
{
    int rc = stor_key_valid(key, e);
    if (rc)
        return rc;
    return s->ops->del(s, key, e);
}

/* Generic delete-by-prefix: recursive listing, one delete per object. Deleting while paging is
 * safe because tokens resume after the last key returned. */
static int delete_prefix_generic(struct stor *s, const char *prefix, struct err *e)
{
    struct stor_list_opts o = {.prefix = prefix, .delimiter = false};
    char *token = NULL;
    for (;;) {
        struct stor_page p;
        int rc = stor_list_page(s, &o, token, &p, e);
        free(token);
        token = NULL;
        if (rc)
            return rc;
        for (size_t i = 0; i < p.n; i++) {
            rc = s->ops->del(s, p.entries[i].key, e);
            if (rc) {
                stor_page_free(&p);
                return rc;
            }
        }
        token = p.next_token;
        p.next_token = NULL;
        stor_page_free(&p);
        if (!token)
            return 0;
    }
}

int stor_delete_prefix(struct stor *s, const char *prefix, struct err *e)
{
    if (!prefix || !*prefix)
        return err_set(e, ERR_INVALID, "storage: refusing to delete with an empty prefix");
    size_t n = strlen(prefix);
    if (prefix[n - 1] != '/')
        return err_set(e, ERR_INVALID, "storage: delete prefix '%s' must end with '/'", prefix);
    if (n - 1 > STOR_KEY_MAX)
        return err_set(e, ERR_INVALID, "storage: prefix longer than %d bytes", STOR_KEY_MAX);
    if (prefix[0] == '/')
        return err_set(e, ERR_INVALID, "storage: prefix '%s' is absolute", prefix);
    int rc = check_segments(prefix, n - 1, "prefix", prefix, e);
    if (rc)
        return rc;
    if (s->ops->delete_prefix)
        return s->ops->delete_prefix(s, prefix, e);
    return delete_prefix_generic(s, prefix, e);
}
