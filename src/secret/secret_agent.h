/*
 * secret_agent.h - the Aerospike Secret Agent client (abs-reference §7) and the resolution of
 * `secrets:<resource>:<key>` references.
 *
 * One request per connection over TCP, TCP+TLS (`tls-ca-file`: the agent's certificate is
 * verified against that CA and against `address`) or a Unix socket. Both directions are an
 * 8-byte header (magic 0x51DEC1CC, payload length, both big-endian) followed by JSON:
 * {"Resource":..,"SecretKey":..} out, {"SecretValue":..} or {"Error":..} back. The agent's
 * `timeout` (default 1000 ms) bounds the connect (TLS handshake included), the write and the
 * read separately. Replies over SECRET_REPLY_MAX bytes are rejected; `is-base64` decodes the value.
 *
 * Errors name the agent ("secret agent 127.0.0.1:3005") and the resource and key, never a
 * secret value. Values are returned in malloc'd memory: release them with secret_free, which
 * wipes them first.
 */
#ifndef ABS_SECRET_SECRET_AGENT_H
#define ABS_SECRET_SECRET_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include "config/cfg_model.h"
#include "util/err.h"

#define SECRET_MAGIC 0x51DEC1CCu
#define SECRET_HEADER_LEN 8
#define SECRET_REPLY_MAX (1u << 20)     /* bytes of JSON in one reply */
#define SECRET_DEFAULT_TIMEOUT_MS 1000
#define SECRET_REF_PREFIX "secrets:"

/* Asks `agent` for `key` of `resource`. On success *value is a malloc'd, NUL-terminated copy
 * (*len bytes without the NUL; len may be NULL). */
int secret_agent_get(const struct cfg_secret_agent *agent, const char *resource, const char *key,
                     char **value, size_t *len, struct err *e);

/* True when `value` starts with "secrets:" (a reference, well-formed or not). */
bool secret_is_ref(const char *value);

/* Splits "secrets:<resource>:<key>" (exactly three ':'-separated parts, none empty) into
 * caller buffers; ERR_INVALID otherwise. */
int secret_ref_parse(const char *ref, char *resource, size_t resource_cap, char *key, size_t key_cap,
                     struct err *e);

/*
 * The value of a field that may be a reference: a literal is copied as it is, a reference is
 * fetched from `agent` (NULL agent with a reference: ERR_INVALID). `what` names the field for
 * messages ("cluster c1 credentials.password"). *out: malloc'd, release with secret_free.
 */
int secret_resolve(const struct cfg_secret_agent *agent, const char *value, const char *what, char **out,
                   struct err *e);

/* "host:port" or the socket path, for messages. */
void secret_agent_describe(const struct cfg_secret_agent *agent, char *buf, size_t cap);

/* Wipes and frees a value returned above (NULL ok). */
void secret_free(char *value);

#endif
