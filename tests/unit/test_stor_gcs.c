/*
 * test_stor_gcs.c - the gcp-storage backend.
 *
 * Without arguments: against a fake GCS + OAuth2 token endpoint in this process
 * (gcs_fake_server.h): the resumable upload state machine (chunking in multiples of 256 KiB,
 * 308 + Range, a chunk only partly persisted and resent from the right offset, a 503 on a chunk,
 * abort cancelling the session, a single-chunk upload), media / multipart uploads with storage
 * classes, bounded ranged reads, the JWT (RS256, verified with the public key), token caching,
 * refresh and re-fetch after a 401, error mapping (missing bucket, access denied, refused token,
 * store down) with no secret in any message, key parsing, and the pure helpers.
 *
 * With the argument "emulator": the storage contract suite (storage_contract.h) and a few
 * GCS checks against the Cloud Storage emulator named by GCS_EMULATOR_ENDPOINT /
 * GCS_EMULATOR_BUCKET (tests/services/gcs-emulator.sh starts it; tests/cmake/gcs.cmake). The
 * emulator cannot do multi-chunk resumable uploads, so the contract's several-parts cases run
 * with parts larger than the objects (single-request or single-chunk uploads) and the
 * abort-after-parts case is replaced by a GCS variant; those paths are covered by the fake.
 */
#include "storage_contract.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/random.h>

#include <jansson.h>

#include "gcs_fake_server.h"
#include "storage/gcs_auth.h"
#include "storage/stor_gcs.h"

#define KIB 1024
#define Q (256 * KIB)

/* ---- helpers ------------------------------------------------------------------------------- */

static char *read_text(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/gcs/%s", TEST_DATA_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* A service-account key JSON around the test key, token_uri on the fake. */
static char *sa_key_json(int port, const char *pem_file)
{
    char *pem = read_text(pem_file);
    char uri[128];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/token", port);
    json_t *k = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "service_account",
                          "project_id", "demo", "private_key_id", "kid-123", "private_key", pem,
                          "client_email", "tester@demo.iam.gserviceaccount.com", "token_uri",
                          uri);
    char *txt = json_dumps(k, 0);
    json_decref(k);
    free(pem);
    return txt;
}

static struct cloud_retry short_retry(void) { return sc_short_retry(1, 5, 5000); }

struct gfx {
    struct fake_gcs f;
    struct stor *s;
    char endpoint[64];
    char *key;
};

/* Opens a storage on the fake: bucket "bkt", path "pre", part size `part`. */
static struct stor *open_fake(struct gfx *x, size_t part, const char *key, size_t read_chunk,
                              struct cfg_storage_class *sc)
{
    snprintf(x->endpoint, sizeof x->endpoint, "http://127.0.0.1:%d/", x->f.port);
    struct cfg_gcp_storage c = {.bucket_name = "bkt", .path = "/pre/", .endpoint = x->endpoint,
                                .key = (char *)key, .storage_class = sc};
    if (part) {
        c.min_part_size.set = true;
        c.min_part_size.v = (int64_t)part;
    }
    struct cloud_retry r = short_retry();
    struct gcs_open_opts o = {.retry = &r, .read_chunk = read_chunk};
    struct err e = {0};
    struct stor *s = NULL;
    if (stor_gcs_open_opts(&c, &o, &s, &e) != 0)
        fail_msg("open: %s", e.msg);
    return s;
}

static int fx_setup(void **state)
{
    struct gfx *x = calloc(1, sizeof *x);
    if (!x || fake_start(&x->f) != 0)
        return -1;
    *state = x;
    return 0;
}

static int fx_teardown(void **state)
{
    struct gfx *x = *state;
    stor_close(x->s);
    fake_stop(&x->f);
    free(x->key);
    free(x);
    return 0;
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    sc_pattern(p, n, seed);
    return p;
}

/* Writes `n` pattern bytes in pieces of `step` and commits; returns the commit status. */
static int write_steps(struct stor *s, const char *key, size_t n, size_t step, unsigned seed,
                       struct err *e)
{
    unsigned char *p = pattern(n, seed);
    struct stor_writer *w;
    int rc = stor_writer_open(s, key, 0, &w, e);
    for (size_t off = 0; rc == 0 && off < n; off += step)
        rc = stor_writer_write(w, p + off, off + step < n ? step : n - off, e);
    rc = rc ? (stor_writer_abort(w), rc) : stor_writer_commit(w, e);
    free(p);
    return rc;
}

static void assert_fake_object(struct fake_gcs *f, const char *name, size_t n, unsigned seed)
{
    struct fake_obj *o = fake_find(f, name);
    if (!o)
        fail_msg("object %s not stored", name);
    assert_int_equal(o->len, n);
    unsigned char *p = pattern(n, seed);
    assert_memory_equal(o->data, p, n);
    free(p);
}

/* The Content-Range values of the resumable PUTs, in order, joined by ';'. */
static void put_ranges(struct fake_gcs *f, char *out, size_t cap)
{
    out[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < f->n_log; i++) {
        const char *bar = strstr(f->log[i], " | bytes ");
        if (strncmp(f->log[i], "PUT ", 4) != 0 || !bar)
            continue;
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ";" : "", bar + 9);
    }
}

/* Writes `n` pattern bytes as `key` in pieces of `step` and checks what the fake stored. */
static void assert_written(struct gfx *x, const char *key, size_t n, size_t step, unsigned seed)
{
    struct err e = {0};
    char name[256];
    snprintf(name, sizeof name, "pre/%s", key);
    if (write_steps(x->s, key, n, step, seed, &e) != 0)
        fail_msg("writing %s: %s", key, e.msg);
    assert_fake_object(&x->f, name, n, seed);
}

static void assert_put_ranges(struct fake_gcs *f, const char *want)
{
    char ranges[1024];
    put_ranges(f, ranges, sizeof ranges);
    assert_string_equal(ranges, want);
}

