/*
 * stor_azure.c - the Azure Blob Storage backend (azure-storage): objects are block blobs in
 * one container, named <path prefix>/<key>, reached at <endpoint>/<container>/<blob> (the
 * endpoint may carry the account as a path, as Azurite's http://127.0.0.1:10000/devstoreaccount1
 * does).
 *
 *   - writes: a part buffer of min-part-size (>= 1 MiB); an object that fits one part goes up
 *     with one Put Blob at commit; a larger one as Put Block per full part (block ids unique
 *     per writer, so concurrent writers of one key never mix blocks) and a Put Block List at
 *     commit. Uncommitted blocks are invisible and expire on their own, so abort just drops
 *     the buffer. x-ms-access-tier carries storage-class.data / .metadata;
 *   - reads: ranged Get Blob in chunks of at most AZ_READ_CHUNK bytes; the first answer gives
 *     the size (Content-Range) and the ETag, so a small object is read in one atomic request,
 *     and later chunks carry If-Match, so a blob replaced mid-read fails instead of mixing
 *     (Get Blob Properties only for empty ranges and offsets past the end); stat is Get Blob
 *     Properties;
 *   - listing: List Blobs (prefix, delimiter "/", marker, maxresults), start_after emulated by
 *     skipping keys at or before it (a directory entry that holds start_after is probed);
 *   - delete: Delete Blob (snapshots included), absent = done; delete-by-prefix is the generic
 *     list-and-delete of storage.c.
 *
 * Every request goes through cloud_http (retries, connection reuse) with a per-attempt signer
 * adding x-ms-date, x-ms-version and the Shared Key or bearer Authorization (azure_auth.h).
 * Error replies are mapped from their x-ms-error-code / <Code>: BlobNotFound -> ERR_NOT_FOUND,
 * ContainerNotFound / AuthenticationFailed -> ERR_IO naming the container / the credential to
 * check; no secret ever reaches a message.
 */
#include "storage/azure_stor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>

#include "asb/asb.h"
#include "storage/azure_auth.h"
#include "storage/cloud_part.h"
#include "util/strutil.h"

#define MIB ((size_t)1 << 20)
#define AZ_MIN_BLOCK MIB                 /* ABS: min-part-size >= 1 MiB */
#define AZ_MAX_BLOCK ((size_t)4000 * MIB) /* Put Block limit */
#define AZ_MAX_BLOCKS 50000              /* blocks in one blob */
#define AZ_DEFAULT_PART (50 * MIB)       /* ABS 3.6+ default min-part-size */
#define AZ_READ_CHUNK (8 * MIB)          /* bytes per ranged Get Blob */
#define AZ_LIST_REPLY_MAX (64u << 20)
#define AZ_ERROR_REPLY_MAX (1u << 20)
#define AZ_BLOCK_ID_RAW 24               /* "<16 hex>-<7 digits>" before base64 */
#define AZ_WHAT_MAX (STOR_KEY_MAX + 256)

enum az_auth { AZ_AUTH_NONE, AZ_AUTH_SHARED_KEY, AZ_AUTH_AAD };

struct az_stor {
    struct stor base;
    struct cloud_http *http;
    enum az_auth auth;
    char *account;              /* Shared Key account name */
    unsigned char *key;         /* decoded account key */
    size_t key_len;
    struct azure_token_src *aad;
    char *container;
    char *container_url;        /* <endpoint>/<container> */
    char *tier[2];              /* x-ms-access-tier per stor_class; NULL = none */
};

/* ---- requests ----------------------------------------------------------------------------- */

static struct curl_slist *hdr_add(struct curl_slist **l, const char *line, bool *nomem)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n)
        *nomem = true;
    else
        *l = n;
    return n;
}

/* Adds x-ms-date, x-ms-version and Authorization for this attempt. */
static int az_sign_attempt(struct az_stor *s, const char *method, const char *url,
                           const struct curl_slist *headers, size_t body_len,
                           struct curl_slist **extra, struct err *e)
{
    char date[64], line[96];
    bool nomem = false;
    azure_http_date(time(NULL), date, sizeof date);
    str_printf(line, sizeof line, "x-ms-date: %s", date);
    hdr_add(extra, line, &nomem);
    hdr_add(extra, "x-ms-version: " AZURE_API_VERSION, &nomem);
    if (nomem)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (s->auth == AZ_AUTH_AAD) {
        char *auth;
        int rc = azure_token_header(s->aad, &auth, e);
        if (rc)
            return err_prefix(e, "%s", s->base.name);
        hdr_add(extra, auth, &nomem);
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
    } else if (s->auth == AZ_AUTH_SHARED_KEY) {
        /* The string-to-sign covers the caller's headers and the ones just added. */
        struct curl_slist *all = NULL;
        for (const struct curl_slist *l = headers; l; l = l->next)
            hdr_add(&all, l->data, &nomem);
        for (const struct curl_slist *l = *extra; l; l = l->next)
            hdr_add(&all, l->data, &nomem);
        char *sts = NULL, *sig = NULL;
        int rc = nomem ? err_set(e, ERR_NOMEM, "out of memory")
                       : azure_string_to_sign(s->account, method, url, all, body_len, &sts, e);
        curl_slist_free_all(all);
        if (rc == 0)
            rc = azure_shared_key_header(s->account, s->key, s->key_len, sts, &sig, e);
        free(sts);
        if (rc)
            return rc;
        size_t n = strlen(sig) + 32;
        char *auth = malloc(n);
        if (auth) {
            str_printf(auth, n, "Authorization: %s", sig);
            hdr_add(extra, auth, &nomem);
            free(auth);
        }
        free(sig);
        if (!auth)
            nomem = true;
    }
    return nomem ? err_set(e, ERR_NOMEM, "out of memory") : 0;
}

