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

/* Sends w->req and reads replies. Rows answered get their result; returns 0 when the
 * exchange completed, 1 when it failed on the network (unanswered rows stay -1), or a
 * negative error for a protocol violation / batch-level refusal that is not retryable. */
static int exchange(struct as_writer *w, struct as_node *node, const struct as_write_policy *p,
                    struct as_write_item **group, size_t n, bool batch, struct err *e)
{
    struct as_conn *conn;
    struct err ne;
    err_clear(&ne);
    if (as_node_conn_get(node, &conn, &ne) != 0) {
        LOG_D("as", "write: %s", ne.msg);
        return 1;
    }
    uint32_t total = p->total_timeout_ms ? p->total_timeout_ms : 10000;
    uint64_t deadline = as_deadline_in(total + 1000); /* the server gives up first */
    uint32_t sock = p->socket_timeout_ms;
    int rc = as_conn_write(conn, w->req.data, w->req.len, deadline, sock, &ne);
    if (batch)
        memset(w->seen, 0, n);
    bool done = false;
    while (!rc && !done) {
        struct as_proto_header h;
        rc = as_conn_read_proto(conn, &h, &w->body, deadline, sock, &ne);
        if (rc)
            break;
        if (h.type != AS_PROTO_MSG) {
            as_node_conn_drop(node, conn);
            return err_set(e, ERR_INVALID, "node %s: write reply of proto type %u", as_node_name(node), h.type);
        }
        size_t off = 0;
        while (off < w->body.len) {
            struct as_msg_view v;
            if (as_msg_parse(w->body.data + off, w->body.len - off, &v, e)) {
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
            w->seen[row] = 1;
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

/* ---- retry loop ------------------------------------------------------------------------------ */

static bool item_pending(const struct as_write_item *it)
{
    return it->result < 0 || as_write_result_retryable(it->result);
}

static int write_items(struct as_writer *w, struct as_cluster *c, const struct as_write_policy *p,
                       struct as_write_item *items, size_t n, bool single_call, struct err *e)
{
    int rc = writer_reserve(w, n, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rc = check_record(items[i].rec, e);
        if (rc)
            return rc;
        items[i].result = -1;
        items[i].attempts = 0;
    }
    uint32_t max_retries = p->max_retries ? p->max_retries : 5;
    uint32_t sleep_ms = p->retry_sleep_ms ? p->retry_sleep_ms : 100;
    for (uint32_t attempt = 0;; attempt++) {
        size_t np = 0;
        for (size_t i = 0; i < n; i++)
            if (item_pending(&items[i]))
                w->pending[np++] = &items[i];
        if (np == 0)
            return 0;
        if (attempt > max_retries)
            break;
        if (attempt > 0) {
            if (as_sleep_ms(sleep_ms, p->cancel))
                return err_set(e, ERR_UNAVAILABLE, "write cancelled");
            sleep_ms = sleep_ms * 2 > 5000 ? 5000 : sleep_ms * 2;
        }
        bool net_failure = false;
        /* group the pending items by master node */
        size_t left = np;
        while (left > 0) {
            struct as_write_item *first = w->pending[0];
            char ns[AS_NAMESPACE_NAME_MAX + 1];
            memcpy(ns, first->rec->ns, first->rec->ns_len);
            ns[first->rec->ns_len] = 0;
            struct as_node *node = as_cluster_partition_node(c, ns, as_partition_id(first->rec->digest), 0);
            size_t gn = 0, keep = 0;
            for (size_t i = 0; i < left; i++) {
                struct as_write_item *it = w->pending[i];
                bool same = false;
                if (node && it->rec->ns_len == first->rec->ns_len &&
                    memcmp(it->rec->ns, ns, it->rec->ns_len) == 0) {
                    struct as_node *o = as_cluster_partition_node(c, ns, as_partition_id(it->rec->digest), 0);
                    same = o == node;
                    as_node_release(o);
                } else if (!node) {
                    same = it == first;
                }
                if (same)
                    w->group[gn++] = it;
                else
                    w->pending[keep++] = it;
            }
            left = keep;
            for (size_t i = 0; i < gn; i++)
                w->group[i]->attempts++;
            if (!node) {
                if (as_cluster_ns_replicas(c, ns) == 0) {
                    for (size_t i = 0; i < gn; i++)
                        w->group[i]->result = AS_ERR_NAMESPACE;
                    continue; /* a namespace the cluster does not have: final answer 20 */
                }
                net_failure = true;
                continue;
            }
            bool batch = gn > 1;
            if (batch) {
                for (size_t i = 0; i < gn; i++)
                    w->index[i] = (uint32_t)i;
                rc = as_write_encode_batch(&w->req, p, w->group, gn, w->index, e);
            } else {
                rc = as_write_encode_single(&w->req, p, w->group[0],
                                            single_call ? p->respond_all_ops : true, e);
            }
            if (!rc)
                rc = exchange(w, node, p, w->group, gn, batch, e);
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
    return write_items(w, c, p, item, 1, true, e);
}

int as_write_batch(struct as_writer *w, struct as_cluster *c, const struct as_write_policy *p,
                   struct as_write_item *items, size_t n, struct err *e)
{
    if (n == 0)
        return 0;
    return write_items(w, c, p, items, n, false, e);
}
