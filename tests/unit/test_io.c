/*
 * test_io.c - stream stages (src/io): key derivation from the shipped RSA test keys (every
 * accepted key format, non-RSA and garbage keys rejected), decryption / decompression of every
 * golden asbackup e-* file into the same records as the plain backup, bit-exact re-encryption
 * of the golden files from their IVs, compress + encrypt round trips in every combination,
 * wrong keys, truncated and corrupt input (clear errors with offsets, no crash), the counting
 * stage and file-limit splitter, file / callback stages, and a pipeline throughput figure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <zstd.h>

#include "asb/asb.h"
#include "io/io.h"

#include "rec_set.h"
#include "slurp.h"

#define DATA TEST_DATA_DIR "/asb/"

/* ---- helpers ------------------------------------------------------------------------------ */

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static const char *KEY_HASH[] = {
    /* SHA-256 of the PKCS#1 DER of each key.pem (openssl rsa -traditional -outform DER) */
    "a8a67cc5af75a9d506928a2931ff29fdba6dfac2bc6b5da267e738c0c5415fed", /* aes128 */
    "84fcd2c45bc9b74a53fcb3c1476f9aca6a64f808f2d077711a7a7a42d56eb219", /* aes256 */
    "f13cc96b2eb003dcc8685be621b1870ecae4a0856a3fc6c09292fe44ee1a7b60", /* zstd-aes256 */
};

static struct io_aes_key load_key(const char *dir, int bits)
{
    char path[512];
    snprintf(path, sizeof path, DATA "%s/key.pem", dir);
    struct io_aes_key k;
    struct err e;
    if (io_aes_key_from_file(path, bits, &k, &e) != 0)
        fail_msg("key %s: %s", path, e.msg);
    return k;
}

/* Decoded contents of a stream: counts, sorted (digest, hash) pairs of the records, and the
 * stream re-encoded (plain). */
struct decoded {
    int rc;
    char msg[ERR_MSG_MAX];
    long records, udfs, sindexes;
    struct rec_id *ids;
    size_t n;
    uint8_t *text;
    size_t text_len;
};

static struct decoded decode_reader(struct io_reader *r, bool compact)
{
    struct decoded o = {0};
    struct err e;
    struct io_writer *mem = io_mem_writer_new(&e);
    struct asb_writer w;
    assert_int_equal(asb_writer_init(&w, 0, compact, io_write_cb, mem, &e), 0);
    struct asb_dec *d = asb_dec_new(io_read_cb, r, NULL);
    struct rec_set set = {0};
    o.rc = asb_dec_header(d, &e);
    if (o.rc == 0) {
        const char *ns = asb_dec_namespace(d);
        assert_int_equal(asb_writer_header(&w, ns, (uint32_t)strlen(ns), asb_dec_first_file(d), &e), 0);
    }
    while (o.rc == 0) {
        struct asb_item it;
        o.rc = asb_dec_next(d, &it, &e);
        if (o.rc != 0 || it.kind == ASB_ITEM_EOF)
            break;
        if (it.kind == ASB_ITEM_UDF) {
            o.udfs++;
            assert_int_equal(asb_writer_udf(&w, &it.u.udf, &e), 0);
            continue;
        }
        if (it.kind == ASB_ITEM_SINDEX) {
            o.sindexes++;
            assert_int_equal(asb_writer_sindex(&w, &it.u.sindex, &e), 0);
            continue;
        }
        o.records++;
        assert_int_equal(asb_writer_record(&w, &it.u.rec, &e), 0);
        rec_set_add(&set, &it.u.rec);
    }
    if (o.rc != 0)
        snprintf(o.msg, sizeof o.msg, "%s", e.msg);
    assert_int_equal(asb_writer_flush(&w, &e), 0);
    size_t tl;
    const uint8_t *t = io_mem_writer_data(mem, &tl);
    o.text = malloc(tl + 1);
    if (tl)
        memcpy(o.text, t, tl);
    o.text_len = tl;
    rec_set_finish(&set);
    o.ids = set.ids;
    o.n = set.n;
    asb_writer_free(&w);
    asb_dec_free(d);
    io_writer_free(mem);
    return o;
}

static void decoded_free(struct decoded *o)
{
    free(o->ids);
    free(o->text);
}

static struct decoded decode_file(const char *rel, bool zstd, const struct io_aes_key *key,
                                  struct io_counter *counter)
{
    char path[512];
    snprintf(path, sizeof path, DATA "%s", rel);
    struct err e;
    struct io_reader *src = io_file_reader_open(path, &e);
    assert_non_null(src);
    struct io_chain_opts o = {.zstd = zstd, .aes = key, .counter = counter};
    struct io_reader *r = io_reader_chain(src, &o, &e);
    assert_non_null(r);
    struct decoded d = decode_reader(r, false);
    io_reader_free(r);
    return d;
}

static void assert_same_records(const struct decoded *a, const struct decoded *b)
{
    assert_same_rec_ids(a->ids, a->n, b->ids, b->n);
}

/* ---- keys --------------------------------------------------------------------------------- */

