/*
 * gcs_auth.c - see gcs_auth.h: service-account key parsing, RS256 JWT signing with OpenSSL, the
 * OAuth2 JWT-bearer token exchange and the token cache (one mutex; a refresh happens under it,
 * so concurrent requests wait for one token request instead of each making their own).
 */
#include "storage/gcs_auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "util/strutil.h"

#define KEY_FILE_MAX (64 * 1024)
#define TOKEN_REPLY_MAX (64 * 1024)
#define REFRESH_MARGIN_S 300 /* refresh this long before expiry (a quarter of short lifetimes) */

struct gcs_auth {
    struct cloud_http *http;   /* not owned */
    EVP_PKEY *key;
    char *email;
    char *key_id;              /* may be NULL */
    char *token_uri;
    int64_t (*now_s)(void);
    pthread_mutex_t lock;
    char *token;               /* cached access token, NULL = none */
    int64_t refresh_at;        /* refresh from this time on */
    int64_t expires_at;        /* unusable from this time on */
    int fetches;
};

static int64_t real_now_s(void) { return (int64_t)time(NULL); }

/* ---- base64url, JWT ------------------------------------------------------------------------ */

char *gcs_b64url(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

/* base64url of a JSON object's compact text. */
static char *b64url_json(json_t *obj)
{
    char *txt = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!txt)
        return NULL;
    char *b = gcs_b64url(txt, strlen(txt));
    free(txt);
    return b;
}

static int rs256_sign(EVP_PKEY *key, const char *input, unsigned char **sig, size_t *sig_len,
                      struct err *e)
{
    *sig = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
    int rc = 0;
    size_t len = 0;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &len, (const unsigned char *)input, strlen(input)) != 1) {
        rc = err_set(e, ERR_INVALID, "gcp-storage: cannot sign with the service-account key");
        goto out;
    }
    *sig = malloc(len);
    if (!*sig) {
        rc = err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
        goto out;
    }
    if (EVP_DigestSign(md, *sig, &len, (const unsigned char *)input, strlen(input)) != 1) {
        free(*sig);
        *sig = NULL;
        rc = err_set(e, ERR_INVALID, "gcp-storage: cannot sign with the service-account key");
        goto out;
    }
    *sig_len = len;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

int gcs_jwt_build(EVP_PKEY *key, const char *key_id, const char *email, const char *scope,
                  const char *aud, int64_t iat, char **out, struct err *e)
{
    *out = NULL;
    json_t *hdr = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", email, "scope", scope,
                               "aud", aud, "iat", (json_int_t)iat,
                               "exp", (json_int_t)(iat + GCS_JWT_LIFETIME_S));
    if (hdr && key_id && *key_id)
        json_object_set_new(hdr, "kid", json_string(key_id));
    char *h64 = hdr ? b64url_json(hdr) : NULL;
    char *c64 = claims ? b64url_json(claims) : NULL;
    json_decref(hdr);
    json_decref(claims);
    char *input = NULL, *s64 = NULL, *jwt = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    int rc = 0;
    if (!h64 || !c64 || asprintf(&input, "%s.%s", h64, c64) < 0) {
        input = NULL;
        rc = err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
        goto out;
    }
    rc = rs256_sign(key, input, &sig, &sig_len, e);
    if (rc)
        goto out;
    s64 = gcs_b64url(sig, sig_len);
    if (!s64 || asprintf(&jwt, "%s.%s", input, s64) < 0) {
        jwt = NULL;
        rc = err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
        goto out;
    }
    *out = jwt;
out:
    free(h64);
    free(c64);
    free(input);
    free(sig);
    free(s64);
    return rc;
}

/* ---- key ----------------------------------------------------------------------------------- */

int gcs_key_file_read(const char *path, char **out, struct err *e)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, ERR_INVALID, "gcp-storage: cannot read key-file-path %s: %s", path,
                       strerror(errno));
    char *buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
    }
    size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || n > KEY_FILE_MAX) {
        OPENSSL_cleanse(buf, n);
        free(buf);
        return err_set(e, ERR_INVALID, "gcp-storage: key-file-path %s: %s", path,
                       failed ? "read error" : "larger than 64 KiB");
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static EVP_PKEY *pem_private_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return k;
}