/* ---- pure helpers -------------------------------------------------------------------------- */

static void test_helpers(void **state)
{
    assert_int_equal(gcs_chunk_size(0), Q);
    assert_int_equal(gcs_chunk_size(1), Q);
    assert_int_equal(gcs_chunk_size(Q), Q);
    assert_int_equal(gcs_chunk_size(Q + 1), 2 * Q);
    assert_int_equal(gcs_chunk_size(50 * 1000 * 1000), 191 * Q); /* 50 MB -> 47.75 MiB */

    uint64_t p = 99;
    assert_int_equal(gcs_parse_range(NULL, 0, &p), 0);
    assert_int_equal(p, 0);
    assert_int_equal(gcs_parse_range("bytes=0-262143", 14, &p), 0);
    assert_int_equal(p, Q);
    assert_int_equal(gcs_parse_range("bytes=0-0", 9, &p), 0);
    assert_int_equal(p, 1);
    assert_int_equal(gcs_parse_range("bytes=5-10", 10, &p), -1);
    assert_int_equal(gcs_parse_range("bytes=0-", 8, &p), -1);
    assert_int_equal(gcs_parse_range("items=0-4", 9, &p), -1);
    assert_int_equal(gcs_parse_range("bytes=0-4x", 10, &p), -1);

    int64_t ms;
    assert_int_equal(gcs_parse_time("2024-01-01T12:00:00Z", &ms), 0);
    assert_int_equal(ms, 1704110400000LL);
    assert_int_equal(gcs_parse_time("2024-01-01T12:00:00.123Z", &ms), 0);
    assert_int_equal(ms, 1704110400123LL);
    assert_int_equal(gcs_parse_time("2024-01-01T12:00:00.1234567Z", &ms), 0);
    assert_int_equal(ms, 1704110400123LL);
    assert_int_equal(gcs_parse_time("2024-01-01T13:30:00.5+01:30", &ms), 0);
    assert_int_equal(ms, 1704110400500LL);
    assert_int_equal(gcs_parse_time("2024-01-01 12:00:00", &ms), -1);
    assert_int_equal(gcs_parse_time("yesterday", &ms), -1);

    const char *ep[][2] = {{"https://storage.googleapis.com", "https://storage.googleapis.com"},
                           {"https://storage.googleapis.com/storage/v1/",
                            "https://storage.googleapis.com"},
                           {"http://127.0.0.1:9199/", "http://127.0.0.1:9199"},
                           {"http://h:1/base/storage/v1", "http://h:1/base"}};
    for (size_t i = 0; i < sizeof ep / sizeof ep[0]; i++) {
        char *r = gcs_endpoint_root(ep[i][0]);
        assert_string_equal(r, ep[i][1]);
        free(r);
    }
}

static void test_open_and_name(void **state)
{
    struct gfx *x = *state;
    x->s = open_fake(x, 1000, NULL, 0, NULL);
    assert_int_equal(stor_get_kind(x->s), STOR_GCS);
    assert_string_equal(stor_name(x->s), "gs://bkt/pre");
    assert_string_equal(stor_root(x->s), "pre");
    assert_int_equal(stor_part_size(x->s), Q); /* 1000 rounded up to 256 KiB */
    stor_close(x->s);
    x->s = NULL;

    struct cfg_gcp_storage c = {.bucket_name = "b2"};
    struct err e = {0};
    assert_int_equal(stor_gcs_open(&c, &x->s, &e), 0);
    assert_string_equal(stor_name(x->s), "gs://b2");
    assert_int_equal(stor_part_size(x->s), 200 * Q); /* 50 MiB default */
    stor_close(x->s);
    x->s = NULL;
    struct cfg_gcp_storage nob = {.path = "p"};
    assert_int_equal(stor_gcs_open(&nob, &x->s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "bucket-name"));
    struct cfg_storage cs = {.gcp = &c};
    assert_int_equal(stor_open(&cs, &x->s, &e), 0);
    assert_int_equal(stor_get_kind(x->s), STOR_GCS);
}

/* ---- uploads ------------------------------------------------------------------------------- */

static void test_small_object_media_upload(void **state)
{
    struct gfx *x = *state;
    x->s = open_fake(x, Q, NULL, 0, NULL);
    struct err e = {0};
    assert_written(x, "r/a.asb", 1000, 333, 1);
    assert_int_equal(fake_count(&x->f, "uploadType=media&name=pre%2Fr%2Fa.asb"), 1);
    assert_int_equal(fake_count(&x->f, "resumable"), 0);
    assert_int_equal(x->f.unauthenticated, x->f.n_log); /* no key: no Authorization header */
    /* An object of chunk size minus one byte is still one media request. */
    assert_written(x, "r/b.asb", Q - 1, 7777, 2);
    assert_int_equal(fake_count(&x->f, "resumable"), 0);
    /* Empty object. */
    assert_written(x, "r/empty", 0, 1, 0);
    uint64_t size = 9;
    int64_t mtime = 0;
    assert_int_equal(stor_stat(x->s, "r/empty", &size, &mtime, &e), 0);
    assert_int_equal(size, 0);
    assert_int_equal(mtime, 1704164645678LL); /* the fake's "updated" */
}

static void test_multi_chunk_resumable(void **state)
{
    struct gfx *x = *state;
    x->s = open_fake(x, Q, NULL, 0, NULL);
    size_t n = 4 * Q + 1000;
    assert_written(x, "big", n, 7777, 3);
    assert_int_equal(fake_count(&x->f, "uploadType=resumable&name=pre%2Fbig"), 1);
    assert_put_ranges(&x->f, "0-262143/*;262144-524287/*;524288-786431/*;786432-1048575/*;"
                             "1048576-1049575/1049576");
}