static void test_key_from_test_files(void **state)
{
    (void)state;
    static const char *dirs[] = {"e-backup-aes128", "e-backup-aes256", "e-backup-zstd-aes256"};
    for (int i = 0; i < 3; i++) {
        uint8_t want[32];
        hex_to_bytes(KEY_HASH[i], want, 32);
        struct io_aes_key k = load_key(dirs[i], 256);
        assert_int_equal(k.bits, 256);
        assert_memory_equal(k.key, want, 32);
        k = load_key(dirs[i], 128);
        assert_int_equal(k.bits, 128);
        assert_memory_equal(k.key, want, 16);
    }
}

static char *b64(const uint8_t *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

static char *bio_text(BIO *bio, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = 0;
    *len = (size_t)n;
    return out;
}

static void test_key_formats(void **state)
{
    (void)state;
    size_t pem_len;
    uint8_t *pem = slurp_file(DATA "e-backup-aes256/key.pem", &pem_len);
    uint8_t want[32];
    hex_to_bytes(KEY_HASH[1], want, 32);
    struct io_aes_key k;
    struct err e;

    /* PKCS#8 PEM as-is */
    assert_int_equal(io_aes_key_from_pem(pem, pem_len, 256, &k, &e), 0);
    assert_memory_equal(k.key, want, 32);

    BIO *in = BIO_new_mem_buf(pem, (int)pem_len);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    assert_non_null(pk);
    BIO_free(in);

    /* PKCS#1 PEM ("RSA PRIVATE KEY") */
    BIO *out = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(out, pk, NULL, NULL, 0, NULL, NULL), 1);
    size_t len;
    char *pkcs1 = bio_text(out, &len);
    BIO_free(out);
    assert_non_null(strstr(pkcs1, "BEGIN RSA PRIVATE KEY"));
    memset(&k, 0, sizeof k);
    assert_int_equal(io_aes_key_from_pem(pkcs1, len, 256, &k, &e), 0);
    assert_memory_equal(k.key, want, 32);

    /* PEM with every newline removed (header, body and footer glued together) */
    char *flat = malloc(pem_len + 1);
    size_t fl = 0;
    for (size_t i = 0; i < pem_len; i++)
        if (pem[i] != '\n' && pem[i] != '\r')
            flat[fl++] = (char)pem[i];
    memset(&k, 0, sizeof k);
    assert_int_equal(io_aes_key_from_pem(flat, fl, 256, &k, &e), 0);
    assert_memory_equal(k.key, want, 32);

    /* base64 of the PEM */
    char *bpem = b64(pem, pem_len);
    memset(&k, 0, sizeof k);
    assert_int_equal(io_aes_key_from_pem(bpem, strlen(bpem), 256, &k, &e), 0);
    assert_memory_equal(k.key, want, 32);

    /* base64 of DER (PKCS#8 and PKCS#1), and base64 of that */
    out = BIO_new(BIO_s_mem());
    assert_int_equal(i2d_PKCS8PrivateKey_bio(out, pk, NULL, NULL, 0, NULL, NULL), 1);
    char *der8 = bio_text(out, &len);
    BIO_free(out);
    char *bder = b64((uint8_t *)der8, len);
    memset(&k, 0, sizeof k);
    assert_int_equal(io_aes_key_from_pem(bder, strlen(bder), 256, &k, &e), 0);
    assert_memory_equal(k.key, want, 32);
    char *bbder = b64((uint8_t *)bder, strlen(bder));
    memset(&k, 0, sizeof k);
    assert_int_equal(io_aes_key_from_pem(bbder, strlen(bbder), 128, &k, &e), 0);
    assert_int_equal(k.bits, 128);
    assert_memory_equal(k.key, want, 16);

    /* a non-RSA key */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec);
    out = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(out, ec, NULL, NULL, 0, NULL, NULL), 1);
    char *ecpem = bio_text(out, &len);
    BIO_free(out);
    assert_int_equal(io_aes_key_from_pem(ecpem, len, 256, &k, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "not an RSA key"));
    EVP_PKEY_free(ec);

    /* a public key only, garbage, empty, bad sizes, missing file */
    out = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(out, pk), 1);
    char *pub = bio_text(out, &len);
    BIO_free(out);
    assert_int_equal(io_aes_key_from_pem(pub, len, 256, &k, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "not an RSA private key"));
    assert_int_equal(io_aes_key_from_pem("hello world", 11, 256, &k, &e), ERR_INVALID);
    assert_int_equal(io_aes_key_from_pem("aGVsbG8=", 8, 256, &k, &e), ERR_INVALID);
    assert_int_equal(io_aes_key_from_pem("", 0, 256, &k, &e), ERR_INVALID);
    assert_int_equal(io_aes_key_from_pem(pem, pem_len, 192, &k, &e), ERR_INVALID);
    assert_int_equal(io_aes_key_from_file("/nonexistent/key.pem", 256, &k, &e), ERR_NOT_FOUND);
    assert_int_equal(io_aes_key_from_file(DATA "dataset.asb", 256, &k, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "dataset.asb"));
    assert_int_equal(io_aes_key_from_bytes(want, 64, &k, &e), ERR_INVALID);

    EVP_PKEY_free(pk);
    free(pub);
    free(ecpem);
    free(bbder);
    free(bder);
    free(der8);
    free(bpem);
    free(flat);
    free(pkcs1);
    free(pem);
}

