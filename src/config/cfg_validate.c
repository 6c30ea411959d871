/*
 * cfg_validate.c - configuration rules that a field table cannot express (see cfg_validate.h):
 * per-struct mutual exclusions, cross-entity references, partition-list / node-list / cron
 * grammars. Messages always start with the field path.
 */
#include "config/cfg_validate.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/cfg_schema.h"
#include "sched/cron.h"
#include "util/strutil.h"

#define MIB (1024LL * 1024LL)
#define CLOUD_MAX_PARTS 10000
#define DEFAULT_MIN_PART_SIZE (50 * MIB)
#define DEFAULT_FILE_LIMIT_MB 250

static int exclusive(bool a, bool b, const char *path, const char *ka, const char *kb, struct err *e)
{
    if (a && b)
        return err_set(e, ERR_INVALID, "%s: %s and %s are mutually exclusive", path, ka, kb);
    return 0;
}

/* ---- network addresses ---------------------------------------------------------------- */

static bool valid_ip_or_cidr(const char *s)
{
    char buf[128];
    unsigned char addr[16];
    if (strlen(s) >= sizeof buf)
        return false;
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        char *end;
        *slash = '\0';
        errno = 0;
        bits = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1 || errno)
            return false;
    }
    if (inet_pton(AF_INET, buf, addr) == 1)
        return bits <= 32;
    if (inet_pton(AF_INET6, buf, addr) == 1)
        return bits <= 128;
    return false;
}

int cfg_check_rate(const void *obj, const char *path, struct err *e)
{
    const struct cfg_rate *r = obj;
    for (size_t i = 0; i < r->white_list.n; i++)
        if (!valid_ip_or_cidr(r->white_list.v[i]))
            return err_set(e, ERR_INVALID, "%s.white-list[%zu]: \"%.100s\" is not an IP address or CIDR",
                           path, i, r->white_list.v[i]);
    return 0;
}

int cfg_check_http(const void *obj, const char *path, struct err *e)
{
    const struct cfg_http *h = obj;
    if (h->context_path && h->context_path[0] != '/')
        return err_set(e, ERR_INVALID, "%s.context-path: must start with '/'", path);
    if (h->context_path && strstr(h->context_path, "//"))
        return err_set(e, ERR_INVALID, "%s.context-path: must not contain '//'", path);
    return 0;
}

/* ---- credentials, TLS, secret agents ------------------------------------------------- */

int cfg_check_secret_agent(const void *obj, const char *path, struct err *e)
{
    const struct cfg_secret_agent *a = obj;
    bool tcp = strcasecmp(a->connection_type, "tcp") == 0;
    if (tcp && !a->port.set)
        return err_set(e, ERR_INVALID, "%s.port: required for connection-type tcp", path);
    if (!tcp && a->tls_ca_file)
        return err_set(e, ERR_INVALID, "%s.tls-ca-file: TLS is only available with connection-type tcp", path);
    return 0;
}

int cfg_check_credentials(const void *obj, const char *path, struct err *e)
{
    const struct cfg_credentials *c = obj;
    if (exclusive(c->password, c->password_path, path, "password", "password-path", e) ||
        exclusive(c->secret_agent, c->secret_agent_name, path, "secret-agent", "secret-agent-name", e))
        return ERR_INVALID;
    bool pki = c->auth_mode && strcasecmp(c->auth_mode, "PKI") == 0;
    if (!pki && (c->password || c->password_path) && (!c->user || !c->user[0]))
        return err_set(e, ERR_INVALID, "%s.user: required when a password is given", path);
    return 0;
}

int cfg_check_tls(const void *obj, const char *path, struct err *e)
{
    const struct cfg_tls *t = obj;
    if (t->cert_file && !t->key_file)
        return err_set(e, ERR_INVALID, "%s.key-file: required when cert-file is given", path);
    if (t->key_file && !t->cert_file)
        return err_set(e, ERR_INVALID, "%s.cert-file: required when key-file is given", path);
    if (t->key_file_password && !t->key_file)
        return err_set(e, ERR_INVALID, "%s.key-file-password: given without key-file", path);
    if (t->protocols) {
        /* Apache SSLProtocol syntax: [+-]TLSv1.2 [+-]TLSv1.3 ... or all */
        char buf[256];
        str_printf(buf, sizeof buf, "%s", t->protocols);
        char *save = NULL;
        for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
            const char *p = (*tok == '+' || *tok == '-') ? tok + 1 : tok;
            if (strcasecmp(p, "all") && strcmp(p, "TLSv1") && strcmp(p, "TLSv1.1") &&
                strcmp(p, "TLSv1.2") && strcmp(p, "TLSv1.3") && strcasecmp(p, "SSLv3"))
                return err_set(e, ERR_INVALID, "%s.protocols: unknown protocol \"%.50s\"", path, tok);
        }
    }
    return 0;
}

