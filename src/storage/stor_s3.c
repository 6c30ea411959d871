/*
 * stor_s3.c - the s3-storage backend (see storage.h): Amazon S3 and S3-compatible stores
 * (MinIO, Ceph, s3rver) over the shared HTTP layer (cloud_http.h) with libcurl's AWS SigV4
 * signing. Owns: addressing (virtual-host style on AWS, path style with s3-endpoint-override),
 * the x-amz-content-sha256 / x-amz-security-token / storage-class headers, streamed writers
 * (one PUT when the object fits in one part, else a multipart upload of min-part-size parts,
 * aborted on failure), readers doing ranged GETs of S3_READ_CHUNK bytes (memory bounded,
 * later chunks pinned to the first one's ETag), HEAD for stat, ListObjectsV2 pages, deletes
 * (single and DeleteObjects batches of <= 1000), and the mapping of S3 error replies to
 * err.h codes with messages naming the storage and the key, never a credential.
 */
#include "storage/stor_s3.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>

#include "storage/cloud_part.h"
#include "storage/s3_creds.h"
#include "util/log.h"
#include "util/strutil.h"

#define S3_DELETE_BATCH 1000
#define S3_SMALL_REPLY (4u << 20)

struct s3 {
    struct stor base;
    struct cloud_http *http;
    char *base_url;    /* "http://127.0.0.1:4568/bucket" or "https://b.s3.r.amazonaws.com" */
    char *bucket;
    char *userpwd;     /* "id:secret" or NULL (anonymous) */
    char *token_hdr;   /* "x-amz-security-token: ..." or NULL */
    char *class_data;  /* storage classes or NULL */
    char *class_meta;
};

/* ---- small helpers ------------------------------------------------------------------------ */

size_t s3_clamp_part(size_t hint)
{
    if (hint < S3_MIN_PART)
        return S3_MIN_PART;
    if ((unsigned long long)hint > S3_MAX_PART)
        return (size_t)S3_MAX_PART;
    return hint;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, mdlen, out);
}