/* ---- golden files ------------------------------------------------------------------------- */

static void test_golden_decrypt_decompress(void **state)
{
    (void)state;
    struct decoded plain = decode_file("b-backup-full-p1/test_00000.asb", false, NULL, NULL);
    assert_int_equal(plain.rc, 0);
    assert_int_equal(plain.records, 2000);

    struct io_aes_key k128 = load_key("e-backup-aes128", 128);
    struct io_aes_key k256 = load_key("e-backup-aes256", 256);
    struct io_aes_key kz256 = load_key("e-backup-zstd-aes256", 256);
    struct {
        const char *file;
        bool zstd;
        const struct io_aes_key *key;
        size_t size;
    } cases[] = {
        {"e-backup-zstd/test_00000.asb", true, NULL, 112470},
        {"e-backup-aes128/test_00000.asb", false, &k128, 390995},
        {"e-backup-aes256/test_00000.asb", false, &k256, 390995},
        {"e-backup-zstd-aes256/test_00000.asb", true, &kz256, 112297},
    };
    for (size_t i = 0; i < 4; i++) {
        struct io_counter c = {0};
        struct decoded d = decode_file(cases[i].file, cases[i].zstd, cases[i].key, &c);
        if (d.rc != 0)
            fail_msg("%s: %s", cases[i].file, d.msg);
        assert_int_equal(d.records, 2000);
        assert_int_equal(d.udfs, 1);
        assert_int_equal(d.sindexes, 6);
        assert_same_records(&d, &plain);
        assert_int_equal(io_counter_bytes(&c), cases[i].size);
        assert_int_equal(d.text_len, 390979); /* the decoded text re-encodes to its size */
        decoded_free(&d);
    }
    decoded_free(&plain);
}

/* The plaintext of an encrypted golden file, and the IV its header block carries. */
static uint8_t *golden_plaintext(const char *file, const struct io_aes_key *k, uint8_t iv[16],
                                 size_t *len)
{
    size_t flen;
    uint8_t *f = slurp_file(file, &flen);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0;
    assert_int_equal(EVP_DecryptInit_ex(c, k->bits == 128 ? EVP_aes_128_ecb() : EVP_aes_256_ecb(),
                                        NULL, k->key, NULL), 1);
    EVP_CIPHER_CTX_set_padding(c, 0);
    assert_int_equal(EVP_DecryptUpdate(c, iv, &n, f, 16), 1);
    EVP_CIPHER_CTX_free(c);
    for (int i = 15; i >= 0 && ++iv[i] == 0; i--)
        ;
    free(f);
    struct err e;
    struct io_reader *src = io_file_reader_open(file, &e);
    struct io_reader *r = io_aes_reader_new(src, k, &e);
    assert_non_null(r);
    uint8_t *buf = malloc(1 << 20);
    assert_int_equal(io_read_full(r, buf, 1 << 20, len, &e), 0);
    io_reader_free(r);
    return buf;
}

static void test_golden_reencrypt_bit_exact(void **state)
{
    (void)state;
    static const char *dirs[] = {"e-backup-aes128", "e-backup-aes256", "e-backup-zstd-aes256"};
    static const int bits[] = {128, 256, 256};
    for (int i = 0; i < 3; i++) {
        char file[512];
        snprintf(file, sizeof file, DATA "%s/test_00000.asb", dirs[i]);
        struct io_aes_key k = load_key(dirs[i], bits[i]);
        uint8_t iv[16];
        size_t plen;
        uint8_t *plain = golden_plaintext(file, &k, iv, &plen);
        if (i < 2)
            assert_memory_equal(plain, "Version 3.1\n", 12);
        else
            assert_memory_equal(plain, "\x28\xb5\x2f\xfd", 4);
        struct err e;
        struct io_writer *mem = io_mem_writer_new(&e);
        struct io_writer *w = io_aes_writer_new(mem, &k, iv, &e);
        assert_non_null(w);
        /* uneven write sizes */
        size_t off = 0, step = 1;
        while (off < plen) {
            size_t n = plen - off < step ? plen - off : step;
            assert_int_equal(io_write(w, plain + off, n, &e), 0);
            off += n;
            step = step * 3 + 1;
        }
        assert_int_equal(io_writer_close(w, &e), 0);
        size_t glen, olen;
        uint8_t *golden = slurp_file(file, &glen);
        const uint8_t *o = io_mem_writer_data(mem, &olen);
        assert_int_equal(olen, glen);
        assert_memory_equal(o, golden, glen);
        free(golden);
        free(plain);
        io_writer_free(w);
    }
}

/* ---- round trips -------------------------------------------------------------------------- */

