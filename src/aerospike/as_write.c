/*
 * as_write.c - single and batch record writes with per-record results and retries (see
 * as_write.h).
 */
#include "aerospike/as_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define BATCH_PARENT_FLAGS 0x0d /* allow inline | respond all keys | report error rec (C client 7.3.0) */
#define BATCH_ROW_FLAGS 0x0e    /* has info2/3 | has generation | has ttl */

struct as_writer {
    struct as_buf req;
    struct as_buf body;
    struct as_write_item **pending;
    struct as_write_item **group;
    uint32_t *index; /* batch row index -> position in group */
    size_t cap;
    uint8_t *seen;   /* rows answered in the current batch */
};

int as_writer_new(struct as_writer **out, struct err *e)
{
    struct as_writer *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(e, ERR_NOMEM, "out of memory");
    as_buf_init(&w->req);
    as_buf_init(&w->body);
    *out = w;
    return 0;
}

void as_writer_free(struct as_writer *w)
{
    if (!w)
        return;
    as_buf_free(&w->req);
    as_buf_free(&w->body);
    free(w->pending);
    free(w->group);
    free(w->index);
    free(w->seen);
    free(w);
}

static int writer_reserve(struct as_writer *w, size_t n, struct err *e)
{
    if (n <= w->cap)
        return 0;
    struct as_write_item **p = realloc(w->pending, n * sizeof *p);
    if (p)
        w->pending = p;
    struct as_write_item **g = p ? realloc(w->group, n * sizeof *g) : NULL;
    if (g)
        w->group = g;
    uint32_t *ix = g ? realloc(w->index, n * sizeof *ix) : NULL;
    if (ix)
        w->index = ix;
    uint8_t *s = ix ? realloc(w->seen, n) : NULL;
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    w->seen = s;
    w->cap = n;
    return 0;
}

/* w->seen for n rows (the pipe reads replies of groups up to its callers' sizes). */
static int reserve_seen(struct as_writer *w, size_t n)
{
    struct err e;
    err_clear(&e);
    return writer_reserve(w, n, &e);
}

bool as_write_result_retryable(int r)
{
    return r == AS_ERR_TIMEOUT || r == AS_ERR_KEY_BUSY || r == AS_ERR_DEVICE_OVERLOAD ||
           r == AS_ERR_UNAVAILABLE || r == AS_ERR_BATCH_QUEUES_FULL || r == AS_ERR_XDR_KEY_BUSY;
}

/* ---- encoding ------------------------------------------------------------------------------ */

static void policy_bits(const struct as_write_policy *p, uint8_t *info2, uint8_t *info3)
{
    *info2 = AS_INFO2_WRITE;
    *info3 = 0;
    if (p->gen == AS_GEN_EQ)
        *info2 |= AS_INFO2_GENERATION;
    else if (p->gen == AS_GEN_GT)
        *info2 |= AS_INFO2_GENERATION_GT;
    switch (p->exists) {
    case AS_EXISTS_CREATE: *info2 |= AS_INFO2_CREATE_ONLY; break;
    case AS_EXISTS_UPDATE: *info3 |= AS_INFO3_UPDATE_ONLY; break;
    case AS_EXISTS_REPLACE: *info3 |= AS_INFO3_REPLACE_ONLY; break;
    case AS_EXISTS_CREATE_OR_REPLACE: *info3 |= AS_INFO3_CREATE_OR_REPLACE; break;
    default: break;
    }
    if (p->commit_master)
        *info3 |= AS_INFO3_COMMIT_MASTER;
}

static int check_record(const struct as_record *r, struct err *e)
{
    if (!r || !r->ns || r->ns_len == 0 || r->ns_len > AS_NAMESPACE_NAME_MAX)
        return err_set(e, ERR_INVALID, "write: record without a valid namespace");
    if (r->set_len > AS_SET_NAME_MAX)
        return err_set(e, ERR_INVALID, "write: set name longer than 63 bytes");
    if (r->n_bins > UINT16_MAX)
        return err_set(e, ERR_INVALID, "write: %u bins", r->n_bins);
    return 0;
}

