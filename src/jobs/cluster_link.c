/*
 * cluster_link.c - configuration -> client cluster (see cluster_link.h). Secrets are read
 * here (password, a secrets: reference or password-path, see secret/secret_config.h) and
 * handed to the client, never logged.
 */
#include "jobs/cluster_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_schema.h"
#include "secret/secret_agent.h"

int job_cluster_connect(const char *name, const struct cfg_cluster *cc, const struct secret_scope *scope,
                        struct as_cluster **out, struct err *e)
{
    size_t n = cc->seed_nodes.n;
    struct as_host *seeds = calloc(n ? n : 1, sizeof *seeds);
    if (!seeds)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const struct cfg_seed_node *sn = cc->seed_nodes.v[i];
        snprintf(seeds[i].name, sizeof seeds[i].name, "%s", sn->host_name);
        seeds[i].port = (uint16_t)sn->port.v;
        if (sn->tls_name)
            snprintf(seeds[i].tls_name, sizeof seeds[i].tls_name, "%s", sn->tls_name);
    }
    struct as_cluster_config cfg = {
        .seeds = seeds,
        .n_seeds = n,
        .use_services_alternate = cc->use_services_alternate.set && cc->use_services_alternate.v,
        .connect_timeout_ms = cc->conn_timeout.set ? (uint32_t)cc->conn_timeout.v : 30000,
    };
    char *password = NULL;
    int rc = 0;
    if (cc->credentials) {
        cfg.user = cc->credentials->user;
        if (cc->credentials->auth_mode && as_auth_mode_parse(cc->credentials->auth_mode, &cfg.auth_mode))
            rc = err_set(e, ERR_INVALID, "cluster %s: unknown auth-mode", name);
        if (rc == 0)
            rc = secret_cluster_password(cc->credentials, scope, name, &password, e);
        cfg.password = password;
    }
    if (rc == 0 && cc->tls) {
        if (cc->tls->key_file_password && cfg_is_secret_ref(cc->tls->key_file_password))
            rc = err_set(e, ERR_INVALID, "cluster %s: tls.key-file-password takes env:VAR, file:PATH or a "
                         "literal, not a secrets: reference (as ABS)", name);
        cfg.tls = (struct as_tls_config){
            .enable = true,
            .ca_file = cc->tls->ca_file,
            .ca_path = cc->tls->ca_path,
            .cert_file = cc->tls->cert_file,
            .key_file = cc->tls->key_file,
            .key_password = cc->tls->key_file_password,
            .protocols = cc->tls->protocols,
            .cipher_suite = cc->tls->cipher_suite,
        };
        for (size_t i = 0; cc->tls->name && i < n; i++)
            if (!seeds[i].tls_name[0])
                snprintf(seeds[i].tls_name, sizeof seeds[i].tls_name, "%s", cc->tls->name);
    }
    if (rc == 0 && as_cluster_new(&cfg, out, e))
        rc = err_prefix(e, "cluster %s", name);
    secret_free(password);
    free(seeds);
    return rc;
}
