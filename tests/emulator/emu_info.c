/*
 * emu_info.c - the emulator's info protocol: one reply line "<command text>\t<value>\n" per
 * '\n'-terminated command, with the grammar of the values seen from CE 8.1.2.0 (captures in
 * shared/wire/a-info-commands, h1-cluster-info, f1, g-errors).
 *
 * Covered: node, build, version, edition, release, status, features, namespaces,
 * namespace/<ns>, sets[/<ns>[/<set>]], partitions, replicas[:max=n], replicas-all,
 * replicas-master, partition-generation, rebalance-generation, peers-generation,
 * peers-clear-std/alt, services, services-alternate, services-alumni, service-clear-std/alt,
 * cluster-name, cluster-stable, statistics, get-config, user-agent-set, sindex-list,
 * sindex-exists, sindex-stat, sindex/<ns>/<name>, sindex-create, sindex-delete, udf-list,
 * udf-get, udf-put, udf-remove, truncate, truncate-namespace; EE-only commands answer
 * ERROR:25; unknown ones ERROR:4; an empty body gives the legacy summary.
 * user-agent-set is kept per connection (a second one answers ERROR:4:already set) and
 * user-agents lists those of the open connections. With TLS listeners, peers-tls-std/alt
 * and service-tls-std/alt are answered (Enterprise); with --alt-host, the *-alt forms list
 * that host. Stopped nodes are left out of peers, services and ownership. With security,
 * udf-put/remove need udf-admin, sindex-create/delete sindex-admin, truncate truncate
 * (ERROR:81 otherwise).
 * Emulator-only commands (never sent by real clients): emulator-fault, emulator-move,
 * emulator-stats, emulator-dump, emulator-load, emulator-node-stop, emulator-node-start,
 * emulator-info-log.
 */
#include "emu.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#define EMU_SHA "e0d5a1c0ffee00000000000000000000000000a5"
#define FEATURES                                                                               \
    "batch-any;batch-index;blob-bits;cdt-index;cdt-list;cdt-map;cluster-stable;float;geo;"     \
    "sindex-exists;peers;pipelining;pquery;pscans;query-show;relaxed-sc;replicas;replicas-all;" \
    "replicas-master;replicas-max;truncate-namespace;udf"

struct ictx {
    struct emu_cluster *c;
    struct emu_node *node;
    struct emu_conn *conn;
    struct as_buf *o;
    const char *params; /* text after the first '/', ':' or ';' */
    size_t plen;
};

static void put(struct as_buf *o, const char *s)
{
    as_buf_append(o, s, strlen(s));
}

static void putn(struct as_buf *o, const char *s, size_t n)
{
    as_buf_append(o, s, n);
}

static void putf(struct as_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct as_buf *o, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        as_buf_append(o, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        o->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    as_buf_append(o, big, (size_t)n);
    free(big);
}

static void put_b64(struct as_buf *o, const uint8_t *p, size_t n)
{
    size_t out = 4 * ((n + 2) / 3);
    if (n > 0x3fffffff || as_buf_reserve(o, out + 1) != 0)
        return;
    int w = EVP_EncodeBlock(o->data + o->len, p, (int)n);
    if (w > 0)
        o->len += (size_t)w;
}

/* Standard base64 with padding; NULL when invalid. */
static uint8_t *b64_decode(const char *s, size_t n, size_t *out_len)
{
    if (n % 4 != 0 || n > 0x3fffffff)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(isalnum(ch) || ch == '+' || ch == '/' || (ch == '=' && i >= n - 2)))
            return NULL;
    }
    uint8_t *b = malloc(n / 4 * 3 + 1);
    if (!b)
        return NULL;
    int w = n ? EVP_DecodeBlock(b, (const unsigned char *)s, (int)n) : 0;
    if (w < 0) {
        free(b);
        return NULL;
    }
    size_t pad = (n >= 1 && s[n - 1] == '=') + (n >= 2 && s[n - 2] == '=');
    *out_len = (size_t)w - pad;
    return b;
}

static bool param(const struct ictx *x, const char *key, const char **v, size_t *vl)
{
    return as_info_kv(x->params, x->plen, ';', key, v, vl);
}

/* Copies a parameter into a NUL-terminated buffer; false if absent or too long. */
static bool param_str(const struct ictx *x, const char *key, char *out, size_t cap)
{
    const char *v;
    size_t vl;
    if (!param(x, key, &v, &vl) || vl >= cap)
        return false;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return true;
}

static bool eqn(const char *a, size_t an, const char *b)
{
    return strlen(b) == an && memcmp(a, b, an) == 0;
}

static void node_name(const struct emu_node *n, char out[32])
{
    snprintf(out, 32, "%" PRIX64, n->id);
}

/* ---- cluster facts ------------------------------------------------------------------------ */

static int64_t peers_gen(struct emu_cluster *c)
{
    pthread_mutex_lock(&c->meta);
    int64_t g = c->peers_gen;
    pthread_mutex_unlock(&c->meta);
    return g;
}

static unsigned cluster_size(const struct emu_cluster *c)
{
    return emu_nodes_up(c);
}

/* The address a node is announced with: host (127.0.0.1 or the alternate) and the clear or TLS
 * port; the port is left out when it equals the default one. */
static void put_addr(struct as_buf *o, const struct emu_node *n, const char *host, bool tls, int dflt)
{
    int port = tls ? n->tls_port : n->port;
    if (port == dflt)
        put(o, host);
    else
        putf(o, "%s:%d", host, port);
}

/* peers-{clear,tls}-{std,alt}: "gen,default-port,[[id,tls-name,[addr,...]],...]" */
static void info_peers(struct ictx *x, bool tls, bool alt)
{
    const char *host = alt ? x->c->alt_host : "127.0.0.1";
    int dflt = tls ? 4333 : 3000;
    putf(x->o, "%" PRId64 ",%d,[", peers_gen(x->c), dflt);
    bool first = true;
    for (unsigned i = 0; *host && i < x->c->n_nodes; i++) {
        struct emu_node *n = &x->c->nodes[i];
        if (n == x->node || !atomic_load(&n->up))
            continue;
        char name[32];
        node_name(n, name);
        putf(x->o, "%s[%s,%s,[", first ? "" : ",", name, tls ? n->tls_name : "");
        put_addr(x->o, n, host, tls, dflt);
        put(x->o, "]]");
        first = false;
    }
    put(x->o, "]");
}

