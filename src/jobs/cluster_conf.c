/*
 * cluster_conf.c - renders a node's get-config replies as aerospike.conf text and fetches
 * them from a node (see cluster_conf.h for the rules).
 */
#include "jobs/cluster_conf.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aerospike/as_info.h"
#include "util/strutil.h"

/* ---- growing text buffer ------------------------------------------------------------------ */

struct text {
    char *s;
    size_t len, cap;
    bool oom;
};

static void put_n(struct text *t, const char *s, size_t n)
{
    if (t->oom)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *ns = realloc(t->s, cap);
        if (!ns) {
            t->oom = true;
            return;
        }
        t->s = ns;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void put(struct text *t, const char *s)
{
    put_n(t, s, strlen(s));
}

static void indent(struct text *t, int depth)
{
    for (int i = 0; i < depth; i++)
        put(t, "    ");
}

/* ---- key tree ------------------------------------------------------------------------------ */

struct cnode {
    char *name;
    char *value; /* NULL for a pure stanza */
    struct cnode **kids;
    size_t n, cap;
};

static void cnode_free(struct cnode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        cnode_free(n->kids[i]);
    free(n->kids);
    free(n->name);
    free(n->value);
    free(n);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static struct cnode *cnode_add(struct cnode *parent, const char *name, size_t nl)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        struct cnode **k = realloc(parent->kids, cap * sizeof *k);
        if (!k)
            return NULL;
        parent->kids = k;
        parent->cap = cap;
    }
    struct cnode *c = calloc(1, sizeof *c);
    if (!c || !(c->name = dup_n(name, nl))) {
        free(c);
        return NULL;
    }
    parent->kids[parent->n++] = c;
    return c;
}

static struct cnode *cnode_find(struct cnode *parent, const char *name, size_t nl)
{
    for (size_t i = 0; i < parent->n; i++)
        if (strlen(parent->kids[i]->name) == nl && !memcmp(parent->kids[i]->name, name, nl))
            return parent->kids[i];
    return NULL;
}

/* Whitespace, braces, '#' and control characters would break the stanza syntax. */
static bool conf_safe(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '{' || c == '}' || c == '#')
            return false;
    }
    return true;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t sl = strlen(suffix);
    return n >= sl && !memcmp(s + n - sl, suffix, sl);
}

static int add_leaf(struct cnode *parent, const char *name, size_t nl, const char *v, size_t vl,
                    bool merge, struct err *e)
{
    struct cnode *c = merge ? cnode_find(parent, name, nl) : NULL;
    if (c && c->value)
        c = NULL; /* a repeated key: one more line */
    if (!c)
        c = cnode_add(parent, name, nl);
    if (!c || !(c->value = dup_n(v, vl)))
        return err_set(e, ERR_NOMEM, "cluster configuration: out of memory");
    return 0;
}

