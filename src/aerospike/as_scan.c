/*
 * as_scan.c - partition scans: partition sets, request encoding, reply streaming, the
 * per-round node assignment and the retry loop (see as_scan.h).
 */
#include "aerospike/as_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/log.h"

/* ---- partition sets -------------------------------------------------------------------- */

void as_scan_parts_free(struct as_scan_parts *ps)
{
    free(ps->p);
    ps->p = NULL;
    ps->n = 0;
}

static int parts_alloc(struct as_scan_parts *ps, size_t n, struct err *e)
{
    ps->p = calloc(n ? n : 1, sizeof *ps->p);
    ps->n = 0;
    if (!ps->p)
        return err_set(e, ERR_NOMEM, "out of memory");
    return 0;
}

int as_scan_parts_range(struct as_scan_parts *ps, uint32_t begin, uint32_t count, struct err *e)
{
    ps->p = NULL;
    ps->n = 0;
    if (count == 0 || begin >= AS_PARTITIONS || count > AS_PARTITIONS - begin)
        return err_set(e, ERR_INVALID, "partition range %u+%u is outside 0..4095", begin, count);
    int rc = parts_alloc(ps, count, e);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < count; i++)
        ps->p[i].pid = (uint16_t)(begin + i);
    ps->n = count;
    return 0;
}

int as_scan_parts_list(struct as_scan_parts *ps, const uint16_t *pids, size_t n, struct err *e)
{
    ps->p = NULL;
    ps->n = 0;
    if (n == 0 || n > AS_PARTITIONS)
        return err_set(e, ERR_INVALID, "partition list of %zu entries", n);
    uint8_t seen[AS_PARTITIONS] = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (pids[i] >= AS_PARTITIONS)
            return err_set(e, ERR_INVALID, "partition %u is outside 0..4095", pids[i]);
        if (seen[pids[i]]++)
            return err_set(e, ERR_INVALID, "partition %u listed twice", pids[i]);
    }
    int rc = parts_alloc(ps, n, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        ps->p[i].pid = pids[i];
    ps->n = n;
    return 0;
}

int as_scan_parts_after_digest(struct as_scan_parts *ps, const uint8_t digest[AS_DIGEST_SIZE],
                               struct err *e)
{
    uint32_t pid = as_partition_id(digest);
    int rc = as_scan_parts_range(ps, pid, AS_PARTITIONS - pid, e);
    if (rc)
        return rc;
    ps->p[0].has_digest = true;
    memcpy(ps->p[0].digest, digest, AS_DIGEST_SIZE);
    return 0;
}

void as_scan_parts_resume(struct as_scan_parts *ps, uint32_t pid, const uint8_t digest[AS_DIGEST_SIZE])
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->p[i].pid == pid) {
            ps->p[i].has_digest = true;
            memcpy(ps->p[i].digest, digest, AS_DIGEST_SIZE);
            return;
        }
}

size_t as_scan_parts_pending(const struct as_scan_parts *ps)
{
    size_t k = 0;
    for (size_t i = 0; i < ps->n; i++)
        k += ps->p[i].state == AS_PART_PENDING;
    return k;
}

/* ---- encoding ------------------------------------------------------------------------------ */

