/*
 * as_auth.h - the admin (type 2) protocol for logging in: LOGIN and AUTHENTICATE messages,
 * the bcrypt credential and the session token they produce.
 *
 * Modes: INTERNAL sends USER + CREDENTIAL (bcrypt of the password with the fixed client salt
 * "$2a$10$7EqJtq98hPqEX7fNZaFWoO", via libcrypt); EXTERNAL adds CLEAR_PASSWORD (LDAP; meant
 * for TLS connections); PKI sends no field (the TLS client certificate is the identity).
 * A successful LOGIN returns a session token (opaque bytes) and its TTL; the token is then
 * presented with AUTHENTICATE on every new connection to that node.
 *
 * "Security not enabled" (result 52, Enterprise without security) is reported as success
 * with no token (no_security = true). Result 51 (Community: the admin protocol is not
 * supported) is an error when a user is configured — callers only log in when one is.
 *
 * Passwords, credentials and tokens are never logged.
 */
#ifndef ABS_AEROSPIKE_AS_AUTH_H
#define ABS_AEROSPIKE_AS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aerospike/as_conn.h"
#include "aerospike/as_proto.h"
#include "util/err.h"

enum as_auth_mode {
    AS_AUTH_INTERNAL = 0,
    AS_AUTH_EXTERNAL = 1,
    AS_AUTH_EXTERNAL_INSECURE = 2,
    AS_AUTH_PKI = 3,
};

/* Admin commands and field ids used here. */
#define AS_ADMIN_AUTHENTICATE 0
#define AS_ADMIN_LOGIN 20
#define AS_ADMIN_FIELD_USER 0
#define AS_ADMIN_FIELD_CREDENTIAL 3
#define AS_ADMIN_FIELD_CLEAR_PASSWORD 4
#define AS_ADMIN_FIELD_SESSION_TOKEN 5
#define AS_ADMIN_FIELD_SESSION_TTL 6
#define AS_ADMIN_HEADER_SIZE 16

#define AS_AUTH_SALT "$2a$10$7EqJtq98hPqEX7fNZaFWoO"
#define AS_CREDENTIAL_LEN 60

/* Parses "INTERNAL", "EXTERNAL", "EXTERNAL_INSECURE", "PKI" (case-insensitive). */
int as_auth_mode_parse(const char *s, enum as_auth_mode *out);

/* bcrypt(password, AS_AUTH_SALT): the 60-character credential, NUL-terminated in out.
 * Uses libcrypt's crypt_r (linked, or loaded at run time from libcrypt.so.1). Slow (cost 10):
 * compute it once per cluster. */
int as_auth_credential(const char *password, char out[AS_CREDENTIAL_LEN + 1], struct err *e);

struct as_session {
    uint8_t *token;      /* NULL: none (no security, or not logged in yet) */
    size_t token_len;
    uint64_t expires_ms; /* monotonic; 0 = no expiry known */
};

void as_session_clear(struct as_session *s);
/* Deep copy (dst is cleared first). */
int as_session_copy(struct as_session *dst, const struct as_session *src, struct err *e);
/* True when the token should be renewed (expires within 60 s, or no token). */
bool as_session_expired(const struct as_session *s, uint64_t now_ms);

/* Encoders (exposed for tests). `credential` is the bcrypt string (INTERNAL/EXTERNAL),
 * `clear_password` only for EXTERNAL modes. */
int as_auth_login_encode(struct as_buf *b, enum as_auth_mode mode, const char *user,
                         const char *credential, const char *clear_password, struct err *e);
int as_auth_authenticate_encode(struct as_buf *b, enum as_auth_mode mode, const char *user,
                                const struct as_session *s, struct err *e);

/* Decodes a LOGIN/AUTHENTICATE reply body (after the 8-byte proto header): the result code
 * and, for LOGIN, token and TTL (seconds, 0 if absent) into *s. */
int as_auth_reply_decode(const uint8_t *body, size_t len, int *result, struct as_session *s,
                         uint32_t *ttl_s, struct err *e);

/* LOGIN on an open connection. On success *s holds the token (or nothing, with
 * *no_security set, when the server has security disabled). Server refusals are ERR_INVALID
 * with the user, the code name and what it means ("login of user 'u' refused:
 * INVALID_CREDENTIAL (65) - wrong password"); network failures ERR_IO / ERR_UNAVAILABLE. */
int as_auth_login(struct as_conn *c, enum as_auth_mode mode, const char *user,
                  const char *credential, const char *clear_password, struct as_session *s,
                  bool *no_security, uint32_t timeout_ms, struct err *e);

/* AUTHENTICATE a new connection with a session token. *result receives the server code (so
 * callers can log in again on 66 EXPIRED_SESSION / 65 / 80). */
int as_auth_authenticate(struct as_conn *c, enum as_auth_mode mode, const char *user,
                         const struct as_session *s, int *result, uint32_t timeout_ms,
                         struct err *e);

#endif
