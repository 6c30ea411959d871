/*
 * gcs_writer.c - uploads of the gcp-storage backend (see stor_gcs.c).
 *
 * Writers buffer one chunk (min-part-size rounded up to a multiple of 256 KiB). An object that
 * ends before the chunk fills goes up in one request at commit: uploadType=media, or multipart
 * when a storage class must be set (or a single-chunk resumable upload above 1 MiB, to avoid
 * copying the data). A larger one opens a resumable session when the buffer is full and more
 * data arrives, and PUTs each full chunk with an open-ended Content-Range; a 308 reply's Range
 * header says how much the server persisted, and whatever it did not keep stays at the front of
 * the buffer and is sent again as the start of the next chunk (a retried chunk is sent whole:
 * the store ignores bytes it already has). Commit sends the rest with the total size, which
 * makes the object visible; abort DELETEs the session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "storage/cloud_part.h"
#include "storage/gcs_internal.h"
#include "util/strutil.h"

#define MULTIPART_MAX (1024 * 1024) /* class-bearing small uploads up to this are multipart */
#define STALLS_MAX 3                /* 308 replies in a row without progress */

struct gcs_writer {
    struct stor_writer base;
    struct gcs_stor *g;
    char *object;        /* full object name */
    const char *cls;     /* storageClass or NULL */
    size_t chunk;        /* bytes per resumable chunk, a multiple of 256 KiB */
    unsigned char *buf;  /* unsent bytes (starting at server offset `offset`) */
    size_t len, cap;
    char *session;       /* resumable session URI, NULL before the first chunk */
    uint64_t offset;     /* bytes the server has persisted */
    int stalls;          /* 308 replies in a row that persisted nothing new */
};

static struct gcs_writer *gw_of(struct stor_writer *w) { return (struct gcs_writer *)w; }

static const char *writer_key(const struct gcs_writer *w)
{
    return w->base.key ? w->base.key : w->object;
}

/* Checks the reply of a finished upload: 200/201 and, when it says, the right size. */
static int upload_done(struct gcs_writer *w, const struct cloud_http_resp *r, uint64_t total,
                       struct err *e)
{
    struct gcs_stor *g = w->g;
    if (r->status != 200 && r->status != 201)
        return gcs_status_error(g, r, "upload of", writer_key(w), e);
    json_t *root = r->body ? json_loads(r->body, 0, NULL) : NULL;
    int64_t size = gcs_json_u64(json_object_get(root, "size"));
    json_decref(root);
    if (size >= 0 && (uint64_t)size != total)
        return err_set(e, ERR_IO, "%s: upload of '%s': the store kept %lld of %llu bytes",
                       g->base.name, writer_key(w), (long long)size,
                       (unsigned long long)total);
    return 0;
}

static int media_upload(struct gcs_writer *w, struct err *e)
{
    char *url = gcs_upload_url(w->g, "media", w->object);
    struct curl_slist *h = gcs_headers("Content-Type: application/octet-stream", NULL);
    if (!url || !h) {
        free(url);
        curl_slist_free_all(h);
        return gcs_nomem(e);
    }
    char what[GCS_WHAT_MAX];
    str_printf(what, sizeof what, "%s upload '%s'", w->g->base.name, writer_key(w));
    struct cloud_http_req req = {.what = what, .method = "POST", .url = url, .headers = h,
                                 .body = w->buf ? (const void *)w->buf : "", .body_len = w->len,
                                 .max_body = GCS_META_REPLY_MAX};
    struct cloud_http_resp resp;
    int rc = gcs_do(w->g, &req, &resp, e);
    free(url);
    curl_slist_free_all(h);
    if (rc)
        return rc;
    rc = upload_done(w, &resp, w->len, e);
    cloud_http_resp_free(&resp);
    return rc;
}