/* KEY field data: type byte + key bytes; false when the record has no usable key. */
static bool put_key_field(struct as_buf *b, const struct as_value *k)
{
    uint8_t tmp[8];
    const void *data;
    uint32_t len;
    switch (k->type) {
    case AS_PARTICLE_INTEGER: {
        uint64_t u = (uint64_t)k->i;
        for (int i = 0; i < 8; i++)
            tmp[i] = (uint8_t)(u >> (56 - 8 * i));
        data = tmp;
        len = 8;
        break;
    }
    case AS_PARTICLE_FLOAT: {
        uint64_t u;
        memcpy(&u, &k->d, 8);
        for (int i = 0; i < 8; i++)
            tmp[i] = (uint8_t)(u >> (56 - 8 * i));
        data = tmp;
        len = 8;
        break;
    }
    case AS_PARTICLE_NULL:
        return false;
    default:
        data = k->data;
        len = k->len;
        break;
    }
    as_buf_put_u32(b, len + 2);
    as_buf_put_u8(b, AS_FIELD_KEY);
    as_buf_put_u8(b, k->type);
    as_buf_append(b, data, len);
    return true;
}

/* One WRITE op for a bin. */
static void put_bin(struct as_buf *b, const struct as_bin *bin)
{
    uint8_t tmp[8];
    const void *val = NULL;
    uint32_t vlen = 0, extra = 0;
    const struct as_value *v = &bin->v;
    switch (v->type) {
    case AS_PARTICLE_NULL:
        break;
    case AS_PARTICLE_INTEGER:
    case AS_PARTICLE_FLOAT: {
        uint64_t u;
        if (v->type == AS_PARTICLE_INTEGER)
            u = (uint64_t)v->i;
        else
            memcpy(&u, &v->d, 8);
        for (int i = 0; i < 8; i++)
            tmp[i] = (uint8_t)(u >> (56 - 8 * i));
        val = tmp;
        vlen = 8;
        break;
    }
    case AS_PARTICLE_BOOL:
        tmp[0] = v->b ? 1 : 0;
        val = tmp;
        vlen = 1;
        break;
    case AS_PARTICLE_GEOJSON:
        extra = 3; /* flags 0, ncells 0 */
        val = v->data;
        vlen = v->len;
        break;
    default:
        val = v->data;
        vlen = v->len;
        break;
    }
    if (bin->name_len > 255 || (uint64_t)vlen + extra + 4 + bin->name_len > UINT32_MAX) {
        b->failed = true;
        return;
    }
    as_buf_put_u32(b, 4 + bin->name_len + vlen + extra);
    as_buf_put_u8(b, AS_OP_WRITE);
    as_buf_put_u8(b, v->type);
    as_buf_put_u8(b, 0);
    as_buf_put_u8(b, (uint8_t)bin->name_len);
    as_buf_append(b, bin->name, bin->name_len);
    if (extra) {
        as_buf_put_u8(b, 0);
        as_buf_put_u16(b, 0);
    }
    if (vlen)
        as_buf_append(b, val, vlen);
}

static uint32_t server_timeout(const struct as_write_policy *p)
{
    uint32_t total = p->total_timeout_ms ? p->total_timeout_ms : 10000;
    if (p->socket_timeout_ms && p->socket_timeout_ms < total)
        return p->socket_timeout_ms;
    return total;
}

int as_write_encode_single(struct as_buf *b, const struct as_write_policy *p,
                           const struct as_write_item *it, bool respond_all_ops, struct err *e)
{
    as_buf_reset(b);
    const struct as_record *r = it->rec;
    int rc = check_record(r, e);
    if (rc)
        return rc;
    struct as_msg_header h = { 0 };
    policy_bits(p, &h.info2, &h.info3);
    if (respond_all_ops)
        h.info2 |= AS_INFO2_RESPOND_ALL_OPS;
    h.generation = p->gen != AS_GEN_IGNORE ? r->generation : 0;
    h.record_ttl = it->ttl;
    h.transaction_ttl = server_timeout(p);
    size_t proto = as_proto_begin(b, AS_PROTO_MSG);
    size_t msg = as_msg_header_put(b, &h);
    uint16_t nf = 3;
    as_field_put(b, AS_FIELD_NAMESPACE, r->ns, r->ns_len);
    as_field_put(b, AS_FIELD_SET, r->set_len ? r->set : "", r->set_len);
    as_field_put(b, AS_FIELD_DIGEST, r->digest, AS_DIGEST_SIZE);
    if (p->send_key && put_key_field(b, &r->key))
        nf++;
    for (uint32_t i = 0; i < r->n_bins; i++)
        put_bin(b, &r->bins[i]);
    as_msg_set_counts(b, msg, nf, (uint16_t)r->n_bins);
    return as_proto_end(b, proto, e);
}