/* ---- storage --------------------------------------------------------------------------- */

int cfg_check_s3(const void *obj, const char *path, struct err *e)
{
    const struct cfg_s3_storage *s = obj;
    if (s->path && strncmp(s->path, "s3://", 5) == 0)
        return err_set(e, ERR_INVALID, "%s.path: must be a key prefix, not an s3:// URL", path);
    if (!s->access_key_id != !s->secret_access_key)
        return err_set(e, ERR_INVALID, "%s: access-key-id and secret-access-key must be given together", path);
    return exclusive(s->secret_agent, s->secret_agent_name, path, "secret-agent", "secret-agent-name", e);
}

int cfg_check_azure(const void *obj, const char *path, struct err *e)
{
    const struct cfg_azure_storage *a = obj;
    bool shared = a->account_name || a->account_key;
    bool ad = a->tenant_id || a->client_id || a->client_secret;
    if (shared && ad)
        return err_set(e, ERR_INVALID, "%s: ambiguous authentication: both shared key (account-name/account-key) "
                       "and Azure AD (tenant-id/client-id/client-secret) are set", path);
    if (a->account_key && !a->account_name)
        return err_set(e, ERR_INVALID, "%s.account-name: required with account-key", path);
    if (ad && !(a->tenant_id && a->client_id && a->client_secret))
        return err_set(e, ERR_INVALID, "%s: Azure AD authentication needs tenant-id, client-id and client-secret", path);
    return exclusive(a->secret_agent, a->secret_agent_name, path, "secret-agent", "secret-agent-name", e);
}

int cfg_check_gcp(const void *obj, const char *path, struct err *e)
{
    const struct cfg_gcp_storage *g = obj;
    if (exclusive(g->key, g->key_file_path, path, "key", "key-file-path", e))
        return ERR_INVALID;
    return exclusive(g->secret_agent, g->secret_agent_name, path, "secret-agent", "secret-agent-name", e);
}

int cfg_check_storage(const void *obj, const char *path, struct err *e)
{
    const struct cfg_storage *s = obj;
    int kinds = !!s->local + !!s->s3 + !!s->azure + !!s->gcp;
    if (kinds != 1)
        return err_set(e, ERR_INVALID, "%s: exactly one of local-storage, s3-storage, azure-storage, "
                       "gcp-storage must be given (found %d)", path, kinds);
    return 0;
}

/* ---- policies -------------------------------------------------------------------------- */

int cfg_check_retention(const void *obj, const char *path, struct err *e)
{
    const struct cfg_retention *r = obj;
    if (r->full.set && r->incremental.set && r->incremental.v > r->full.v)
        return err_set(e, ERR_INVALID, "%s.incremental: must not exceed full (%lld > %lld)", path,
                       (long long)r->incremental.v, (long long)r->full.v);
    return 0;
}

int cfg_check_encryption(const void *obj, const char *path, struct err *e)
{
    const struct cfg_encryption *c = obj;
    int sources = !!c->key_file + !!c->key_env + !!c->key_secret;
    bool none = !c->mode || strcasecmp(c->mode, "NONE") == 0;
    if (sources > 1)
        return err_set(e, ERR_INVALID, "%s: only one of key-file, key-env, key-secret may be given", path);
    if (!none && sources == 0)
        return err_set(e, ERR_INVALID, "%s: mode %s needs one of key-file, key-env, key-secret", path, c->mode);
    if (c->key_secret && !cfg_is_secret_ref(c->key_secret) &&
        strcmp(c->key_secret, CFG_SECRET_PLACEHOLDER) != 0)
        return err_set(e, ERR_INVALID, "%s.key-secret: must be a secrets:<resource>:<key> reference", path);
    return 0;
}

/* ---- routines -------------------------------------------------------------------------- */

