/*
 * test_stor_azure.c - the azure-storage backend (src/storage/stor_azure.c, azure_auth.c).
 *
 * Always run: the Shared Key string-to-sign and signature against hand-built vectors (the
 * expected signatures computed independently with Python's hmac), HTTP date formatting and
 * parsing, configuration errors (ambiguous / incomplete credentials, bad key), a store that is
 * down (short retry policy: a clear error, quickly), and the Azure AD client-credentials flow
 * against a fake token + blob endpoint in a thread (form checked, token cached across calls,
 * fetched again after expiry, a rejected secret reported without the secret), and a store
 * that fails mid-upload (retried, then a clear error and no commit request).
 *
 * With Azurite (tests/services/azurite.sh exports AZURITE_*; skipped otherwise): the storage
 * contract suite (tests/unit/storage_contract.h, 1 MiB blocks), single-request and
 * multi-block writes (invisible until commit, nothing after abort), ranged reads, access
 * tiers from storage-class, listings with delimiter / start-after / small pages, deletes, a
 * wrong account key (403 -> "authentication failed") and a missing container named in the
 * error. Under `azurite.sh --oauth` (HTTPS, bearer tokens accepted) only: the Azure AD flow
 * end to end, a fake token endpoint issuing JWTs that Azurite accepts for real blob calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "asb/asb.h"
#include "storage/azure_auth.h"
#include "storage/azure_stor.h"
#include "storage/cloud_http.h"
#include "storage/storage.h"
#include "storage_contract.h"
#include "loopback.h"

#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY                                                                                 \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
/* Another valid base64 key (not the account's). */
#define WRONG_KEY "c2VjcmV0LXdyb25nLWtleS1mb3ItdGVzdHMtb25seS0wMTIzNDU2Nzg5YWJjZGVm"

static struct cloud_retry short_retry(void) { return sc_short_retry(20, 50, 20000); }

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (unsigned char)(x >> 16);
    }
}

/* ---- Shared Key vectors ------------------------------------------------------------------- */

static struct curl_slist *list_of(const char *const *lines)
{
    struct curl_slist *l = NULL;
    for (; *lines; lines++)
        l = curl_slist_append(l, *lines);
    return l;
}

static void check_vector(const char *method, const char *url, const char *const *headers,
                         size_t len, const char *want_sts, const char *want_sig)
{
    struct err e = {0};
    struct curl_slist *h = list_of(headers);
    char *sts = NULL, *auth = NULL;
    assert_int_equal(azure_string_to_sign(DEV_ACCOUNT, method, url, h, len, &sts, &e), 0);
    assert_string_equal(sts, want_sts);
    unsigned char *key;
    size_t kl;
    assert_int_equal(azure_key_decode(DEV_KEY, &key, &kl, &e), 0);
    assert_int_equal(kl, 64);
    assert_int_equal(azure_shared_key_header(DEV_ACCOUNT, key, kl, sts, &auth, &e), 0);
    char want[128];
    snprintf(want, sizeof want, "SharedKey " DEV_ACCOUNT ":%s", want_sig);
    assert_string_equal(auth, want);
    free(key);
    free(sts);
    free(auth);
    curl_slist_free_all(h);
}

static void test_shared_key_vectors(void **state)
{
    (void)state;
    /* Put Block: Content-Length and -Type filled, x-ms-* lower-cased, trimmed and sorted,
     * account twice in the resource (path-style endpoint), query decoded and sorted. */
    static const char *const put_headers[] = {
        "Content-Type: application/octet-stream", "x-ms-version: 2021-12-02",
        "x-ms-date: Wed, 25 Nov 2026 12:00:00 GMT", "X-MS-Access-Tier:  Cool ", NULL};
    check_vector("PUT",
                 "http://127.0.0.1:10000/devstoreaccount1/abs-test/r/backup/1704110400000/data/"
                 "test/0_test_1.asb?comp=block&blockid=YWJj%2BZA%3D%3D",
                 put_headers, 1024,
                 "PUT\n\n\n1024\n\napplication/octet-stream\n\n\n\n\n\n\n"
                 "x-ms-access-tier:Cool\nx-ms-date:Wed, 25 Nov 2026 12:00:00 GMT\n"
                 "x-ms-version:2021-12-02\n"
                 "/devstoreaccount1/devstoreaccount1/abs-test/r/backup/1704110400000/data/test/"
                 "0_test_1.asb\nblockid:YWJj+ZA==\ncomp:block",
                 "rOn2RBpICClP3ACBGpbw9wSX+bkFTy35icv23RnGwfo=");
    /* List Blobs: empty Content-Length (no body), every query parameter in name order. */
    static const char *const get_headers[] = {"x-ms-date: Wed, 25 Nov 2026 12:00:00 GMT",
                                              "x-ms-version: 2021-12-02", NULL};
    check_vector("GET",
                 "http://127.0.0.1:10000/devstoreaccount1/abs-test?restype=container&comp=list"
                 "&prefix=r%2Fbackup%2F&delimiter=%2F&maxresults=2",
                 get_headers, 0,
                 "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Wed, 25 Nov 2026 12:00:00 GMT\n"
                 "x-ms-version:2021-12-02\n/devstoreaccount1/devstoreaccount1/abs-test\n"
                 "comp:list\ndelimiter:/\nmaxresults:2\nprefix:r/backup/\nrestype:container",
                 "KUGbkZDuTuM5OUmPAp0+bJbDXEnOoYJBU0UT0dil9mI=");

    struct err e = {0};
    unsigned char *key;
    size_t kl;
    assert_int_equal(azure_key_decode("not base64!", &key, &kl, &e), ERR_INVALID);
    assert_null(strstr(e.msg, "not base64!"));
}

