/*
 * as_cluster.c - seeds, peers, tend passes, partition maps, node pools and sessions (see
 * as_cluster.h for the model).
 *
 * Locks:
 *   tend_mu   serialises tend passes (the tend connections of all nodes belong to it);
 *   lock      (rwlock) the node array and the partition maps; readers take it briefly to
 *             look up a node and acquire a reference;
 *   node->sess_mu  the node's session token;
 *   th_mu/th_cv    the tend thread's holders count and stop flag.
 * Order: tend_mu -> lock -> sess_mu.
 */
#include "aerospike/as_cluster.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aerospike/as_info.h"
#include "util/log.h"
#include "version.h"

#define NODE_MAX_FAILURES 5
/* The client part of user-agent-set ("<language>-<version>", as the official clients send). */
#define AS_CLIENT_ID "c-abs-" ABS_VERSION

struct as_node {
    struct as_cluster *cluster;
    atomic_int refs;
    atomic_bool active;
    char name[AS_NODE_NAME_MAX + 1];
    char host[AS_HOST_NAME_MAX + 1];
    uint16_t port;
    char tls_name[AS_HOST_NAME_MAX + 1];
    char addr[AS_HOST_NAME_MAX + 16];
    char build[32];
    struct as_pool pool;
    /* tend state (tend_mu) */
    struct as_conn *tend_conn;
    int64_t partition_gen; /* last applied; INT64_MIN = never */
    int64_t peers_gen;
    unsigned failures;
    bool listed;           /* named by some peers list in this pass */
    bool partitions_changed;
    /* session (sess_mu) */
    pthread_mutex_t sess_mu;
    struct as_session session;
    bool no_security;
};

struct pmap {
    char ns[AS_NAMESPACE_NAME_MAX + 1];
    unsigned n_cols;
    struct as_node *owner[AS_MAX_REPLICAS][AS_PARTITIONS];
    uint32_t regime[AS_PARTITIONS];
};

struct as_cluster {
    struct as_cluster_config cfg; /* strings point into the copies below */
    struct as_host *seeds;
    char *user;
    char *password;
    char *cluster_name;
    char *app_id;
    char credential[AS_CREDENTIAL_LEN + 1];
    bool need_login;
    struct as_tls_ctx *tls;

    pthread_rwlock_t lock;
    struct as_node **nodes;
    size_t n_nodes;
    atomic_size_t rr;
    struct pmap **maps;
    size_t n_maps;

    pthread_mutex_t tend_mu;
    atomic_uint_fast64_t tend_count;

    pthread_mutex_t th_mu;
    pthread_cond_t th_cv;
    unsigned holders;
    bool th_started;
    bool th_stop;
    pthread_t th;
};

/* ---- small helpers --------------------------------------------------------------------- */

const struct as_cluster_config *as_cluster_config_of(const struct as_cluster *c)
{
    return &c->cfg;
}

int as_host_parse(const char *s, struct as_host *h, struct err *e)
{
    memset(h, 0, sizeof *h);
    if (!s || !*s)
        return err_set(e, ERR_INVALID, "empty host");
    const char *hs = s, *ps = NULL;
    size_t hl = strlen(s);
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb)
            return err_set(e, ERR_INVALID, "host '%s': missing ']'", s);
        hs = s + 1;
        hl = (size_t)(rb - hs);
        if (rb[1] == ':')
            ps = rb + 2;
        else if (rb[1])
            return err_set(e, ERR_INVALID, "host '%s': junk after ']'", s);
    } else {
        const char *colon = strchr(s, ':');
        if (colon && !strchr(colon + 1, ':')) {
            hl = (size_t)(colon - s);
            ps = colon + 1;
        }
    }
    if (hl == 0 || hl > AS_HOST_NAME_MAX)
        return err_set(e, ERR_INVALID, "host '%s': bad name", s);
    memcpy(h->name, hs, hl);
    h->port = 3000;
    if (ps) {
        uint64_t p;
        if (!as_info_parse_u64(ps, strlen(ps), &p) || p == 0 || p > 65535)
            return err_set(e, ERR_INVALID, "host '%s': bad port", s);
        h->port = (uint16_t)p;
    }
    return 0;
}

static void fmt_addr(char *out, size_t cap, const char *host, uint16_t port)
{
    if (strchr(host, ':'))
        snprintf(out, cap, "[%s]:%u", host, port);
    else
        snprintf(out, cap, "%s:%u", host, port);
}

static uint32_t cfg_or(uint32_t v, uint32_t dflt)
{
    return v ? v : dflt;
}

/* ---- nodes ------------------------------------------------------------------------------ */

