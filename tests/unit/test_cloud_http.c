/*
 * test_cloud_http.c - the cloud backends' HTTP layer against a scripted HTTP server on loopback:
 * retries on 5xx/429 and connection failures (none on other 4xx), per-attempt signing, body and
 * header capture, streamed sinks reset on retry, the reply size cap, and URL encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "storage/cloud_http.h"
#include "loopback.h"

/* ---- scripted server: answers each request with the next canned reply ---------------------- */

#define MAX_REPLIES 8

struct server {
    int fd;
    int port;
    pthread_t thread;
    const char *replies[MAX_REPLIES];
    int n_replies;
    int served;
    char last_request[8192];
};

static void read_request(int c, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    while (len + 1 < cap) {
        ssize_t n = read(c, buf + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(buf, "Content-Length:");
        size_t body = cl ? (size_t)atol(cl + 15) : 0;
        if (len >= (size_t)(end + 4 - buf) + body)
            break;
    }
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    while (s->served < s->n_replies) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        read_request(c, s->last_request, sizeof s->last_request);
        const char *r = s->replies[s->served++];
        ssize_t w = write(c, r, strlen(r));
        (void)w;
        close(c);
    }
    return NULL;
}

static void server_start(struct server *s)
{
    s->fd = loopback_listen(8, &s->port);
    assert_true(s->fd >= 0);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(struct server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
}


static const char *ok_hello = "HTTP/1.1 200 OK\r\nConnection: close\r\nETag: \"abc\"\r\n"
                              "Content-Length: 5\r\n\r\nhello";
static const char *busy = "HTTP/1.1 503 Slow Down\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy";
static const char *missing = "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 7\r\n\r\nmissing";

static struct cloud_http *client(int max_retries)
{
    struct cloud_http_opts o = {0};
    cloud_retry_default(&o.retry);
    o.retry.max_retries = max_retries;
    o.retry.base_delay_ms = 1;
    o.retry.max_delay_ms = 5;
    o.retry.timeout_ms = 5000;
    struct cloud_http *h;
    struct err e = {0};
    assert_int_equal(cloud_http_new(&o, &h, &e), 0);
    return h;
}

static char *url_of(const struct server *s, const char *path)
{
    static char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    return url;
}

/* ---- tests --------------------------------------------------------------------------------- */

struct sign_count {
    int calls;
};

static int count_sign(void *ctx, const char *method, const char *url,
                      const struct curl_slist *headers, const void *body, size_t body_len,
                      struct curl_slist **extra, struct err *e)
{
    struct sign_count *sc = ctx;
    char line[64];
    snprintf(line, sizeof line, "X-Attempt: %d", ++sc->calls);
    *extra = curl_slist_append(*extra, line);
    return 0;
}

static void test_retries_5xx_then_succeeds(void **state)
{
    struct server s = {.replies = {busy, busy, ok_hello}, .n_replies = 3};
    server_start(&s);
    struct cloud_http *h = client(5);
    struct sign_count sc = {0};
    struct cloud_http_req req = {.what = "test GET", .method = "GET", .url = url_of(&s, "/obj"),
                                 .sign = count_sign, .sign_ctx = &sc};
    struct cloud_http_resp resp;
    struct err e = {0};
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.attempts, 3);
    assert_int_equal(sc.calls, 3);
    assert_string_equal(resp.body, "hello");
    size_t len;
    const char *etag = cloud_http_header(&resp, "etag", &len);
    assert_non_null(etag);
    assert_int_equal(len, 5);
    assert_memory_equal(etag, "\"abc\"", 5);
    assert_non_null(strstr(s.last_request, "X-Attempt: 3"));
    cloud_http_resp_free(&resp);
    cloud_http_free(h);
    server_stop(&s);
}

static void test_4xx_not_retried(void **state)
{
    struct server s = {.replies = {missing, ok_hello}, .n_replies = 2};
    server_start(&s);
    struct cloud_http *h = client(5);
    struct cloud_http_req req = {.what = "test GET", .method = "GET", .url = url_of(&s, "/x")};
    struct cloud_http_resp resp;
    struct err e = {0};
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
    assert_int_equal(resp.status, 404);
    assert_int_equal(resp.attempts, 1);
    assert_string_equal(resp.body, "missing");
    cloud_http_resp_free(&resp);
    /* let the server finish its script */
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
    cloud_http_resp_free(&resp);
    cloud_http_free(h);
    server_stop(&s);
}

static void test_retries_run_out(void **state)
{
    struct server s = {.replies = {busy, busy}, .n_replies = 2};
    server_start(&s);
    struct cloud_http *h = client(1);
    struct cloud_http_req req = {.what = "test GET", .method = "GET", .url = url_of(&s, "/x")};
    struct cloud_http_resp resp;
    struct err e = {0};
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
    assert_int_equal(resp.status, 503);
    assert_int_equal(resp.attempts, 2);
    cloud_http_resp_free(&resp);
    cloud_http_free(h);
    server_stop(&s);
}

