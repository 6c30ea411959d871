/*
 * history.c - backup history, its service-wide cache, listing JSON and retention (see
 * history.h).
 */
#include "jobs/history.h"

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_schema.h"
#include "util/log.h"

#define MOD "history"

static const char *kind_folder(enum history_kind k)
{
    return k == HISTORY_FULL ? "backup" : "incremental";
}

const char *history_kind_folder(enum history_kind kind) { return kind_folder(kind); }

static enum history_kind kind_of_int(int kind)
{
    return kind == HISTORY_FULL ? HISTORY_FULL : HISTORY_INCREMENTAL;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

/* ---- struct history ----------------------------------------------------------------------- */

static void entry_free(struct history_entry *en)
{
    free(en->folder);
    free(en->key);
    free(en->details);
    en->folder = en->key = en->details = NULL;
}

/* Renders en->details from meta and key: the compact BackupDetails without its closing '}'. */
static int render_details(struct history_entry *en)
{
    json_t *o = meta_details_json(&en->meta, en->key, NULL);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return -1;
    size_t n = strlen(text);
    if (n < 2 || text[n - 1] != '}') {
        free(text);
        return -1;
    }
    text[--n] = '\0';
    en->details = text;
    en->details_len = n;
    return 0;
}

void history_free(struct history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        entry_free(&h->v[i]);
    free(h->v);
    memset(h, 0, sizeof *h);
}

static int cmp_entry(const struct history_entry *a, const struct history_entry *b)
{
    if (a->timestamp_ms != b->timestamp_ms)
        return a->timestamp_ms < b->timestamp_ms ? -1 : 1;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    int c = strcmp(a->folder, b->folder);
    return c ? c : strcmp(a->key, b->key);
}

static int cmp_entry_q(const void *a, const void *b) { return cmp_entry(a, b); }

static int reserve(struct history *h, size_t extra, struct err *e)
{
    if (h->n + extra <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 16;
    while (cap < h->n + extra)
        cap *= 2;
    struct history_entry *v = realloc(h->v, cap * sizeof *v);
    if (!v)
        return err_set(e, ERR_NOMEM, "out of memory");
    h->v = v;
    h->cap = cap;
    return 0;
}

/* Deep copy of the given fields; `details` is copied when given, else rendered. */
static int entry_init(struct history_entry *en, enum history_kind kind, int64_t ts,
                      const char *folder, const char *key, const struct backup_meta *meta,
                      const char *details, struct err *e)
{
    memset(en, 0, sizeof *en);
    en->kind = kind;
    en->timestamp_ms = ts;
    en->meta = *meta;
    en->folder = xstrdup(folder);
    en->key = xstrdup(key);
    int bad = !en->folder || !en->key;
    if (!bad && details) {
        bad = !(en->details = xstrdup(details));
        en->details_len = bad ? 0 : strlen(details);
    } else if (!bad) {
        bad = render_details(en);
    }
    if (bad) {
        entry_free(en);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

int history_copy(const struct history *src, struct history *dst, struct err *e)
{
    memset(dst, 0, sizeof *dst);
    if (reserve(dst, src->n, e))
        return e->code;
    for (size_t i = 0; i < src->n; i++) {
        const struct history_entry *s = &src->v[i];
        if (entry_init(&dst->v[i], s->kind, s->timestamp_ms, s->folder, s->key, &s->meta,
                       s->details, e)) {
            history_free(dst);
            return e->code;
        }
        dst->n = i + 1;
    }
    dst->incomplete = src->incomplete;
    dst->corrupt = src->corrupt;
    return 0;
}

int history_insert(struct history *h, enum history_kind kind, int64_t timestamp_ms,
                   const char *folder, const char *key, const struct backup_meta *meta,
                   struct err *e)
{
    struct history_entry en;
    if (entry_init(&en, kind, timestamp_ms, folder, key, meta, NULL, e))
        return e->code;
    for (size_t i = h->n; i-- > 0;) { /* same key: replace (new backups are near the end) */
        if (strcmp(h->v[i].key, key) == 0) {
            entry_free(&h->v[i]);
            memmove(&h->v[i], &h->v[i + 1], (h->n - i - 1) * sizeof *h->v);
            h->n--;
            break;
        }
    }
    if (reserve(h, 1, e)) {
        entry_free(&en);
        return e->code;
    }
    size_t pos = h->n;
    while (pos > 0 && cmp_entry(&h->v[pos - 1], &en) > 0)
        pos--;
    memmove(&h->v[pos + 1], &h->v[pos], (h->n - pos) * sizeof *h->v);
    h->v[pos] = en;
    h->n++;
    return 0;
}

size_t history_remove_folder(struct history *h, const char *folder)
{
    size_t w = 0, removed = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->v[i].folder, folder) == 0) {
            entry_free(&h->v[i]);
            removed++;
        } else {
            h->v[w++] = h->v[i];
        }
    }
    h->n = w;
    return removed;
}

int64_t history_last_created(const struct history *h, enum history_kind kind)
{
    /* The newest folder of that kind (entries are sorted by folder time); `created` is the
     * same for all its namespaces, but take their maximum all the same. */
    int64_t best = -1, newest_ts = 0;
    bool found = false;
    for (size_t i = h->n; i-- > 0;) {
        const struct history_entry *en = &h->v[i];
        if (en->kind != kind)
            continue;
        if (found && en->timestamp_ms < newest_ts)
            break;
        found = true;
        newest_ts = en->timestamp_ms;
        if (en->meta.created_ms > best)
            best = en->meta.created_ms;
    }
    return best;
}

/* ---- loading ------------------------------------------------------------------------------ */

struct name_list {
    char **v;
    size_t n, cap;
};

static void names_free(struct name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int names_add(struct name_list *l, const char *s, struct err *e)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return err_set(e, ERR_NOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = xstrdup(s)))
        return err_set(e, ERR_NOMEM, "out of memory");
    l->n++;
    return 0;
}

