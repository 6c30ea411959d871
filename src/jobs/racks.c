/*
 * racks.c - the routine's `rack-list`: which nodes of the cluster serve the listed racks of a
 * namespace, from the `racks:` info command (as backup-go resolves it), so a rack-list backup
 * runs as a node-list backup of those nodes.
 *
 * Reply grammar (one row per namespace, rows separated by ';'):
 *   ns=<namespace>:rack_<id>=<node>,<node>:rack_<id>=<node>...
 */
#include "jobs/racks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aerospike/as_info.h"

static bool rack_listed(const cfg_intlist *racks, int64_t id)
{
    for (size_t i = 0; i < racks->n; i++)
        if (racks->v[i] == id)
            return true;
    return false;
}

static int add_unique(cfg_strlist *out, const char *name, size_t len, struct err *e)
{
    for (size_t i = 0; i < out->n; i++)
        if (strlen(out->v[i]) == len && strncmp(out->v[i], name, len) == 0)
            return 0;
    char **nv = realloc(out->v, (out->n + 1) * sizeof *nv);
    if (!nv)
        return err_set(e, ERR_NOMEM, "out of memory");
    out->v = nv;
    if (!(out->v[out->n] = strndup(name, len)))
        return err_set(e, ERR_NOMEM, "out of memory");
    out->n++;
    out->set = true;
    return 0;
}

/* Adds the nodes of one "rack_<id>=a,b" pair when <id> is listed; *found gets the rack bit. */
static int take_pair(const char *p, size_t len, const cfg_intlist *racks, cfg_strlist *out,
                     bool *found, struct err *e)
{
    const char *eq = memchr(p, '=', len);
    if (!eq || (size_t)(eq - p) < 6 || strncmp(p, "rack_", 5) != 0)
        return 0;
    int64_t id;
    if (!as_info_parse_i64(p + 5, (size_t)(eq - p - 5), &id) || !rack_listed(racks, id))
        return 0;
    for (size_t i = 0; i < racks->n; i++)
        if (racks->v[i] == id)
            found[i] = true;
    const char *end = p + len;
    for (const char *n = eq + 1; n < end;) {
        const char *comma = memchr(n, ',', (size_t)(end - n));
        const char *stop = comma ? comma : end;
        if (stop > n && add_unique(out, n, (size_t)(stop - n), e))
            return e->code;
        n = stop + 1;
    }
    return 0;
}

/* One namespace row: "ns=<ns>:pair:pair". Rows of other namespaces are skipped. */
static int take_row(const char *row, size_t len, const char *ns, const cfg_intlist *racks,
                    cfg_strlist *out, bool *found, struct err *e)
{
    const char *end = row + len;
    bool mine = false;
    for (const char *p = row; p < end;) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *stop = colon ? colon : end;
        size_t plen = (size_t)(stop - p);
        if (plen > 3 && strncmp(p, "ns=", 3) == 0)
            mine = plen - 3 == strlen(ns) && strncmp(p + 3, ns, plen - 3) == 0;
        else if (mine && take_pair(p, plen, racks, out, found, e))
            return e->code;
        p = stop + 1;
    }
    return 0;
}

int racks_parse_nodes(const char *v, size_t len, const char *ns, const cfg_intlist *racks,
                      cfg_strlist *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    bool found[RACKS_MAX] = {0};
    if (racks->n > RACKS_MAX)
        return err_set(e, ERR_INVALID, "rack-list: at most %d racks", RACKS_MAX);
    const char *end = v + len;
    int rc = 0;
    for (const char *row = v; row < end && rc == 0;) {
        const char *semi = memchr(row, ';', (size_t)(end - row));
        const char *stop = semi ? semi : end;
        rc = take_row(row, (size_t)(stop - row), ns, racks, out, found, e);
        row = stop + 1;
    }
    for (size_t i = 0; rc == 0 && i < racks->n; i++)
        if (!found[i])
            rc = err_set(e, ERR_INVALID, "rack-list: rack %lld has no node serving namespace %s",
                         (long long)racks->v[i], ns);
    if (rc)
        racks_nodes_free(out);
    return rc;
}

int racks_nodes(struct as_cluster *c, const char *ns, const cfg_intlist *racks, cfg_strlist *out,
                struct err *e)
{
    memset(out, 0, sizeof *out);
    struct as_node **nodes;
    size_t n_nodes;
    if (as_cluster_nodes(c, &nodes, &n_nodes, e))
        return e->code;
    int rc = n_nodes ? 0 : err_set(e, ERR_UNAVAILABLE, "rack-list: the cluster has no node");
    char *v = NULL;
    size_t vl = 0;
    if (rc == 0 && as_info_node_value(nodes[0], "racks:", &v, &vl, e))
        rc = err_prefix(e, "rack-list (racks need a rack-aware cluster)");
    as_nodes_release(nodes, n_nodes);
    if (rc == 0)
        rc = racks_parse_nodes(v, vl, ns, racks, out, e);
    free(v);
    return rc;
}

void racks_nodes_free(cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}
