/*
 * io_aes.c - AES-128/256-CTR encryption stages compatible with asbackup / ABS, and the key
 * derivation from an RSA private key.
 *
 * Stream layout: a 16-byte block AES-ECB(key, IV - 1) followed by AES-CTR(key, IV) of the
 * payload (counter = the whole 128-bit block, big-endian increment; no padding, no tag).
 * The reader decrypts the block, adds 1 and runs CTR. Because CTR has no authentication, the
 * reader checks that the first plaintext bytes are either .asb text ("Vers") or a zstd frame
 * magic, so a wrong key or key size fails with a clear message instead of garbage.
 *
 * Key: the RSA private key re-encoded as PKCS#1 DER, hashed with SHA-256; AES-256 uses all 32
 * bytes, AES-128 the first 16. Accepted inputs: PEM (PKCS#8 or PKCS#1, also with header and
 * footer glued to the body), base64 of a PEM, base64 of DER, base64 of base64 of DER.
 */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#define AES_BLOCK 16
#define AES_CHUNK (64u * 1024u)
#define KEY_TEXT_MAX (1u << 20)

/* ---- key derivation ---------------------------------------------------------------------- */

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0; /* never prompt; encrypted PEM keys are not supported */
}

static bool is_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/' || c == '=';
}

/* Base64 text with whitespace ignored -> malloc'd bytes. NULL if not base64. */
static uint8_t *b64_decode_loose(const uint8_t *in, size_t len, size_t *out_len)
{
    char *clean = malloc(len + 1);
    if (!clean)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = in[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (!is_b64_char(c)) {
            free(clean);
            return NULL;
        }
        clean[n++] = (char)c;
    }
    if (n == 0 || n % 4 != 0) {
        free(clean);
        return NULL;
    }
    uint8_t *out = malloc(n / 4 * 3 + 1);
    if (!out) {
        free(clean);
        return NULL;
    }
    int r = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n);
    if (r < 0) {
        free(clean);
        free(out);
        return NULL;
    }
    size_t pad = (clean[n - 1] == '=') + (clean[n - 2] == '=');
    free(clean);
    *out_len = (size_t)r - pad;
    return out;
}

static EVP_PKEY *key_from_der(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    return d2i_AutoPrivateKey(NULL, &p, (long)len);
}

static const uint8_t *find_mem(const uint8_t *h, size_t hn, const char *needle)
{
    return memmem(h, hn, needle, strlen(needle));
}

/* PEM text: OpenSSL's reader first; if it fails (e.g. header and body on one line), take the
 * base64 body between "-----BEGIN ...-----" and "-----END" ourselves. */
static EVP_PKEY *key_from_pem(const uint8_t *text, size_t len)
{
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL) : NULL;
    BIO_free(bio);
    if (pk)
        return pk;
    const uint8_t *begin = find_mem(text, len, "-----BEGIN");
    if (!begin)
        return NULL;
    const uint8_t *hdr_end = find_mem(begin + 10, len - (size_t)(begin + 10 - text), "-----");
    if (!hdr_end)
        return NULL;
    const uint8_t *body = hdr_end + 5;
    const uint8_t *end = find_mem(body, len - (size_t)(body - text), "-----END");
    if (!end)
        return NULL;
    size_t der_len = 0;
    uint8_t *der = b64_decode_loose(body, (size_t)(end - body), &der_len);
    if (!der)
        return NULL;
    pk = key_from_der(der, der_len);
    OPENSSL_clear_free(der, der_len);
    return pk;
}

static EVP_PKEY *key_from_text(const uint8_t *text, size_t len, int depth)
{
    if (find_mem(text, len, "-----BEGIN"))
        return key_from_pem(text, len);
    if (depth >= 2)
        return NULL;
    size_t n = 0;
    uint8_t *dec = b64_decode_loose(text, len, &n);
    if (!dec)
        return NULL;
    EVP_PKEY *pk = NULL;
    if (find_mem(dec, n, "-----BEGIN"))
        pk = key_from_pem(dec, n);
    if (!pk)
        pk = key_from_der(dec, n);
    if (!pk)
        pk = key_from_text(dec, n, depth + 1); /* base64 of base64 of DER */
    OPENSSL_clear_free(dec, n);
    return pk;
}