static void test_http_dates(void **state)
{
    (void)state;
    char buf[64];
    azure_http_date(1764072000, buf, sizeof buf); /* 2025-11-25T12:00:00Z */
    assert_string_equal(buf, "Tue, 25 Nov 2025 12:00:00 GMT");
    assert_int_equal(azure_parse_http_date(buf), 1764072000LL * 1000);
    assert_int_equal(azure_parse_http_date("Thu, 01 Jan 1970 00:00:01 GMT"), 1000);
    assert_int_equal(azure_parse_http_date("garbage"), -1);
    assert_int_equal(azure_parse_http_date(NULL), -1);
}

/* ---- configuration errors ----------------------------------------------------------------- */

static void test_config_errors(void **state)
{
    (void)state;
    struct err e = {0};
    struct stor *s = NULL;
    struct cfg_azure_storage c = {.endpoint = "http://127.0.0.1:9/devstoreaccount1",
                                  .container_name = "c", .account_name = DEV_ACCOUNT,
                                  .account_key = DEV_KEY, .tenant_id = "t", .client_id = "i",
                                  .client_secret = "topsecret-value"};
    assert_int_equal(stor_azure_open(&c, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "ambiguous"));
    assert_null(strstr(e.msg, "topsecret-value"));
    assert_null(strstr(e.msg, DEV_KEY));

    c.account_key = NULL;
    c.client_id = NULL;
    assert_int_equal(stor_azure_open(&c, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "client-id"));

    c.tenant_id = c.client_secret = NULL;
    c.account_key = "%%%not-base64%%%";
    assert_int_equal(stor_azure_open(&c, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "account-key"));
    assert_null(strstr(e.msg, "not-base64"));

    c.account_key = DEV_KEY;
    c.container_name = NULL;
    assert_int_equal(stor_azure_open(&c, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "container-name"));

    /* Through stor_open: name, root prefix and part size (clamped to >= 1 MiB). */
    c.container_name = "bk";
    c.path = "/team/prod/";
    c.min_part_size = (cfg_int){true, 1000};
    struct cfg_storage cs = {.azure = &c};
    assert_int_equal(stor_open(&cs, &s, &e), 0);
    assert_int_equal(stor_get_kind(s), STOR_AZURE);
    assert_string_equal(stor_name(s), "azure://bk/team/prod");
    assert_string_equal(stor_root(s), "team/prod");
    assert_int_equal(stor_part_size(s), 1 << 20);
    stor_close(s);
}

/* ---- a store that is down ----------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_store_down(void **state)
{
    (void)state;
    char ep[96];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d/devstoreaccount1", loopback_released_port());
    struct cfg_azure_storage c = {.endpoint = ep, .container_name = "abs-test",
                                  .account_name = DEV_ACCOUNT, .account_key = DEV_KEY};
    struct cloud_retry r = short_retry();
    struct azure_open_opts o = {.retry = &r};
    struct err e = {0};
    struct stor *s;
    assert_int_equal(stor_azure_open_opts(&c, &o, &s, &e), 0);
    int64_t t0 = now_ms();
    assert_int_equal(stor_put(s, "a/b", "x", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "azure://abs-test"));
    assert_non_null(strstr(e.msg, "after 3 attempts"));
    assert_null(strstr(e.msg, DEV_KEY));
    uint64_t size;
    assert_int_equal(stor_stat(s, "a/b", &size, NULL, &e), ERR_IO);
    assert_true(now_ms() - t0 < 10000);
    stor_close(s);
}

/* ---- fake Azure AD + blob endpoint -------------------------------------------------------- */

#define FAKE_SECRET "s3cr3t+/=&value"
#define FAKE_SECRET_ENC "s3cr3t%2B%2F%3D%26value"

struct fake {
    int lfd, port;
    pthread_t thread;
    pthread_mutex_t lock;
    int expires_in;      /* seconds, in the token replies */
    int token_requests;  /* accepted */
    int bad_forms;       /* token requests with a wrong form */
    int blob_requests;   /* carrying the newest token */
    int bad_bearer;      /* carrying anything else */
    /* Blob mode (Shared Key, not checked): the first Put Block succeeds, later ones get 500. */
    bool blob_mode;
    bool jwt;            /* tokens are JWTs with the claims Azurite's --oauth basic checks */
    int put_blocks;      /* Put Block requests */
    int commits;         /* Put Block List or Put Blob requests */
    bool stop;
};

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, const char *status, const char *extra, const char *body)
{
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
                     status, strlen(body), extra, body);
    send_all(fd, buf, (size_t)n);
}

/* Reads one request (headers + Content-Length body) into buf. */
static size_t read_request(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(buf, "Content-Length:");
        size_t want = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
        if (n >= (size_t)(end + 4 - buf) + want)
            break;
    }
    buf[n] = '\0';
    return n;
}