static void md5_base64(const void *data, size_t len, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

static struct curl_slist *hdr_add(struct curl_slist *l, const char *h, bool *nomem)
{
    if (*nomem)
        return l;
    struct curl_slist *n = curl_slist_append(l, h);
    if (!n) {
        *nomem = true;
        return l;
    }
    return n;
}

/* "2026-11-25T23:52:59.000Z" -> ms since the epoch (0 when unparsable). */
static int64_t parse_iso_ms(const char *s)
{
    struct tm tm = {0};
    int ms = 0;
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    const char *dot = strchr(s, '.');
    if (dot)
        ms = atoi(dot + 1) % 1000;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* RFC 7231 date ("Wed, 25 Nov 2026 23:52:59 GMT") -> ms (0 when unparsable). */
static int64_t parse_http_date_ms(const char *s, size_t len)
{
    char buf[64];
    if (!s || len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct tm tm = {0};
    if (!strptime(buf, "%a, %d %b %Y %H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

/* A header's value as a NUL-terminated copy in buf (empty when absent). */
static const char *header_copy(const struct cloud_http_resp *r, const char *name, char *buf,
                               size_t cap)
{
    size_t len = 0;
    const char *v = cloud_http_header(r, name, &len);
    if (!v || len >= cap)
        len = 0;
    if (v && len)
        memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

/* ---- XML ---------------------------------------------------------------------------------- */

static xmlDoc *xml_parse(const char *body, size_t len)
{
    if (!body || len == 0 || len > INT32_MAX)
        return NULL;
    return xmlReadMemory(body, (int)len, NULL, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static bool xml_is(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNode *xml_child(const xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (xml_is(c, name))
            return c;
    return NULL;
}

/* Text of element `name` under n (entities decoded), heap; NULL when absent. */
static char *xml_child_text(const xmlNode *n, const char *name)
{
    xmlNode *c = xml_child(n, name);
    if (!c)
        return NULL;
    xmlChar *t = xmlNodeGetContent(c);
    char *out = strdup(t ? (const char *)t : "");
    xmlFree(t);
    return out;
}

/* Code and Message of an S3 <Error> reply (empty when none). */
static void xml_error(const struct cloud_http_resp *r, char *code, size_t code_cap, char *msg,
                      size_t msg_cap)
{
    code[0] = msg[0] = '\0';
    xmlDoc *d = xml_parse(r->body, r->body_len);
    xmlNode *root = d ? xmlDocGetRootElement(d) : NULL;
    if (xml_is(root, "Error")) {
        char *c = xml_child_text(root, "Code"), *m = xml_child_text(root, "Message");
        str_printf(code, code_cap, "%s", c ? c : "");
        str_printf(msg, msg_cap, "%s", m ? m : "");
        free(c);
        free(m);
    }
    if (d)
        xmlFreeDoc(d);
}

/* ---- requests ----------------------------------------------------------------------------- */

struct s3_call {
    const char *method;
    const char *object;         /* full object name, NULL = the bucket */
    const char *query;          /* sorted, encoded, without '?'; NULL = none */
    struct curl_slist *headers; /* extra headers (caller-owned) */
    const void *body;
    size_t body_len;
    cloud_sink_fn sink;
    cloud_sink_reset_fn sink_reset;
    void *sink_ctx;
};

static char *make_url(const struct s3 *s3, const char *object, const char *query)
{
    char *enc = cloud_url_encode(object ? object : "", true);
    if (!enc)
        return NULL;
    size_t n = strlen(s3->base_url) + strlen(enc) + (query ? strlen(query) : 0) + 4;
    char *url = malloc(n);
    if (url)
        str_printf(url, n, "%s/%s%s%s", s3->base_url, enc, query ? "?" : "", query ? query : "");
    free(enc);
    return url;
}

/* One exchange; 0 with resp filled (any status), or ERR_IO when no answer came. */
static int s3_do(struct s3 *s3, const struct s3_call *c, struct cloud_http_resp *resp,
                 struct err *e)
{
    char *url = make_url(s3, c->object, c->query);
    if (!url)
        return err_set(e, ERR_NOMEM, "%s: out of memory", s3->base.name);
    char hash[65], hdr[120];
    sha256_hex(c->body, c->body_len, hash);
    str_printf(hdr, sizeof hdr, "x-amz-content-sha256: %s", hash);
    bool nomem = false;
    struct curl_slist *h = NULL;
    for (const struct curl_slist *p = c->headers; p; p = p->next)
        h = hdr_add(h, p->data, &nomem);
    h = hdr_add(h, hdr, &nomem);
    if (s3->token_hdr)
        h = hdr_add(h, s3->token_hdr, &nomem);
    char what[600];
    str_printf(what, sizeof what, "%s: %s '%s'", s3->base.name, c->method,
               c->object ? c->object : "");
    int rc;
    if (nomem) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", what);
    } else {
        struct cloud_http_req req = {
            .what = what, .method = c->method, .url = url, .headers = h, .body = c->body,
            .body_len = c->body_len, .max_body = S3_SMALL_REPLY, .sink = c->sink,
            .sink_reset = c->sink_reset, .sink_ctx = c->sink_ctx, .userpwd = s3->userpwd};
        rc = cloud_http_do(s3->http, &req, resp, e);
    }
    curl_slist_free_all(h);
    free(url);
    return rc;
}

/* Maps a non-2xx answer to an error about `key` ("" = the bucket / a listing). */
static int s3_fail(const struct s3 *s3, const char *op, const char *key,
                   const struct cloud_http_resp *r, struct err *e)
{
    char code[128], msg[256];
    xml_error(r, code, sizeof code, msg, sizeof msg);
    const char *name = s3->base.name;
    if (strcmp(code, "NoSuchBucket") == 0)
        return err_set(e, ERR_IO, "%s: bucket %s does not exist", name, s3->bucket);
    if (r->status == 404 && (strcmp(code, "NoSuchKey") == 0 || code[0] == '\0'))
        return err_set(e, ERR_NOT_FOUND, "%s: '%s' not found", name, key);
    if (r->status == 403 || r->status == 401)
        return err_set(e, ERR_IO, "%s: %s '%s': access denied (check credentials)%s%s", name,
                       op, key, code[0] ? ": " : "", code);
    if (code[0])
        return err_set(e, ERR_IO, "%s: %s '%s': HTTP %ld %s: %s", name, op, key, r->status,
                       code, msg);
    return err_set(e, ERR_IO, "%s: %s '%s': HTTP %ld", name, op, key, r->status);
}

static bool ok2xx(long status) { return status >= 200 && status < 300; }

/* A request whose answer must be 2xx (reply body kept in resp for the caller). */
static int s3_call_ok(struct s3 *s3, const struct s3_call *c, const char *op, const char *key,
                      struct cloud_http_resp *resp, struct err *e)
{
    int rc = s3_do(s3, c, resp, e);
    if (rc)
        return rc;
    if (!ok2xx(resp->status)) {
        rc = s3_fail(s3, op, key, resp, e);
        cloud_http_resp_free(resp);
    }
    return rc;
}

static const char *class_for(const struct s3 *s3, enum stor_class cls)
{
    return cls == STOR_CLASS_METADATA ? s3->class_meta : s3->class_data;
}

/* ---- writer ------------------------------------------------------------------------------- */

struct s3_writer {
    struct stor_writer base;
    struct s3 *s3;
    char *object;
    enum stor_class cls;
    size_t part;        /* bytes per part */
    unsigned char *buf; /* current part */
    size_t len, cap;
    char *upload_id;    /* NULL until the multipart upload starts */
    char **etags;
    size_t n_parts, cap_parts;
};

static struct curl_slist *class_header(const struct s3 *s3, enum stor_class cls, bool *nomem)
{
    const char *c = class_for(s3, cls);
    if (!c)
        return NULL;
    char h[128];
    str_printf(h, sizeof h, "x-amz-storage-class: %s", c);
    return hdr_add(NULL, h, nomem);
}

static int put_whole(struct s3 *s3, const char *object, const char *key, enum stor_class cls,
                     const void *data, size_t len, struct err *e)
{
    bool nomem = false;
    struct curl_slist *h = class_header(s3, cls, &nomem);
    if (nomem)
        return err_set(e, ERR_NOMEM, "%s: out of memory", s3->base.name);
    struct s3_call c = {.method = "PUT", .object = object, .headers = h, .body = data,
                        .body_len = len};
    struct cloud_http_resp r;
    int rc = s3_call_ok(s3, &c, "PUT", key, &r, e);
    if (!rc)
        cloud_http_resp_free(&r);
    curl_slist_free_all(h);
    return rc;
}

static int mpu_start(struct s3_writer *w, struct err *e)
{
    bool nomem = false;
    struct curl_slist *h = class_header(w->s3, w->cls, &nomem);
    if (nomem)
        return err_set(e, ERR_NOMEM, "%s: out of memory", w->s3->base.name);
    struct s3_call c = {.method = "POST", .object = w->object, .query = "uploads=", .headers = h};
    struct cloud_http_resp r;
    int rc = s3_call_ok(w->s3, &c, "create multipart upload", w->base.key, &r, e);
    curl_slist_free_all(h);
    if (rc)
        return rc;
    xmlDoc *d = xml_parse(r.body, r.body_len);
    xmlNode *root = d ? xmlDocGetRootElement(d) : NULL;
    w->upload_id = xml_child_text(root, "UploadId");
    if (d)
        xmlFreeDoc(d);
    cloud_http_resp_free(&r);
    if (!w->upload_id || !*w->upload_id) {
        free(w->upload_id);
        w->upload_id = NULL;
        return err_set(e, ERR_IO, "%s: create multipart upload '%s': no UploadId in the reply",
                       w->s3->base.name, w->base.key);
    }
    return 0;
}

static char *upload_query(const char *upload_id, size_t part_no)
{
    char *id = cloud_url_encode(upload_id, false);
    if (!id)
        return NULL;
    size_t n = strlen(id) + 64;
    char *q = malloc(n);
    if (q) {
        if (part_no)
            str_printf(q, n, "partNumber=%zu&uploadId=%s", part_no, id);
        else
            str_printf(q, n, "uploadId=%s", id);
    }
    free(id);
    return q;
}

/* Uploads the buffered bytes as the next part and empties the buffer. */
static int mpu_part(struct s3_writer *w, struct err *e)
{
    if (!w->upload_id) {
        int rc = mpu_start(w, e);
        if (rc)
            return rc;
    }
    if (w->n_parts == w->cap_parts) {
        size_t nc = w->cap_parts ? w->cap_parts * 2 : 16;
        char **ne = realloc(w->etags, nc * sizeof *ne);
        if (!ne)
            return err_set(e, ERR_NOMEM, "%s: out of memory", w->s3->base.name);
        w->etags = ne;
        w->cap_parts = nc;
    }
    char *q = upload_query(w->upload_id, w->n_parts + 1);
    if (!q)
        return err_set(e, ERR_NOMEM, "%s: out of memory", w->s3->base.name);
    struct s3_call c = {.method = "PUT", .object = w->object, .query = q, .body = w->buf,
                        .body_len = w->len};
    struct cloud_http_resp r;
    int rc = s3_call_ok(w->s3, &c, "upload part", w->base.key, &r, e);
    free(q);
    if (rc)
        return rc;
    char etag[256];
    header_copy(&r, "ETag", etag, sizeof etag);
    cloud_http_resp_free(&r);
    if (!etag[0])
        return err_set(e, ERR_IO, "%s: upload part %zu of '%s': no ETag in the reply",
                       w->s3->base.name, w->n_parts + 1, w->base.key);
    w->etags[w->n_parts] = strdup(etag);
    if (!w->etags[w->n_parts])
        return err_set(e, ERR_NOMEM, "%s: out of memory", w->s3->base.name);
    w->n_parts++;
    w->len = 0;
    return 0;
}

static int mpu_part_for_more(void *ctx, struct err *e)
{
    return mpu_part(ctx, e);
}

static int s3w_write(struct stor_writer *base, const void *data, size_t len, struct err *e)
{
    struct s3_writer *w = (struct s3_writer *)base;
    return cloud_part_append(&w->buf, &w->len, &w->cap, w->part, data, len, mpu_part_for_more, w, e);
}

static int mpu_complete(struct s3_writer *w, struct err *e)
{
    size_t cap = 128 + w->n_parts * 320, n = 0;
    char *xml = malloc(cap);
    if (!xml)
        return err_set(e, ERR_NOMEM, "%s: out of memory", w->s3->base.name);
    n += (size_t)str_printf(xml + n, cap - n, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < w->n_parts; i++)
        n += (size_t)str_printf(xml + n, cap - n,
                                "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1,
                                w->etags[i]);
    n += (size_t)str_printf(xml + n, cap - n, "</CompleteMultipartUpload>");
    char *q = upload_query(w->upload_id, 0);
    bool nomem = !q;
    struct curl_slist *h = hdr_add(NULL, "Content-Type: application/xml", &nomem);
    int rc;
    if (nomem) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", w->s3->base.name);
    } else {
        struct s3_call c = {.method = "POST", .object = w->object, .query = q, .headers = h,
                            .body = xml, .body_len = n};
        struct cloud_http_resp r;
        rc = s3_call_ok(w->s3, &c, "complete multipart upload", w->base.key, &r, e);
        if (!rc) {
            /* S3 may answer 200 and report the failure in the body. */
            char code[128], msg[256];
            xml_error(&r, code, sizeof code, msg, sizeof msg);
            if (code[0])
                rc = err_set(e, ERR_IO, "%s: complete multipart upload '%s': %s: %s",
                             w->s3->base.name, w->base.key, code, msg);
            cloud_http_resp_free(&r);
        }
    }
    curl_slist_free_all(h);
    free(q);
    free(xml);
    return rc;
}

static int s3w_commit(struct stor_writer *base, struct err *e)
{
    struct s3_writer *w = (struct s3_writer *)base;
    if (!w->upload_id)
        return put_whole(w->s3, w->object, w->base.key, w->cls, w->buf, w->len, e);
    if (w->len > 0) {
        int rc = mpu_part(w, e);
        if (rc)
            return rc;
    }
    int rc = mpu_complete(w, e);
    if (!rc) {
        free(w->upload_id);
        w->upload_id = NULL; /* nothing left to abort */
    }
    return rc;
}

static void s3w_abort(struct stor_writer *base)
{
    struct s3_writer *w = (struct s3_writer *)base;
    if (!w->upload_id)
        return;
    char *q = upload_query(w->upload_id, 0);
    if (q) {
        struct s3_call c = {.method = "DELETE", .object = w->object, .query = q};
        struct cloud_http_resp r;
        struct err e = {0};
        if (s3_call_ok(w->s3, &c, "abort multipart upload", w->base.key, &r, &e) == 0)
            cloud_http_resp_free(&r);
        else
            log_write(LOG_WARN, "storage", "%s", e.msg);
        free(q);
    }
    free(w->upload_id);
    w->upload_id = NULL;
}

static void s3w_destroy(struct stor_writer *base)
{
    struct s3_writer *w = (struct s3_writer *)base;
    for (size_t i = 0; i < w->n_parts; i++)
        free(w->etags[i]);
    free(w->etags);
    free(w->upload_id);
    free(w->buf);
    free(w->object);
    free(w);
}

static const struct stor_writer_ops s3_writer_ops = {s3w_write, s3w_commit, s3w_abort,
                                                     s3w_destroy};

static int s3_writer_open(struct stor *s, const char *key, const struct stor_write_opts *o,
                          struct stor_writer **out, struct err *e)
{
    struct s3 *s3 = (struct s3 *)s;
    struct s3_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->object = stor_object_name(s, key))) {
        free(w);
        return err_set(e, ERR_NOMEM, "%s: out of memory", s->name);
    }
    w->base.ops = &s3_writer_ops;
    w->s3 = s3;
    w->cls = o->cls;
    w->part = s3_clamp_part(o->part_size);
    *out = &w->base;
    return 0;
}

/* ---- reader ------------------------------------------------------------------------------- */

struct s3_reader {
    struct stor_reader base;
    struct s3 *s3;
    char *object;
    char etag[256];
    uint64_t pos, end; /* next byte to fetch, end of the range (exclusive) */
    unsigned char *buf;
    size_t len, off, cap, want; /* buffered bytes, consumed, allocated, expected */
};

static int reader_sink(void *ctx, const void *data, size_t len, struct err *e)
{
    struct s3_reader *r = ctx;
    if (r->len + len > S3_READ_CHUNK)
        return err_set(e, ERR_IO, "%s: GET '%s': more bytes than the range asked for",
                       r->s3->base.name, r->base.key ? r->base.key : r->object);
    if (r->len + len > r->cap) {
        size_t nc = r->cap ? r->cap : (r->want && r->want < 65536 ? r->want : 65536);
        while (nc < r->len + len)
            nc *= 2;
        if (nc > S3_READ_CHUNK)
            nc = S3_READ_CHUNK;
        unsigned char *nb = realloc(r->buf, nc);
        if (!nb)
            return err_set(e, ERR_NOMEM, "%s: out of memory", r->s3->base.name);
        r->buf = nb;
        r->cap = nc;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

static void reader_sink_reset(void *ctx) { ((struct s3_reader *)ctx)->len = 0; }

static int s3_head(struct s3 *s3, const char *key, uint64_t *size, int64_t *mtime_ms,
                   char *etag, size_t etag_cap, struct err *e);

/* Fetches [r->pos, r->pos + n) into the buffer, from the version whose ETag the reader holds
 * (If-Match, and the reply's ETag compared for stores that ignore If-Match). 1 = the object
 * changed (nothing consumed), 0 = done, < 0 = error. */
static int reader_fetch(struct s3_reader *r, uint64_t n, const char *key, struct err *e)
{
    char range[96], ifmatch[300];
    str_printf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)r->pos,
               (unsigned long long)(r->pos + n - 1));
    bool nomem = false;
    struct curl_slist *h = hdr_add(NULL, range, &nomem);
    if (r->etag[0]) {
        str_printf(ifmatch, sizeof ifmatch, "If-Match: %s", r->etag);
        h = hdr_add(h, ifmatch, &nomem);
    }
    if (nomem)
        return err_set(e, ERR_NOMEM, "%s: out of memory", r->s3->base.name);
    r->len = r->off = 0;
    r->want = (size_t)n;
    struct s3_call c = {.method = "GET", .object = r->object, .headers = h,
                        .sink = reader_sink, .sink_reset = reader_sink_reset, .sink_ctx = r};
    struct cloud_http_resp resp;
    int rc = s3_do(r->s3, &c, &resp, e);
    curl_slist_free_all(h);
    if (rc)
        return rc;
    char etag[256];
    header_copy(&resp, "ETag", etag, sizeof etag);
    /* 412: If-Match failed; 416: the object shrank under us (a store ignoring If-Match);
     * another ETag: replaced (the same). */
    if (resp.status == 412 || resp.status == 416 ||
        (ok2xx(resp.status) && r->etag[0] && etag[0] && strcmp(etag, r->etag) != 0)) {
        rc = 1;
    } else if (resp.status == 206 || (resp.status == 200 && r->pos == 0)) {
        if (r->len > n)
            r->len = (size_t)n;
        if (r->len == 0)
            rc = err_set(e, ERR_IO, "%s: GET '%s': empty reply", r->s3->base.name, key);
        r->pos += r->len;
    } else if (ok2xx(resp.status)) {
        rc = err_set(e, ERR_IO, "%s: GET '%s': HTTP %ld to a ranged request", r->s3->base.name,
                     key, resp.status);
    } else {
        rc = s3_fail(r->s3, "GET", key, &resp, e);
    }
    cloud_http_resp_free(&resp);
    return rc;
}

static uint64_t next_chunk(const struct s3_reader *r)
{
    uint64_t left = r->end - r->pos;
    return left < S3_READ_CHUNK ? left : S3_READ_CHUNK;
}

static int s3r_read(struct stor_reader *base, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct s3_reader *r = (struct s3_reader *)base;
    if (r->off == r->len) {
        if (r->pos >= r->end)
            return 0;
        int rc = reader_fetch(r, next_chunk(r), base->key, e);
        if (rc > 0)
            rc = err_set(e, ERR_IO, "%s: '%s' changed while being read", r->s3->base.name,
                         base->key);
        if (rc)
            return rc;
    }
    size_t n = r->len - r->off < cap ? r->len - r->off : cap;
    memcpy(buf, r->buf + r->off, n);
    r->off += n;
    *got = n;
    return 0;
}

static void s3r_destroy(struct stor_reader *base)
{
    struct s3_reader *r = (struct s3_reader *)base;
    free(r->buf);
    free(r->object);
    free(r);
}

static const struct stor_reader_ops s3_reader_ops = {s3r_read, s3r_destroy};

/* HEAD for the size and version, then the first chunk of that version (so that a small
 * object replaced meanwhile is read whole, old or new, never mixed). */
static int s3_reader_open(struct stor *s, const char *key, uint64_t offset, int64_t length,
                          struct stor_reader **out, struct err *e)
{
    struct s3 *s3 = (struct s3 *)s;
    struct s3_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->object = stor_object_name(s, key))) {
        free(r);
        return err_set(e, ERR_NOMEM, "%s: out of memory", s->name);
    }
    r->base.ops = &s3_reader_ops;
    r->s3 = s3;
    int rc = 1;
    for (int attempt = 0; attempt < 5 && rc > 0; attempt++) {
        rc = s3_head(s3, key, &r->base.size, NULL, r->etag, sizeof r->etag, e);
        if (rc)
            break;
        uint64_t size = r->base.size, start = offset < size ? offset : size;
        r->pos = start;
        r->end = length < 0 || (uint64_t)length > size - start ? size : start + (uint64_t)length;
        if (r->pos >= r->end)
            break; /* an empty range */
        rc = reader_fetch(r, next_chunk(r), key, e);
    }
    if (rc > 0)
        rc = err_set(e, ERR_IO, "%s: '%s' keeps changing while being opened", s->name, key);
    if (rc) {
        s3r_destroy(&r->base);
        return rc;
    }
    *out = &r->base;
    return 0;
}

/* ---- stat, delete ------------------------------------------------------------------------- */

static int s3_head(struct s3 *s3, const char *key, uint64_t *size, int64_t *mtime_ms,
                   char *etag, size_t etag_cap, struct err *e)
{
    char *object = stor_object_name(&s3->base, key);
    if (!object)
        return err_set(e, ERR_NOMEM, "%s: out of memory", s3->base.name);
    struct s3_call c = {.method = "HEAD", .object = object};
    struct cloud_http_resp r;
    int rc = s3_do(s3, &c, &r, e);
    free(object);
    if (rc)
        return rc;
    if (!ok2xx(r.status)) {
        rc = s3_fail(s3, "HEAD", key, &r, e);
        cloud_http_resp_free(&r);
        /* A HEAD reply has no body to tell a missing key from a missing bucket: ask. */
        if (rc == ERR_NOT_FOUND) {
            struct s3_call b = {.method = "HEAD"};
            if (s3_do(s3, &b, &r, &(struct err){0}) == 0) {
                if (r.status == 404)
                    rc = err_set(e, ERR_IO, "%s: bucket %s does not exist", s3->base.name,
                                 s3->bucket);
                cloud_http_resp_free(&r);
            }
        }
        return rc;
    }
    char v[64];
    if (size)
        *size = strtoull(header_copy(&r, "Content-Length", v, sizeof v), NULL, 10);
    if (mtime_ms) {
        size_t len = 0;
        const char *lm = cloud_http_header(&r, "Last-Modified", &len);
        *mtime_ms = parse_http_date_ms(lm, len);
    }
    if (etag)
        header_copy(&r, "ETag", etag, etag_cap);
    cloud_http_resp_free(&r);
    return 0;
}

static int s3_stat(struct stor *s, const char *key, uint64_t *size, int64_t *mtime_ms,
                   struct err *e)
{
    return s3_head((struct s3 *)s, key, size, mtime_ms, NULL, 0, e);
}

static int s3_del(struct stor *s, const char *key, struct err *e)
{
    struct s3 *s3 = (struct s3 *)s;
    char *object = stor_object_name(s, key);
    if (!object)
        return err_set(e, ERR_NOMEM, "%s: out of memory", s->name);
    struct s3_call c = {.method = "DELETE", .object = object};
    struct cloud_http_resp r;
    int rc = s3_do(s3, &c, &r, e);
    free(object);
    if (rc)
        return rc;
    if (!ok2xx(r.status)) {
        rc = s3_fail(s3, "DELETE", key, &r, e);
        if (rc == ERR_NOT_FOUND) /* an absent key is not an error */
            rc = 0;
    }
    cloud_http_resp_free(&r);
    return rc;
}

/* ---- listing ------------------------------------------------------------------------------ */

/* Appends "&name=value" (value URL-encoded) to q. */
static void query_add(char *q, size_t cap, const char *name, const char *value)
{
    char *enc = cloud_url_encode(value, false);
    size_t n = strlen(q);
    if (enc)
        str_printf(q + n, cap - n, "%s%s=%s", n ? "&" : "", name, enc);
    free(enc);
}

static char *full_prefix(const struct stor *s, const char *prefix)
{
    if (!s->root[0])
        return strdup(prefix ? prefix : "");
    size_t n = strlen(s->root) + strlen(prefix ? prefix : "") + 2;
    char *p = malloc(n);
    if (p)
        str_printf(p, n, "%s/%s", s->root, prefix ? prefix : "");
    return p;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct stor_entry *)a)->key, ((const struct stor_entry *)b)->key);
}

/* U+10FFFF in UTF-8: sorts after any character a key under a prefix can continue with. */
#define S3_MAX_CHAR "\xf4\x8f\xbf\xbf"

/* One raw server page: the objects under `prefix` after `after`, sorted (recursive listing;
 * "directories" are grouped here, see s3_list_page). */
static int list_raw(struct s3 *s3, const char *prefix, const char *after, const char *what,
                    struct stor_page *raw, bool *truncated, struct err *e)
{
    size_t cap = 3 * (strlen(prefix) + (after ? strlen(after) : 0)) + 200;
    char *q = calloc(1, cap);
    if (!q)
        return err_set(e, ERR_NOMEM, "%s: out of memory", s3->base.name);
    /* Parameters in canonical (sorted) order, as SigV4 wants them. */
    query_add(q, cap, "list-type", "2");
    query_add(q, cap, "max-keys", "1000");
    query_add(q, cap, "prefix", prefix);
    if (after && *after && strcmp(after, prefix) >= 0)
        query_add(q, cap, "start-after", after);
    struct s3_call c = {.method = "GET", .query = q};
    struct cloud_http_resp r;
    int rc = s3_call_ok(s3, &c, "list", what, &r, e);
    free(q);
    if (rc)
        return rc;
    xmlDoc *d = xml_parse(r.body, r.body_len);
    xmlNode *root = d ? xmlDocGetRootElement(d) : NULL;
    if (!xml_is(root, "ListBucketResult")) {
        rc = err_set(e, ERR_IO, "%s: list '%s': unreadable reply", s3->base.name, what);
    } else {
        for (xmlNode *n = root->children; n && !rc; n = n->next) {
            if (!xml_is(n, "Contents"))
                continue;
            char *name = xml_child_text(n, "Key");
            char *sz = xml_child_text(n, "Size"), *lm = xml_child_text(n, "LastModified");
            if (name)
                rc = stor_page_add(raw, name, false, sz ? strtoull(sz, NULL, 10) : 0,
                                   parse_iso_ms(lm), e);
            free(name);
            free(sz);
            free(lm);
        }
        char *trunc = xml_child_text(root, "IsTruncated");
        *truncated = trunc && strcmp(trunc, "true") == 0;
        free(trunc);
        if (!rc && raw->n > 1)
            qsort(raw->entries, raw->n, sizeof *raw->entries, cmp_entry);
    }
    if (d)
        xmlFreeDoc(d);
    cloud_http_resp_free(&r);
    return rc;
}

/* Adds the object `name` (full object name) to the page, or its "directory" when the
 * listing has a delimiter and the key goes on past the prefix. *skip_to gets the start-after
 * that jumps over the rest of that directory (heap), NULL otherwise. */
static int group_entry(struct stor *s, const struct stor_list_opts *o, size_t full_prefix_len,
                       const struct stor_entry *obj, struct stor_page *out, char **skip_to,
                       struct err *e)
{
    *skip_to = NULL;
    const char *key = stor_key_of_object(s, obj->key);
    if (!key || !*key || stor_key_valid(key, &(struct err){0}) != 0)
        return 0; /* not an object of ours (outside the root, or a name we never write) */
    const char *slash = o->delimiter ? strchr(obj->key + full_prefix_len, '/') : NULL;
    if (!slash)
        return stor_page_add(out, key, false, obj->size, obj->mtime_ms, e);
    size_t dir_len = (size_t)(slash - obj->key) + 1; /* full name up to and with the '/' */
    size_t key_off = (size_t)(key - obj->key);
    char *dir = strndup(key, dir_len - key_off);
    char *skip = malloc(dir_len + sizeof S3_MAX_CHAR);
    if (!dir || !skip) {
        free(dir);
        free(skip);
        return err_set(e, ERR_NOMEM, "%s: out of memory", s->name);
    }
    memcpy(skip, obj->key, dir_len);
    memcpy(skip + dir_len, S3_MAX_CHAR, sizeof S3_MAX_CHAR);
    int rc = 0;
    /* Not when start-after names this very directory (S3: nothing under it comes again). */
    bool is_start = o->start_after && strcmp(o->start_after, dir) == 0;
    if (!is_start && (out->n == 0 || strcmp(out->entries[out->n - 1].key, dir) != 0))
        rc = stor_page_add(out, dir, true, 0, 0, e);
    free(dir);
    if (rc)
        free(skip);
    else
        *skip_to = skip;
    return rc;
}

/* Listing with the grouping into "directories" done here rather than by the server (s3rver
 * and some other S3-compatible stores report common prefixes only for objects one level
 * down); the token is the object name to resume after (S3 StartAfter). */
static int s3_list_page(struct stor *s, const struct stor_list_opts *o, const char *token,
                        struct stor_page *out, struct err *e)
{
    struct s3 *s3 = (struct s3 *)s;
    char *prefix = full_prefix(s, o->prefix);
    char *after = token ? strdup(token) : o->start_after ? full_prefix(s, o->start_after) : NULL;
    if (!prefix || ((token || o->start_after) && !after)) {
        free(prefix);
        free(after);
        return err_set(e, ERR_NOMEM, "%s: out of memory", s->name);
    }
    size_t plen = strlen(prefix);
    int rc = 0;
    bool more = true;
    while (!rc && more && out->n < o->page_size) {
        struct stor_page raw = {0};
        bool truncated = false;
        rc = list_raw(s3, prefix, after, o->prefix, &raw, &truncated, e);
        more = truncated;
        for (size_t i = 0; !rc && i < raw.n; i++) {
            if (out->n == o->page_size) {
                more = true;
                break;
            }
            char *skip = NULL;
            rc = group_entry(s, o, plen, &raw.entries[i], out, &skip, e);
            if (rc)
                break;
            free(after);
            after = skip ? skip : strdup(raw.entries[i].key);
            if (!after)
                rc = err_set(e, ERR_NOMEM, "%s: out of memory", s->name);
            if (skip) { /* jump over the rest of that directory with a new request */
                more = true;
                break;
            }
        }
        stor_page_free(&raw);
    }
    if (!rc && more && out->n > 0) {
        /* Is there anything after? A cheap look saves the caller an empty last page. */
        out->next_token = after;
        after = NULL;
        struct stor_page peek = {0};
        bool t2 = false;
        rc = list_raw(s3, prefix, out->next_token, o->prefix, &peek, &t2, e);
        if (!rc && peek.n == 0) {
            free(out->next_token);
            out->next_token = NULL;
        }
        stor_page_free(&peek);
    }
    free(after);
    free(prefix);
    return rc;
}

/* ---- delete-prefix ------------------------------------------------------------------------ */

/* Appends text with the XML special characters escaped. */
static size_t xml_escape_into(char *out, size_t cap, size_t n, const char *s)
{
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default: break;
        }
        if (rep)
            n += (size_t)str_printf(out + n, cap - n, "%s", rep);
        else if (n + 1 < cap) {
            out[n++] = *s;
            out[n] = '\0';
        }
    }
    return n;
}