static void test_roundtrip_matrix(void **state)
{
    (void)state;
    size_t len;
    uint8_t *text = slurp_file(DATA "dataset.asb", &len);
    struct io_aes_key k128 = load_key("e-backup-aes128", 128);
    struct io_aes_key k256 = load_key("e-backup-aes256", 256);
    struct {
        bool zstd;
        int level;
        const struct io_aes_key *key;
    } cases[] = {
        {false, 0, NULL}, {true, 0, NULL},    {true, 1, NULL},     {true, -5, NULL},
        {true, 19, NULL}, {false, 0, &k128},  {false, 0, &k256},   {true, 3, &k256},
        {true, 1, &k128},
    };
    uint8_t first16[16] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct err e;
        struct io_counter wc = {0}, rc = {0};
        struct io_writer *mem = io_mem_writer_new(&e);
        struct io_chain_opts o = {.zstd = cases[i].zstd, .zstd_level = cases[i].level,
                                  .aes = cases[i].key, .counter = &wc};
        struct io_writer *w = io_writer_chain(mem, &o, &e);
        if (!w)
            fail_msg("chain %zu: %s", i, e.msg);
        /* through the asb writer (decode + encode) in small buffers */
        struct asb_writer aw;
        assert_int_equal(asb_writer_init(&aw, 4096, false, io_write_cb, w, &e), 0);
        struct io_reader *src = io_mem_reader_new(text, len, &e);
        struct asb_dec *d = asb_dec_new(io_read_cb, src, NULL);
        assert_int_equal(asb_dec_header(d, &e), 0);
        assert_int_equal(asb_writer_header(&aw, "test", 4, true, &e), 0);
        for (;;) {
            struct asb_item it;
            assert_int_equal(asb_dec_next(d, &it, &e), 0);
            if (it.kind == ASB_ITEM_EOF)
                break;
            if (it.kind == ASB_ITEM_RECORD)
                assert_int_equal(asb_writer_record(&aw, &it.u.rec, &e), 0);
            else if (it.kind == ASB_ITEM_UDF)
                assert_int_equal(asb_writer_udf(&aw, &it.u.udf, &e), 0);
            else
                assert_int_equal(asb_writer_sindex(&aw, &it.u.sindex, &e), 0);
        }
        assert_int_equal(asb_writer_flush(&aw, &e), 0);
        asb_writer_free(&aw);
        asb_dec_free(d);
        io_reader_free(src);
        assert_int_equal(io_writer_close(w, &e), 0);
        assert_int_equal(io_writer_close(w, &e), 0); /* idempotent */
        assert_int_equal(io_write(w, "x", 1, &e), ERR_INTERNAL);

        size_t olen;
        const uint8_t *out = io_mem_writer_data(mem, &olen);
        assert_int_equal(io_counter_bytes(&wc), olen);
        if (!cases[i].zstd && !cases[i].key)
            assert_memory_equal(out, text, len);
        if (cases[i].zstd && !cases[i].key) {
            assert_true(olen < len / 2);
            assert_int_equal(ZSTD_findFrameCompressedSize(out, olen), olen); /* one frame */
        }
        if (cases[i].key) {
            assert_int_equal(olen >= 16, 1);
            assert_memory_not_equal(out, first16, 16); /* random IVs differ */
            memcpy(first16, out, 16);
        }
        /* read back with odd read sizes via the chain */
        struct io_reader *r = io_mem_reader_new(out, olen, &e);
        o.counter = &rc;
        r = io_reader_chain(r, &o, &e);
        assert_non_null(r);
        uint8_t *back = malloc(len + 1);
        size_t got = 0, step = 1;
        for (;;) {
            size_t n = 0, want = step % 9000 + 1;
            if (got + want > len + 1)
                want = len + 1 - got;
            assert_int_equal(io_read(r, back + got, want, &n, &e), 0);
            if (n == 0)
                break;
            got += n;
            step = step * 7 + 3;
        }
        assert_int_equal(got, len);
        assert_memory_equal(back, text, len);
        assert_int_equal(io_counter_bytes(&rc), olen);
        free(back);
        io_reader_free(r);
        io_writer_free(w);
    }
    free(text);
}

static void test_empty_streams(void **state)
{
    (void)state;
    struct io_aes_key k = load_key("e-backup-aes256", 256);
    struct err e;
    struct io_writer *mem = io_mem_writer_new(&e);
    struct io_chain_opts o = {.zstd = true, .aes = &k};
    struct io_writer *w = io_writer_chain(mem, &o, &e);
    assert_int_equal(io_writer_close(w, &e), 0);
    size_t n;
    const uint8_t *p = io_mem_writer_data(mem, &n);
    assert_true(n > 16); /* IV block + an empty zstd frame */
    struct io_reader *r = io_reader_chain(io_mem_reader_new(p, n, &e), &o, &e);
    uint8_t buf[16];
    size_t got = 1;
    /* an empty frame decrypts to the zstd magic, so the key check passes; no data */
    assert_int_equal(io_read(r, buf, sizeof buf, &got, &e), 0);
    assert_int_equal(got, 0);
    io_reader_free(r);
    io_writer_free(w);
}

