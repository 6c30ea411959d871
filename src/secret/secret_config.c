/*
 * secret_config.c - resolution of the configuration's secret references (see secret_config.h).
 * A storage copy is made through the generic encode/decode of cfg_schema, so it owns every
 * string and frees like any decoded storage.
 */
#include "secret/secret_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "config/cfg_schema.h"
#include "secret/secret_agent.h"
#include "util/fsutil.h"
#include "util/strutil.h"

#define PASSWORD_FILE_MAX 4096
#define STORAGE_SECRETS_MAX 4

int secret_agent_pick(const struct secret_scope *s, const struct cfg_secret_agent *inl, const char *name,
                      const char *what, const struct cfg_secret_agent **out, struct err *e)
{
    *out = NULL;
    if (inl) {
        *out = inl;
        return 0;
    }
    if (name) {
        *out = s && s->agents ? cfg_map_get(s->agents, name) : NULL;
        return *out ? 0 : err_set(e, ERR_INVALID, "%s: secret agent %s is not defined", what, name);
    }
    *out = s ? s->fallback : NULL;
    return 0;
}

/* ---- storage ------------------------------------------------------------------------------ */

struct storage_secrets {
    const char *kind;                        /* "s3-storage", ... */
    const struct cfg_secret_agent *inl;
    const char *agent_name;
    char **fields[STORAGE_SECRETS_MAX];
    const char *names[STORAGE_SECRETS_MAX];
    size_t n;
};

static void add_field(struct storage_secrets *ss, char **field, const char *name)
{
    ss->fields[ss->n] = field;
    ss->names[ss->n++] = name;
}

/* The secret fields of the one backend block of `st` (none for local storage). */
static void storage_secrets_of(struct cfg_storage *st, struct storage_secrets *ss)
{
    memset(ss, 0, sizeof *ss);
    if (st->s3) {
        *ss = (struct storage_secrets){.kind = "s3-storage", .inl = st->s3->secret_agent,
                                       .agent_name = st->s3->secret_agent_name};
        add_field(ss, &st->s3->access_key_id, "access-key-id");
        add_field(ss, &st->s3->secret_access_key, "secret-access-key");
    } else if (st->azure) {
        *ss = (struct storage_secrets){.kind = "azure-storage", .inl = st->azure->secret_agent,
                                       .agent_name = st->azure->secret_agent_name};
        add_field(ss, &st->azure->account_key, "account-key");
        add_field(ss, &st->azure->tenant_id, "tenant-id");
        add_field(ss, &st->azure->client_id, "client-id");
        add_field(ss, &st->azure->client_secret, "client-secret");
    } else if (st->gcp) {
        *ss = (struct storage_secrets){.kind = "gcp-storage", .inl = st->gcp->secret_agent,
                                       .agent_name = st->gcp->secret_agent_name};
        add_field(ss, &st->gcp->key, "key");
    }
}

static void wipe_string(char *s)
{
    if (s)
        OPENSSL_cleanse(s, strlen(s));
}

void secret_storage_free(struct cfg_storage *st)
{
    if (!st)
        return;
    struct storage_secrets ss;
    storage_secrets_of(st, &ss);
    for (size_t i = 0; i < ss.n; i++)
        wipe_string(*ss.fields[i]);
    cfg_free_obj(&cfg_type_storage, st);
}

static int storage_copy(const struct cfg_storage *in, struct cfg_storage **out, struct err *e)
{
    json_t *j = cfg_encode(&cfg_type_storage, in, false);
    if (!j)
        return err_set(e, ERR_NOMEM, "out of memory");
    void *obj = NULL;
    int rc = cfg_decode(&cfg_type_storage, j, "storage", NULL, &obj, e);
    /* the encoded tree holds literal secrets: wipe its strings before freeing */
    const char *k;
    json_t *block, *v;
    json_object_foreach(j, k, block) {
        const char *fk;
        json_object_foreach(block, fk, v) {
            if (json_is_string(v))
                OPENSSL_cleanse((void *)json_string_value(v), json_string_length(v));
        }
    }
    json_decref(j);
    *out = rc == 0 ? obj : NULL;
    return rc;
}

int secret_storage_resolve(const struct cfg_storage *in, const struct secret_scope *s, const char *name,
                           struct cfg_storage **out, struct err *e)
{
    *out = NULL;
    if (!in)
        return err_set(e, ERR_INVALID, "storage %s: no configuration", name);
    struct cfg_storage *copy = NULL;
    if (storage_copy(in, &copy, e))
        return err_prefix(e, "storage %s", name);
    struct storage_secrets ss;
    storage_secrets_of(copy, &ss);
    char what[384];
    str_printf(what, sizeof what, "storage %s %s", name, ss.kind ? ss.kind : "");
    const struct cfg_secret_agent *agent = NULL;
    bool any_ref = false;
    for (size_t i = 0; i < ss.n; i++)
        any_ref |= secret_is_ref(*ss.fields[i]);
    int rc = any_ref ? secret_agent_pick(s, ss.inl, ss.agent_name, what, &agent, e) : 0;
    for (size_t i = 0; rc == 0 && i < ss.n; i++) {
        if (!secret_is_ref(*ss.fields[i]))
            continue;
        char field[448], *value = NULL;
        str_printf(field, sizeof field, "%s.%s", what, ss.names[i]);
        rc = secret_resolve(agent, *ss.fields[i], field, &value, e);
        if (rc == 0) {
            free(*ss.fields[i]);
            *ss.fields[i] = value;
        }
    }
    if (rc) {
        secret_storage_free(copy);
        return rc;
    }
    *out = copy;
    return 0;
}

/* ---- cluster ------------------------------------------------------------------------------ */

int secret_cluster_password(const struct cfg_credentials *cr, const struct secret_scope *s, const char *cluster,
                            char **out, struct err *e)
{
    *out = NULL;
    char what[320];
    if (cr && cr->password) {
        str_printf(what, sizeof what, "cluster %s credentials.password", cluster);
        const struct cfg_secret_agent *agent = NULL;
        if (secret_is_ref(cr->password) &&
            secret_agent_pick(s, cr->secret_agent, cr->secret_agent_name, what, &agent, e))
            return e->code;
        return secret_resolve(agent, cr->password, what, out, e);
    }
    if (cr && cr->password_path) {
        size_t len;
        if (fs_read_file(cr->password_path, PASSWORD_FILE_MAX, out, &len, e))
            return err_prefix(e, "cluster %s: credentials.password-path", cluster);
        while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r'))
            (*out)[--len] = '\0';
    }
    return 0;
}