static void test_exact_chunk_is_single_chunk_resumable(void **state)
{
    struct gfx *x = *state;
    x->s = open_fake(x, Q, NULL, 0, NULL);
    assert_written(x, "one", Q, Q, 4);
    assert_put_ranges(&x->f, "0-262143/262144"); /* what the emulator can do */
    /* Two full chunks: the last one is sent with the total, not as an open chunk. */
    x->f.n_log = 0;
    assert_written(x, "two", 2 * Q, 1000, 5);
    assert_put_ranges(&x->f, "0-262143/*;262144-524287/524288");
}

static void test_partly_persisted_chunk_resent(void **state)
{
    struct gfx *x = *state;
    x->s = open_fake(x, 2 * Q, NULL, 0, NULL); /* chunks of 512 KiB */
    x->f.short_chunk = 2;                       /* the 2nd PUT keeps only 256 KiB of 512 */
    x->f.short_keep = Q;
    size_t n = 5 * Q + 10;
    assert_written(x, "p", n, 100000, 6);
    /* After the 308 with Range bytes=0-786431 the next chunk starts at 786432 and carries
     * the 256 KiB the store did not keep. */
    assert_put_ranges(&x->f, "0-524287/*;524288-1048575/*;786432-1310719/*;"
                             "1310720-1310729/1310730");
}

static void test_chunk_5xx_retried(void **state)
{
    struct gfx *x = *state;
    x->s = open_fake(x, Q, NULL, 0, NULL);
    x->f.fail_chunk = 2;
    size_t n = 3 * Q + 5;
    assert_written(x, "r", n, 65536, 7);
    assert_put_ranges(&x->f, "0-262143/*;262144-524287/*;262144-524287/*;524288-786431/*;"
                             "786432-786436/786437");
}

static void test_abort_cancels_session(void **state)
{
    struct gfx *x = *state;
    x->s = open_fake(x, Q, NULL, 0, NULL);
    struct err e = {0};
    struct stor_writer *w;
    unsigned char *p = pattern(3 * Q, 8);
    assert_int_equal(stor_writer_open(x->s, "gone", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, p, 3 * Q, &e), 0);
    assert_int_equal(x->f.n_sess, 1);
    stor_writer_abort(w);
    assert_true(x->f.sess[0].cancelled);
    assert_int_equal(fake_count(&x->f, "DELETE /upload/storage/v1/b/bkt/o?"), 1);
    assert_null(fake_find(&x->f, "pre/gone"));
    assert_int_equal(stor_stat(x->s, "gone", NULL, NULL, &e), ERR_NOT_FOUND);

    /* A refused middle chunk: the write fails, commit refuses, the session is cancelled. */
    x->f.n_log = 0;
    assert_int_equal(stor_writer_open(x->s, "failed", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, p, Q, &e), 0); /* buffered */
    x->f.chunk_status = 403;
    assert_int_equal(stor_writer_write(w, p, 1, &e), ERR_IO); /* the full chunk goes up */
    assert_non_null(strstr(e.msg, "access denied"));
    assert_int_equal(stor_writer_write(w, p, 1, &e), ERR_IO); /* sticky */
    assert_int_equal(stor_writer_commit(w, &e), ERR_IO);
    assert_int_equal(x->f.n_sess, 2);
    assert_true(x->f.sess[1].cancelled);
    assert_int_equal(fake_count(&x->f, "DELETE /upload/"), 1);
    assert_null(fake_find(&x->f, "pre/failed"));
    free(p);
}

static void test_storage_classes(void **state)
{
    struct gfx *x = *state;
    struct cfg_storage_class sc = {.data = "NEARLINE", .metadata = "STANDARD"};
    x->s = open_fake(x, Q, NULL, 0, &sc);
    struct err e = {0};
    assert_written(x, "d/small", 5000, 999, 9);
    assert_string_equal(fake_find(&x->f, "pre/d/small")->cls, "NEARLINE");
    assert_int_equal(fake_count(&x->f, "uploadType=multipart"), 1);
    assert_int_equal(stor_put(x->s, "d/metadata.yaml", "created: x\n", 11, &e), 0);
    assert_string_equal(fake_find(&x->f, "pre/d/metadata.yaml")->cls, "STANDARD");
    assert_int_equal(fake_count(&x->f, "uploadType=multipart"), 2);
    /* Binary data that needs no escaping, even with CRLF and dashes in it. */
    static const char tricky[] = "--\r\n--abs_gcs_\r\n\r\n\0x";
    assert_int_equal(stor_put(x->s, "d/tricky", tricky, sizeof tricky, &e), 0);
    assert_int_equal(fake_find(&x->f, "pre/d/tricky")->len, sizeof tricky);
    assert_memory_equal(fake_find(&x->f, "pre/d/tricky")->data, tricky, sizeof tricky);
    /* Resumable: the class goes with the session. */
    assert_int_equal(write_steps(x->s, "d/big", 2 * Q + 1, 65536, 10, &e), 0);
    assert_string_equal(fake_find(&x->f, "pre/d/big")->cls, "NEARLINE");
    /* No class configured: plain media uploads, the bucket's default class. */
    stor_close(x->s);
    x->s = open_fake(x, Q, NULL, 0, NULL);
    assert_int_equal(write_steps(x->s, "d/plain", 10, 10, 11, &e), 0);
    assert_string_equal(fake_find(&x->f, "pre/d/plain")->cls, "STANDARD");
    assert_int_equal(fake_count(&x->f, "uploadType=multipart"), 3);
}

/* ---- reads --------------------------------------------------------------------------------- */