static void test_put_body_without_curl_defaults(void **state)
{
    struct server s = {.replies = {ok_hello}, .n_replies = 1};
    server_start(&s);
    struct cloud_http *h = client(0);
    static const char body[] = "payload-bytes";
    struct cloud_http_req req = {.what = "test PUT", .method = "PUT", .url = url_of(&s, "/o"),
                                 .body = body, .body_len = sizeof body - 1};
    struct cloud_http_resp resp;
    struct err e = {0};
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(s.last_request, "PUT /o HTTP/1.1"));
    assert_non_null(strstr(s.last_request, "Content-Length: 13"));
    assert_non_null(strstr(s.last_request, "payload-bytes"));
    assert_null(strcasestr(s.last_request, "Expect:"));
    assert_null(strcasestr(s.last_request, "Content-Type:"));
    cloud_http_resp_free(&resp);
    cloud_http_free(h);
    server_stop(&s);
}

static void test_empty_put_has_no_form_type(void **state)
{
    struct server s = {.replies = {ok_hello}, .n_replies = 1};
    server_start(&s);
    struct cloud_http *h = client(0);
    struct cloud_http_req req = {.what = "test PUT", .method = "PUT", .url = url_of(&s, "/empty")};
    struct cloud_http_resp resp;
    struct err e = {0};
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
    assert_non_null(strstr(s.last_request, "PUT /empty HTTP/1.1"));
    assert_non_null(strstr(s.last_request, "Content-Length: 0"));
    assert_null(strcasestr(s.last_request, "Content-Type:"));
    cloud_http_resp_free(&resp);
    cloud_http_free(h);
    server_stop(&s);
}

static int failing_sign(void *ctx, const char *method, const char *url,
                        const struct curl_slist *headers, const void *body, size_t body_len,
                        struct curl_slist **extra, struct err *e)
{
    return err_set(e, ERR_INVALID, "no credentials");
}

static void test_sign_failure_keeps_its_code(void **state)
{
    struct cloud_http *h = client(3);
    struct cloud_http_req req = {.what = "test GET", .method = "GET",
                                 .url = "http://127.0.0.1:1/x", .sign = failing_sign};
    struct cloud_http_resp resp;
    struct err e = {0};
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), ERR_INVALID);
    assert_string_equal(e.msg, "no credentials");
    assert_int_equal(resp.attempts, 1);
    cloud_http_free(h);
}

struct sink_buf {
    char data[64];
    size_t len;
    int resets;
};

static int sink_into(void *ctx, const void *data, size_t len, struct err *e)
{
    struct sink_buf *b = ctx;
    if (b->len + len > sizeof b->data)
        return err_set(e, ERR_IO, "sink full");
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static void sink_reset(void *ctx)
{
    struct sink_buf *b = ctx;
    b->len = 0;
    b->resets++;
}

static void test_sink_gets_2xx_only(void **state)
{
    struct server s = {.replies = {busy, ok_hello}, .n_replies = 2};
    server_start(&s);
    struct cloud_http *h = client(3);
    struct sink_buf b = {0};
    struct cloud_http_req req = {.what = "test GET", .method = "GET", .url = url_of(&s, "/x"),
                                 .sink = sink_into, .sink_reset = sink_reset, .sink_ctx = &b};
    struct cloud_http_resp resp;
    struct err e = {0};
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "hello", 5);
    assert_int_equal(b.resets, 1);
    assert_int_equal(resp.body_len, 0); /* the 503's body went to resp, then was dropped */
    cloud_http_resp_free(&resp);
    cloud_http_free(h);
    server_stop(&s);
}

static void test_body_cap(void **state)
{
    struct server s = {.replies = {ok_hello}, .n_replies = 1};
    server_start(&s);
    struct cloud_http *h = client(3);
    struct cloud_http_req req = {.what = "test GET", .method = "GET", .url = url_of(&s, "/x"),
                                 .max_body = 3};
    struct cloud_http_resp resp;
    struct err e = {0};
    assert_int_not_equal(cloud_http_do(h, &req, &resp, &e), 0);
    assert_non_null(strstr(e.msg, "test GET"));
    assert_non_null(strstr(e.msg, "larger than 3 bytes"));
    cloud_http_free(h);
    server_stop(&s);
}

static void test_connection_refused(void **state)
{
    struct server s = {.n_replies = 0};
    server_start(&s);
    int port = s.port;
    server_stop(&s); /* nothing listens there any more */
    struct cloud_http *h = client(2);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x?sig=SECRET", port);
    struct cloud_http_req req = {.what = "s3 GET bucket/x", .method = "GET", .url = url};
    struct cloud_http_resp resp;
    struct err e = {0};
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "s3 GET bucket/x"));
    assert_non_null(strstr(e.msg, "after 3 attempts"));
    assert_null(strstr(e.msg, "SECRET"));
    cloud_http_free(h);
}

static void test_url_encode(void **state)
{
    char *a = cloud_url_encode("r/backup/17 a+b~_.-", true);
    assert_string_equal(a, "r/backup/17%20a%2Bb~_.-");
    free(a);
    char *b = cloud_url_encode("a/b=c&d", false);
    assert_string_equal(b, "a%2Fb%3Dc%26d");
    free(b);
    assert_true(cloud_http_status_retryable(500));
    assert_true(cloud_http_status_retryable(429));
    assert_false(cloud_http_status_retryable(404));
    assert_false(cloud_http_status_retryable(403));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retries_5xx_then_succeeds),
        cmocka_unit_test(test_4xx_not_retried),
        cmocka_unit_test(test_retries_run_out),
        cmocka_unit_test(test_put_body_without_curl_defaults),
        cmocka_unit_test(test_empty_put_has_no_form_type),
        cmocka_unit_test(test_sign_failure_keeps_its_code),
        cmocka_unit_test(test_sink_gets_2xx_only),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_url_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