/* Collects the directory entries of a delimiter listing. */
static int collect_prefix(void *ctx, const struct stor_entry *ent, struct err *e)
{
    if (!ent->is_prefix)
        return 0;
    return names_add(ctx, ent->key, e);
}

static int list_dirs(struct stor *s, const char *prefix, struct name_list *out, struct err *e)
{
    struct stor_list_opts o = {.prefix = prefix, .delimiter = true};
    return stor_list(s, &o, collect_prefix, out, e);
}

/* Reads and parses one namespace folder ("<...>/data/<ns>/"); adds it to h. */
static int load_namespace(struct stor *s, struct history *h, enum history_kind kind, int64_t ts,
                          const char *folder, const char *ns_prefix, struct err *e)
{
    char *meta_key = xprintf("%smetadata.yaml", ns_prefix);
    if (!meta_key)
        return err_set(e, ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    struct err ge = {0};
    int rc = stor_get(s, meta_key, HISTORY_META_MAX, &text, &len, &ge);
    if (rc == ERR_NOT_FOUND) {
        LOG_D(MOD, "%s: no metadata.yaml, not a backup", ns_prefix);
        h->incomplete++;
        free(meta_key);
        return 0;
    }
    if (rc == ERR_NOMEM) {
        free(meta_key);
        *e = ge;
        return rc;
    }
    struct backup_meta m;
    if (rc == 0)
        rc = meta_parse(text, len, meta_key, &m, &ge);
    free(text);
    if (rc) {
        LOG_W(MOD, "skipping backup with unreadable metadata: %s", ge.msg);
        h->corrupt++;
        free(meta_key);
        return 0;
    }
    free(meta_key);
    /* BackupDetails.key: the namespace folder without its trailing '/'. */
    size_t n = strlen(ns_prefix);
    char *key = malloc(n);
    if (!key)
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(key, ns_prefix, n - 1);
    key[n - 1] = '\0';
    if (reserve(h, 1, e)) {
        free(key);
        return e->code;
    }
    rc = entry_init(&h->v[h->n], kind, ts, folder, key, &m, NULL, e);
    free(key);
    if (rc)
        return rc;
    h->n++;
    return 0;
}

static int load_kind(struct stor *s, const char *routine, enum history_kind kind,
                     struct history *h, struct err *e)
{
    char *root = xprintf("%s/%s/", routine, kind_folder(kind));
    if (!root)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t root_len = strlen(root);
    struct name_list folders = {0};
    int rc = list_dirs(s, root, &folders, e);
    for (size_t i = 0; rc == 0 && i < folders.n; i++) {
        const char *folder = folders.v[i]; /* "<root><TS>/" */
        char name[256];
        size_t nlen = strlen(folder) - root_len - 1;
        int64_t ts;
        if (nlen >= sizeof name)
            continue;
        memcpy(name, folder + root_len, nlen);
        name[nlen] = '\0';
        if (meta_folder_timestamp(name, &ts)) {
            LOG_D(MOD, "%s: not a backup folder name, ignored", folder);
            continue;
        }
        char *data = xprintf("%sdata/", folder);
        if (!data) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            break;
        }
        struct name_list nss = {0};
        rc = list_dirs(s, data, &nss, e);
        for (size_t j = 0; rc == 0 && j < nss.n; j++)
            rc = load_namespace(s, h, kind, ts, folder, nss.v[j], e);
        names_free(&nss);
        free(data);
    }
    names_free(&folders);
    free(root);
    return rc;
}

int history_load(struct stor *s, const char *routine, struct history *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (!routine || !*routine || strchr(routine, '/'))
        return err_set(e, ERR_INVALID, "invalid routine name \"%s\" for a storage folder",
                       routine ? routine : "");
    int rc = load_kind(s, routine, HISTORY_FULL, out, e);
    if (rc == 0)
        rc = load_kind(s, routine, HISTORY_INCREMENTAL, out, e);
    if (rc) {
        err_prefix(e, "routine %s: backup history", routine);
        return rc;
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_entry_q);
    return 0;
}

