/*
 * as_info.h - info requests (type 1) on a connection or a cluster node, and typed helpers
 * with their reply parsers.
 *
 * Three layers:
 *   - as_info_exec(): send "cmd\n..." on a connection, receive the reply body;
 *   - parsers for reply values (pure functions over text, tested with captured replies):
 *     namespaces, namespace stats, sets, sindex-list (b64), udf-list, udf-get, peers-*,
 *     replicas, and the generic value/error check;
 *   - helpers that run one command on a node (borrowing a pooled connection through
 *     as_node_info() of as_cluster) and parse the result.
 *
 * Error values: "ERROR:<code>:<msg>", "ERROR::<msg>", "FAIL:<code>:<msg>" and "error=<reason>"
 * become ERR_IO (server refused) with the command, the node, the code and its name in the
 * message; `*code_out` (where offered) receives the code (-1 when none).
 */
#ifndef ABS_AEROSPIKE_AS_INFO_H
#define ABS_AEROSPIKE_AS_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aerospike/as_conn.h"
#include "aerospike/as_proto.h"
#include "util/err.h"

struct as_node;

/* ---- on a connection --------------------------------------------------------------------- */

/* Sends `cmds` (one or more '\n'-separated commands; a final '\n' is added) and receives the
 * reply body into `reply` (reset first). */
int as_info_exec(struct as_conn *c, const char *cmds, struct as_buf *reply, uint64_t deadline_ms,
                 uint32_t socket_timeout_ms, struct err *e);

/* Finds the value of command `cmd` in a reply body; false when absent. */
bool as_info_reply_value(const struct as_buf *reply, const char *cmd, const char **v, size_t *len);

/* ERR_IO with "node <n>: <cmd>: <code name> (<code>): <msg>" when v is an error value; 0
 * otherwise. node may be NULL. code_out may be NULL. */
int as_info_check(const char *node, const char *cmd, const char *v, size_t len, int *code_out,
                  struct err *e);

/* Strict decimal parsing of a value span. */
bool as_info_parse_i64(const char *v, size_t len, int64_t *out);
bool as_info_parse_u64(const char *v, size_t len, uint64_t *out);
/* Looks up key in "k=v;k=v" (sep ';') or "k=v:k=v" (sep ':') and parses it as u64. */
bool as_info_kv_u64(const char *s, size_t len, char sep, const char *key, uint64_t *out);

/* Base64 (standard alphabet, padding). Returns the decoded length, or -1 if invalid. out
 * needs len / 4 * 3 bytes. */
long as_b64_decode(const char *in, size_t len, uint8_t *out);
/* Returns the encoded length (4 * ceil(n / 3)); out needs that many bytes (no NUL added). */
size_t as_b64_encode(const uint8_t *in, size_t n, char *out);

/* ---- string lists ------------------------------------------------------------------------- */

struct as_strv {
    char **v;
    size_t n;
};
void as_strv_free(struct as_strv *s);
/* Splits on `sep`, skipping empty items. */
int as_strv_split(const char *s, size_t len, char sep, struct as_strv *out, struct err *e);

/* ---- parsers ------------------------------------------------------------------------------ */

struct as_ns_info {
    bool found;                 /* false for "type=unknown" */
    uint64_t objects;           /* per node, replicas included */
    uint64_t tombstones;
    uint64_t master_objects;
    uint64_t prole_objects;
    uint32_t replication_factor;           /* configured */
    uint32_t effective_replication_factor; /* in force (0 if the server does not say) */
    uint64_t current_time;      /* server clock, citrusleaf seconds (0 if absent) */
};
int as_info_parse_namespace(const char *v, size_t len, struct as_ns_info *out, struct err *e);

struct as_set_info {
    char ns[AS_NAMESPACE_NAME_MAX + 1];
    char name[AS_SET_NAME_MAX + 1];
    uint64_t objects;
    uint64_t tombstones;
    uint64_t data_used_bytes;
    uint64_t truncate_lut;
};
/* "ns=..:set=..:objects=..:...;" entries. ERR_NOT_FOUND for "ns_type=unknown". *out is
 * malloc'ed (free()). */
int as_info_parse_sets(const char *v, size_t len, struct as_set_info **out, size_t *n,
                       struct err *e);

