/*
 * stor_gcs.c - the gcp-storage backend (Google Cloud Storage JSON API), see storage.h: the
 * handle (config, endpoint, key -> gcs_auth), the request wrapper and error mapping every
 * operation uses, object metadata (stat), deletes, and the pure helpers of stor_gcs.h.
 * Uploads are in gcs_writer.c, ranged reads in gcs_reader.c, listings in gcs_list.c.
 *
 * Object names are <path>/<key> in bucket-name; stor_name is "gs://bucket/path". Requests go
 * through cloud_http (retries, connection reuse); with a service-account key each attempt gets
 * a bearer token from gcs_auth, without one no Authorization header is sent (the emulator;
 * ambient credentials - metadata server, gcloud ADC - are not supported).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "storage/gcs_internal.h"
#include "util/strutil.h"

/* ---- pure helpers -------------------------------------------------------------------------- */

size_t gcs_chunk_size(size_t part_size)
{
    if (part_size < GCS_CHUNK_QUANTUM)
        return GCS_CHUNK_QUANTUM;
    return (part_size + GCS_CHUNK_QUANTUM - 1) / GCS_CHUNK_QUANTUM * GCS_CHUNK_QUANTUM;
}

int gcs_parse_range(const char *v, size_t len, uint64_t *persisted)
{
    *persisted = 0;
    if (!v)
        return 0;
    char buf[64];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    unsigned long long lo, hi;
    int used = 0;
    if (sscanf(buf, "bytes=%llu-%llu%n", &lo, &hi, &used) != 2 || buf[used] != '\0' ||
        lo != 0 || hi < lo)
        return -1;
    *persisted = (uint64_t)hi + 1;
    return 0;
}

static int two_digits(const char *p)
{
    return isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])
               ? (p[0] - '0') * 10 + (p[1] - '0') : -1;
}

int gcs_parse_time(const char *s, int64_t *ms)
{
    int Y, M, D, h, m, sec, used = 0;
    if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &used) != 6 ||
        used != 19 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    const char *p = s + used;
    int64_t millis = 0;
    if (*p == '.') {
        int n = 0;
        for (p++; isdigit((unsigned char)*p); p++, n++)
            if (n < 3)
                millis = millis * 10 + (*p - '0');
        if (n == 0)
            return -1;
        for (; n < 3; n++)
            millis *= 10;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && p[3] == ':') {
        int oh = two_digits(p + 1), om = two_digits(p + 4);
        if (oh < 0 || om < 0)
            return -1;
        offset = (*p == '-' ? -1 : 1) * (oh * 3600LL + om * 60LL);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h,
                    .tm_min = m, .tm_sec = sec};
    *ms = ((int64_t)timegm(&tm) - offset) * 1000 + millis;
    return 0;
}

char *gcs_endpoint_root(const char *endpoint)
{
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    static const char api[] = "/storage/v1";
    if (n >= sizeof api - 1 && strncmp(endpoint + n - (sizeof api - 1), api, sizeof api - 1) == 0)
        n -= sizeof api - 1;
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    return strndup(endpoint, n);
}

/* ---- requests and errors ------------------------------------------------------------------- */

/* One exchange with the store: signed when there is a key; a 401 drops the cached token and
 * tries once more with a fresh one (revoked or expired early). */
int gcs_do(struct gcs_stor *g, struct cloud_http_req *req, struct cloud_http_resp *resp,
           struct err *e)
{
    if (g->auth) {
        req->sign = gcs_auth_sign;
        req->sign_ctx = g->auth;
    }
    int rc = cloud_http_do(g->http, req, resp, e);
    if (rc == 0 && resp->status == 401 && g->auth) {
        cloud_http_resp_free(resp);
        gcs_auth_invalidate(g->auth);
        rc = cloud_http_do(g->http, req, resp, e);
    }
    return rc;
}

int gcs_do_url(struct gcs_stor *g, const char *method, char *url, size_t max_body,
               const char *what, struct cloud_http_resp *resp, struct err *e)
{
    if (!url)
        return gcs_nomem(e);
    struct cloud_http_req req = {.what = what, .method = method, .url = url, .max_body = max_body};
    int rc = gcs_do(g, &req, resp, e);
    free(url);
    return rc;
}