static int parse_uint(const char *s, const char *end, long *out)
{
    if (s == end || end - s > 9)
        return -1;
    long v = 0;
    for (const char *p = s; p < end; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

int cfg_parse_partition_list(const char *text, struct cfg_partition_range *out, size_t max,
                             size_t *n_out, struct err *e)
{
    unsigned char *used = calloc(CFG_PARTITIONS, 1);
    if (!used)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t n = 0;
    int rc = 0;
    const char *p = text;
    if (!*p)
        rc = err_set(e, ERR_INVALID, "must not be empty");
    while (rc == 0 && *p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *dash = memchr(p, '-', (size_t)(end - p));
        long begin, count = 1;
        if (dash ? (parse_uint(p, dash, &begin) || parse_uint(dash + 1, end, &count))
                 : parse_uint(p, end, &begin)) {
            rc = err_set(e, ERR_INVALID, "\"%.*s\" is not a partition id or start-count range",
                         (int)(end - p), p);
            break;
        }
        if (begin >= CFG_PARTITIONS)
            rc = err_set(e, ERR_INVALID, "partition %ld out of range 0..4095", begin);
        else if (count < 1)
            rc = err_set(e, ERR_INVALID, "range \"%.*s\": count must be >= 1", (int)(end - p), p);
        else if (begin + count > CFG_PARTITIONS)
            rc = err_set(e, ERR_INVALID, "range \"%.*s\" goes past partition 4095", (int)(end - p), p);
        for (long i = begin; rc == 0 && i < begin + count; i++) {
            if (used[i])
                rc = err_set(e, ERR_INVALID, "partition %ld is listed twice", i);
            used[i] = 1;
        }
        if (rc == 0) {
            if (n < max && out) {
                out[n].begin = (int)begin;
                out[n].count = (int)count;
            }
            n++;
        }
        if (rc == 0 && *end == ',' && end[1] == '\0')
            rc = err_set(e, ERR_INVALID, "trailing comma");
        p = *end ? end + 1 : end;
    }
    free(used);
    if (rc == 0 && n_out)
        *n_out = n;
    return rc;
}

int cfg_check_node_spec(const char *spec, struct err *e)
{
    const char *colon = strrchr(spec, ':');
    if (!colon) { /* node id: hex digits as printed by the `node` info command */
        for (const char *p = spec; *p; p++)
            if (!isxdigit((unsigned char)*p))
                return err_set(e, ERR_INVALID, "\"%.100s\" is neither host:port nor a node id", spec);
        return *spec ? 0 : err_set(e, ERR_INVALID, "empty node");
    }
    long port;
    if (parse_uint(colon + 1, colon + strlen(colon), &port) || port < 1 || port > 65535)
        return err_set(e, ERR_INVALID, "\"%.100s\": port must be 1..65535", spec);
    if (colon == spec)
        return err_set(e, ERR_INVALID, "\"%.100s\": host is missing", spec);
    return 0;
}

int cfg_check_cron(const char *expr, struct err *e)
{
    return cron_validate(expr, e);
}

int cfg_check_routine(const void *obj, const char *path, struct err *e)
{
    const struct cfg_routine *r = obj;
    if (cfg_check_cron(r->interval_cron, e))
        return err_prefix(e, "%s.interval-cron", path);
    if (r->incr_interval_cron && r->incr_interval_cron[0] && cfg_check_cron(r->incr_interval_cron, e))
        return err_prefix(e, "%s.incr-interval-cron", path);
    bool parts = r->partition_list != NULL, nodes = r->node_list.n > 0, racks = r->rack_list.n > 0;
    if (exclusive(parts, nodes, path, "partition-list", "node-list", e) ||
        exclusive(parts, racks, path, "partition-list", "rack-list", e) ||
        exclusive(nodes, racks, path, "node-list", "rack-list", e))
        return ERR_INVALID;
    if (parts && cfg_parse_partition_list(r->partition_list, NULL, 0, NULL, e))
        return err_prefix(e, "%s.partition-list", path);
    for (size_t i = 0; i < r->node_list.n; i++)
        if (cfg_check_node_spec(r->node_list.v[i], e))
            return err_prefix(e, "%s.node-list[%zu]", path, i);
    return 0;
}

/* ---- cross-entity rules ---------------------------------------------------------------- */

static int check_ref(const cfg_map *m, const char *name, const char *path, const char *what,
                     struct err *e)
{
    if (name && name[0] && !cfg_map_get(m, name))
        return err_set(e, ERR_INVALID, "%s: %s \"%.100s\" is not defined", path, what, name);
    return 0;
}

static int64_t storage_min_part_size(const struct cfg_storage *s, bool *cloud)
{
    const cfg_int *mps = s->s3 ? &s->s3->min_part_size
                       : s->azure ? &s->azure->min_part_size
                       : s->gcp ? &s->gcp->min_part_size : NULL;
    *cloud = mps != NULL;
    return (mps && mps->set) ? mps->v : DEFAULT_MIN_PART_SIZE;
}

static const char *storage_agent_name(const struct cfg_storage *s)
{
    return s->s3 ? s->s3->secret_agent_name
         : s->azure ? s->azure->secret_agent_name
         : s->gcp ? s->gcp->secret_agent_name : NULL;
}

static int check_routine_refs(const struct cfg *c, const char *name, const struct cfg_routine *r,
                              struct err *e)
{
    char path[300];
    str_printf(path, sizeof path, "backup-routines.%s", name);
    char p[400];
    str_printf(p, sizeof p, "%s.source-cluster", path);
    if (check_ref(&c->clusters, r->source_cluster, p, "cluster", e))
        return ERR_INVALID;
    str_printf(p, sizeof p, "%s.storage", path);
    if (check_ref(&c->storage, r->storage, p, "storage", e))
        return ERR_INVALID;
    str_printf(p, sizeof p, "%s.backup-policy", path);
    if (check_ref(&c->policies, r->backup_policy, p, "backup policy", e))
        return ERR_INVALID;
    str_printf(p, sizeof p, "%s.secret-agent", path);
    if (check_ref(&c->secret_agents, r->secret_agent, p, "secret agent", e))
        return ERR_INVALID;

    const struct cfg_cluster *cl = cfg_map_get(&c->clusters, r->source_cluster);
    if (cl->prefer_racks.n > 0 && (r->partition_list || r->node_list.n || r->rack_list.n))
        return err_set(e, ERR_INVALID, "%s: partition-list, node-list and rack-list cannot be used with "
                       "prefer-racks of cluster \"%.100s\"", path, r->source_cluster);

    bool cloud;
    int64_t part = storage_min_part_size(cfg_map_get(&c->storage, r->storage), &cloud);
    const struct cfg_policy *pol = r->backup_policy ? cfg_map_get(&c->policies, r->backup_policy) : NULL;
    int64_t limit_mb = (pol && pol->file_limit.set) ? pol->file_limit.v : DEFAULT_FILE_LIMIT_MB;
    if (cloud && part > 0 && (limit_mb * MIB + part - 1) / part >= CLOUD_MAX_PARTS)
        return err_set(e, ERR_INVALID, "%s: file-limit %lld MB needs %lld upload parts of min-part-size %lld "
                       "bytes; the limit is %d", path, (long long)limit_mb,
                       (long long)((limit_mb * MIB + part - 1) / part), (long long)part, CLOUD_MAX_PARTS - 1);
    return 0;
}

int cfg_validate_refs(const struct cfg *c, struct err *e)
{
    char path[300];
    for (size_t i = 0; i < c->clusters.n; i++) {
        const struct cfg_cluster *cl = c->clusters.items[i];
        str_printf(path, sizeof path, "aerospike-clusters.%s.credentials.secret-agent-name", c->clusters.names[i]);
        if (cl->credentials && check_ref(&c->secret_agents, cl->credentials->secret_agent_name, path,
                                         "secret agent", e))
            return ERR_INVALID;
    }
    for (size_t i = 0; i < c->storage.n; i++) {
        str_printf(path, sizeof path, "storage.%s.secret-agent-name", c->storage.names[i]);
        if (check_ref(&c->secret_agents, storage_agent_name(c->storage.items[i]), path, "secret agent", e))
            return ERR_INVALID;
    }
    for (size_t i = 0; i < c->routines.n; i++)
        if (check_routine_refs(c, c->routines.names[i], c->routines.items[i], e))
            return ERR_INVALID;
    return 0;
}

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

const char *cfg_find_user(const struct cfg *c, const char *section_key, const char *name,
                          char *buf, size_t cap)
{
    for (size_t i = 0; i < c->routines.n; i++) {
        const struct cfg_routine *r = c->routines.items[i];
        bool uses = (strcmp(section_key, "aerospike-clusters") == 0 && same(r->source_cluster, name)) ||
                    (strcmp(section_key, "storage") == 0 && same(r->storage, name)) ||
                    (strcmp(section_key, "backup-policies") == 0 && same(r->backup_policy, name)) ||
                    (strcmp(section_key, "secret-agents") == 0 && same(r->secret_agent, name));
        if (uses) {
            str_printf(buf, cap, "routine \"%s\"", c->routines.names[i]);
            return buf;
        }
    }
    if (strcmp(section_key, "secret-agents") != 0)
        return NULL;
    for (size_t i = 0; i < c->clusters.n; i++) {
        const struct cfg_cluster *cl = c->clusters.items[i];
        if (cl->credentials && same(cl->credentials->secret_agent_name, name)) {
            str_printf(buf, cap, "cluster \"%s\"", c->clusters.names[i]);
            return buf;
        }
    }
    for (size_t i = 0; i < c->storage.n; i++) {
        if (same(storage_agent_name(c->storage.items[i]), name)) {
            str_printf(buf, cap, "storage \"%s\"", c->storage.names[i]);
            return buf;
        }
    }
    return NULL;
}