static size_t b64url(const char *in, char *out)
{
    size_t n = asb_b64_encode((const uint8_t *)in, strlen(in), out);
    while (n > 0 && out[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[n] = '\0';
    return n;
}

/* An unsigned JWT as Azure AD would issue for storage (Azurite checks claims only). */
static void make_jwt(char *out, size_t cap, int serial)
{
    long now = (long)time(NULL);
    char payload[400], h64[128], p64[600];
    snprintf(payload, sizeof payload,
             "{\"aud\":\"https://storage.azure.com\",\"iss\":\"https://sts.windows.net/"
             "tenant-x/\",\"iat\":%ld,\"nbf\":%ld,\"exp\":%ld,\"tid\":\"tenant-x\","
             "\"appid\":\"client-x\",\"oid\":\"00000000-0000-0000-0000-00000000000%d\"}",
             now - 60, now - 60, now + 3600, serial % 10);
    b64url("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", h64);
    b64url(payload, p64);
    snprintf(out, cap, "%s.%s.c2lnbmF0dXJl", h64, p64);
}

static void fake_handle(struct fake *f, int fd)
{
    char req[16384];
    read_request(fd, req, sizeof req);
    pthread_mutex_lock(&f->lock);
    if (f->blob_mode) {
        const char *eol = strstr(req, "\r\n");
        bool put = strncmp(req, "PUT ", 4) == 0;
        bool block = put && eol && memmem(req, (size_t)(eol - req), "comp=block&", 11);
        if (block && f->put_blocks++ == 0)
            reply(fd, "201 Created", "", "");
        else if (block)
            reply(fd, "500 Internal Server Error", "x-ms-error-code: InternalError\r\n",
                  "<?xml version=\"1.0\"?><Error><Code>InternalError</Code>"
                  "<Message>The server encountered an internal error.</Message></Error>");
        else {
            f->commits += put;
            reply(fd, "201 Created", "", "");
        }
    } else if (strncmp(req, "POST /tenant-x/oauth2/v2.0/token ", 33) == 0) {
        const char *body = strstr(req, "\r\n\r\n") + 4;
        bool ok = strstr(body, "grant_type=client_credentials") &&
                  strstr(body, "client_id=client-x") &&
                  strstr(body, "scope=https%3A%2F%2Fstorage.azure.com%2F.default");
        bool secret_ok = strstr(body, "client_secret=" FAKE_SECRET_ENC) != NULL;
        if (!ok) {
            f->bad_forms++;
            reply(fd, "400 Bad Request", "", "{\"error\":\"invalid_request\"}");
        } else if (!secret_ok) {
            /* A hostile endpoint echoing the form must not leak it into messages. */
            char b[1024];
            snprintf(b, sizeof b, "{\"error\":\"invalid_client\",\"error_description\":"
                                  "\"AADSTS7000215: Invalid client secret provided. %s\"}",
                     body);
            reply(fd, "401 Unauthorized", "Content-Type: application/json\r\n", b);
        } else {
            f->token_requests++;
            char tok[1024], b[1400];
            if (f->jwt)
                make_jwt(tok, sizeof tok, f->token_requests);
            else
                snprintf(tok, sizeof tok, "tok-%d", f->token_requests);
            snprintf(b, sizeof b,
                     "{\"token_type\":\"Bearer\",\"expires_in\":%d,\"ext_expires_in\":%d,"
                     "\"access_token\":\"%s\"}",
                     f->expires_in, f->expires_in, tok);
            reply(fd, "200 OK", "Content-Type: application/json\r\n", b);
        }
    } else {
        char want[64];
        snprintf(want, sizeof want, "Authorization: Bearer tok-%d\r\n", f->token_requests);
        if (strcasestr(req, want) && strcasestr(req, "x-ms-version: ") &&
            strcasestr(req, "x-ms-date: ")) {
            f->blob_requests++;
            reply(fd, "404 The specified blob does not exist.",
                  "x-ms-error-code: BlobNotFound\r\n", "");
        } else {
            f->bad_bearer++;
            reply(fd, "403 Server failed to authenticate the request.",
                  "x-ms-error-code: AuthenticationFailed\r\n", "");
        }
    }
    pthread_mutex_unlock(&f->lock);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&f->lock);
        bool stop = f->stop;
        pthread_mutex_unlock(&f->lock);
        if (stop) {
            close(fd);
            return NULL;
        }
        fake_handle(f, fd);
        close(fd);
    }
}

static void fake_start(struct fake *f, int expires_in)
{
    memset(f, 0, sizeof *f);
    f->expires_in = expires_in;
    pthread_mutex_init(&f->lock, NULL);
    f->lfd = loopback_listen(16, &f->port);
    assert_true(f->lfd >= 0);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_mutex_unlock(&f->lock);
    loopback_poke(f->port); /* wake the accept */
    pthread_join(f->thread, NULL);
    close(f->lfd);
    pthread_mutex_destroy(&f->lock);
}