/* The store's own explanation: error.message of a JSON error body, else the body's start. */
static void reply_message(const struct cloud_http_resp *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!r->body || !r->body_len)
        return;
    json_t *root = json_loads(r->body, 0, NULL);
    json_t *msg = json_object_get(json_object_get(root, "error"), "message");
    if (json_is_string(msg))
        str_printf(buf, cap, "%s", json_string_value(msg));
    else
        str_printf(buf, cap, "%.*s", (int)(r->body_len < 200 ? r->body_len : 200), r->body);
    json_decref(root);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
}

bool gcs_bucket_missing(const struct cloud_http_resp *r)
{
    if (r->status != 404)
        return false;
    char msg[256];
    reply_message(r, msg, sizeof msg);
    return strcasestr(msg, "bucket") && strcasestr(msg, "not exist");
}

/* Maps a failed reply to an error; `key` NULL for requests not about one object. */
int gcs_status_error(struct gcs_stor *g, const struct cloud_http_resp *r, const char *op,
                     const char *key, struct err *e)
{
    char msg[256];
    reply_message(r, msg, sizeof msg);
    const char *sep = msg[0] ? ": " : "";
    if (gcs_bucket_missing(r))
        return err_set(e, ERR_IO, "%s: bucket %s does not exist", g->base.name, g->bucket);
    if (r->status == 404 && key)
        return err_set(e, ERR_NOT_FOUND, "%s: '%s' not found", g->base.name, key);
    if (r->status == 401 || r->status == 403)
        return err_set(e, ERR_IO, "%s: access denied (%s%s%s, HTTP %ld)%s%s%s", g->base.name, op,
                       key ? " " : "", key ? key : "", r->status, sep, msg,
                       g->auth ? "" : " [no key or key-file-path configured; ambient "
                                      "credentials are not supported]");
    return err_set(e, ERR_IO, "%s: %s%s%s failed: HTTP %ld%s%s", g->base.name, op,
                   key ? " " : "", key ? key : "", r->status, sep, msg);
}

/* "{endpoint}/storage/v1/b/{bucket}/o/{object}{query}" */
char *gcs_object_url(struct gcs_stor *g, const char *object, const char *query)
{
    char *enc = cloud_url_encode(object, false), *url = NULL;
    if (enc && asprintf(&url, "%s/storage/v1/b/%s/o/%s%s", g->endpoint, g->bucket_enc, enc,
                        query ? query : "") < 0)
        url = NULL;
    free(enc);
    return url;
}

/* "{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType={type}&name={object}" */
char *gcs_upload_url(struct gcs_stor *g, const char *type, const char *object)
{
    char *enc = cloud_url_encode(object, false), *url = NULL;
    if (enc && asprintf(&url, "%s/upload/storage/v1/b/%s/o?uploadType=%s&name=%s", g->endpoint,
                        g->bucket_enc, type, enc) < 0)
        url = NULL;
    free(enc);
    return url;
}

/* A header list of one or two lines; NULL on no memory. */
struct curl_slist *gcs_headers(const char *a, const char *b)
{
    struct curl_slist *l = curl_slist_append(NULL, a);
    if (l && b) {
        struct curl_slist *n = curl_slist_append(l, b);
        if (!n) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = n;
    }
    return l;
}

int gcs_nomem(struct err *e) { return err_set(e, ERR_NOMEM, "gcp-storage: out of memory"); }

