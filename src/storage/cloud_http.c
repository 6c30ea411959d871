/*
 * cloud_http.c - see cloud_http.h: the libcurl exchange the cloud backends share, with a pool of
 * reusable easy handles (each keeps its own live connections), per-attempt signing, response
 * capture (memory or sink), header capture, and the retry loop with exponential backoff.
 */
#include "storage/cloud_http.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>


#define DEFAULT_MAX_BODY (16u << 20)
#define DEFAULT_POOL 16

struct cloud_http {
    struct cloud_retry retry;
    char *ca_file;
    char *aws_sigv4;
    pthread_mutex_t lock;
    CURL **idle;
    size_t n_idle, cap;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void cloud_retry_default(struct cloud_retry *r)
{
    r->max_retries = 100;
    r->base_delay_ms = 1000;
    r->multiplier = 1.1;
    r->max_delay_ms = 120000;
    r->timeout_ms = 600000;
    r->connect_timeout_ms = 10000;
}

void cloud_http_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
}

int cloud_http_new(const struct cloud_http_opts *o, struct cloud_http **out, struct err *e)
{
    cloud_http_global_init();
    struct cloud_http *h = calloc(1, sizeof *h);
    if (!h)
        return err_set(e, ERR_NOMEM, "out of memory");
    h->retry = o->retry;
    if (h->retry.connect_timeout_ms <= 0)
        h->retry.connect_timeout_ms = 10000;
    h->cap = o->max_connections > 0 ? (size_t)o->max_connections : DEFAULT_POOL;
    h->idle = calloc(h->cap, sizeof *h->idle);
    h->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
    h->aws_sigv4 = o->aws_sigv4 ? strdup(o->aws_sigv4) : NULL;
    if (!h->idle || (o->ca_file && !h->ca_file) || (o->aws_sigv4 && !h->aws_sigv4)) {
        cloud_http_free(h);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&h->lock, NULL);
    *out = h;
    return 0;
}

void cloud_http_free(struct cloud_http *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_idle; i++)
        curl_easy_cleanup(h->idle[i]);
    if (h->idle)
        pthread_mutex_destroy(&h->lock);
    free(h->idle);
    free(h->ca_file);
    free(h->aws_sigv4);
    free(h);
}

static CURL *handle_acquire(struct cloud_http *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->lock);
    if (h->n_idle > 0)
        c = h->idle[--h->n_idle];
    pthread_mutex_unlock(&h->lock);
    if (c)
        curl_easy_reset(c); /* keeps the live connections */
    else
        c = curl_easy_init();
    return c;
}