/* ---- leftovers of interrupted runs --------------------------------------------------------- */

static void delete_partial(struct stor *s, const char *prefix, const char *why, size_t *deleted,
                           int *first, struct err *e)
{
    struct err de = {0};
    if (stor_delete_prefix(s, prefix, &de)) {
        LOG_W(MOD, "%s: cannot delete partial backup %s: %s", stor_name(s), prefix, de.msg);
        if (!*first) {
            *first = de.code;
            *e = de;
        }
        return;
    }
    LOG_W(MOD, "%s: deleted partial backup %s (%s)", stor_name(s), prefix, why);
    ++*deleted;
}

/* One recursive listing of "<routine>/<kind>/" sorted by key, read as a stream of timestamp
 * folders and, inside each, namespace folders ("<ts>/data/<ns>/"): a namespace folder without
 * metadata.yaml is partial; a timestamp folder with no complete namespace is partial whole.
 * What to delete is only collected here (deleting while paging would move the listing). */
struct partial_scan {
    size_t root_len;
    struct name_list folders;    /* every timestamp folder seen ("<root><ts>/") */
    struct name_list whole;      /* timestamp folders to delete */
    struct name_list partial_ns; /* namespace folders to delete */
    struct name_list ts_partial; /* incomplete namespaces of the current timestamp folder */
    size_t ts_complete;          /* complete namespaces of the current timestamp folder */
    char ns[STOR_KEY_MAX + 1];   /* current namespace folder ("" = none) */
    bool ns_complete;
};

static int scan_end_ns(struct partial_scan *ps, struct err *e)
{
    int rc = 0;
    if (ps->ns[0] && ps->ns_complete)
        ps->ts_complete++;
    else if (ps->ns[0])
        rc = names_add(&ps->ts_partial, ps->ns, e);
    ps->ns[0] = '\0';
    return rc;
}

static int scan_end_folder(struct partial_scan *ps, struct err *e)
{
    int rc = scan_end_ns(ps, e);
    if (rc == 0 && ps->folders.n && ps->ts_complete == 0)
        rc = names_add(&ps->whole, ps->folders.v[ps->folders.n - 1], e);
    for (size_t i = 0; rc == 0 && ps->ts_complete && i < ps->ts_partial.n; i++)
        rc = names_add(&ps->partial_ns, ps->ts_partial.v[i], e);
    names_free(&ps->ts_partial);
    ps->ts_complete = 0;
    return rc;
}

static int scan_object(void *ctx, const struct stor_entry *ent, struct err *e)
{
    struct partial_scan *ps = ctx;
    const char *rest = ent->key + ps->root_len;
    size_t ts_len = strcspn(rest, "/");
    char ts_name[256];
    int64_t ts;
    if (!rest[ts_len] || ts_len >= sizeof ts_name)
        return 0;
    memcpy(ts_name, rest, ts_len);
    ts_name[ts_len] = '\0';
    if (meta_folder_timestamp(ts_name, &ts))
        return 0;
    size_t folder_len = ps->root_len + ts_len + 1;
    const char *cur = ps->folders.n ? ps->folders.v[ps->folders.n - 1] : NULL;
    if (!cur || strlen(cur) != folder_len || strncmp(cur, ent->key, folder_len) != 0) {
        if (cur && scan_end_folder(ps, e))
            return e->code;
        char *folder = strndup(ent->key, folder_len);
        int rc = folder ? names_add(&ps->folders, folder, e) : err_set(e, ERR_NOMEM, "out of memory");
        free(folder);
        if (rc)
            return rc;
    }
    const char *sub = ent->key + folder_len;
    if (strncmp(sub, "data/", 5) != 0 || !strchr(sub + 5, '/'))
        return 0;
    size_t ns_len = (size_t)(strchr(sub + 5, '/') + 1 - ent->key);
    if (strlen(ps->ns) != ns_len || strncmp(ps->ns, ent->key, ns_len) != 0) {
        if (scan_end_ns(ps, e))
            return e->code;
        memcpy(ps->ns, ent->key, ns_len);
        ps->ns[ns_len] = '\0';
        ps->ns_complete = false;
    }
    if (strcmp(ent->key + ns_len, "metadata.yaml") == 0)
        ps->ns_complete = true;
    return 0;
}

static void partial_scan_free(struct partial_scan *ps)
{
    names_free(&ps->folders);
    names_free(&ps->whole);
    names_free(&ps->partial_ns);
    names_free(&ps->ts_partial);
}

/* Local storage only: timestamp folders holding nothing but temporary files (a crash before
 * the first file was committed) do not show in listings; find them in the directory. */
