/*
 * gcs_reader.c - ranged reads of the gcp-storage backend (see stor_gcs.c): alt=media GETs with
 * a Range header, at most read_chunk bytes each, so memory per reader stays bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/gcs_internal.h"
#include "util/strutil.h"

/*
 * The first ranged GET also tells the object's size (Content-Range) and generation; the later
 * ones are pinned to that generation. An object that fits in one GET is thus read from one
 * version even while another writer replaces it.
 */
struct gcs_reader {
    struct stor_reader base;
    struct gcs_stor *g;
    char *url;          /* alt=media URL, pinned to the generation once known */
    uint64_t pos, end;  /* next byte to fetch, end of the range */
    char *buf;          /* fetched bytes; [bpos, blen) not yet returned */
    size_t blen, bpos;
};

static struct gcs_reader *gr_of(struct stor_reader *r) { return (struct gcs_reader *)r; }

/* GET of [from, from + n) of the object (the reply is the caller's to free). */
static int range_get(struct gcs_reader *r, const char *key, uint64_t from, uint64_t n,
                     struct cloud_http_resp *resp, struct err *e)
{
    struct gcs_stor *g = r->g;
    char range[80], what[GCS_WHAT_MAX];
    str_printf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)from,
               (unsigned long long)(from + n - 1));
    str_printf(what, sizeof what, "%s GET '%s' at %llu", g->base.name, key,
               (unsigned long long)from);
    struct curl_slist *h = gcs_headers(range, NULL);
    if (!h)
        return gcs_nomem(e);
    /* Room for one read chunk: the range, or a whole small object when the store ignores
     * the range (the emulator does past the end), or an error reply. */
    struct cloud_http_req req = {.what = what, .method = "GET", .url = r->url, .headers = h,
                                 .max_body = g->read_chunk > 65536 ? g->read_chunk : 65536};
    int rc = gcs_do(g, &req, resp, e);
    curl_slist_free_all(h);
    return rc;
}

/* Takes a reply's body as the buffer: bytes [skip, skip + n) are the next ones to return. */
static void reader_take(struct gcs_reader *r, struct cloud_http_resp *resp, size_t skip,
                        size_t n)
{
    free(r->buf);
    r->buf = resp->body;
    resp->body = NULL;
    r->bpos = skip;
    r->blen = skip + n;
    r->pos += n;
}

/* Fetches the next bounded piece of the range into r->buf. */
static int reader_fetch(struct gcs_reader *r, struct err *e)
{
    struct gcs_stor *g = r->g;
    uint64_t n = r->end - r->pos;
    if (n > g->read_chunk)
        n = g->read_chunk;
    struct cloud_http_resp resp;
    int rc = range_get(r, r->base.key, r->pos, n, &resp, e);
    if (rc)
        return rc;
    size_t skip = 0;
    if (resp.status == 200 && resp.body_len == r->base.size) /* the whole object, range ignored */
        skip = (size_t)r->pos;
    else if (resp.status == 404)
        rc = err_set(e, ERR_IO, "%s: '%s' vanished or was replaced while being read",
                     g->base.name, r->base.key);
    else if (resp.status != 206)
        rc = gcs_status_error(g, &resp, "read of", r->base.key, e);
    if (rc == 0 && resp.body_len < skip + n)
        rc = err_set(e, ERR_IO, "%s: '%s': short read at %llu (object changed?)", g->base.name,
                     r->base.key, (unsigned long long)r->pos);
    if (rc == 0)
        reader_take(r, &resp, skip, (size_t)n);
    cloud_http_resp_free(&resp);
    return rc;
}

static int gcs_read(struct stor_reader *base, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct gcs_reader *r = gr_of(base);
    if (r->bpos == r->blen) {
        if (r->pos >= r->end)
            return 0;
        int rc = reader_fetch(r, e);
        if (rc)
            return rc;
    }
    size_t n = r->blen - r->bpos < cap ? r->blen - r->bpos : cap;
    memcpy(buf, r->buf + r->bpos, n);
    r->bpos += n;
    *got = n;
    return 0;
}

static void gcs_reader_destroy(struct stor_reader *base)
{
    struct gcs_reader *r = gr_of(base);
    free(r->url);
    free(r->buf);
    free(r);
}