static void handle_release(struct cloud_http *h, CURL *c)
{
    pthread_mutex_lock(&h->lock);
    if (h->n_idle < h->cap) {
        h->idle[h->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    if (c)
        curl_easy_cleanup(c);
}

/* ---- one attempt -------------------------------------------------------------------------- */

struct attempt {
    CURL *curl;
    const struct cloud_http_req *req;
    struct cloud_http_resp *resp;
    size_t max_body;
    size_t body_cap;
    bool over_cap;
    bool sink_failed;
    struct err sink_err;
};

static bool status_ok(long status) { return status >= 200 && status < 300; }

static int append_body(struct attempt *a, const char *data, size_t len)
{
    struct cloud_http_resp *r = a->resp;
    if (r->body_len + len > a->max_body) {
        a->over_cap = true;
        return -1;
    }
    if (r->body_len + len + 1 > a->body_cap) {
        size_t cap = a->body_cap ? a->body_cap : 4096;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb)
            return -1;
        r->body = nb;
        a->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct attempt *a = ctx;
    size_t len = size * nmemb;
    long status = 0;
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
    if (a->req->sink && status_ok(status)) {
        if (a->req->sink(a->req->sink_ctx, data, len, &a->sink_err)) {
            a->sink_failed = true;
            return 0;
        }
        return len;
    }
    return append_body(a, data, len) ? 0 : len;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct attempt *a = ctx;
    size_t len = size * nmemb;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new answer (after 100, redirects) */
        curl_slist_free_all(a->resp->headers);
        a->resp->headers = NULL;
        return len;
    }
    while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    if (len == 0 || !memchr(data, ':', len))
        return size * nmemb;
    char *line = strndup(data, len);
    struct curl_slist *n = line ? curl_slist_append(a->resp->headers, line) : NULL;
    free(line);
    if (!n)
        return 0;
    a->resp->headers = n;
    return size * nmemb;
}

static bool has_header(const struct curl_slist *l, const char *name)
{
    size_t n = strlen(name);
    for (; l; l = l->next)
        if (strncasecmp(l->data, name, n) == 0 && (l->data[n] == ':' || l->data[n] == ';'))
            return true;
    return false;
}

/* Whether the request goes out with a body (curl would then add a form Content-Type). */
static bool sends_body(const struct cloud_http_req *req)
{
    const char *m = req->method ? req->method : "GET";
    return req->body || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0;
}

/* The request's headers, the signer's, and the ones that keep curl from adding its own. */
static int build_headers(const struct cloud_http_req *req, const struct curl_slist *extra,
                         struct curl_slist **out)
{
    struct curl_slist *l = NULL;
    const struct curl_slist *lists[2] = {req->headers, extra};
    for (int k = 0; k < 2; k++)
        for (const struct curl_slist *p = lists[k]; p; p = p->next) {
            struct curl_slist *n = curl_slist_append(l, p->data);
            if (!n)
                goto nomem;
            l = n;
        }
    if (!has_header(l, "Expect")) {
        struct curl_slist *n = curl_slist_append(l, "Expect:");
        if (!n)
            goto nomem;
        l = n;
    }
    if (sends_body(req) && !has_header(l, "Content-Type")) {
        struct curl_slist *n = curl_slist_append(l, "Content-Type:");
        if (!n)
            goto nomem;
        l = n;
    }
    *out = l;
    return 0;
nomem:
    curl_slist_free_all(l);
    return -1;
}

static void set_method(CURL *c, const struct cloud_http_req *req)
{
    const char *m = req->method ? req->method : "GET";
    if (sends_body(req)) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(m, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
    } else if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
    }
}

static void reset_response(struct attempt *a)
{
    struct cloud_http_resp *r = a->resp;
    free(r->body);
    curl_slist_free_all(r->headers);
    r->body = NULL;
    r->body_len = 0;
    r->headers = NULL;
    r->status = 0;
    a->body_cap = 0;
    a->over_cap = false;
    a->sink_failed = false;
}

/* Runs one attempt; returns the curl code (CURLE_OK = an HTTP answer in resp). */
static CURLcode attempt_run(struct cloud_http *h, struct attempt *a, struct err *e, int *fatal)
{
    const struct cloud_http_req *req = a->req;
    struct curl_slist *extra = NULL, *headers = NULL;
    *fatal = 0;
    if (req->sign && req->sign(req->sign_ctx, req->method ? req->method : "GET", req->url,
                               req->headers, req->body, req->body_len, &extra, e)) {
        curl_slist_free_all(extra);
        *fatal = e->code ? e->code : err_set(e, ERR_IO, "%s: signing failed", req->what);
        return CURLE_ABORTED_BY_CALLBACK;
    }
    if (build_headers(req, extra, &headers)) {
        curl_slist_free_all(extra);
        *fatal = err_set(e, ERR_NOMEM, "%s: out of memory", req->what);
        return CURLE_OUT_OF_MEMORY;
    }
    CURL *c = a->curl;
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->retry.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->retry.connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    if (h->aws_sigv4 && req->userpwd) {
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, h->aws_sigv4);
        curl_easy_setopt(c, CURLOPT_USERPWD, req->userpwd);
    }
    set_method(c, req);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->resp->status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    curl_slist_free_all(extra);
    if (a->sink_failed) {
        *e = a->sink_err;
        *fatal = e->code ? e->code : err_set(e, ERR_IO, "%s: download aborted", req->what);
    } else if (a->over_cap) {
        *fatal = err_set(e, ERR_IO, "%s: reply larger than %zu bytes", req->what, a->max_body);
    }
    return rc;
}

static bool curl_code_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

bool cloud_http_status_retryable(long status)
{
    return status >= 500 || status == 429 || status == 408;
}

