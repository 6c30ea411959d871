/*
 * key_source.c - loads an AES key from key-file, key-env or key-secret (see key_source.h); the
 * derivation itself is io_aes_key_from_pem's.
 */
#include "secret/key_source.h"

#include <stdlib.h>
#include <string.h>

#include "secret/secret_agent.h"

int key_source_load(const struct key_source *src, int bits, struct io_aes_key *out, struct err *e)
{
    if (src->key_file)
        return io_aes_key_from_file(src->key_file, bits, out, e) ? err_prefix(e, "encryption key-file") : 0;
    if (src->key_env) {
        const char *text = getenv(src->key_env);
        if (!text || !*text)
            return err_set(e, ERR_INVALID, "encryption key-env: environment variable %s is not set", src->key_env);
        return io_aes_key_from_pem(text, strlen(text), bits, out, e)
                   ? err_prefix(e, "encryption key-env %s", src->key_env)
                   : 0;
    }
    if (src->key_secret) {
        char *text = NULL;
        if (secret_resolve(src->agent, src->key_secret, "encryption key-secret", &text, e))
            return e->code;
        int rc = io_aes_key_from_pem(text, strlen(text), bits, out, e);
        secret_free(text);
        if (rc)
            return secret_is_ref(src->key_secret) ? err_prefix(e, "encryption key-secret %s", src->key_secret)
                                                  : err_prefix(e, "encryption key-secret");
        return 0;
    }
    return err_set(e, ERR_INVALID, "encryption: no key-file, key-env or key-secret is given");
}