static int az_sign(void *ctx, const char *method, const char *url,
                   const struct curl_slist *headers, const void *body, size_t body_len,
                   struct curl_slist **extra, struct err *e)
{
    (void)body;
    return az_sign_attempt(ctx, method, url, headers, body_len, extra, e);
}

struct az_call {
    const char *method;
    const char *url;
    struct curl_slist *headers;
    const void *body;
    size_t body_len;
    size_t max_body;
    cloud_sink_fn sink;
    cloud_sink_reset_fn sink_reset;
    void *sink_ctx;
};

static int az_do(struct az_stor *s, const char *what, const struct az_call *c,
                 struct cloud_http_resp *resp, struct err *e)
{
    struct cloud_http_req req = {.what = what, .method = c->method, .url = c->url,
                                 .headers = c->headers, .body = c->body,
                                 .body_len = c->body_len,
                                 .max_body = c->max_body ? c->max_body : AZ_ERROR_REPLY_MAX,
                                 .sink = c->sink, .sink_reset = c->sink_reset,
                                 .sink_ctx = c->sink_ctx, .sign = az_sign, .sign_ctx = s};
    return cloud_http_do(s->http, &req, resp, e);
}

/* First <tag>text</tag> of an XML error body, copied into out ("" when absent). */
static void xml_error_field(const char *body, const char *tag, char *out, size_t cap)
{
    out[0] = '\0';
    if (!body)
        return;
    char open[32], close[32];
    str_printf(open, sizeof open, "<%s>", tag);
    str_printf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(body, open);
    const char *b = a ? strstr(a, close) : NULL;
    if (!a || !b)
        return;
    a += strlen(open);
    size_t n = (size_t)(b - a);
    n = strcspn(a, "\r\n") < n ? strcspn(a, "\r\n") : n; /* first line only */
    str_printf(out, cap, "%.*s", (int)n, a);
}

/* Maps a non-2xx reply to an error. `key` may be NULL (container-level calls). */
static int az_http_error(const struct az_stor *s, const struct cloud_http_resp *r,
                         const char *op, const char *key, struct err *e)
{
    char code[96], msg[200];
    size_t cl = 0;
    const char *hc = cloud_http_header(r, "x-ms-error-code", &cl);
    if (hc)
        str_printf(code, sizeof code, "%.*s", (int)cl, hc);
    else
        xml_error_field(r->body, "Code", code, sizeof code);
    char target[STOR_KEY_MAX + 8] = ""; /* " 'key'" or nothing */
    if (key)
        str_printf(target, sizeof target, " '%s'", key);
    if (strcmp(code, "ContainerNotFound") == 0)
        return err_set(e, ERR_IO, "%s: container '%s' does not exist", s->base.name,
                       s->container);
    if (r->status == 404 && (strcmp(code, "BlobNotFound") == 0 || !*code) && key)
        return err_set(e, ERR_NOT_FOUND, "%s: '%s': not found", s->base.name, key);
    /* Azure says AuthenticationFailed for a bad signature or token, Azurite
     * AuthorizationFailure (which Azure uses for network rules): both point at credentials. */
    if (strcmp(code, "AuthenticationFailed") == 0 || strcmp(code, "AuthorizationFailure") == 0 ||
        r->status == 401 || (r->status == 403 && !*code)) {
        const char *hint = s->auth == AZ_AUTH_SHARED_KEY ? "check account-key"
                           : s->auth == AZ_AUTH_AAD ? "check tenant-id, client-id, client-secret"
                                                    : "no credentials configured";
        return err_set(e, ERR_IO, "%s: %s%s: authentication failed (%s)%s%s%s", s->base.name,
                       op, target, hint, *code ? " [" : "", code, *code ? "]" : "");
    }
    if (r->status == 403)
        return err_set(e, ERR_IO, "%s: %s%s: access denied (%s)", s->base.name, op, target,
                       code);
    xml_error_field(r->body, "Message", msg, sizeof msg);
    return err_set(e, ERR_IO, "%s: %s%s: HTTP %ld%s%s%s%s", s->base.name, op, target,
                   r->status, *code ? " " : "", code, *msg ? ": " : "", msg);
}

/* <container_url>/<encoded object name for key><suffix> (heap). */
static char *blob_url(const struct az_stor *s, const char *key, const char *suffix)
{
    char *name = stor_object_name(&s->base, key);
    char *enc = name ? cloud_url_encode(name, true) : NULL;
    free(name);
    if (!enc)
        return NULL;
    size_t n = strlen(s->container_url) + strlen(enc) + strlen(suffix) + 2;
    char *url = malloc(n);
    if (url)
        str_printf(url, n, "%s/%s%s", s->container_url, enc, suffix);
    free(enc);
    return url;
}

static void what_of(char *buf, const struct az_stor *s, const char *op, const char *key)
{
    str_printf(buf, AZ_WHAT_MAX, "%s: %s '%s'", s->base.name, op, key);
}

/* ---- writer ------------------------------------------------------------------------------- */

