/*
 * s3_creds.h - the AWS credential chain of the s3-storage backend: static keys from the
 * configuration, else the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN), else the shared files ~/.aws/credentials and ~/.aws/config (paths from
 * AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE; profile from s3-profile, else AWS_PROFILE,
 * else "default"). No credentials at all means anonymous (unsigned) requests.
 *
 * Secrets never reach a message: errors name the file, the profile and the missing field only.
 */
#ifndef ABS_STORAGE_S3_CREDS_H
#define ABS_STORAGE_S3_CREDS_H

#include "util/err.h"

struct s3_creds {
    char *key_id;        /* NULL = anonymous */
    char *secret;
    char *session_token; /* optional */
    char *region;        /* from the profile's config ("region"), NULL if none */
    const char *source;  /* "configuration", "environment", "shared credentials file", "none" */
};

/* Resolves the chain. cfg_key_id / cfg_secret: the configuration's keys (NULL = unset; one
 * without the other is ERR_INVALID); profile: s3-profile (NULL = AWS_PROFILE or "default"). A
 * profile named explicitly but found in neither file is ERR_INVALID. */
int s3_creds_resolve(const char *cfg_key_id, const char *cfg_secret, const char *profile,
                     struct s3_creds *out, struct err *e);
void s3_creds_free(struct s3_creds *c);

/* Looks `key` up in section `section` of an INI file's text (AWS shared-file syntax: '#'/';'
 * comments, "key = value", whitespace trimmed). Heap copy or NULL. key NULL: "" when the
 * section exists. For tests too. */
char *s3_ini_get(const char *text, const char *section, const char *key);

#endif