static void test_bounded_ranged_reads(void **state)
{
    struct gfx *x = *state;
    x->s = open_fake(x, 4 * Q, NULL, 100000, NULL); /* reads of at most 100000 bytes */
    struct err e = {0};
    size_t n = 350000;
    assert_int_equal(write_steps(x->s, "obj", n, n, 12, &e), 0);
    unsigned char *want = pattern(n, 12);
    x->f.n_log = 0;
    size_t got;
    unsigned char *p = sc_read_range(x->s, "obj", 1000, 300000, &got);
    assert_int_equal(got, 300000);
    assert_memory_equal(p, want + 1000, got);
    free(p);
    assert_int_equal(fake_count(&x->f, "alt=media"), 3);
    assert_int_equal(fake_count(&x->f, "bytes=1000-100999"), 1);
    assert_int_equal(fake_count(&x->f, "bytes=101000-200999"), 1);
    assert_int_equal(fake_count(&x->f, "bytes=201000-300999"), 1);
    /* Later GETs are pinned to the generation of the first. */
    assert_int_equal(fake_count(&x->f, "generation="), 2);

    /* Replaced between two GETs: the pinned generation is gone, the read fails cleanly. */
    struct stor_reader *r;
    assert_int_equal(stor_reader_open(x->s, "obj", 0, -1, &r, &e), 0);
    assert_int_equal(stor_reader_size(r), n);
    static unsigned char buf[200000];
    assert_int_equal(stor_reader_read(r, buf, sizeof buf, &got, &e), 0);
    assert_int_equal(got, 100000);
    assert_int_equal(write_steps(x->s, "obj", n, n, 13, &e), 0);
    assert_int_equal(stor_reader_read(r, buf, sizeof buf, &got, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "replaced"));
    stor_reader_close(r);

    /* Past the end, zero length, missing. */
    p = sc_read_range(x->s, "obj", n + 5, 10, &got);
    assert_int_equal(got, 0);
    free(p);
    assert_int_equal(stor_reader_open(x->s, "obj", 10, 0, &r, &e), 0);
    assert_int_equal(stor_reader_size(r), n);
    assert_int_equal(stor_reader_read(r, buf, sizeof buf, &got, &e), 0);
    assert_int_equal(got, 0);
    stor_reader_close(r);
    assert_int_equal(stor_reader_open(x->s, "nope", 0, -1, &r, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "nope"));
    free(want);
}

/* ---- auth ---------------------------------------------------------------------------------- */

static unsigned char *b64url_decode(const char *in, size_t n, size_t *out_len)
{
    char *t = calloc(n + 4, 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        t[m++] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    while (m % 4)
        t[m++] = '=';
    unsigned char *out = malloc(m);
    int len = EVP_DecodeBlock(out, (unsigned char *)t, (int)m);
    assert_true(len >= 0);
    size_t pad = (m && t[m - 1] == '=') + (m > 1 && t[m - 2] == '=');
    free(t);
    *out_len = (size_t)len - pad;
    return out;
}

static EVP_PKEY *load_pem(const char *file, bool priv)
{
    char *pem = read_text(file);
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = priv ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)
                       : PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pem);
    assert_non_null(k);
    return k;
}

/* Verifies a JWT with the test public key; returns its claims (json_decref). */
static json_t *jwt_verify(const char *jwt, json_t **header)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    assert_non_null(d2);
    size_t hl, cl, sl;
    unsigned char *h = b64url_decode(jwt, (size_t)(d1 - jwt), &hl);
    unsigned char *c = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &cl);
    unsigned char *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);
    EVP_PKEY *pub = load_pem("test-sa-pub.pem", false);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
    int ok = EVP_DigestVerify(md, sig, sl, (const unsigned char *)jwt, (size_t)(d2 - jwt));
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pub);
    assert_int_equal(ok, 1);
    json_t *claims = json_loadb((const char *)c, cl, 0, NULL);
    *header = json_loadb((const char *)h, hl, 0, NULL);
    assert_non_null(claims);
    assert_non_null(*header);
    free(h);
    free(c);
    free(sig);
    return claims;
}

static void test_jwt_signature(void **state)
{
    EVP_PKEY *k = load_pem("test-sa-key.pem", true);
    char *jwt = NULL;
    struct err e = {0};
    assert_int_equal(gcs_jwt_build(k, "kid-1", "sa@p.iam.gserviceaccount.com", GCS_SCOPE_RW,
                                   "https://oauth2.googleapis.com/token", 1700000000, &jwt, &e),
                     0);
    assert_null(strpbrk(jwt, "+/= \n"));
    json_t *hdr;
    json_t *claims = jwt_verify(jwt, &hdr);
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "kid-1");
    assert_string_equal(json_string_value(json_object_get(claims, "iss")),
                        "sa@p.iam.gserviceaccount.com");
    assert_string_equal(json_string_value(json_object_get(claims, "scope")),
                        "https://www.googleapis.com/auth/devstorage.read_write");
    assert_string_equal(json_string_value(json_object_get(claims, "aud")),
                        "https://oauth2.googleapis.com/token");
    assert_int_equal(json_integer_value(json_object_get(claims, "iat")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")), 1700003600);
    json_decref(hdr);
    json_decref(claims);

    /* A changed claim no longer matches the signature. */
    char *d1 = strchr(jwt, '.');
    d1[3] = d1[3] == 'A' ? 'B' : 'A';
    char *d2 = strchr(d1 + 1, '.');
    size_t sl;
    unsigned char *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);
    EVP_PKEY *pub = load_pem("test-sa-pub.pem", false);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub);
    assert_int_not_equal(EVP_DigestVerify(md, sig, sl, (unsigned char *)jwt, (size_t)(d2 - jwt)),
                         1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pub);
    free(sig);
    free(jwt);
    EVP_PKEY_free(k);

    char *b = gcs_b64url("\xfb\xff\xfe", 3);
    assert_string_equal(b, "-__-");
    free(b);
    b = gcs_b64url("ab", 2);
    assert_string_equal(b, "YWI");
    free(b);
}

static int64_t fake_clock;
static int64_t fake_now(void) { return fake_clock; }

