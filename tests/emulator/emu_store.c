/*
 * emu_store.c - the emulator's in-memory data: cluster set-up, namespaces and their sets,
 * records kept per partition in descending digest order, partition ownership by node.
 */
#include "emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

int emu_cluster_init(struct emu_cluster *c, unsigned n_nodes)
{
    memset(c, 0, sizeof *c);
    if (n_nodes < 1 || n_nodes > EMU_MAX_NODES)
        return -1;
    snprintf(c->cluster_name, sizeof c->cluster_name, "emulator");
    c->n_nodes = n_nodes;
    c->chunk_size = 128 * 1024;
    for (unsigned i = 0; i < n_nodes; i++) {
        c->nodes[i].idx = i;
        c->nodes[i].id = 0xBB9000000000001ull + i;
        c->nodes[i].listen_fd = -1;
        c->nodes[i].tls_listen_fd = -1;
        atomic_init(&c->nodes[i].up, true);
    }
    c->peers_gen = n_nodes > 1 ? (int64_t)n_nodes : 0;
    pthread_mutex_init(&c->meta, NULL);
    emu_rebalance_locked(c);
    c->partition_gen = 0;
    emu_sec_init(&c->sec);
    return 0;
}

unsigned emu_nodes_up(const struct emu_cluster *c)
{
    unsigned k = 0;
    for (unsigned i = 0; i < c->n_nodes; i++)
        k += atomic_load(&((struct emu_cluster *)c)->nodes[i].up);
    return k;
}

/* Interleaved ownership over the running nodes, like a real cluster's (not contiguous ranges). */
void emu_rebalance_locked(struct emu_cluster *c)
{
    uint8_t up[EMU_MAX_NODES];
    unsigned n = 0;
    for (unsigned i = 0; i < c->n_nodes; i++)
        if (atomic_load(&c->nodes[i].up))
            up[n++] = (uint8_t)i;
    if (n == 0)
        return;
    for (unsigned p = 0; p < AS_PARTITIONS; p++)
        c->master[p] = up[(p * 7 + p / 13) % n];
    c->partition_gen++;
}

static void part_free(struct emu_part *p)
{
    for (uint32_t i = 0; i < p->n; i++)
        emu_rec_free(p->recs[i]);
    free(p->recs);
    p->recs = NULL;
    p->n = p->cap = 0;
}

void emu_cluster_free(struct emu_cluster *c)
{
    for (unsigned i = 0; i < c->n_ns; i++) {
        struct emu_ns *ns = c->ns[i];
        for (unsigned p = 0; p < AS_PARTITIONS; p++)
            part_free(&ns->parts[p]);
        free(ns->sets);
        pthread_rwlock_destroy(&ns->lock);
        free(ns);
    }
    for (unsigned i = 0; i < c->n_sindexes; i++) {
        free(c->sindexes[i].context);
        free(c->sindexes[i].exp);
    }
    free(c->sindexes);
    for (unsigned i = 0; i < c->n_udfs; i++)
        free(c->udfs[i].content);
    free(c->udfs);
    as_buf_free(&c->info_log);
    pthread_mutex_destroy(&c->meta);
    c->n_ns = 0;
}

int emu_cluster_add_ns(struct emu_cluster *c, const char *spec)
{
    if (c->n_ns >= EMU_MAX_NS)
        return -1;
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len == 0 || len > AS_NAMESPACE_NAME_MAX || emu_ns_find(c, spec, len))
        return -1;
    unsigned rf = 1;
    if (colon) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (*end || v < 1 || v > 8)
            return -1;
        rf = (unsigned)v;
    }
    struct emu_ns *ns = calloc(1, sizeof *ns);
    if (!ns)
        return -1;
    memcpy(ns->name, spec, len);
    ns->rf = rf;
    ns->max_record_size = 1024 * 1024;
    pthread_rwlock_init(&ns->lock, NULL);
    c->ns[c->n_ns++] = ns;
    return 0;
}

struct emu_ns *emu_ns_find(struct emu_cluster *c, const void *name, size_t len)
{
    for (unsigned i = 0; i < c->n_ns; i++)
        if (strlen(c->ns[i]->name) == len && memcmp(c->ns[i]->name, name, len) == 0)
            return c->ns[i];
    return NULL;
}

uint32_t emu_now_cl(void)
{
    time_t t = time(NULL);
    return t > AS_CITRUSLEAF_EPOCH ? (uint32_t)(t - AS_CITRUSLEAF_EPOCH) : 0;
}

uint64_t emu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return ms * 1000000u;
}

int emu_set_id(struct emu_ns *ns, const void *name, size_t len, bool create)
{
    if (len == 0)
        return 0;
    if (len > AS_SET_NAME_MAX)
        return -1;
    for (unsigned i = 0; i < ns->n_sets; i++)
        if (strlen(ns->sets[i].name) == len && memcmp(ns->sets[i].name, name, len) == 0)
            return (int)i + 1;
    if (!create || ns->n_sets >= 1023)
        return -1;
    struct emu_set *s = realloc(ns->sets, (ns->n_sets + 1) * sizeof *s);
    if (!s)
        return -1;
    ns->sets = s;
    memset(&s[ns->n_sets], 0, sizeof s[0]);
    memcpy(s[ns->n_sets].name, name, len);
    ns->n_sets++;
    return (int)ns->n_sets;
}

const char *emu_set_name(const struct emu_ns *ns, uint16_t set_id)
{
    if (set_id == 0 || set_id > ns->n_sets)
        return "";
    return ns->sets[set_id - 1].name;
}