static void info_services(struct ictx *x, bool alt)
{
    const char *host = alt ? x->c->alt_host : "127.0.0.1";
    bool first = true;
    for (unsigned i = 0; *host && i < x->c->n_nodes; i++) {
        struct emu_node *n = &x->c->nodes[i];
        if (n == x->node || !atomic_load(&n->up))
            continue;
        putf(x->o, "%s%s:%d", first ? "" : ";", host, n->port);
        first = false;
    }
}

/* service-{clear,tls}-{std,alt}: this node's own address. */
static void info_service(struct ictx *x, bool tls, bool alt)
{
    const char *host = alt ? x->c->alt_host : "127.0.0.1";
    if (*host)
        putf(x->o, "%s:%d", host, tls ? x->node->tls_port : x->node->port);
}

static void put_bitmap(struct ictx *x, struct emu_ns *ns, unsigned col)
{
    uint8_t bm[AS_PARTITIONS / 8] = { 0 };
    for (unsigned p = 0; p < AS_PARTITIONS; p++)
        if (emu_node_column(x->c, x->node->idx, ns, p) == (int)col)
            bm[p >> 3] |= (uint8_t)(0x80 >> (p & 7));
    put_b64(x->o, bm, sizeof bm);
}

/* form: 0 = replicas (regime), 1 = replicas-all, 2 = replicas-master */
static void info_replicas(struct ictx *x, int form)
{
    unsigned max = 0;
    const char *v;
    size_t vl;
    if (form == 0 && param(x, "max", &v, &vl) && vl > 0 && vl < 4)
        max = (unsigned)atoi(v);
    for (unsigned i = 0; i < x->c->n_ns; i++) {
        struct emu_ns *ns = x->c->ns[i];
        unsigned n = emu_ns_effective_rf(x->c, ns);
        if (max && n > max)
            n = max;
        if (form == 2)
            n = 1;
        putf(x->o, "%s%s:", i ? ";" : "", ns->name);
        if (form == 0)
            putf(x->o, "0,%u,", n);
        else if (form == 1)
            putf(x->o, "%u,", n);
        for (unsigned col = 0; col < n; col++) {
            if (col)
                put(x->o, ",");
            put_bitmap(x, ns, col);
        }
    }
}

/* ---- namespaces and sets --------------------------------------------------------------------- */

struct ns_counts {
    uint64_t objects, master, prole, non_expirable, bytes;
};

static void count_ns(struct ictx *x, struct emu_ns *ns, struct ns_counts *k)
{
    memset(k, 0, sizeof *k);
    uint32_t now = emu_now_cl();
    pthread_rwlock_rdlock(&ns->lock);
    for (unsigned p = 0; p < AS_PARTITIONS; p++) {
        int col = emu_node_column(x->c, x->node->idx, ns, p);
        if (col < 0)
            continue;
        struct emu_part *part = &ns->parts[p];
        for (uint32_t i = 0; i < part->n; i++) {
            struct emu_rec *r = part->recs[i];
            if (emu_rec_expired(r, now))
                continue;
            k->objects++;
            if (col == 0)
                k->master++;
            else
                k->prole++;
            if (r->void_time == 0)
                k->non_expirable++;
            k->bytes += r->bins_len + r->key_len + 64;
        }
    }
    pthread_rwlock_unlock(&ns->lock);
}

static void put_ns_config(struct as_buf *o, const struct emu_ns *ns)
{
    putf(o,
         "active-rack=0;allow-ttl-without-nsup=false;apply-ttl-reductions=true;auto-revive=false;"
         "background-query-max-rps=10000;conflict-resolution-policy=generation;"
         "conflict-resolve-writes=false;default-read-touch-ttl-pct=0;default-ttl=%u;"
         "disable-cold-start-eviction=false;disable-mrt-writes=false;disable-write-dup-res=false;"
         "disallow-expunge=false;disallow-null-setname=false;evict-hist-buckets=10000;"
         "evict-indexes-memory-pct=0;evict-tenths-pct=5;force-long-queries=false;"
         "ignore-migrate-fill-delay=false;index-stage-size=1073741824;indexes-memory-budget=0;"
         "inline-short-queries=false;max-record-size=%" PRIu64 ";migrate-order=5;"
         "migrate-retransmit-ms=5000;migrate-skip-unreadable=false;migrate-sleep=1;mrt-duration=0;"
         "nsup-hist-period=3600;nsup-period=10;nsup-threads=1;partition-tree-sprigs=256;"
         "prefer-uniform-balance=false;rack-id=0;read-consistency-level-override=off;"
         "reject-non-xdr-writes=false;reject-xdr-writes=false;replication-factor=%u;"
         "sindex-stage-size=1073741824;single-query-threads=4;stop-writes-sys-memory-pct=90;"
         "strong-consistency=false;strong-consistency-allow-expunge=false;"
         "tomb-raider-eligible-age=86400;tomb-raider-period=86400;tomb-raider-unmark-threads=0;"
         "transaction-pending-limit=20;truncate-threads=4;write-commit-level-override=off;"
         "xdr-bin-tombstone-ttl=86400;xdr-tomb-raider-period=120;xdr-tomb-raider-threads=1;"
         "index-type=mem;sindex-type=mem;storage-engine=memory;storage-engine.data-size=1073741824;"
         "storage-engine.stop-writes-avail-pct=5;storage-engine.stop-writes-used-pct=70",
         ns->default_ttl, ns->max_record_size, ns->rf);
}

static uint64_t truncate_lut_ms(const struct emu_ns *ns)
{
    if (ns->truncate_lut == 0)
        return 0;
    uint64_t ms = ns->truncate_lut / 1000000u;
    return ms > (uint64_t)AS_CITRUSLEAF_EPOCH * 1000u ? ms - (uint64_t)AS_CITRUSLEAF_EPOCH * 1000u : 0;
}