int as_write_encode_batch(struct as_buf *b, const struct as_write_policy *p,
                          struct as_write_item *const *items, size_t n, const uint32_t *index,
                          struct err *e)
{
    as_buf_reset(b);
    if (n == 0 || n > UINT32_MAX)
        return err_set(e, ERR_INVALID, "batch of %zu records", n);
    struct as_msg_header h = { .info1 = AS_INFO1_BATCH, .transaction_ttl = server_timeout(p),
                               .n_fields = 1 };
    size_t proto = as_proto_begin(b, AS_PROTO_MSG);
    as_msg_header_put(b, &h);
    size_t f = as_field_begin(b, AS_FIELD_BATCH);
    as_buf_put_u32(b, (uint32_t)n);
    as_buf_put_u8(b, BATCH_PARENT_FLAGS);
    uint8_t info2, info3;
    policy_bits(p, &info2, &info3);
    info2 |= AS_INFO2_RESPOND_ALL_OPS;
    for (size_t i = 0; i < n; i++) {
        const struct as_record *r = items[i]->rec;
        int rc = check_record(r, e);
        if (rc)
            return rc;
        as_buf_put_u32(b, index[i]);
        as_buf_append(b, r->digest, AS_DIGEST_SIZE);
        as_buf_put_u8(b, BATCH_ROW_FLAGS);
        as_buf_put_u8(b, 0); /* info1 */
        as_buf_put_u8(b, info2);
        as_buf_put_u8(b, info3);
        as_buf_put_u16(b, p->gen != AS_GEN_IGNORE ? r->generation : 0);
        as_buf_put_u32(b, items[i]->ttl);
        size_t counts = b->len;
        as_buf_put_u16(b, 0);
        as_buf_put_u16(b, (uint16_t)r->n_bins);
        uint16_t nf = 2;
        as_field_put(b, AS_FIELD_NAMESPACE, r->ns, r->ns_len);
        as_field_put(b, AS_FIELD_SET, r->set_len ? r->set : "", r->set_len);
        if (p->send_key && put_key_field(b, &r->key))
            nf++;
        if (counts + 2 <= b->len)
            as_buf_patch_u16(b, counts, nf);
        for (uint32_t k = 0; k < r->n_bins; k++)
            put_bin(b, &r->bins[k]);
    }
    as_field_end(b, f);
    return as_proto_end(b, proto, e);
}

/* ---- exchanges ------------------------------------------------------------------------------ */

/* Reads the replies of the request sent on `conn` (see exchange). Gives the connection back
 * to the node's pool (or drops it) in every case. */
static int receive_replies(struct as_buf *body, struct as_node *node, struct as_conn *conn,
                           uint64_t deadline, uint32_t sock, struct as_write_item **group, size_t n,
                           bool batch, uint8_t *seen, struct err *e)
{
    struct err ne;
    err_clear(&ne);
    if (batch)
        memset(seen, 0, n);
    bool done = false;
    int rc = 0;
    while (!rc && !done) {
        struct as_proto_header h;
        rc = as_conn_read_proto(conn, &h, body, deadline, sock, &ne);
        if (rc)
            break;
        if (h.type != AS_PROTO_MSG) {
            as_node_conn_drop(node, conn);
            return err_set(e, ERR_INVALID, "node %s: write reply of proto type %u", as_node_name(node), h.type);
        }
        size_t off = 0;
        while (off < body->len) {
            struct as_msg_view v;
            if (as_msg_parse(body->data + off, body->len - off, &v, e)) {
                as_node_conn_drop(node, conn);
                return err_prefix(e, "node %s: write reply", as_node_name(node));
            }
            off += v.size;
            if (!batch) {
                group[0]->result = v.h.result_code;
                group[0]->generation = (uint16_t)v.h.generation;
                group[0]->void_time = v.h.record_ttl;
                done = true;
                break;
            }
            if (v.h.info3 & AS_INFO3_LAST) {
                done = true;
                if (v.h.result_code != 0) {
                    int res = v.h.result_code;
                    as_node_conn_put(node, conn);
                    if (as_write_result_retryable(res)) {
                        LOG_D("as", "batch on node %s refused: %s; retrying", as_node_name(node),
                              as_result_name(res));
                        return 1;
                    }
                    return err_set(e, ERR_IO, "node %s: batch write failed: %s (%d)",
                                   as_node_name(node), as_result_name(res), res);
                }
                break;
            }
            uint32_t row = v.h.transaction_ttl;
            if (row >= n) {
                as_node_conn_drop(node, conn);
                return err_set(e, ERR_INVALID, "node %s: batch reply for row %u of %zu",
                               as_node_name(node), row, n);
            }
            seen[row] = 1;
            group[row]->result = v.h.result_code;
            group[row]->generation = (uint16_t)v.h.generation;
            group[row]->void_time = v.h.record_ttl;
        }
    }
    if (rc) {
        as_node_conn_drop(node, conn);
        LOG_D("as", "write on node %s: %s", as_node_name(node), ne.msg);
        return 1;
    }
    as_node_conn_put(node, conn);
    return 0;
}