/* {"name": object[, "storageClass": cls]} */
static char *object_resource(const struct gcs_writer *w)
{
    json_t *o = json_pack("{s:s}", "name", w->object);
    if (o && w->cls)
        json_object_set_new(o, "storageClass", json_string(w->cls));
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return txt;
}

/* A boundary that does not occur in the data. */
static int pick_boundary(const struct gcs_writer *w, char *b, size_t cap)
{
    for (int tries = 0; tries < 8; tries++) {
        unsigned char rnd[12];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return -1;
        int n = str_printf(b, cap, "abs_gcs_");
        for (size_t i = 0; i < sizeof rnd && (size_t)n + 2 < cap; i++)
            n += str_printf(b + n, cap - (size_t)n, "%02x", rnd[i]);
        if (!w->len || !memmem(w->buf, w->len, b, strlen(b)))
            return 0;
    }
    return -1;
}

static int multipart_upload(struct gcs_writer *w, struct err *e)
{
    char boundary[48];
    if (pick_boundary(w, boundary, sizeof boundary))
        return err_set(e, ERR_INTERNAL, "%s: no multipart boundary for '%s'", w->g->base.name,
                       writer_key(w));
    char *meta = object_resource(w), *head = NULL, *ctype = NULL, *url = NULL, *body = NULL;
    char tail[64];
    int tl = str_printf(tail, sizeof tail, "\r\n--%s--\r\n", boundary);
    int hl = meta ? asprintf(&head, "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n"
                                    "\r\n%s\r\n--%s\r\nContent-Type: application/octet-stream"
                                    "\r\n\r\n", boundary, meta, boundary) : -1;
    if (hl < 0)
        head = NULL;
    if (asprintf(&ctype, "Content-Type: multipart/related; boundary=%s", boundary) < 0)
        ctype = NULL;
    url = gcs_upload_url(w->g, "multipart", w->object);
    size_t total = (size_t)(hl > 0 ? hl : 0) + w->len + (size_t)tl;
    body = head && ctype && url ? malloc(total) : NULL;
    struct curl_slist *h = body ? gcs_headers(ctype, NULL) : NULL;
    int rc;
    if (!h) {
        rc = gcs_nomem(e);
        goto out;
    }
    memcpy(body, head, (size_t)hl);
    if (w->len)
        memcpy(body + hl, w->buf, w->len);
    memcpy(body + (size_t)hl + w->len, tail, (size_t)tl);
    char what[GCS_WHAT_MAX];
    str_printf(what, sizeof what, "%s upload '%s'", w->g->base.name, writer_key(w));
    struct cloud_http_req req = {.what = what, .method = "POST", .url = url, .headers = h,
                                 .body = body, .body_len = total, .max_body = GCS_META_REPLY_MAX};
    struct cloud_http_resp resp;
    rc = gcs_do(w->g, &req, &resp, e);
    if (rc == 0) {
        rc = upload_done(w, &resp, w->len, e);
        cloud_http_resp_free(&resp);
    }
out:
    curl_slist_free_all(h);
    free(meta);
    free(head);
    free(ctype);
    free(url);
    free(body);
    return rc;
}

