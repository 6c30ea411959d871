/*
 * emu_sec.c - the emulator's security (an Enterprise feature): users with bcrypt credentials
 * and roles, the admin (type 2) protocol's LOGIN and AUTHENTICATE, session tokens with a TTL,
 * and the permission check data and info commands go through.
 *
 * Behaviour follows the Enterprise server's security code: LOGIN with USER + CREDENTIAL
 * compares the 60-character bcrypt credential with the stored one (unknown user 60, missing
 * credential or mismatch 65); PKI LOGIN (no fields) takes the user from the client
 * certificate's CN; CLEAR_PASSWORD (LDAP) is refused (an internal user 60, an unknown one 90,
 * LDAP is not emulated). A session token is "H<issue time, hex ms>|<HMAC-SHA256>", sent with
 * SESSION_TTL; AUTHENTICATE checks user (60), token (65) and age (66), and on an already
 * authenticated connection answers 56. Other admin commands answer 80 before login, 54 after.
 * Without users the emulator is Community (every admin message answers 51) or, with
 * --enterprise, an Enterprise server without security (52).
 */
#include "emu.h"

#include <crypt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/hmac.h>
#include <openssl/rand.h>

#define SALT "$2a$10$7EqJtq98hPqEX7fNZaFWoO"
#define CRED_LEN 60

enum { CMD_AUTHENTICATE = 0, CMD_LOGIN = 20 };
enum { F_USER = 0, F_CREDENTIAL = 3, F_CLEAR_PASSWORD = 4, F_SESSION_TOKEN = 5, F_SESSION_TTL = 6,
       F_MAX = 19 };
#define LDAP_NOT_CONFIGURED 90

static const struct {
    const char *name;
    unsigned perms;
} ROLES[] = {
    { "user-admin", EMU_PERM_USER_ADMIN },
    { "sys-admin", EMU_PERM_SYS_ADMIN | EMU_PERM_UDF_ADMIN | EMU_PERM_SINDEX_ADMIN | EMU_PERM_TRUNCATE },
    { "data-admin", EMU_PERM_UDF_ADMIN | EMU_PERM_SINDEX_ADMIN | EMU_PERM_TRUNCATE },
    { "udf-admin", EMU_PERM_UDF_ADMIN },
    { "sindex-admin", EMU_PERM_SINDEX_ADMIN },
    { "read", EMU_PERM_READ },
    { "read-write", EMU_PERM_READ | EMU_PERM_WRITE },
    { "read-write-udf", EMU_PERM_READ | EMU_PERM_WRITE },
    { "write", EMU_PERM_WRITE },
    { "truncate", EMU_PERM_TRUNCATE },
    { "superuser", EMU_PERM_ALL },
};

const char *emu_perm_name(unsigned perm)
{
    switch (perm) {
    case EMU_PERM_READ: return "read";
    case EMU_PERM_WRITE: return "write";
    case EMU_PERM_UDF_ADMIN: return "udf-admin";
    case EMU_PERM_SINDEX_ADMIN: return "sindex-admin";
    case EMU_PERM_TRUNCATE: return "truncate";
    case EMU_PERM_SYS_ADMIN: return "sys-admin";
    case EMU_PERM_USER_ADMIN: return "user-admin";
    default: return "none";
    }
}

void emu_sec_init(struct emu_security *s)
{
    s->session_ttl = 86400;
    if (RAND_bytes(s->hmac_key, sizeof s->hmac_key) != 1)
        memset(s->hmac_key, 0x5a, sizeof s->hmac_key);
}

static int parse_roles(const char *roles, unsigned *perms, const char **why)
{
    *perms = 0;
    const char *p = roles;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool found = false;
        for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++) {
            if (strlen(ROLES[i].name) == len && strncmp(ROLES[i].name, p, len) == 0) {
                *perms |= ROLES[i].perms;
                found = true;
            }
        }
        if (!found && len) {
            *why = "unknown role";
            return -1;
        }
        p += len + (comma ? 1 : 0);
    }
    return 0;
}