int io_aes_key_from_bytes(const void *key, int bits, struct io_aes_key *out, struct err *e)
{
    if (bits != 128 && bits != 256)
        return err_set(e, ERR_INVALID, "aes: key size must be 128 or 256 bits, not %d", bits);
    memset(out, 0, sizeof *out);
    out->bits = bits;
    memcpy(out->key, key, (size_t)bits / 8);
    return 0;
}

int io_aes_key_from_pem(const void *text, size_t len, int bits, struct io_aes_key *out,
                        struct err *e)
{
    if (bits != 128 && bits != 256)
        return err_set(e, ERR_INVALID, "aes: key size must be 128 or 256 bits, not %d", bits);
    if (len == 0 || len > KEY_TEXT_MAX)
        return err_set(e, ERR_INVALID, "aes: encryption key is empty or too large");
    EVP_PKEY *pk = key_from_text(text, len, 0);
    ERR_clear_error();
    if (!pk)
        return err_set(e, ERR_INVALID,
                       "aes: encryption key is not an RSA private key in PEM format (or base64 "
                       "of PEM / DER)");
    if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pk);
        return err_set(e, ERR_INVALID, "aes: encryption key is not an RSA key");
    }
    unsigned char *der = NULL;
    int n = i2d_PrivateKey(pk, &der); /* RSA: PKCS#1 RSAPrivateKey */
    EVP_PKEY_free(pk);
    if (n <= 0 || !der) {
        ERR_clear_error();
        return err_set(e, ERR_INTERNAL, "aes: cannot encode the RSA key as PKCS#1 DER");
    }
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(der, (size_t)n, digest);
    OPENSSL_clear_free(der, (size_t)n);
    int rc = io_aes_key_from_bytes(digest, bits, out, e);
    OPENSSL_cleanse(digest, sizeof digest);
    return rc;
}

int io_aes_key_from_file(const char *path, int bits, struct io_aes_key *out, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO,
                       "aes: cannot open encryption key file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > KEY_TEXT_MAX) {
        close(fd);
        return err_set(e, ERR_INVALID, "aes: encryption key file %s is empty, too large or not "
                                       "a regular file", path);
    }
    size_t len = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(len);
    if (!buf) {
        close(fd);
        return err_set(e, ERR_NOMEM, "aes: out of memory");
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    int rc = got == len ? io_aes_key_from_pem(buf, len, bits, out, e)
                        : err_set(e, ERR_IO, "aes: cannot read encryption key file %s", path);
    if (rc < 0 && got == len)
        err_prefix(e, "%s", path);
    OPENSSL_clear_free(buf, len);
    return rc;
}

/* ---- shared ------------------------------------------------------------------------------ */

static const EVP_CIPHER *ctr_cipher(int bits)
{
    return bits == 128 ? EVP_aes_128_ctr() : EVP_aes_256_ctr();
}

static const EVP_CIPHER *ecb_cipher(int bits)
{
    return bits == 128 ? EVP_aes_128_ecb() : EVP_aes_256_ecb();
}

/* One AES block in ECB mode (no padding). */
static int ecb_block(const struct io_aes_key *key, bool encrypt, const uint8_t in[AES_BLOCK],
                     uint8_t out[AES_BLOCK])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c != NULL;
    int n = 0;
    ok = ok && EVP_CipherInit_ex(c, ecb_cipher(key->bits), NULL, key->key, NULL, encrypt ? 1 : 0);
    ok = ok && EVP_CIPHER_CTX_set_padding(c, 0);
    ok = ok && EVP_CipherUpdate(c, out, &n, in, AES_BLOCK) && n == AES_BLOCK;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