/* ---- wrong keys, wrong options, truncation, corruption ------------------------------------ */

static void test_wrong_key_and_options(void **state)
{
    (void)state;
    struct io_aes_key other = load_key("e-backup-aes128", 256);
    struct io_aes_key right = load_key("e-backup-aes256", 256);
    struct io_aes_key short_key = load_key("e-backup-aes256", 128);
    struct io_aes_key kz = load_key("e-backup-zstd-aes256", 256);

    struct decoded d = decode_file("e-backup-aes256/test_00000.asb", false, &other, NULL);
    assert_int_equal(d.rc, ERR_INVALID);
    assert_non_null(strstr(d.msg, "wrong encryption key"));
    decoded_free(&d);
    d = decode_file("e-backup-aes256/test_00000.asb", false, &short_key, NULL);
    assert_non_null(strstr(d.msg, "wrong encryption key or key size"));
    decoded_free(&d);
    d = decode_file("e-backup-zstd-aes256/test_00000.asb", true, &right, NULL);
    assert_non_null(strstr(d.msg, "wrong encryption key"));
    decoded_free(&d);
    /* encrypted but read as plain / compressed */
    d = decode_file("e-backup-aes256/test_00000.asb", false, NULL, NULL);
    assert_int_equal(d.rc, ERR_INVALID);
    assert_non_null(strstr(d.msg, "not an .asb backup file"));
    decoded_free(&d);
    d = decode_file("e-backup-zstd-aes256/test_00000.asb", true, NULL, NULL);
    assert_non_null(strstr(d.msg, "not zstd data at compressed offset 0"));
    decoded_free(&d);
    /* compressed read as plain; plain read as compressed or encrypted */
    d = decode_file("e-backup-zstd/test_00000.asb", false, NULL, NULL);
    assert_non_null(strstr(d.msg, "zstd-compressed"));
    decoded_free(&d);
    d = decode_file("b-backup-full-p1/test_00000.asb", true, NULL, NULL);
    assert_non_null(strstr(d.msg, "not zstd data"));
    decoded_free(&d);
    d = decode_file("b-backup-full-p1/test_00000.asb", false, &right, NULL);
    assert_non_null(strstr(d.msg, "not encrypted"));
    decoded_free(&d);
    /* the right key still works after all that */
    d = decode_file("e-backup-zstd-aes256/test_00000.asb", true, &kz, NULL);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.records, 2000);
    decoded_free(&d);
}

static struct decoded decode_mem(const uint8_t *p, size_t n, bool zstd,
                                 const struct io_aes_key *key)
{
    struct err e;
    struct io_chain_opts o = {.zstd = zstd, .aes = key};
    struct io_reader *r = io_reader_chain(io_mem_reader_new(p, n, &e), &o, &e);
    assert_non_null(r);
    struct decoded d = decode_reader(r, false);
    io_reader_free(r);
    return d;
}

static void test_truncated_and_corrupt(void **state)
{
    (void)state;
    size_t zl, al, zal;
    uint8_t *z = slurp_file(DATA "e-backup-zstd/test_00000.asb", &zl);
    uint8_t *a = slurp_file(DATA "e-backup-aes256/test_00000.asb", &al);
    uint8_t *za = slurp_file(DATA "e-backup-zstd-aes256/test_00000.asb", &zal);
    struct io_aes_key ka = load_key("e-backup-aes256", 256);
    struct io_aes_key kza = load_key("e-backup-zstd-aes256", 256);

    /* zstd cut anywhere: a truncation error with an offset (or, for nothing at all, the
     * decoder's empty-input error) */
    size_t cuts[] = {0, 2, 4, 9, 100, 4096, zl / 2, zl - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        struct decoded d = decode_mem(z, cuts[i], true, NULL);
        assert_int_not_equal(d.rc, 0);
        if (cuts[i] == 0)
            assert_non_null(strstr(d.msg, "empty input"));
        else if (cuts[i] >= 9)
            assert_non_null(strstr(d.msg, "truncated"));
        assert_non_null(strstr(d.msg, "offset"));
        decoded_free(&d);
    }
    /* AES: shorter than the IV block, exactly the IV block, cut in the middle */
    struct decoded d = decode_mem(a, 10, false, &ka);
    assert_non_null(strstr(d.msg, "shorter than its 16-byte IV block"));
    decoded_free(&d);
    d = decode_mem(a, 16, false, &ka);
    assert_non_null(strstr(d.msg, "empty input"));
    decoded_free(&d);
    d = decode_mem(a, al / 3, false, &ka);
    assert_non_null(strstr(d.msg, "truncated"));
    assert_non_null(strstr(d.msg, "asb: line "));
    decoded_free(&d);
    d = decode_mem(za, zal - 100, true, &kza);
    assert_non_null(strstr(d.msg, "zstd: compressed stream truncated"));
    decoded_free(&d);

    /* bit flips in compressed and encrypted data: errors, never crashes (bounded loop) */
    uint8_t *buf = malloc(zl > zal ? zl : zal);
    uint64_t rnd = 0xfeedface12345678ull;
    double t0 = now_s();
    long runs = 0, failed = 0;
    while (now_s() - t0 < 0.7) {
        bool enc = runs & 1;
        const uint8_t *src = enc ? za : z;
        size_t n = enc ? zal : zl;
        memcpy(buf, src, n);
        int flips = 1 + (int)(xorshift(&rnd) % 3);
        for (int f = 0; f < flips; f++) {
            size_t pos = (size_t)(xorshift(&rnd) % n);
            buf[pos] ^= (uint8_t)(1u << (xorshift(&rnd) % 8));
        }
        if (xorshift(&rnd) % 4 == 0)
            n = (size_t)(xorshift(&rnd) % n);
        d = decode_mem(buf, n, true, enc ? &kza : NULL);
        if (d.rc != 0) {
            failed++;
            assert_true(d.msg[0] != 0);
        }
        decoded_free(&d);
        runs++;
    }
    print_message("corrupt zstd/aes inputs: %ld runs, %ld rejected\n", runs, failed);
    assert_true(runs >= 4);
    free(buf);
    free(z);
    free(a);
    free(za);
}

