/*
 * gcs_auth.h - Google service-account authentication for the gcp-storage backend: the JSON key
 * (inline `key` or `key-file-path`) -> a JWT signed with the key's RSA private key (RS256) ->
 * an OAuth2 access token from the key's `token_uri` (JWT bearer grant), cached and refreshed
 * shortly before it expires. The token is added to requests as "Authorization: Bearer ..." by
 * gcs_auth_sign, a cloud_sign_fn, so every attempt of a retried request uses a fresh token.
 *
 * Secrets (private key, JWT, access token) never appear in error messages.
 * A `struct gcs_auth` may be used by any number of threads at once.
 */
#ifndef ABS_STORAGE_GCS_AUTH_H
#define ABS_STORAGE_GCS_AUTH_H

#include <stdint.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "storage/cloud_http.h"
#include "util/err.h"

#define GCS_SCOPE_RW "https://www.googleapis.com/auth/devstorage.read_write"
#define GCS_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GCS_JWT_LIFETIME_S 3600

struct gcs_auth;

/* Parses a service-account key (JSON text: client_email, private_key, optional private_key_id
 * and token_uri). Token requests go through `http` (not owned; it must outlive the auth). */
int gcs_auth_new(const char *key_json, struct cloud_http *http, struct gcs_auth **out,
                 struct err *e);
void gcs_auth_free(struct gcs_auth *a); /* NULL ok */

/* Reads a key file (at most 64 KiB) into a NUL-terminated heap string. */
int gcs_key_file_read(const char *path, char **out, struct err *e);

/* The current access token (a heap copy, free() it), fetching or refreshing it when it expires
 * within the refresh margin. */
int gcs_auth_token(struct gcs_auth *a, char **token, struct err *e);
/* Drops the cached token (after a 401 from the store): the next request fetches a new one. */
void gcs_auth_invalidate(struct gcs_auth *a);

/* cloud_sign_fn: appends "Authorization: Bearer <token>"; ctx is the struct gcs_auth. */
int gcs_auth_sign(void *ctx, const char *method, const char *url,
                  const struct curl_slist *headers, const void *body, size_t body_len,
                  struct curl_slist **extra, struct err *e);

/* ---- exposed for tests -------------------------------------------------------------------- */

/* Wall clock in seconds the cache uses; replaceable in tests (NULL = real time). */
void gcs_auth_set_clock(struct gcs_auth *a, int64_t (*now_s)(void));
/* Token requests made so far. */
int gcs_auth_fetches(const struct gcs_auth *a);
/* The signed JWT assertion: header {"alg":"RS256","typ":"JWT"[,"kid"]}, claims iss/scope/aud/
 * iat/exp (exp = iat + GCS_JWT_LIFETIME_S). Heap string. */
int gcs_jwt_build(EVP_PKEY *key, const char *key_id, const char *email, const char *scope,
                  const char *aud, int64_t iat, char **out, struct err *e);
/* base64url without padding (RFC 7515); heap string or NULL on no memory. */
char *gcs_b64url(const void *data, size_t len);

#endif