int emu_sec_add_user(struct emu_security *s, const char *spec, const char **why)
{
    *why = "expected NAME:PASSWORD[:ROLES]";
    const char *c1 = strchr(spec, ':');
    if (!c1 || c1 == spec || (size_t)(c1 - spec) > EMU_USER_MAX)
        return -1;
    if (s->n_users >= EMU_MAX_USERS) {
        *why = "too many users";
        return -1;
    }
    struct emu_user *u = &s->users[s->n_users];
    memset(u, 0, sizeof *u);
    memcpy(u->name, spec, (size_t)(c1 - spec));
    const char *pw = c1 + 1;
    /* neither a password here nor a bcrypt credential holds ':'; the roles follow it */
    const char *c2 = strchr(pw, ':');
    char password[256];
    size_t pl = c2 ? (size_t)(c2 - pw) : strlen(pw);
    if (pl >= sizeof password)
        return -1;
    memcpy(password, pw, pl);
    password[pl] = '\0';
    u->perms = EMU_PERM_ALL;
    if (c2 && c2[1] && parse_roles(c2 + 1, &u->perms, why) != 0)
        return -1;
    if (pl == CRED_LEN && strncmp(password, "$2a$10$", 7) == 0) {
        memcpy(u->credential, password, CRED_LEN + 1);
    } else {
        struct crypt_data *cd = calloc(1, sizeof *cd);
        const char *h = cd ? crypt_r(password, SALT, cd) : NULL;
        if (!h || strlen(h) != CRED_LEN) {
            free(cd);
            *why = "libcrypt has no bcrypt";
            return -1;
        }
        memcpy(u->credential, h, CRED_LEN + 1);
        free(cd);
    }
    s->n_users++;
    s->enabled = true;
    return 0;
}

/* ---- messages -------------------------------------------------------------------------------- */

static void reply_header(struct as_buf *out, uint8_t result, uint8_t n_fields)
{
    uint8_t h[16] = { 0, result, 0, n_fields };
    as_buf_append(out, h, sizeof h);
}

static void reply_field(struct as_buf *out, uint8_t id, const void *p, size_t n)
{
    as_buf_put_u32(out, (uint32_t)n + 1);
    as_buf_put_u8(out, id);
    as_buf_append(out, p, n);
}

struct field {
    const uint8_t *p;
    uint32_t len;
    bool has;
};