int64_t gcs_json_u64(json_t *v)
{
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

int64_t gcs_json_mtime(json_t *obj)
{
    int64_t ms = 0;
    json_t *v = json_object_get(obj, "updated");
    if (json_is_string(v) && gcs_parse_time(json_string_value(v), &ms) == 0)
        return ms;
    return 0;
}

/* ---- object metadata ----------------------------------------------------------------------- */

int gcs_meta_get(struct gcs_stor *g, const char *key, struct gcs_obj_meta *m, struct err *e)
{
    char *object = stor_object_name(&g->base, key);
    char *url = object ? gcs_object_url(g, object, "?fields=size%2Cupdated%2Cgeneration") : NULL;
    free(object);
    char what[GCS_WHAT_MAX];
    str_printf(what, sizeof what, "%s GET '%s' metadata", g->base.name, key);
    struct cloud_http_resp resp;
    int rc = gcs_do_url(g, "GET", url, GCS_META_REPLY_MAX, what, &resp, e);
    if (rc)
        return rc;
    if (resp.status != 200) {
        rc = gcs_status_error(g, &resp, "stat", key, e);
        cloud_http_resp_free(&resp);
        return rc;
    }
    json_t *root = json_loads(resp.body ? resp.body : "", 0, NULL);
    int64_t size = gcs_json_u64(json_object_get(root, "size"));
    json_t *gen = json_object_get(root, "generation");
    if (size < 0) {
        rc = err_set(e, ERR_IO, "%s: '%s': metadata reply without a size", g->base.name, key);
    } else {
        m->size = (uint64_t)size;
        m->mtime_ms = gcs_json_mtime(root);
        m->generation[0] = '\0';
        if (json_is_string(gen) && strspn(json_string_value(gen), "0123456789") ==
                                       strlen(json_string_value(gen)))
            str_printf(m->generation, sizeof m->generation, "%s", json_string_value(gen));
    }
    json_decref(root);
    cloud_http_resp_free(&resp);
    return rc;
}

static int gcs_stat(struct stor *s, const char *key, uint64_t *size, int64_t *mtime_ms,
                    struct err *e)
{
    struct gcs_obj_meta m;
    int rc = gcs_meta_get(gcs_of(s), key, &m, e);
    if (rc)
        return rc;
    *size = m.size;
    *mtime_ms = m.mtime_ms;
    return 0;
}

/* ---- deleting ------------------------------------------------------------------------------ */

/* DELETE of one object by full name; absent is fine, a missing bucket is not. */
static int delete_object(struct gcs_stor *g, const char *object, struct err *e)
{
    char what[GCS_WHAT_MAX];
    str_printf(what, sizeof what, "%s DELETE '%s'", g->base.name, object);
    struct cloud_http_resp resp;
    int rc = gcs_do_url(g, "DELETE", gcs_object_url(g, object, NULL), GCS_META_REPLY_MAX, what,
                        &resp, e);
    if (rc)
        return rc;
    bool gone = resp.status == 404 && !gcs_bucket_missing(&resp);
    if (resp.status != 204 && resp.status != 200 && !gone)
        rc = gcs_status_error(g, &resp, "delete of", object, e);
    cloud_http_resp_free(&resp);
    return rc;
}

static int gcs_del(struct stor *s, const char *key, struct err *e)
{
    char *object = stor_object_name(s, key);
    if (!object)
        return gcs_nomem(e);
    int rc = delete_object(gcs_of(s), object, e);
    free(object);
    return rc;
}

/* Every object whose name starts with <root>/<prefix>, listed page by page and deleted. Names
 * that are not valid keys (written by other tools) go too. */
static int gcs_delete_prefix(struct stor *s, const char *prefix, struct err *e)
{
    struct gcs_stor *g = gcs_of(s);
    char *full = gcs_full_prefix(s, prefix), *token = NULL;
    if (!full)
        return gcs_nomem(e);
    int rc = 0;
    do {
        json_t *reply;
        rc = gcs_list_request(g, full, false, NULL, token, STOR_PAGE_DEFAULT, &reply, e);
        free(token);
        token = NULL;
        if (rc)
            break;
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(reply, "items"), i, it) {
            json_t *name = json_object_get(it, "name");
            if (json_is_string(name) && (rc = delete_object(g, json_string_value(name), e)))
                break;
        }
        json_t *next = json_object_get(reply, "nextPageToken");
        if (rc == 0 && json_is_string(next) && *json_string_value(next) &&
            !(token = strdup(json_string_value(next))))
            rc = gcs_nomem(e);
        json_decref(reply);
    } while (rc == 0 && token);
    free(token);
    free(full);
    return rc;
}

/* ---- handle -------------------------------------------------------------------------------- */

static void gcs_close(struct stor *s)
{
    struct gcs_stor *g = gcs_of(s);
    gcs_auth_free(g->auth);
    cloud_http_free(g->http);
    free(g->endpoint);
    free(g->bucket);
    free(g->bucket_enc);
    free(g->class_data);
    free(g->class_meta);
    free(g);
}