static int clean_hidden_local(struct stor *s, const char *root, const struct name_list *listed,
                              size_t *deleted, int *first, struct err *e)
{
    if (stor_get_kind(s) != STOR_LOCAL)
        return 0;
    char *dir = xprintf("%s/%s", stor_root(s), root);
    if (!dir)
        return err_set(e, ERR_NOMEM, "out of memory");
    DIR *d = opendir(dir);
    free(dir);
    if (!d)
        return 0; /* no such folder: nothing left behind */
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        int64_t ts;
        if (de->d_name[0] == '.' || meta_folder_timestamp(de->d_name, &ts))
            continue;
        char *folder = xprintf("%s%s/", root, de->d_name);
        if (!folder) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            break;
        }
        bool seen = false;
        for (size_t i = 0; i < listed->n && !seen; i++)
            seen = strcmp(listed->v[i], folder) == 0;
        if (!seen)
            delete_partial(s, folder, "temporary files only", deleted, first, e);
        free(folder);
    }
    closedir(d);
    return rc;
}

int history_clean_partial(struct stor *s, const char *routine, size_t *deleted, struct err *e)
{
    *deleted = 0;
    if (!routine || !*routine || strchr(routine, '/'))
        return err_set(e, ERR_INVALID, "invalid routine name \"%s\" for a storage folder",
                       routine ? routine : "");
    int first = 0;
    int rc = 0;
    for (int k = 0; rc == 0 && k < HISTORY_KIND_COUNT; k++) {
        char *root = xprintf("%s/%s/", routine, kind_folder((enum history_kind)k));
        if (!root)
            return err_set(e, ERR_NOMEM, "out of memory");
        struct partial_scan ps = {.root_len = strlen(root)};
        struct stor_list_opts o = {.prefix = root};
        rc = stor_list(s, &o, scan_object, &ps, e);
        if (rc == 0 && ps.folders.n)
            rc = scan_end_folder(&ps, e);
        for (size_t i = 0; rc == 0 && i < ps.whole.n; i++)
            delete_partial(s, ps.whole.v[i], "no namespace has metadata.yaml", deleted, &first, e);
        for (size_t i = 0; rc == 0 && i < ps.partial_ns.n; i++)
            delete_partial(s, ps.partial_ns.v[i], "no metadata.yaml", deleted, &first, e);
        if (rc == 0)
            rc = clean_hidden_local(s, root, &ps.folders, deleted, &first, e);
        partial_scan_free(&ps);
        free(root);
    }
    if (rc)
        err_prefix(e, "routine %s: partial backups", routine);
    return rc ? rc : first;
}

/* ---- retention ---------------------------------------------------------------------------- */

void history_victims_free(struct history_victims *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i].folder);
    free(v->v);
    memset(v, 0, sizeof *v);
}

static int victims_add(struct history_victims *v, const struct history_entry *en, struct err *e)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        struct history_folder *nv = realloc(v->v, cap * sizeof *nv);
        if (!nv)
            return err_set(e, ERR_NOMEM, "out of memory");
        v->v = nv;
        v->cap = cap;
    }
    struct history_folder *f = &v->v[v->n];
    f->kind = en->kind;
    f->timestamp_ms = en->timestamp_ms;
    if (!(f->folder = xstrdup(en->folder)))
        return err_set(e, ERR_NOMEM, "out of memory");
    v->n++;
    return 0;
}

int history_retention_plan(const struct history *h, int64_t full_keep, int64_t incr_keep,
                           struct history_victims *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (full_keep < 0 && incr_keep < 0)
        return 0;
    /* Distinct full folders, newest first (entries of one folder are adjacent). */
    size_t nfull = 0;
    for (size_t i = 0; i < h->n; i++)
        nfull += h->v[i].kind == HISTORY_FULL;
    const struct history_entry **fulls = calloc(nfull ? nfull : 1, sizeof *fulls);
    if (!fulls)
        return err_set(e, ERR_NOMEM, "out of memory");
    nfull = 0;
    for (size_t i = h->n; i-- > 0;) {
        const struct history_entry *en = &h->v[i];
        if (en->kind == HISTORY_FULL && !(nfull && strcmp(fulls[nfull - 1]->folder, en->folder) == 0))
            fulls[nfull++] = en;
    }
    if (nfull == 0) {
        free(fulls);
        return 0;
    }
    size_t keep_full = nfull; /* fulls kept: fulls[0 .. keep_full) */
    if (full_keep >= 0)
        keep_full = full_keep < 1 ? 1 : (size_t)full_keep < nfull ? (size_t)full_keep : nfull;
    bool drop_incr = incr_keep >= 0;
    int64_t incr_cutoff = INT64_MIN; /* incrementals before this time are deleted */
    if (drop_incr) {
        size_t k = incr_keep < 1 ? 1 : (size_t)incr_keep;
        if (full_keep >= 0 && k > keep_full)
            k = keep_full;
        if (k > nfull)
            k = nfull;
        incr_cutoff = fulls[k - 1]->timestamp_ms;
    }
    /* Oldest first; one victim per folder. */
    int rc = 0;
    const char *last = NULL;
    for (size_t i = 0; rc == 0 && i < h->n; i++) {
        const struct history_entry *en = &h->v[i];
        if (last && strcmp(last, en->folder) == 0)
            continue;
        bool victim = false;
        if (en->kind == HISTORY_FULL) {
            /* Fulls sort by (time, folder): older than the oldest kept one = deleted. */
            const struct history_entry *kf = fulls[keep_full - 1];
            victim = en->timestamp_ms < kf->timestamp_ms ||
                     (en->timestamp_ms == kf->timestamp_ms && strcmp(en->folder, kf->folder) < 0);
        } else if (drop_incr) {
            victim = en->timestamp_ms < incr_cutoff;
        }
        if (victim) {
            rc = victims_add(out, en, e);
            last = en->folder;
        }
    }
    free(fulls);
    if (rc)
        history_victims_free(out);
    return rc;
}