int as_scan_encode(struct as_buf *b, const struct as_scan_policy *p, uint64_t task_id,
                   const uint16_t *pids, size_t n_pids, const uint8_t *digests, size_t n_digests,
                   uint64_t max_records, struct err *e)
{
    as_buf_reset(b);
    if (!p->ns || !*p->ns || strlen(p->ns) > AS_NAMESPACE_NAME_MAX)
        return err_set(e, ERR_INVALID, "scan: bad namespace");
    struct as_msg_header h = {
        .info1 = AS_INFO1_READ | (p->no_bins ? AS_INFO1_NOBINDATA : 0),
        .info3 = AS_INFO3_PARTITION_DONE,
        .record_ttl = AS_READ_TOUCH_OFF,
    };
    struct as_msgw w;
    as_msgw_begin(&w, b, &h);
    as_msgw_field_str(&w, AS_FIELD_NAMESPACE, p->ns);
    if (p->set && *p->set)
        as_msgw_field_str(&w, AS_FIELD_SET, p->set);
    if (p->records_per_second)
        as_msgw_field_u32(&w, AS_FIELD_RPS, p->records_per_second);
    as_msgw_field_u32(&w, AS_FIELD_SOCKET_TIMEOUT, p->socket_timeout_ms ? p->socket_timeout_ms : 10000);
    as_msgw_field_u64(&w, AS_FIELD_TRID, task_id);
    if (p->filter && p->filter_len)
        as_msgw_field(&w, AS_FIELD_FILTER, p->filter, p->filter_len);
    if (n_pids) {
        size_t off = as_msgw_field_begin(&w, AS_FIELD_PID_ARRAY);
        for (size_t i = 0; i < n_pids; i++)
            as_buf_put_u16le(b, pids[i]);
        as_field_end(b, off);
    }
    if (n_digests)
        as_msgw_field(&w, AS_FIELD_DIGEST_ARRAY, digests, n_digests * AS_DIGEST_SIZE);
    if (max_records)
        as_msgw_field_u64(&w, AS_FIELD_MAX_RECORDS, max_records);
    if (!p->no_bins)
        for (size_t i = 0; i < p->n_bins; i++) {
            size_t nl = strlen(p->bins[i]);
            if (nl > AS_BIN_NAME_MAX)
                return err_set(e, ERR_INVALID, "scan: bin name '%s' longer than 15 bytes", p->bins[i]);
            as_msgw_op(&w, AS_OP_READ, AS_PARTICLE_NULL, p->bins[i], nl, NULL, 0);
        }
    return as_msgw_end(&w, e);
}

/* ---- decoding ------------------------------------------------------------------------------ */

static int decode_value(uint8_t type, const uint8_t *d, uint32_t len, struct as_value *v)
{
    memset(v, 0, sizeof *v);
    v->type = type;
    switch (type) {
    case AS_PARTICLE_NULL:
        return 0;
    case AS_PARTICLE_INTEGER:
        return as_particle_int(d, len, &v->i);
    case AS_PARTICLE_FLOAT:
        return as_particle_double(d, len, &v->d);
    case AS_PARTICLE_BOOL:
        return as_particle_bool(d, len, &v->b);
    case AS_PARTICLE_GEOJSON:
        return as_particle_geojson_text(d, len, &v->data, &v->len);
    default:
        v->data = d;
        v->len = len;
        return 0;
    }
}

int as_scan_decode_record(const struct as_msg_view *v, struct as_record *r, struct as_bin *bins,
                          struct err *e)
{
    memset(r, 0, sizeof *r);
    bool have_digest = false;
    struct as_iter it;
    struct as_field f;
    as_msg_fields(v, &it);
    while (as_field_next(&it, &f)) {
        switch (f.type) {
        case AS_FIELD_NAMESPACE:
            r->ns = (const char *)f.data;
            r->ns_len = f.len;
            break;
        case AS_FIELD_SET:
            r->set = (const char *)f.data;
            r->set_len = f.len;
            break;
        case AS_FIELD_DIGEST:
            if (f.len != AS_DIGEST_SIZE)
                return err_set(e, ERR_INVALID, "scan record: digest of %u bytes", f.len);
            memcpy(r->digest, f.data, AS_DIGEST_SIZE);
            have_digest = true;
            break;
        case AS_FIELD_KEY:
            if (f.len < 1)
                return err_set(e, ERR_INVALID, "scan record: empty KEY field");
            switch (f.data[0]) {
            case AS_PARTICLE_INTEGER:
            case AS_PARTICLE_FLOAT:
                if (f.len != 9 || decode_value(f.data[0], f.data + 1, 8, &r->key))
                    return err_set(e, ERR_INVALID, "scan record: numeric key of %u bytes", f.len - 1);
                break;
            default:
                if (!as_particle_type_known(f.data[0]) || f.data[0] == AS_PARTICLE_NULL)
                    return err_set(e, ERR_INVALID, "scan record: key particle type %u", f.data[0]);
                r->key.type = f.data[0];
                r->key.data = f.data + 1;
                r->key.len = f.len - 1;
                break;
            }
            break;
        default:
            break;
        }
    }
    if (!have_digest)
        return err_set(e, ERR_INVALID, "scan record without digest");
    r->generation = (uint16_t)v->h.generation;
    r->void_time = v->h.record_ttl;
    struct as_op op;
    uint32_t k = 0;
    as_msg_ops(v, &it);
    while (as_op_next(&it, &op)) {
        struct as_bin *b = &bins[k];
        b->name = (const char *)op.name;
        b->name_len = op.name_len;
        if (decode_value(op.particle_type, op.value, op.value_len, &b->v))
            return err_set(e, ERR_INVALID, "scan record: bin '%.*s': bad %s value of %u bytes",
                           (int)op.name_len, op.name, as_particle_type_name(op.particle_type),
                           op.value_len);
        k++;
    }
    r->n_bins = k;
    r->bins = bins;
    return 0;
}