/* authority from opts, or (use_env) from $AZURE_AUTHORITY_HOST as in production. */
static struct stor *open_aad_how(struct fake *f, const char *secret, bool use_env)
{
    static char ep[96], authority[96];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d/acct", f->port);
    snprintf(authority, sizeof authority, "http://127.0.0.1:%d/", f->port);
    struct cfg_azure_storage c = {.endpoint = ep, .container_name = "abs",
                                  .tenant_id = "tenant-x", .client_id = "client-x",
                                  .client_secret = (char *)secret};
    struct cloud_retry r = short_retry();
    struct azure_open_opts o = {.retry = &r, .authority_host = use_env ? NULL : authority};
    if (use_env)
        setenv("AZURE_AUTHORITY_HOST", authority, 1);
    struct err e = {0};
    struct stor *s = NULL;
    assert_int_equal(stor_azure_open_opts(&c, &o, &s, &e), 0);
    unsetenv("AZURE_AUTHORITY_HOST");
    return s;
}

static struct stor *open_aad(struct fake *f, const char *secret)
{
    return open_aad_how(f, secret, false);
}

static void test_aad_token_cached(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, 3600);
    struct stor *s = open_aad(&f, FAKE_SECRET);
    struct err e = {0};
    for (int i = 0; i < 5; i++) {
        uint64_t size;
        /* BlobNotFound proves the bearer was accepted (a bad one gets 403). */
        assert_int_equal(stor_stat(s, "some/key", &size, NULL, &e), ERR_NOT_FOUND);
    }
    assert_int_equal(stor_azure_token_requests(s), 1);
    pthread_mutex_lock(&f.lock);
    assert_int_equal(f.token_requests, 1);
    assert_int_equal(f.blob_requests, 5);
    assert_int_equal(f.bad_bearer, 0);
    assert_int_equal(f.bad_forms, 0);
    pthread_mutex_unlock(&f.lock);
    stor_close(s);
    fake_stop(&f);
}

static void test_aad_token_refreshed(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, 4); /* 4 s tokens: fetched again after half their life */
    struct stor *s = open_aad_how(&f, FAKE_SECRET, true);
    struct err e = {0};
    uint64_t size;
    assert_int_equal(stor_stat(s, "k", &size, NULL, &e), ERR_NOT_FOUND);
    assert_int_equal(stor_stat(s, "k", &size, NULL, &e), ERR_NOT_FOUND);
    assert_int_equal(stor_azure_token_requests(s), 1);
    usleep(2300 * 1000);
    assert_int_equal(stor_stat(s, "k", &size, NULL, &e), ERR_NOT_FOUND);
    assert_int_equal(stor_azure_token_requests(s), 2);
    pthread_mutex_lock(&f.lock);
    assert_int_equal(f.token_requests, 2);
    assert_int_equal(f.blob_requests, 3);
    assert_int_equal(f.bad_bearer, 0); /* the new token was used */
    pthread_mutex_unlock(&f.lock);
    stor_close(s);
    fake_stop(&f);
}

static void test_aad_bad_secret(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, 3600);
    struct stor *s = open_aad(&f, "wrong-secret-123");
    struct err e = {0};
    uint64_t size;
    assert_int_equal(stor_stat(s, "k", &size, NULL, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "azure://abs"));
    assert_non_null(strstr(e.msg, "HTTP 401"));
    assert_non_null(strstr(e.msg, "client-secret"));
    assert_null(strstr(e.msg, "wrong-secret-123"));
    assert_null(strstr(e.msg, "wrong-secret"));
    assert_int_equal(stor_put(s, "k", "x", 1, &e), ERR_IO);
    assert_null(strstr(e.msg, "wrong-secret"));
    pthread_mutex_lock(&f.lock);
    assert_int_equal(f.blob_requests + f.bad_bearer, 0); /* no request went out unsigned */
    pthread_mutex_unlock(&f.lock);
    stor_close(s);
    fake_stop(&f);
}

/* A store failing in the middle of an upload: the block is retried (5xx), the write fails
 * with the reason, and no commit request (Put Block List / Put Blob) is ever sent. */
static void test_fails_mid_upload(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, 3600);
    pthread_mutex_lock(&f.lock);
    f.blob_mode = true;
    pthread_mutex_unlock(&f.lock);
    char ep[96];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d/devstoreaccount1", f.port);
    struct cfg_azure_storage c = {.endpoint = ep, .container_name = "abs",
                                  .account_name = DEV_ACCOUNT, .account_key = DEV_KEY,
                                  .min_part_size = {true, 1 << 20}};
    struct cloud_retry r = short_retry();
    struct azure_open_opts o = {.retry = &r};
    struct err e = {0};
    struct stor *s;
    assert_int_equal(stor_azure_open_opts(&c, &o, &s, &e), 0);
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "r/backup/1/data/test/0_test_1.asb", 0, &w, &e), 0);
    static unsigned char buf[1 << 20];
    fill(buf, sizeof buf, 1);
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++)
        rc = stor_writer_write(w, buf, sizeof buf, &e);
    assert_int_equal(rc, ERR_IO);
    assert_non_null(strstr(e.msg, "azure://abs: Put Block 'r/backup/1/data/test/0_test_1.asb'"));
    assert_non_null(strstr(e.msg, "HTTP 500 InternalError"));
    assert_int_equal(stor_writer_commit(w, &e), ERR_IO);
    pthread_mutex_lock(&f.lock);
    /* one accepted, then up to 3 attempts of the next (max-retries 2); under load an attempt can
     * die on the half-sent 1 MiB body (the fake answers 500 without reading it) before the fake
     * counts it, so only "retried at least once" is exact */
    assert_in_range(f.put_blocks, 1 + 2, 1 + 3);
    assert_int_equal(f.commits, 0);
    pthread_mutex_unlock(&f.lock);
    stor_close(s);
    fake_stop(&f);
}

