/*
 * s3_creds.c - see s3_creds.h: the configuration / environment / shared-file credential chain
 * and the small INI reader for ~/.aws/credentials and ~/.aws/config.
 */
#include "storage/s3_creds.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fsutil.h"
#include "util/strutil.h"

#define SHARED_FILE_MAX (1u << 20)

void s3_creds_free(struct s3_creds *c)
{
    if (!c)
        return;
    free(c->key_id);
    if (c->secret) {
        memset(c->secret, 0, strlen(c->secret));
        free(c->secret);
    }
    free(c->session_token);
    free(c->region);
    memset(c, 0, sizeof *c);
}

static const char *trim(char *s, char **end_io)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    char *end = *end_io;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    *end_io = end;
    return s;
}

/* One line [start, end): section header, key = value, or other. */
char *s3_ini_get(const char *text, const char *section, const char *key)
{
    bool in_section = false;
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = strndup(p, len);
        if (!line)
            return NULL;
        char *end = line + strlen(line);
        const char *t = trim(line, &end);
        *end = '\0';
        if (*t == '[') {
            char *close = strchr(t, ']');
            if (close) {
                char *ce = close;
                const char *name = trim((char *)t + 1, &ce);
                *ce = '\0';
                in_section = strcmp(name, section) == 0;
                if (in_section && !key) {
                    free(line);
                    return strdup("");
                }
            } else {
                in_section = false;
            }
        } else if (in_section && *t && *t != '#' && *t != ';') {
            char *eq = strchr(t, '=');
            if (eq) {
                char *ke = eq;
                const char *k = trim((char *)t, &ke);
                *ke = '\0';
                char *ve = end;
                const char *v = trim(eq + 1, &ve);
                *ve = '\0';
                if (strcmp(k, key) == 0) {
                    char *out = strdup(v);
                    free(line);
                    return out;
                }
            }
        }
        free(line);
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

static char *shared_path(const char *env, const char *leaf)
{
    const char *v = getenv(env);
    if (v && *v)
        return strdup(v);
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    size_t n = strlen(home) + strlen(leaf) + 8;
    char *p = malloc(n);
    if (p)
        str_printf(p, n, "%s/.aws/%s", home, leaf);
    return p;
}

/* Text of a shared file, or NULL when absent/unreadable (not an error: the chain goes on). */
static char *read_shared(const char *env, const char *leaf, char **path_out)
{
    *path_out = shared_path(env, leaf);
    if (!*path_out)
        return NULL;
    char *data = NULL;
    struct err ignore = {0};
    if (fs_read_file(*path_out, SHARED_FILE_MAX, &data, NULL, &ignore) != 0)
        return NULL;
    return data;
}

static int from_shared_files(const char *profile, bool explicit_profile, struct s3_creds *out,
                             struct err *e)
{
    char *cred_path = NULL, *conf_path = NULL;
    char *cred = read_shared("AWS_SHARED_CREDENTIALS_FILE", "credentials", &cred_path);
    char *conf = read_shared("AWS_CONFIG_FILE", "config", &conf_path);
    /* The config file names non-default profiles "profile NAME". */
    char conf_section[300];
    if (strcmp(profile, "default") == 0)
        str_printf(conf_section, sizeof conf_section, "default");
    else
        str_printf(conf_section, sizeof conf_section, "profile %s", profile);

    int rc = 0;
    const char *files[2] = {cred, conf};
    const char *sections[2] = {profile, conf_section};
    const char *paths[2] = {cred_path, conf_path};
    bool seen = false;
    for (int i = 0; i < 2 && !out->key_id; i++) {
        if (!files[i])
            continue;
        char *id = s3_ini_get(files[i], sections[i], "aws_access_key_id");
        char *secret = s3_ini_get(files[i], sections[i], "aws_secret_access_key");
        if (id || secret)
            seen = true;
        if (id && secret && *id && *secret) {
            out->key_id = id;
            out->secret = secret;
            out->session_token = s3_ini_get(files[i], sections[i], "aws_session_token");
            out->source = "shared credentials file";
        } else if (id || secret) {
            free(id);
            if (secret)
                memset(secret, 0, strlen(secret));
            free(secret);
            rc = err_set(e, ERR_INVALID,
                         "s3-storage: profile '%s' in %s has only one of aws_access_key_id / "
                         "aws_secret_access_key", profile, paths[i]);
            break;
        }
    }
    if (!rc && conf)
        out->region = s3_ini_get(conf, conf_section, "region");
    if (!rc && !seen && explicit_profile) {
        /* A profile that exists with no keys (e.g. only a region) is fine: anonymous. */
        char *a = cred ? s3_ini_get(cred, profile, NULL) : NULL;
        char *b = conf ? s3_ini_get(conf, conf_section, NULL) : NULL;
        bool exists = a || b;
        free(a);
        free(b);
        if (!exists)
            rc = err_set(e, ERR_INVALID, "s3-storage: AWS profile '%s' not found in %s or %s",
                         profile, cred_path ? cred_path : "~/.aws/credentials",
                         conf_path ? conf_path : "~/.aws/config");
    }
    if (cred) {
        memset(cred, 0, strlen(cred));
        free(cred);
    }
    if (conf) {
        memset(conf, 0, strlen(conf));
        free(conf);
    }
    free(cred_path);
    free(conf_path);
    return rc;
}

static int dup_pair(const char *id, const char *secret, const char *token, const char *source,
                    struct s3_creds *out, struct err *e)
{
    out->key_id = strdup(id);
    out->secret = strdup(secret);
    out->session_token = token && *token ? strdup(token) : NULL;
    out->source = source;
    if (!out->key_id || !out->secret || (token && *token && !out->session_token)) {
        s3_creds_free(out);
        return err_set(e, ERR_NOMEM, "s3-storage: out of memory");
    }
    return 0;
}

int s3_creds_resolve(const char *cfg_key_id, const char *cfg_secret, const char *profile,
                     struct s3_creds *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    out->source = "none";
    bool has_id = cfg_key_id && *cfg_key_id, has_secret = cfg_secret && *cfg_secret;
    if (has_id != has_secret)
        return err_set(e, ERR_INVALID, "s3-storage: access-key-id and secret-access-key must "
                                       "be set together");
    if (has_id)
        return dup_pair(cfg_key_id, cfg_secret, NULL, "configuration", out, e);

    const char *env_id = getenv("AWS_ACCESS_KEY_ID"), *env_secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (env_id && *env_id && env_secret && *env_secret)
        return dup_pair(env_id, env_secret, getenv("AWS_SESSION_TOKEN"), "environment", out, e);

    bool explicit_profile = profile && *profile;
    if (!explicit_profile) {
        profile = getenv("AWS_PROFILE");
        explicit_profile = profile && *profile;
        if (!explicit_profile)
            profile = "default";
    }
    int rc = from_shared_files(profile, explicit_profile, out, e);
    if (rc)
        s3_creds_free(out);
    return rc;
}