static const char *json_str(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Loads the fields of a parsed key into a. */
static int key_fields(struct gcs_auth *a, json_t *root, struct err *e)
{
    const char *type = json_str(root, "type");
    if (type && strcmp(type, "service_account") != 0)
        return err_set(e, ERR_INVALID,
                       "gcp-storage: the key is of type '%.64s', only 'service_account' keys "
                       "are supported", type);
    const char *email = json_str(root, "client_email");
    const char *pem = json_str(root, "private_key");
    if (!email || !*email || !pem || !*pem)
        return err_set(e, ERR_INVALID,
                       "gcp-storage: the service-account key lacks client_email or private_key");
    const char *uri = json_str(root, "token_uri");
    const char *kid = json_str(root, "private_key_id");
    a->email = strdup(email);
    a->token_uri = strdup(uri && *uri ? uri : GCS_DEFAULT_TOKEN_URI);
    a->key_id = kid && *kid ? strdup(kid) : NULL;
    if (!a->email || !a->token_uri || (kid && *kid && !a->key_id))
        return err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
    a->key = pem_private_key(pem);
    if (!a->key)
        return err_set(e, ERR_INVALID,
                       "gcp-storage: the service-account key's private_key is not a valid PEM "
                       "private key");
    if (EVP_PKEY_get_base_id(a->key) != EVP_PKEY_RSA)
        return err_set(e, ERR_INVALID,
                       "gcp-storage: the service-account key's private_key is not an RSA key");
    return 0;
}

int gcs_auth_new(const char *key_json, struct cloud_http *http, struct gcs_auth **out,
                 struct err *e)
{
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loads(key_json, 0, &jerr); /* jerr.text may quote the key: not used */
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(e, ERR_INVALID, "gcp-storage: the service-account key is not a JSON "
                                       "object (line %d)", jerr.line);
    }
    struct gcs_auth *a = calloc(1, sizeof *a);
    if (!a) {
        json_decref(root);
        return err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
    }
    a->http = http;
    a->now_s = real_now_s;
    pthread_mutex_init(&a->lock, NULL);
    int rc = key_fields(a, root, e);
    json_decref(root);
    if (rc) {
        gcs_auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

static void token_drop(struct gcs_auth *a)
{
    if (a->token) {
        OPENSSL_cleanse(a->token, strlen(a->token));
        free(a->token);
    }
    a->token = NULL;
    a->refresh_at = a->expires_at = 0;
}

void gcs_auth_free(struct gcs_auth *a)
{
    if (!a)
        return;
    token_drop(a);
    EVP_PKEY_free(a->key);
    free(a->email);
    free(a->key_id);
    free(a->token_uri);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void gcs_auth_set_clock(struct gcs_auth *a, int64_t (*now_s)(void))
{
    a->now_s = now_s ? now_s : real_now_s;
}

int gcs_auth_fetches(const struct gcs_auth *a) { return a->fetches; }

/* ---- token exchange ------------------------------------------------------------------------ */

/* A short, secret-free explanation of a failed token reply ("invalid_grant: Invalid JWT"). */
static void token_error_text(const struct cloud_http_resp *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    json_t *root = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *err = json_is_object(root) ? json_str(root, "error") : NULL;
    const char *desc = json_is_object(root) ? json_str(root, "error_description") : NULL;
    if (err)
        str_printf(buf, cap, ": %.64s%s%.160s", err, desc ? ": " : "", desc ? desc : "");
    json_decref(root);
}

/* Parses a token reply into a (under the lock). */
static int token_store(struct gcs_auth *a, const struct cloud_http_resp *r, int64_t now,
                       struct err *e)
{
    json_t *root = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *tok = json_is_object(root) ? json_str(root, "access_token") : NULL;
    json_t *exp = json_is_object(root) ? json_object_get(root, "expires_in") : NULL;
    if (!tok || !*tok) {
        json_decref(root);
        return err_set(e, ERR_IO, "gcp-storage: token reply from %s has no access_token",
                       a->token_uri);
    }
    int64_t life = json_is_integer(exp) ? (int64_t)json_integer_value(exp)
                   : json_is_string(exp) ? strtoll(json_string_value(exp), NULL, 10)
                                         : GCS_JWT_LIFETIME_S;
    if (life <= 0)
        life = 60;
    char *copy = strdup(tok);
    json_decref(root);
    if (!copy)
        return err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
    token_drop(a);
    a->token = copy;
    a->expires_at = now + life;
    a->refresh_at = now + life - (life >= 4 * REFRESH_MARGIN_S ? REFRESH_MARGIN_S : life / 4);
    return 0;
}

/* Makes a token request (under the lock). */
static int token_fetch(struct gcs_auth *a, struct err *e)
{
    int64_t now = a->now_s();
    char *jwt = NULL, *body = NULL;
    int rc = gcs_jwt_build(a->key, a->key_id, a->email, GCS_SCOPE_RW, a->token_uri, now, &jwt,
                           e);
    if (rc)
        return rc;
    if (asprintf(&body, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                        "&assertion=%s", jwt) < 0)
        body = NULL;
    OPENSSL_cleanse(jwt, strlen(jwt));
    free(jwt);
    if (!body)
        return err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: "
                                                      "application/x-www-form-urlencoded");
    struct cloud_http_req req = {.what = "gcp-storage token request", .method = "POST",
                                 .url = a->token_uri, .headers = hdrs, .body = body,
                                 .body_len = strlen(body), .max_body = TOKEN_REPLY_MAX};
    struct cloud_http_resp resp;
    a->fetches++;
    rc = cloud_http_do(a->http, &req, &resp, e);
    curl_slist_free_all(hdrs);
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    if (rc)
        return rc;
    if (resp.status != 200) {
        char why[256];
        token_error_text(&resp, why, sizeof why);
        rc = err_set(e, ERR_IO, "gcp-storage: access denied: token request to %s failed "
                                "(HTTP %ld%s)", a->token_uri, resp.status, why);
    } else {
        rc = token_store(a, &resp, now, e);
    }
    if (resp.body)
        OPENSSL_cleanse(resp.body, resp.body_len);
    cloud_http_resp_free(&resp);
    return rc;
}

int gcs_auth_token(struct gcs_auth *a, char **token, struct err *e)
{
    *token = NULL;
    pthread_mutex_lock(&a->lock);
    int64_t now = a->now_s();
    int rc = 0;
    if (!a->token || now >= a->refresh_at) {
        struct err fe = {0};
        rc = token_fetch(a, &fe);
        if (rc && a->token && now < a->expires_at)
            rc = 0; /* keep using the old token until it really expires */
        else if (rc)
            *e = fe;
    }
    if (rc == 0) {
        *token = strdup(a->token);
        if (!*token)
            rc = err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void gcs_auth_invalidate(struct gcs_auth *a)
{
    pthread_mutex_lock(&a->lock);
    token_drop(a);
    pthread_mutex_unlock(&a->lock);
}

int gcs_auth_sign(void *ctx, const char *method, const char *url,
                  const struct curl_slist *headers, const void *body, size_t body_len,
                  struct curl_slist **extra, struct err *e)
{
    char *tok;
    int rc = gcs_auth_token(ctx, &tok, e);
    if (rc)
        return rc;
    char *line = NULL;
    if (asprintf(&line, "Authorization: Bearer %s", tok) < 0)
        line = NULL;
    OPENSSL_cleanse(tok, strlen(tok));
    free(tok);
    struct curl_slist *n = line ? curl_slist_append(*extra, line) : NULL;
    if (line) {
        OPENSSL_cleanse(line, strlen(line));
        free(line);
    }
    if (!n)
        return err_set(e, ERR_NOMEM, "gcp-storage: out of memory");
    *extra = n;
    return 0;
}