int history_retention_apply(struct history_cache *cache, const char *routine, struct stor *s,
                            const struct history_victims *victims, struct err *e)
{
    int first = 0;
    for (size_t i = 0; i < victims->n; i++) {
        const char *folder = victims->v[i].folder;
        if (cache)
            history_cache_forget(cache, routine, folder);
        struct err de = {0};
        if (stor_delete_prefix(s, folder, &de)) {
            LOG_W(MOD, "retention: could not delete %s: %s", folder, de.msg);
            if (!first) {
                first = de.code;
                *e = de;
            }
            continue;
        }
        LOG_I(MOD, "retention: deleted %s backup %s", victims->v[i].kind == HISTORY_FULL ? "full" : "incremental",
              folder);
    }
    return first;
}

/* ---- the cache ---------------------------------------------------------------------------- */

enum op_type { OP_ADD, OP_FORGET };

struct op {
    enum op_type type;
    struct history_entry en; /* OP_ADD: the entry; OP_FORGET: only en.folder */
};

struct slot {
    char *name;
    uint64_t id;            /* unique per slot, so a refresh never lands in a re-created one */
    struct history h;
    int refreshing;         /* refreshes in flight */
    struct op *journal;     /* changes since the oldest refresh in flight started */
    size_t nj, capj;
    bool journal_lost;      /* a change could not be journaled (out of memory) */
    bool loaded;            /* a refresh succeeded once: the history is known */
};

struct history_cache {
    pthread_rwlock_t lock;
    struct slot **slots;
    size_t n, cap;
    uint64_t next_id;
};

static void journal_clear(struct slot *sl)
{
    for (size_t i = 0; i < sl->nj; i++)
        entry_free(&sl->journal[i].en);
    free(sl->journal);
    sl->journal = NULL;
    sl->nj = sl->capj = 0;
    sl->journal_lost = false;
}

static void slot_free(struct slot *sl)
{
    if (!sl)
        return;
    free(sl->name);
    history_free(&sl->h);
    journal_clear(sl);
    free(sl);
}

int history_cache_new(struct history_cache **out, struct err *e)
{
    struct history_cache *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (pthread_rwlock_init(&c->lock, NULL)) {
        free(c);
        return err_set(e, ERR_INTERNAL, "history cache: cannot create lock");
    }
    c->next_id = 1;
    *out = c;
    return 0;
}

void history_cache_free(struct history_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        slot_free(c->slots[i]);
    free(c->slots);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

static struct slot *find_slot(struct history_cache *c, const char *routine, size_t *idx)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->slots[i]->name, routine) == 0) {
            if (idx)
                *idx = i;
            return c->slots[i];
        }
    return NULL;
}

/* Under the write lock. */
static struct slot *get_slot(struct history_cache *c, const char *routine, struct err *e)
{
    struct slot *sl = find_slot(c, routine, NULL);
    if (sl)
        return sl;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct slot **v = realloc(c->slots, cap * sizeof *v);
        if (!v) {
            err_set(e, ERR_NOMEM, "out of memory");
            return NULL;
        }
        c->slots = v;
        c->cap = cap;
    }
    sl = calloc(1, sizeof *sl);
    if (!sl || !(sl->name = xstrdup(routine))) {
        free(sl);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    sl->id = c->next_id++;
    c->slots[c->n++] = sl;
    return sl;
}

static void remove_slot_at(struct history_cache *c, size_t i)
{
    slot_free(c->slots[i]);
    memmove(&c->slots[i], &c->slots[i + 1], (c->n - i - 1) * sizeof *c->slots);
    c->n--;
}

/* Records a change for the refreshes in flight (under the write lock). On allocation failure
 * the journal is marked lost: the refresh result is then discarded. */
