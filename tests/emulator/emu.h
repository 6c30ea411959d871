/*
 * emu.h - internal types of the Aerospike protocol emulator (a test tool, never linked into
 * the service).
 *
 * One process emulates a cluster of 1..EMU_MAX_NODES nodes, each listening on its own
 * loopback port. The data lives once, cluster-wide, in `struct emu_cluster`: namespaces hold
 * 4096 partitions each, a partition is an array of records sorted by digest (descending, the
 * order in which a real server streams a partition). Which node serves a partition is a
 * table (`master[pid]`, replicas follow node by node), so `replicas`, `peers-*`, scans
 * (unavailable partitions) and object counts tell the same story. A write addressed to any
 * node is applied (a real server would proxy it to the master).
 *
 * Records keep their bins pre-encoded as READ ops ([4] size, op 1, particle, 0, name_len,
 * name, value) so a scan reply is mostly memcpy.
 *
 * Locking: one rwlock per namespace for records and sets; `meta` (a mutex) for partition
 * ownership, secondary indexes, UDFs and fault knobs.
 */
#ifndef ABS_TESTS_EMULATOR_EMU_H
#define ABS_TESTS_EMULATOR_EMU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aerospike/as_proto.h"

#define EMU_MAX_NODES 8
#define EMU_MAX_NS 8
#define EMU_BUILD "8.1.2.0"
#define EMU_EDITION "Aerospike Community Edition"

struct emu_rec {
    uint8_t digest[AS_DIGEST_SIZE];
    uint16_t set_id;     /* 0 = no set, else index + 1 into emu_ns.sets */
    uint16_t generation;
    uint32_t void_time;  /* citrusleaf seconds; 0 = never expires */
    uint64_t lut_ns;     /* last update, ns since the Unix epoch (ms resolution) */
    uint8_t *key;        /* particle type byte + key bytes; NULL when no key is stored */
    uint32_t key_len;
    uint16_t n_bins;
    uint32_t bins_len;
    uint8_t *bins;       /* n_bins READ ops, wire format */
};

struct emu_part {
    struct emu_rec **recs; /* sorted by digest, descending */
    uint32_t n;
    uint32_t cap;
};

struct emu_set {
    char name[AS_SET_NAME_MAX + 1];
};

struct emu_ns {
    char name[AS_NAMESPACE_NAME_MAX + 1];
    unsigned rf;              /* configured replication factor */
    uint32_t default_ttl;     /* seconds; 0 = never expire */
    uint64_t max_record_size; /* bytes */
    uint64_t truncate_lut;    /* ns since the Unix epoch of the last namespace truncate */
    pthread_rwlock_t lock;
    struct emu_part parts[AS_PARTITIONS];
    struct emu_set *sets;
    unsigned n_sets;
};

struct emu_sindex {
    char ns[AS_NAMESPACE_NAME_MAX + 1];
    char name[64];
    char set[AS_SET_NAME_MAX + 1]; /* empty = no set */
    char bin[AS_BIN_NAME_MAX + 1];
    char type[16];      /* numeric | string | blob | geo2dsphere (lower case) */
    char indextype[16]; /* default | list | mapkeys | mapvalues */
    char *context;      /* base64 msgpack CDT context, NULL = none */
    char *exp;          /* base64 expression, NULL = none */
};

struct emu_udf {
    char name[128];
    uint8_t *content;
    size_t len;
    char hash[41]; /* hex SHA-1 of the content */
};

struct emu_node {
    unsigned idx;
    uint64_t id;
    int port;
    int listen_fd;
    int tls_port;          /* 0 = no TLS listener */
    int tls_listen_fd;
    char tls_name[64];     /* announced in peers-tls-* */
    int rack_id;           /* --racks: rack of this node (0 = default rack) */
    atomic_bool up;        /* false after emulator-node-stop: not listening, owns nothing */
};

/* ---- security (emu_sec.c) ----------------------------------------------------------------- */

#define EMU_MAX_USERS 16
#define EMU_USER_MAX 63

enum emu_perm {
    EMU_PERM_READ = 1,
    EMU_PERM_WRITE = 2,
    EMU_PERM_UDF_ADMIN = 4,
    EMU_PERM_SINDEX_ADMIN = 8,
    EMU_PERM_TRUNCATE = 16,
    EMU_PERM_SYS_ADMIN = 32,
    EMU_PERM_USER_ADMIN = 64,
    EMU_PERM_ALL = 127,
};

struct emu_user {
    char name[EMU_USER_MAX + 1];
    char credential[61]; /* bcrypt(password, the client salt), as the server stores it */
    unsigned perms;      /* EMU_PERM_* granted by the user's roles */
};

struct emu_security {
    bool enabled;          /* users configured: LOGIN required before anything else */
    bool enterprise;       /* without users: admin messages answer 52 (EE, security off), not 51 */
    struct emu_user users[EMU_MAX_USERS];
    unsigned n_users;
    uint32_t session_ttl;  /* seconds (LOGIN reply's SESSION_TTL) */
    uint8_t hmac_key[32];  /* signs session tokens */
    /* knobs (under emu_cluster.meta) */
    uint64_t expired_before_ms; /* tokens issued up to this time (ms since the epoch) are expired */
    int refuse_logins;          /* fault: every LOGIN answered with this result (0 = off) */
    atomic_uint_fast64_t logins, login_failures, authenticates, auth_failures;
};