/* ---- against Azurite ---------------------------------------------------------------------- */

static const char *az_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static bool have_azurite(void) { return az_env("AZURITE_ENDPOINT") != NULL; }

/* A storage on Azurite under a fresh root prefix (so tests never see each other's keys). */
static struct stor *open_azurite_opts(const char *key, const char *container,
                                      const struct cfg_storage_class *sc, size_t part)
{
    static unsigned seq;
    char path[64];
    snprintf(path, sizeof path, "t%ld-%u", (long)getpid(), ++seq);
    struct cfg_azure_storage c = {.endpoint = (char *)az_env("AZURITE_ENDPOINT"),
                                  .container_name = (char *)container,
                                  .path = path,
                                  .account_name = (char *)az_env("AZURITE_ACCOUNT"),
                                  .account_key = (char *)key,
                                  .storage_class = (struct cfg_storage_class *)sc};
    if (part)
        c.min_part_size = (cfg_int){true, (int64_t)part};
    struct cloud_retry r = short_retry();
    struct azure_open_opts o = {.retry = &r};
    struct err e = {0};
    struct stor *s = NULL;
    if (stor_azure_open_opts(&c, &o, &s, &e) != 0)
        fail_msg("open: %s", e.msg);
    return s;
}

static struct stor *open_azurite(void)
{
    return open_azurite_opts(az_env("AZURITE_KEY"), az_env("AZURITE_CONTAINER"), NULL, 0);
}

static void read_all(struct stor *s, const char *key, uint64_t off, int64_t len,
                     unsigned char **out, size_t *n)
{
    struct err e = {0};
    struct stor_reader *r;
    if (stor_reader_open(s, key, off, len, &r, &e) != 0)
        fail_msg("reader %s: %s", key, e.msg);
    size_t cap = 1 << 16, used = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (used == cap)
            buf = realloc(buf, cap *= 2);
        size_t got;
        assert_int_equal(stor_reader_read(r, buf + used, cap - used > 100000 ? 100000 : cap - used,
                                          &got, &e),
                         0);
        if (got == 0)
            break;
        used += got;
    }
    stor_reader_close(r);
    *out = buf;
    *n = used;
}

static void test_az_multiblock(void **state)
{
    (void)state;
    if (!have_azurite())
        skip();
    struct stor *s = open_azurite_opts(az_env("AZURITE_KEY"), az_env("AZURITE_CONTAINER"), NULL,
                                       1 << 20);
    struct err e = {0};
    size_t n = (5u << 20) / 2 + 12345; /* 2 full blocks and a partial one */
    unsigned char *data = malloc(n);
    fill(data, n, 7);
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "big/obj.asb", 0, &w, &e), 0);
    for (size_t off = 0; off < n; off += 300000)
        assert_int_equal(stor_writer_write(w, data + off, n - off < 300000 ? n - off : 300000, &e),
                         0);
    /* Blocks went up already, but nothing is visible before the block list. */
    uint64_t size;
    assert_int_equal(stor_stat(s, "big/obj.asb", &size, NULL, &e), ERR_NOT_FOUND);
    assert_int_equal(stor_writer_commit(w, &e), 0);
    int64_t mt;
    assert_int_equal(stor_stat(s, "big/obj.asb", &size, &mt, &e), 0);
    assert_int_equal(size, n);
    assert_true(mt > 1600000000000LL);
    unsigned char *back;
    size_t bn;
    read_all(s, "big/obj.asb", 0, -1, &back, &bn);
    assert_int_equal(bn, n);
    assert_memory_equal(back, data, n);
    free(back);
    /* Ranges: inside, across a block boundary, cut at the end, past the end. */
    read_all(s, "big/obj.asb", (1u << 20) - 10, 20, &back, &bn);
    assert_int_equal(bn, 20);
    assert_memory_equal(back, data + (1u << 20) - 10, 20);
    free(back);
    read_all(s, "big/obj.asb", n - 5, 100, &back, &bn);
    assert_int_equal(bn, 5);
    free(back);
    read_all(s, "big/obj.asb", n + 10, -1, &back, &bn);
    assert_int_equal(bn, 0);
    free(back);

    /* Abort after blocks were uploaded: nothing visible, the old object untouched. */
    assert_int_equal(stor_writer_open(s, "big/obj.asb", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, data, (3u << 20) / 2, &e), 0);
    stor_writer_abort(w);
    assert_int_equal(stor_writer_open(s, "big/other.asb", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, data, (3u << 20) / 2, &e), 0);
    stor_writer_abort(w);
    assert_int_equal(stor_stat(s, "big/other.asb", &size, NULL, &e), ERR_NOT_FOUND);
    assert_int_equal(stor_stat(s, "big/obj.asb", &size, NULL, &e), 0);
    assert_int_equal(size, n);
    struct stor_page p;
    struct stor_list_opts lo = {.prefix = "big/"};
    assert_int_equal(stor_list_page(s, &lo, NULL, &p, &e), 0);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.entries[0].key, "big/obj.asb");
    assert_int_equal(p.entries[0].size, n);
    stor_page_free(&p);

    /* Empty object: one Put Blob of nothing. */
    assert_int_equal(stor_writer_open(s, "empty", 0, &w, &e), 0);
    assert_int_equal(stor_writer_commit(w, &e), 0);
    assert_int_equal(stor_stat(s, "empty", &size, NULL, &e), 0);
    assert_int_equal(size, 0);
    char *got;
    size_t gl;
    assert_int_equal(stor_get(s, "empty", 10, &got, &gl, &e), 0);
    assert_int_equal(gl, 0);
    free(got);

    assert_int_equal(stor_delete_prefix(s, "big/", &e), 0);
    assert_int_equal(stor_delete(s, "empty", &e), 0);
    assert_int_equal(stor_delete(s, "empty", &e), 0); /* absent: fine */
    assert_int_equal(stor_stat(s, "big/obj.asb", &size, NULL, &e), ERR_NOT_FOUND);
    free(data);
    stor_close(s);
}