/* DeleteObjects for the objects of one page (<= 1000). */
static int delete_batch(struct s3 *s3, const struct stor_page *p, const char *prefix,
                        struct err *e)
{
    size_t cap = 128;
    for (size_t i = 0; i < p->n; i++)
        cap += 6 * (strlen(s3->base.root) + strlen(p->entries[i].key) + 1) + 40;
    char *xml = malloc(cap);
    if (!xml)
        return err_set(e, ERR_NOMEM, "%s: out of memory", s3->base.name);
    size_t n = (size_t)str_printf(xml, cap, "<Delete><Quiet>true</Quiet>");
    for (size_t i = 0; i < p->n; i++) {
        char *object = stor_object_name(&s3->base, p->entries[i].key);
        if (!object) {
            free(xml);
            return err_set(e, ERR_NOMEM, "%s: out of memory", s3->base.name);
        }
        n += (size_t)str_printf(xml + n, cap - n, "<Object><Key>");
        n = xml_escape_into(xml, cap, n, object);
        n += (size_t)str_printf(xml + n, cap - n, "</Key></Object>");
        free(object);
    }
    n += (size_t)str_printf(xml + n, cap - n, "</Delete>");
    char md5[32], hmd5[64];
    md5_base64(xml, n, md5);
    str_printf(hmd5, sizeof hmd5, "Content-MD5: %s", md5);
    bool nomem = false;
    struct curl_slist *h = hdr_add(NULL, hmd5, &nomem);
    h = hdr_add(h, "Content-Type: application/xml", &nomem);
    int rc;
    if (nomem) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", s3->base.name);
    } else {
        struct s3_call c = {.method = "POST", .query = "delete=", .headers = h, .body = xml,
                            .body_len = n};
        struct cloud_http_resp r;
        rc = s3_call_ok(s3, &c, "delete objects under", prefix, &r, e);
        if (!rc) {
            xmlDoc *d = xml_parse(r.body, r.body_len);
            xmlNode *root = d ? xmlDocGetRootElement(d) : NULL;
            xmlNode *err_el = xml_child(root, "Error");
            if (err_el) {
                char *k = xml_child_text(err_el, "Key"), *code = xml_child_text(err_el, "Code");
                rc = err_set(e, ERR_IO, "%s: delete '%s': %s", s3->base.name, k ? k : "?",
                             code ? code : "error");
                free(k);
                free(code);
            }
            if (d)
                xmlFreeDoc(d);
            cloud_http_resp_free(&r);
        }
    }
    curl_slist_free_all(h);
    free(xml);
    return rc;
}

