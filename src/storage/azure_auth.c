/*
 * azure_auth.c - see azure_auth.h: HTTP dates, the Shared Key string-to-sign and HMAC, and the
 * cached Azure AD client-credentials token.
 */
#include "storage/azure_auth.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "asb/asb.h"
#include "util/strutil.h"

#define AZURE_AUTHORITY_DEFAULT "https://login.microsoftonline.com"
#define AZURE_SCOPE "https://storage.azure.com/.default"
#define TOKEN_REPLY_MAX (256u * 1024)
#define TOKEN_REFRESH_MARGIN_MS (300 * 1000) /* fetch a new token 5 min before expiry */

/* ---- dates -------------------------------------------------------------------------------- */

static const char DAYS[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char MONTHS[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void azure_http_date(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    str_printf(buf, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", DAYS[tm.tm_wday % 7],
               tm.tm_mday, MONTHS[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
               tm.tm_sec);
}

int64_t azure_parse_http_date(const char *s)
{
    if (!s)
        return -1;
    const char *comma = strchr(s, ',');
    if (comma)
        s = comma + 1;
    char mon[4] = {0};
    int day, year, hh, mm, ss;
    if (sscanf(s, " %d %3s %d %d:%d:%d", &day, mon, &year, &hh, &mm, &ss) != 6)
        return -1;
    int m = -1;
    for (int i = 0; i < 12; i++)
        if (strcasecmp(mon, MONTHS[i]) == 0)
            m = i;
    if (m < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970)
        return -1;
    struct tm tm = {.tm_year = year - 1900, .tm_mon = m, .tm_mday = day,
                    .tm_hour = hh, .tm_min = mm, .tm_sec = ss};
    return (int64_t)timegm(&tm) * 1000;
}

/* ---- growing string ----------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool nomem;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->nomem)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->nomem = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* ---- Shared Key --------------------------------------------------------------------------- */

int azure_key_decode(const char *b64, unsigned char **key, size_t *key_len, struct err *e)
{
    *key = NULL;
    *key_len = 0;
    size_t n = b64 ? strlen(b64) : 0;
    while (n > 0 && isspace((unsigned char)b64[n - 1]))
        n--;
    if (n == 0 || n % 4 != 0)
        return err_set(e, ERR_INVALID, "azure-storage: account-key is not valid base64");
    unsigned char *k = malloc(n / 4 * 3 + 1);
    if (!k)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t len;
    if (asb_b64_decode(b64, n, k, &len) != 0 || len == 0) {
        free(k);
        return err_set(e, ERR_INVALID, "azure-storage: account-key is not valid base64");
    }
    *key = k;
    *key_len = len;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into a heap string ('+' kept as is: Azure does the same). */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = hexval((unsigned char)s[i + 1])) >= 0 &&
            (l = hexval((unsigned char)s[i + 2])) >= 0) {
            *p++ = (char)(h * 16 + l);
            i += 2;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return out;
}

struct qparam {
    char *name;  /* lower-cased, decoded */
    char *value; /* decoded */
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static void qparams_free(struct qparam *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

/* Splits a query string into decoded, sorted parameters. */
static int parse_query(const char *q, struct qparam **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    size_t cap = 1;
    for (const char *p = q; *p; p++)
        cap += *p == '&';
    struct qparam *v = calloc(cap, sizeof *v);
    if (!v)
        return -1;
    size_t n = 0;
    while (*q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        if (len > 0) {
            const char *eq = memchr(q, '=', len);
            size_t nl = eq ? (size_t)(eq - q) : len;
            v[n].name = pct_decode(q, nl);
            v[n].value = eq ? pct_decode(eq + 1, len - nl - 1) : strdup("");
            if (!v[n].name || !v[n].value) {
                qparams_free(v, n + 1);
                return -1;
            }
            for (char *c = v[n].name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            n++;
        }
        q += len + (end != NULL);
    }
    qsort(v, n, sizeof *v, qparam_cmp);
    *out = v;
    *count = n;
    return 0;
}

/* "/<account><path>" then "\nname:v1,v2" per query parameter. */
static int canonical_resource(struct sbuf *b, const char *account, const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    const char *q = p ? strchr(p, '?') : strchr(url, '?');
    sb_str(b, "/");
    sb_str(b, account);
    if (p)
        sb_add(b, p, q ? (size_t)(q - p) : strlen(p));
    else
        sb_str(b, "/");
    if (!q)
        return 0;
    struct qparam *v;
    size_t n;
    if (parse_query(q + 1, &v, &n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(v[i].name, v[i - 1].name) == 0) {
            sb_str(b, ",");
        } else {
            sb_str(b, "\n");
            sb_str(b, v[i].name);
            sb_str(b, ":");
        }
        sb_str(b, v[i].value);
    }
    qparams_free(v, n);
    return 0;
}

struct hdr {
    char *name;  /* lower-cased */
    char *value; /* trimmed, inner whitespace runs folded to one space */
};

static int hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct hdr *)a)->name, ((const struct hdr *)b)->name);
}

/* "x-ms-a:v\nx-ms-b:v\n" for every x-ms-* header, sorted by name. */
static int canonical_headers(struct sbuf *b, const struct curl_slist *headers)
{
    size_t cap = 0;
    for (const struct curl_slist *l = headers; l; l = l->next)
        cap++;
    struct hdr *v = calloc(cap ? cap : 1, sizeof *v);
    if (!v)
        return -1;
    size_t n = 0;
    int rc = 0;
    for (const struct curl_slist *l = headers; l && rc == 0; l = l->next) {
        const char *colon = strchr(l->data, ':');
        if (!colon || strncasecmp(l->data, "x-ms-", 5) != 0)
            continue;
        size_t nl = (size_t)(colon - l->data);
        while (nl > 0 && isspace((unsigned char)l->data[nl - 1]))
            nl--;
        v[n].name = strndup(l->data, nl);
        const char *val = colon + 1;
        v[n].value = malloc(strlen(val) + 1);
        if (!v[n].name || !v[n].value) {
            n++;
            rc = -1;
            break;
        }
        for (char *c = v[n].name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        char *o = v[n].value;
        bool space = false;
        while (isspace((unsigned char)*val))
            val++;
        for (; *val; val++) {
            if (isspace((unsigned char)*val)) {
                space = true;
                continue;
            }
            if (space)
                *o++ = ' ';
            space = false;
            *o++ = *val;
        }
        *o = '\0';
        n++;
    }
    if (rc == 0) {
        qsort(v, n, sizeof *v, hdr_cmp);
        for (size_t i = 0; i < n; i++) {
            sb_str(b, v[i].name);
            sb_str(b, ":");
            sb_str(b, v[i].value);
            sb_str(b, "\n");
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
    return rc;
}

int azure_string_to_sign(const char *account, const char *method, const char *url,
                         const struct curl_slist *headers, size_t content_length, char **out,
                         struct err *e)
{
    static const char *const STANDARD[] = {"Content-Encoding", "Content-Language", NULL,
                                           "Content-MD5", "Content-Type", "Date",
                                           "If-Modified-Since", "If-Match", "If-None-Match",
                                           "If-Unmodified-Since", "Range"};
    *out = NULL;
    struct sbuf b = {0};
    sb_str(&b, method);
    sb_str(&b, "\n");
    for (size_t i = 0; i < sizeof STANDARD / sizeof *STANDARD; i++) {
        if (!STANDARD[i]) { /* Content-Length: empty when zero */
            if (content_length > 0) {
                char num[32];
                str_printf(num, sizeof num, "%zu", content_length);
                sb_str(&b, num);
            }
        } else {
            size_t vl;
            const char *v = cloud_header_find(headers, STANDARD[i], &vl);
            if (v)
                sb_add(&b, v, vl);
        }
        sb_str(&b, "\n");
    }
    int rc = canonical_headers(&b, headers);
    if (rc == 0)
        rc = canonical_resource(&b, account, url);
    if (rc || b.nomem) {
        free(b.p);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    *out = b.p;
    return 0;
}

int azure_shared_key_header(const char *account, const unsigned char *key, size_t key_len,
                            const char *string_to_sign, char **out, struct err *e)
{
    *out = NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)string_to_sign,
              strlen(string_to_sign), mac, &mac_len))
        return err_set(e, ERR_INTERNAL, "azure-storage: HMAC-SHA256 failed");
    char sig[64];
    size_t sl = asb_b64_encode(mac, mac_len, sig);
    sig[sl] = '\0';
    size_t need = strlen("SharedKey ") + strlen(account) + 1 + sl + 1;
    char *h = malloc(need);
    if (!h)
        return err_set(e, ERR_NOMEM, "out of memory");
    str_printf(h, need, "SharedKey %s:%s", account, sig);
    *out = h;
    return 0;
}

/* ---- Azure AD client credentials ---------------------------------------------------------- */

struct azure_token_src {
    pthread_mutex_t lock;
    struct cloud_http *http;
    char *url;       /* token endpoint */
    char *form;      /* client-credentials form (holds the secret) */
    char *secret;    /* to scrub replies before quoting them */
    char *token;     /* cached access token, NULL = none */
    int64_t refresh_at_ms; /* monotonic time after which the token is fetched again */
    int requests;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int azure_token_src_new(const char *authority_host, const char *tenant_id,
                        const char *client_id, const char *client_secret,
                        struct cloud_http *http, struct azure_token_src **out, struct err *e)
{
    *out = NULL;
    if (!authority_host || !*authority_host)
        authority_host = getenv("AZURE_AUTHORITY_HOST");
    if (!authority_host || !*authority_host)
        authority_host = AZURE_AUTHORITY_DEFAULT;
    struct azure_token_src *t = calloc(1, sizeof *t);
    char *tenant = cloud_url_encode(tenant_id, false);
    char *cid = cloud_url_encode(client_id, false);
    char *csec = cloud_url_encode(client_secret, false);
    char *scope = cloud_url_encode(AZURE_SCOPE, false);
    int rc = 0;
    if (!t || !tenant || !cid || !csec || !scope) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t hl = strlen(authority_host);
    while (hl > 0 && authority_host[hl - 1] == '/')
        hl--;
    size_t ul = hl + strlen(tenant) + 64;
    size_t fl = strlen(cid) + strlen(csec) + strlen(scope) + 96;
    t->url = malloc(ul);
    t->form = malloc(fl);
    t->secret = strdup(client_secret);
    if (!t->url || !t->form || !t->secret) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto done;
    }
    str_printf(t->url, ul, "%.*s/%s/oauth2/v2.0/token", (int)hl, authority_host, tenant);
    str_printf(t->form, fl, "grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s",
               cid, csec, scope);
    t->http = http;
    pthread_mutex_init(&t->lock, NULL);
done:
    free(tenant);
    free(cid);
    if (csec) {
        OPENSSL_cleanse(csec, strlen(csec));
        free(csec);
    }
    free(scope);
    if (rc) {
        if (t) {
            free(t->url);
            free(t->form);
            free(t->secret);
            free(t);
        }
        return rc;
    }
    *out = t;
    return 0;
}

void azure_token_src_free(struct azure_token_src *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->url);
    if (t->form)
        OPENSSL_cleanse(t->form, strlen(t->form));
    free(t->form);
    if (t->secret)
        OPENSSL_cleanse(t->secret, strlen(t->secret));
    free(t->secret);
    if (t->token)
        OPENSSL_cleanse(t->token, strlen(t->token));
    free(t->token);
    free(t);
}

int azure_token_requests(const struct azure_token_src *t) { return t->requests; }

/* A short, secret-free explanation from an error reply ({"error":..., "error_description"}). */
static void token_error_reason(const struct azure_token_src *t, const char *body, char *out,
                               size_t cap)
{
    out[0] = '\0';
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    const char *code = j ? json_string_value(json_object_get(j, "error")) : NULL;
    const char *desc = j ? json_string_value(json_object_get(j, "error_description")) : NULL;
    if (desc && (strstr(desc, t->secret) || strstr(desc, "client_secret=")))
        desc = NULL;
    if (code) {
        /* AAD descriptions run long (trace ids...): keep their first sentence. */
        size_t dl = desc ? strcspn(desc, "\r\n") : 0;
        if (dl > 200)
            dl = 200;
        str_printf(out, cap, ": %s%s%.*s", code, desc ? " - " : "", (int)dl, desc ? desc : "");
    }
    json_decref(j);
}

/* Asks the token endpoint; on success replaces the cached token. Lock held. */
static int token_fetch(struct azure_token_src *t, struct err *e)
{
    struct curl_slist *h = curl_slist_append(NULL,
                                             "Content-Type: application/x-www-form-urlencoded");
    struct curl_slist *h2 = h ? curl_slist_append(h, "Accept: application/json") : NULL;
    if (!h2) {
        curl_slist_free_all(h);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    struct cloud_http_req req = {.what = "azure-storage: Azure AD token request",
                                 .method = "POST", .url = t->url, .headers = h2,
                                 .body = t->form, .body_len = strlen(t->form),
                                 .max_body = TOKEN_REPLY_MAX};
    struct cloud_http_resp resp;
    t->requests++;
    int64_t asked = mono_ms();
    int rc = cloud_http_do(t->http, &req, &resp, e);
    curl_slist_free_all(h2);
    if (rc)
        return rc;
    if (resp.status != 200) {
        char reason[300];
        token_error_reason(t, resp.body, reason, sizeof reason);
        rc = err_set(e, ERR_IO,
                     "azure-storage: Azure AD token request failed with HTTP %ld%s (check "
                     "tenant-id, client-id and client-secret)",
                     resp.status, reason);
        cloud_http_resp_free(&resp);
        return rc;
    }
    json_t *j = json_loads(resp.body ? resp.body : "", 0, NULL);
    cloud_http_resp_free(&resp);
    const char *tok = j ? json_string_value(json_object_get(j, "access_token")) : NULL;
    json_t *exp = j ? json_object_get(j, "expires_in") : NULL;
    int64_t expires_s = 3600;
    if (json_is_integer(exp))
        expires_s = (int64_t)json_integer_value(exp);
    else if (json_is_string(exp))
        expires_s = strtoll(json_string_value(exp), NULL, 10);
    if (!tok || !*tok) {
        json_decref(j);
        return err_set(e, ERR_IO, "azure-storage: Azure AD token reply has no access_token");
    }
    char *copy = strdup(tok);
    json_decref(j);
    if (!copy)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (t->token) {
        OPENSSL_cleanse(t->token, strlen(t->token));
        free(t->token);
    }
    t->token = copy;
    int64_t life_ms = expires_s > 0 ? expires_s * 1000 : 0;
    int64_t margin = life_ms / 2 < TOKEN_REFRESH_MARGIN_MS ? life_ms / 2 : TOKEN_REFRESH_MARGIN_MS;
    t->refresh_at_ms = asked + life_ms - margin;
    return 0;
}

int azure_token_header(struct azure_token_src *t, char **out, struct err *e)
{
    *out = NULL;
    pthread_mutex_lock(&t->lock);
    int rc = 0;
    if (!t->token || mono_ms() >= t->refresh_at_ms)
        rc = token_fetch(t, e);
    if (rc == 0) {
        size_t n = strlen(t->token) + 32;
        *out = malloc(n);
        if (*out)
            str_printf(*out, n, "Authorization: Bearer %s", t->token);
        else
            rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}