/* false when a field overruns the message (the server answers 55 then) */
static bool parse_fields(const uint8_t *body, size_t len, struct field f[F_MAX + 1])
{
    memset(f, 0, sizeof(struct field) * (F_MAX + 1));
    size_t pos = 16;
    while (pos < len) {
        if (len - pos < 5)
            return false;
        uint32_t sz = as_get_u32(body + pos);
        if (sz < 1 || sz - 1 > len - pos - 5)
            return false;
        uint8_t id = body[pos + 4];
        if (id <= F_MAX)
            f[id] = (struct field){ body + pos + 5, sz - 1, true };
        pos += 4 + (size_t)sz;
    }
    return true;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int find_user(const struct emu_security *s, const void *name, size_t len)
{
    for (unsigned i = 0; i < s->n_users; i++)
        if (strlen(s->users[i].name) == len && memcmp(s->users[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static unsigned token_mac(const struct emu_security *s, const char *user, const char *stamp,
                          uint8_t md[EVP_MAX_MD_SIZE])
{
    char d[EMU_USER_MAX + 32];
    int n = snprintf(d, sizeof d, "%s%s", user, stamp);
    unsigned ml = 0;
    if (n < 0 || !HMAC(EVP_sha256(), s->hmac_key, (int)sizeof s->hmac_key, (const uint8_t *)d,
                       (size_t)n, md, &ml))
        return 0;
    return ml;
}

/* 'H' + issue time + '|' + MAC; returns its length. */
static size_t token_make(const struct emu_security *s, const char *user, uint64_t issued,
                         uint8_t out[96])
{
    char stamp[24];
    snprintf(stamp, sizeof stamp, "%" PRIx64, issued);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned ml = token_mac(s, user, stamp, md);
    size_t sl = strlen(stamp);
    out[0] = 'H';
    memcpy(out + 1, stamp, sl);
    out[1 + sl] = '|';
    memcpy(out + 2 + sl, md, ml);
    return 2 + sl + ml;
}

static int token_check(struct emu_cluster *c, const char *user, const uint8_t *tok, size_t len)
{
    struct emu_security *s = &c->sec;
    if (len < 3 || tok[0] != 'H')
        return AS_SEC_ERR_CREDENTIAL;
    const uint8_t *bar = memchr(tok, '|', len);
    if (!bar || bar - tok - 1 > 20 || bar == tok + 1)
        return AS_SEC_ERR_CREDENTIAL;
    char stamp[24];
    size_t sl = (size_t)(bar - tok - 1);
    memcpy(stamp, tok + 1, sl);
    stamp[sl] = '\0';
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned ml = token_mac(s, user, stamp, md);
    if (ml == 0 || (size_t)(tok + len - bar - 1) != ml || memcmp(bar + 1, md, ml) != 0)
        return AS_SEC_ERR_CREDENTIAL;
    uint64_t issued = strtoull(stamp, NULL, 16);
    pthread_mutex_lock(&c->meta);
    uint64_t expired_before = s->expired_before_ms;
    pthread_mutex_unlock(&c->meta);
    if (issued <= expired_before || now_ms() > issued + (uint64_t)s->session_ttl * 1000u)
        return AS_SEC_ERR_EXPIRED_SESSION;
    return 0;
}

static int do_login(struct emu_conn *conn, const struct field *f, struct as_buf *out)
{
    struct emu_cluster *c = conn->c;
    struct emu_security *s = &c->sec;
    conn->user = -1; /* a LOGIN on an authenticated socket strips its authentication first */
    pthread_mutex_lock(&c->meta);
    int refuse = s->refuse_logins;
    pthread_mutex_unlock(&c->meta);
    if (refuse)
        return refuse;
    int u;
    if (f[F_USER].has) {
        if (!f[F_CREDENTIAL].has && !f[F_CLEAR_PASSWORD].has)
            return AS_SEC_ERR_CREDENTIAL;
        if (f[F_USER].len == 0 || f[F_USER].len > EMU_USER_MAX)
            return AS_SEC_ERR_USER;
        if (f[F_CREDENTIAL].has && f[F_CREDENTIAL].len != CRED_LEN)
            return AS_SEC_ERR_CREDENTIAL;
        if (f[F_CLEAR_PASSWORD].has && (f[F_CLEAR_PASSWORD].len == 0 || f[F_CLEAR_PASSWORD].len > 256))
            return AS_SEC_ERR_PASSWORD;
        u = find_user(s, f[F_USER].p, f[F_USER].len);
        if (f[F_CLEAR_PASSWORD].has)
            return u < 0 ? LDAP_NOT_CONFIGURED : AS_SEC_ERR_USER; /* external users: no LDAP here */
        if (u < 0)
            return AS_SEC_ERR_USER;
        if (memcmp(s->users[u].credential, f[F_CREDENTIAL].p, CRED_LEN) != 0)
            return AS_SEC_ERR_CREDENTIAL;
    } else { /* PKI: the certificate's CN is the user */
        if (!conn->peer_cn[0])
            return AS_SEC_ERR_USER;
        if (f[F_CREDENTIAL].has || f[F_CLEAR_PASSWORD].has)
            return AS_SEC_ERR_CREDENTIAL;
        u = find_user(s, conn->peer_cn, strlen(conn->peer_cn));
        if (u < 0)
            return AS_SEC_ERR_USER;
    }
    uint64_t issued = now_ms();
    pthread_mutex_lock(&c->meta);
    if (issued <= s->expired_before_ms)
        issued = s->expired_before_ms + 1;
    pthread_mutex_unlock(&c->meta);
    uint8_t tok[96];
    size_t tl = token_make(s, s->users[u].name, issued, tok);
    conn->user = u;
    reply_header(out, 0, 2);
    reply_field(out, F_SESSION_TOKEN, tok, tl);
    uint8_t ttl[4] = { (uint8_t)(s->session_ttl >> 24), (uint8_t)(s->session_ttl >> 16),
                       (uint8_t)(s->session_ttl >> 8), (uint8_t)s->session_ttl };
    reply_field(out, F_SESSION_TTL, ttl, sizeof ttl);
    return 0;
}

static int do_authenticate(struct emu_conn *conn, const struct field *f)
{
    struct emu_security *s = &conn->c->sec;
    if (conn->user >= 0)
        return AS_SEC_ERR_STATE;
    char user[EMU_USER_MAX + 1];
    if (f[F_USER].has) {
        if (f[F_USER].len == 0 || f[F_USER].len > EMU_USER_MAX)
            return AS_SEC_ERR_USER;
        memcpy(user, f[F_USER].p, f[F_USER].len);
        user[f[F_USER].len] = '\0';
    } else {
        if (!conn->peer_cn[0])
            return AS_SEC_ERR_USER;
        snprintf(user, sizeof user, "%s", conn->peer_cn);
    }
    if (!f[F_SESSION_TOKEN].has)
        return AS_SEC_ERR_CREDENTIAL;
    int u = find_user(s, user, strlen(user));
    if (u < 0)
        return AS_SEC_ERR_USER;
    int rc = token_check(conn->c, user, f[F_SESSION_TOKEN].p, f[F_SESSION_TOKEN].len);
    if (rc == 0)
        conn->user = u;
    return rc;
}

void emu_sec_admin(struct emu_conn *conn, const uint8_t *body, size_t len, struct as_buf *out)
{
    struct emu_security *s = &conn->c->sec;
    if (!s->enabled) {
        reply_header(out, s->enterprise ? AS_SEC_ERR_NOT_CONFIGURED : AS_SEC_ERR_NOT_SUPPORTED, 0);
        return;
    }
    struct field f[F_MAX + 1];
    int rc;
    if (len < 16)
        rc = AS_ERR_UNKNOWN;
    else if (body[0] != 0)
        rc = AS_SEC_ERR_SCHEME;
    else if (!parse_fields(body, len, f))
        rc = AS_SEC_ERR_FIELD;
    else if (body[2] == CMD_LOGIN) {
        size_t mark = out->len;
        rc = do_login(conn, f, out);
        if (rc == 0) {
            atomic_fetch_add(&s->logins, 1);
            return;
        }
        out->len = mark;
        atomic_fetch_add(&s->login_failures, 1);
    } else if (body[2] == CMD_AUTHENTICATE) {
        rc = do_authenticate(conn, f);
        atomic_fetch_add(rc ? &s->auth_failures : &s->authenticates, 1);
    } else if (body[2] <= 16) {
        rc = conn->user < 0 ? AS_SEC_ERR_NOT_AUTHENTICATED : AS_SEC_ERR_COMMAND;
    } else {
        rc = AS_SEC_ERR_COMMAND;
    }
    reply_header(out, (uint8_t)rc, 0);
}

int emu_sec_check(const struct emu_conn *conn, unsigned perm)
{
    const struct emu_security *s = &conn->c->sec;
    if (!s->enabled)
        return 0;
    if (conn->user < 0)
        return AS_SEC_ERR_NOT_AUTHENTICATED;
    if (perm && !(s->users[conn->user].perms & perm))
        return AS_SEC_ERR_ROLE_VIOLATION;
    return 0;
}
