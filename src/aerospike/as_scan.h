/*
 * as_scan.h - partition scans (primary-index queries, servers 6.x-8.x).
 *
 * A scan covers a set of partitions (`struct as_scan_parts`: all, a range, a list, or
 * resuming after a digest). Each round assigns every unfinished partition to the node that
 * owns it (master, or the next replica on retries), sends ONE request per node (partitions
 * without a resume point in PID_ARRAY, the others in DIGEST_ARRAY), and streams the reply:
 * records go to the callback as views into the receive buffer (valid only during the call),
 * each record's digest becomes its partition's resume point. Partitions reported unavailable
 * (PARTITION_DONE with a non-zero result) and every unfinished partition of a node that
 * failed mid-stream (network error, timeout, results 11/201/203) are retried in the next
 * round on the current owner, resuming strictly after their last digest, with exponential
 * backoff, until the total timeout / max_retries. Other server errors abort the scan.
 *
 * Requests carry the fields the official client 7.3.0 sends, in its order (seen in
 * wire/b-*, c-*, d-*): NAMESPACE, [SET], [RPS], SOCKET_TIMEOUT, TRID (one random id per
 * round, shared by the node requests), [FILTER], [PID_ARRAY], [DIGEST_ARRAY], [MAX_RECORDS];
 * info1 READ (| NOBINDATA), info3 PARTITION_DONE, record_ttl 0xFFFFFFFF; one READ op per
 * selected bin.
 *
 * One `struct as_scanner` per worker thread: it owns the request/receive buffers and the
 * bin array reused by every record, so the scan path allocates nothing per record. Several
 * scanners may run at once on one cluster.
 */
#ifndef ABS_AEROSPIKE_AS_SCAN_H
#define ABS_AEROSPIKE_AS_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aerospike/as_cluster.h"
#include "aerospike/as_proto.h"
#include "aerospike/as_record.h"
#include "util/err.h"

/* ---- partition set ---------------------------------------------------------------------- */

enum as_part_state {
    AS_PART_PENDING = 0, /* to be scanned (again) */
    AS_PART_DONE = 1,    /* completely scanned */
    AS_PART_SKIPPED = 2, /* excluded (node restriction) */
};

struct as_part_status {
    uint16_t pid;
    uint8_t state;      /* enum as_part_state */
    uint8_t replica;    /* replica index for the next attempt (0 = master) */
    bool has_digest;    /* resume strictly after `digest` */
    uint8_t digest[AS_DIGEST_SIZE];
    uint64_t records;   /* records delivered from this partition */
    int last_result;    /* last failure (server result, or -1 for network/timeout) */
};

struct as_scan_parts {
    struct as_part_status *p;
    size_t n;
};

void as_scan_parts_free(struct as_scan_parts *ps);
/* Partitions begin .. begin+count-1 (begin + count <= 4096). */
int as_scan_parts_range(struct as_scan_parts *ps, uint32_t begin, uint32_t count, struct err *e);
/* An explicit list (no duplicates, each < 4096). */
int as_scan_parts_list(struct as_scan_parts *ps, const uint16_t *pids, size_t n, struct err *e);
/* asbackup --after-digest: partition pid(d) resuming after d, then pid(d)+1 .. 4095. */
int as_scan_parts_after_digest(struct as_scan_parts *ps, const uint8_t digest[AS_DIGEST_SIZE],
                               struct err *e);
/* Sets the resume point of partition pid (if it is in the set). */
void as_scan_parts_resume(struct as_scan_parts *ps, uint32_t pid, const uint8_t digest[AS_DIGEST_SIZE]);
size_t as_scan_parts_pending(const struct as_scan_parts *ps);

/* ---- policy and results ------------------------------------------------------------------ */

struct as_scan_policy {
    const char *ns;
    const char *set;                /* NULL/"" = whole namespace */
    const char *const *bins;        /* bin-list; NULL/0 = all bins */
    size_t n_bins;
    bool no_bins;                   /* metadata only (NOBINDATA) */
    uint64_t max_records;           /* 0 = no limit (split across nodes as MAX_RECORDS) */
    uint32_t records_per_second;    /* RPS per node request; 0 = none */
    const uint8_t *filter;          /* filter expression bytes (as_exp); NULL = none */
    size_t filter_len;
    const char *const *nodes;       /* node restriction (node ids); NULL/0 = all */
    size_t n_nodes;
    uint32_t socket_timeout_ms;     /* SOCKET_TIMEOUT field; 0 -> 10000 */
    uint32_t read_timeout_ms;       /* longest wait for one reply chunk; 0 -> max(socket timeout,
                                       30000): a filter may keep the server silent for long */
    uint32_t total_timeout_ms;      /* whole scan incl. retries; 0 = none */
    uint32_t max_retries;           /* retry rounds; 0 -> 5 when no total timeout, else unlimited */
    uint32_t retry_sleep_ms;        /* first backoff; 0 -> 100, doubled up to 2000 */
    bool unknown_set_empty;         /* result 4 to a SET scan before any record = no records there */
    const volatile bool *cancel;    /* checked between reply chunks and rounds */
};

struct as_scan_stats {
    uint64_t records;           /* delivered to the callback */
    uint64_t bytes;             /* reply bytes received */
    unsigned rounds;
    unsigned node_requests;
    unsigned partitions_retried;
    bool cancelled;
    int result;                 /* server result that ended the scan, 0 if none */
    char node[AS_NODE_NAME_MAX + 1]; /* node of that failure */
};

/* Called for every record; the view is valid only during the call. A negative return stops
 * the scan with that code (fill e). */
typedef int (*as_scan_fn)(void *ctx, const struct as_record *r, struct err *e);

struct as_scanner;

int as_scanner_new(struct as_scanner **out, struct err *e);
void as_scanner_free(struct as_scanner *s);

/* Runs the scan; `parts` is updated in place (states, resume digests, counts), so a failed
 * or cancelled scan can be resumed with the same set. Cancellation returns ERR_UNAVAILABLE
 * with stats->cancelled set. */
int as_scan_run(struct as_scanner *s, struct as_cluster *c, const struct as_scan_policy *p,
                struct as_scan_parts *parts, as_scan_fn fn, void *ctx, struct as_scan_stats *stats,
                struct err *e);

/* ---- building blocks (exposed for tests) ---------------------------------------------------- */

/* Encodes one node request into b (reset first): pids without resume point, then digests. */
int as_scan_encode(struct as_buf *b, const struct as_scan_policy *p, uint64_t task_id,
                   const uint16_t *pids, size_t n_pids, const uint8_t *digests, size_t n_digests,
                   uint64_t max_records, struct err *e);

/* Decodes a record message (already validated by as_msg_parse) into a view; `bins` must hold
 * v->h.n_ops entries. */
int as_scan_decode_record(const struct as_msg_view *v, struct as_record *r, struct as_bin *bins,
                          struct err *e);

#endif