static void info_namespace(struct ictx *x)
{
    struct emu_ns *ns = emu_ns_find(x->c, x->params, x->plen);
    if (!ns) {
        put(x->o, "type=unknown");
        return;
    }
    struct ns_counts k;
    count_ns(x, ns, &k);
    unsigned used_pct = (unsigned)(k.bytes * 100 / 1073741824u);
    putf(x->o,
         "ns_cluster_size=%u;effective_replication_factor=%u;objects=%" PRIu64 ";tombstones=0;"
         "xdr_tombstones=0;xdr_bin_cemeteries=0;mrt_provisionals=0;master_objects=%" PRIu64 ";"
         "master_tombstones=0;prole_objects=%" PRIu64 ";prole_tombstones=0;non_replica_objects=0;"
         "non_replica_tombstones=0;unreplicated_records=0;dead_partitions=0;"
         "unavailable_partitions=0;auto_revived_partitions=0;clock_skew_stop_writes=false;"
         "stop_writes=false;hwm_breached=false;current_time=%u;non_expirable_objects=%" PRIu64 ";"
         "expired_objects=0;evicted_objects=0;evict_ttl=0;evict_void_time=0;smd_evict_void_time=0;"
         "nsup_cycle_duration=0;nsup_cycle_deleted_pct=0.00;nsup_xdr_key_busy=0;"
         "truncate_lut=%" PRIu64 ";truncating=false;sindex_gc_cleaned=0;mrt_monitors=0;"
         "mrt_monitors_active=0;xmem_id=0;index_used_bytes=%" PRIu64 ";set_index_used_bytes=0;"
         "sindex_used_bytes=0;data_total_bytes=1073741824;data_used_bytes=%" PRIu64 ";"
         "data_used_pct=%u;data_avail_pct=%u;data_compression_ratio=1.000;",
         cluster_size(x->c), emu_ns_effective_rf(x->c, ns), k.objects, k.master, k.prole, emu_now_cl(),
         k.non_expirable, truncate_lut_ms(ns), k.objects * 64, k.bytes, used_pct, 99 - used_pct);
    put_ns_config(x->o, ns);
}

static unsigned sindex_count(struct emu_cluster *c, const char *ns, const char *set)
{
    unsigned n = 0;
    pthread_mutex_lock(&c->meta);
    for (unsigned i = 0; i < c->n_sindexes; i++)
        if (strcmp(c->sindexes[i].ns, ns) == 0 && strcmp(c->sindexes[i].set, set) == 0)
            n++;
    pthread_mutex_unlock(&c->meta);
    return n;
}

/* One namespace's set lines; `only` restricts to one set and prints just its properties. */
static void put_sets(struct ictx *x, struct emu_ns *ns, const char *only, size_t only_len)
{
    uint32_t now = emu_now_cl();
    pthread_rwlock_rdlock(&ns->lock);
    unsigned n_sets = ns->n_sets;
    uint64_t *objs = calloc(n_sets + 1, sizeof *objs);
    uint64_t *bytes = calloc(n_sets + 1, sizeof *bytes);
    if (!objs || !bytes) {
        pthread_rwlock_unlock(&ns->lock);
        free(objs);
        free(bytes);
        x->o->failed = true;
        return;
    }
    for (unsigned p = 0; p < AS_PARTITIONS; p++) {
        if (emu_node_column(x->c, x->node->idx, ns, p) < 0)
            continue;
        struct emu_part *part = &ns->parts[p];
        for (uint32_t i = 0; i < part->n; i++) {
            struct emu_rec *r = part->recs[i];
            if (emu_rec_expired(r, now) || r->set_id > n_sets)
                continue;
            objs[r->set_id]++;
            bytes[r->set_id] += r->bins_len + r->key_len + 64;
        }
    }
    char names[1024][AS_SET_NAME_MAX + 1];
    unsigned listed = n_sets < 1024 ? n_sets : 1024;
    for (unsigned i = 0; i < listed; i++)
        memcpy(names[i], ns->sets[i].name, sizeof names[i]);
    pthread_rwlock_unlock(&ns->lock);

    for (unsigned i = 0; i < listed; i++) {
        if (only && !eqn(only, only_len, names[i]))
            continue;
        if (!only)
            putf(x->o, "ns=%s:set=%s:", ns->name, names[i]);
        putf(x->o,
             "objects=%" PRIu64 ":tombstones=0:data_used_bytes=%" PRIu64 ":truncate_lut=0:"
             "sindexes=%u:index_populating=false:truncating=false:default-read-touch-ttl-pct=0:"
             "default-ttl=0:disable-eviction=false:enable-index=false:stop-writes-count=0:"
             "stop-writes-size=0;",
             objs[i + 1], bytes[i + 1], sindex_count(x->c, ns->name, names[i]));
    }
    free(objs);
    free(bytes);
}

static void info_sets(struct ictx *x)
{
    if (x->plen == 0) {
        for (unsigned i = 0; i < x->c->n_ns; i++)
            put_sets(x, x->c->ns[i], NULL, 0);
        return;
    }
    const char *slash = memchr(x->params, '/', x->plen);
    size_t nslen = slash ? (size_t)(slash - x->params) : x->plen;
    struct emu_ns *ns = emu_ns_find(x->c, x->params, nslen);
    if (!ns) {
        put(x->o, "ns_type=unknown");
        return;
    }
    if (slash)
        put_sets(x, ns, slash + 1, x->plen - nslen - 1);
    else
        put_sets(x, ns, NULL, 0);
}

/* ---- config and statistics ------------------------------------------------------------------- */

static void put_service_config(struct ictx *x)
{
    char name[32];
    node_name(x->node, name);
    putf(x->o,
         "advertise-ipv6=false;auto-pin=none;batch-index-threads=2;batch-max-buffers-per-queue=255;"
         "batch-max-requests=0;batch-max-unused-buffers=256;cluster-name=%s;"
         "disable-udf-execution=false;enable-health-check=false;info-max-ms=10000;info-threads=16;"
         "migrate-fill-delay=0;migrate-max-num-incoming=4;migrate-threads=1;min-cluster-size=1;"
         "node-id=%s;proto-fd-idle-ms=0;proto-fd-max=2048;query-max-done=100;"
         "query-threads-limit=128;service-threads=2;sindex-builder-threads=4;sindex-gc-period=10;"
         "ticker-interval=10;transaction-max-ms=1000;transaction-retry-ms=1002",
         x->c->cluster_name, name);
}

static void put_network_config(struct ictx *x)
{
    putf(x->o,
         "service.port=%d;service.address=127.0.0.1;service.access-port=0;"
         "service.access-address=127.0.0.1;service.alternate-access-port=0;service.tls-port=0;"
         "service.tls-access-port=0;service.tls-alternate-access-port=0;service.tls-name=null;"
         "service.disable-localhost=false;heartbeat.mode=mesh;heartbeat.address=127.0.0.1;"
         "heartbeat.interval=150;heartbeat.timeout=10;fabric.address=127.0.0.1",
         x->node->port);
}