static void test_token_cache_and_refresh(void **state)
{
    struct gfx *x = *state;
    x->f.token_expires_in = 3600;
    x->key = sa_key_json(x->f.port, "test-sa-key.pem");
    struct cloud_http_opts ho = {.retry = short_retry()};
    struct cloud_http *h;
    struct err e = {0};
    assert_int_equal(cloud_http_new(&ho, &h, &e), 0);
    struct gcs_auth *a;
    assert_int_equal(gcs_auth_new(x->key, h, &a, &e), 0);
    fake_clock = 1800000000;
    gcs_auth_set_clock(a, fake_now);
    char *t;
    assert_int_equal(gcs_auth_token(a, &t, &e), 0);
    assert_string_equal(t, "tok-1");
    free(t);
    /* The assertion: JWT bearer grant, signed, aud = token_uri, iat = now. */
    assert_string_equal(x->f.last_grant, "urn:ietf:params:oauth:grant-type:jwt-bearer");
    json_t *hdr, *claims = jwt_verify(x->f.last_assertion, &hdr);
    char uri[64];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/token", x->f.port);
    assert_string_equal(json_string_value(json_object_get(claims, "aud")), uri);
    assert_string_equal(json_string_value(json_object_get(claims, "iss")),
                        "tester@demo.iam.gserviceaccount.com");
    assert_int_equal(json_integer_value(json_object_get(claims, "iat")), 1800000000);
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "kid-123");
    json_decref(claims);
    json_decref(hdr);

    /* Cached until 5 minutes before expiry, then refreshed. */
    fake_clock += 3000;
    assert_int_equal(gcs_auth_token(a, &t, &e), 0);
    assert_string_equal(t, "tok-1");
    free(t);
    assert_int_equal(gcs_auth_fetches(a), 1);
    fake_clock += 301; /* 3301 s: within the margin */
    assert_int_equal(gcs_auth_token(a, &t, &e), 0);
    assert_string_equal(t, "tok-2");
    free(t);
    assert_int_equal(gcs_auth_fetches(a), 2);

    /* A refresh that fails while the old token is still valid keeps the old one... */
    fake_clock += 3400;
    x->f.token_status = 500;
    assert_int_equal(gcs_auth_token(a, &t, &e), 0);
    assert_string_equal(t, "tok-2");
    free(t);
    /* ...but not after it expired. */
    fake_clock += 300;
    assert_int_equal(gcs_auth_token(a, &t, &e), ERR_IO);
    assert_null(t);
    assert_non_null(strstr(e.msg, "token request"));
    x->f.token_status = 0;

    /* Short-lived tokens are refreshed after three quarters of their life. */
    x->f.token_expires_in = 100;
    gcs_auth_invalidate(a);
    assert_int_equal(gcs_auth_token(a, &t, &e), 0);
    free(t);
    int before = gcs_auth_fetches(a);
    fake_clock += 70;
    assert_int_equal(gcs_auth_token(a, &t, &e), 0);
    free(t);
    assert_int_equal(gcs_auth_fetches(a), before);
    fake_clock += 10;
    assert_int_equal(gcs_auth_token(a, &t, &e), 0);
    free(t);
    assert_int_equal(gcs_auth_fetches(a), before + 1);
    gcs_auth_free(a);
    cloud_http_free(h);
}

static void test_storage_with_key(void **state)
{
    struct gfx *x = *state;
    x->key = sa_key_json(x->f.port, "test-sa-key.pem");
    x->f.require_auth = true;
    x->s = open_fake(x, Q, x->key, 0, NULL);
    assert_int_equal(x->f.token_calls, 0); /* no network at open */
    struct err e = {0};
    assert_written(x, "k/a", 3 * Q + 1, 65536, 14);
    uint64_t size;
    assert_int_equal(stor_stat(x->s, "k/a", &size, NULL, &e), 0);
    assert_int_equal(x->f.token_calls, 1); /* one token for all those requests */
    assert_int_equal(x->f.rejected, 0);
    assert_int_equal(x->f.unauthenticated, 0);

    /* The token is revoked: a 401, a new token, the request again. */
    snprintf(x->f.token, sizeof x->f.token, "revoked");
    if (stor_stat(x->s, "k/a", &size, NULL, &e) != 0)
        fail_msg("stat after revocation: %s", e.msg);
    assert_int_equal(size, 3 * Q + 1);
    assert_int_equal(x->f.rejected, 1);
    assert_int_equal(x->f.token_calls, 2);

    /* A key the token endpoint refuses: access denied, and no secret in the message. */
    snprintf(x->f.token, sizeof x->f.token, "revoked-again");
    x->f.token_status = 400;
    assert_int_equal(stor_stat(x->s, "k/a", &size, NULL, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "access denied"));
    assert_non_null(strstr(e.msg, "invalid_grant"));
    assert_null(strstr(e.msg, "eyJ"));          /* a JWT */
    assert_null(strstr(e.msg, "PRIVATE KEY"));
    assert_null(strstr(e.msg, "MII"));          /* PEM body */
    assert_null(strstr(e.msg, "tok-"));
}