/* ---- scanner ----------------------------------------------------------------------------- */

struct node_req {
    struct as_node *node;
    size_t *idx; /* indexes into parts */
    size_t n;
    size_t cap;
    uint64_t quota; /* MAX_RECORDS sent, 0 = none */
    uint64_t got;
};

struct as_scanner {
    struct as_buf req;
    struct as_buf body;
    struct as_bin *bins;
    size_t bins_cap;
    uint16_t pids[AS_PARTITIONS];
    uint8_t digests[AS_PARTITIONS * AS_DIGEST_SIZE];
    int32_t slot[AS_PARTITIONS];       /* pid -> index in parts, -1 = not in the scan */
    uint8_t round_retry[AS_PARTITIONS]; /* pid marked for retry in this round */
    struct node_req *groups;
    size_t n_groups;
    size_t groups_cap;
};

int as_scanner_new(struct as_scanner **out, struct err *e)
{
    struct as_scanner *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    as_buf_init(&s->req);
    as_buf_init(&s->body);
    *out = s;
    return 0;
}

void as_scanner_free(struct as_scanner *s)
{
    if (!s)
        return;
    as_buf_free(&s->req);
    as_buf_free(&s->body);
    free(s->bins);
    for (size_t i = 0; i < s->groups_cap; i++)
        free(s->groups[i].idx);
    free(s->groups);
    free(s);
}

static void groups_clear(struct as_scanner *s)
{
    for (size_t i = 0; i < s->n_groups; i++) {
        as_node_release(s->groups[i].node);
        s->groups[i].node = NULL;
        s->groups[i].n = 0;
    }
    s->n_groups = 0;
}

static struct node_req *group_for(struct as_scanner *s, struct as_node *n, struct err *e)
{
    for (size_t i = 0; i < s->n_groups; i++)
        if (s->groups[i].node == n) {
            as_node_release(n); /* the group already holds a reference */
            return &s->groups[i];
        }
    if (s->n_groups == s->groups_cap) {
        size_t cap = s->groups_cap ? s->groups_cap * 2 : 4;
        struct node_req *g = realloc(s->groups, cap * sizeof *g);
        if (!g) {
            as_node_release(n);
            err_set(e, ERR_NOMEM, "out of memory");
            return NULL;
        }
        memset(g + s->groups_cap, 0, (cap - s->groups_cap) * sizeof *g);
        s->groups = g;
        s->groups_cap = cap;
    }
    struct node_req *g = &s->groups[s->n_groups++];
    g->node = n;
    g->n = 0;
    g->quota = 0;
    g->got = 0;
    return g;
}

static int group_add(struct node_req *g, size_t idx, struct err *e)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        size_t *x = realloc(g->idx, cap * sizeof *x);
        if (!x)
            return err_set(e, ERR_NOMEM, "out of memory");
        g->idx = x;
        g->cap = cap;
    }
    g->idx[g->n++] = idx;
    return 0;
}

static bool node_allowed(const struct as_scan_policy *p, const struct as_node *n)
{
    if (!p->n_nodes)
        return true;
    for (size_t i = 0; i < p->n_nodes; i++)
        if (strcasecmp(p->nodes[i], as_node_name(n)) == 0)
            return true;
    return false;
}

static bool retryable_result(int r)
{
    return r == AS_ERR_UNAVAILABLE || r == AS_ERR_TIMEOUT || r == AS_ERR_SINDEX_NOT_FOUND ||
           r == AS_ERR_SINDEX_NOT_READABLE || r == AS_ERR_KEY_BUSY || r == AS_ERR_DEVICE_OVERLOAD;
}

enum node_outcome { NODE_OK = 0, NODE_RETRY = 1 };

/* Marks the unfinished partitions of a node for another round. */
static void node_retry(struct as_scan_parts *parts, struct node_req *g, int result,
                       struct as_scan_stats *st)
{
    for (size_t i = 0; i < g->n; i++) {
        struct as_part_status *ps = &parts->p[g->idx[i]];
        if (ps->state == AS_PART_PENDING) {
            ps->replica++;
            ps->last_result = result;
            st->partitions_retried++;
        }
    }
}