static void info_get_config(struct ictx *x)
{
    char ctx[32] = "", id[64] = "";
    param_str(x, "context", ctx, sizeof ctx);
    if (!param_str(x, "id", id, sizeof id))
        param_str(x, "namespace", id, sizeof id);
    if (ctx[0] == '\0') {
        put_service_config(x);
        put(x->o, ";");
        put_network_config(x);
    } else if (strcmp(ctx, "service") == 0) {
        put_service_config(x);
    } else if (strcmp(ctx, "network") == 0) {
        put_network_config(x);
    } else if (strcmp(ctx, "namespace") == 0) {
        struct emu_ns *ns = emu_ns_find(x->c, id, strlen(id));
        if (!ns)
            put(x->o, "ERROR::namespace not found");
        else
            put_ns_config(x->o, ns);
    } else {
        put(x->o, "ERROR::invalid context");
    }
}

static void put_cluster_key(struct ictx *x)
{
    pthread_mutex_lock(&x->c->meta);
    int64_t g = x->c->partition_gen;
    pthread_mutex_unlock(&x->c->meta);
    putf(x->o, "%" PRIX64, (uint64_t)0xEDEC5D414794ull + (uint64_t)g * 0x1000 + cluster_size(x->c) - 1);
}

static void info_statistics(struct ictx *x)
{
    char name[32];
    node_name(&x->c->nodes[0], name);
    uint64_t objects = 0;
    for (unsigned i = 0; i < x->c->n_ns; i++) {
        struct ns_counts k;
        count_ns(x, x->c->ns[i], &k);
        objects += k.objects;
    }
    putf(x->o, "failed_best_practices=false;cluster_size=%u;cluster_key=", cluster_size(x->c));
    put_cluster_key(x);
    putf(x->o,
         ";cluster_generation=1;cluster_principal=%s;cluster_min_compatibility_id=15;"
         "cluster_max_compatibility_id=15;cluster_integrity=true;cluster_is_member=true;"
         "cluster_duplicate_nodes=null;cluster_clock_skew_stop_writes_sec=0;cluster_clock_skew_ms=0;"
         "cluster_clock_skew_outliers=null;objects=%" PRIu64 ";tombstones=0;"
         "info_complete=%" PRIu64 ";batch_index_complete=%" PRIu64 ";migrate_allowed=true;"
         "migrate_partitions_remaining=0",
         name, objects, (uint64_t)atomic_load(&x->c->n_infos),
         (uint64_t)atomic_load(&x->c->n_batches));
}

/* ---- secondary indexes ----------------------------------------------------------------------- */

static void put_sindex(struct as_buf *o, const struct emu_sindex *s, bool b64)
{
    putf(o, "ns=%s:indexname=%s:set=%s:bin=%s:type=%s:indextype=%s:context=", s->ns, s->name,
         s->set[0] ? s->set : "null", s->bin, s->type, s->indextype);
    if (!s->context)
        put(o, "null");
    else if (b64)
        put(o, s->context);
    else
        put(o, "[cdt-context]");
    put(o, ":exp=");
    put(o, s->exp ? (b64 ? s->exp : "[expression]") : "null");
    put(o, ":state=RW");
}

static void info_sindex_list(struct ictx *x)
{
    char nsname[AS_NAMESPACE_NAME_MAX + 2] = "";
    bool has_ns = param_str(x, "ns", nsname, sizeof nsname) ||
                  param_str(x, "namespace", nsname, sizeof nsname);
    const char *v;
    size_t vl;
    bool b64 = param(x, "b64", &v, &vl) && vl == 4 && strncasecmp(v, "true", 4) == 0;
    if (has_ns && !emu_ns_find(x->c, nsname, strlen(nsname))) {
        put(x->o, "ERROR:20:namespace not found on node;ERROR:20:namespace not found on node");
        return;
    }
    /* like 8.1.2: `ns=` does not narrow the list */
    pthread_mutex_lock(&x->c->meta);
    for (unsigned i = 0; i < x->c->n_sindexes; i++) {
        if (i)
            put(x->o, ";");
        put_sindex(x->o, &x->c->sindexes[i], b64);
    }
    pthread_mutex_unlock(&x->c->meta);
}

static struct emu_sindex *sindex_find(struct emu_cluster *c, const char *ns, const char *name)
{
    for (unsigned i = 0; i < c->n_sindexes; i++)
        if (strcmp(c->sindexes[i].ns, ns) == 0 && strcmp(c->sindexes[i].name, name) == 0)
            return &c->sindexes[i];
    return NULL;
}

static bool ns_and_name(struct ictx *x, char *ns, size_t nscap, char *name, size_t namecap)
{
    return (param_str(x, "namespace", ns, nscap) || param_str(x, "ns", ns, nscap)) &&
           param_str(x, "indexname", name, namecap);
}

static void info_sindex_exists(struct ictx *x)
{
    char ns[64], name[64];
    if (!ns_and_name(x, ns, sizeof ns, name, sizeof name)) {
        put(x->o, "ERROR:4:invalid parameters");
        return;
    }
    pthread_mutex_lock(&x->c->meta);
    bool found = sindex_find(x->c, ns, name) != NULL;
    pthread_mutex_unlock(&x->c->meta);
    put(x->o, found ? "true" : "false");
}

static void put_sindex_stat(struct ictx *x, const char *nsname, const char *name)
{
    pthread_mutex_lock(&x->c->meta);
    struct emu_sindex *s = sindex_find(x->c, nsname, name);
    struct emu_sindex copy;
    if (s)
        copy = *s;
    pthread_mutex_unlock(&x->c->meta);
    struct emu_ns *ns = emu_ns_find(x->c, nsname, strlen(nsname));
    if (!s || !ns) {
        put(x->o, "ERROR:201:no index");
        return;
    }
    uint64_t entries = 0;
    uint32_t now = emu_now_cl();
    pthread_rwlock_rdlock(&ns->lock);
    int set_id = copy.set[0] ? emu_set_id(ns, copy.set, strlen(copy.set), false) : 0;
    for (unsigned p = 0; set_id >= 0 && p < AS_PARTITIONS; p++) {
        if (emu_node_column(x->c, x->node->idx, ns, p) < 0)
            continue;
        struct emu_part *part = &ns->parts[p];
        for (uint32_t i = 0; i < part->n; i++) {
            struct emu_rec *r = part->recs[i];
            struct as_op op;
            if ((set_id == 0 || r->set_id == set_id) && !emu_rec_expired(r, now) &&
                emu_rec_bin(r, (const uint8_t *)copy.bin, strlen(copy.bin), &op))
                entries++;
        }
    }
    pthread_rwlock_unlock(&ns->lock);
    putf(x->o,
         "entries=%" PRIu64 ";used_bytes=16777216;entries_per_bval=0;entries_per_rec=0;"
         "load_pct=100;load_time=0;stat_gc_recs=0",
         entries);
}

