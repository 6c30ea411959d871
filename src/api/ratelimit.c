/*
 * ratelimit.c - token buckets per client key, in a fixed-size hash table with an LRU list.
 *
 * Key = family + address bytes (IPv6 truncated to its /64). The hash table has a power-of-two
 * number of slots (>= max_clients) with doubly linked chains so eviction is O(1); the LRU list
 * orders entries by last use (head = most recent). Buckets follow the x/time/rate semantics
 * ABS uses: tokens = min(size, tokens + elapsed * tps); a request needs one whole token.
 */
#include "api/ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct rl_net {
    struct ratelimit_addr addr;
    int prefix; /* bits */
};

struct rl_entry {
    struct ratelimit_addr key;
    double tokens;
    int64_t last_ns;
    uint64_t hash;
    struct rl_entry *chain_next, **chain_pprev; /* hash chain */
    struct rl_entry *lru_prev, *lru_next;       /* LRU list */
};

struct ratelimit {
    pthread_mutex_t lock;
    double tps, size;
    struct rl_net *nets;
    size_t nnets;
    size_t max_clients, nclients;
    size_t nslots; /* power of two */
    struct rl_entry **slots;
    struct rl_entry *lru_head, *lru_tail;
    uint64_t seed;
    ratelimit_clock_fn clock;
    void *clock_ctx;
};

/* ---- addresses ---------------------------------------------------------------------- */

static const unsigned char rl_v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ::ffff:a.b.c.d → a.b.c.d */
static void rl_unmap_v4(struct ratelimit_addr *a)
{
    if (a->family != 6 || memcmp(a->bytes, rl_v4_mapped, sizeof rl_v4_mapped) != 0)
        return;
    unsigned char v4[4];
    memcpy(v4, a->bytes + 12, 4);
    memset(a->bytes, 0, sizeof a->bytes);
    memcpy(a->bytes, v4, 4);
    a->family = 4;
}

int ratelimit_addr_parse(const char *text, struct ratelimit_addr *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return ERR_INVALID;
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->bytes) == 1) {
        out->family = 6;
        rl_unmap_v4(out);
        return 0;
    }
    return ERR_INVALID;
}

int ratelimit_addr_from_sockaddr(const struct sockaddr *sa, struct ratelimit_addr *out)
{
    memset(out, 0, sizeof *out);
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memcpy(out->bytes, &in->sin_addr, 4);
        out->family = 4;
        return 0;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(out->bytes, &in6->sin6_addr, 16);
        out->family = 6;
        rl_unmap_v4(out);
        return 0;
    }
    return ERR_INVALID;
}

static bool rl_prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* "10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "::1". Host bits are ignored (as Go does). */
static int rl_net_parse(const char *text, struct rl_net *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (!text || strlen(text) >= sizeof buf)
        return ERR_INVALID;
    snprintf(buf, sizeof buf, "%s", text);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (ratelimit_addr_parse(buf, &out->addr) != 0)
        return ERR_INVALID;
    bool was_mapped = out->addr.family == 4 && strchr(buf, ':') != NULL;
    int max = out->addr.family == 4 ? 32 : 128;
    out->prefix = max;
    if (!slash)
        return 0;
    char *end = NULL;
    long bits = strtol(slash + 1, &end, 10);
    if (slash[1] < '0' || slash[1] > '9' || *end != '\0')
        return ERR_INVALID;
    if (was_mapped) /* ::ffff:10.0.0.0/104 == 10.0.0.0/8 */
        bits -= 96;
    if (bits < 0 || bits > max)
        return ERR_INVALID;
    out->prefix = (int)bits;
    return 0;
}

bool ratelimit_whitelisted(const struct ratelimit *rl, const struct ratelimit_addr *addr)
{
    for (size_t i = 0; i < rl->nnets; i++) {
        const struct rl_net *n = &rl->nets[i];
        if (n->addr.family == addr->family &&
            rl_prefix_equal(n->addr.bytes, addr->bytes, n->prefix))
            return true;
    }
    return false;
}

/* ---- construction ------------------------------------------------------------------- */

static int64_t rl_monotonic_ns(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int rl_parse_white_list(struct ratelimit *rl, const struct ratelimit_options *o,
                               struct err *e)
{
    if (o->white_list_len == 0)
        return 0;
    rl->nets = calloc(o->white_list_len, sizeof *rl->nets);
    if (!rl->nets)
        return err_set(e, ERR_NOMEM, "rate limiter: out of memory");
    for (size_t i = 0; i < o->white_list_len; i++) {
        if (rl_net_parse(o->white_list[i], &rl->nets[i]) != 0)
            return err_set(e, ERR_INVALID, "rate limiter: invalid white-list entry '%s'",
                           o->white_list[i] ? o->white_list[i] : "");
    }
    rl->nnets = o->white_list_len;
    return 0;
}

static uint64_t rl_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)rl_monotonic_ns(NULL) * 0x9e3779b97f4a7c15ULL;
    return seed;
}

