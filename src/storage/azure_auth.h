/*
 * azure_auth.h - the two ways the azure-storage backend authenticates its requests:
 *
 *   - Shared Key (account-name + account-key): every request carries x-ms-date and an
 *     `Authorization: SharedKey <account>:<base64 HMAC-SHA256 of the string-to-sign>` header,
 *     the string-to-sign built exactly as the Blob service's "Authorize with Shared Key" rules
 *     say (version 2015-02-21 and later: empty Content-Length when zero, canonicalized x-ms-*
 *     headers, canonicalized resource "/<account><encoded path>" plus the sorted, decoded query
 *     parameters);
 *   - Azure AD client credentials (tenant-id, client-id, client-secret): an OAuth2 token from
 *     ${AZURE_AUTHORITY_HOST:-https://login.microsoftonline.com}/<tenant>/oauth2/v2.0/token for
 *     scope https://storage.azure.com/.default, cached and fetched again shortly before it
 *     expires; requests carry `Authorization: Bearer <token>`.
 *
 * Neither the account key, the client secret nor a token ever appears in an error message.
 */
#ifndef ABS_STORAGE_AZURE_AUTH_H
#define ABS_STORAGE_AZURE_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>

#include "storage/cloud_http.h"
#include "util/err.h"

/* The Blob service REST version every request sends (x-ms-version). */
#define AZURE_API_VERSION "2021-12-02"

/* "Tue, 25 Nov 2026 23:41:27 GMT" (RFC 1123, English names whatever the locale). */
void azure_http_date(time_t t, char *buf, size_t cap);
/* Parses an RFC 1123 date as above into ms since the epoch; -1 when malformed. */
int64_t azure_parse_http_date(const char *s);

/* ---- Shared Key -------------------------------------------------------------------------- */

/* Decodes a base64 account key; ERR_INVALID (without the key) when it is not base64. */
int azure_key_decode(const char *b64, unsigned char **key, size_t *key_len, struct err *e);

/* The Shared Key string-to-sign of a request (heap, free()). `headers` are all the headers
 * that go out (x-ms-date included); content_length is the body size (0 = empty field). */
int azure_string_to_sign(const char *account, const char *method, const char *url,
                         const struct curl_slist *headers, size_t content_length, char **out,
                         struct err *e);

/* "SharedKey <account>:<signature>" for a string-to-sign (heap, free()). */
int azure_shared_key_header(const char *account, const unsigned char *key, size_t key_len,
                            const char *string_to_sign, char **out, struct err *e);

/* ---- Azure AD client credentials --------------------------------------------------------- */

struct azure_token_src;

/* Token source for a tenant / client; authority_host NULL = $AZURE_AUTHORITY_HOST or the
 * public cloud's. `http` is borrowed (must outlive the source). */
int azure_token_src_new(const char *authority_host, const char *tenant_id,
                        const char *client_id, const char *client_secret,
                        struct cloud_http *http, struct azure_token_src **out, struct err *e);
void azure_token_src_free(struct azure_token_src *t); /* NULL ok */

/* "Authorization: Bearer <token>" (heap, free()), from the cache while the token is fresh,
 * else after a token request. Thread-safe. */
int azure_token_header(struct azure_token_src *t, char **out, struct err *e);

/* Token requests made so far (tests). */
int azure_token_requests(const struct azure_token_src *t);

#endif