void as_node_acquire(struct as_node *n)
{
    atomic_fetch_add(&n->refs, 1);
}

static void node_free(struct as_node *n)
{
    as_conn_destroy(n->tend_conn);
    as_pool_destroy(&n->pool);
    as_session_clear(&n->session);
    pthread_mutex_destroy(&n->sess_mu);
    free(n);
}

void as_node_release(struct as_node *n)
{
    if (n && atomic_fetch_sub(&n->refs, 1) == 1)
        node_free(n);
}

const char *as_node_name(const struct as_node *n)
{
    return n->name;
}

const char *as_node_address(const struct as_node *n)
{
    return n->addr;
}

const char *as_node_build(const struct as_node *n)
{
    return n->build;
}

bool as_node_active(const struct as_node *n)
{
    return atomic_load(&((struct as_node *)n)->active);
}

/* Login or authenticate a fresh connection. `s` is the session to use and update (the
 * node's, or a local one while probing a node that does not exist yet). */
static int conn_login(struct as_cluster *c, struct as_conn *conn, pthread_mutex_t *mu,
                      struct as_session *s, bool *no_security, struct err *e)
{
    if (!c->need_login)
        return 0;
    uint32_t to = cfg_or(c->cfg.login_timeout_ms, 10000);
    struct as_session cur = { 0 };
    if (mu)
        pthread_mutex_lock(mu);
    bool nosec = *no_security;
    int rc = 0;
    if (!nosec && !as_session_expired(s, as_now_ms()))
        rc = as_session_copy(&cur, s, e);
    if (mu)
        pthread_mutex_unlock(mu);
    if (rc || nosec)
        return rc;
    if (cur.token) {
        int result;
        rc = as_auth_authenticate(conn, c->cfg.auth_mode, c->user, &cur, &result, to, e);
        as_session_clear(&cur);
        if (rc == 0)
            return 0;
        if (result < 0)
            return rc; /* network failure: the connection is unusable */
        LOG_D("as", "%s: session refused (%s), logging in again", conn->peer, as_result_name(result));
    }
    struct as_session fresh = { 0 };
    bool ns = false;
    rc = as_auth_login(conn, c->cfg.auth_mode, c->user, c->need_login ? c->credential : NULL,
                       c->password, &fresh, &ns, to, e);
    if (rc)
        return rc;
    if (mu)
        pthread_mutex_lock(mu);
    if (ns) {
        *no_security = true;
    } else {
        as_session_clear(s);
        *s = fresh; /* ownership moves */
        fresh.token = NULL;
    }
    if (mu)
        pthread_mutex_unlock(mu);
    as_session_clear(&fresh);
    return 0;
}

static int node_open_conn(struct as_node *n, struct as_conn **out, struct err *e)
{
    struct as_cluster *c = n->cluster;
    struct as_conn *conn;
    int rc = as_conn_new(n->host, n->port, c->tls, n->tls_name, cfg_or(c->cfg.connect_timeout_ms, 10000),
                         &conn, e);
    if (rc)
        return err_prefix(e, "node %s", n->name);
    rc = conn_login(c, conn, &n->sess_mu, &n->session, &n->no_security, e);
    if (rc) {
        as_conn_destroy(conn);
        return err_prefix(e, "node %s", n->name);
    }
    *out = conn;
    return 0;
}

int as_node_conn_get(struct as_node *n, struct as_conn **conn, struct err *e)
{
    *conn = NULL;
    int rc = as_pool_get(&n->pool, conn, e);
    if (rc == 1)
        return 0;
    if (rc < 0)
        return err_prefix(e, "node %s", n->name);
    rc = node_open_conn(n, conn, e);
    if (rc)
        as_pool_drop(&n->pool, NULL);
    return rc;
}

void as_node_conn_put(struct as_node *n, struct as_conn *conn)
{
    as_pool_put(&n->pool, conn);
}

void as_node_conn_drop(struct as_node *n, struct as_conn *conn)
{
    as_pool_drop(&n->pool, conn);
}

int as_node_info(struct as_node *n, const char *cmds, struct as_buf *reply, struct err *e)
{
    struct as_conn *conn;
    int rc = as_node_conn_get(n, &conn, e);
    if (rc)
        return rc;
    uint32_t to = cfg_or(n->cluster->cfg.info_timeout_ms, 10000);
    rc = as_info_exec(conn, cmds, reply, as_deadline_in(to), 0, e);
    if (rc) {
        as_node_conn_drop(n, conn);
        return err_prefix(e, "node %s", n->name);
    }
    as_node_conn_put(n, conn);
    return 0;
}

/* ---- user agent ---------------------------------------------------------------------------- */