struct run_ctx {
    struct as_scanner *s;
    const struct as_scan_policy *p;
    struct as_scan_parts *parts;
    as_scan_fn fn;
    void *fn_ctx;
    struct as_scan_stats *st;
    uint64_t deadline;
    uint32_t read_timeout;
};

static int ensure_bins(struct as_scanner *s, size_t n, struct err *e)
{
    if (n <= s->bins_cap)
        return 0;
    size_t cap = s->bins_cap ? s->bins_cap : 16;
    while (cap < n)
        cap *= 2;
    struct as_bin *b = realloc(s->bins, cap * sizeof *b);
    if (!b)
        return err_set(e, ERR_NOMEM, "out of memory");
    s->bins = b;
    s->bins_cap = cap;
    return 0;
}

/* One node request: returns NODE_OK, NODE_RETRY (partitions marked), or a negative error. */
static int run_node(struct run_ctx *rc, struct node_req *g, uint64_t task_id, struct err *e)
{
    struct as_scanner *s = rc->s;
    const struct as_scan_policy *p = rc->p;
    struct as_scan_parts *parts = rc->parts;
    struct as_scan_stats *st = rc->st;
    const char *nname = as_node_name(g->node);
    size_t np = 0, nd = 0;
    for (size_t i = 0; i < g->n; i++) {
        struct as_part_status *ps = &parts->p[g->idx[i]];
        if (ps->has_digest)
            memcpy(s->digests + nd++ * AS_DIGEST_SIZE, ps->digest, AS_DIGEST_SIZE);
        else
            s->pids[np++] = ps->pid;
    }
    int r = as_scan_encode(&s->req, p, task_id, s->pids, np, s->digests, nd, g->quota, e);
    if (r)
        return r;
    struct err ne;
    err_clear(&ne);
    struct as_conn *conn;
    if (as_node_conn_get(g->node, &conn, &ne) != 0) {
        LOG_W("as", "scan %s: %s; its partitions will be retried", p->ns, ne.msg);
        node_retry(parts, g, -1, st);
        return NODE_RETRY;
    }
    st->node_requests++;
    LOG_D("as", "scan %s: node %s, %zu partitions + %zu resumed, task %016llx", p->ns, nname, np, nd,
          (unsigned long long)task_id);
    r = as_conn_write(conn, s->req.data, s->req.len, rc->deadline, rc->read_timeout, &ne);
    bool done = false;
    int end_result = 0;
    bool error_header = false;
    bool part_retry = false; /* some partition came back unavailable */
    while (!r && !done) {
        if (p->cancel && *p->cancel) {
            as_node_conn_drop(g->node, conn);
            st->cancelled = true;
            return err_set(e, ERR_UNAVAILABLE, "scan of %s cancelled", p->ns);
        }
        struct as_proto_header h;
        r = as_conn_read_proto(conn, &h, &s->body, rc->deadline, rc->read_timeout, &ne);
        if (r)
            break;
        st->bytes += h.size + AS_PROTO_HEADER_SIZE;
        if (h.type != AS_PROTO_MSG) {
            as_node_conn_drop(g->node, conn);
            return err_set(e, ERR_INVALID, "node %s: scan reply of proto type %u", nname, h.type);
        }
        size_t off = 0;
        while (off < s->body.len) {
            struct as_msg_view v;
            int pr = as_msg_parse(s->body.data + off, s->body.len - off, &v, e);
            if (pr) {
                as_node_conn_drop(g->node, conn);
                return err_prefix(e, "node %s: scan reply", nname);
            }
            off += v.size;
            const struct as_msg_header *mh = &v.h;
            if ((mh->info3 & AS_INFO3_PARTITION_DONE) && !(mh->info3 & AS_INFO3_LAST)) {
                uint32_t pid = mh->generation;
                if (pid < AS_PARTITIONS && s->slot[pid] >= 0) {
                    struct as_part_status *ps = &parts->p[s->slot[pid]];
                    if (mh->result_code == 0) {
                        if (!s->round_retry[pid])
                            ps->state = AS_PART_DONE;
                    } else if (ps->state == AS_PART_PENDING && !s->round_retry[pid]) {
                        s->round_retry[pid] = 1;
                        part_retry = true;
                        ps->replica++;
                        ps->last_result = mh->result_code;
                        st->partitions_retried++;
                        LOG_D("as", "scan %s: node %s: partition %u unavailable (%s)", p->ns, nname,
                              pid, as_result_name(mh->result_code));
                    }
                }
                continue;
            }
            if (mh->info3 & AS_INFO3_LAST) {
                done = true;
                end_result = mh->result_code;
                break;
            }
            if (mh->result_code != 0) {
                done = true;
                error_header = true;
                end_result = mh->result_code;
                break;
            }
            if (p->max_records && st->records >= p->max_records)
                continue; /* over the limit: drain */
            pr = ensure_bins(s, mh->n_ops, e);
            struct as_record rec;
            if (!pr)
                pr = as_scan_decode_record(&v, &rec, s->bins, e);
            if (pr) {
                as_node_conn_drop(g->node, conn);
                return err_prefix(e, "node %s", nname);
            }
            uint32_t pid = as_partition_id(rec.digest);
            struct as_part_status *ps = s->slot[pid] >= 0 ? &parts->p[s->slot[pid]] : NULL;
            err_clear(e);
            pr = rc->fn(rc->fn_ctx, &rec, e);
            if (pr) {
                as_node_conn_drop(g->node, conn);
                if (!e->msg[0])
                    err_set(e, pr < 0 ? pr : ERR_INTERNAL, "scan stopped by the record callback");
                return pr < 0 ? pr : ERR_INTERNAL;
            }
            st->records++;
            g->got++;
            if (ps) {
                ps->has_digest = true;
                memcpy(ps->digest, rec.digest, AS_DIGEST_SIZE);
                ps->records++;
            }
        }
    }
    if (r) { /* network failure or timeout mid-stream */
        as_node_conn_drop(g->node, conn);
        if (p->cancel && *p->cancel) {
            st->cancelled = true;
            return err_set(e, ERR_UNAVAILABLE, "scan of %s cancelled", p->ns);
        }
        LOG_W("as", "scan %s: node %s failed after %llu records: %s; retrying its partitions", p->ns,
              nname, (unsigned long long)g->got, ne.msg);
        node_retry(parts, g, -1, st);
        return NODE_RETRY;
    }
    if (error_header) /* no LAST follows: the stream state is unknown */
        as_node_conn_drop(g->node, conn);
    else
        as_node_conn_put(g->node, conn);
    if (end_result == 0 || end_result == AS_ERR_NOT_FOUND ||
        (end_result == AS_ERR_PARAMETER && error_header && p->unknown_set_empty && p->set &&
         *p->set && g->got == 0)) {
        if (end_result == AS_ERR_PARAMETER)
            LOG_D("as", "scan %s: node %s does not know set %s: no records there", p->ns, nname, p->set);
        bool paged = g->quota && g->got >= g->quota;
        for (size_t i = 0; i < g->n; i++) {
            struct as_part_status *ps = &parts->p[g->idx[i]];
            if (ps->state == AS_PART_PENDING && !s->round_retry[ps->pid] && !paged)
                ps->state = AS_PART_DONE;
        }
        return part_retry ? NODE_RETRY : NODE_OK;
    }
    if (retryable_result(end_result)) {
        LOG_W("as", "scan %s: node %s answered %s (%d); retrying its partitions", p->ns, nname,
              as_result_name(end_result), end_result);
        node_retry(parts, g, end_result, st);
        return NODE_RETRY;
    }
    st->result = end_result;
    snprintf(st->node, sizeof st->node, "%s", nname);
    return err_set(e, ERR_IO, "node %s: scan of %s%s%s failed: %s (%d)", nname, p->ns,
                   p->set && *p->set ? " set " : "", p->set && *p->set ? p->set : "",
                   as_result_name(end_result), end_result);
}