static int s3_delete_prefix(struct stor *s, const char *prefix, struct err *e)
{
    struct s3 *s3 = (struct s3 *)s;
    char *after = NULL;
    int rc = 0;
    for (;;) {
        struct stor_list_opts o = {.prefix = prefix, .start_after = after,
                                   .page_size = S3_DELETE_BATCH};
        struct stor_page p = {0};
        rc = s3_list_page(s, &o, NULL, &p, e);
        if (!rc && p.n > 0)
            rc = delete_batch(s3, &p, prefix, e);
        bool more = !rc && p.n > 0 && p.next_token;
        if (more) {
            free(after);
            after = strdup(p.entries[p.n - 1].key);
            if (!after)
                rc = err_set(e, ERR_NOMEM, "%s: out of memory", s->name);
        }
        stor_page_free(&p);
        if (rc || !more)
            break;
    }
    free(after);
    return rc;
}

/* ---- handle ------------------------------------------------------------------------------- */

static void s3_close(struct stor *s)
{
    struct s3 *s3 = (struct s3 *)s;
    cloud_http_free(s3->http);
    free(s3->base_url);
    free(s3->bucket);
    if (s3->userpwd) {
        memset(s3->userpwd, 0, strlen(s3->userpwd));
        free(s3->userpwd);
    }
    if (s3->token_hdr) {
        memset(s3->token_hdr, 0, strlen(s3->token_hdr));
        free(s3->token_hdr);
    }
    free(s3->class_data);
    free(s3->class_meta);
    free(s3);
}