/* ---- stages ------------------------------------------------------------------------------- */

static void test_counter_and_splitter(void **state)
{
    (void)state;
    assert_true(io_split_limit_from_mb(1) == 1048576);
    assert_true(io_split_limit_from_mb(0) == 0);
    assert_true(io_split_limit_from_mb(-3) == 0);
    struct err e;
    struct io_counter c = {0};
    struct io_writer *w = io_count_writer_new(io_mem_writer_new(&e), &c, &e);
    struct io_split s;
    io_split_init(&s, 1000, io_counter_bytes(&c));
    uint8_t chunk[300] = {0};
    int files = 1;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(io_write(w, chunk, sizeof chunk, &e), 0);
        io_counter_add_records(&c, 1);
        if (io_split_due(&s, io_counter_bytes(&c))) {
            files++;
            io_split_next_file(&s, io_counter_bytes(&c));
        }
    }
    /* 4 writes (1200 bytes) reach the limit: rotations after writes 4 and 8 */
    assert_int_equal(files, 3);
    assert_int_equal(io_counter_bytes(&c), 3000);
    assert_int_equal(io_counter_records(&c), 10);
    struct io_split unlimited;
    io_split_init(&unlimited, 0, 0);
    assert_false(io_split_due(&unlimited, UINT64_MAX));
    assert_int_equal(io_writer_close(w, &e), 0);
    io_writer_free(w);
}

static void test_file_stages(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_io_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/f.asb", dir);
    struct err e;
    struct io_writer *w = io_file_writer_create(path, false, true, &e);
    assert_non_null(w);
    assert_int_equal(io_write(w, "hello ", 6, &e), 0);
    assert_int_equal(io_write(w, "world", 5, &e), 0);
    assert_int_equal(io_writer_close(w, &e), 0);
    io_writer_free(w);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 11);
    assert_null(io_file_writer_create(path, false, false, &e));
    assert_int_equal(e.code, ERR_IO);
    w = io_file_writer_create(path, true, false, &e);
    assert_non_null(w);
    assert_int_equal(io_write(w, "bye", 3, &e), 0);
    io_writer_free(w); /* free without close still closes the fd */
    struct io_reader *r = io_file_reader_open(path, &e);
    assert_non_null(r);
    char buf[32];
    size_t got;
    assert_int_equal(io_read_full(r, buf, sizeof buf, &got, &e), 0);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "bye", 3);
    io_reader_free(r);
    assert_null(io_file_reader_open("/nonexistent/x.asb", &e));
    assert_int_equal(e.code, ERR_NOT_FOUND);
    unlink(path);
    rmdir(dir);
}

struct cb_state {
    char data[64];
    size_t len, pos;
    int closes;
    bool fail;
};

static int cb_write(void *ctx, const void *data, size_t len, struct err *e)
{
    struct cb_state *s = ctx;
    if (s->fail)
        return err_set(e, ERR_UNAVAILABLE, "upload refused");
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return 0;
}

static int cb_close(void *ctx, struct err *e)
{
    (void)e;
    ((struct cb_state *)ctx)->closes++;
    return 0;
}

static int cb_read(void *ctx, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct cb_state *s = ctx;
    if (s->fail)
        return err_set(e, ERR_IO, "download broke");
    size_t n = s->len - s->pos < cap ? s->len - s->pos : cap;
    if (n > 2)
        n = 2;
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    *got = n;
    return 0;
}