static bool retries_aborted; /* the service is stopping: no more retries (atomic) */

void cloud_http_abort_retries(void)
{
    __atomic_store_n(&retries_aborted, true, __ATOMIC_RELEASE);
}

static bool aborted(void)
{
    return __atomic_load_n(&retries_aborted, __ATOMIC_ACQUIRE);
}

/* Sleeps ms, in short slices so that cloud_http_abort_retries() cuts the wait short. */
static void sleep_ms(int64_t ms)
{
    while (ms > 0 && !aborted()) {
        int64_t slice = ms < 100 ? ms : 100;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
        ms -= slice;
    }
}

static int64_t backoff_ms(const struct cloud_retry *r, int retry)
{
    double d = (double)r->base_delay_ms;
    for (int i = 0; i < retry && d < (double)r->max_delay_ms; i++)
        d *= r->multiplier > 1.0 ? r->multiplier : 1.0;
    if (r->max_delay_ms > 0 && d > (double)r->max_delay_ms)
        d = (double)r->max_delay_ms;
    return (int64_t)d;
}

int cloud_http_do(struct cloud_http *h, const struct cloud_http_req *req,
                  struct cloud_http_resp *resp, struct err *e)
{
    memset(resp, 0, sizeof *resp);
    struct attempt a = {.req = req, .resp = resp,
                        .max_body = req->max_body ? req->max_body : DEFAULT_MAX_BODY};
    a.curl = handle_acquire(h);
    if (!a.curl)
        return err_set(e, ERR_NOMEM, "%s: cannot create an HTTP handle", req->what);
    int max_retries = req->no_retry ? 0 : h->retry.max_retries;
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        if (attempt > 0) {
            reset_response(&a);
            if (req->sink_reset)
                req->sink_reset(req->sink_ctx);
        }
        resp->attempts = attempt + 1;
        int fatal;
        CURLcode cc = attempt_run(h, &a, e, &fatal);
        if (fatal) {
            rc = fatal;
            break;
        }
        bool retry_more = attempt < max_retries && !aborted();
        if (cc == CURLE_OK) {
            if (!cloud_http_status_retryable(resp->status) || !retry_more)
                break;
        } else if (!curl_code_retryable(cc) || !retry_more) {
            rc = err_set(e, ERR_IO, "%s: %s (after %d attempt%s)", req->what,
                         curl_easy_strerror(cc), attempt + 1, attempt ? "s" : "");
            break;
        }
        if (cc == CURLE_OK) /* an error answer: retry on a new connection (see below) */
            curl_easy_setopt(a.curl, CURLOPT_FRESH_CONNECT, 1L);
        sleep_ms(backoff_ms(&h->retry, attempt));
    }
    /* A connection that carried an error answer is not reused: some stores (the GCS emulator
     * after a 404 DELETE) leave it unable to answer the next request. */
    if (rc == 0 && resp->status < 400)
        handle_release(h, a.curl);
    else
        curl_easy_cleanup(a.curl);
    if (rc)
        cloud_http_resp_free(resp);
    return rc;
}

void cloud_http_resp_free(struct cloud_http_resp *resp)
{
    if (!resp)
        return;
    free(resp->body);
    curl_slist_free_all(resp->headers);
    resp->body = NULL;
    resp->headers = NULL;
    resp->body_len = 0;
}

const char *cloud_header_find(const struct curl_slist *l, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (; l; l = l->next) {
        if (strncasecmp(l->data, name, n) != 0 || l->data[n] != ':')
            continue;
        const char *v = l->data + n + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vl = strlen(v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (len)
            *len = vl;
        return v;
    }
    return NULL;
}

const char *cloud_http_header(const struct cloud_http_resp *resp, const char *name, size_t *len)
{
    return cloud_header_find(resp->headers, name, len);
}

char *cloud_url_encode(const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *p = out;
    if (!out)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (isalnum(*c) || *c == '-' || *c == '_' || *c == '.' || *c == '~' ||
            (keep_slash && *c == '/')) {
            *p++ = (char)*c;
        } else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        }
    }
    *p = '\0';
    return out;
}