static const struct stor_ops s3_ops = {
    .scheme = "s3",
    .close = s3_close,
    .writer_open = s3_writer_open,
    .reader_open = s3_reader_open,
    .stat = s3_stat,
    .list_page = s3_list_page,
    .del = s3_del,
    .delete_prefix = s3_delete_prefix,
    .put = NULL,
};

/* Base URL: path style under an endpoint override (or for bucket names with dots), else
 * virtual-host style on AWS. */
static char *make_base_url(const char *endpoint, const char *bucket, const char *region)
{
    size_t n = (endpoint ? strlen(endpoint) : 0) + strlen(bucket) * 3 + strlen(region) + 64;
    char *url = malloc(n);
    if (!url)
        return NULL;
    char *b = cloud_url_encode(bucket, false);
    if (!b) {
        free(url);
        return NULL;
    }
    if (endpoint && *endpoint) {
        const char *scheme = strstr(endpoint, "://") ? "" : "https://";
        size_t el = strlen(endpoint);
        while (el > 0 && endpoint[el - 1] == '/')
            el--;
        str_printf(url, n, "%s%.*s/%s", scheme, (int)el, endpoint, b);
    } else if (strchr(bucket, '.')) {
        str_printf(url, n, "https://s3.%s.amazonaws.com/%s", region, b);
    } else {
        str_printf(url, n, "https://%s.s3.%s.amazonaws.com", b, region);
    }
    free(b);
    return url;
}