struct as_sindex_info {
    char ns[AS_NAMESPACE_NAME_MAX + 1];
    char name[256];
    char set[AS_SET_NAME_MAX + 1]; /* "" = no set (the server's literal "null") */
    char bin[256];                 /* "" for expression and set indexes */
    char type[16];                 /* numeric, string, blob, geo2dsphere ("" for set indexes) */
    char index_type[16];           /* default, list, mapkeys, mapvalues, set */
    char *context;                 /* base64 CDT context, NULL = none */
    char *exp;                     /* base64 expression, NULL = none */
    char state[8];                 /* RW, WO, ERROR */
};
void as_sindex_list_free(struct as_sindex_info *v, size_t n);
/* Parses a `sindex-list:ns=<ns>;b64=true` value (8.1 and older grammars: ns=, indexname=,
 * set=, bin=, type=, indextype=, context=, exp=, state=; "null"/"NULL" mean none). */
int as_info_parse_sindex_list(const char *v, size_t len, struct as_sindex_info **out, size_t *n,
                              struct err *e);
/* The `sindex-create:...` command as C client 7.3.0 writes it for 8.1 servers: namespace,
 * [set], indexname, [context], indextype (always, upper case), bin, type (upper case); an
 * expression index: namespace, [set], indexname, exp, [indextype], type; a set index:
 * namespace, set, indexname, indextype=set. Returns 0 or ERR_INVALID (bad/unsafe text). */
int as_info_sindex_create_cmd(const struct as_sindex_info *s, char *out, size_t cap, struct err *e);

struct as_udf_info {
    char name[256];
    char hash[64];
    char type[16];
};
int as_info_parse_udf_list(const char *v, size_t len, struct as_udf_info **out, size_t *n,
                           struct err *e);
/* udf-get value "type=LUA;content=<b64>;" -> malloc'ed file content. */
int as_info_parse_udf_get(const char *v, size_t len, uint8_t **content, size_t *content_len,
                          struct err *e);

#define AS_PEER_MAX_ADDRS 8
struct as_peer {
    char node[32];
    char tls_name[256];
    unsigned n_addrs;
    struct {
        char host[256];
        uint16_t port;
    } addrs[AS_PEER_MAX_ADDRS];
};
/* peers-clear-std / peers-tls-std / *-alt: "gen,port,[[id,tls,[addr,...]],...]". */
int as_info_parse_peers(const char *v, size_t len, int64_t *generation, struct as_peer **out,
                        size_t *n, struct err *e);
/* services / services-alternate: "host:port;host:port". */
int as_info_parse_services(const char *v, size_t len, struct as_peer **out, size_t *n,
                           struct err *e);

/* `replicas` ("<ns>:<regime>,<n>,<b64>,...;"), `replicas-all` ("<ns>:<n>,<b64>...") or
 * `replicas-master` ("<ns>:<b64>"). The callback gets every column's 512-byte bitmap
 * (bit p = bitmap[p >> 3] & (0x80 >> (p & 7))). Non-zero from the callback stops parsing. */
typedef int (*as_replicas_fn)(void *ctx, const char *ns, uint32_t regime, unsigned column,
                              unsigned n_columns, const uint8_t bitmap[AS_PARTITIONS / 8]);
int as_info_parse_replicas(const char *v, size_t len, as_replicas_fn fn, void *ctx, struct err *e);

/* ---- on a node (through the cluster's pool) ------------------------------------------------- */

/* Runs one command and returns its value (malloc'ed, NUL-terminated) after the error check. */
int as_info_node_value(struct as_node *n, const char *cmd, char **value, size_t *len,
                       struct err *e);

int as_info_namespaces(struct as_node *n, struct as_strv *out, struct err *e);
int as_info_namespace(struct as_node *n, const char *ns, struct as_ns_info *out, struct err *e);
int as_info_sets(struct as_node *n, const char *ns, struct as_set_info **out, size_t *count,
                 struct err *e);
int as_info_sindex_list(struct as_node *n, const char *ns, struct as_sindex_info **out,
                        size_t *count, struct err *e);
int as_info_sindex_create(struct as_node *n, const struct as_sindex_info *s, struct err *e);
int as_info_udf_list(struct as_node *n, struct as_udf_info **out, size_t *count, struct err *e);
int as_info_udf_get(struct as_node *n, const char *name, uint8_t **content, size_t *len,
                    struct err *e);
/* udf-put:filename=<f>;content=<b64>;content-len=<b64 len>;udf-type=LUA; -> "ok" */
int as_info_udf_put(struct as_node *n, const char *name, const uint8_t *content, size_t len,
                    struct err *e);
/* get-config:context=<context>[;namespace=<id>] -> raw "k=v;..." value (malloc'ed). */
int as_info_get_config(struct as_node *n, const char *context, const char *id, char **value,
                       struct err *e);
int as_info_build(struct as_node *n, char *out, size_t cap, struct err *e);
int as_info_node_id(struct as_node *n, char *out, size_t cap, struct err *e);
int as_info_partition_generation(struct as_node *n, int64_t *out, struct err *e);

#endif