static void journal_add(struct slot *sl, enum op_type type, const struct history_entry *en)
{
    if (sl->refreshing == 0 || sl->journal_lost)
        return;
    if (sl->nj == sl->capj) {
        size_t cap = sl->capj ? sl->capj * 2 : 8;
        struct op *v = realloc(sl->journal, cap * sizeof *v);
        if (!v)
            goto lost;
        sl->journal = v;
        sl->capj = cap;
    }
    struct op *op = &sl->journal[sl->nj];
    memset(op, 0, sizeof *op);
    op->type = type;
    op->en.kind = en->kind;
    op->en.timestamp_ms = en->timestamp_ms;
    op->en.meta = en->meta;
    op->en.folder = xstrdup(en->folder);
    op->en.key = en->key ? xstrdup(en->key) : NULL;
    if (!op->en.folder || (en->key && !op->en.key)) {
        entry_free(&op->en);
        goto lost;
    }
    sl->nj++;
    return;
lost:
    journal_clear(sl);
    sl->journal_lost = true;
}

static int replay(struct history *h, const struct slot *sl, struct err *e)
{
    for (size_t i = 0; i < sl->nj; i++) {
        const struct op *op = &sl->journal[i];
        if (op->type == OP_FORGET) {
            history_remove_folder(h, op->en.folder);
        } else if (history_insert(h, op->en.kind, op->en.timestamp_ms, op->en.folder, op->en.key,
                                  &op->en.meta, e)) {
            return e->code;
        }
    }
    return 0;
}

int history_cache_refresh(struct history_cache *c, const char *routine, struct stor *s,
                          struct err *e)
{
    if (!routine || !*routine || strchr(routine, '/'))
        return err_set(e, ERR_INVALID, "invalid routine name \"%s\" for a storage folder",
                       routine ? routine : "");
    pthread_rwlock_wrlock(&c->lock);
    bool created = !find_slot(c, routine, NULL);
    struct slot *sl = get_slot(c, routine, e);
    if (!sl) {
        pthread_rwlock_unlock(&c->lock);
        return e->code;
    }
    uint64_t id = sl->id;
    sl->refreshing++;
    pthread_rwlock_unlock(&c->lock);

    struct history h;
    int rc = history_load(s, routine, &h, e);

    pthread_rwlock_wrlock(&c->lock);
    sl = find_slot(c, routine, NULL);
    if (sl && sl->id == id) {
        if (rc == 0 && sl->journal_lost)
            rc = err_set(e, ERR_NOMEM, "routine %s: history changed during refresh (out of memory)",
                         routine);
        if (rc == 0)
            rc = replay(&h, sl, e);
        if (rc == 0) {
            sl->loaded = true;
            history_free(&sl->h);
            sl->h = h;
            memset(&h, 0, sizeof h);
        }
        if (--sl->refreshing == 0) {
            journal_clear(sl);
            size_t idx;
            /* A routine that never loaded and got nothing meanwhile stays unknown. */
            if (rc && created && sl->h.n == 0 && find_slot(c, routine, &idx))
                remove_slot_at(c, idx);
        }
    } /* else: the routine was removed meanwhile; drop the result */
    pthread_rwlock_unlock(&c->lock);
    history_free(&h);
    if (rc == 0)
        LOG_D(MOD, "routine %s: history refreshed", routine);
    return rc;
}

static int folder_timestamp(const char *folder, int64_t *ts)
{
    /* "<routine>/<kind>/<TS-folder>/": the last segment before the trailing '/'. */
    size_t n = strlen(folder);
    if (n < 2 || folder[n - 1] != '/')
        return -1;
    size_t start = n - 1;
    while (start > 0 && folder[start - 1] != '/')
        start--;
    char name[256];
    size_t len = n - 1 - start;
    if (len == 0 || len >= sizeof name)
        return -1;
    memcpy(name, folder + start, len);
    name[len] = '\0';
    return meta_folder_timestamp(name, ts);
}

int history_cache_add(struct history_cache *c, const char *routine, int kind, const char *folder,
                      const char *ns_dir, const struct backup_meta *meta, struct err *e)
{
    size_t flen = strlen(folder);
    if (flen == 0 || folder[flen - 1] != '/')
        return err_set(e, ERR_INVALID, "history: folder \"%s\" must end with '/'", folder);
    int64_t ts;
    if (folder_timestamp(folder, &ts))
        ts = meta->created_ms;
    char *key = xprintf("%sdata/%s", folder, ns_dir ? ns_dir : meta->namespace_);
    if (!key)
        return err_set(e, ERR_NOMEM, "out of memory");
    struct history_entry en = {.kind = kind_of_int(kind), .timestamp_ms = ts,
                               .folder = (char *)folder, .key = key, .meta = *meta};
    pthread_rwlock_wrlock(&c->lock);
    int rc = 0;
    struct slot *sl = get_slot(c, routine, e);
    if (!sl)
        rc = e->code;
    if (rc == 0)
        rc = history_insert(&sl->h, en.kind, ts, folder, key, meta, e);
    if (rc == 0)
        journal_add(sl, OP_ADD, &en);
    pthread_rwlock_unlock(&c->lock);
    free(key);
    return rc;
}