static uint64_t attempt_deadline(const struct as_write_policy *p)
{
    uint32_t total = p->total_timeout_ms ? p->total_timeout_ms : 10000;
    return as_deadline_in(total + 1000); /* the server gives up first */
}

/* Sends `req` on a pooled connection: 0 sent (*conn set), 1 network failure (nothing sent). */
static int send_request(struct as_node *node, const struct as_buf *req, uint64_t deadline,
                        uint32_t sock, struct as_conn **conn)
{
    struct err ne;
    err_clear(&ne);
    if (as_node_conn_get(node, conn, &ne) != 0) {
        LOG_D("as", "write: %s", ne.msg);
        return 1;
    }
    if (as_conn_write(*conn, req->data, req->len, deadline, sock, &ne) != 0) {
        as_node_conn_drop(node, *conn);
        LOG_D("as", "write on node %s: %s", as_node_name(node), ne.msg);
        return 1;
    }
    return 0;
}

/* Sends w->req and reads replies. Rows answered get their result; returns 0 when the
 * exchange completed, 1 when it failed on the network (unanswered rows stay -1), or a
 * negative error for a protocol violation / batch-level refusal that is not retryable. */
static int exchange(struct as_writer *w, struct as_node *node, const struct as_write_policy *p,
                    struct as_write_item **group, size_t n, bool batch, struct err *e)
{
    uint64_t deadline = attempt_deadline(p);
    struct as_conn *conn;
    if (send_request(node, &w->req, deadline, p->socket_timeout_ms, &conn))
        return 1;
    return receive_replies(&w->body, node, conn, deadline, p->socket_timeout_ms, group, n, batch,
                           w->seen, e);
}

/* ---- grouping and retries ------------------------------------------------------------------- */

static bool item_pending(const struct as_write_item *it)
{
    return it->result < 0 || as_write_result_retryable(it->result);
}

uint32_t as_write_retry_delay_ms(const struct as_write_policy *p, uint32_t retry)
{
    double base = p->retry_sleep_ms ? p->retry_sleep_ms : 100;
    double mult = p->retry_multiplier >= 1.0 ? p->retry_multiplier : 2.0;
    double d = base;
    for (uint32_t i = 1; i < retry && d < AS_WRITE_MAX_RETRY_DELAY_MS; i++)
        d *= mult;
    return d >= AS_WRITE_MAX_RETRY_DELAY_MS ? AS_WRITE_MAX_RETRY_DELAY_MS : (uint32_t)d;
}

static uint32_t retry_limit(const struct as_write_policy *p)
{
    return p->max_retries || p->max_retries_set ? p->max_retries : 5;
}

/* Takes the next group of w->pending[0..*left) sharing the master node of the first one (the
 * rest stays in pending). *node = that node (a reference), NULL when the partition has no
 * master (then the group is the first item alone, and *ns_unknown tells whether the cluster
 * does not have the namespace at all). */