struct az_writer {
    struct stor_writer base;
    struct az_stor *s;
    char *key;            /* copy for messages before base.key is set */
    char *url;
    enum stor_class cls;
    size_t part;          /* bytes per block */
    unsigned char *buf;
    size_t len, cap;
    unsigned blocks;      /* blocks uploaded */
    char id_prefix[17];   /* random per writer */
};

/* Base64 block id i of this writer (all ids of a blob have one length). */
static void block_id(const struct az_writer *w, unsigned i, char *out)
{
    char raw[AZ_BLOCK_ID_RAW + 1];
    str_printf(raw, sizeof raw, "%s-%07u", w->id_prefix, i);
    size_t n = asb_b64_encode((const uint8_t *)raw, AZ_BLOCK_ID_RAW, out);
    out[n] = '\0';
}

static void tier_header(const struct az_stor *s, enum stor_class cls, struct curl_slist **l,
                        bool *nomem)
{
    if (!s->tier[cls])
        return;
    char line[96];
    str_printf(line, sizeof line, "x-ms-access-tier: %s", s->tier[cls]);
    hdr_add(l, line, nomem);
}

/* One PUT of `body` to `url` expecting 201 Created. */
static int az_put(struct az_stor *s, const char *op, const char *key, const char *url,
                  struct curl_slist *headers, const void *body, size_t len, struct err *e)
{
    char what[AZ_WHAT_MAX];
    what_of(what, s, op, key);
    struct az_call c = {.method = "PUT", .url = url, .headers = headers, .body = body,
                        .body_len = len};
    struct cloud_http_resp resp;
    int rc = az_do(s, what, &c, &resp, e);
    if (rc)
        return rc;
    if (resp.status != 201 && resp.status != 200)
        rc = az_http_error(s, &resp, op, key, e);
    cloud_http_resp_free(&resp);
    return rc;
}

static int put_block_blob(struct az_stor *s, const char *key, const char *url,
                          enum stor_class cls, const void *data, size_t len, struct err *e)
{
    struct curl_slist *h = NULL;
    bool nomem = false;
    hdr_add(&h, "x-ms-blob-type: BlockBlob", &nomem);
    hdr_add(&h, "Content-Type: application/octet-stream", &nomem);
    tier_header(s, cls, &h, &nomem);
    int rc = nomem ? err_set(e, ERR_NOMEM, "out of memory")
                   : az_put(s, "Put Blob", key, url, h, data, len, e);
    curl_slist_free_all(h);
    return rc;
}

static int aw_put_block(struct az_writer *w, struct err *e)
{
    if (w->blocks >= AZ_MAX_BLOCKS)
        return err_set(e, ERR_IO, "%s: '%s': more than %d blocks of %zu bytes", w->s->base.name,
                       w->key, AZ_MAX_BLOCKS, w->part);
    char id[64];
    block_id(w, w->blocks, id);
    char *enc = cloud_url_encode(id, false);
    size_t n = strlen(w->url) + (enc ? strlen(enc) : 0) + 32;
    char *url = enc ? malloc(n) : NULL;
    if (!url) {
        free(enc);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    str_printf(url, n, "%s?comp=block&blockid=%s", w->url, enc);
    free(enc);
    struct curl_slist *h = NULL;
    bool nomem = false;
    hdr_add(&h, "Content-Type: application/octet-stream", &nomem);
    int rc = nomem ? err_set(e, ERR_NOMEM, "out of memory")
                   : az_put(w->s, "Put Block", w->key, url, h, w->buf, w->len, e);
    curl_slist_free_all(h);
    free(url);
    if (rc == 0) {
        w->blocks++;
        w->len = 0;
    }
    return rc;
}

static int aw_flush_for_more(void *ctx, struct err *e)
{
    return aw_put_block(ctx, e);
}

static int aw_write(struct stor_writer *base, const void *data, size_t len, struct err *e)
{
    struct az_writer *w = (struct az_writer *)base;
    return cloud_part_append(&w->buf, &w->len, &w->cap, w->part, data, len, aw_flush_for_more, w, e);
}

static int aw_put_block_list(struct az_writer *w, struct err *e)
{
    static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    static const char tail[] = "</BlockList>";
    size_t cap = sizeof head + sizeof tail + (size_t)w->blocks * 64;
    char *xml = malloc(cap);
    if (!xml)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t n = (size_t)str_printf(xml, cap, "%s", head);
    for (unsigned i = 0; i < w->blocks; i++) {
        char id[64];
        block_id(w, i, id);
        n += (size_t)str_printf(xml + n, cap - n, "<Latest>%s</Latest>", id);
    }
    n += (size_t)str_printf(xml + n, cap - n, "%s", tail);
    size_t ul = strlen(w->url) + 16;
    char *url = malloc(ul);
    struct curl_slist *h = NULL;
    bool nomem = !url;
    hdr_add(&h, "Content-Type: application/xml", &nomem);
    tier_header(w->s, w->cls, &h, &nomem);
    int rc;
    if (nomem) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
    } else {
        str_printf(url, ul, "%s?comp=blocklist", w->url);
        rc = az_put(w->s, "Put Block List", w->key, url, h, xml, n, e);
    }
    curl_slist_free_all(h);
    free(url);
    free(xml);
    return rc;
}

static int aw_commit(struct stor_writer *base, struct err *e)
{
    struct az_writer *w = (struct az_writer *)base;
    if (w->blocks == 0)
        return put_block_blob(w->s, w->key, w->url, w->cls, w->buf, w->len, e);
    if (w->len > 0) {
        int rc = aw_put_block(w, e);
        if (rc)
            return rc;
    }
    return aw_put_block_list(w, e);
}