void history_cache_forget(struct history_cache *c, const char *routine, const char *folder)
{
    pthread_rwlock_wrlock(&c->lock);
    struct slot *sl = find_slot(c, routine, NULL);
    if (sl) {
        history_remove_folder(&sl->h, folder);
        struct history_entry en = {.folder = (char *)folder};
        journal_add(sl, OP_FORGET, &en);
    }
    pthread_rwlock_unlock(&c->lock);
}

void history_cache_remove(struct history_cache *c, const char *routine)
{
    pthread_rwlock_wrlock(&c->lock);
    size_t i;
    if (find_slot(c, routine, &i))
        remove_slot_at(c, i);
    pthread_rwlock_unlock(&c->lock);
}

void history_cache_retain(struct history_cache *c, const char *const *names, size_t n)
{
    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = c->n; i-- > 0;) {
        bool keep = false;
        for (size_t j = 0; j < n && !keep; j++)
            keep = strcmp(c->slots[i]->name, names[j]) == 0;
        if (!keep)
            remove_slot_at(c, i);
    }
    pthread_rwlock_unlock(&c->lock);
}

int64_t history_cache_last_success(struct history_cache *c, const char *routine, int kind)
{
    pthread_rwlock_rdlock(&c->lock);
    struct slot *sl = find_slot(c, routine, NULL);
    int64_t r = sl ? history_last_created(&sl->h, kind_of_int(kind)) : -1;
    pthread_rwlock_unlock(&c->lock);
    return r;
}

bool history_cache_loaded(struct history_cache *c, const char *routine)
{
    pthread_rwlock_rdlock(&c->lock);
    struct slot *sl = find_slot(c, routine, NULL);
    bool loaded = sl && sl->loaded;
    pthread_rwlock_unlock(&c->lock);
    return loaded;
}

int history_cache_snapshot(struct history_cache *c, const char *routine, struct history *out,
                           struct err *e)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&c->lock);
    struct slot *sl = find_slot(c, routine, NULL);
    int rc = sl ? history_copy(&sl->h, out, e)
                : err_set(e, ERR_NOT_FOUND, "routine %s has no backup history", routine);
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

/* ---- listing JSON ------------------------------------------------------------------------- */

/* Redacted dto.Storage of a routine (new reference) or NULL. */
static json_t *storage_of(const struct cfg *snapshot, const char *routine)
{
    if (!snapshot)
        return NULL;
    const struct cfg_routine *rt = cfg_map_get(&snapshot->routines, routine);
    if (!rt || !rt->storage)
        return NULL;
    const struct cfg_storage *st = cfg_map_get(&snapshot->storage, rt->storage);
    return st ? cfg_encode(&cfg_type_storage, st, true) : NULL;
}

static bool in_range(const struct history_entry *en, enum history_kind kind, int64_t from_ms,
                     int64_t to_ms)
{
    int64_t t = en->meta.created_ms;
    return en->kind == kind && !(from_ms >= 0 && t < from_ms) && !(to_ms >= 0 && t > to_ms);
}