static void test_az_listing(void **state)
{
    (void)state;
    if (!have_azurite())
        skip();
    struct stor *s = open_azurite();
    struct err e = {0};
    static const char *const keys[] = {"r/backup/100/data/test/metadata.yaml",
                                       "r/backup/100/data/test/0_test_1.asb",
                                       "r/backup/200/data/test/metadata.yaml",
                                       "r/backup/300/data/bar/metadata.yaml",
                                       "r/backup-x", "r/incremental/150/data/test/metadata.yaml",
                                       "top", NULL};
    for (int i = 0; keys[i]; i++)
        assert_int_equal(stor_put(s, keys[i], keys[i], strlen(keys[i]), &e), 0);

    struct stor_page p;
    struct stor_list_opts lo = {.prefix = "r/backup/", .delimiter = true};
    assert_int_equal(stor_list_page(s, &lo, NULL, &p, &e), 0);
    assert_int_equal(p.n, 3);
    assert_string_equal(p.entries[0].key, "r/backup/100/");
    assert_true(p.entries[0].is_prefix);
    assert_string_equal(p.entries[2].key, "r/backup/300/");
    assert_null(p.next_token);
    stor_page_free(&p);

    /* start_after: a directory holding it still shows when something after it lies there. */
    lo.start_after = "r/backup/100/data/test/0_test_1.asb";
    assert_int_equal(stor_list_page(s, &lo, NULL, &p, &e), 0);
    assert_int_equal(p.n, 3);
    stor_page_free(&p);
    lo.start_after = "r/backup/100/data/test/metadata.yaml";
    assert_int_equal(stor_list_page(s, &lo, NULL, &p, &e), 0);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.entries[0].key, "r/backup/200/");
    stor_page_free(&p);
    lo.start_after = "r/backup/200/";
    assert_int_equal(stor_list_page(s, &lo, NULL, &p, &e), 0);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.entries[0].key, "r/backup/300/");
    stor_page_free(&p);

    /* Root listing with delimiter; string prefix; recursive listing in pages of 2. */
    struct stor_list_opts root = {.delimiter = true};
    assert_int_equal(stor_list_page(s, &root, NULL, &p, &e), 0);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.entries[0].key, "r/");
    assert_string_equal(p.entries[1].key, "top");
    assert_int_equal(p.entries[1].size, 3);
    stor_page_free(&p);
    struct stor_list_opts sp = {.prefix = "r/backup"};
    assert_int_equal(stor_list_page(s, &sp, NULL, &p, &e), 0);
    assert_int_equal(p.n, 5);
    assert_string_equal(p.entries[0].key, "r/backup-x"); /* '-' sorts before '/' */
    stor_page_free(&p);
    struct stor_list_opts pg = {.prefix = "r/", .page_size = 2};
    char *token = NULL;
    size_t total = 0, pages = 0;
    char last[256] = "";
    do {
        assert_int_equal(stor_list_page(s, &pg, token, &p, &e), 0);
        free(token);
        token = p.next_token;
        p.next_token = NULL;
        assert_true(p.n <= 2);
        for (size_t i = 0; i < p.n; i++) {
            assert_true(strcmp(p.entries[i].key, last) > 0);
            snprintf(last, sizeof last, "%s", p.entries[i].key);
        }
        total += p.n;
        pages++;
        stor_page_free(&p);
    } while (token);
    assert_int_equal(total, 6);
    assert_true(pages >= 3);

    assert_int_equal(stor_delete_prefix(s, "r/", &e), 0);
    assert_int_equal(stor_list_page(s, &root, NULL, &p, &e), 0);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.entries[0].key, "top");
    stor_page_free(&p);
    assert_int_equal(stor_delete(s, "top", &e), 0);
    stor_close(s);
}