static int s3_setup(struct s3 *s3, const struct cfg_s3_storage *cfg,
                    const struct cloud_retry *retry, struct err *e)
{
    struct s3_creds cr;
    int rc = s3_creds_resolve(cfg->access_key_id, cfg->secret_access_key, cfg->s3_profile, &cr,
                              e);
    if (rc)
        return err_prefix(e, "%s", s3->base.name);
    const char *region = cfg->s3_region && *cfg->s3_region ? cfg->s3_region
                         : cr.region && *cr.region      ? cr.region
                                                        : "us-east-1";
    char sigv4[160];
    str_printf(sigv4, sizeof sigv4, "aws:amz:%s:s3", region);
    struct cloud_http_opts ho = {0};
    if (retry)
        ho.retry = *retry;
    else
        cloud_retry_default(&ho.retry);
    ho.max_connections = cfg->max_async_connections.set && cfg->max_async_connections.v > 0
                             ? (int)cfg->max_async_connections.v : 0;
    ho.aws_sigv4 = cr.key_id ? sigv4 : NULL;
    s3->bucket = strdup(cfg->bucket);
    s3->base_url = make_base_url(cfg->s3_endpoint_override, cfg->bucket, region);
    s3->class_data = cfg->storage_class && cfg->storage_class->data && *cfg->storage_class->data
                         ? strdup(cfg->storage_class->data) : NULL;
    s3->class_meta = cfg->storage_class && cfg->storage_class->metadata &&
                             *cfg->storage_class->metadata
                         ? strdup(cfg->storage_class->metadata) : NULL;
    if (cr.key_id) {
        size_t n = strlen(cr.key_id) + strlen(cr.secret) + 2;
        s3->userpwd = malloc(n);
        if (s3->userpwd)
            str_printf(s3->userpwd, n, "%s:%s", cr.key_id, cr.secret);
    }
    if (cr.session_token) {
        size_t n = strlen(cr.session_token) + 32;
        s3->token_hdr = malloc(n);
        if (s3->token_hdr)
            str_printf(s3->token_hdr, n, "x-amz-security-token: %s", cr.session_token);
    }
    bool nomem = !s3->bucket || !s3->base_url || (cr.key_id && !s3->userpwd) ||
                 (cr.session_token && !s3->token_hdr);
    log_write(LOG_DEBUG, "storage", "%s: credentials from %s, region %s", s3->base.name,
              cr.source, region);
    s3_creds_free(&cr);
    if (nomem)
        return err_set(e, ERR_NOMEM, "%s: out of memory", s3->base.name);
    return cloud_http_new(&ho, &s3->http, e);
}

