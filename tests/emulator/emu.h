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

/* ---- info (emu_info.c) ---------------------------------------------------------------------- */

/* Answers one info request body (type 1) into `out` (body only, no proto header). */
void emu_info_handle(struct emu_cluster *c, struct emu_node *node, const char *body, size_t len,
                     struct as_buf *out);

/* ---- AS_MSG (emu_msg.c) ---------------------------------------------------------------------- */

struct emu_conn {
    int fd;
    struct emu_cluster *c;
    struct emu_node *node;
    struct as_buf out;
    bool close_now; /* set by a fault: drop the connection after this request */
};

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