static void info_sindex_stat(struct ictx *x)
{
    char ns[64], name[64];
    if (!ns_and_name(x, ns, sizeof ns, name, sizeof name)) {
        put(x->o, "ERROR:4:invalid parameters");
        return;
    }
    put_sindex_stat(x, ns, name);
}

static void info_sindex_legacy(struct ictx *x) /* sindex/<ns>/<name> */
{
    const char *slash = memchr(x->params, '/', x->plen);
    char ns[64], name[64];
    if (!slash || (size_t)(slash - x->params) >= sizeof ns ||
        x->plen - (size_t)(slash - x->params) - 1 >= sizeof name) {
        put(x->o, "ERROR:4:invalid parameters");
        return;
    }
    size_t nl = (size_t)(slash - x->params);
    memcpy(ns, x->params, nl);
    ns[nl] = '\0';
    size_t ml = x->plen - nl - 1;
    memcpy(name, slash + 1, ml);
    name[ml] = '\0';
    put_sindex_stat(x, ns, name);
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static bool sindex_same(const struct emu_sindex *a, const struct emu_sindex *b)
{
    return strcmp(a->set, b->set) == 0 && strcmp(a->bin, b->bin) == 0 &&
           strcmp(a->type, b->type) == 0 && strcmp(a->indextype, b->indextype) == 0 &&
           ((!a->context && !b->context) || (a->context && b->context && strcmp(a->context, b->context) == 0)) &&
           ((!a->exp && !b->exp) || (a->exp && b->exp && strcmp(a->exp, b->exp) == 0));
}

static char *param_dup(struct ictx *x, const char *key)
{
    const char *v;
    size_t vl;
    if (!param(x, key, &v, &vl))
        return NULL;
    return strndup(v, vl);
}

static void info_sindex_create(struct ictx *x)
{
    struct emu_sindex s;
    memset(&s, 0, sizeof s);
    if (!ns_and_name(x, s.ns, sizeof s.ns, s.name, sizeof s.name) || s.name[0] == '\0') {
        put(x->o, "ERROR:4:invalid namespace or indexname");
        return;
    }
    param_str(x, "set", s.set, sizeof s.set);
    char data[64] = "";
    if (param_str(x, "indexdata", data, sizeof data)) {
        char *comma = strchr(data, ',');
        if (!comma || (size_t)(comma - data) > AS_BIN_NAME_MAX) {
            put(x->o, "ERROR:4:invalid indexdata");
            return;
        }
        memcpy(s.bin, data, (size_t)(comma - data));
        snprintf(s.type, sizeof s.type, "%s", comma + 1);
    } else {
        param_str(x, "bin", s.bin, sizeof s.bin);
        param_str(x, "type", s.type, sizeof s.type);
    }
    if (!param_str(x, "indextype", s.indextype, sizeof s.indextype))
        strcpy(s.indextype, "default");
    lower(s.type);
    lower(s.indextype);
    if (strcmp(s.type, "integer") == 0)
        strcpy(s.type, "numeric");
    bool is_set_index = strcmp(s.indextype, "set") == 0;
    s.context = param_dup(x, "context");
    s.exp = param_dup(x, "exp");
    if (!is_set_index) {
        if ((s.bin[0] == '\0' && !s.exp) ||
            (strcmp(s.type, "numeric") && strcmp(s.type, "string") && strcmp(s.type, "blob") &&
             strcmp(s.type, "geo2dsphere")) ||
            (strcmp(s.indextype, "default") && strcmp(s.indextype, "list") &&
             strcmp(s.indextype, "mapkeys") && strcmp(s.indextype, "mapvalues"))) {
            put(x->o, "ERROR:4:invalid index definition");
            goto out;
        }
    }
    if (!emu_ns_find(x->c, s.ns, strlen(s.ns))) {
        put(x->o, "ok"); /* 8.1.2 answers ok for an unknown namespace (and creates nothing) */
        goto out;
    }
    pthread_mutex_lock(&x->c->meta);
    struct emu_sindex *old = sindex_find(x->c, s.ns, s.name);
    if (old) {
        pthread_mutex_unlock(&x->c->meta);
        put(x->o, sindex_same(old, &s) ? "ok"
                                       : "ERROR:200:'indexname' already exists with different definition");
        goto out;
    }
    unsigned in_ns = 0;
    for (unsigned i = 0; i < x->c->n_sindexes; i++)
        in_ns += strcmp(x->c->sindexes[i].ns, s.ns) == 0;
    if (in_ns >= 256) {
        pthread_mutex_unlock(&x->c->meta);
        put(x->o, "ERROR:206:too many indexes");
        goto out;
    }
    struct emu_sindex *n = realloc(x->c->sindexes, (x->c->n_sindexes + 1) * sizeof *n);
    if (!n) {
        pthread_mutex_unlock(&x->c->meta);
        put(x->o, "ERROR::out of memory");
        goto out;
    }
    x->c->sindexes = n;
    n[x->c->n_sindexes++] = s;
    pthread_mutex_unlock(&x->c->meta);
    put(x->o, "ok");
    return;
out:
    free(s.context);
    free(s.exp);
}

static void info_sindex_delete(struct ictx *x)
{
    char ns[64], name[64];
    if (!ns_and_name(x, ns, sizeof ns, name, sizeof name)) {
        put(x->o, "ERROR:4:invalid parameters");
        return;
    }
    pthread_mutex_lock(&x->c->meta);
    struct emu_sindex *s = sindex_find(x->c, ns, name);
    if (s) {
        free(s->context);
        free(s->exp);
        size_t i = (size_t)(s - x->c->sindexes);
        memmove(s, s + 1, (x->c->n_sindexes - i - 1) * sizeof *s);
        x->c->n_sindexes--;
    }
    pthread_mutex_unlock(&x->c->meta);
    put(x->o, s ? "ok" : "ERROR:201:no index");
}

/* ---- UDFs ---------------------------------------------------------------------------------------- */

static struct emu_udf *udf_find(struct emu_cluster *c, const char *name)
{
    for (unsigned i = 0; i < c->n_udfs; i++)
        if (strcmp(c->udfs[i].name, name) == 0)
            return &c->udfs[i];
    return NULL;
}

static void info_udf_list(struct ictx *x)
{
    pthread_mutex_lock(&x->c->meta);
    for (unsigned i = 0; i < x->c->n_udfs; i++)
        putf(x->o, "filename=%s,hash=%s,type=LUA;", x->c->udfs[i].name, x->c->udfs[i].hash);
    pthread_mutex_unlock(&x->c->meta);
}

static void info_udf_get(struct ictx *x)
{
    char name[128];
    if (!param_str(x, "filename", name, sizeof name)) {
        put(x->o, "error=invalid_filename");
        return;
    }
    pthread_mutex_lock(&x->c->meta);
    struct emu_udf *u = udf_find(x->c, name);
    if (u) {
        put(x->o, "type=LUA;content=");
        put_b64(x->o, u->content, u->len);
        put(x->o, ";");
    } else {
        put(x->o, "error=not_found");
    }
    pthread_mutex_unlock(&x->c->meta);
}

static void info_udf_put(struct ictx *x)
{
    char name[128], lenstr[16];
    const char *content;
    size_t clen;
    if (!param_str(x, "filename", name, sizeof name) || !strchr(name, '.') || name[0] == '.') {
        put(x->o, "error=invalid_filename");
        return;
    }
    if (!param(x, "content", &content, &clen) || !param_str(x, "content-len", lenstr, sizeof lenstr) ||
        strtoul(lenstr, NULL, 10) != clen || clen % 4 != 0) {
        put(x->o, "error=invalid_content_len");
        return;
    }
    size_t dlen = 0;
    uint8_t *d = b64_decode(content, clen, &dlen);
    if (!d) {
        put(x->o, "error=invalid_base64_content");
        return;
    }
    if (dlen > 1024 * 1024) {
        free(d);
        put(x->o, "error=invalid_content_len");
        return;
    }
    int rc = emu_udf_store(x->c, name, d, dlen); /* takes d */
    put(x->o, rc == 0 ? "ok" : "error=out_of_memory");
    return;
}

static void info_udf_remove(struct ictx *x)
{
    char name[128];
    if (!param_str(x, "filename", name, sizeof name)) {
        put(x->o, "error=invalid_filename");
        return;
    }
    pthread_mutex_lock(&x->c->meta);
    struct emu_udf *u = udf_find(x->c, name);
    if (u) {
        free(u->content);
        size_t i = (size_t)(u - x->c->udfs);
        memmove(u, u + 1, (x->c->n_udfs - i - 1) * sizeof *u);
        x->c->n_udfs--;
    }
    pthread_mutex_unlock(&x->c->meta);
    put(x->o, u ? "ok" : "error=not_found");
}

/* ---- truncate ------------------------------------------------------------------------------------ */

static void info_truncate(struct ictx *x, bool whole_ns)
{
    char nsname[64], set[AS_SET_NAME_MAX + 2] = "", lut[32] = "";
    if (!param_str(x, "namespace", nsname, sizeof nsname) ||
        (!whole_ns && !param_str(x, "set", set, sizeof set))) {
        put(x->o, "ERROR:4:missing namespace or set");
        return;
    }
    struct emu_ns *ns = emu_ns_find(x->c, nsname, strlen(nsname));
    if (!ns) {
        put(x->o, "ERROR:20:namespace not found");
        return;
    }
    uint64_t now = emu_now_ns(), before = now;
    if (param_str(x, "lut", lut, sizeof lut)) {
        char *end;
        before = strtoull(lut, &end, 0);
        if (*end || before > now) {
            put(x->o, "ERROR:4:invalid lut");
            return;
        }
    }
    pthread_rwlock_wrlock(&ns->lock);
    int set_id = whole_ns ? 0 : emu_set_id(ns, set, strlen(set), false);
    if (set_id >= 0) {
        for (unsigned p = 0; p < AS_PARTITIONS; p++) {
            struct emu_part *part = &ns->parts[p];
            uint32_t w = 0;
            for (uint32_t i = 0; i < part->n; i++) {
                struct emu_rec *r = part->recs[i];
                if ((whole_ns || r->set_id == set_id) && r->lut_ns < before)
                    emu_rec_free(r);
                else
                    part->recs[w++] = r;
            }
            part->n = w;
        }
        if (whole_ns)
            ns->truncate_lut = before;
    }
    pthread_rwlock_unlock(&ns->lock);
    put(x->o, "ok");
}

/* ---- emulator-only knobs ------------------------------------------------------------------------- */

static int pid_range(const char *v, size_t vl, unsigned *a, unsigned *b)
{
    char tmp[32];
    if (vl == 0 || vl >= sizeof tmp)
        return -1;
    memcpy(tmp, v, vl);
    tmp[vl] = '\0';
    char *end;
    unsigned long x = strtoul(tmp, &end, 10), y = x;
    if (end == tmp)
        return -1;
    if (*end == '-') {
        const char *q = end + 1;
        y = strtoul(q, &end, 10);
        if (end == q)
            return -1;
    }
    if (*end || x > y || y >= AS_PARTITIONS)
        return -1;
    *a = (unsigned)x;
    *b = (unsigned)y;
    return 0;
}

/* emulator-fault:close-after-records=N;delay-ms=N;unavailable=A-B|none;refuse-logins=CODE;
 * expire-sessions=1 */
static void info_fault(struct ictx *x)
{
    const char *v;
    size_t vl;
    char num[24];
    pthread_mutex_lock(&x->c->meta);
    if (param_str(x, "close-after-records", num, sizeof num))
        x->c->faults.close_after_records = strtol(num, NULL, 10);
    if (param_str(x, "delay-ms", num, sizeof num))
        x->c->faults.delay_ms = strtol(num, NULL, 10);
    if (param(x, "unavailable", &v, &vl)) {
        memset(x->c->faults.unavailable, 0, sizeof x->c->faults.unavailable);
        unsigned a, b;
        if (!eqn(v, vl, "none") && pid_range(v, vl, &a, &b) == 0)
            for (unsigned p = a; p <= b; p++)
                x->c->faults.unavailable[p >> 3] |= (uint8_t)(0x80 >> (p & 7));
    }
    if (param_str(x, "refuse-logins", num, sizeof num))
        x->c->sec.refuse_logins = atoi(num);
    if (param_str(x, "expire-sessions", num, sizeof num) && atoi(num)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x->c->sec.expired_before_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    }
    pthread_mutex_unlock(&x->c->meta);
    put(x->o, "ok");
}

/* emulator-node-stop:N / emulator-node-start:N (also node=N) */
static void info_node_up(struct ictx *x, bool up)
{
    char num[8] = "";
    if (!param_str(x, "node", num, sizeof num) && x->plen > 0 && x->plen < sizeof num) {
        memcpy(num, x->params, x->plen);
        num[x->plen] = '\0';
    }
    char *end;
    long idx = strtol(num, &end, 10);
    if (!num[0] || *end || idx < 0 || idx >= (long)x->c->n_nodes) {
        put(x->o, "ERROR:4:usage emulator-node-stop:N");
        return;
    }
    if (emu_node_set_up(x->c, (unsigned)idx, up) != 0) {
        put(x->o, up ? "ERROR:4:node is running" : "ERROR:4:node is stopped or the last one running");
        return;
    }
    if (!up && x->node->idx == (unsigned)idx)
        x->conn->close_now = true; /* this connection's node is gone after the reply */
    put(x->o, "ok");
}

/* user-agent-set:value=<base64> (once per connection) */
static void info_user_agent_set(struct ictx *x)
{
    const char *v;
    size_t vl;
    if (x->conn->user_agent[0]) {
        put(x->o, "ERROR:4:already set");
        return;
    }
    if (!param(x, "value", &v, &vl)) {
        put(x->o, "ERROR:4:missing 'value'");
        return;
    }
    if (vl == 0) {
        put(x->o, "ERROR:4:missing 'value' value");
        return;
    }
    if (vl > 88) {
        put(x->o, "ERROR:4:'value' value too long");
        return;
    }
    size_t dl;
    uint8_t *d = b64_decode(v, vl, &dl);
    if (!d || dl > 64) {
        free(d);
        put(x->o, "ERROR:4:'value' invalid base64");
        return;
    }
    free(d);
    emu_conn_set_user_agent(x->conn, v, vl);
    put(x->o, "ok");
}

/* With security on, commands needing a permission; false (and ERROR:81 written) when refused. */
static bool permitted(struct ictx *x, unsigned perm)
{
    int rc = emu_sec_check(x->conn, perm);
    if (rc == 0)
        return true;
    if (rc == AS_SEC_ERR_ROLE_VIOLATION)
        putf(x->o, "ERROR:81:role violation - requires permission '%s'", emu_perm_name(perm));
    else
        putf(x->o, "ERROR:%d:not authenticated", rc);
    return false;
}

/* emulator-move:pid=A[-B];node=I  (makes node I the master; partition-generation increments) */
static void info_move(struct ictx *x)
{
    const char *v;
    size_t vl;
    unsigned a, b;
    char num[8];
    if (!param(x, "pid", &v, &vl) || pid_range(v, vl, &a, &b) != 0 ||
        !param_str(x, "node", num, sizeof num) || (unsigned)atoi(num) >= x->c->n_nodes ||
        !atomic_load(&x->c->nodes[atoi(num)].up)) {
        put(x->o, "ERROR:4:usage pid=A[-B];node=I");
        return;
    }
    pthread_mutex_lock(&x->c->meta);
    for (unsigned p = a; p <= b; p++)
        x->c->master[p] = (uint8_t)atoi(num);
    x->c->partition_gen++;
    pthread_mutex_unlock(&x->c->meta);
    put(x->o, "ok");
}

/* emulator-dump:namespace=NS;file=PATH  /  emulator-load:file=PATH */
static void info_dump_load(struct ictx *x, bool dump)
{
    char ns[64] = "", file[1024];
    struct err e;
    if (!param_str(x, "file", file, sizeof file) ||
        (dump && !param_str(x, "namespace", ns, sizeof ns))) {
        put(x->o, "ERROR:4:usage namespace=NS;file=PATH");
        return;
    }
    int rc = dump ? emu_dump_asb(x->c, ns, file, &e) : emu_load_asb(x->c, file, &e);
    if (rc == 0)
        put(x->o, "ok");
    else
        putf(x->o, "ERROR::%s", e.msg);
}

static void info_emu_stats(struct ictx *x)
{
    struct emu_security *s = &x->c->sec;
    putf(x->o, "reads=%" PRIu64 ";writes=%" PRIu64 ";scans=%" PRIu64 ";batches=%" PRIu64 ";infos=%" PRIu64,
         (uint64_t)atomic_load(&x->c->n_reads), (uint64_t)atomic_load(&x->c->n_writes),
         (uint64_t)atomic_load(&x->c->n_scans), (uint64_t)atomic_load(&x->c->n_batches),
         (uint64_t)atomic_load(&x->c->n_infos));
    putf(x->o, ";logins=%" PRIu64 ";login_failures=%" PRIu64 ";authenticates=%" PRIu64
         ";auth_failures=%" PRIu64 ";nodes_up=%u",
         (uint64_t)atomic_load(&s->logins), (uint64_t)atomic_load(&s->login_failures),
         (uint64_t)atomic_load(&s->authenticates), (uint64_t)atomic_load(&s->auth_failures),
         emu_nodes_up(x->c));
    pthread_mutex_lock(&x->c->meta);
    putf(x->o, ";last_sni=%s", x->c->last_sni);
    pthread_mutex_unlock(&x->c->meta);
}

/* ---- dispatch --------------------------------------------------------------------------------------- */

/* racks: per namespace, the running nodes of each rack ("ns=test:rack_1=A,B:rack_2=C"). */
static void info_racks(struct ictx *x)
{
    for (unsigned k = 0; k < x->c->n_ns; k++) {
        putf(x->o, "%sns=%s", k ? ";" : "", x->c->ns[k]->name);
        bool done[EMU_MAX_NODES] = { false };
        for (unsigned i = 0; i < x->c->n_nodes; i++) {
            if (done[i] || !atomic_load(&x->c->nodes[i].up))
                continue;
            int rack = x->c->nodes[i].rack_id;
            putf(x->o, ":rack_%d=", rack);
            bool first = true;
            for (unsigned j = i; j < x->c->n_nodes; j++) {
                if (x->c->nodes[j].rack_id != rack || !atomic_load(&x->c->nodes[j].up))
                    continue;
                char name[32];
                node_name(&x->c->nodes[j], name);
                putf(x->o, "%s%s", first ? "" : ",", name);
                done[j] = true;
                first = false;
            }
        }
    }
}

static void info_node(struct ictx *x)
{
    char name[32];
    node_name(x->node, name);
    put(x->o, name);
}

static void info_partition_gen(struct ictx *x)
{
    pthread_mutex_lock(&x->c->meta);
    int64_t g = x->c->partition_gen;
    pthread_mutex_unlock(&x->c->meta);
    putf(x->o, "%" PRId64, g);
}

static void dispatch(struct ictx *x, const char *name, size_t nl)
{
#define IS(s) eqn(name, nl, s)
    if (IS("node")) info_node(x);
    else if (IS("build")) put(x->o, EMU_BUILD);
    else if (IS("version")) put(x->o, EMU_EDITION " build " EMU_BUILD);
    else if (IS("edition")) put(x->o, EMU_EDITION);
    else if (IS("release"))
        put(x->o, "edition=" EMU_EDITION ";version=" EMU_BUILD ";os=debian12;arch=x86_64;sha=" EMU_SHA);
    else if (IS("status")) put(x->o, "ok");
    else if (IS("features")) put(x->o, FEATURES);
    else if (IS("compatibility-id")) put(x->o, "15");
    else if (IS("namespaces")) {
        for (unsigned i = 0; i < x->c->n_ns; i++)
            putf(x->o, "%s%s", i ? ";" : "", x->c->ns[i]->name);
    }
    else if (IS("namespace")) info_namespace(x);
    else if (IS("sets")) info_sets(x);
    else if (IS("partitions")) put(x->o, "4096");
    else if (IS("replicas")) info_replicas(x, 0);
    else if (IS("replicas-all")) info_replicas(x, 1);
    else if (IS("replicas-master")) info_replicas(x, 2);
    else if (IS("partition-generation")) info_partition_gen(x);
    else if (IS("rebalance-generation")) put(x->o, "1");
    else if (IS("peers-generation")) putf(x->o, "%" PRId64, peers_gen(x->c));
    else if (IS("peers-clear-std")) info_peers(x, false, false);
    else if (IS("peers-clear-alt")) info_peers(x, false, true);
    else if (IS("services")) info_services(x, false);
    else if (IS("services-alternate")) info_services(x, true);
    else if (IS("services-alumni")) ;
    else if (IS("service-clear-alt")) info_service(x, false, true);
    else if (IS("service-clear-std") || IS("service")) info_service(x, false, false);
    else if (x->c->tls && (IS("peers-tls-std") || IS("peers-tls-alt")))
        info_peers(x, true, IS("peers-tls-alt"));
    else if (x->c->tls && (IS("service-tls-std") || IS("service-tls-alt")))
        info_service(x, true, IS("service-tls-alt"));
    else if (IS("peers-tls-std") || IS("peers-tls-alt") || IS("service-tls-std") ||
             IS("service-tls-alt") || IS("rack-ids"))
        put(x->o, "ERROR:25:enterprise only");
    else if (IS("racks")) info_racks(x);
    else if (IS("cluster-name")) put(x->o, x->c->cluster_name);
    else if (IS("cluster-stable")) {
        char size[16];
        if (param_str(x, "size", size, sizeof size) && (unsigned)atoi(size) != cluster_size(x->c))
            put(x->o, "ERROR::cluster not specified size");
        else
            put_cluster_key(x);
    }
    else if (IS("statistics")) info_statistics(x);
    else if (IS("get-config")) info_get_config(x);
    else if (IS("user-agent-set")) info_user_agent_set(x);
    else if (IS("user-agents")) emu_user_agents(x->c, x->o);
    else if (IS("sindex-list")) info_sindex_list(x);
    else if (IS("sindex-exists")) info_sindex_exists(x);
    else if (IS("sindex-stat")) info_sindex_stat(x);
    else if (IS("sindex")) info_sindex_legacy(x);
    else if (IS("sindex-create")) { if (permitted(x, EMU_PERM_SINDEX_ADMIN)) info_sindex_create(x); }
    else if (IS("sindex-delete")) { if (permitted(x, EMU_PERM_SINDEX_ADMIN)) info_sindex_delete(x); }
    else if (IS("udf-list")) info_udf_list(x);
    else if (IS("udf-get")) info_udf_get(x);
    else if (IS("udf-put")) { if (permitted(x, EMU_PERM_UDF_ADMIN)) info_udf_put(x); }
    else if (IS("udf-remove")) { if (permitted(x, EMU_PERM_UDF_ADMIN)) info_udf_remove(x); }
    else if (IS("truncate")) { if (permitted(x, EMU_PERM_TRUNCATE)) info_truncate(x, false); }
    else if (IS("truncate-namespace")) { if (permitted(x, EMU_PERM_TRUNCATE)) info_truncate(x, true); }
    else if (IS("emulator-fault")) info_fault(x);
    else if (IS("emulator-move")) info_move(x);
    else if (IS("emulator-stats")) info_emu_stats(x);
    else if (IS("emulator-dump")) info_dump_load(x, true);
    else if (IS("emulator-load")) info_dump_load(x, false);
    else if (IS("emulator-info-log")) {
        pthread_mutex_lock(&x->c->meta);
        putn(x->o, (const char *)x->c->info_log.data, x->c->info_log.len);
        pthread_mutex_unlock(&x->c->meta);
    }
    else if (IS("emulator-node-stop")) info_node_up(x, false);
    else if (IS("emulator-node-start")) info_node_up(x, true);
    else put(x->o, "ERROR:4:unrecognized command");
#undef IS
}

static void summary(struct ictx *x)
{
    static const char *const names[] = {
        "features", "node", "compatibility-id", "edition", "build_ee_sha", "build_sha",
        "build_arch", "build_time", "build_os", "build", "version", "statistics",
        "services-alumni", "services", "partition-generation",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        put(x->o, names[i]);
        put(x->o, "\t");
        const char *n = names[i];
        x->params = "";
        x->plen = 0;
        if (strcmp(n, "build_ee_sha") == 0) ;
        else if (strcmp(n, "build_sha") == 0) put(x->o, EMU_SHA);
        else if (strcmp(n, "build_arch") == 0) put(x->o, "x86_64");
        else if (strcmp(n, "build_time") == 0) put(x->o, "Wed Nov 25 19:53:23 UTC 2026");
        else if (strcmp(n, "build_os") == 0) put(x->o, "debian12");
        else dispatch(x, n, strlen(n));
        put(x->o, "\n");
    }
}

void emu_info_handle(struct emu_conn *conn, const char *body, size_t len, struct as_buf *out)
{
    struct ictx x = { .c = conn->c, .node = conn->node, .conn = conn, .o = out };
    if (len == 0) {
        summary(&x);
        return;
    }
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break; /* the server ignores a last command without '\n' */
        size_t ll = (size_t)(nl - p);
        putn(out, p, ll);
        put(out, "\t");
        const char *name;
        size_t name_len;
        as_info_cmd_split(p, ll, &name, &name_len, &x.params, &x.plen);
        dispatch(&x, name, name_len);
        put(out, "\n");
        p = nl + 1;
    }
}