/* Adds one "key=value" of a context to the tree under root. */
static int add_pair(struct cnode *root, const char *k, size_t kl, const char *v, size_t vl,
                    const char *what, struct err *e)
{
    if (vl == 0 || (vl == 4 && !memcmp(v, "null", 4)))
        return 0; /* unset */
    if (kl == 0)
        return err_set(e, ERR_INVALID, "cluster configuration: %s: empty key", what);

    struct cnode *at = root;
    const char *seg = k, *end = k + kl;
    for (;;) {
        const char *dot = memchr(seg, '.', (size_t)(end - seg));
        if (!dot)
            break;
        size_t sl = (size_t)(dot - seg);
        if (sl == 0 || !conf_safe(seg, sl))
            return err_set(e, ERR_INVALID, "cluster configuration: %s: bad key '%.*s'", what,
                           (int)kl, k);
        struct cnode *c = cnode_find(at, seg, sl);
        if (!c && !(c = cnode_add(at, seg, sl)))
            return err_set(e, ERR_NOMEM, "cluster configuration: out of memory");
        at = c;
        seg = dot + 1;
    }

    /* last segment, with an optional [index] */
    size_t sl = (size_t)(end - seg);
    bool indexed = false;
    const char *br = memchr(seg, '[', sl);
    if (br && end[-1] == ']') {
        for (const char *p = br + 1; p < end - 1; p++)
            if (!isdigit((unsigned char)*p))
                return err_set(e, ERR_INVALID, "cluster configuration: %s: bad key '%.*s'",
                               what, (int)kl, k);
        sl = (size_t)(br - seg);
        indexed = true;
    }
    if (sl == 0 || !conf_safe(seg, sl))
        return err_set(e, ERR_INVALID, "cluster configuration: %s: bad key '%.*s'", what,
                       (int)kl, k);

    if (indexed && sl == 6 && !memcmp(seg, "stripe", 6) && at != root &&
        !strcmp(at->name, "storage-engine"))
        return 0; /* memory stripe names: informational */
    if (ends_with(seg, sl, "port") && vl == 1 && v[0] == '0')
        return 0; /* port not in use */

    if (ends_with(seg, sl, "mesh-seed-address-port")) {
        /* host:port -> "host port" (the last ':' splits, so IPv6 hosts keep theirs) */
        const char *colon = NULL;
        for (const char *p = v; p < v + vl; p++)
            if (*p == ':')
                colon = p;
        if (!colon || !conf_safe(v, vl))
            return err_set(e, ERR_INVALID, "cluster configuration: %s: bad value of %.*s", what,
                           (int)kl, k);
        char *hp = dup_n(v, vl);
        if (!hp)
            return err_set(e, ERR_NOMEM, "cluster configuration: out of memory");
        hp[colon - v] = ' ';
        int rc = add_leaf(at, seg, sl, hp, vl, false, e);
        free(hp);
        return rc;
    }

    if (ends_with(seg, sl, "address") && memchr(v, ',', vl)) {
        const char *p = v, *vend = v + vl;
        while (p < vend) {
            const char *comma = memchr(p, ',', (size_t)(vend - p));
            const char *ie = comma ? comma : vend;
            if (ie > p) {
                if (!conf_safe(p, (size_t)(ie - p)))
                    return err_set(e, ERR_INVALID, "cluster configuration: %s: bad value of %.*s",
                                   what, (int)kl, k);
                int rc = add_leaf(at, seg, sl, p, (size_t)(ie - p), false, e);
                if (rc)
                    return rc;
            }
            p = ie + 1;
        }
        return 0;
    }

    if (!conf_safe(v, vl))
        return err_set(e, ERR_INVALID, "cluster configuration: %s: bad value of %.*s", what,
                       (int)kl, k);
    return add_leaf(at, seg, sl, v, vl, !indexed, e);
}

/* Parses a "k=v;k=v" reply into the tree under root. */
static int add_context(struct cnode *root, const char *s, const char *what, struct err *e)
{
    const char *p = s;
    while (*p) {
        const char *semi = strchr(p, ';');
        const char *ie = semi ? semi : p + strlen(p);
        while (p < ie && (*p == '\n' || *p == '\r'))
            p++;
        const char *te = ie;
        while (te > p && (te[-1] == '\n' || te[-1] == '\r'))
            te--;
        if (te > p) {
            const char *eq = memchr(p, '=', (size_t)(te - p));
            if (!eq)
                return err_set(e, ERR_INVALID, "cluster configuration: %s: no '=' in '%.*s'",
                               what, (int)(te - p), p);
            int rc = add_pair(root, p, (size_t)(eq - p), eq + 1, (size_t)(te - eq - 1), what, e);
            if (rc)
                return rc;
        }
        p = semi ? semi + 1 : ie;
    }
    return 0;
}

static void render_node(struct text *t, const struct cnode *n, int depth)
{
    indent(t, depth);
    put(t, n->name);
    if (n->value) {
        put(t, " ");
        put(t, n->value);
    }
    if (n->n == 0) {
        put(t, "\n");
        return;
    }
    put(t, " {\n");
    for (size_t i = 0; i < n->n; i++)
        render_node(t, n->kids[i], depth + 1);
    indent(t, depth);
    put(t, "}\n");
}