static void test_callback_stages(void **state)
{
    (void)state;
    struct cb_state s = {0};
    struct err e;
    struct io_writer *w = io_cb_writer_new(cb_write, cb_close, &s, &e);
    struct io_counter c = {0};
    struct io_chain_opts o = {.zstd = true, .zstd_level = 3, .counter = &c};
    struct io_writer *top = io_writer_chain(w, &o, &e);
    assert_non_null(top);
    assert_int_equal(io_write(top, "abcabcabcabc", 12, &e), 0);
    assert_int_equal(io_writer_close(top, &e), 0);
    assert_int_equal(io_writer_close(top, &e), 0);
    assert_int_equal(s.closes, 1);
    assert_int_equal(io_counter_bytes(&c), s.len);
    io_writer_free(top);

    struct io_reader *r = io_reader_chain(io_cb_reader_new(cb_read, &s, &e), &o, &e);
    char buf[64];
    size_t got;
    assert_int_equal(io_read_full(r, buf, sizeof buf, &got, &e), 0);
    assert_int_equal(got, 12);
    assert_memory_equal(buf, "abcabcabcabc", 12);
    io_reader_free(r);

    /* callback errors come through unchanged */
    s.fail = true;
    w = io_cb_writer_new(cb_write, NULL, &s, &e);
    assert_int_equal(io_write(w, "x", 1, &e), ERR_UNAVAILABLE);
    assert_string_equal(e.msg, "upload refused");
    io_writer_free(w);
    r = io_reader_chain(io_cb_reader_new(cb_read, &s, &e), &o, &e);
    assert_int_equal(io_read(r, buf, sizeof buf, &got, &e), ERR_IO);
    assert_string_equal(e.msg, "download broke");
    io_reader_free(r);

    /* a failing chain build leaves the sink to the caller */
    struct io_writer *mem = io_mem_writer_new(&e);
    struct io_chain_opts bad = {.zstd = true, .zstd_level = 99, .counter = &c};
    assert_null(io_writer_chain(mem, &bad, &e));
    assert_int_equal(e.code, ERR_INVALID);
    assert_non_null(strstr(e.msg, "level 99 out of range"));
    assert_int_equal(io_write(mem, "still usable", 12, &e), 0);
    io_writer_free(mem);
}

static void test_zstd_levels_and_frames(void **state)
{
    (void)state;
    assert_true(io_zstd_level_valid(-1));
    assert_true(io_zstd_level_valid(0));
    assert_true(io_zstd_level_valid(3));
    assert_true(io_zstd_level_valid(22));
    assert_false(io_zstd_level_valid(23));
    /* several concatenated frames read as one stream */
    uint8_t frames[512];
    size_t a = ZSTD_compress(frames, sizeof frames, "first ", 6, 1);
    size_t b = ZSTD_compress(frames + a, sizeof frames - a, "second", 6, 5);
    assert_false(ZSTD_isError(a) || ZSTD_isError(b));
    struct err e;
    struct io_reader *r = io_zstd_reader_new(io_mem_reader_new(frames, a + b, &e), &e);
    char buf[64];
    size_t got;
    assert_int_equal(io_read_full(r, buf, sizeof buf, &got, &e), 0);
    assert_int_equal(got, 12);
    assert_memory_equal(buf, "first second", 12);
    io_reader_free(r);
    /* trailing garbage after a frame */
    memcpy(frames + a + b, "junk", 4);
    r = io_zstd_reader_new(io_mem_reader_new(frames, a + b + 4, &e), &e);
    assert_int_equal(io_read_full(r, buf, sizeof buf, &got, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "not zstd data"));
    io_reader_free(r);
}

/* ---- throughput --------------------------------------------------------------------------- */

static int discard(void *ctx, const void *data, size_t len, struct err *e)
{
    (void)data;
    (void)e;
    *(size_t *)ctx += len;
    return 0;
}

/* A synthetic ~200-byte record with fresh pseudo-random values (so zstd sees realistic
 * redundancy, not one repeated block). */
struct synth {
    uint64_t rnd;
    long i;
    char key[32];
    char name[32];
    uint8_t blob[16];
    struct asb_bin bins[6];
    struct asb_record rec;
};

static const struct asb_record *synth_next(struct synth *s)
{
    static const char *words[] = {"Ada", "Bo", "Chloé", "Dmitri", "Eve", "Łukasz", "Nia",
                                  "Kai", "Uma", "Zoë", "Mateo", "Ingrid"};
    s->i++;
    int kl = snprintf(s->key, sizeof s->key, "user:%ld", s->i);
    int nl = snprintf(s->name, sizeof s->name, "%s %s", words[xorshift(&s->rnd) % 12],
                      words[xorshift(&s->rnd) % 12]);
    for (int j = 0; j < 16; j++)
        s->blob[j] = (uint8_t)xorshift(&s->rnd);
    s->bins[0] = (struct asb_bin){"name", 4, {.type = ASB_P_STRING, .data = (uint8_t *)s->name, .len = (uint32_t)nl}};
    s->bins[1] = (struct asb_bin){"age", 3, {.type = ASB_P_INTEGER, .i = (int64_t)(xorshift(&s->rnd) % 100)}};
    s->bins[2] = (struct asb_bin){"score", 5, {.type = ASB_P_DOUBLE, .d = (double)(xorshift(&s->rnd) % 10000000) / 1e4}};
    s->bins[3] = (struct asb_bin){"active", 6, {.type = ASB_P_BOOL, .b = xorshift(&s->rnd) & 1}};
    s->bins[4] = (struct asb_bin){"ts", 2, {.type = ASB_P_INTEGER, .i = 1767000000000 + s->i * 37}};
    s->bins[5] = (struct asb_bin){"avatar", 6, {.type = ASB_P_BLOB, .data = s->blob, .len = 16}};
    s->rec = (struct asb_record){.ns = "test", .ns_len = 4, .set = "users", .set_len = 5,
                                 .key = {.type = ASB_P_STRING, .data = (uint8_t *)s->key, .len = (uint32_t)kl},
                                 .generation = 1, .void_time = 0, .n_bins = 6, .bins = s->bins};
    for (int j = 0; j < 20; j += 8) {
        uint64_t v = xorshift(&s->rnd);
        memcpy(s->rec.digest + j, &v, j + 8 <= 20 ? 8 : 4);
    }
    return &s->rec;
}