/* POST uploadType=resumable: the session URI comes back in Location. */
static int session_start(struct gcs_writer *w, struct err *e)
{
    struct gcs_stor *g = w->g;
    char *url = gcs_upload_url(g, "resumable", w->object);
    char *meta = object_resource(w);
    struct curl_slist *h = gcs_headers("Content-Type: application/json; charset=UTF-8",
                                      "X-Upload-Content-Type: application/octet-stream");
    int rc = 0;
    if (!url || !meta || !h) {
        rc = gcs_nomem(e);
        goto out;
    }
    char what[GCS_WHAT_MAX];
    str_printf(what, sizeof what, "%s start upload '%s'", g->base.name, writer_key(w));
    struct cloud_http_req req = {.what = what, .method = "POST", .url = url, .headers = h,
                                 .body = meta, .body_len = strlen(meta),
                                 .max_body = GCS_META_REPLY_MAX};
    struct cloud_http_resp resp;
    rc = gcs_do(g, &req, &resp, e);
    if (rc)
        goto out;
    size_t loc_len = 0;
    const char *loc = cloud_http_header(&resp, "Location", &loc_len);
    if (resp.status != 200 && resp.status != 201)
        rc = gcs_status_error(g, &resp, "upload of", writer_key(w), e);
    else if (!loc || loc_len == 0)
        rc = err_set(e, ERR_IO, "%s: upload of '%s': no session URI in the reply",
                     g->base.name, writer_key(w));
    else if (!(w->session = strndup(loc, loc_len)))
        rc = gcs_nomem(e);
    cloud_http_resp_free(&resp);
out:
    free(url);
    free(meta);
    curl_slist_free_all(h);
    return rc;
}

/* Applies a 308 reply: drops what the server persisted from the front of the buffer. */
static int chunk_persisted(struct gcs_writer *w, const struct cloud_http_resp *r,
                           struct err *e)
{
    size_t vl = 0;
    const char *v = cloud_http_header(r, "Range", &vl);
    uint64_t persisted;
    if (gcs_parse_range(v, vl, &persisted))
        return err_set(e, ERR_IO, "%s: upload of '%s': bad Range header in a 308 reply",
                       w->g->base.name, writer_key(w));
    if (persisted < w->offset || persisted > w->offset + w->len)
        return err_set(e, ERR_IO,
                       "%s: upload of '%s': the store reports %llu bytes persisted, expected "
                       "%llu to %llu", w->g->base.name, writer_key(w),
                       (unsigned long long)persisted, (unsigned long long)w->offset,
                       (unsigned long long)(w->offset + w->len));
    size_t used = (size_t)(persisted - w->offset);
    if (used == 0) {
        if (++w->stalls >= STALLS_MAX)
            return err_set(e, ERR_IO, "%s: upload of '%s': the store keeps no data at offset "
                                      "%llu", w->g->base.name, writer_key(w),
                           (unsigned long long)w->offset);
    } else {
        w->stalls = 0;
    }
    memmove(w->buf, w->buf + used, w->len - used);
    w->len -= used;
    w->offset = persisted;
    return 0;
}

/* PUTs the buffer to the session: a middle chunk (size unknown) or the last one (total known).
 * *done is set when the store finalized the object. */
static int chunk_send(struct gcs_writer *w, bool last, bool *done, struct err *e)
{
    struct gcs_stor *g = w->g;
    uint64_t total = w->offset + w->len;
    char range[96];
    if (!last)
        str_printf(range, sizeof range, "Content-Range: bytes %llu-%llu/*",
                   (unsigned long long)w->offset, (unsigned long long)(total - 1));
    else if (w->len)
        str_printf(range, sizeof range, "Content-Range: bytes %llu-%llu/%llu",
                   (unsigned long long)w->offset, (unsigned long long)(total - 1),
                   (unsigned long long)total);
    else
        str_printf(range, sizeof range, "Content-Range: bytes */%llu", (unsigned long long)total);
    struct curl_slist *h = gcs_headers("Content-Type: application/octet-stream", range);
    if (!h)
        return gcs_nomem(e);
    char what[GCS_WHAT_MAX];
    str_printf(what, sizeof what, "%s upload '%s' at %llu", g->base.name, writer_key(w),
               (unsigned long long)w->offset);
    struct cloud_http_req req = {.what = what, .method = "PUT", .url = w->session, .headers = h,
                                 .body = w->buf ? (const void *)w->buf : "", .body_len = w->len,
                                 .max_body = GCS_META_REPLY_MAX};
    struct cloud_http_resp resp;
    int rc = gcs_do(g, &req, &resp, e);
    curl_slist_free_all(h);
    if (rc)
        return rc;
    *done = false;
    if (resp.status == 308) {
        rc = chunk_persisted(w, &resp, e);
    } else if (resp.status == 200 || resp.status == 201) {
        if (last)
            rc = upload_done(w, &resp, total, e);
        else
            rc = err_set(e, ERR_IO, "%s: upload of '%s': the store finished the object after a "
                                    "middle chunk (multi-chunk resumable uploads unsupported?)",
                         g->base.name, writer_key(w));
        *done = rc == 0;
    } else if (resp.status == 404 || resp.status == 410) {
        rc = err_set(e, ERR_IO, "%s: upload of '%s': the upload session expired or is unknown "
                                "(HTTP %ld)", g->base.name, writer_key(w), resp.status);
    } else {
        rc = gcs_status_error(g, &resp, "upload of", writer_key(w), e);
    }
    cloud_http_resp_free(&resp);
    return rc;
}