/* True when a "major.minor..." build is at least maj.min. */
static bool build_at_least(const char *build, unsigned maj, unsigned min)
{
    unsigned a = 0, b = 0;
    if (sscanf(build, "%u.%u", &a, &b) != 2)
        return false;
    return a > maj || (a == maj && b >= min);
}

/* Servers 8.1+ keep a user agent per connection: "1,<client>-<version>,<app id>" in base64,
 * sent like the official clients on every new tend connection. A refusal is only logged. */
static void send_user_agent(struct as_cluster *c, struct as_conn *conn, const char *build,
                            const char *node)
{
    if (!build_at_least(build, 8, 1))
        return;
    char agent[65], b64[100], cmd[160];
    int n = snprintf(agent, sizeof agent, "1,%s,%s", AS_CLIENT_ID, c->app_id);
    if (n < 0)
        return;
    size_t bl = as_b64_encode((const uint8_t *)agent, strlen(agent), b64);
    b64[bl] = 0;
    snprintf(cmd, sizeof cmd, "user-agent-set:value=%s", b64);
    struct as_buf reply;
    as_buf_init(&reply);
    struct err e;
    err_clear(&e);
    const char *v = NULL;
    size_t vl = 0;
    int rc = as_info_exec(conn, cmd, &reply, as_deadline_in(cfg_or(c->cfg.info_timeout_ms, 10000)), 0, &e);
    if (rc == 0 && as_info_reply_value(&reply, cmd, &v, &vl))
        rc = as_info_check(node, "user-agent-set", v, vl, NULL, &e);
    if (rc)
        LOG_D("as", "node %s: user-agent-set: %s", node, e.msg);
    as_buf_free(&reply);
}

/* ---- probing a host ------------------------------------------------------------------------ */

static bool want_login(const struct as_cluster *c)
{
    return c->need_login;
}

/* Connects to host:port, logs in, validates with node/partition-generation/build
 * [/cluster-name]; `expect` (a peer's id) must match when given. */
static int node_probe(struct as_cluster *c, const char *host, uint16_t port, const char *tls_name,
                      const char *expect, struct as_node **out, struct err *e)
{
    *out = NULL;
    struct as_conn *conn;
    int rc = as_conn_new(host, port, c->tls, tls_name, cfg_or(c->cfg.connect_timeout_ms, 10000),
                         &conn, e);
    if (rc)
        return rc;
    struct as_session s = { 0 };
    bool nosec = false;
    rc = conn_login(c, conn, NULL, &s, &nosec, e);
    if (rc) {
        as_conn_destroy(conn);
        return rc;
    }
    bool want_name = c->cluster_name && *c->cluster_name;
    const char *cmds = want_name ? "node\npartition-generation\nbuild\ncluster-name\n"
                                 : "node\npartition-generation\nbuild\n";
    struct as_buf reply;
    as_buf_init(&reply);
    rc = as_info_exec(conn, cmds, &reply, as_deadline_in(cfg_or(c->cfg.info_timeout_ms, 10000)), 0, e);
    const char *v = NULL;
    size_t vl = 0;
    char name[AS_NODE_NAME_MAX + 1] = "", build[32] = "";
    int64_t pgen = 0;
    int code = 0;
    const char *body = (const char *)reply.data;
    const char *eol = !rc && reply.len > 6 ? memchr(body, '\n', reply.len) : NULL;
    /* a secured node answers the whole request with one ERROR:80 line before a login */
    if (eol && !want_login(c) && memcmp(body, "ERROR:", 6) == 0 &&
        as_info_value_error(body, (size_t)(eol - body), &code, &v, &vl) &&
        code == AS_SEC_ERR_NOT_AUTHENTICATED)
        rc = err_set(e, ERR_INVALID, "%s: the server requires a login (%s (%d)) but no user is configured",
                     conn->peer, as_result_name(code), code);
    if (!rc) {
        if (!as_info_reply_value(&reply, "node", &v, &vl) || vl == 0 || vl > AS_NODE_NAME_MAX ||
            as_info_check(NULL, "node", v, vl, NULL, e) != 0)
            rc = err_set(e, ERR_INVALID, "%s: no valid node name", conn->peer);
        else
            memcpy(name, v, vl), name[vl] = 0;
    }
    if (!rc) {
        if (!as_info_reply_value(&reply, "partition-generation", &v, &vl) ||
            !as_info_parse_i64(v, vl, &pgen))
            rc = err_set(e, ERR_INVALID, "%s: no valid partition-generation", conn->peer);
        else if (pgen == -1)
            rc = err_set(e, ERR_UNAVAILABLE, "%s: node %s has not finished its first partition balance",
                         conn->peer, name);
    }
    if (!rc && as_info_reply_value(&reply, "build", &v, &vl)) {
        size_t k = vl < sizeof build - 1 ? vl : sizeof build - 1;
        memcpy(build, v, k);
        build[k] = 0;
    }
    if (!rc && want_name) {
        if (!as_info_reply_value(&reply, "cluster-name", &v, &vl) ||
            strlen(c->cluster_name) != vl || memcmp(v, c->cluster_name, vl) != 0)
            rc = err_set(e, ERR_INVALID, "%s: node %s is not in cluster '%s'", conn->peer, name,
                         c->cluster_name);
    }
    if (!rc && expect && strcasecmp(expect, name) != 0)
        rc = err_set(e, ERR_INVALID, "%s: node id %s, peers list says %s", conn->peer, name, expect);
    as_buf_free(&reply);
    if (rc) {
        as_session_clear(&s);
        as_conn_destroy(conn);
        return rc;
    }
    struct as_node *n = calloc(1, sizeof *n);
    if (!n) {
        as_session_clear(&s);
        as_conn_destroy(conn);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    n->cluster = c;
    atomic_init(&n->refs, 1);
    atomic_init(&n->active, true);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = port;
    snprintf(n->tls_name, sizeof n->tls_name, "%s", tls_name ? tls_name : "");
    fmt_addr(n->addr, sizeof n->addr, host, port);
    snprintf(n->build, sizeof n->build, "%s", build);
    as_pool_init(&n->pool, cfg_or(c->cfg.max_conns_per_node, 256), cfg_or(c->cfg.idle_timeout_ms, 55000));
    n->tend_conn = conn;
    n->partition_gen = INT64_MIN;
    n->peers_gen = INT64_MIN;
    n->partitions_changed = true;
    pthread_mutex_init(&n->sess_mu, NULL);
    n->session = s;
    n->no_security = nosec;
    send_user_agent(c, conn, n->build, n->name);
    LOG_D("as", "node %s at %s (build %s) added", n->name, n->addr, n->build);
    *out = n;
    return 0;
}

/* ---- node list and maps ------------------------------------------------------------------ */

static struct as_node *find_node_locked(struct as_cluster *c, const char *name)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (strcasecmp(c->nodes[i]->name, name) == 0)
            return c->nodes[i];
    return NULL;
}