/* Signed HEAD of a blob by full name, for headers the interface does not expose. */
static char *raw_head_header(const char *blob, const char *header)
{
    struct err e = {0};
    struct cloud_http_opts ho = {0};
    cloud_retry_default(&ho.retry);
    ho.retry.max_retries = 0;
    struct cloud_http *h;
    assert_int_equal(cloud_http_new(&ho, &h, &e), 0);
    char url[512], date[64], dl[96];
    snprintf(url, sizeof url, "%s/%s/%s", az_env("AZURITE_ENDPOINT"), az_env("AZURITE_CONTAINER"),
             blob);
    azure_http_date(time(NULL), date, sizeof date);
    snprintf(dl, sizeof dl, "x-ms-date: %s", date);
    struct curl_slist *hl = curl_slist_append(NULL, dl);
    hl = curl_slist_append(hl, "x-ms-version: " AZURE_API_VERSION);
    char *sts, *auth;
    unsigned char *key;
    size_t kl;
    assert_int_equal(azure_key_decode(az_env("AZURITE_KEY"), &key, &kl, &e), 0);
    assert_int_equal(azure_string_to_sign(DEV_ACCOUNT, "HEAD", url, hl, 0, &sts, &e), 0);
    assert_int_equal(azure_shared_key_header(DEV_ACCOUNT, key, kl, sts, &auth, &e), 0);
    char al[256];
    snprintf(al, sizeof al, "Authorization: %s", auth);
    hl = curl_slist_append(hl, al);
    struct cloud_http_req req = {.what = "test HEAD", .method = "HEAD", .url = url, .headers = hl};
    struct cloud_http_resp resp;
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
    assert_int_equal(resp.status, 200);
    size_t vl;
    const char *v = cloud_http_header(&resp, header, &vl);
    char *out = v ? strndup(v, vl) : NULL;
    cloud_http_resp_free(&resp);
    curl_slist_free_all(hl);
    free(sts);
    free(auth);
    free(key);
    cloud_http_free(h);
    return out;
}

static void test_az_access_tier(void **state)
{
    (void)state;
    if (!have_azurite())
        skip();
    struct cfg_storage_class sc = {.data = "Cool", .metadata = "Hot"};
    struct stor *s = open_azurite_opts(az_env("AZURITE_KEY"), az_env("AZURITE_CONTAINER"), &sc,
                                       1 << 20);
    struct err e = {0};
    struct stor_writer *w;
    static unsigned char buf[(3u << 20) / 2];
    fill(buf, sizeof buf, 3);
    /* Data: one small (Put Blob) and one multi-block (Put Block List) writer. */
    assert_int_equal(stor_writer_open(s, "d/small", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, buf, 100, &e), 0);
    assert_int_equal(stor_writer_commit(w, &e), 0);
    assert_int_equal(stor_writer_open(s, "d/large", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, buf, sizeof buf, &e), 0);
    assert_int_equal(stor_writer_commit(w, &e), 0);
    assert_int_equal(stor_put(s, "d/metadata.yaml", "m: 1\n", 5, &e), 0);
    char name[128];
    const char *root = stor_root(s);
    static const char *const want[][2] = {{"d/small", "Cool"}, {"d/large", "Cool"},
                                          {"d/metadata.yaml", "Hot"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s/%s", root, want[i][0]);
        char *tier = raw_head_header(name, "x-ms-access-tier");
        assert_non_null(tier);
        assert_string_equal(tier, want[i][1]);
        free(tier);
    }
    assert_int_equal(stor_delete_prefix(s, "d/", &e), 0);
    stor_close(s);
}

static void test_az_wrong_key(void **state)
{
    (void)state;
    if (!have_azurite())
        skip();
    struct stor *s = open_azurite_opts(WRONG_KEY, az_env("AZURITE_CONTAINER"), NULL, 0);
    struct err e = {0};
    uint64_t size;
    assert_int_equal(stor_put(s, "k", "x", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "authentication failed (check account-key)"));
    assert_non_null(strstr(e.msg, "azure://"));
    assert_null(strstr(e.msg, WRONG_KEY));
    assert_int_equal(stor_stat(s, "k", &size, NULL, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "authentication failed (check account-key)"));
    struct stor_page p;
    assert_int_equal(stor_list_page(s, NULL, NULL, &p, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "authentication failed"));
    stor_close(s);
}

static void test_az_missing_container(void **state)
{
    (void)state;
    if (!have_azurite())
        skip();
    struct stor *s = open_azurite_opts(az_env("AZURITE_KEY"), "no-such-container", NULL, 0);
    struct err e = {0};
    assert_int_equal(stor_put(s, "k", "x", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "container 'no-such-container' does not exist"));
    struct stor_page p;
    assert_int_equal(stor_list_page(s, NULL, NULL, &p, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "container 'no-such-container' does not exist"));
    /* Not a missing object: a missing container is a storage failure. */
    uint64_t size;
    assert_int_equal(stor_stat(s, "k", &size, NULL, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "container 'no-such-container' does not exist"));
    struct stor_reader *r;
    assert_int_equal(stor_reader_open(s, "k", 0, -1, &r, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "does not exist"));
    assert_int_equal(stor_delete(s, "k", &e), ERR_IO);
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "k", 1 << 20, &w, &e), 0);
    static unsigned char buf[(3u << 20) / 2];
    assert_int_equal(stor_writer_write(w, buf, sizeof buf, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "does not exist"));
    assert_int_equal(stor_writer_commit(w, &e), ERR_IO);
    stor_close(s);
}

/* Azure AD against Azurite over HTTPS (--oauth basic): the bearer token from the fake token
 * endpoint authorizes real blob operations; one token serves them all. */