/* Under the read lock (or with no slot). */
static json_t *list_array(const struct slot *sl, enum history_kind kind, int64_t from_ms,
                          int64_t to_ms, json_t *storage)
{
    json_t *arr = json_array();
    if (!arr || !sl)
        return arr;
    for (size_t i = 0; i < sl->h.n; i++) {
        const struct history_entry *en = &sl->h.v[i];
        if (!in_range(en, kind, from_ms, to_ms))
            continue;
        json_t *o = meta_details_json(&en->meta, en->key, storage);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static int cmp_str_q(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The routines of an all-routines listing, sorted, with their storage JSON; under the read
 * lock. Names that are not valid UTF-8 cannot be JSON keys and are left out. */
struct listed {
    const char **names;
    json_t **storages;
    size_t n;
};

static void listed_free(struct listed *l)
{
    for (size_t i = 0; l->storages && i < l->n; i++)
        json_decref(l->storages[i]);
    free(l->storages);
    free(l->names);
    memset(l, 0, sizeof *l);
}

static int listed_collect(struct history_cache *c, const struct cfg *snapshot, struct listed *l)
{
    memset(l, 0, sizeof *l);
    size_t n = snapshot ? snapshot->routines.n : c->n;
    l->names = calloc(n ? n : 1, sizeof *l->names);
    l->storages = calloc(n ? n : 1, sizeof *l->storages);
    if (!l->names || !l->storages) {
        listed_free(l);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = snapshot ? snapshot->routines.names[i] : c->slots[i]->name;
        json_t *k = json_string(name);
        if (!k)
            continue;
        json_decref(k);
        l->names[l->n++] = name;
    }
    qsort(l->names, l->n, sizeof *l->names, cmp_str_q);
    for (size_t i = 0; i < l->n; i++)
        l->storages[i] = storage_of(snapshot, l->names[i]);
    return 0;
}

json_t *history_list_json(struct history_cache *c, const struct cfg *snapshot, const char *routine,
                          int kind, int64_t from_ms, int64_t to_ms)
{
    enum history_kind k = kind_of_int(kind);
    if (routine) {
        json_t *storage = storage_of(snapshot, routine);
        pthread_rwlock_rdlock(&c->lock);
        json_t *arr = list_array(find_slot(c, routine, NULL), k, from_ms, to_ms, storage);
        pthread_rwlock_unlock(&c->lock);
        json_decref(storage);
        return arr;
    }
    /* All routines: the configured ones, or the cached ones without a configuration. */
    json_t *res = json_object();
    struct listed l = {0};
    pthread_rwlock_rdlock(&c->lock);
    int rc = res ? listed_collect(c, snapshot, &l) : -1;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        json_t *arr = list_array(find_slot(c, l.names[i], NULL), k, from_ms, to_ms, l.storages[i]);
        rc = arr ? json_object_set_new(res, l.names[i], arr) : -1;
    }
    pthread_rwlock_unlock(&c->lock);
    listed_free(&l);
    if (rc) {
        json_decref(res);
        return NULL;
    }
    return res;
}

/* ---- listing text ------------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

#define SB_LIT(b, lit) sb_put((b), (lit), sizeof(lit) - 1)

/* Under the read lock (or with no slot). `storage` is compact JSON text or NULL. */
static void text_array(struct sbuf *b, const struct slot *sl, enum history_kind kind,
                       int64_t from_ms, int64_t to_ms, const char *storage)
{
    size_t slen = storage ? strlen(storage) : 0;
    bool first = true;
    SB_LIT(b, "[");
    for (size_t i = 0; sl && i < sl->h.n && !b->oom; i++) {
        const struct history_entry *en = &sl->h.v[i];
        if (!in_range(en, kind, from_ms, to_ms))
            continue;
        if (!first)
            SB_LIT(b, ",");
        first = false;
        sb_put(b, en->details, en->details_len);
        if (storage) {
            SB_LIT(b, ",\"storage\":");
            sb_put(b, storage, slen);
        }
        SB_LIT(b, "}");
    }
    SB_LIT(b, "]");
}

static char *dump_compact(const json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

int history_list_text(struct history_cache *c, const struct cfg *snapshot, const char *routine,
                      int kind, int64_t from_ms, int64_t to_ms, char **out, size_t *len,
                      struct err *e)
{
    enum history_kind k = kind_of_int(kind);
    struct sbuf b = {0};
    *out = NULL;
    if (routine) {
        json_t *st = storage_of(snapshot, routine);
        char *storage = dump_compact(st);
        json_decref(st);
        if (st && !storage)
            return err_set(e, ERR_NOMEM, "out of memory");
        pthread_rwlock_rdlock(&c->lock);
        text_array(&b, find_slot(c, routine, NULL), k, from_ms, to_ms, storage);
        pthread_rwlock_unlock(&c->lock);
        free(storage);
    } else {
        struct listed l;
        pthread_rwlock_rdlock(&c->lock);
        if (listed_collect(c, snapshot, &l)) {
            b.oom = true;
        } else {
            SB_LIT(&b, "{");
            for (size_t i = 0; i < l.n && !b.oom; i++) {
                json_t *name = json_string(l.names[i]);
                char *qname = dump_compact(name);
                char *storage = dump_compact(l.storages[i]);
                json_decref(name);
                if (!qname || (l.storages[i] && !storage)) {
                    b.oom = true;
                } else {
                    if (i)
                        SB_LIT(&b, ",");
                    sb_put(&b, qname, strlen(qname));
                    SB_LIT(&b, ":");
                    text_array(&b, find_slot(c, l.names[i], NULL), k, from_ms, to_ms, storage);
                }
                free(qname);
                free(storage);
            }
            SB_LIT(&b, "}");
            listed_free(&l);
        }
        pthread_rwlock_unlock(&c->lock);
    }
    if (b.oom) {
        free(b.p);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    *out = b.p;
    if (len)
        *len = b.n;
    return 0;
}

int history_cache_apply_retention(struct history_cache *c, const char *routine, struct stor *s,
                                  int64_t full_keep, int64_t incr_keep, struct err *e)
{
    if (full_keep < 0 && incr_keep < 0)
        return 0;
    struct history h;
    int rc = history_cache_snapshot(c, routine, &h, e);
    if (rc)
        return rc;
    struct history_victims v;
    rc = history_retention_plan(&h, full_keep, incr_keep, &v, e);
    history_free(&h);
    if (rc == 0 && v.n) {
        LOG_I(MOD, "routine %s: retention deletes %zu backup folder(s)", routine, v.n);
        rc = history_retention_apply(c, routine, s, &v, e);
    }
    history_victims_free(&v);
    return rc;
}