/* Uncommitted blocks are never visible and the service drops them: nothing to undo. */
static void aw_abort(struct stor_writer *base)
{
    struct az_writer *w = (struct az_writer *)base;
    w->len = 0;
}

static void aw_destroy(struct stor_writer *base)
{
    struct az_writer *w = (struct az_writer *)base;
    free(w->buf);
    free(w->url);
    free(w->key);
    free(w);
}

static const struct stor_writer_ops AZ_WRITER_OPS = {aw_write, aw_commit, aw_abort, aw_destroy};

static void random_hex(char *out, size_t nbytes)
{
    unsigned char rnd[16];
    if (nbytes > sizeof rnd)
        nbytes = sizeof rnd;
    if (getrandom(rnd, nbytes, 0) != (ssize_t)nbytes) {
        static unsigned counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec ^
                               ((unsigned long long)ts.tv_sec << 30) ^
                               __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
        for (size_t i = 0; i < nbytes; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            rnd[i] = (unsigned char)(x >> 56);
        }
    }
    for (size_t i = 0; i < nbytes; i++)
        str_printf(out + 2 * i, 3, "%02x", rnd[i]);
}

static size_t clamp_part(size_t part)
{
    if (part < AZ_MIN_BLOCK)
        return AZ_MIN_BLOCK;
    return part > AZ_MAX_BLOCK ? AZ_MAX_BLOCK : part;
}