static int add_node(struct as_cluster *c, struct as_node *n, struct err *e)
{
    pthread_rwlock_wrlock(&c->lock);
    struct as_node **g = realloc(c->nodes, (c->n_nodes + 1) * sizeof *g);
    if (!g) {
        pthread_rwlock_unlock(&c->lock);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    c->nodes = g;
    c->nodes[c->n_nodes++] = n; /* the cluster's reference */
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

static void remove_node(struct as_cluster *c, struct as_node *n, const char *why)
{
    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (c->nodes[i] != n)
            continue;
        memmove(&c->nodes[i], &c->nodes[i + 1], (c->n_nodes - i - 1) * sizeof *c->nodes);
        c->n_nodes--;
        for (size_t m = 0; m < c->n_maps; m++)
            for (unsigned col = 0; col < AS_MAX_REPLICAS; col++)
                for (unsigned p = 0; p < AS_PARTITIONS; p++)
                    if (c->maps[m]->owner[col][p] == n)
                        c->maps[m]->owner[col][p] = NULL;
        break;
    }
    pthread_rwlock_unlock(&c->lock);
    atomic_store(&n->active, false);
    LOG_I("as", "node %s at %s removed from the cluster view: %s", n->name, n->addr, why);
    as_conn_destroy(n->tend_conn);
    n->tend_conn = NULL;
    as_pool_close_idle(&n->pool);
    as_node_release(n);
}

static struct pmap *map_get_locked(struct as_cluster *c, const char *ns, bool create)
{
    for (size_t i = 0; i < c->n_maps; i++)
        if (strcmp(c->maps[i]->ns, ns) == 0)
            return c->maps[i];
    if (!create)
        return NULL;
    struct pmap *m = calloc(1, sizeof *m);
    struct pmap **g = m ? realloc(c->maps, (c->n_maps + 1) * sizeof *g) : NULL;
    if (!g) {
        free(m);
        return NULL;
    }
    c->maps = g;
    snprintf(m->ns, sizeof m->ns, "%s", ns);
    c->maps[c->n_maps++] = m;
    return m;
}

struct replicas_ctx {
    struct as_cluster *c;
    struct as_node *n;
};

static int apply_replicas(void *ctx, const char *ns, uint32_t regime, unsigned column,
                          unsigned n_columns, const uint8_t bitmap[AS_PARTITIONS / 8])
{
    struct replicas_ctx *r = ctx;
    if (column >= AS_MAX_REPLICAS)
        return 0;
    struct pmap *m = map_get_locked(r->c, ns, true);
    if (!m)
        return ERR_NOMEM;
    unsigned cols = n_columns > AS_MAX_REPLICAS ? AS_MAX_REPLICAS : n_columns;
    if (cols > m->n_cols)
        m->n_cols = cols;
    for (unsigned p = 0; p < AS_PARTITIONS; p++) {
        if (!(bitmap[p >> 3] & (0x80 >> (p & 7))))
            continue;
        if (regime && regime < m->regime[p])
            continue; /* SC: a stale claim */
        m->owner[column][p] = r->n;
        if (regime > m->regime[p])
            m->regime[p] = regime;
    }
    return 0;
}

/* ---- tend ---------------------------------------------------------------------------------- */

static int tend_exchange(struct as_cluster *c, struct as_node *n, const char *cmds,
                         struct as_buf *reply, struct err *e)
{
    if (!n->tend_conn) {
        int rc = node_open_conn(n, &n->tend_conn, e);
        if (rc)
            return rc;
        send_user_agent(c, n->tend_conn, n->build, n->name);
    }
    int rc = as_info_exec(n->tend_conn, cmds, reply,
                          as_deadline_in(cfg_or(c->cfg.info_timeout_ms, 10000)), 0, e);
    if (rc) {
        as_conn_destroy(n->tend_conn);
        n->tend_conn = NULL;
        return err_prefix(e, "node %s", n->name);
    }
    return 0;
}

static int seed(struct as_cluster *c, struct err *e)
{
    int rc = err_set(e, ERR_UNAVAILABLE, "no seed host configured");
    for (size_t i = 0; i < c->cfg.n_seeds; i++) {
        const struct as_host *h = &c->seeds[i];
        struct as_node *n;
        struct err se;
        err_clear(&se);
        rc = node_probe(c, h->name, h->port ? h->port : 3000, h->tls_name, NULL, &n, &se);
        if (rc) {
            LOG_W("as", "seed %s: %s", h->name, se.msg);
            err_set(e, rc, "cannot use any seed (last: %s)", se.msg);
            continue;
        }
        rc = add_node(c, n, e);
        if (rc) {
            as_node_release(n);
            return rc;
        }
        return 0;
    }
    return rc;
}

static const char *peers_cmd(const struct as_cluster *c)
{
    bool tls = c->tls != NULL;
    if (c->cfg.use_services_alternate)
        return tls ? "peers-tls-alt" : "peers-clear-alt";
    return tls ? "peers-tls-std" : "peers-clear-std";
}

/* Reads one node's peers list and adds the nodes it names that we do not know yet. */
static int refresh_peers(struct as_cluster *c, struct as_node *n, struct as_buf *reply, struct err *e)
{
    const char *cmd = peers_cmd(c);
    int rc = tend_exchange(c, n, cmd, reply, e);
    if (rc)
        return rc;
    const char *v = NULL;
    size_t vl = 0;
    if (!as_info_reply_value(reply, cmd, &v, &vl))
        return err_set(e, ERR_INVALID, "node %s: no %s reply", n->name, cmd);
    rc = as_info_check(n->name, cmd, v, vl, NULL, e);
    if (rc)
        return rc;
    int64_t gen;
    struct as_peer *peers;
    size_t np;
    rc = as_info_parse_peers(v, vl, &gen, &peers, &np, e);
    if (rc)
        return err_prefix(e, "node %s", n->name);
    for (size_t i = 0; i < np; i++) {
        struct as_peer *p = &peers[i];
        pthread_rwlock_rdlock(&c->lock);
        struct as_node *known = find_node_locked(c, p->node);
        if (known)
            known->listed = true;
        pthread_rwlock_unlock(&c->lock);
        if (known)
            continue;
        const char *tls_name = p->tls_name[0] ? p->tls_name
                               : (c->cfg.n_seeds ? c->seeds[0].tls_name : "");
        struct err pe;
        err_clear(&pe);
        bool added = false;
        for (unsigned a = 0; a < p->n_addrs && !added; a++) {
            struct as_node *nn;
            if (node_probe(c, p->addrs[a].host, p->addrs[a].port, tls_name, p->node, &nn, &pe) == 0) {
                nn->listed = true;
                if (add_node(c, nn, &pe) == 0) {
                    added = true;
                    LOG_I("as", "node %s at %s joined the cluster view", nn->name, nn->addr);
                } else {
                    as_node_release(nn);
                }
            }
        }
        if (!added)
            LOG_W("as", "peer %s announced by node %s is not reachable: %s", p->node, n->name,
                  p->n_addrs ? pe.msg : "no address");
    }
    free(peers);
    n->peers_gen = gen;
    return 0;
}

static int refresh_partitions(struct as_cluster *c, struct as_node *n, struct as_buf *reply,
                              struct err *e)
{
    int rc = tend_exchange(c, n, "partition-generation\nreplicas\n", reply, e);
    if (rc)
        return rc;
    const char *v = NULL;
    size_t vl = 0;
    int64_t gen;
    if (!as_info_reply_value(reply, "partition-generation", &v, &vl) || !as_info_parse_i64(v, vl, &gen))
        return err_set(e, ERR_INVALID, "node %s: bad partition-generation reply", n->name);
    if (!as_info_reply_value(reply, "replicas", &v, &vl))
        return err_set(e, ERR_INVALID, "node %s: no replicas reply", n->name);
    rc = as_info_check(n->name, "replicas", v, vl, NULL, e);
    if (rc)
        return rc;
    struct replicas_ctx rctx = { c, n };
    pthread_rwlock_wrlock(&c->lock);
    rc = as_info_parse_replicas(v, vl, apply_replicas, &rctx, e);
    pthread_rwlock_unlock(&c->lock);
    if (rc == ERR_NOMEM)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (rc)
        return err_prefix(e, "node %s", n->name);
    n->partition_gen = gen;
    n->partitions_changed = false;
    return 0;
}

static unsigned owned_partitions_locked(struct as_cluster *c, const struct as_node *n)
{
    unsigned k = 0;
    for (size_t m = 0; m < c->n_maps; m++)
        for (unsigned p = 0; p < AS_PARTITIONS; p++)
            k += c->maps[m]->owner[0][p] == n;
    return k;
}

static int snapshot(struct as_cluster *c, struct as_node ***out, size_t *n, struct err *e)
{
    pthread_rwlock_rdlock(&c->lock);
    *n = c->n_nodes;
    *out = NULL;
    if (*n) {
        *out = malloc(*n * sizeof **out);
        if (!*out) {
            pthread_rwlock_unlock(&c->lock);
            *n = 0;
            return err_set(e, ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < *n; i++) {
            (*out)[i] = c->nodes[i];
            as_node_acquire(c->nodes[i]);
        }
    }
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

static int tend_locked(struct as_cluster *c, struct err *e)
{
    int rc;
    bool first = atomic_load(&c->tend_count) == 0;
    if (as_cluster_node_count(c) == 0) {
        rc = seed(c, e);
        if (rc)
            return rc;
        first = true;
    }
    struct as_node **nodes;
    size_t nn;
    rc = snapshot(c, &nodes, &nn, e);
    if (rc)
        return rc;
    struct as_buf reply;
    as_buf_init(&reply);
    bool need_peers = first;
    for (size_t i = 0; i < nn; i++) {
        struct as_node *n = nodes[i];
        n->listed = false;
        struct err ne;
        err_clear(&ne);
        const char *v = NULL;
        size_t vl = 0;
        int64_t pg, ptg;
        if (n->peers_gen == INT64_MIN && n->partition_gen == INT64_MIN)
            continue; /* just validated: peers and replicas come next, as the C client does */
        int r = tend_exchange(c, n, "node\npeers-generation\npartition-generation\n", &reply, &ne);
        if (!r) {
            if (!as_info_reply_value(&reply, "node", &v, &vl) || vl != strlen(n->name) ||
                strncasecmp(v, n->name, vl) != 0) {
                atomic_store(&n->active, false); /* a different node answers on that address */
                need_peers = true;
                continue;
            }
            if (!as_info_reply_value(&reply, "peers-generation", &v, &vl) || !as_info_parse_i64(v, vl, &pg) ||
                !as_info_reply_value(&reply, "partition-generation", &v, &vl) ||
                !as_info_parse_i64(v, vl, &ptg))
                r = err_set(&ne, ERR_INVALID, "node %s: bad tend reply", n->name);
        }
        if (r) {
            n->failures++;
            need_peers = true;
            LOG_W("as", "tend: %s (failure %u)", ne.msg, n->failures);
            continue;
        }
        n->failures = 0;
        if (pg != n->peers_gen)
            need_peers = true;
        if (ptg != n->partition_gen && ptg != -1)
            n->partitions_changed = true;
    }
    bool peers_ok = false;
    if (need_peers) {
        for (size_t i = 0; i < nn; i++) {
            struct as_node *n = nodes[i];
            if (n->failures || !atomic_load(&n->active))
                continue;
            struct err pe;
            err_clear(&pe);
            if (refresh_peers(c, n, &reply, &pe) == 0)
                peers_ok = true;
            else
                LOG_W("as", "tend: %s", pe.msg);
        }
    }
    /* partition maps of every node whose generation moved, new nodes included */
    as_nodes_release(nodes, nn);
    rc = snapshot(c, &nodes, &nn, e);
    if (rc) {
        as_buf_free(&reply);
        return rc;
    }
    for (size_t i = 0; i < nn; i++) {
        struct as_node *n = nodes[i];
        if (!n->partitions_changed || n->failures || !atomic_load(&n->active))
            continue;
        struct err pe;
        err_clear(&pe);
        if (refresh_partitions(c, n, &reply, &pe) != 0) {
            n->failures++;
            LOG_W("as", "tend: %s", pe.msg);
        }
    }
    as_buf_free(&reply);
    /* removals */
    for (size_t i = 0; i < nn; i++) {
        struct as_node *n = nodes[i];
        const char *why = NULL;
        if (!atomic_load(&n->active))
            why = "its address answers with another node id";
        else if (n->failures >= NODE_MAX_FAILURES)
            why = "too many consecutive failures";
        else if (peers_ok && nn > 1 && !n->listed) {
            pthread_rwlock_rdlock(&c->lock);
            unsigned owned = owned_partitions_locked(c, n);
            pthread_rwlock_unlock(&c->lock);
            if (n->failures || owned == 0)
                why = "no other node lists it as a peer";
        }
        if (why)
            remove_node(c, n, why);
    }
    as_nodes_release(nodes, nn);
    atomic_fetch_add(&c->tend_count, 1);
    if (as_cluster_node_count(c) == 0)
        return err_set(e, ERR_UNAVAILABLE, "cluster: no node left");
    return 0;
}

int as_cluster_tend(struct as_cluster *c, struct err *e)
{
    pthread_mutex_lock(&c->tend_mu);
    int rc = tend_locked(c, e);
    pthread_mutex_unlock(&c->tend_mu);
    return rc;
}

uint64_t as_cluster_tend_count(struct as_cluster *c)
{
    return atomic_load(&c->tend_count);
}

/* ---- tend thread --------------------------------------------------------------------------- */

static void *tend_main(void *arg)
{
    struct as_cluster *c = arg;
    uint32_t interval = cfg_or(c->cfg.tend_interval_ms, 1000);
    pthread_mutex_lock(&c->th_mu);
    while (!c->th_stop) {
        if (c->holders == 0) {
            pthread_cond_wait(&c->th_cv, &c->th_mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += interval / 1000;
        ts.tv_nsec += (long)(interval % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        int w = 0;
        while (!c->th_stop && c->holders > 0 && w == 0)
            w = pthread_cond_timedwait(&c->th_cv, &c->th_mu, &ts);
        if (c->th_stop || c->holders == 0)
            continue;
        pthread_mutex_unlock(&c->th_mu);
        struct err e;
        err_clear(&e);
        if (as_cluster_tend(c, &e) != 0)
            LOG_W("as", "tend: %s", e.msg);
        pthread_mutex_lock(&c->th_mu);
    }
    pthread_mutex_unlock(&c->th_mu);
    return NULL;
}

void as_cluster_hold(struct as_cluster *c)
{
    pthread_mutex_lock(&c->th_mu);
    c->holders++;
    if (!c->th_started) {
        if (pthread_create(&c->th, NULL, tend_main, c) == 0)
            c->th_started = true;
        else
            LOG_E("as", "cannot start the cluster tend thread");
    }
    pthread_cond_broadcast(&c->th_cv);
    pthread_mutex_unlock(&c->th_mu);
}

void as_cluster_unhold(struct as_cluster *c)
{
    pthread_mutex_lock(&c->th_mu);
    if (c->holders)
        c->holders--;
    pthread_cond_broadcast(&c->th_cv);
    pthread_mutex_unlock(&c->th_mu);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

int as_cluster_new(const struct as_cluster_config *cfg, struct as_cluster **out, struct err *e)
{
    *out = NULL;
    if (!cfg->n_seeds)
        return err_set(e, ERR_INVALID, "cluster: no seed host");
    struct as_cluster *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(e, ERR_NOMEM, "out of memory");
    c->cfg = *cfg;
    memset(&c->cfg.tls, 0, sizeof c->cfg.tls);
    c->cfg.tls.enable = cfg->tls.enable;
    c->seeds = malloc(cfg->n_seeds * sizeof *c->seeds);
    c->user = dup_or_null(cfg->user);
    c->password = cfg->password ? strdup(cfg->password) : NULL;
    c->cluster_name = dup_or_null(cfg->cluster_name);
    c->app_id = strdup(cfg->app_id && *cfg->app_id ? cfg->app_id
                       : cfg->user && *cfg->user ? cfg->user : "not-set");
    pthread_rwlock_init(&c->lock, NULL);
    pthread_mutex_init(&c->tend_mu, NULL);
    pthread_mutex_init(&c->th_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->th_cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = 0;
    if (!c->seeds || !c->app_id || (cfg->user && *cfg->user && !c->user) ||
        (cfg->password && !c->password)) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(c->seeds, cfg->seeds, cfg->n_seeds * sizeof *c->seeds);
    c->cfg.seeds = c->seeds;
    c->cfg.user = c->user;
    c->cfg.password = NULL; /* kept only in c->password */
    c->cfg.cluster_name = c->cluster_name;
    c->cfg.app_id = c->app_id;
    c->need_login = c->user != NULL || cfg->auth_mode == AS_AUTH_PKI;
    if (c->user && cfg->auth_mode != AS_AUTH_PKI) {
        rc = as_auth_credential(c->password ? c->password : "", c->credential, e);
        if (rc)
            goto fail;
    }
    if (cfg->tls.enable) {
        rc = as_tls_ctx_new(&cfg->tls, &c->tls, e);
        if (rc)
            goto fail;
    }
    rc = as_cluster_tend(c, e);
    if (rc)
        goto fail;
    *out = c;
    return 0;
fail:
    as_cluster_free(c);
    return rc;
}

void as_cluster_free(struct as_cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->th_mu);
    c->th_stop = true;
    pthread_cond_broadcast(&c->th_cv);
    bool started = c->th_started;
    pthread_mutex_unlock(&c->th_mu);
    if (started)
        pthread_join(c->th, NULL);
    for (size_t i = 0; i < c->n_nodes; i++) {
        atomic_store(&c->nodes[i]->active, false);
        as_node_release(c->nodes[i]);
    }
    free(c->nodes);
    for (size_t i = 0; i < c->n_maps; i++)
        free(c->maps[i]);
    free(c->maps);
    as_tls_ctx_free(c->tls);
    free(c->seeds);
    free(c->user);
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    explicit_bzero(c->credential, sizeof c->credential);
    free(c->cluster_name);
    free(c->app_id);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->tend_mu);
    pthread_mutex_destroy(&c->th_mu);
    pthread_cond_destroy(&c->th_cv);
    free(c);
}

/* ---- lookups ------------------------------------------------------------------------------- */

int as_cluster_nodes(struct as_cluster *c, struct as_node ***out, size_t *n, struct err *e)
{
    return snapshot(c, out, n, e);
}

void as_nodes_release(struct as_node **nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        as_node_release(nodes[i]);
    free(nodes);
}

size_t as_cluster_node_count(struct as_cluster *c)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t n = c->n_nodes;
    pthread_rwlock_unlock(&c->lock);
    return n;
}

struct as_node *as_cluster_node_by_name(struct as_cluster *c, const char *name)
{
    pthread_rwlock_rdlock(&c->lock);
    struct as_node *n = find_node_locked(c, name);
    if (n)
        as_node_acquire(n);
    pthread_rwlock_unlock(&c->lock);
    return n;
}

struct as_node *as_cluster_random_node(struct as_cluster *c)
{
    struct as_node *n = NULL;
    pthread_rwlock_rdlock(&c->lock);
    if (c->n_nodes) {
        size_t i = atomic_fetch_add(&c->rr, 1) % c->n_nodes;
        n = c->nodes[i];
        as_node_acquire(n);
    }
    pthread_rwlock_unlock(&c->lock);
    return n;
}

struct as_node *as_cluster_partition_node(struct as_cluster *c, const char *ns, uint32_t pid,
                                          unsigned replica)
{
    if (pid >= AS_PARTITIONS)
        return NULL;
    struct as_node *n = NULL;
    pthread_rwlock_rdlock(&c->lock);
    struct pmap *m = map_get_locked(c, ns, false);
    if (m && m->n_cols) {
        unsigned col = replica % m->n_cols;
        n = m->owner[col][pid];
        if (!n)
            n = m->owner[0][pid];
        if (n)
            as_node_acquire(n);
    }
    pthread_rwlock_unlock(&c->lock);
    return n;
}

unsigned as_cluster_ns_replicas(struct as_cluster *c, const char *ns)
{
    pthread_rwlock_rdlock(&c->lock);
    struct pmap *m = map_get_locked(c, ns, false);
    unsigned k = m ? m->n_cols : 0;
    pthread_rwlock_unlock(&c->lock);
    return k;
}