/* Fault knobs (set from the command line or the `emulator-fault:` info command). */
struct emu_faults {
    long close_after_records; /* > 0: a scan connection is closed after this many records */
    long delay_ms;            /* sleep before every AS_MSG reply */
    uint8_t unavailable[AS_PARTITIONS / 8]; /* partitions answered as unavailable (result 11) */
};

struct emu_cluster {
    char cluster_name[64];
    struct emu_ns *ns[EMU_MAX_NS];
    unsigned n_ns;
    struct emu_node nodes[EMU_MAX_NODES];
    unsigned n_nodes;
    size_t chunk_size; /* scan reply messages are flushed beyond this many bytes */
    bool verbose;

    pthread_mutex_t meta;
    uint8_t master[AS_PARTITIONS]; /* node index of each partition's master */
    int64_t partition_gen;
    struct emu_sindex *sindexes;
    unsigned n_sindexes;
    struct emu_udf *udfs;
    unsigned n_udfs;
    struct emu_faults faults;
    struct emu_security sec;
    int64_t peers_gen;       /* +1 whenever a node stops or starts */
    char alt_host[64];       /* --alt-host: address announced by peers-*-alt / service-*-alt */
    bool tls;                /* TLS listeners configured: peers-tls-* answered */
    char last_sni[128];      /* server name of the last TLS handshake (under meta) */
    struct as_buf info_log;  /* "<conn>:<cmd>|<cmd>...;" per info request (under meta) */
    atomic_uint next_conn_id;

    atomic_uint_fast64_t n_reads, n_writes, n_scans, n_batches, n_infos;
};

/* Set when the process is shutting down: long sleeps (throttling, delay faults) end early. */
extern atomic_bool emu_stopping;

/* ---- store (emu_store.c) ------------------------------------------------------------------ */

int emu_cluster_init(struct emu_cluster *c, unsigned n_nodes);
void emu_cluster_free(struct emu_cluster *c);
/* Adds a namespace "name" or "name:rf". 0 or -1 (bad name, too many). */
int emu_cluster_add_ns(struct emu_cluster *c, const char *spec);
struct emu_ns *emu_ns_find(struct emu_cluster *c, const void *name, size_t len);

uint32_t emu_now_cl(void);  /* citrusleaf seconds */
uint64_t emu_now_ns(void);  /* ns since the Unix epoch, ms resolution */

/* Set id for a name (0 for an empty name); creates it when `create`. Caller holds the ns write
 * lock when creating. Returns -1 when absent (and not created) or the table is full. */
int emu_set_id(struct emu_ns *ns, const void *name, size_t len, bool create);
const char *emu_set_name(const struct emu_ns *ns, uint16_t set_id); /* "" for 0 */

/* Record lookup/insert/remove; caller holds the namespace lock. */
struct emu_rec *emu_rec_find(struct emu_ns *ns, const uint8_t *digest);
int emu_rec_insert(struct emu_ns *ns, struct emu_rec *r);
void emu_rec_remove(struct emu_ns *ns, const uint8_t *digest);
void emu_rec_free(struct emu_rec *r);
bool emu_rec_expired(const struct emu_rec *r, uint32_t now_cl);
/* Looks up a bin by name in a record's encoded ops; false if absent. */
bool emu_rec_bin(const struct emu_rec *r, const uint8_t *name, size_t name_len, struct as_op *op);

/* Replica column (0 = master) in which `node` holds partition `pid` of `ns`, or -1. */
int emu_node_column(struct emu_cluster *c, unsigned node, const struct emu_ns *ns, unsigned pid);
/* Number of replica columns actually in force for ns (min(rf, nodes)). */
unsigned emu_ns_effective_rf(const struct emu_cluster *c, const struct emu_ns *ns);
bool emu_fault_unavailable(struct emu_cluster *c, unsigned pid);
/* Stores (or replaces) a UDF; takes ownership of `content` (freed on failure too). 0 or -1. */
int emu_udf_store(struct emu_cluster *c, const char *name, uint8_t *content, size_t len);
/* Appends an index (the struct is copied, its strings owned by the cluster from then on).
 * 0, 1 if one of that name exists in the namespace (nothing stored), -1 out of memory. */
int emu_sindex_add(struct emu_cluster *c, const struct emu_sindex *s);

/* ---- connections (emu_main.c) ---------------------------------------------------------------- */

struct emu_conn {
    int fd;
    void *ssl;              /* SSL * on a TLS listener's connection, NULL for clear ones */
    struct emu_cluster *c;
    struct emu_node *node;
    struct as_buf out;
    bool close_now;         /* set by a fault: drop the connection after this request */
    int user;               /* index into c->sec.users once authenticated, -1 before */
    unsigned id;            /* connection number (info log) */
    char peer_cn[EMU_USER_MAX + 1]; /* subject CN of a verified client certificate (PKI) */
    char user_agent[96];    /* base64 value of user-agent-set ("" = not set) */
};