static int az_writer_open(struct stor *base, const char *key, const struct stor_write_opts *o,
                          struct stor_writer **out, struct err *e)
{
    struct az_stor *s = (struct az_stor *)base;
    struct az_writer *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(e, ERR_NOMEM, "out of memory");
    w->s = s;
    w->key = strdup(key);
    w->url = blob_url(s, key, "");
    if (!w->key || !w->url) {
        aw_destroy(&w->base);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    w->cls = o->cls;
    w->part = clamp_part(o->part_size ? o->part_size : AZ_DEFAULT_PART);
    random_hex(w->id_prefix, 8);
    w->base.ops = &AZ_WRITER_OPS;
    *out = &w->base;
    return 0;
}

static int az_put_small(struct stor *base, const char *key, const void *data, size_t len,
                        struct err *e)
{
    struct az_stor *s = (struct az_stor *)base;
    char *url = blob_url(s, key, "");
    if (!url)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = put_block_blob(s, key, url, STOR_CLASS_METADATA, data, len, e);
    free(url);
    return rc;
}

/* ---- properties --------------------------------------------------------------------------- */

struct az_props {
    uint64_t size;
    int64_t mtime_ms;
    char etag[128];
};

static int az_head(struct az_stor *s, const char *key, const char *url, struct az_props *p,
                   struct err *e)
{
    char what[AZ_WHAT_MAX];
    what_of(what, s, "Get Blob Properties", key);
    struct az_call c = {.method = "HEAD", .url = url};
    struct cloud_http_resp resp;
    int rc = az_do(s, what, &c, &resp, e);
    if (rc)
        return rc;
    if (resp.status != 200) {
        rc = az_http_error(s, &resp, "Get Blob Properties", key, e);
        cloud_http_resp_free(&resp);
        return rc;
    }
    const char *cl = cloud_http_header(&resp, "Content-Length", NULL);
    const char *lm = cloud_http_header(&resp, "Last-Modified", NULL);
    size_t el = 0;
    const char *et = cloud_http_header(&resp, "ETag", &el);
    p->size = cl ? strtoull(cl, NULL, 10) : 0;
    int64_t mt = azure_parse_http_date(lm);
    p->mtime_ms = mt > 0 ? mt : 0;
    str_printf(p->etag, sizeof p->etag, "%.*s", et ? (int)el : 0, et ? et : "");
    cloud_http_resp_free(&resp);
    return 0;
}

static int az_stat(struct stor *base, const char *key, uint64_t *size, int64_t *mtime_ms,
                   struct err *e)
{
    struct az_stor *s = (struct az_stor *)base;
    char *url = blob_url(s, key, "");
    if (!url)
        return err_set(e, ERR_NOMEM, "out of memory");
    struct az_props p;
    int rc = az_head(s, key, url, &p, e);
    free(url);
    if (rc)
        return rc;
    *size = p.size;
    *mtime_ms = p.mtime_ms;
    return 0;
}

/* ---- reader ------------------------------------------------------------------------------- */

struct az_reader {
    struct stor_reader base;
    struct az_stor *s;
    char *key;
    char *url;
    char etag[128];         /* of the first answer; later chunks must match it */
    uint64_t pos, end;      /* next byte to fetch, end of the range */
    unsigned char *buf;     /* one chunk, grown as bytes arrive (at most `limit`) */
    size_t blen, bpos, cap, limit;
};

static int ar_sink(void *ctx, const void *data, size_t len, struct err *e)
{
    struct az_reader *r = ctx;
    if (r->blen + len > r->limit)
        return err_set(e, ERR_IO, "%s: '%s': Get Blob returned more than the range asked",
                       r->s->base.name, r->key);
    if (r->blen + len > r->cap) {
        size_t cap = r->cap ? r->cap : 64 * 1024;
        while (cap < r->blen + len)
            cap *= 2;
        if (cap > r->limit)
            cap = r->limit;
        unsigned char *nb = realloc(r->buf, cap);
        if (!nb)
            return err_set(e, ERR_NOMEM, "out of memory");
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->blen, data, len);
    r->blen += len;
    return 0;
}

static void ar_sink_reset(void *ctx) { ((struct az_reader *)ctx)->blen = 0; }

/* Total size from "Content-Range: bytes a-b/total"; false when absent or malformed. */
static bool content_range_total(const struct cloud_http_resp *resp, uint64_t *total)
{
    const char *cr = cloud_http_header(resp, "Content-Range", NULL);
    const char *slash = cr ? strchr(cr, '/') : NULL;
    if (!slash || slash[1] < '0' || slash[1] > '9')
        return false;
    *total = strtoull(slash + 1, NULL, 10);
    return true;
}

/* GETs bytes [r->pos, r->pos + want) into the buffer. The first call (no ETag yet) learns the
 * blob's size and ETag from the answer, so a small object is read in one atomic request;
 * later calls send If-Match. Sets *past_end when the offset lies beyond the blob (416). */
static int ar_get(struct az_reader *r, uint64_t want, bool *past_end, struct err *e)
{
    char range[96], match[160], what[AZ_WHAT_MAX];
    str_printf(range, sizeof range, "x-ms-range: bytes=%llu-%llu", (unsigned long long)r->pos,
               (unsigned long long)(r->pos + want - 1));
    struct curl_slist *h = NULL;
    bool nomem = false, first = !r->etag[0];
    hdr_add(&h, range, &nomem);
    if (!first) {
        str_printf(match, sizeof match, "If-Match: %s", r->etag);
        hdr_add(&h, match, &nomem);
    }
    if (nomem) {
        curl_slist_free_all(h);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    what_of(what, r->s, "Get Blob", r->key);
    r->limit = (size_t)want;
    struct az_call c = {.method = "GET", .url = r->url, .headers = h, .sink = ar_sink,
                        .sink_reset = ar_sink_reset, .sink_ctx = r};
    struct cloud_http_resp resp;
    r->blen = r->bpos = 0;
    int rc = az_do(r->s, what, &c, &resp, e);
    curl_slist_free_all(h);
    if (rc)
        return rc;
    *past_end = false;
    uint64_t total = 0;
    if (resp.status == 416 && first) {
        *past_end = true;
    } else if (resp.status == 412) {
        rc = err_set(e, ERR_IO, "%s: '%s': the blob changed while it was being read",
                     r->s->base.name, r->key);
    } else if (resp.status != 206 && resp.status != 200) {
        rc = az_http_error(r->s, &resp, "Get Blob", r->key, e);
    } else if (first) {
        size_t el = 0;
        const char *et = cloud_http_header(&resp, "ETag", &el);
        str_printf(r->etag, sizeof r->etag, "%.*s", et ? (int)el : 0, et ? et : "");
        if (!content_range_total(&resp, &total))
            total = r->pos + r->blen; /* a 200 carries the whole blob */
        r->base.size = total;
        if (r->end > total)
            r->end = total;
        if (r->pos + r->blen > r->end)
            r->blen = (size_t)(r->end - r->pos);
    } else if (r->blen != want) {
        rc = err_set(e, ERR_IO, "%s: '%s': Get Blob returned %zu bytes instead of %llu",
                     r->s->base.name, r->key, r->blen, (unsigned long long)want);
    }
    cloud_http_resp_free(&resp);
    if (rc == 0)
        r->pos += r->blen;
    return rc;
}

static int ar_read(struct stor_reader *base, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct az_reader *r = (struct az_reader *)base;
    if (r->bpos == r->blen) {
        if (r->pos >= r->end)
            return 0;
        uint64_t want = r->end - r->pos < AZ_READ_CHUNK ? r->end - r->pos : AZ_READ_CHUNK;
        bool past_end;
        int rc = ar_get(r, want, &past_end, e);
        if (rc)
            return rc;
        if (r->blen == 0) {
            r->end = r->pos; /* the blob ended earlier than announced */
            return 0;
        }
    }
    size_t n = r->blen - r->bpos < cap ? r->blen - r->bpos : cap;
    memcpy(buf, r->buf + r->bpos, n);
    r->bpos += n;
    *got = n;
    return 0;
}

static void ar_destroy(struct stor_reader *base)
{
    struct az_reader *r = (struct az_reader *)base;
    free(r->buf);
    free(r->url);
    free(r->key);
    free(r);
}

static const struct stor_reader_ops AZ_READER_OPS = {ar_read, ar_destroy};

/* Size and ETag by Get Blob Properties (empty ranges, offsets past the end). */
static int ar_open_by_head(struct az_reader *r, uint64_t offset, struct err *e)
{
    struct az_props p;
    int rc = az_head(r->s, r->key, r->url, &p, e);
    if (rc)
        return rc;
    str_printf(r->etag, sizeof r->etag, "%s", p.etag);
    r->base.size = p.size;
    r->pos = r->end = offset < p.size ? offset : p.size;
    return 0;
}

static int az_reader_open(struct stor *base, const char *key, uint64_t offset, int64_t length,
                          struct stor_reader **out, struct err *e)
{
    struct az_stor *s = (struct az_stor *)base;
    struct az_reader *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, ERR_NOMEM, "out of memory");
    r->s = s;
    r->key = strdup(key);
    r->url = blob_url(s, key, "");
    if (!r->key || !r->url) {
        ar_destroy(&r->base);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    int rc;
    if (length == 0) {
        rc = ar_open_by_head(r, offset, e);
    } else {
        /* The first chunk comes with the open: it tells the size and pins the ETag. */
        r->pos = offset;
        r->end = length < 0 || (uint64_t)length > UINT64_MAX - offset ? UINT64_MAX
                                                                       : offset + (uint64_t)length;
        uint64_t want = r->end - r->pos < AZ_READ_CHUNK ? r->end - r->pos : AZ_READ_CHUNK;
        bool past_end = false;
        rc = ar_get(r, want, &past_end, e);
        if (rc == 0 && past_end)
            rc = ar_open_by_head(r, offset, e);
    }
    if (rc) {
        ar_destroy(&r->base);
        return rc;
    }
    r->base.ops = &AZ_READER_OPS;
    *out = &r->base;
    return 0;
}

/* ---- listing ------------------------------------------------------------------------------ */

struct az_list_item {
    char *name;      /* full blob name or prefix */
    bool is_prefix;
    uint64_t size;
    int64_t mtime_ms;
};

struct az_list_result {
    struct az_list_item *items;
    size_t n, cap;
    char *next_marker;
};

static void list_result_free(struct az_list_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->items[i].name);
    free(r->items);
    free(r->next_marker);
    memset(r, 0, sizeof *r);
}

static xmlNode *xml_child(xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

/* Text of an element (heap, "" when empty); NULL on no memory. */
static char *xml_text(xmlNode *n)
{
    xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
    char *s = strdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}

static int list_add(struct az_list_result *r, xmlNode *el, bool is_prefix)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct az_list_item *v = realloc(r->items, cap * sizeof *v);
        if (!v)
            return -1;
        r->items = v;
        r->cap = cap;
    }
    struct az_list_item *it = &r->items[r->n];
    memset(it, 0, sizeof *it);
    it->is_prefix = is_prefix;
    if (!(it->name = xml_text(xml_child(el, "Name"))))
        return -1;
    r->n++;
    xmlNode *props = is_prefix ? NULL : xml_child(el, "Properties");
    if (props) {
        char *cl = xml_text(xml_child(props, "Content-Length"));
        char *lm = xml_text(xml_child(props, "Last-Modified"));
        it->size = cl ? strtoull(cl, NULL, 10) : 0;
        int64_t mt = azure_parse_http_date(lm);
        it->mtime_ms = mt > 0 ? mt : 0;
        free(cl);
        free(lm);
    }
    return 0;
}