static size_t take_group(struct as_writer *w, struct as_cluster *c, size_t *left, struct as_node **node,
                         bool *ns_unknown)
{
    struct as_write_item *first = w->pending[0];
    char ns[AS_NAMESPACE_NAME_MAX + 1];
    memcpy(ns, first->rec->ns, first->rec->ns_len);
    ns[first->rec->ns_len] = 0;
    *node = as_cluster_partition_node(c, ns, as_partition_id(first->rec->digest), 0);
    *ns_unknown = false;
    size_t gn = 0, keep = 0;
    if (!*node) {
        w->group[gn++] = first;
        for (size_t i = 1; i < *left; i++)
            w->pending[keep++] = w->pending[i];
        *left = keep;
        *ns_unknown = as_cluster_ns_replicas(c, ns) == 0;
        return gn;
    }
    for (size_t i = 0; i < *left; i++) {
        struct as_write_item *it = w->pending[i];
        bool same = it == first;
        if (!same && it->rec->ns_len == first->rec->ns_len && memcmp(it->rec->ns, ns, it->rec->ns_len) == 0) {
            struct as_node *o = as_cluster_partition_node(c, ns, as_partition_id(it->rec->digest), 0);
            same = o == *node;
            as_node_release(o);
        }
        if (same)
            w->group[gn++] = it;
        else
            w->pending[keep++] = it;
    }
    *left = keep;
    return gn;
}

/* Encodes the group into w->req: a batch, or a single write for a group of one. */
static int encode_group(struct as_writer *w, const struct as_write_policy *p, size_t gn, bool single_call,
                        struct err *e)
{
    if (gn > 1) {
        for (size_t i = 0; i < gn; i++)
            w->index[i] = (uint32_t)i;
        return as_write_encode_batch(&w->req, p, w->group, gn, w->index, e);
    }
    return as_write_encode_single(&w->req, p, w->group[0], single_call ? p->respond_all_ops : true, e);
}

static int write_items_from(struct as_writer *w, struct as_cluster *c, const struct as_write_policy *p,
                            struct as_write_item *items, size_t n, bool single_call, uint32_t first_attempt,
                            struct err *e)
{
    int rc = writer_reserve(w, n, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rc = check_record(items[i].rec, e);
        if (rc)
            return rc;
        if (first_attempt == 0) {
            items[i].result = -1;
            items[i].attempts = 0;
        }
    }
    uint32_t max_retries = retry_limit(p);
    for (uint32_t attempt = first_attempt;; attempt++) {
        size_t np = 0;
        for (size_t i = 0; i < n; i++)
            if (item_pending(&items[i]))
                w->pending[np++] = &items[i];
        if (np == 0)
            return 0;
        if (attempt > max_retries)
            break;
        if (attempt > 0 && as_sleep_ms(as_write_retry_delay_ms(p, attempt), p->cancel))
            return err_set(e, ERR_UNAVAILABLE, "write cancelled");
        bool net_failure = false;
        size_t left = np;
        while (left > 0) {
            struct as_node *node;
            bool ns_unknown;
            size_t gn = take_group(w, c, &left, &node, &ns_unknown);
            for (size_t i = 0; i < gn; i++)
                w->group[i]->attempts++;
            if (!node) {
                if (ns_unknown) {
                    for (size_t i = 0; i < gn; i++)
                        w->group[i]->result = AS_ERR_NAMESPACE;
                    continue; /* a namespace the cluster does not have: final answer 20 */
                }
                net_failure = true;
                continue;
            }
            rc = encode_group(w, p, gn, single_call, e);
            if (!rc)
                rc = exchange(w, node, p, w->group, gn, gn > 1, e);
            as_node_release(node);
            if (rc < 0)
                return rc;
            if (rc == 1)
                net_failure = true;
        }
        if (net_failure) {
            struct err te;
            err_clear(&te);
            as_cluster_tend(c, &te);
        }
    }
    size_t unanswered = 0, busy = 0;
    int last = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].result < 0)
            unanswered++;
        else if (as_write_result_retryable(items[i].result)) {
            busy++;
            last = items[i].result;
        }
    }
    if (busy && !unanswered)
        return err_set(e, ERR_UNAVAILABLE, "write: %zu records still refused (%s) after %u retries", busy,
                       as_result_name(last), max_retries);
    return err_set(e, ERR_UNAVAILABLE, "write: %zu records got no answer after %u retries%s", unanswered + busy,
                   max_retries, busy ? " (some refused as busy)" : "");
}

int as_write_put(struct as_writer *w, struct as_cluster *c, const struct as_write_policy *p,
                 struct as_write_item *item, struct err *e)
{
    return write_items_from(w, c, p, item, 1, true, 0, e);
}

