/*
 * as_write.h - single-record writes and batch writes (batch-index protocol) of whole
 * records, as a restore needs them.
 *
 * Policies map to header bits exactly as the official client (and asrestore 4.5.8, seen in
 * wire/f1..f6): exists IGNORE/CREATE/UPDATE/REPLACE/CREATE_OR_REPLACE; generation IGNORE,
 * EQ or GT (GT = write only when the sent generation is newer than the stored one);
 * send-key adds the KEY field for records that carry a key; durable delete stays off.
 * Single writes: fields NAMESPACE, SET (even empty), DIGEST, [KEY]; one WRITE op per bin.
 * Batch: parent info1 BATCH, flags 0x0d, rows with flags 0x0e, info2 WRITE|RESPOND_ALL_OPS,
 * u16 generation, TTL, fields NAMESPACE, SET, [KEY]; no REPEAT rows. Rows are grouped by the
 * master node of their partition; a group of one record goes out as a single write with
 * RESPOND_ALL_OPS (as asrestore does).
 *
 * Results: every item gets the server's result code (0, 2, 3, 5, ...) or -1 when no answer
 * could be obtained; a namespace missing from the cluster's partition map is answered 20
 * (NAMESPACE) without a request. Items answered 9 TIMEOUT, 14 KEY_BUSY, 18 DEVICE_OVERLOAD, 11, 152 or
 * not answered because of a network failure/timeout are retried with exponential backoff
 * (retry n waits retry_sleep_ms x retry_multiplier^(n-1), at most 10 minutes) up to
 * max_retries times.
 *
 * Pipelining: `struct as_write_pipe` keeps up to `depth` requests in flight from one thread,
 * each on a connection of its own (the server answers a connection's requests one at a time
 * and batch replies carry no request id, so requests are never interleaved on one socket);
 * the replies are read oldest first.
 *
 * One `struct as_writer` per worker thread (buffers reused across calls).
 */
#ifndef ABS_AEROSPIKE_AS_WRITE_H
#define ABS_AEROSPIKE_AS_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aerospike/as_cluster.h"
#include "aerospike/as_record.h"
#include "util/err.h"

enum as_exists_policy {
    AS_EXISTS_IGNORE = 0,           /* upsert, merge bins */
    AS_EXISTS_CREATE = 1,           /* create only (5 RECORD_EXISTS) */
    AS_EXISTS_UPDATE = 2,           /* update only, merge (2 NOT_FOUND) */
    AS_EXISTS_REPLACE = 3,          /* replace only (2 NOT_FOUND) */
    AS_EXISTS_CREATE_OR_REPLACE = 4 /* replace all bins, create if missing */
};

enum as_gen_policy {
    AS_GEN_IGNORE = 0,
    AS_GEN_EQ = 1, /* expect stored generation == record generation (else 3) */
    AS_GEN_GT = 2, /* write only if record generation > stored (else 3) */
};

struct as_write_policy {
    enum as_exists_policy exists;
    enum as_gen_policy gen;
    bool send_key;          /* send the KEY field for records that have a key */
    bool respond_all_ops;   /* single writes: RESPOND_ALL_OPS (batch rows always have it) */
    bool commit_master;
    uint32_t socket_timeout_ms; /* one attempt's read/write wait; 0 -> total or 10000 */
    uint32_t total_timeout_ms;  /* one attempt, sent as transaction_ttl; 0 -> 10000 */
    uint32_t max_retries;       /* 0 -> 5 unless max_retries_set */
    bool max_retries_set;       /* max_retries as given, 0 = no retry */
    uint32_t retry_sleep_ms;    /* first backoff; 0 -> 100 */
    double retry_multiplier;    /* backoff factor per retry; < 1 -> 2.0 */
    const volatile bool *cancel;
};

struct as_write_item {
    const struct as_record *rec; /* ns, set, digest, key, generation (condition), bins */
    uint32_t ttl;                /* relative TTL for the request (see as_ttl_from_void_time) */
    /* out */
    int result;                  /* server result code; -1 = no answer */
    uint16_t generation;         /* record generation after the write (result 0) */
    uint32_t void_time;
    uint8_t attempts;
};

struct as_writer;

int as_writer_new(struct as_writer **out, struct err *e);
void as_writer_free(struct as_writer *w);

/* Writes one record. Returns 0 when the server gave a final answer (check item->result),
 * a negative error when none could be obtained or the input is invalid. */
int as_write_put(struct as_writer *w, struct as_cluster *c, const struct as_write_policy *p,
                 struct as_write_item *item, struct err *e);

/* Writes n records (each item's result filled). Returns 0 when every item has a final
 * answer, a negative error otherwise (unanswered items keep result -1). */
int as_write_batch(struct as_writer *w, struct as_cluster *c, const struct as_write_policy *p,
                   struct as_write_item *items, size_t n, struct err *e);

/* ---- pipelined writes ------------------------------------------------------------------------ */

struct as_write_pipe;

/* One per worker thread; `depth` = requests in flight at most (>= 1). */
int as_write_pipe_new(struct as_write_pipe **out, unsigned depth, struct err *e);
/* Drops the connections of requests still in flight (their answers are lost). */
void as_write_pipe_free(struct as_write_pipe *pp);
/*
 * Sends the first attempt of items[0..n): batch requests grouped by master node (a group of
 * one as a single write), or with `single` one single write per item; waits for the oldest
 * requests only when `depth` are already out. The items (and their records) must stay valid
 * until as_write_pipe_next hands back `tag`. Returns 0, or a negative error for invalid input
 * (nothing sent).
 */
int as_write_pipe_submit(struct as_write_pipe *pp, struct as_cluster *c, const struct as_write_policy *p,
                         struct as_write_item *items, size_t n, bool single, void *tag, struct err *e);
/*
 * Finishes the oldest submission: reads its answers, runs the remaining attempts of its
 * unanswered / refused items synchronously (backoff as above), sets *tag and *wrc (what
 * as_write_batch would have returned, message in *we). Returns 1 when nothing is pending.
 */
int as_write_pipe_next(struct as_write_pipe *pp, struct as_cluster *c, const struct as_write_policy *p,
                       void **tag, int *wrc, struct err *we);
unsigned as_write_pipe_in_flight(const struct as_write_pipe *pp);

/* Backoff before retry number `retry` (1-based) under policy p. */
#define AS_WRITE_MAX_RETRY_DELAY_MS 600000u
uint32_t as_write_retry_delay_ms(const struct as_write_policy *p, uint32_t retry);

/* Encoders (exposed for tests). */
int as_write_encode_single(struct as_buf *b, const struct as_write_policy *p,
                           const struct as_write_item *it, bool respond_all_ops, struct err *e);
int as_write_encode_batch(struct as_buf *b, const struct as_write_policy *p,
                          struct as_write_item *const *items, size_t n, const uint32_t *index,
                          struct err *e);

/* True for result codes worth another attempt. */
bool as_write_result_retryable(int result);

#endif