/* Renders one top-level stanza "<name>[ <value>] { <context> }". */
static int render_context(struct text *t, const char *name, const char *value, const char *src,
                          const char *what, struct err *e)
{
    struct cnode *root = calloc(1, sizeof *root);
    if (!root || !(root->name = strdup(name)) || (value && !(root->value = strdup(value)))) {
        cnode_free(root);
        return err_set(e, ERR_NOMEM, "cluster configuration: out of memory");
    }
    int rc = add_context(root, src, what, e);
    if (rc == 0) {
        if (t->len)
            put(t, "\n");
        if (root->n == 0) { /* keep the stanza visible even when nothing is set */
            put(t, name);
            if (value) {
                put(t, " ");
                put(t, value);
            }
            put(t, " {\n}\n");
        } else {
            render_node(t, root, 0);
        }
    }
    cnode_free(root);
    return rc;
}

/* ---- logging ------------------------------------------------------------------------------- */

struct lvl {
    const char *ctx, *level;
    size_t cl, ll;
};

static int render_sink(struct text *t, const struct cluster_conf_log_sink *s, struct err *e)
{
    const char *name = s->name ? s->name : "";
    bool console = !strcmp(name, "stderr") || !strcmp(name, "console");
    if (!console && (!*name || !conf_safe(name, strlen(name))))
        return err_set(e, ERR_INVALID, "cluster configuration: logging: bad sink '%s'", name);

    /* parse ctx:LEVEL pairs */
    const char *src = s->levels ? s->levels : "";
    size_t cap = 1;
    for (const char *p = src; *p; p++)
        cap += *p == ';';
    struct lvl *v = calloc(cap, sizeof *v);
    if (!v)
        return err_set(e, ERR_NOMEM, "cluster configuration: out of memory");
    size_t n = 0;
    const char *p = src;
    int rc = 0;
    while (*p && rc == 0) {
        const char *semi = strchr(p, ';');
        const char *ie = semi ? semi : p + strlen(p);
        if (ie > p) {
            const char *sep = p;
            while (sep < ie && *sep != ':' && *sep != '=')
                sep++;
            if (sep == ie || sep == p || sep + 1 == ie || !conf_safe(p, (size_t)(ie - p)))
                rc = err_set(e, ERR_INVALID, "cluster configuration: logging: bad item '%.*s'",
                             (int)(ie - p), p);
            else
                v[n++] = (struct lvl){p, sep + 1, (size_t)(sep - p), (size_t)(ie - sep - 1)};
        }
        p = semi ? semi + 1 : ie;
    }
    if (rc) {
        free(v);
        return rc;
    }

    /* the most common level becomes "context any" (first one wins ties) */
    size_t best = 0, best_count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = 0;
        for (size_t j = 0; j < n; j++)
            c += v[j].ll == v[i].ll && !strncasecmp(v[j].level, v[i].level, v[i].ll);
        if (c > best_count) {
            best = i;
            best_count = c;
        }
    }

    indent(t, 1);
    if (console) {
        put(t, "console {\n");
    } else {
        put(t, "file ");
        put(t, name);
        put(t, " {\n");
    }
    /* "context any <level>" first (it sets every context), then the exceptions */
    for (size_t pass = 0; pass < 2 && n; pass++) {
        for (size_t i = pass ? 0 : best; i < n; i++) {
            bool common =
                v[i].ll == v[best].ll && !strncasecmp(v[i].level, v[best].level, v[i].ll);
            if (pass == 1 && common)
                continue;
            indent(t, 2);
            put(t, "context ");
            if (pass == 0)
                put(t, "any");
            else
                put_n(t, v[i].ctx, v[i].cl);
            put(t, " ");
            for (size_t k = 0; k < v[i].ll; k++) {
                char c = (char)tolower((unsigned char)v[i].level[k]);
                put_n(t, &c, 1);
            }
            put(t, "\n");
            if (pass == 0)
                break;
        }
    }
    indent(t, 1);
    put(t, "}\n");
    free(v);
    return 0;
}