static int parse_list_reply(const struct az_stor *s, const char *body, size_t len,
                            struct az_list_result *out, struct err *e)
{
    xmlDoc *doc = xmlReadMemory(body, (int)len, "list.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root || strcmp((const char *)root->name, "EnumerationResults") != 0) {
        xmlFreeDoc(doc);
        return err_set(e, ERR_IO, "%s: List Blobs: malformed reply", s->base.name);
    }
    int rc = 0;
    xmlNode *blobs = xml_child(root, "Blobs");
    for (xmlNode *c = blobs ? blobs->children : NULL; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)c->name, "Blob") == 0)
            rc = list_add(out, c, false);
        else if (strcmp((const char *)c->name, "BlobPrefix") == 0)
            rc = list_add(out, c, true);
    }
    xmlNode *nm = xml_child(root, "NextMarker");
    if (rc == 0 && nm) {
        char *m = xml_text(nm);
        if (!m)
            rc = -1;
        else if (*m)
            out->next_marker = m;
        else
            free(m);
    }
    xmlFreeDoc(doc);
    return rc ? err_set(e, ERR_NOMEM, "out of memory") : 0;
}

/* One List Blobs call for full-name prefix `prefix`. */
static int az_list_raw(struct az_stor *s, const char *prefix, bool delimiter, const char *marker,
                       size_t max_results, struct az_list_result *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    char *ep = cloud_url_encode(prefix, false);
    char *em = marker ? cloud_url_encode(marker, false) : NULL;
    size_t n = strlen(s->container_url) + (ep ? strlen(ep) : 0) + (em ? strlen(em) : 0) + 128;
    char *url = ep && (em || !marker) ? malloc(n) : NULL;
    if (!url) {
        free(ep);
        free(em);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    if (max_results > 5000)
        max_results = 5000;
    str_printf(url, n, "%s?restype=container&comp=list&prefix=%s%s%s%s&maxresults=%zu",
               s->container_url, ep, delimiter ? "&delimiter=%2F" : "", em ? "&marker=" : "",
               em ? em : "", max_results);
    free(ep);
    free(em);
    char what[AZ_WHAT_MAX];
    str_printf(what, sizeof what, "%s: List Blobs '%s'", s->base.name, prefix);
    struct az_call c = {.method = "GET", .url = url, .max_body = AZ_LIST_REPLY_MAX};
    struct cloud_http_resp resp;
    int rc = az_do(s, what, &c, &resp, e);
    free(url);
    if (rc)
        return rc;
    if (resp.status != 200)
        rc = az_http_error(s, &resp, "List Blobs", NULL, e);
    else
        rc = parse_list_reply(s, resp.body ? resp.body : "", resp.body_len, out, e);
    cloud_http_resp_free(&resp);
    if (rc)
        list_result_free(out);
    return rc;
}

/* Whether some object under full-name prefix `dir` has a key sorting after `after`. */
static int any_object_after(struct az_stor *s, const char *dir, const char *after, struct err *e)
{
    char *marker = NULL;
    for (;;) {
        struct az_list_result r;
        int rc = az_list_raw(s, dir, false, marker, 5000, &r, e);
        free(marker);
        marker = NULL;
        if (rc)
            return rc;
        for (size_t i = 0; i < r.n; i++) {
            const char *key = stor_key_of_object(&s->base, r.items[i].name);
            if (key && strcmp(key, after) > 0) {
                list_result_free(&r);
                return 1;
            }
        }
        marker = r.next_marker;
        r.next_marker = NULL;
        list_result_free(&r);
        if (!marker)
            return 0;
    }
}

/* Keys the interface can address (others, e.g. written by other tools, are not listed). */
static bool listable_key(const char *key, bool is_prefix)
{
    size_t n = strlen(key);
    if (n == 0 || (is_prefix && n < 2))
        return false;
    char tmp[STOR_KEY_MAX + 2];
    if (n > STOR_KEY_MAX + 1)
        return false;
    memcpy(tmp, key, n + 1);
    if (is_prefix)
        tmp[n - 1] = '\0';
    return stor_key_valid(tmp, NULL) == 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct stor_entry *)a)->key, ((const struct stor_entry *)b)->key);
}