static void test_throughput(void **state)
{
    (void)state;
    struct io_aes_key k = load_key("e-backup-aes256", 256);
    static const struct {
        const char *name;
        bool zstd;
        int level;
        bool aes;
    } cases[] = {{"plain", false, 0, false},
                 {"zstd-1", true, 1, false},
                 {"zstd-3", true, 3, false},
                 {"aes256", false, 0, true},
                 {"zstd-3+aes256", true, 3, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct err e;
        size_t out = 0;
        struct io_writer *sink = io_cb_writer_new(discard, NULL, &out, &e);
        struct io_chain_opts o = {.zstd = cases[i].zstd, .zstd_level = cases[i].level,
                                  .aes = cases[i].aes ? &k : NULL};
        struct io_writer *w = io_writer_chain(sink, &o, &e);
        struct asb_writer aw;
        assert_int_equal(asb_writer_init(&aw, 0, false, io_write_cb, w, &e), 0);
        struct synth s = {.rnd = 0x243f6a8885a308d3ull};
        double t0 = now_s(), t;
        do {
            for (int n = 0; n < 1000; n++)
                assert_int_equal(asb_writer_record(&aw, synth_next(&s), &e), 0);
            t = now_s() - t0;
        } while (t < 0.25);
        assert_int_equal(asb_writer_flush(&aw, &e), 0);
        assert_int_equal(io_writer_close(w, &e), 0);
        print_message("encode+%s: %.0f records/s, %.1f MB/s of text, %.0f B/record, out/in %.2f\n",
                      cases[i].name, (double)aw.records / t, (double)aw.bytes / t / 1e6,
                      (double)aw.bytes / (double)aw.records, (double)out / (double)aw.bytes);
        asb_writer_free(&aw);
        io_writer_free(w);
    }

    /* read side: decrypt + decompress + decode */
    struct err e;
    struct io_writer *mem = io_mem_writer_new(&e);
    struct io_chain_opts o = {.zstd = true, .zstd_level = 3, .aes = &k};
    struct io_writer *w = io_writer_chain(mem, &o, &e);
    struct asb_writer aw;
    assert_int_equal(asb_writer_init(&aw, 0, false, io_write_cb, w, &e), 0);
    assert_int_equal(asb_writer_header(&aw, "test", 4, true, &e), 0);
    struct synth s = {.rnd = 0x13198a2e03707344ull};
    for (int n = 0; n < 50000; n++)
        assert_int_equal(asb_writer_record(&aw, synth_next(&s), &e), 0);
    assert_int_equal(asb_writer_flush(&aw, &e), 0);
    assert_int_equal(io_writer_close(w, &e), 0);
    size_t n;
    const uint8_t *p = io_mem_writer_data(mem, &n);
    double t0 = now_s();
    struct io_reader *r = io_reader_chain(io_mem_reader_new(p, n, &e), &o, &e);
    struct asb_dec *d = asb_dec_new(io_read_cb, r, NULL);
    long recs = 0;
    for (;;) {
        struct asb_item it;
        assert_int_equal(asb_dec_next(d, &it, &e), 0);
        if (it.kind == ASB_ITEM_EOF)
            break;
        recs++;
    }
    double t = now_s() - t0;
    assert_int_equal(recs, 50000);
    print_message("zstd-3+aes256 read+decode: %.0f records/s, %.1f MB/s of text\n",
                  (double)recs / t, (double)aw.bytes / t / 1e6);
    asb_dec_free(d);
    io_reader_free(r);
    asb_writer_free(&aw);
    io_writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_from_test_files),
        cmocka_unit_test(test_key_formats),
        cmocka_unit_test(test_golden_decrypt_decompress),
        cmocka_unit_test(test_golden_reencrypt_bit_exact),
        cmocka_unit_test(test_roundtrip_matrix),
        cmocka_unit_test(test_empty_streams),
        cmocka_unit_test(test_wrong_key_and_options),
        cmocka_unit_test(test_truncated_and_corrupt),
        cmocka_unit_test(test_counter_and_splitter),
        cmocka_unit_test(test_file_stages),
        cmocka_unit_test(test_callback_stages),
        cmocka_unit_test(test_zstd_levels_and_frames),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