int ratelimit_new(const struct ratelimit_options *opts, struct ratelimit **out, struct err *e)
{
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return err_set(e, ERR_NOMEM, "rate limiter: out of memory");
    rl->tps = opts->tps;
    rl->size = opts->size;
    rl->max_clients = opts->max_clients ? opts->max_clients : RATELIMIT_DEFAULT_MAX_CLIENTS;
    rl->clock = opts->clock ? opts->clock : rl_monotonic_ns;
    rl->clock_ctx = opts->clock_ctx;
    rl->seed = rl_seed();
    rl->nslots = 16;
    while (rl->nslots < rl->max_clients)
        rl->nslots *= 2;
    rl->slots = calloc(rl->nslots, sizeof *rl->slots);
    int rc = rl->slots ? 0 : err_set(e, ERR_NOMEM, "rate limiter: out of memory");
    if (rc == 0)
        rc = rl_parse_white_list(rl, opts, e);
    if (rc == 0 && pthread_mutex_init(&rl->lock, NULL) != 0)
        rc = err_set(e, ERR_INTERNAL, "rate limiter: cannot create mutex");
    if (rc) {
        free(rl->nets);
        free(rl->slots);
        free(rl);
        return rc;
    }
    *out = rl;
    return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    struct rl_entry *en = rl->lru_head;
    while (en) {
        struct rl_entry *next = en->lru_next;
        free(en);
        en = next;
    }
    pthread_mutex_destroy(&rl->lock);
    free(rl->slots);
    free(rl->nets);
    free(rl);
}

/* ---- table and LRU ------------------------------------------------------------------ */

/* The bucket key: IPv4 whole, IPv6 /64. */
static struct ratelimit_addr rl_key(const struct ratelimit_addr *a)
{
    struct ratelimit_addr k = *a;
    if (k.family == 6)
        memset(k.bytes + 8, 0, 8);
    else
        memset(k.bytes + 4, 0, 12);
    return k;
}

static uint64_t rl_hash(const struct ratelimit *rl, const struct ratelimit_addr *k)
{
    uint64_t h = 1469598103934665603ULL ^ rl->seed;
    h = (h ^ (uint64_t)k->family) * 1099511628211ULL;
    for (size_t i = 0; i < sizeof k->bytes; i++)
        h = (h ^ k->bytes[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static void rl_lru_unlink(struct ratelimit *rl, struct rl_entry *en)
{
    if (en->lru_prev)
        en->lru_prev->lru_next = en->lru_next;
    else
        rl->lru_head = en->lru_next;
    if (en->lru_next)
        en->lru_next->lru_prev = en->lru_prev;
    else
        rl->lru_tail = en->lru_prev;
    en->lru_prev = en->lru_next = NULL;
}

static void rl_lru_push_front(struct ratelimit *rl, struct rl_entry *en)
{
    en->lru_prev = NULL;
    en->lru_next = rl->lru_head;
    if (rl->lru_head)
        rl->lru_head->lru_prev = en;
    rl->lru_head = en;
    if (!rl->lru_tail)
        rl->lru_tail = en;
}

static void rl_chain_unlink(struct rl_entry *en)
{
    *en->chain_pprev = en->chain_next;
    if (en->chain_next)
        en->chain_next->chain_pprev = en->chain_pprev;
}

static void rl_chain_insert(struct ratelimit *rl, struct rl_entry *en)
{
    struct rl_entry **slot = &rl->slots[en->hash & (rl->nslots - 1)];
    en->chain_next = *slot;
    en->chain_pprev = slot;
    if (*slot)
        (*slot)->chain_pprev = &en->chain_next;
    *slot = en;
}

static struct rl_entry *rl_lookup(struct ratelimit *rl, const struct ratelimit_addr *k,
                                  uint64_t h)
{
    for (struct rl_entry *en = rl->slots[h & (rl->nslots - 1)]; en; en = en->chain_next)
        if (en->hash == h && memcmp(&en->key, k, sizeof *k) == 0)
            return en;
    return NULL;
}

/* A new entry with a full bucket; at the cap the least recently used entry is recycled. */
static struct rl_entry *rl_insert(struct ratelimit *rl, const struct ratelimit_addr *k,
                                  uint64_t h, int64_t now)
{
    struct rl_entry *en;
    if (rl->nclients >= rl->max_clients) {
        en = rl->lru_tail;
        rl_lru_unlink(rl, en);
        rl_chain_unlink(en);
        rl->nclients--;
    } else if (!(en = malloc(sizeof *en))) {
        return NULL;
    }
    memset(en, 0, sizeof *en);
    en->key = *k;
    en->hash = h;
    en->tokens = rl->size;
    en->last_ns = now;
    rl_chain_insert(rl, en);
    rl_lru_push_front(rl, en);
    rl->nclients++;
    return en;
}

static bool rl_take(const struct ratelimit *rl, struct rl_entry *en, int64_t now)
{
    if (now > en->last_ns && rl->tps > 0) {
        en->tokens += (double)(now - en->last_ns) / 1e9 * rl->tps;
        if (en->tokens > rl->size)
            en->tokens = rl->size;
    }
    if (now > en->last_ns)
        en->last_ns = now;
    if (en->tokens < 1.0)
        return false;
    en->tokens -= 1.0;
    return true;
}

bool ratelimit_allow(struct ratelimit *rl, const struct ratelimit_addr *addr)
{
    if (ratelimit_whitelisted(rl, addr))
        return true;
    struct ratelimit_addr k = rl_key(addr);
    uint64_t h = rl_hash(rl, &k);
    pthread_mutex_lock(&rl->lock);
    int64_t now = rl->clock(rl->clock_ctx);
    struct rl_entry *en = rl_lookup(rl, &k, h);
    if (en) {
        rl_lru_unlink(rl, en);
        rl_lru_push_front(rl, en);
    } else {
        en = rl_insert(rl, &k, h, now);
    }
    /* Out of memory: fail open rather than lock every client out. */
    bool ok = en ? rl_take(rl, en, now) : true;
    pthread_mutex_unlock(&rl->lock);
    return ok;
}

size_t ratelimit_clients(struct ratelimit *rl)
{
    pthread_mutex_lock(&rl->lock);
    size_t n = rl->nclients;
    pthread_mutex_unlock(&rl->lock);
    return n;
}
