/*
 * key_source.h - the AES key of a backup or restore from its source (abs-reference §6):
 * `key-file` (a PEM file), `key-env` (an environment variable) or `key-secret` (a value, or a
 * `secrets:` reference fetched from the secret agent). Every source accepts what
 * io_aes_key_from_pem accepts: PEM (PKCS#8 or PKCS#1 RSA, newlines lost or not), base64 of a
 * PEM, base64 of DER. Messages name the source, never the key.
 */
#ifndef ABS_SECRET_KEY_SOURCE_H
#define ABS_SECRET_KEY_SOURCE_H

#include "config/cfg_model.h"
#include "io/io.h"
#include "util/err.h"

struct key_source {
    const char *key_file;
    const char *key_env;
    const char *key_secret;
    const struct cfg_secret_agent *agent; /* answers a key_secret reference; may be NULL */
};

/* bits = 128 or 256. No source at all: ERR_INVALID. */
int key_source_load(const struct key_source *src, int bits, struct io_aes_key *out, struct err *e);

#endif