int as_write_batch(struct as_writer *w, struct as_cluster *c, const struct as_write_policy *p,
                   struct as_write_item *items, size_t n, struct err *e)
{
    if (n == 0)
        return 0;
    return write_items_from(w, c, p, items, n, false, 0, e);
}

/* ---- pipelined writes ------------------------------------------------------------------------ */

/* One request in flight: a node group of a submission, on a connection of its own. */
struct pipe_req {
    struct pipe_sub *sub;
    struct as_node *node;
    struct as_conn *conn;
    uint64_t deadline;
    struct as_write_item **group;
    size_t n, cap;
};

/* One submission: the caller's items, done when every request of it has been answered. */
struct pipe_sub {
    void *tag;
    struct as_write_item *items;
    size_t n;
    bool single; /* items written one by one (disable-batch-writes) */
    unsigned open_reqs;
    int rc;      /* first fatal error of a request (negative), 0 */
    struct err err;
    struct pipe_sub *next; /* submission order */
};

struct as_write_pipe {
    struct as_writer *w;       /* encoding buffers, grouping arrays and the retry path */
    unsigned depth;            /* requests in flight at most */
    struct pipe_req *reqs;     /* ring of `depth` requests, FIFO */
    unsigned head, count;
    struct pipe_sub *subs;     /* submissions in order (oldest first) */
    struct pipe_sub *free_subs;
    struct as_buf body;
};

int as_write_pipe_new(struct as_write_pipe **out, unsigned depth, struct err *e)
{
    struct as_write_pipe *pp = calloc(1, sizeof *pp);
    if (!pp)
        return err_set(e, ERR_NOMEM, "out of memory");
    pp->depth = depth ? depth : 1;
    pp->reqs = calloc(pp->depth, sizeof *pp->reqs);
    as_buf_init(&pp->body);
    if (!pp->reqs || as_writer_new(&pp->w, e)) {
        free(pp->reqs);
        free(pp);
        return e->code ? e->code : err_set(e, ERR_NOMEM, "out of memory");
    }
    *out = pp;
    return 0;
}

static void free_sub_list(struct pipe_sub *s)
{
    while (s) {
        struct pipe_sub *n = s->next;
        free(s);
        s = n;
    }
}

void as_write_pipe_free(struct as_write_pipe *pp)
{
    if (!pp)
        return;
    for (unsigned i = 0; i < pp->count; i++) { /* abandoned requests: their connections are unusable */
        struct pipe_req *rq = &pp->reqs[(pp->head + i) % pp->depth];
        as_node_conn_drop(rq->node, rq->conn);
        as_node_release(rq->node);
    }
    for (unsigned i = 0; i < pp->depth; i++)
        free(pp->reqs[i].group);
    free(pp->reqs);
    free_sub_list(pp->subs);
    free_sub_list(pp->free_subs);
    as_buf_free(&pp->body);
    as_writer_free(pp->w);
    free(pp);
}

unsigned as_write_pipe_in_flight(const struct as_write_pipe *pp)
{
    return pp->count;
}

/* Reads the replies of the oldest request in flight. */
static void complete_oldest(struct as_write_pipe *pp, const struct as_write_policy *p)
{
    struct pipe_req *rq = &pp->reqs[pp->head];
    pp->head = (pp->head + 1) % pp->depth;
    pp->count--;
    struct pipe_sub *sub = rq->sub;
    if (reserve_seen(pp->w, rq->n) != 0) {
        as_node_conn_drop(rq->node, rq->conn); /* rows stay unanswered: retried */
    } else {
        struct err e;
        err_clear(&e);
        int rc = receive_replies(&pp->body, rq->node, rq->conn, rq->deadline, p->socket_timeout_ms, rq->group,
                                 rq->n, !sub->single && rq->n > 1, pp->w->seen, &e);
        if (rc < 0 && sub->rc == 0) {
            sub->rc = rc;
            sub->err = e;
        }
    }
    as_node_release(rq->node);
    rq->node = NULL;
    rq->conn = NULL;
    sub->open_reqs--;
}