int stor_s3_open_with(const struct cfg_s3_storage *cfg, const struct cloud_retry *retry,
                      struct stor **out, struct err *e)
{
    *out = NULL;
    if (!cfg || !cfg->bucket || !*cfg->bucket)
        return err_set(e, ERR_INVALID, "s3-storage: bucket is required");
    char *prefix = stor_prefix_normalize(cfg->path);
    if (!prefix)
        return err_set(e, ERR_NOMEM, "s3-storage: out of memory");
    size_t nn = strlen(cfg->bucket) + strlen(prefix) + 8;
    char *name = malloc(nn);
    struct s3 *s3 = calloc(1, sizeof *s3);
    if (!name || !s3) {
        free(prefix);
        free(name);
        free(s3);
        return err_set(e, ERR_NOMEM, "s3-storage: out of memory");
    }
    str_printf(name, nn, "s3://%s%s%s", cfg->bucket, *prefix ? "/" : "", prefix);
    size_t part = cfg->min_part_size.set && cfg->min_part_size.v > 0
                      ? (size_t)cfg->min_part_size.v : S3_DEFAULT_PART;
    int rc = stor_base_init(&s3->base, &s3_ops, STOR_S3, prefix, name, s3_clamp_part(part), e);
    free(prefix);
    free(name);
    if (rc) {
        free(s3);
        return rc;
    }
    rc = s3_setup(s3, cfg, retry, e);
    if (rc) {
        stor_close(&s3->base);
        return rc;
    }
    *out = &s3->base;
    return 0;
}

int stor_s3_open(const struct cfg_s3_storage *cfg, struct stor **out, struct err *e)
{
    return stor_s3_open_with(cfg, NULL, out, e);
}