int cluster_conf_render(const struct cluster_conf_input *in, char **out, struct err *e)
{
    *out = NULL;
    struct text t = {0};
    int rc = 0;
    if (in->service)
        rc = render_context(&t, "service", NULL, in->service, "service", e);
    if (rc == 0 && in->n_logging) {
        if (t.len)
            put(&t, "\n");
        put(&t, "logging {\n");
        for (size_t i = 0; i < in->n_logging && rc == 0; i++)
            rc = render_sink(&t, &in->logging[i], e);
        put(&t, "}\n");
    }
    if (rc == 0 && in->network)
        rc = render_context(&t, "network", NULL, in->network, "network", e);
    for (size_t i = 0; rc == 0 && i < in->n_namespaces; i++) {
        const struct cluster_conf_ns *ns = &in->namespaces[i];
        if (!ns->name || !*ns->name || !conf_safe(ns->name, strlen(ns->name))) {
            rc = err_set(e, ERR_INVALID, "cluster configuration: bad namespace name");
            break;
        }
        char what[160];
        str_printf(what, sizeof what, "namespace %s", ns->name);
        rc = render_context(&t, "namespace", ns->name, ns->config ? ns->config : "", what, e);
    }
    if (rc == 0 && t.oom)
        rc = err_set(e, ERR_NOMEM, "cluster configuration: out of memory");
    if (rc == 0 && !t.s && !(t.s = strdup("")))
        rc = err_set(e, ERR_NOMEM, "cluster configuration: out of memory");
    if (rc) {
        free(t.s);
        return rc;
    }
    *out = t.s;
    return 0;
}

/* ---- fetching ------------------------------------------------------------------------------ */

/* `logs` -> "0:stderr;1:/var/log/aerospike.log"; then each sink's levels. Any failure just
 * leaves logging out (older or restricted servers). */
static void fetch_logging(struct as_node *node, struct cluster_conf_log_sink **sinks, size_t *n)
{
    *sinks = NULL;
    *n = 0;
    struct err e = {0};
    char *logs = NULL;
    size_t len = 0;
    if (as_info_node_value(node, "logs", &logs, &len, &e))
        return;
    struct as_strv items = {0};
    if (as_strv_split(logs, len, ';', &items, &e)) {
        free(logs);
        return;
    }
    free(logs);
    struct cluster_conf_log_sink *v = calloc(items.n ? items.n : 1, sizeof *v);
    if (!v) {
        as_strv_free(&items);
        return;
    }
    size_t got = 0;
    for (size_t i = 0; i < items.n; i++) {
        char *item = items.v[i];
        char *colon = strchr(item, ':');
        if (!colon || colon == item)
            continue;
        *colon = '\0';
        char *levels = NULL;
        if (as_info_get_config(node, "logging", item, &levels, &e)) {
            err_clear(&e);
            continue;
        }
        char *name = strdup(colon + 1);
        if (!name) {
            free(levels);
            continue;
        }
        v[got].name = name;
        v[got].levels = levels;
        got++;
    }
    as_strv_free(&items);
    *sinks = v;
    *n = got;
}

int cluster_conf_fetch(struct as_node *node, char **out, struct err *e)
{
    *out = NULL;
    char *service = NULL, *network = NULL;
    struct cluster_conf_log_sink *sinks = NULL;
    size_t n_sinks = 0;
    struct as_strv names = {0};
    struct cluster_conf_ns *nss = NULL;
    size_t n_ns = 0;
    int rc = as_info_get_config(node, "service", NULL, &service, e);
    if (rc == 0)
        rc = as_info_get_config(node, "network", NULL, &network, e);
    if (rc == 0)
        rc = as_info_namespaces(node, &names, e);
    if (rc == 0 && names.n && !(nss = calloc(names.n, sizeof *nss)))
        rc = err_set(e, ERR_NOMEM, "cluster configuration: out of memory");
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        char *cfg = NULL;
        rc = as_info_get_config(node, "namespace", names.v[i], &cfg, e);
        if (rc == 0) {
            nss[i].name = names.v[i];
            nss[i].config = cfg;
            n_ns++;
        }
    }
    if (rc == 0) {
        fetch_logging(node, &sinks, &n_sinks);
        struct cluster_conf_input in = {
            .service = service,
            .network = network,
            .logging = sinks,
            .n_logging = n_sinks,
            .namespaces = nss,
            .n_namespaces = n_ns,
        };
        rc = cluster_conf_render(&in, out, e);
    }
    for (size_t i = 0; i < n_ns; i++)
        free((char *)(uintptr_t)nss[i].config);
    free(nss);
    for (size_t i = 0; i < n_sinks; i++) {
        free((char *)(uintptr_t)sinks[i].name);
        free((char *)(uintptr_t)sinks[i].levels);
    }
    free(sinks);
    as_strv_free(&names);
    free(service);
    free(network);
    return rc;
}
