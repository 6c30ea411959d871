/*
 * gcs_fake_server.h - a small fake of the Google Cloud Storage JSON API and of Google's OAuth2
 * token endpoint, on 127.0.0.1 in a thread of the test (header-only, for test_stor_gcs.c).
 *
 * It implements what the emulator cannot: multi-chunk resumable sessions (308 + Range, bytes
 * already persisted ignored when resent, a non-final chunk must be a multiple of 256 KiB), and
 * faults on demand: a chunk only partly persisted, a 503 on a chunk, a missing bucket, access
 * denied, a token endpoint that refuses, a token revoked (401). Besides: media and multipart
 * uploads, object metadata, alt=media reads with Range, deletes. Every request is logged as
 * "METHOD /path?query" plus its Content-Range / Range, for the tests to check what was sent.
 * One connection at a time, each answered with "Connection: close".
 */
#ifndef TEST_GCS_FAKE_SERVER_H
#define TEST_GCS_FAKE_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loopback.h"
#define FAKE_MAX_OBJ 32
#define FAKE_MAX_SESS 16
#define FAKE_MAX_LOG 256
#define FAKE_QUANTUM (256 * 1024)

struct fake_obj {
    char name[256];
    char *data;
    size_t len;
    char cls[32];
    long long gen;
};

struct fake_sess {
    char name[256];
    char cls[32];
    char *data;
    size_t len;          /* persisted */
    bool done, cancelled;
};

struct fake_gcs {
    int fd, port;
    pthread_t thread;
    pthread_mutex_t lock;
    struct fake_obj objs[FAKE_MAX_OBJ];
    struct fake_sess sess[FAKE_MAX_SESS];
    int n_sess;
    long long next_gen;
    /* token endpoint */
    int token_calls;
    int token_expires_in;      /* 0 = 3600 */
    int token_status;          /* 0 = 200 */
    char token[64];            /* the valid bearer token ("" = none issued yet) */
    char last_assertion[4096];
    char last_grant[128];
    bool require_auth;         /* storage requests need "Bearer <token>" */
    int unauthenticated;       /* storage requests seen without an Authorization header */
    int rejected;              /* 401s sent */
    /* faults */
    int short_chunk;           /* this resumable PUT (1-based) keeps only short_keep new bytes */
    size_t short_keep;
    int fail_chunk;            /* this resumable PUT (1-based) answers 503, persists nothing */
    int chunk_status;          /* non-zero: every resumable PUT answers this (e.g. 403) */
    int chunk_puts;
    bool bucket_missing;
    bool deny;
    /* log */
    char log[FAKE_MAX_LOG][200];
    int n_log;
};

struct fake_req {
    char method[16];
    char target[1024];   /* path?query as sent */
    char path[1024];     /* decoded path */
    char query[1024];
    char content_range[96], range[96], auth[256], ctype[256];
    char *body;
    size_t body_len;
};

/* ---- plumbing ------------------------------------------------------------------------------ */