static void test_az_aad_on_azurite(void **state)
{
    (void)state;
    if (!az_env("AZURITE_OAUTH"))
        skip();
    struct fake f;
    fake_start(&f, 3600);
    pthread_mutex_lock(&f.lock);
    f.jwt = true;
    pthread_mutex_unlock(&f.lock);
    char authority[96], path[64];
    snprintf(authority, sizeof authority, "http://127.0.0.1:%d", f.port);
    snprintf(path, sizeof path, "aad-%ld", (long)getpid());
    struct cfg_azure_storage c = {.endpoint = (char *)az_env("AZURITE_ENDPOINT"),
                                  .container_name = (char *)az_env("AZURITE_CONTAINER"),
                                  .path = path, .tenant_id = "tenant-x",
                                  .client_id = "client-x", .client_secret = FAKE_SECRET,
                                  .min_part_size = {true, 1 << 20}};
    struct cloud_retry r = short_retry();
    struct azure_open_opts o = {.retry = &r, .ca_file = az_env("AZURITE_CA"),
                                .authority_host = authority};
    struct err e = {0};
    struct stor *s;
    assert_int_equal(stor_azure_open_opts(&c, &o, &s, &e), 0);
    static unsigned char buf[(5u << 20) / 2];
    fill(buf, sizeof buf, 9);
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "r/backup/1/data/test/0_test_1.asb", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, buf, sizeof buf, &e), 0);
    if (stor_writer_commit(w, &e) != 0)
        fail_msg("commit with a bearer token: %s", e.msg);
    assert_int_equal(stor_put(s, "r/backup/1/data/test/metadata.yaml", "m: 1\n", 5, &e), 0);
    unsigned char *back;
    size_t n;
    read_all(s, "r/backup/1/data/test/0_test_1.asb", 0, -1, &back, &n);
    assert_int_equal(n, sizeof buf);
    assert_memory_equal(back, buf, n);
    free(back);
    struct stor_page p;
    struct stor_list_opts lo = {.prefix = "r/backup/1/data/test/"};
    assert_int_equal(stor_list_page(s, &lo, NULL, &p, &e), 0);
    assert_int_equal(p.n, 2);
    stor_page_free(&p);
    assert_int_equal(stor_delete_prefix(s, "r/", &e), 0);
    uint64_t size;
    assert_int_equal(stor_stat(s, "r/backup/1/data/test/metadata.yaml", &size, NULL, &e),
                     ERR_NOT_FOUND);
    assert_int_equal(stor_azure_token_requests(s), 1);
    stor_close(s);

    /* A token Azurite refuses (not a JWT): authentication failed, with the AD hint. */
    pthread_mutex_lock(&f.lock);
    f.jwt = false;
    pthread_mutex_unlock(&f.lock);
    assert_int_equal(stor_azure_open_opts(&c, &o, &s, &e), 0);
    assert_int_equal(stor_put(s, "k", "x", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "authentication failed (check tenant-id, client-id, "
                                  "client-secret)"));
    assert_null(strstr(e.msg, FAKE_SECRET));
    stor_close(s);
    fake_stop(&f);
}

/* ---- the storage contract on Azurite ------------------------------------------------------ */

static int contract_open(void *ctx, struct stor **out, struct err *e)
{
    (void)ctx;
    (void)e;
    /* Small parts so the large-object test goes through Put Block + Put Block List. */
    *out = open_azurite_opts(az_env("AZURITE_KEY"), az_env("AZURITE_CONTAINER"), NULL, 1 << 20);
    return 0;
}

static int contract_delete_cb(void *ctx, const struct stor_entry *ent, struct err *e)
{
    return stor_delete(ctx, ent->key, e);
}

static void contract_cleanup(void *ctx, struct stor *s)
{
    (void)ctx;
    struct err e = {0};
    struct stor_list_opts o = {0};
    if (stor_list(s, &o, contract_delete_cb, s, &e) != 0)
        fprintf(stderr, "azure contract cleanup: %s\n", e.msg);
}

static struct stor_contract azure_backend = {
    .name = "azure", .open = contract_open, .cleanup = contract_cleanup,
    .leftovers = NULL, /* uncommitted blocks are invisible and expire on their own */
    .big_size = (5u << 20) / 2 + 7, .big_part = 1 << 20,
};

int main(void)
{
    const struct CMUnitTest contract[] = {
        STOR_CONTRACT_TESTS(&azure_backend),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_key_vectors),
        cmocka_unit_test(test_http_dates),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_store_down),
        cmocka_unit_test(test_aad_token_cached),
        cmocka_unit_test(test_aad_token_refreshed),
        cmocka_unit_test(test_aad_bad_secret),
        cmocka_unit_test(test_fails_mid_upload),
        cmocka_unit_test(test_az_multiblock),
        cmocka_unit_test(test_az_listing),
        cmocka_unit_test(test_az_access_tier),
        cmocka_unit_test(test_az_wrong_key),
        cmocka_unit_test(test_az_missing_container),
    };
    if (az_env("AZURITE_OAUTH")) { /* azurite.sh --oauth: HTTPS + bearer tokens only */
        const struct CMUnitTest oauth[] = {cmocka_unit_test(test_az_aad_on_azurite)};
        return cmocka_run_group_tests_name("azure AD on azurite", oauth, NULL, NULL);
    }
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (have_azurite())
        failed += cmocka_run_group_tests_name("azure storage contract", contract, NULL, NULL);
    return failed;
}