static const struct stor_reader_ops GCS_READER_OPS = {
    .read = gcs_read,
    .destroy = gcs_reader_destroy,
};

/* Sets the range [offset, offset + length) of an object of `size` bytes. */
static void reader_bounds(struct gcs_reader *r, uint64_t size, uint64_t offset, int64_t length)
{
    r->base.size = size;
    r->pos = offset < size ? offset : size;
    r->end = length < 0 || (uint64_t)length > size - r->pos ? size : r->pos + (uint64_t)length;
}

/* Pins later GETs to the generation the first reply named. */
static int reader_pin(struct gcs_reader *r, const struct cloud_http_resp *resp, struct err *e)
{
    size_t gl = 0;
    const char *gen = cloud_http_header(resp, "x-goog-generation", &gl);
    if (!gen || gl == 0 || gl > 20 || strspn(gen, "0123456789") < gl)
        return 0;
    char *url = NULL;
    if (asprintf(&url, "%s&generation=%.*s", r->url, (int)gl, gen) < 0)
        return gcs_nomem(e);
    free(r->url);
    r->url = url;
    return 0;
}

/* The first GET: size, generation, and the first piece of the range. */
static int reader_first(struct gcs_reader *r, const char *key, uint64_t offset, int64_t length,
                        struct err *e)
{
    struct gcs_stor *g = r->g;
    uint64_t want = length < 0 || (uint64_t)length > g->read_chunk ? g->read_chunk
                                                                   : (uint64_t)length;
    struct cloud_http_resp resp;
    int rc = range_get(r, key, offset, want, &resp, e);
    if (rc)
        return rc;
    size_t cl = 0;
    const char *cr = cloud_http_header(&resp, "Content-Range", &cl);
    unsigned long long a = 0, b = 0, total = 0;
    if (resp.status == 206) {
        if (!cr || sscanf(cr, "bytes %llu-%llu/%llu", &a, &b, &total) != 3 || a != offset ||
            b < a || resp.body_len != b - a + 1)
            rc = err_set(e, ERR_IO, "%s: '%s': bad ranged reply", g->base.name, key);
        else if ((rc = reader_pin(r, &resp, e)) == 0) {
            reader_bounds(r, total, offset, length);
            uint64_t n = r->end - r->pos < resp.body_len ? r->end - r->pos : resp.body_len;
            reader_take(r, &resp, 0, (size_t)n);
        }
    } else if (resp.status == 200) { /* the whole object */
        reader_bounds(r, resp.body_len, offset, length);
        size_t skip = (size_t)r->pos;
        r->pos = 0;
        reader_take(r, &resp, skip, (size_t)(r->end - skip));
        r->pos = r->end;
    } else if (resp.status == 416) { /* offset at or past the end */
        struct gcs_obj_meta m;
        rc = gcs_meta_get(g, key, &m, e);
        if (rc == 0)
            reader_bounds(r, m.size, offset, length);
    } else {
        rc = gcs_status_error(g, &resp, "read of", key, e);
    }
    cloud_http_resp_free(&resp);
    return rc;
}

int gcs_reader_open(struct stor *s, const char *key, uint64_t offset, int64_t length,
                    struct stor_reader **out, struct err *e)
{
    struct gcs_stor *g = gcs_of(s);
    char *object = stor_object_name(s, key);
    struct gcs_reader *r = object ? calloc(1, sizeof *r) : NULL;
    if (r)
        r->url = gcs_object_url(g, object, "?alt=media");
    free(object);
    if (!r || !r->url) {
        free(r);
        return gcs_nomem(e);
    }
    r->base.ops = &GCS_READER_OPS;
    r->g = g;
    int rc;
    if (length == 0) { /* nothing to read: the size is all that is needed */
        struct gcs_obj_meta m;
        rc = gcs_meta_get(g, key, &m, e);
        if (rc == 0)
            reader_bounds(r, m.size, offset, 0);
    } else {
        rc = reader_first(r, key, offset, length, e);
    }
    if (rc) {
        gcs_reader_destroy(&r->base);
        return rc;
    }
    *out = &r->base;
    return 0;
}