/* Sends w->req for the group in w->group[0..gn) on a new request slot; 1 = network failure. */
static int start_request(struct as_write_pipe *pp, struct pipe_sub *sub, struct as_node *node, size_t gn,
                         const struct as_write_policy *p)
{
    while (pp->count >= pp->depth)
        complete_oldest(pp, p);
    struct pipe_req *rq = &pp->reqs[(pp->head + pp->count) % pp->depth];
    if (gn > rq->cap) {
        struct as_write_item **g = realloc(rq->group, gn * sizeof *g);
        if (!g)
            return 1;
        rq->group = g;
        rq->cap = gn;
    }
    uint64_t deadline = attempt_deadline(p);
    struct as_conn *conn = NULL;
    /* the pool may be exhausted by our own requests: finish some and try again */
    while (send_request(node, &pp->w->req, deadline, p->socket_timeout_ms, &conn)) {
        if (pp->count == 0)
            return 1;
        complete_oldest(pp, p);
    }
    memcpy(rq->group, pp->w->group, gn * sizeof *rq->group);
    rq->n = gn;
    rq->sub = sub;
    rq->node = node;
    as_node_acquire(node);
    rq->conn = conn;
    rq->deadline = deadline;
    pp->count++;
    sub->open_reqs++;
    return 0;
}

int as_write_pipe_submit(struct as_write_pipe *pp, struct as_cluster *c, const struct as_write_policy *p,
                         struct as_write_item *items, size_t n, bool single, void *tag, struct err *e)
{
    struct as_writer *w = pp->w;
    if (n == 0)
        return err_set(e, ERR_INVALID, "empty write submission");
    int rc = writer_reserve(w, n, e);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = check_record(items[i].rec, e);
    if (rc)
        return rc;
    struct pipe_sub *sub = pp->free_subs;
    if (sub)
        pp->free_subs = sub->next;
    else if (!(sub = malloc(sizeof *sub)))
        return err_set(e, ERR_NOMEM, "out of memory");
    memset(sub, 0, sizeof *sub);
    *sub = (struct pipe_sub){.tag = tag, .items = items, .n = n, .single = single};
    struct pipe_sub **tail = &pp->subs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = sub;
    for (size_t i = 0; i < n; i++) {
        items[i].result = -1;
        items[i].attempts = 1;
    }
    /* first attempt, without waiting for answers; failures are left for as_write_pipe_next */
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t left;
        if (single) {
            w->pending[0] = &items[i];
            left = 1;
        } else {
            if (i > 0)
                break;
            for (size_t k = 0; k < n; k++)
                w->pending[k] = &items[k];
            left = n;
        }
        while (left > 0 && rc == 0) {
            struct as_node *node;
            bool ns_unknown;
            size_t gn = take_group(w, c, &left, &node, &ns_unknown);
            if (!node) {
                if (ns_unknown)
                    for (size_t k = 0; k < gn; k++)
                        w->group[k]->result = AS_ERR_NAMESPACE;
                continue; /* no master now: left unanswered, retried later */
            }
            rc = encode_group(w, p, gn, single, e);
            if (rc == 0)
                (void)start_request(pp, sub, node, gn, p); /* a network failure leaves the rows -1 */
            as_node_release(node);
        }
    }
    if (rc) { /* encoding failed: nothing more of this submission goes out */
        sub->rc = rc;
        sub->err = *e;
    }
    return 0;
}

int as_write_pipe_next(struct as_write_pipe *pp, struct as_cluster *c, const struct as_write_policy *p,
                       void **tag, int *wrc, struct err *we)
{
    struct pipe_sub *sub = pp->subs;
    if (!sub)
        return 1;
    while (sub->open_reqs > 0)
        complete_oldest(pp, p);
    pp->subs = sub->next;
    *tag = sub->tag;
    err_clear(we);
    if (sub->rc) {
        *wrc = sub->rc;
        *we = sub->err;
    } else {
        bool again = false;
        for (size_t i = 0; i < sub->n && !again; i++)
            again = item_pending(&sub->items[i]);
        /* further attempts run here, synchronously, with the policy's backoff (the answers
         * of later submissions wait in their sockets meanwhile) */
        *wrc = 0;
        if (again && !sub->single)
            *wrc = write_items_from(pp->w, c, p, sub->items, sub->n, false, 1, we);
        for (size_t i = 0; again && sub->single && i < sub->n && *wrc == 0; i++)
            if (item_pending(&sub->items[i]))
                *wrc = write_items_from(pp->w, c, p, &sub->items[i], 1, true, 1, we);
    }
    sub->next = pp->free_subs;
    pp->free_subs = sub;
    return 0;
}
