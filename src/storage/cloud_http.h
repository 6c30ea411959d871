/*
 * cloud_http.h - the HTTP layer the cloud storage backends (S3, Azure Blob, GCS) share: one
 * request/response exchange over libcurl with connection reuse, per-attempt signing, and the
 * storage retry policy of ABS (abs-reference §2.3: base 1 s, x1.1, at most 100 retries, backoff
 * capped at 2 min, request timeout 10 min), applied to connection failures, timeouts, resets,
 * HTTP 5xx and 429, never to other 4xx.
 *
 * A `struct cloud_http` is a small pool of curl easy handles (kept alive between requests, so
 * TLS and TCP connections are reused); any thread may call cloud_http_do at any time.
 *
 * Bodies: requests send `body`/`body_len` as they are (a part is buffered by the caller, so a
 * retry can send it again). Responses are captured in memory up to `max_body` bytes (more is an
 * error), or handed to `sink` as they arrive (ranged downloads); headers are captured always.
 *
 * Errors: a non-zero return means no usable HTTP answer (connection refused, DNS, TLS, timeout
 * after every retry, body over max_body, out of memory): ERR_IO with a message naming `what`
 * and curl's reason. An HTTP answer, whatever its status, returns 0 with resp->status set (after
 * retries for 5xx/429 ran out): mapping statuses to errors is the backend's business, because
 * each store explains itself in its own body format. URLs in messages never carry query
 * strings (they may hold signatures or tokens).
 */
#ifndef ABS_STORAGE_CLOUD_HTTP_H
#define ABS_STORAGE_CLOUD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "util/err.h"

struct cloud_http;

struct cloud_retry {
    int max_retries;        /* retries after the first attempt (ABS: 100) */
    int64_t base_delay_ms;  /* first backoff (ABS: 1000) */
    double multiplier;      /* growth per retry (ABS: 1.1) */
    int64_t max_delay_ms;   /* backoff cap (ABS: 120000) */
    int64_t timeout_ms;     /* whole-request timeout per attempt (ABS: 600000) */
    int64_t connect_timeout_ms; /* connect phase per attempt (default 10000) */
};

/* The ABS defaults above. */
void cloud_retry_default(struct cloud_retry *r);

struct cloud_http_opts {
    struct cloud_retry retry;
    int max_connections;    /* pool size / max connections per host; 0 = 16 */
    const char *ca_file;    /* extra trust anchor (tests); NULL = system store */
    /* Optional AWS SigV4 signing done by libcurl at each attempt: "aws:amz:<region>:s3"
     * (CURLOPT_AWS_SIGV4) with user:password = access key id : secret key. NULL = none. */
    const char *aws_sigv4;
};

int cloud_http_new(const struct cloud_http_opts *o, struct cloud_http **out, struct err *e);

/* libcurl's global initialisation, done once on first use (thread-safe): it sets up OpenSSL
 * for HTTPS and costs a couple of MiB of memory, which a service on local storage never pays. */
void cloud_http_global_init(void);

/* From now on requests are not retried and retry waits end: the service is stopping, so jobs
 * blocked on a store that does not answer fail now instead of after hours of backoff. */
void cloud_http_abort_retries(void);
void cloud_http_free(struct cloud_http *h); /* NULL ok */

/* Called before every attempt (the first and each retry) to add time-dependent headers
 * (Authorization, x-ms-date, a refreshed bearer token...). `headers` is the request's list as
 * the caller built it; append to *extra (freed by cloud_http_do after the attempt). */
typedef int (*cloud_sign_fn)(void *ctx, const char *method, const char *url,
                             const struct curl_slist *headers, const void *body,
                             size_t body_len, struct curl_slist **extra, struct err *e);

/* Receives response body bytes of a 2xx answer when set; returns 0 to go on, non-zero to
 * abort the transfer (cloud_http_do then fails with the error the sink set). A retried
 * attempt calls `reset` first (when set) so the sink can drop what it got. */
typedef int (*cloud_sink_fn)(void *ctx, const void *data, size_t len, struct err *e);
typedef void (*cloud_sink_reset_fn)(void *ctx);

struct cloud_http_req {
    const char *what;            /* for messages: "s3 PUT bucket/key", never a secret */
    const char *method;          /* GET PUT POST DELETE HEAD */
    const char *url;             /* full URL, query included */
    const struct curl_slist *headers; /* caller-owned; may be NULL */
    const void *body;            /* request body, may be NULL */
    size_t body_len;
    size_t max_body;             /* in-memory response cap; 0 = 16 MiB */
    cloud_sink_fn sink;          /* optional streamed response body (2xx only) */
    cloud_sink_reset_fn sink_reset;
    void *sink_ctx;
    cloud_sign_fn sign;          /* optional per-attempt signer */
    void *sign_ctx;
    const char *userpwd;         /* "user:password" for aws_sigv4 signing; never logged */
    bool no_retry;               /* one attempt only */
};

struct cloud_http_resp {
    long status;                 /* HTTP status of the final attempt */
    char *body;                  /* NUL-terminated (when no sink); free with cloud_http_resp_free */
    size_t body_len;
    struct curl_slist *headers;  /* "name: value" lines of the final answer */
    int attempts;                /* attempts made */
};

int cloud_http_do(struct cloud_http *h, const struct cloud_http_req *req,
                  struct cloud_http_resp *resp, struct err *e);
void cloud_http_resp_free(struct cloud_http_resp *resp);

/* Value of a response header (case-insensitive name), trimmed, or NULL. Points into resp. */
const char *cloud_http_header(const struct cloud_http_resp *resp, const char *name,
                              size_t *len);

/* The same lookup in any "name: value" header list (request headers too). */
const char *cloud_header_find(const struct curl_slist *l, const char *name, size_t *len);

/* Percent-encodes `s` per RFC 3986 (unreserved kept); '/' kept when keep_slash. Heap; NULL on
 * no memory. */
char *cloud_url_encode(const char *s, bool keep_slash);

/* Whether an HTTP status is retried (5xx, 429, 408). */
bool cloud_http_status_retryable(long status);

#endif
