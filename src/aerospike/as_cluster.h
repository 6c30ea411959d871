/*
 * as_cluster.h - the cluster view: nodes found from seeds and peers, one connection pool
 * and login session per node, and the partition map (which node holds replica i of
 * partition p of namespace ns) read from `replicas`.
 *
 * Discovery (as the official C client 7.3.0 does it, seen in the captures):
 *   seed:  connect (+ login), "node\npartition-generation\nbuild\n" [+ "cluster-name\n"];
 *          a node is accepted when its name is non-empty, partition-generation != -1 and the
 *          cluster name matches (when one is configured); then, on servers 8.1+,
 *          "user-agent-set:value=<b64 of 1,c-abs-<version>,<app id>>" on every new tend
 *          connection (app id: configured, else the user, else "not-set");
 *   peers: "peers-clear-std" (TLS: "peers-tls-std"; use_services_alternate: "*-alt");
 *          each unknown peer is connected on its addresses in order and must report the
 *          node id the peers list gave;
 *   map:   "partition-generation\nreplicas\n" on every node whose partition-generation
 *          changed;
 *   tend:  "node\npeers-generation\npartition-generation\n" per node (not in the pass that
 *          validated it: the seed's first requests are exactly the captured C client's); a
 *          node whose name
 *          changed, that failed 5 times in a row, or that no peer lists any more while it
 *          failed or owns no partition, is dropped; unknown peers are added.
 * as_cluster_tend() runs one pass; a tend thread runs it every tend_interval_ms while at
 * least one user holds the cluster (as_cluster_hold/unhold, e.g. while a job runs).
 *
 * Nodes are reference counted: lookups return a reference the caller releases with
 * as_node_release(); a dropped node stays usable by its holders until the last release.
 *
 * Thread-safety: everything here may be called from any thread.
 */
#ifndef ABS_AEROSPIKE_AS_CLUSTER_H
#define ABS_AEROSPIKE_AS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aerospike/as_auth.h"
#include "aerospike/as_conn.h"
#include "util/err.h"

#define AS_HOST_NAME_MAX 255
#define AS_NODE_NAME_MAX 31
#define AS_MAX_REPLICAS 3

struct as_host {
    char name[AS_HOST_NAME_MAX + 1];     /* address or DNS name */
    uint16_t port;                       /* 0 = 3000 */
    char tls_name[AS_HOST_NAME_MAX + 1]; /* "" = none */
};

struct as_cluster_config {
    const struct as_host *seeds;
    size_t n_seeds;
    const char *user;       /* NULL/"" = no login */
    const char *password;   /* never logged */
    enum as_auth_mode auth_mode;
    struct as_tls_config tls;          /* tls.enable selects TLS for every connection */
    bool use_services_alternate;       /* peers-*-alt instead of peers-*-std */
    const char *cluster_name;          /* NULL/"" = not checked */
    const char *app_id;                /* user agent's app id; NULL: the user, else "not-set" */
    uint32_t connect_timeout_ms;       /* 0 -> 10000 */
    uint32_t login_timeout_ms;         /* 0 -> 10000 */
    uint32_t info_timeout_ms;          /* 0 -> 10000: total time of one info exchange */
    uint32_t tend_interval_ms;         /* 0 -> 1000 */
    uint32_t max_conns_per_node;       /* 0 -> 256 */
    uint32_t idle_timeout_ms;          /* 0 -> 55000 */
};

struct as_cluster;
struct as_node;

/* Copies the configuration, builds the TLS context, computes the login credential, seeds
 * and runs a first tend (nodes + partition maps). Fails when no seed could be used. */
int as_cluster_new(const struct as_cluster_config *cfg, struct as_cluster **out, struct err *e);
/* Stops the tend thread, drops every node. No other thread may use the cluster any more. */
void as_cluster_free(struct as_cluster *c);

/* One tend pass (serialised with the tend thread). Fails only when no node is left. */
int as_cluster_tend(struct as_cluster *c, struct err *e);
/* While held by at least one user, a tend thread runs every tend_interval_ms. */
void as_cluster_hold(struct as_cluster *c);
void as_cluster_unhold(struct as_cluster *c);
/* Count of tend passes done so far (tests, metrics). */
uint64_t as_cluster_tend_count(struct as_cluster *c);

/* Snapshot of the active nodes, each with a reference; release with as_nodes_release(). */
int as_cluster_nodes(struct as_cluster *c, struct as_node ***out, size_t *n, struct err *e);
void as_nodes_release(struct as_node **nodes, size_t n);
size_t as_cluster_node_count(struct as_cluster *c);
/* A node by its id (case-insensitive), with a reference; NULL when unknown. */
struct as_node *as_cluster_node_by_name(struct as_cluster *c, const char *name);
/* Any active node (round robin), with a reference; NULL when there is none. */
struct as_node *as_cluster_random_node(struct as_cluster *c);
/* Owner of replica `replica` (0 = master) of partition pid in ns, with a reference; NULL
 * when the map has no such namespace/column/owner. A replica column the namespace does not
 * have falls back to the master. */
struct as_node *as_cluster_partition_node(struct as_cluster *c, const char *ns, uint32_t pid,
                                          unsigned replica);
/* Number of replica columns known for ns (0 = namespace unknown to the map). */
unsigned as_cluster_ns_replicas(struct as_cluster *c, const char *ns);

void as_node_acquire(struct as_node *n);
void as_node_release(struct as_node *n);
const char *as_node_name(const struct as_node *n);
/* "host:port" the node is reached on. */
const char *as_node_address(const struct as_node *n);
const char *as_node_build(const struct as_node *n);
bool as_node_active(const struct as_node *n);

/* A connection to the node: an idle pooled one or a new one (connected, TLS, authenticated
 * with the node's session, logging in again when it expired). Give it back with
 * as_node_conn_put() when it is clean (a whole exchange completed), else as_node_conn_drop(). */
int as_node_conn_get(struct as_node *n, struct as_conn **conn, struct err *e);
void as_node_conn_put(struct as_node *n, struct as_conn *conn);
void as_node_conn_drop(struct as_node *n, struct as_conn *conn);

/* Info request on a pooled connection with the cluster's info timeout; reply body in reply. */
int as_node_info(struct as_node *n, const char *cmds, struct as_buf *reply, struct err *e);

const struct as_cluster_config *as_cluster_config_of(const struct as_cluster *c);

/* Parses "host[:port][,tls-name]"-free forms "host", "host:port", "[v6]:port" into h. */
int as_host_parse(const char *s, struct as_host *h, struct err *e);

#endif