/* Sends one full middle chunk (the buffer is full and more data is coming). */
static int chunk_flush(struct gcs_writer *w, struct err *e)
{
    if (!w->session) {
        int rc = session_start(w, e);
        if (rc)
            return rc;
    }
    bool done;
    return chunk_send(w, false, &done, e);
}

static int flush_for_more(void *ctx, struct err *e)
{
    return chunk_flush(ctx, e);
}

static int gcs_write(struct stor_writer *base, const void *data, size_t len, struct err *e)
{
    struct gcs_writer *w = gw_of(base);
    return cloud_part_append(&w->buf, &w->len, &w->cap, w->chunk, data, len, flush_for_more, w, e);
}

static int gcs_commit(struct stor_writer *base, struct err *e)
{
    struct gcs_writer *w = gw_of(base);
    if (!w->session && w->len < w->chunk) {
        if (!w->cls)
            return media_upload(w, e);
        if (w->len <= MULTIPART_MAX)
            return multipart_upload(w, e);
    }
    if (!w->session) {
        int rc = session_start(w, e);
        if (rc)
            return rc;
    }
    for (;;) {
        bool done = false;
        int rc = chunk_send(w, true, &done, e);
        if (rc || done)
            return rc;
    }
}

/* Cancels the resumable session (best effort: one attempt; an unfinished session expires). */
static void gcs_abort(struct stor_writer *base)
{
    struct gcs_writer *w = gw_of(base);
    if (!w->session)
        return;
    char what[GCS_WHAT_MAX];
    str_printf(what, sizeof what, "%s cancel upload '%s'", w->g->base.name, writer_key(w));
    struct cloud_http_req req = {.what = what, .method = "DELETE", .url = w->session,
                                 .no_retry = true, .max_body = GCS_META_REPLY_MAX};
    struct cloud_http_resp resp;
    struct err e = {0};
    if (gcs_do(w->g, &req, &resp, &e) == 0)
        cloud_http_resp_free(&resp);
    free(w->session);
    w->session = NULL;
}

static void gcs_writer_destroy(struct stor_writer *base)
{
    struct gcs_writer *w = gw_of(base);
    free(w->object);
    free(w->buf);
    free(w->session);
    free(w);
}

static const struct stor_writer_ops GCS_WRITER_OPS = {
    .write = gcs_write,
    .commit = gcs_commit,
    .abort = gcs_abort,
    .destroy = gcs_writer_destroy,
};

int gcs_writer_open(struct stor *s, const char *key, const struct stor_write_opts *o,
                    struct stor_writer **out, struct err *e)
{
    struct gcs_stor *g = gcs_of(s);
    struct gcs_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->object = stor_object_name(s, key))) {
        free(w);
        return gcs_nomem(e);
    }
    w->base.ops = &GCS_WRITER_OPS;
    w->g = g;
    w->chunk = gcs_chunk_size(o->part_size);
    w->cls = o->cls == STOR_CLASS_METADATA ? g->class_meta : g->class_data;
    *out = &w->base;
    return 0;
}