static void be128_add(uint8_t b[AES_BLOCK], int delta) /* delta = +1 or -1 */
{
    for (int i = AES_BLOCK - 1; i >= 0; i--) {
        if (delta > 0) {
            if (++b[i] != 0)
                return;
        } else {
            if (b[i]-- != 0)
                return;
        }
    }
}

/* ---- writer ------------------------------------------------------------------------------ */

struct aes_writer {
    struct io_writer base;
    EVP_CIPHER_CTX *ctx;
    uint8_t header[AES_BLOCK];
    bool header_done;
    uint8_t *buf;
};

static int aw_header(struct aes_writer *a, struct err *e)
{
    if (a->header_done)
        return 0;
    int rc = io_write(a->base.next, a->header, AES_BLOCK, e);
    if (rc == 0)
        a->header_done = true;
    return rc;
}

static int aw_write(struct io_writer *w, const void *data, size_t len, struct err *e)
{
    struct aes_writer *a = (struct aes_writer *)w;
    int rc = aw_header(a, e);
    if (rc < 0)
        return rc;
    const uint8_t *p = data;
    while (len) {
        size_t n = len > AES_CHUNK ? AES_CHUNK : len;
        int outl = 0;
        if (!EVP_EncryptUpdate(a->ctx, a->buf, &outl, p, (int)n) || (size_t)outl != n) {
            ERR_clear_error();
            return err_set(e, ERR_INTERNAL, "aes: encryption failed");
        }
        if ((rc = io_write(w->next, a->buf, n, e)) < 0)
            return rc;
        p += n;
        len -= n;
    }
    return 0;
}

static int aw_close(struct io_writer *w, struct err *e)
{
    return aw_header((struct aes_writer *)w, e);
}

static void aw_destroy(struct io_writer *w)
{
    struct aes_writer *a = (struct aes_writer *)w;
    EVP_CIPHER_CTX_free(a->ctx);
    free(a->buf);
    free(a);
}

static const struct io_writer_ops AES_WRITER_OPS = {"aes", aw_write, aw_close, aw_destroy};

struct io_writer *io_aes_writer_new(struct io_writer *next, const struct io_aes_key *key,
                                    const uint8_t *iv, struct err *e)
{
    if (key->bits != 128 && key->bits != 256) {
        err_set(e, ERR_INVALID, "aes: key size must be 128 or 256 bits");
        return NULL;
    }
    struct aes_writer *a = calloc(1, sizeof *a);
    if (!a) {
        err_set(e, ERR_NOMEM, "aes: out of memory");
        return NULL;
    }
    a->base.ops = &AES_WRITER_OPS;
    a->buf = malloc(AES_CHUNK);
    a->ctx = EVP_CIPHER_CTX_new();
    uint8_t ivb[AES_BLOCK], prev[AES_BLOCK];
    int ok = a->buf && a->ctx;
    if (ok) {
        if (iv)
            memcpy(ivb, iv, AES_BLOCK);
        else
            ok = RAND_bytes(ivb, AES_BLOCK) == 1;
    }
    if (ok) {
        memcpy(prev, ivb, AES_BLOCK);
        be128_add(prev, -1);
        ok = ecb_block(key, true, prev, a->header) == 0;
    }
    ok = ok && EVP_EncryptInit_ex(a->ctx, ctr_cipher(key->bits), NULL, key->key, ivb);
    if (!ok) {
        ERR_clear_error();
        aw_destroy(&a->base);
        err_set(e, ERR_INTERNAL, "aes: cannot initialise the cipher");
        return NULL;
    }
    a->base.next = next;
    return &a->base;
}

/* ---- reader ------------------------------------------------------------------------------ */

struct aes_reader {
    struct io_reader base;
    struct io_aes_key key;
    EVP_CIPHER_CTX *ctx;
    bool started;
    uint8_t head[8]; /* first plaintext bytes, checked then handed out */
    size_t head_len, head_pos;
};