/* Sends all bytes on the connection (TLS or clear). 0 or -1. */
int emu_conn_send(struct emu_conn *conn, const void *p, size_t n);
/* Stops (closes its listeners, drops its connections, hands its partitions to the other nodes)
 * or restarts a node. 0, or -1 when it is already in that state / the last running node. */
int emu_node_set_up(struct emu_cluster *c, unsigned idx, bool up);
/* Records a connection's user-agent-set value. */
void emu_conn_set_user_agent(struct emu_conn *conn, const char *b64, size_t len);
/* "user-agent=<b64>:count=N;" for the user agents of open connections (the `user-agents` command). */
void emu_user_agents(struct emu_cluster *c, struct as_buf *out);
/* Number of running nodes. */
unsigned emu_nodes_up(const struct emu_cluster *c);
/* Recomputes partition ownership over the running nodes (partition generation + 1). Caller
 * holds c->meta. */
void emu_rebalance_locked(struct emu_cluster *c);

/* ---- security (emu_sec.c) -------------------------------------------------------------------- */

/* Adds a user from "NAME:PASSWORD[:ROLE,ROLE...]" (a PASSWORD of the form $2a$10$... with 60
 * characters is taken as the stored bcrypt credential). 0 or -1 with *why set. */
int emu_sec_add_user(struct emu_security *s, const char *spec, const char **why);
/* Initialises the token key and defaults (session TTL 86400 s). */
void emu_sec_init(struct emu_security *s);
/* Answers one admin (type 2) body: LOGIN, AUTHENTICATE, others; the reply body into out. */
void emu_sec_admin(struct emu_conn *conn, const uint8_t *body, size_t len, struct as_buf *out);
/* The result code a request needing `perm` gets on this connection: 0, 80 (not
 * authenticated) or 81 (role violation). 0 when security is off. */
int emu_sec_check(const struct emu_conn *conn, unsigned perm);
/* Name of a permission for error messages ("udf-admin", ...). */
const char *emu_perm_name(unsigned perm);

/* ---- info (emu_info.c) ---------------------------------------------------------------------- */

/* Answers one info request body (type 1) into `out` (body only, no proto header). */
void emu_info_handle(struct emu_conn *conn, const char *body, size_t len, struct as_buf *out);

/* ---- AS_MSG (emu_msg.c) ---------------------------------------------------------------------- */

/* Handles one type-3 body; writes every reply message to the connection. -1 if the
 * connection must be closed. */
int emu_msg_handle(struct emu_conn *conn, const uint8_t *body, size_t len);
/* GeoJSON particle value as the server stores it: [flags][ncells][cells...] + JSON text (cell ids
 * are fake). NULL when the JSON has no valid "type". */
uint8_t *emu_geo_with_cells(const uint8_t *json, uint32_t len, uint32_t *out_len);
int emu_send_all(int fd, const void *p, size_t n);

/* ---- .asb load and dump (emu_asb.c) ---------------------------------------------------------- */

/* Loads records, UDFs and secondary indexes of an asbackup text file (records keep the file's
 * generation, void-time and key; last-update-time = load time). Namespaces must exist. */
int emu_load_asb(struct emu_cluster *c, const char *path, struct err *e);
/* Writes one namespace (records in partition order, UDFs, its indexes) as a "Version 3.1" file. */
int emu_dump_asb(struct emu_cluster *c, const char *ns, const char *path, struct err *e);

/* Generates COUNT records "key-<i>" (stored string key) in NS[/SET] with bins id (int), name
 * (string) and pad (blob) totalling about BYTES (default 200): spec "NS:COUNT[:SET[:BYTES]]". */
int emu_generate(struct emu_cluster *c, const char *spec, struct err *e);

/* ---- filter expressions (emu_exp.c) ---------------------------------------------------------- */

struct emu_exp;
/* Compiles the msgpack expression; NULL with *why set when it is malformed, unsupported or not
 * boolean (the request then fails with result 4). The tree points into `p`. */
struct emu_exp *emu_exp_compile(const uint8_t *p, size_t len, const char **why);
void emu_exp_free(struct emu_exp *x);
/* true when the record passes (an unknown result, e.g. a missing bin, does not pass). */
bool emu_exp_match(const struct emu_exp *x, const struct emu_ns *ns, const struct emu_rec *r,
                   uint32_t now_cl);

/* Validates a MAP/LIST particle like the server: well-formed msgpack, ordered CDTs in order,
 * no float map keys. Returns an AS result code (0, 1 or 4). */
int emu_cdt_validate(uint8_t particle, const uint8_t *p, size_t len);
/* A real server returns unordered maps with their top-level pairs sorted by key (integers, then
 * strings, then bytes). 0 with a malloc'd sorted copy, 1 when the map is kept as it is. */
int emu_map_normalize(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len);

#endif