static void test_key_errors(void **state)
{
    struct gfx *x = *state;
    struct err e = {0};
    struct stor *s = NULL;
    struct cfg_gcp_storage c = {.bucket_name = "bkt", .key = "{\"private_key\": \"MIIsecret"};
    assert_int_equal(stor_gcs_open(&c, &s, &e), ERR_INVALID);
    assert_null(strstr(e.msg, "MIIsecret"));
    assert_non_null(strstr(e.msg, "JSON"));
    c.key = "{\"type\":\"service_account\",\"client_email\":\"a@b\","
            "\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nMIIsecret\\n"
            "-----END PRIVATE KEY-----\\n\"}";
    assert_int_equal(stor_gcs_open(&c, &s, &e), ERR_INVALID);
    assert_null(strstr(e.msg, "MIIsecret"));
    assert_non_null(strstr(e.msg, "PEM"));
    c.key = "{\"type\":\"authorized_user\",\"client_id\":\"x\"}";
    assert_int_equal(stor_gcs_open(&c, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "service_account"));
    c.key = "{\"type\":\"service_account\",\"client_email\":\"a@b\"}";
    assert_int_equal(stor_gcs_open(&c, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "private_key"));
    char *ec = sa_key_json(x->f.port, "test-ec-key.pem");
    c.key = ec;
    assert_int_equal(stor_gcs_open(&c, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "RSA"));
    free(ec);
    c.key = NULL;
    c.key_file_path = "/nonexistent/sa.json";
    assert_int_equal(stor_gcs_open(&c, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "/nonexistent/sa.json"));

    /* key-file-path: the same key from a file works. */
    char path[] = "/tmp/abs_gcs_key.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *key = sa_key_json(x->f.port, "test-sa-key.pem");
    assert_int_equal(write(fd, key, strlen(key)), (ssize_t)strlen(key));
    close(fd);
    free(key);
    snprintf(x->endpoint, sizeof x->endpoint, "http://127.0.0.1:%d", x->f.port);
    c.key_file_path = path;
    c.endpoint = x->endpoint;
    struct cloud_retry r = short_retry();
    struct gcs_open_opts o = {.retry = &r};
    assert_int_equal(stor_gcs_open_opts(&c, &o, &s, &e), 0);
    unlink(path);
    x->f.require_auth = true;
    if (stor_put(s, "x", "1", 1, &e) != 0)
        fail_msg("put with key file: %s", e.msg);
    assert_int_equal(x->f.token_calls, 1);
    assert_int_equal(x->f.rejected, 0);
    stor_close(s);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_error_mapping(void **state)
{
    struct gfx *x = *state;
    x->s = open_fake(x, Q, NULL, 0, NULL);
    struct err e = {0};
    uint64_t size;
    assert_int_equal(stor_stat(x->s, "missing/key", &size, NULL, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "missing/key"));
    assert_non_null(strstr(e.msg, "gs://bkt/pre"));
    assert_int_equal(stor_delete(x->s, "missing/key", &e), 0); /* absent is fine */

    x->f.bucket_missing = true;
    assert_int_equal(stor_stat(x->s, "a", &size, NULL, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "bucket bkt does not exist"));
    assert_int_equal(stor_put(x->s, "a", "x", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "bucket bkt does not exist"));
    assert_int_equal(stor_delete(x->s, "a", &e), ERR_IO);
    assert_non_null(strstr(e.msg, "bucket bkt does not exist"));
    struct stor_reader *r;
    assert_int_equal(stor_reader_open(x->s, "a", 0, -1, &r, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "bucket bkt does not exist"));
    struct stor_page p;
    struct stor_list_opts lo = {.prefix = "r/"};
    assert_int_equal(stor_list_page(x->s, &lo, NULL, &p, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "bucket bkt does not exist"));
    stor_page_free(&p);
    assert_int_equal(stor_delete_prefix(x->s, "r/", &e), ERR_IO);
    assert_non_null(strstr(e.msg, "bucket bkt does not exist"));
    x->f.bucket_missing = false;

    x->f.deny = true;
    assert_int_equal(stor_put(x->s, "a", "x", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "access denied"));
    assert_non_null(strstr(e.msg, "gs://bkt/pre"));
    assert_int_equal(stor_stat(x->s, "a", &size, NULL, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "access denied"));
    assert_non_null(strstr(e.msg, "no key or key-file-path configured"));
    x->f.deny = false;
}

static void test_store_down(void **state)
{
    struct gfx *x = *state;
    /* A port with nothing listening: take one from the fake, then stop the fake. */
    fake_stop(&x->f);
    struct cfg_gcp_storage c = {.bucket_name = "bkt", .endpoint = x->endpoint};
    snprintf(x->endpoint, sizeof x->endpoint, "http://127.0.0.1:%d", x->f.port);
    struct cloud_retry r = short_retry();
    struct gcs_open_opts o = {.retry = &r};
    struct err e = {0};
    assert_int_equal(stor_gcs_open_opts(&c, &o, &x->s, &e), 0);
    time_t t0 = time(NULL);
    assert_int_equal(stor_put(x->s, "a", "x", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "gs://bkt"));
    assert_non_null(strstr(e.msg, "after 3 attempts"));
    uint64_t size;
    assert_int_equal(stor_stat(x->s, "a", &size, NULL, &e), ERR_IO);
    struct stor_page p;
    struct stor_list_opts lo = {0};
    assert_int_equal(stor_list_page(x->s, &lo, NULL, &p, &e), ERR_IO);
    stor_page_free(&p);
    assert_true(time(NULL) - t0 < 20);
    assert_int_equal(fake_start(&x->f), 0); /* for the teardown */
}

/* ==== against the emulator =================================================================== */

#define EMU_PART (8u << 20) /* larger than any contract object but the "big" ones */

static const char *emu_endpoint(void) { return getenv("GCS_EMULATOR_ENDPOINT"); }
static const char *emu_bucket(void)
{
    const char *b = getenv("GCS_EMULATOR_BUCKET");
    return b && *b ? b : "abs-test";
}

static int emu_open_part(size_t part, const char *path, struct stor **out, struct err *e)
{
    struct cfg_gcp_storage c = {.bucket_name = (char *)emu_bucket(), .path = (char *)path,
                                .endpoint = (char *)emu_endpoint()};
    c.min_part_size.set = true;
    c.min_part_size.v = (int64_t)part;
    struct cloud_retry r = short_retry();
    struct gcs_open_opts o = {.retry = &r};
    return stor_gcs_open_opts(&c, &o, out, e);
}

/* A fresh random prefix per test: an empty storage in the shared bucket. */
static int emu_open(void *ctx, struct stor **out, struct err *e)
{
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
        return err_set(e, ERR_IO, "getrandom");
    char path[64];
    snprintf(path, sizeof path, "contract/%02x%02x%02x%02x%02x%02x/", rnd[0], rnd[1], rnd[2],
             rnd[3], rnd[4], rnd[5]);
    return emu_open_part(EMU_PART, path, out, e);
}

/* big object: exactly one part, so it goes up as a single-chunk resumable upload (the
 * emulator finalises a resumable upload at its first PUT). */
static struct stor_contract emu_backend = {
    .name = "gcs-emulator", .open = emu_open, .cleanup = sc_cleanup_delete_all, .leftovers = NULL,
    .big_size = 12u << 20, .big_part = 12u << 20, .threads = 4, .per_thread = 15,
};

#define EMU_TEST(fn) STOR_CONTRACT_TEST(fn, &emu_backend)

/* The contract's abort test without its several-parts case (multi-chunk resumable uploads do
 * not work on the emulator; test_abort_cancels_session covers them on the fake). */
static void emu_abort_leaves_nothing(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    struct err e = {0};
    struct stor_writer *w;
    static unsigned char buf[300000];
    sc_pattern(buf, sizeof buf, 3);
    assert_int_equal(stor_writer_open(s, "r/backup/1/data/ns/0_ns_1.asb", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, buf, sizeof buf, &e), 0);
    stor_writer_abort(w);
    assert_int_equal(stor_stat(s, "r/backup/1/data/ns/0_ns_1.asb", NULL, NULL, &e),
                     ERR_NOT_FOUND);
    /* A session opened (buffer full, more data), then aborted. */
    assert_int_equal(stor_writer_open(s, "r/backup/1/data/ns/1_ns_2.asb", Q, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, buf, Q, &e), 0);
    stor_writer_abort(w);
    assert_int_equal(stor_stat(s, "r/backup/1/data/ns/1_ns_2.asb", NULL, NULL, &e),
                     ERR_NOT_FOUND);
    sc_put_str(s, "a/keep", "x");
    assert_int_equal(stor_writer_open(s, "a/gone", 0, &w, &e), 0);
    stor_writer_abort(w);
    sc_assert_list(s, "", false, "a/keep");
    sc_assert_list(s, "", true, "a/");
}

/* GET of an object's metadata JSON straight from the emulator. */
static char *emu_object_json(const char *object)
{
    char *enc = cloud_url_encode(object, false);
    char url[512];
    snprintf(url, sizeof url, "%s/storage/v1/b/%s/o/%s", emu_endpoint(), emu_bucket(), enc);
    free(enc);
    struct cloud_http_opts ho = {.retry = short_retry()};
    struct cloud_http *h;
    struct err e = {0};
    assert_int_equal(cloud_http_new(&ho, &h, &e), 0);
    struct cloud_http_req req = {.what = "emulator GET", .method = "GET", .url = url};
    struct cloud_http_resp resp;
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
    assert_int_equal(resp.status, 200);
    char *body = strdup(resp.body);
    cloud_http_resp_free(&resp);
    cloud_http_free(h);
    return body;
}

static void emu_single_chunk_resumable_and_class(void **state)
{
    struct cfg_storage_class sc = {.data = "NEARLINE", .metadata = "COLDLINE"};
    struct cfg_gcp_storage c = {.bucket_name = (char *)emu_bucket(), .path = "classes",
                                .endpoint = (char *)emu_endpoint(), .storage_class = &sc};
    c.min_part_size.set = true;
    c.min_part_size.v = 2 * Q;
    struct cloud_retry r = short_retry();
    struct gcs_open_opts o = {.retry = &r};
    struct stor *s;
    struct err e = {0};
    assert_int_equal(stor_gcs_open_opts(&c, &o, &s, &e), 0);
    sc_write_obj(s, "exact", 2 * Q, 21); /* one full chunk: resumable, single PUT */
    sc_write_obj(s, "small", 1000, 22);  /* multipart with the class */
    assert_int_equal(stor_put(s, "meta.yaml", "a: b\n", 5, &e), 0);
    size_t got;
    unsigned char *p = sc_read_range(s, "exact", 0, -1, &got), *want = pattern(2 * Q, 21);
    assert_int_equal(got, 2 * Q);
    assert_memory_equal(p, want, got);
    free(p);
    free(want);
    /* The emulator stores every object as STANDARD whatever the upload says (the classes
     * sent are checked on the fake, test_storage_classes); here: the uploads that carry a
     * class (multipart, resumable) are accepted and stored whole. */
    char *j = emu_object_json("classes/exact");
    assert_non_null(strstr(j, "\"size\":\"524288\""));
    free(j);
    j = emu_object_json("classes/meta.yaml");
    assert_non_null(strstr(j, "\"size\":\"5\""));
    free(j);
    char *data;
    assert_int_equal(stor_get(s, "meta.yaml", 100, &data, NULL, &e), 0);
    assert_string_equal(data, "a: b\n");
    free(data);
    p = sc_read_range(s, "small", 0, -1, &got);
    want = pattern(1000, 22);
    assert_int_equal(got, 1000);
    assert_memory_equal(p, want, got);
    free(p);
    free(want);
    assert_int_equal(stor_delete_prefix(s, "", &e), ERR_INVALID);
    assert_int_equal(stor_delete(s, "exact", &e), 0);
    assert_int_equal(stor_delete(s, "small", &e), 0);
    assert_int_equal(stor_delete(s, "meta.yaml", &e), 0);
    stor_close(s);
}

/* Listing pages mixing objects and prefixes: the emulator reports every prefix on every page
 * and counts only objects in maxResults; pages still come in order, without repeats. */
static void emu_mixed_pages(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    const char *keys[] = {"m/a", "m/b/x", "m/c", "m/d/y", "m/e", "m/f", "m/g/z", "m/h"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        sc_put_str(s, keys[i], "v");
    for (size_t ps = 1; ps <= 4; ps++) {
        char *got = sc_list_str(s, "m/", true, ps, NULL, NULL);
        assert_string_equal(got, "m/a,m/b/,m/c,m/d/,m/e,m/f,m/g/,m/h");
        free(got);
        got = sc_list_str(s, "m/", true, ps, "m/c", NULL);
        assert_string_equal(got, "m/d/,m/e,m/f,m/g/,m/h");
        free(got);
    }
}

/* Objects other tools wrote under the prefix with names that are not valid keys ("a//b",
 * ".hidden", a "folder/" placeholder): not listed as objects, but delete_prefix removes them. */
static void emu_foreign_objects(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    sc_put_str(s, "d/a", "x");
    const char *foreign[] = {"d/.hidden", "d//b", "d/sub/"};
    struct cloud_http_opts ho = {.retry = short_retry()};
    struct cloud_http *h;
    struct err e = {0};
    assert_int_equal(cloud_http_new(&ho, &h, &e), 0);
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        char name[256], url[768];
        snprintf(name, sizeof name, "%s/%s", stor_root(s), foreign[i]);
        char *enc = cloud_url_encode(name, false);
        snprintf(url, sizeof url, "%s/upload/storage/v1/b/%s/o?uploadType=media&name=%s",
                 emu_endpoint(), emu_bucket(), enc);
        free(enc);
        struct cloud_http_req req = {.what = "emulator upload", .method = "POST", .url = url,
                                     .body = "f", .body_len = 1};
        struct cloud_http_resp resp;
        assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
        assert_int_equal(resp.status, 200);
        cloud_http_resp_free(&resp);
    }
    cloud_http_free(h);
    sc_assert_list(s, "d/", false, "d/a");
    /* A "folder" placeholder makes its prefix appear, as in the store's own listings. */
    sc_assert_list(s, "d/", true, "d/a,d/sub/");
    assert_int_equal(stor_delete_prefix(s, "d/", &e), 0);
    char name[256];
    snprintf(name, sizeof name, "%s/d/", stor_root(s));
    char *enc = cloud_url_encode(name, false);
    char url[768];
    snprintf(url, sizeof url, "%s/storage/v1/b/%s/o?prefix=%s", emu_endpoint(), emu_bucket(),
             enc);
    free(enc);
    assert_int_equal(cloud_http_new(&ho, &h, &e), 0);
    struct cloud_http_req req = {.what = "emulator list", .method = "GET", .url = url};
    struct cloud_http_resp resp;
    assert_int_equal(cloud_http_do(h, &req, &resp, &e), 0);
    assert_null(strstr(resp.body, "\"items\"")); /* nothing left under d/ */
    cloud_http_resp_free(&resp);
    cloud_http_free(h);
}

static void emu_store_down(void **state)
{
    /* The emulator's port + 1 is not assumed free: use a port just released. */
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", loopback_released_port());
    struct cfg_gcp_storage c = {.bucket_name = (char *)emu_bucket(), .endpoint = ep};
    struct cloud_retry r = short_retry();
    struct gcs_open_opts o = {.retry = &r};
    struct stor *s;
    struct err e = {0};
    assert_int_equal(stor_gcs_open_opts(&c, &o, &s, &e), 0);
    assert_int_equal(stor_put(s, "a", "x", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "gs://"));
    stor_close(s);
}

static int run_emulator_suite(void)
{
    if (!emu_endpoint()) {
        fprintf(stderr, "GCS_EMULATOR_ENDPOINT is not set (run through "
                        "tests/services/gcs-emulator.sh)\n");
        return 1;
    }
    /* Missing bucket: not testable here, the emulator creates any bucket a request names
     * (test_error_mapping covers it on the fake). Auth: the emulator checks none. */
    const struct CMUnitTest tests[] = {
        EMU_TEST(stor_contract_write_commit_read),
        EMU_TEST(stor_contract_large_object),
        EMU_TEST(emu_abort_leaves_nothing),
        EMU_TEST(stor_contract_uncommitted_invisible),
        EMU_TEST(stor_contract_list),
        EMU_TEST(stor_contract_list_callback),
        EMU_TEST(stor_contract_odd_keys),
        EMU_TEST(stor_contract_delete),
        EMU_TEST(stor_contract_delete_many),
        EMU_TEST(stor_contract_put_get),
        EMU_TEST(stor_contract_stat),
        EMU_TEST(stor_contract_bad_keys),
        EMU_TEST(stor_contract_io_adapters),
        EMU_TEST(stor_contract_concurrent_writers),
        EMU_TEST(emu_mixed_pages),
        EMU_TEST(emu_foreign_objects),
        cmocka_unit_test(emu_single_chunk_resumable_and_class),
        cmocka_unit_test(emu_store_down),
    };
    return cmocka_run_group_tests_name("gcs emulator", tests, NULL, NULL);
}

#define FAKE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "emulator") == 0)
        return run_emulator_suite();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helpers),
        FAKE_TEST(test_open_and_name),
        FAKE_TEST(test_small_object_media_upload),
        FAKE_TEST(test_multi_chunk_resumable),
        FAKE_TEST(test_exact_chunk_is_single_chunk_resumable),
        FAKE_TEST(test_partly_persisted_chunk_resent),
        FAKE_TEST(test_chunk_5xx_retried),
        FAKE_TEST(test_abort_cancels_session),
        FAKE_TEST(test_storage_classes),
        FAKE_TEST(test_bounded_ranged_reads),
        cmocka_unit_test(test_jwt_signature),
        FAKE_TEST(test_token_cache_and_refresh),
        FAKE_TEST(test_storage_with_key),
        FAKE_TEST(test_key_errors),
        FAKE_TEST(test_error_mapping),
        FAKE_TEST(test_store_down),
    };
    return cmocka_run_group_tests_name("gcs fake", tests, NULL, NULL);
}