static int ar_decrypt(struct aes_reader *a, uint8_t *buf, size_t n, struct err *e)
{
    int outl = 0;
    if (n && (!EVP_DecryptUpdate(a->ctx, buf, &outl, buf, (int)n) || (size_t)outl != n)) {
        ERR_clear_error();
        return err_set(e, ERR_INTERNAL, "aes: decryption failed");
    }
    return 0;
}

static int ar_start(struct aes_reader *a, struct err *e)
{
    uint8_t blk[AES_BLOCK], iv[AES_BLOCK];
    size_t got = 0;
    int rc = io_read_full(a->base.next, blk, AES_BLOCK, &got, e);
    if (rc < 0)
        return rc;
    if (got < AES_BLOCK)
        return err_set(e, ERR_INVALID,
                       "aes: encrypted stream truncated: %zu bytes, shorter than its 16-byte IV "
                       "block (offset %zu)",
                       got, got);
    if (ecb_block(&a->key, false, blk, iv) != 0) {
        ERR_clear_error();
        return err_set(e, ERR_INTERNAL, "aes: cannot decrypt the IV block");
    }
    be128_add(iv, +1);
    if (!EVP_DecryptInit_ex(a->ctx, ctr_cipher(a->key.bits), NULL, a->key.key, iv)) {
        ERR_clear_error();
        return err_set(e, ERR_INTERNAL, "aes: cannot initialise the cipher");
    }
    rc = io_read_full(a->base.next, a->head, sizeof a->head, &a->head_len, e);
    if (rc < 0)
        return rc;
    if ((rc = ar_decrypt(a, a->head, a->head_len, e)) < 0)
        return rc;
    static const uint8_t ZSTD_MAGIC[4] = {0x28, 0xb5, 0x2f, 0xfd};
    if (a->head_len >= 4 && memcmp(a->head, "Vers", 4) != 0 &&
        memcmp(a->head, ZSTD_MAGIC, 4) != 0)
        return err_set(e, ERR_INVALID,
                       "aes: decrypted data (offset 16) is neither .asb text nor zstd: wrong "
                       "encryption key or key size (aes128 / aes256), or the file is not "
                       "encrypted");
    a->started = true;
    return 0;
}

static int ar_read(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct aes_reader *a = (struct aes_reader *)r;
    *got = 0;
    if (!a->started) {
        int rc = ar_start(a, e);
        if (rc < 0)
            return rc;
    }
    if (a->head_pos < a->head_len) {
        size_t n = a->head_len - a->head_pos;
        if (n > cap)
            n = cap;
        memcpy(buf, a->head + a->head_pos, n);
        a->head_pos += n;
        *got = n;
        return 0;
    }
    size_t n = 0;
    int rc = io_read(r->next, buf, cap > INT32_MAX ? INT32_MAX : cap, &n, e);
    if (rc < 0)
        return rc;
    if ((rc = ar_decrypt(a, buf, n, e)) < 0)
        return rc;
    *got = n;
    return 0;
}

static void ar_destroy(struct io_reader *r)
{
    struct aes_reader *a = (struct aes_reader *)r;
    EVP_CIPHER_CTX_free(a->ctx);
    OPENSSL_cleanse(&a->key, sizeof a->key);
    free(a);
}

static const struct io_reader_ops AES_READER_OPS = {"aes", ar_read, ar_destroy};

struct io_reader *io_aes_reader_new(struct io_reader *next, const struct io_aes_key *key,
                                    struct err *e)
{
    if (key->bits != 128 && key->bits != 256) {
        err_set(e, ERR_INVALID, "aes: key size must be 128 or 256 bits");
        return NULL;
    }
    struct aes_reader *a = calloc(1, sizeof *a);
    if (!a) {
        err_set(e, ERR_NOMEM, "aes: out of memory");
        return NULL;
    }
    a->base.ops = &AES_READER_OPS;
    a->key = *key;
    a->ctx = EVP_CIPHER_CTX_new();
    if (!a->ctx) {
        ar_destroy(&a->base);
        err_set(e, ERR_NOMEM, "aes: out of memory");
        return NULL;
    }
    a->base.next = next;
    return &a->base;
}