static uint64_t random_task_id(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = as_now_ms() * 0x9E3779B97F4A7C15ull;
    return v ? v : 1;
}

int as_scan_run(struct as_scanner *s, struct as_cluster *c, const struct as_scan_policy *p,
                struct as_scan_parts *parts, as_scan_fn fn, void *ctx, struct as_scan_stats *stats,
                struct err *e)
{
    struct as_scan_stats local;
    struct as_scan_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (!p->ns || !*p->ns)
        return err_set(e, ERR_INVALID, "scan: no namespace");
    if (as_cluster_ns_replicas(c, p->ns) == 0)
        return err_set(e, ERR_NOT_FOUND, "scan: namespace %s is not in the cluster's partition map", p->ns);
    for (uint32_t i = 0; i < AS_PARTITIONS; i++)
        s->slot[i] = -1;
    for (size_t i = 0; i < parts->n; i++) {
        if (parts->p[i].pid >= AS_PARTITIONS || s->slot[parts->p[i].pid] >= 0)
            return err_set(e, ERR_INVALID, "scan: bad or duplicate partition %u", parts->p[i].pid);
        s->slot[parts->p[i].pid] = (int32_t)i;
    }
    struct run_ctx rc = {
        .s = s, .p = p, .parts = parts, .fn = fn, .fn_ctx = ctx, .st = st,
        .deadline = as_deadline_in(p->total_timeout_ms),
        .read_timeout = p->read_timeout_ms ? p->read_timeout_ms
                        : (p->socket_timeout_ms > 30000 ? p->socket_timeout_ms : 30000),
    };
    uint32_t max_retries = p->max_retries ? p->max_retries : (p->total_timeout_ms ? UINT32_MAX : 5);
    uint32_t sleep_ms = p->retry_sleep_ms ? p->retry_sleep_ms : 100;
    uint32_t retries = 0;
    int ret = 0;
    for (;;) {
        if (p->cancel && *p->cancel) {
            st->cancelled = true;
            ret = err_set(e, ERR_UNAVAILABLE, "scan of %s cancelled", p->ns);
            break;
        }
        memset(s->round_retry, 0, sizeof s->round_retry);
        /* assign */
        size_t unassigned = 0;
        ret = 0;
        for (size_t i = 0; i < parts->n && !ret; i++) {
            struct as_part_status *ps = &parts->p[i];
            if (ps->state != AS_PART_PENDING)
                continue;
            struct as_node *n = as_cluster_partition_node(c, p->ns, ps->pid, ps->replica);
            if (!n) {
                unassigned++;
                ps->last_result = AS_ERR_UNAVAILABLE;
                continue;
            }
            if (st->rounds == 0 && !node_allowed(p, n)) {
                ps->state = AS_PART_SKIPPED;
                as_node_release(n);
                continue;
            }
            struct node_req *g = group_for(s, n, e);
            if (!g)
                ret = ERR_NOMEM;
            else
                ret = group_add(g, i, e);
        }
        if (ret) {
            groups_clear(s);
            break;
        }
        if (s->n_groups == 0 && unassigned == 0)
            break; /* all done */
        if (p->max_records) {
            uint64_t left = p->max_records > st->records ? p->max_records - st->records : 0;
            uint64_t each = s->n_groups ? left / s->n_groups : 0;
            for (size_t i = 0; i < s->n_groups; i++) {
                uint64_t q = each + (i == 0 ? left - each * s->n_groups : 0);
                s->groups[i].quota = q ? q : 1;
            }
        }
        uint64_t task = random_task_id();
        bool failures = unassigned > 0;
        for (size_t i = 0; i < s->n_groups && !ret; i++) {
            int r = run_node(&rc, &s->groups[i], task, e);
            if (r < 0)
                ret = r;
            else if (r == NODE_RETRY)
                failures = true;
            else if (s->n_groups && p->max_records && st->records >= p->max_records)
                break;
        }
        groups_clear(s);
        st->rounds++;
        if (ret)
            break;
        if (p->max_records && st->records >= p->max_records)
            break; /* limit reached; unfinished partitions stay pending */
        if (as_scan_parts_pending(parts) == 0)
            break;
        if (!failures)
            continue; /* pagination: nodes that filled their quota are asked again */
        if (++retries > max_retries) {
            ret = err_set(e, ERR_UNAVAILABLE, "scan of %s: %zu partitions still unavailable after %u retries",
                          p->ns, as_scan_parts_pending(parts), max_retries);
            break;
        }
        if (rc.deadline && as_now_ms() + sleep_ms >= rc.deadline) {
            ret = err_set(e, ERR_UNAVAILABLE, "scan of %s: total timeout with %zu partitions unfinished",
                          p->ns, as_scan_parts_pending(parts));
            break;
        }
        if (as_sleep_ms(sleep_ms, p->cancel)) {
            st->cancelled = true;
            ret = err_set(e, ERR_UNAVAILABLE, "scan of %s cancelled", p->ns);
            break;
        }
        sleep_ms = sleep_ms * 2 > 2000 ? 2000 : sleep_ms * 2;
        struct err te;
        err_clear(&te);
        if (as_cluster_tend(c, &te) != 0)
            LOG_W("as", "scan %s: tend before retry: %s", p->ns, te.msg);
    }
    return ret;
}