static int add_listed(struct az_stor *s, const struct stor_list_opts *o,
                      const struct az_list_item *it, struct stor_page *out, struct err *e)
{
    const char *key = stor_key_of_object(&s->base, it->name);
    if (!key || !listable_key(key, it->is_prefix))
        return 0;
    const char *after = o->start_after;
    if (after && strcmp(key, after) <= 0) {
        /* A directory entry sorting before start_after still counts when start_after lies
         * inside it and some object there sorts after start_after. */
        size_t kl = strlen(key);
        if (!it->is_prefix || strncmp(after, key, kl) != 0 || after[kl] == '\0')
            return 0;
        int rc = any_object_after(s, it->name, after, e);
        if (rc <= 0)
            return rc;
    }
    return stor_page_add(out, key, it->is_prefix, it->size, it->mtime_ms, e);
}

/* Full-name prefix: "<root>/<prefix>"; the root alone lists as "<root>/". */
static char *list_prefix(const struct stor *s, const char *prefix)
{
    if (*prefix)
        return stor_path_join(s->root, prefix);
    if (!*s->root)
        return strdup("");
    size_t n = strlen(s->root) + 2;
    char *p = malloc(n);
    if (p)
        str_printf(p, n, "%s/", s->root);
    return p;
}

static int az_list_page(struct stor *base, const struct stor_list_opts *o, const char *token,
                        struct stor_page *out, struct err *e)
{
    struct az_stor *s = (struct az_stor *)base;
    char *full = list_prefix(&s->base, o->prefix);
    if (!full)
        return err_set(e, ERR_NOMEM, "out of memory");
    char *marker = token ? strdup(token) : NULL;
    int rc = token && !marker ? err_set(e, ERR_NOMEM, "out of memory") : 0;
    /* Skipped entries (start_after) may leave a page empty: go on until something shows. */
    while (rc == 0) {
        struct az_list_result r;
        rc = az_list_raw(s, full, o->delimiter, marker, o->page_size, &r, e);
        free(marker);
        marker = NULL;
        if (rc)
            break;
        for (size_t i = 0; i < r.n && rc == 0; i++)
            rc = add_listed(s, o, &r.items[i], out, e);
        marker = r.next_marker;
        r.next_marker = NULL;
        list_result_free(&r);
        if (rc || !marker || out->n > 0)
            break;
    }
    free(full);
    if (rc) {
        free(marker);
        return rc;
    }
    if (out->n > 1)
        qsort(out->entries, out->n, sizeof *out->entries, entry_cmp);
    out->next_token = marker;
    return 0;
}

/* ---- delete ------------------------------------------------------------------------------- */