static const struct stor_ops GCS_OPS = {
    .scheme = "gcs",
    .close = gcs_close,
    .writer_open = gcs_writer_open,
    .reader_open = gcs_reader_open,
    .stat = gcs_stat,
    .list_page = gcs_list_page,
    .del = gcs_del,
    .delete_prefix = gcs_delete_prefix,
    .put = NULL, /* the writer path: media/multipart upload with the metadata class */
};

static char *dup_nonempty(const char *s) { return s && *s ? strdup(s) : NULL; }

/* The key text: inline `key` first, else the file at key-file-path; NULL when neither. */
static int key_text(const struct cfg_gcp_storage *cfg, char **out, struct err *e)
{
    *out = NULL;
    if (cfg->key && *cfg->key)
        return (*out = strdup(cfg->key)) ? 0 : gcs_nomem(e);
    if (cfg->key_file_path && *cfg->key_file_path)
        return gcs_key_file_read(cfg->key_file_path, out, e);
    return 0;
}

static int gcs_setup(struct gcs_stor *g, const struct cfg_gcp_storage *cfg,
                     const struct gcs_open_opts *o, struct err *e)
{
    struct cloud_http_opts ho = {0};
    if (o && o->retry)
        ho.retry = *o->retry;
    else
        cloud_retry_default(&ho.retry);
    int rc = cloud_http_new(&ho, &g->http, e);
    if (rc)
        return rc;
    g->read_chunk = o && o->read_chunk ? o->read_chunk : GCS_READ_CHUNK;
    g->endpoint = gcs_endpoint_root(cfg->endpoint && *cfg->endpoint ? cfg->endpoint
                                                                   : GCS_DEFAULT_ENDPOINT);
    g->bucket = strdup(cfg->bucket_name);
    g->bucket_enc = cloud_url_encode(cfg->bucket_name, false);
    const struct cfg_storage_class *sc = cfg->storage_class;
    g->class_data = sc ? dup_nonempty(sc->data) : NULL;
    g->class_meta = sc ? dup_nonempty(sc->metadata) : NULL;
    if (!g->endpoint || !g->bucket || !g->bucket_enc || (sc && sc->data && *sc->data &&
        !g->class_data) || (sc && sc->metadata && *sc->metadata && !g->class_meta))
        return gcs_nomem(e);
    char *key = NULL;
    rc = key_text(cfg, &key, e);
    if (rc || !key)
        return rc;
    rc = gcs_auth_new(key, g->http, &g->auth, e);
    OPENSSL_cleanse(key, strlen(key));
    free(key);
    return rc;
}

int stor_gcs_open_opts(const struct cfg_gcp_storage *cfg, const struct gcs_open_opts *o,
                       struct stor **out, struct err *e)
{
    *out = NULL;
    if (!cfg || !cfg->bucket_name || !*cfg->bucket_name)
        return err_set(e, ERR_INVALID, "gcp-storage: bucket-name is required");
    char *root = stor_prefix_normalize(cfg->path);
    struct gcs_stor *g = root ? calloc(1, sizeof *g) : NULL;
    if (!g) {
        free(root);
        return gcs_nomem(e);
    }
    char name[STOR_KEY_MAX + 256];
    str_printf(name, sizeof name, "gs://%s%s%s", cfg->bucket_name, *root ? "/" : "", root);
    size_t part = cfg->min_part_size.set && cfg->min_part_size.v > 0
                      ? (size_t)cfg->min_part_size.v : GCS_DEFAULT_PART;
    int rc = stor_base_init(&g->base, &GCS_OPS, STOR_GCS, root, name, gcs_chunk_size(part), e);
    free(root);
    if (rc) {
        free(g);
        return rc;
    }
    rc = gcs_setup(g, cfg, o, e);
    if (rc) {
        stor_close(&g->base);
        return rc;
    }
    *out = &g->base;
    return 0;
}

int stor_gcs_open(const struct cfg_gcp_storage *cfg, struct stor **out, struct err *e)
{
    return stor_gcs_open_opts(cfg, NULL, out, e);
}