static void fake_urldecode(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (in[i] == '%' && i + 2 < n) {
            char hex[3] = {in[i + 1], in[i + 2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

/* Decoded value of query parameter `name` into out; false when absent. */
static bool fake_param(const char *query, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            fake_urldecode(p + nl + 1, len - nl - 1, out, cap);
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

static void fake_header(const char *head, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ')
                h++;
            size_t n = strcspn(h, "\r\n");
            if (n >= cap)
                n = cap - 1;
            memcpy(out, h, n);
            out[n] = '\0';
            return;
        }
    }
}

static bool fake_read_request(int c, struct fake_req *r)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    char *end = NULL;
    memset(r, 0, sizeof *r);
    while (!end) {
        if (len == cap) {
            free(buf);
            return false;
        }
        ssize_t n = read(c, buf + len, cap - len);
        if (n <= 0) {
            free(buf);
            return false;
        }
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - buf) + 4;
    char cl[32];
    buf[head_len - 2] = '\0';
    fake_header(buf, "Content-Length", cl, sizeof cl);
    size_t body_len = (size_t)atol(cl);
    sscanf(buf, "%15s %1023s", r->method, r->target);
    fake_header(buf, "Content-Range", r->content_range, sizeof r->content_range);
    fake_header(buf, "Range", r->range, sizeof r->range);
    fake_header(buf, "Authorization", r->auth, sizeof r->auth);
    fake_header(buf, "Content-Type", r->ctype, sizeof r->ctype);
    r->body = malloc(body_len + 1);
    size_t have = len - head_len < body_len ? len - head_len : body_len;
    memcpy(r->body, buf + head_len, have);
    free(buf);
    while (have < body_len) {
        ssize_t n = read(c, r->body + have, body_len - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    r->body_len = have;
    r->body[have] = '\0';
    char *q = strchr(r->target, '?');
    size_t pl = q ? (size_t)(q - r->target) : strlen(r->target);
    fake_urldecode(r->target, pl, r->path, sizeof r->path);
    snprintf(r->query, sizeof r->query, "%s", q ? q + 1 : "");
    return true;
}

static void fake_reply(int c, int status, const char *extra_headers, const char *body,
                       size_t body_len)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nConnection: close\r\nContent-Length: %zu\r\n%s\r\n",
                     status, body_len, extra_headers ? extra_headers : "");
    ssize_t w = write(c, head, (size_t)n);
    for (size_t off = 0; w >= 0 && off < body_len; off += (size_t)w)
        w = write(c, body + off, body_len - off);
}

static void fake_json(int c, int status, const char *extra, const char *json)
{
    char hdr[512];
    snprintf(hdr, sizeof hdr, "Content-Type: application/json\r\n%s", extra ? extra : "");
    fake_reply(c, status, hdr, json, strlen(json));
}

static void fake_error(int c, int status, const char *msg)
{
    char body[512];
    snprintf(body, sizeof body, "{\"error\":{\"code\":%d,\"message\":\"%s\"}}", status, msg);
    fake_json(c, status, NULL, body);
}

static void fake_log(struct fake_gcs *f, const struct fake_req *r)
{
    if (f->n_log >= FAKE_MAX_LOG)
        return;
    const char *extra = r->content_range[0] ? r->content_range : r->range;
    snprintf(f->log[f->n_log++], sizeof f->log[0], "%.15s %.120s%s%.50s", r->method, r->target,
             extra[0] ? " | " : "", extra);
}

static struct fake_obj *fake_find(struct fake_gcs *f, const char *name)
{
    for (int i = 0; i < FAKE_MAX_OBJ; i++)
        if (f->objs[i].data && strcmp(f->objs[i].name, name) == 0)
            return &f->objs[i];
    return NULL;
}

static void fake_store(struct fake_gcs *f, const char *name, const char *data, size_t len,
                       const char *cls)
{
    struct fake_obj *o = fake_find(f, name);
    for (int i = 0; !o && i < FAKE_MAX_OBJ; i++)
        if (!f->objs[i].data)
            o = &f->objs[i];
    if (!o)
        return;
    free(o->data);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->data = malloc(len + 1);
    memcpy(o->data, data, len);
    o->len = len;
    snprintf(o->cls, sizeof o->cls, "%s", cls && *cls ? cls : "STANDARD");
    o->gen = ++f->next_gen;
}

static void fake_obj_json(int c, const struct fake_obj *o)
{
    char body[600];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"size\":\"%zu\",\"generation\":\"%lld\",\"storageClass\":\"%s\","
             "\"updated\":\"2024-01-02T03:04:05.678Z\"}", o->name, o->len, o->gen, o->cls);
    fake_json(c, 200, NULL, body);
}

/* Pulls "name" / "storageClass" string values out of a small JSON text. */
static void fake_json_str(const char *json, const char *field, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", field);
    out[0] = '\0';
    const char *p = strstr(json, pat);
    if (!p)
        return;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* ---- routes -------------------------------------------------------------------------------- */

static void fake_token(struct fake_gcs *f, int c, const struct fake_req *r)
{
    fake_param(r->body, "grant_type", f->last_grant, sizeof f->last_grant);
    fake_param(r->body, "assertion", f->last_assertion, sizeof f->last_assertion);
    if (f->token_status && f->token_status != 200) {
        fake_json(c, f->token_status, NULL,
                  "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}");
        return;
    }
    f->token_calls++;
    snprintf(f->token, sizeof f->token, "tok-%d", f->token_calls);
    char body[256];
    snprintf(body, sizeof body,
             "{\"access_token\":\"%s\",\"expires_in\":%d,\"token_type\":\"Bearer\"}", f->token,
             f->token_expires_in ? f->token_expires_in : 3600);
    fake_json(c, 200, NULL, body);
}

static void fake_multipart(struct fake_gcs *f, int c, const struct fake_req *r)
{
    const char *b = strstr(r->ctype, "boundary=");
    if (!b) {
        fake_error(c, 400, "no boundary");
        return;
    }
    char delim[128];
    snprintf(delim, sizeof delim, "--%s", b + 9);
    char *p1 = memmem(r->body, r->body_len, delim, strlen(delim));
    char *meta = p1 ? strstr(p1, "\r\n\r\n") : NULL;
    char *p2 = meta ? memmem(meta, r->body_len - (size_t)(meta - r->body), delim, strlen(delim))
                    : NULL;
    char *data = p2 ? strstr(p2, "\r\n\r\n") : NULL;
    if (!data) {
        fake_error(c, 400, "bad multipart body");
        return;
    }
    data += 4;
    char *endp = memmem(data, r->body_len - (size_t)(data - r->body), delim, strlen(delim));
    if (!endp || endp - data < 2) {
        fake_error(c, 400, "bad multipart end");
        return;
    }
    char metatxt[1024], name[256], cls[32];
    size_t ml = (size_t)(p2 - meta);
    snprintf(metatxt, sizeof metatxt, "%.*s", (int)(ml < 1000 ? ml : 1000), meta);
    fake_json_str(metatxt, "name", name, sizeof name);
    fake_json_str(metatxt, "storageClass", cls, sizeof cls);
    fake_store(f, name, data, (size_t)(endp - 2 - data), cls);
    fake_obj_json(c, fake_find(f, name));
}

static void fake_resumable_start(struct fake_gcs *f, int c, const struct fake_req *r)
{
    if (f->n_sess >= FAKE_MAX_SESS) {
        fake_error(c, 500, "too many sessions");
        return;
    }
    struct fake_sess *s = &f->sess[f->n_sess];
    fake_param(r->query, "name", s->name, sizeof s->name);
    fake_json_str(r->body, "storageClass", s->cls, sizeof s->cls);
    char loc[256];
    snprintf(loc, sizeof loc,
             "Location: http://127.0.0.1:%d/upload/storage/v1/b/bkt/o?uploadType=resumable"
             "&upload_id=S%d\r\n", f->port, f->n_sess);
    f->n_sess++;
    fake_reply(c, 200, loc, "", 0);
}

static struct fake_sess *fake_session_of(struct fake_gcs *f, const struct fake_req *r)
{
    char id[32];
    if (!fake_param(r->query, "upload_id", id, sizeof id) || id[0] != 'S')
        return NULL;
    int i = atoi(id + 1);
    return i >= 0 && i < f->n_sess ? &f->sess[i] : NULL;
}

static void fake_session_state(struct fake_gcs *f, int c, const struct fake_sess *s)
{
    char hdr[96] = "";
    if (s->len)
        snprintf(hdr, sizeof hdr, "Range: bytes=0-%zu\r\n", s->len - 1);
    fake_reply(c, 308, hdr, "", 0);
}

static void fake_resumable_put(struct fake_gcs *f, int c, const struct fake_req *r)
{
    struct fake_sess *s = fake_session_of(f, r);
    if (!s || s->cancelled || s->done) {
        fake_error(c, 404, "No such upload");
        return;
    }
    int idx = ++f->chunk_puts;
    if (f->chunk_status) {
        fake_error(c, f->chunk_status, "refused");
        return;
    }
    if (idx == f->fail_chunk) {
        fake_error(c, 503, "backend error");
        return;
    }
    unsigned long long a = 0, b = 0, total = 0;
    bool total_known = false, has_bytes = false;
    const char *cr = r->content_range;
    if (sscanf(cr, "bytes */%llu", &total) == 1) {
        total_known = true;
    } else if (sscanf(cr, "bytes %llu-%llu/", &a, &b) == 2) {
        has_bytes = true;
        const char *slash = strchr(cr, '/');
        total_known = slash && slash[1] != '*';
        if (total_known)
            total = strtoull(slash + 1, NULL, 10);
    } else {
        fake_error(c, 400, "bad Content-Range");
        return;
    }
    if (has_bytes && (b - a + 1 != r->body_len || a > s->len)) {
        fake_error(c, 400, "Content-Range does not match the body or leaves a gap");
        return;
    }
    if (has_bytes && !total_known && r->body_len % FAKE_QUANTUM != 0) {
        fake_error(c, 400, "non-final chunk not a multiple of 256 KiB");
        return;
    }
    if (has_bytes) {
        size_t skip = s->len - (size_t)a; /* already persisted: ignored */
        size_t fresh = r->body_len - skip;
        if (idx == f->short_chunk && fresh > f->short_keep)
            fresh = f->short_keep;
        s->data = realloc(s->data, s->len + fresh + 1);
        memcpy(s->data + s->len, r->body + skip, fresh);
        s->len += fresh;
    }
    if (total_known && s->len == total) {
        s->done = true;
        fake_store(f, s->name, s->data ? s->data : "", s->len, s->cls);
        fake_obj_json(c, fake_find(f, s->name));
        return;
    }
    fake_session_state(f, c, s);
}

static void fake_get_object(struct fake_gcs *f, int c, const struct fake_req *r, const char *name)
{
    struct fake_obj *o = fake_find(f, name);
    if (!o) {
        char msg[300];
        snprintf(msg, sizeof msg, "No such object: bkt/%s", name);
        fake_error(c, 404, msg);
        return;
    }
    char alt[16] = "", gen[32] = "";
    fake_param(r->query, "alt", alt, sizeof alt);
    if (strcmp(alt, "media") != 0) {
        fake_obj_json(c, o);
        return;
    }
    if (fake_param(r->query, "generation", gen, sizeof gen) && atoll(gen) != o->gen) {
        fake_error(c, 404, "No such object (generation)");
        return;
    }
    unsigned long long a, b;
    if (sscanf(r->range, "bytes=%llu-%llu", &a, &b) == 2) {
        if (a >= o->len) {
            fake_error(c, 416, "range not satisfiable");
            return;
        }
        if (b >= o->len)
            b = o->len - 1;
        char hdr[160];
        snprintf(hdr, sizeof hdr,
                 "Content-Range: bytes %llu-%llu/%zu\r\nx-goog-generation: %lld\r\n", a, b,
                 o->len, o->gen);
        fake_reply(c, 206, hdr, o->data + a, (size_t)(b - a + 1));
        return;
    }
    fake_reply(c, 200, NULL, o->data, o->len);
}

static void fake_delete_object(struct fake_gcs *f, int c, const char *name)
{
    struct fake_obj *o = fake_find(f, name);
    if (!o) {
        fake_error(c, 404, "No such object");
        return;
    }
    free(o->data);
    o->data = NULL;
    fake_reply(c, 204, NULL, "", 0);
}

static void fake_handle(struct fake_gcs *f, int c, const struct fake_req *r)
{
    if (strcmp(r->path, "/token") == 0 && strcmp(r->method, "POST") == 0) {
        fake_token(f, c, r);
        return;
    }
    if (!r->auth[0])
        f->unauthenticated++;
    if (f->require_auth) {
        char want[96];
        snprintf(want, sizeof want, "Bearer %s", f->token);
        if (!f->token[0] || strcmp(r->auth, want) != 0) {
            f->rejected++;
            fake_error(c, 401, "Invalid Credentials");
            return;
        }
    }
    if (f->bucket_missing) {
        fake_error(c, 404, "The specified bucket does not exist.");
        return;
    }
    if (f->deny) {
        fake_error(c, 403, "tester@example.iam.gserviceaccount.com does not have storage.objects "
                           "access to the Google Cloud Storage bucket.");
        return;
    }
    static const char up[] = "/upload/storage/v1/b/bkt/o", obj[] = "/storage/v1/b/bkt/o/";
    char type[32] = "", name[256] = "";
    fake_param(r->query, "uploadType", type, sizeof type);
    fake_param(r->query, "name", name, sizeof name);
    if (strcmp(r->path, up) == 0 && strcmp(r->method, "POST") == 0) {
        if (strcmp(type, "media") == 0) {
            fake_store(f, name, r->body, r->body_len, NULL);
            fake_obj_json(c, fake_find(f, name));
        } else if (strcmp(type, "multipart") == 0) {
            fake_multipart(f, c, r);
        } else if (strcmp(type, "resumable") == 0) {
            fake_resumable_start(f, c, r);
        } else {
            fake_error(c, 400, "bad uploadType");
        }
    } else if (strcmp(r->path, up) == 0 && strcmp(r->method, "PUT") == 0) {
        fake_resumable_put(f, c, r);
    } else if (strcmp(r->path, up) == 0 && strcmp(r->method, "DELETE") == 0) {
        struct fake_sess *s = fake_session_of(f, r);
        if (s)
            s->cancelled = true;
        fake_reply(c, s ? 499 : 404, NULL, "", 0);
    } else if (strncmp(r->path, obj, sizeof obj - 1) == 0 && strcmp(r->method, "GET") == 0) {
        fake_get_object(f, c, r, r->path + sizeof obj - 1);
    } else if (strncmp(r->path, obj, sizeof obj - 1) == 0 && strcmp(r->method, "DELETE") == 0) {
        fake_delete_object(f, c, r->path + sizeof obj - 1);
    } else {
        fake_error(c, 400, "route not faked");
    }
}

static void *fake_main(void *arg)
{
    struct fake_gcs *f = arg;
    for (;;) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            break;
        struct fake_req r;
        if (fake_read_request(c, &r)) {
            pthread_mutex_lock(&f->lock);
            fake_log(f, &r);
            fake_handle(f, c, &r);
            pthread_mutex_unlock(&f->lock);
            free(r.body);
        }
        close(c);
    }
    return NULL;
}

static int fake_start(struct fake_gcs *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    f->next_gen = 1000;
    f->fd = loopback_listen(16, &f->port);
    if (f->fd < 0)
        return -1;
    return pthread_create(&f->thread, NULL, fake_main, f);
}

static void fake_stop(struct fake_gcs *f)
{
    shutdown(f->fd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->fd);
    for (int i = 0; i < FAKE_MAX_OBJ; i++)
        free(f->objs[i].data);
    for (int i = 0; i < f->n_sess; i++)
        free(f->sess[i].data);
    pthread_mutex_destroy(&f->lock);
}

/* Number of log lines containing `needle`. */
static int fake_count(struct fake_gcs *f, const char *needle)
{
    int n = 0;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < f->n_log; i++)
        if (strstr(f->log[i], needle))
            n++;
    pthread_mutex_unlock(&f->lock);
    return n;
}

#endif