/* Position of digest d in the descending array: found (1) at *pos, or its insertion point. */
static int part_search(const struct emu_part *p, const uint8_t *d, uint32_t *pos)
{
    uint32_t lo = 0, hi = p->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(p->recs[mid]->digest, d, AS_DIGEST_SIZE);
        if (cmp == 0) {
            *pos = mid;
            return 1;
        }
        if (cmp > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

struct emu_rec *emu_rec_find(struct emu_ns *ns, const uint8_t *digest)
{
    struct emu_part *p = &ns->parts[as_partition_id(digest)];
    uint32_t pos;
    return part_search(p, digest, &pos) ? p->recs[pos] : NULL;
}

int emu_rec_insert(struct emu_ns *ns, struct emu_rec *r)
{
    struct emu_part *p = &ns->parts[as_partition_id(r->digest)];
    uint32_t pos;
    if (part_search(p, r->digest, &pos)) {
        emu_rec_free(p->recs[pos]);
        p->recs[pos] = r;
        return 0;
    }
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 8;
        struct emu_rec **n = realloc(p->recs, cap * sizeof *n);
        if (!n)
            return -1;
        p->recs = n;
        p->cap = cap;
    }
    memmove(&p->recs[pos + 1], &p->recs[pos], (p->n - pos) * sizeof *p->recs);
    p->recs[pos] = r;
    p->n++;
    return 0;
}

void emu_rec_remove(struct emu_ns *ns, const uint8_t *digest)
{
    struct emu_part *p = &ns->parts[as_partition_id(digest)];
    uint32_t pos;
    if (!part_search(p, digest, &pos))
        return;
    emu_rec_free(p->recs[pos]);
    memmove(&p->recs[pos], &p->recs[pos + 1], (p->n - pos - 1) * sizeof *p->recs);
    p->n--;
}

void emu_rec_free(struct emu_rec *r)
{
    if (!r)
        return;
    free(r->key);
    free(r->bins);
    free(r);
}

bool emu_rec_expired(const struct emu_rec *r, uint32_t now_cl)
{
    return r->void_time != 0 && r->void_time <= now_cl;
}

bool emu_rec_bin(const struct emu_rec *r, const uint8_t *name, size_t name_len, struct as_op *op)
{
    struct as_iter it = { r->bins, r->bins + r->bins_len, r->n_bins };
    while (as_op_next(&it, op))
        if (op->name_len == name_len && memcmp(op->name, name, name_len) == 0)
            return true;
    return false;
}

unsigned emu_ns_effective_rf(const struct emu_cluster *c, const struct emu_ns *ns)
{
    unsigned up = emu_nodes_up(c);
    return ns->rf < up ? ns->rf : up;
}

int emu_node_column(struct emu_cluster *c, unsigned node, const struct emu_ns *ns, unsigned pid)
{
    unsigned erf = emu_ns_effective_rf(c, ns);
    pthread_mutex_lock(&c->meta);
    unsigned m = c->master[pid];
    pthread_mutex_unlock(&c->meta);
    if (!atomic_load(&c->nodes[node].up))
        return -1;
    /* replicas live on the next running nodes after the master */
    unsigned col = 0;
    for (unsigned j = 0; j < c->n_nodes && col < erf; j++) {
        unsigned k = (m + j) % c->n_nodes;
        if (!atomic_load(&c->nodes[k].up))
            continue;
        if (k == node)
            return (int)col;
        col++;
    }
    return -1;
}

bool emu_fault_unavailable(struct emu_cluster *c, unsigned pid)
{
    pthread_mutex_lock(&c->meta);
    bool u = (c->faults.unavailable[pid >> 3] & (0x80 >> (pid & 7))) != 0;
    pthread_mutex_unlock(&c->meta);
    return u;
}

int emu_udf_store(struct emu_cluster *c, const char *name, uint8_t *content, size_t len)
{
    uint8_t sha[EVP_MAX_MD_SIZE];
    unsigned int shalen = 0;
    EVP_Digest(content, len, sha, &shalen, EVP_sha1(), NULL);
    pthread_mutex_lock(&c->meta);
    struct emu_udf *u = NULL;
    for (unsigned i = 0; i < c->n_udfs; i++)
        if (strcmp(c->udfs[i].name, name) == 0)
            u = &c->udfs[i];
    if (!u) {
        struct emu_udf *n = realloc(c->udfs, (c->n_udfs + 1) * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&c->meta);
            free(content);
            return -1;
        }
        c->udfs = n;
        u = &n[c->n_udfs++];
        memset(u, 0, sizeof *u);
        snprintf(u->name, sizeof u->name, "%s", name);
    }
    free(u->content);
    u->content = content;
    u->len = len;
    for (unsigned i = 0; i < 20 && i < shalen; i++)
        snprintf(u->hash + 2 * i, 3, "%02x", sha[i]);
    pthread_mutex_unlock(&c->meta);
    return 0;
}

int emu_sindex_add(struct emu_cluster *c, const struct emu_sindex *s)
{
    pthread_mutex_lock(&c->meta);
    for (unsigned i = 0; i < c->n_sindexes; i++) {
        if (strcmp(c->sindexes[i].ns, s->ns) == 0 && strcmp(c->sindexes[i].name, s->name) == 0) {
            pthread_mutex_unlock(&c->meta);
            return 1;
        }
    }
    struct emu_sindex *n = realloc(c->sindexes, (c->n_sindexes + 1) * sizeof *n);
    if (!n) {
        pthread_mutex_unlock(&c->meta);
        return -1;
    }
    c->sindexes = n;
    n[c->n_sindexes++] = *s;
    pthread_mutex_unlock(&c->meta);
    return 0;
}
