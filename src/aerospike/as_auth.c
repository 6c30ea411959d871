/*
 * as_auth.c - admin-protocol LOGIN / AUTHENTICATE and the bcrypt credential (see as_auth.h).
 *
 * libcrypt: crypt_r is taken from libcrypt.so.1 opened at run time (so the library links
 * without -lcrypt); a weakly referenced, statically linked crypt_r is the fallback.
 */
#include "aerospike/as_auth.h"

#include <crypt.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"

#pragma weak crypt_r

int as_auth_mode_parse(const char *s, enum as_auth_mode *out)
{
    if (!s || !*s || strcasecmp(s, "INTERNAL") == 0)
        *out = AS_AUTH_INTERNAL;
    else if (strcasecmp(s, "EXTERNAL") == 0)
        *out = AS_AUTH_EXTERNAL;
    else if (strcasecmp(s, "EXTERNAL_INSECURE") == 0)
        *out = AS_AUTH_EXTERNAL_INSECURE;
    else if (strcasecmp(s, "PKI") == 0)
        *out = AS_AUTH_PKI;
    else
        return ERR_INVALID;
    return 0;
}

/* ---- bcrypt ------------------------------------------------------------------------------ */

typedef char *(*crypt_r_fn)(const char *, const char *, struct crypt_data *);

static pthread_once_t g_crypt_once = PTHREAD_ONCE_INIT;
static crypt_r_fn g_crypt_r;