static int az_del(struct stor *base, const char *key, struct err *e)
{
    struct az_stor *s = (struct az_stor *)base;
    char *url = blob_url(s, key, "");
    struct curl_slist *h = NULL;
    bool nomem = !url;
    hdr_add(&h, "x-ms-delete-snapshots: include", &nomem);
    if (nomem) {
        free(url);
        curl_slist_free_all(h);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    char what[AZ_WHAT_MAX];
    what_of(what, s, "Delete Blob", key);
    struct az_call c = {.method = "DELETE", .url = url, .headers = h};
    struct cloud_http_resp resp;
    int rc = az_do(s, what, &c, &resp, e);
    free(url);
    curl_slist_free_all(h);
    if (rc)
        return rc;
    if (resp.status != 202 && resp.status != 200) {
        rc = az_http_error(s, &resp, "Delete Blob", key, e);
        if (rc == ERR_NOT_FOUND)
            rc = 0; /* already gone */
    }
    cloud_http_resp_free(&resp);
    return rc;
}

/* ---- handle ------------------------------------------------------------------------------- */

static void az_close(struct stor *base)
{
    struct az_stor *s = (struct az_stor *)base;
    azure_token_src_free(s->aad);
    cloud_http_free(s->http);
    if (s->key)
        OPENSSL_cleanse(s->key, s->key_len);
    free(s->key);
    free(s->account);
    free(s->container);
    free(s->container_url);
    free(s->tier[0]);
    free(s->tier[1]);
    free(s);
}

static const struct stor_ops AZ_OPS = {
    .scheme = "azure",
    .close = az_close,
    .writer_open = az_writer_open,
    .reader_open = az_reader_open,
    .stat = az_stat,
    .list_page = az_list_page,
    .del = az_del,
    .delete_prefix = NULL, /* generic list + delete */
    .put = az_put_small,
};

static bool has(const char *s) { return s && *s; }

/* Which credentials the block carries; ERR_INVALID when mixed or incomplete. */
static int pick_auth(const struct cfg_azure_storage *cfg, enum az_auth *auth, struct err *e)
{
    bool sk = has(cfg->account_key);
    int aad = has(cfg->tenant_id) + has(cfg->client_id) + has(cfg->client_secret);
    if (sk && aad)
        return err_set(e, ERR_INVALID, "azure-storage: both account-key and Azure AD "
                                       "credentials are set (ambiguous)");
    if (aad && aad < 3)
        return err_set(e, ERR_INVALID, "azure-storage: Azure AD authentication needs "
                                       "tenant-id, client-id and client-secret");
    if (sk && !has(cfg->account_name))
        return err_set(e, ERR_INVALID, "azure-storage: account-key needs account-name");
    *auth = sk ? AZ_AUTH_SHARED_KEY : aad ? AZ_AUTH_AAD : AZ_AUTH_NONE;
    return 0;
}

static int az_setup(struct az_stor *s, const struct cfg_azure_storage *cfg,
                    const struct azure_open_opts *o, struct err *e)
{
    int rc = pick_auth(cfg, &s->auth, e);
    if (rc)
        return rc;
    struct cloud_http_opts ho = {.ca_file = o ? o->ca_file : NULL};
    if (o && o->retry)
        ho.retry = *o->retry;
    else
        cloud_retry_default(&ho.retry);
    if ((rc = cloud_http_new(&ho, &s->http, e)))
        return rc;
    if (s->auth == AZ_AUTH_SHARED_KEY) {
        s->account = strdup(cfg->account_name);
        if (!s->account)
            return err_set(e, ERR_NOMEM, "out of memory");
        if ((rc = azure_key_decode(cfg->account_key, &s->key, &s->key_len, e)))
            return rc;
    } else if (s->auth == AZ_AUTH_AAD) {
        rc = azure_token_src_new(o ? o->authority_host : NULL, cfg->tenant_id, cfg->client_id,
                                 cfg->client_secret, s->http, &s->aad, e);
        if (rc)
            return rc;
    }
    char endpoint[1024];
    if (has(cfg->endpoint))
        str_printf(endpoint, sizeof endpoint, "%s", cfg->endpoint);
    else if (has(cfg->account_name))
        str_printf(endpoint, sizeof endpoint, "https://%s.blob.core.windows.net",
                   cfg->account_name);
    else
        return err_set(e, ERR_INVALID, "azure-storage: endpoint is required");
    size_t el = strlen(endpoint);
    while (el > 0 && endpoint[el - 1] == '/')
        endpoint[--el] = '\0';
    char *ec = cloud_url_encode(cfg->container_name, false);
    size_t n = el + (ec ? strlen(ec) : 0) + 2;
    s->container = strdup(cfg->container_name);
    s->container_url = ec ? malloc(n) : NULL;
    if (!s->container || !s->container_url) {
        free(ec);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    str_printf(s->container_url, n, "%s/%s", endpoint, ec);
    free(ec);
    const struct cfg_storage_class *sc = cfg->storage_class;
    if (sc && has(sc->data) && !(s->tier[STOR_CLASS_DATA] = strdup(sc->data)))
        return err_set(e, ERR_NOMEM, "out of memory");
    if (sc && has(sc->metadata) && !(s->tier[STOR_CLASS_METADATA] = strdup(sc->metadata)))
        return err_set(e, ERR_NOMEM, "out of memory");
    return 0;
}

/* libxml2 2.9 wants its parser set up once before threads use it. */
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init_once(void) { xmlInitParser(); }

int stor_azure_open_opts(const struct cfg_azure_storage *cfg, const struct azure_open_opts *o,
                         struct stor **out, struct err *e)
{
    *out = NULL;
    pthread_once(&xml_once, xml_init_once);
    if (!cfg || !has(cfg->container_name))
        return err_set(e, ERR_INVALID, "azure-storage: container-name is required");
    if (strchr(cfg->container_name, '/'))
        return err_set(e, ERR_INVALID, "azure-storage: container-name '%s' contains '/'",
                       cfg->container_name);
    struct az_stor *s = calloc(1, sizeof *s);
    char *prefix = stor_prefix_normalize(cfg->path);
    if (!s || !prefix) {
        free(s);
        free(prefix);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    char name[STOR_KEY_MAX + 300];
    str_printf(name, sizeof name, "azure://%s%s%s", cfg->container_name, *prefix ? "/" : "",
               prefix);
    size_t part = cfg->min_part_size.set && cfg->min_part_size.v > 0
                      ? (size_t)cfg->min_part_size.v : AZ_DEFAULT_PART;
    int rc = stor_base_init(&s->base, &AZ_OPS, STOR_AZURE, prefix, name, clamp_part(part), e);
    free(prefix);
    if (rc) {
        free(s);
        return rc;
    }
    rc = az_setup(s, cfg, o, e);
    if (rc) {
        stor_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

int stor_azure_open(const struct cfg_azure_storage *cfg, struct stor **out, struct err *e)
{
    return stor_azure_open_opts(cfg, NULL, out, e);
}

int stor_azure_token_requests(const struct stor *base)
{
    const struct az_stor *s = (const struct az_stor *)base;
    return s->aad ? azure_token_requests(s->aad) : -1;
}