static void crypt_init(void)
{
    /* The library itself first: a sanitizer may interpose crypt_r with a wrapper that needs
     * libcrypt to be linked; dlsym on the library's handle always gives the real function. */
    void *h = dlopen("libcrypt.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        h = dlopen("libcrypt.so", RTLD_NOW | RTLD_LOCAL);
    if (h) {
        void *sym = dlsym(h, "crypt_r");
        memcpy(&g_crypt_r, &sym, sizeof sym);
    }
    if (!g_crypt_r && crypt_r)
        g_crypt_r = crypt_r;
}

int as_auth_credential(const char *password, char out[AS_CREDENTIAL_LEN + 1], struct err *e)
{
    pthread_once(&g_crypt_once, crypt_init);
    if (!g_crypt_r)
        return err_set(e, ERR_INTERNAL, "login: libcrypt (crypt_r) is not available for bcrypt");
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return err_set(e, ERR_NOMEM, "login: out of memory");
    const char *h = g_crypt_r(password ? password : "", AS_AUTH_SALT, cd);
    int rc = 0;
    if (!h || strlen(h) != AS_CREDENTIAL_LEN || strncmp(h, "$2a$10$", 7) != 0)
        rc = err_set(e, ERR_INTERNAL, "login: libcrypt does not support bcrypt ($2a$)");
    else
        memcpy(out, h, AS_CREDENTIAL_LEN + 1);
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return rc;
}

/* ---- session --------------------------------------------------------------------------- */

void as_session_clear(struct as_session *s)
{
    if (s->token) {
        explicit_bzero(s->token, s->token_len);
        free(s->token);
    }
    memset(s, 0, sizeof *s);
}

int as_session_copy(struct as_session *dst, const struct as_session *src, struct err *e)
{
    as_session_clear(dst);
    if (!src->token)
        return 0;
    dst->token = malloc(src->token_len ? src->token_len : 1);
    if (!dst->token)
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(dst->token, src->token, src->token_len);
    dst->token_len = src->token_len;
    dst->expires_ms = src->expires_ms;
    return 0;
}

bool as_session_expired(const struct as_session *s, uint64_t now_ms)
{
    if (!s->token)
        return true;
    return s->expires_ms && now_ms >= s->expires_ms;
}

/* ---- messages ------------------------------------------------------------------------------ */

static void admin_header(struct as_buf *b, uint8_t command, uint8_t n_fields)
{
    uint8_t h[AS_ADMIN_HEADER_SIZE] = { 0 };
    h[2] = command;
    h[3] = n_fields;
    as_buf_append(b, h, sizeof h);
}

static void admin_field(struct as_buf *b, uint8_t id, const void *data, size_t len)
{
    if (len > UINT32_MAX - 1) {
        b->failed = true;
        return;
    }
    as_buf_put_u32(b, (uint32_t)len + 1);
    as_buf_put_u8(b, id);
    as_buf_append(b, data, len);
}

int as_auth_login_encode(struct as_buf *b, enum as_auth_mode mode, const char *user,
                         const char *credential, const char *clear_password, struct err *e)
{
    size_t off = as_proto_begin(b, AS_PROTO_ADMIN);
    if (mode == AS_AUTH_PKI) {
        admin_header(b, AS_ADMIN_LOGIN, 0);
    } else {
        if (!user || !credential)
            return err_set(e, ERR_INVALID, "login: user and password are required");
        bool ext = mode == AS_AUTH_EXTERNAL || mode == AS_AUTH_EXTERNAL_INSECURE;
        admin_header(b, AS_ADMIN_LOGIN, ext ? 3 : 2);
        admin_field(b, AS_ADMIN_FIELD_USER, user, strlen(user));
        admin_field(b, AS_ADMIN_FIELD_CREDENTIAL, credential, strlen(credential));
        if (ext) {
            const char *pw = clear_password ? clear_password : "";
            admin_field(b, AS_ADMIN_FIELD_CLEAR_PASSWORD, pw, strlen(pw));
        }
    }
    return as_proto_end(b, off, e);
}

int as_auth_authenticate_encode(struct as_buf *b, enum as_auth_mode mode, const char *user,
                                const struct as_session *s, struct err *e)
{
    if (!s->token)
        return err_set(e, ERR_INVALID, "authenticate: no session token");
    size_t off = as_proto_begin(b, AS_PROTO_ADMIN);
    if (mode == AS_AUTH_PKI || !user) {
        admin_header(b, AS_ADMIN_AUTHENTICATE, 1);
    } else {
        admin_header(b, AS_ADMIN_AUTHENTICATE, 2);
        admin_field(b, AS_ADMIN_FIELD_USER, user, strlen(user));
    }
    admin_field(b, AS_ADMIN_FIELD_SESSION_TOKEN, s->token, s->token_len);
    return as_proto_end(b, off, e);
}

int as_auth_reply_decode(const uint8_t *body, size_t len, int *result, struct as_session *s,
                         uint32_t *ttl_s, struct err *e)
{
    if (len < AS_ADMIN_HEADER_SIZE)
        return err_set(e, ERR_INVALID, "admin reply: %zu bytes, expected at least 16", len);
    *result = body[1];
    unsigned n_fields = body[3];
    size_t pos = AS_ADMIN_HEADER_SIZE;
    if (ttl_s)
        *ttl_s = 0;
    for (unsigned i = 0; i < n_fields; i++) {
        if (len - pos < 5)
            return err_set(e, ERR_INVALID, "admin reply: truncated field %u", i + 1);
        uint32_t sz = as_get_u32(body + pos);
        if (sz < 1 || sz > len - pos - 4)
            return err_set(e, ERR_INVALID, "admin reply: field %u overruns the message", i + 1);
        uint8_t id = body[pos + 4];
        const uint8_t *d = body + pos + 5;
        size_t dl = sz - 1;
        if (id == AS_ADMIN_FIELD_SESSION_TOKEN && s) {
            as_session_clear(s);
            s->token = malloc(dl ? dl : 1);
            if (!s->token)
                return err_set(e, ERR_NOMEM, "out of memory");
            memcpy(s->token, d, dl);
            s->token_len = dl;
        } else if (id == AS_ADMIN_FIELD_SESSION_TTL && ttl_s && dl == 4) {
            *ttl_s = as_get_u32(d);
        }
        pos += 4 + (size_t)sz;
    }
    return 0;
}

static int admin_exchange(struct as_conn *c, struct as_buf *req, struct as_buf *reply,
                          uint32_t timeout_ms, struct err *e)
{
    uint64_t deadline = as_deadline_in(timeout_ms);
    int rc = as_conn_write(c, req->data, req->len, deadline, 0, e);
    if (rc)
        return rc;
    struct as_proto_header h;
    rc = as_conn_read_proto(c, &h, reply, deadline, 0, e);
    if (rc)
        return rc;
    if (h.type != AS_PROTO_ADMIN)
        return err_set(e, ERR_INVALID, "%s: admin reply has proto type %u", c->peer, h.type);
    return 0;
}

/* What a refused LOGIN means, for the error message. */
static const char *login_hint(int result)
{
    switch (result) {
    case AS_SEC_ERR_NOT_SUPPORTED:
        return " - the server has no security (Community Edition?) but a user is configured";
    case AS_SEC_ERR_USER:
        return " - unknown user (or, for PKI, no user matches the client certificate)";
    case AS_SEC_ERR_PASSWORD:
    case AS_SEC_ERR_CREDENTIAL:
        return " - wrong password";
    case AS_SEC_ERR_EXPIRED_PASSWORD:
        return " - the password has expired";
    case AS_SEC_ERR_NOT_WHITELISTED:
        return " - this client address is not allowed for the user";
    case 90:
        return " - external (LDAP) authentication is not configured on the server";
    default:
        return "";
    }
}

int as_auth_login(struct as_conn *c, enum as_auth_mode mode, const char *user,
                  const char *credential, const char *clear_password, struct as_session *s,
                  bool *no_security, uint32_t timeout_ms, struct err *e)
{
    struct as_buf req, reply;
    as_buf_init(&req);
    as_buf_init(&reply);
    *no_security = false;
    int rc = as_auth_login_encode(&req, mode, user, credential, clear_password, e);
    if (!rc)
        rc = admin_exchange(c, &req, &reply, timeout_ms, e);
    if (req.data)
        explicit_bzero(req.data, req.len);
    int result = 0;
    uint32_t ttl = 0;
    if (!rc)
        rc = as_auth_reply_decode(reply.data, reply.len, &result, s, &ttl, e);
    if (!rc) {
        if (result == AS_SEC_ERR_NOT_CONFIGURED) {
            *no_security = true;
            as_session_clear(s);
            LOG_D("as", "%s: security is not enabled on the server; no login needed", c->peer);
        } else if (result != 0) {
            rc = err_set(e, ERR_INVALID, "%s: login%s%s%s refused: %s (%d)%s", c->peer,
                         user && mode != AS_AUTH_PKI ? " of user '" : "",
                         user && mode != AS_AUTH_PKI ? user : "",
                         user && mode != AS_AUTH_PKI ? "'" : "",
                         as_result_name(result), result, login_hint(result));
            as_session_clear(s);
        } else if (!s->token) {
            rc = err_set(e, ERR_INVALID, "%s: login reply carries no session token", c->peer);
        } else {
            /* renew a minute before the server forgets the session */
            s->expires_ms = ttl ? as_now_ms() + (ttl > 60 ? ttl - 60 : ttl / 2) * 1000ull : 0;
            c->authenticated = true;
        }
    }
    as_buf_free(&req);
    as_buf_free(&reply);
    return rc;
}

int as_auth_authenticate(struct as_conn *c, enum as_auth_mode mode, const char *user,
                         const struct as_session *s, int *result, uint32_t timeout_ms,
                         struct err *e)
{
    struct as_buf req, reply;
    as_buf_init(&req);
    as_buf_init(&reply);
    *result = -1;
    int rc = as_auth_authenticate_encode(&req, mode, user, s, e);
    if (!rc)
        rc = admin_exchange(c, &req, &reply, timeout_ms, e);
    if (req.data)
        explicit_bzero(req.data, req.len);
    if (!rc)
        rc = as_auth_reply_decode(reply.data, reply.len, result, NULL, NULL, e);
    if (!rc && *result != 0)
        rc = err_set(e, ERR_INVALID, "%s: authenticate refused: %s (%d)", c->peer,
                     as_result_name(*result), *result);
    if (!rc)
        c->authenticated = true;
    as_buf_free(&req);
    as_buf_free(&reply);
    return rc;
}
