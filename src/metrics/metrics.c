/*
 * metrics.c - the metrics registry and its Prometheus text exposition (format 0.0.4).
 *
 * Layout: the registry is a list of families in registration order; each family keeps its
 * series twice: in a list in creation order (for stable output) and in a small fixed hash
 * index keyed by the label values (for O(1) updates on the request path). One mutex guards
 * everything; every operation holds it for a hash lookup and a few additions.
 *
 * Histogram series store per-bucket (non-cumulative) counts; rendering accumulates them, so
 * the emitted `_bucket{le=...}` lines are cumulative as the format requires.
 */
#include "metrics/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_INDEX_SIZE 256 /* power of two */

const double metrics_default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,    2.5,   5,    10};
const size_t metrics_default_buckets_len =
    sizeof metrics_default_buckets / sizeof metrics_default_buckets[0];

struct metrics_series {
    struct metrics_series *next;       /* creation order */
    struct metrics_series *chain;      /* hash index chain */
    uint64_t hash;
    char **values;                     /* nlabels strings */
    double value;                      /* counter / gauge */
    double sum;                        /* histogram */
    uint64_t count;                    /* histogram */
    uint64_t *bucket_counts;           /* histogram: nbuckets, non-cumulative */
};

struct metrics_family {
    struct metrics *owner;
    struct metrics_family *next;
    enum metrics_type type;
    char *name;
    char *help;
    size_t nlabels;
    char **labels;
    size_t nbuckets;
    double *buckets;
    struct metrics_series *head, *tail;
    size_t nseries;
    uint64_t dropped;
    struct metrics_series *index[METRICS_INDEX_SIZE];
};

struct metrics {
    pthread_mutex_t lock;
    struct metrics_family *head, *tail;
};

/* ---- small growable string buffer (rendering only) ---------------------------------- */

struct mbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void mbuf_reserve(struct mbuf *b, size_t extra)
{
    if (b->oom || b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return;
    }
    b->p = p;
    b->cap = cap;
    b->p[b->len] = '\0';
}

static void mbuf_put(struct mbuf *b, const char *s, size_t n)
{
    mbuf_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void mbuf_puts(struct mbuf *b, const char *s)
{
    mbuf_put(b, s, strlen(s));
}

/* ---- names, hashing, lookup --------------------------------------------------------- */

static bool metrics_valid_name(const char *s, bool allow_colon)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (allow_colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static uint64_t metrics_hash(const struct metrics_family *f, const char *const *values)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < f->nlabels; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        h ^= 0xff; /* separator: ("a","bc") differs from ("ab","c") */
        h *= 1099511628211ULL;
    }
    return h;
}

static bool metrics_values_equal(const struct metrics_family *f,
                                 const struct metrics_series *s, const char *const *values)
{
    for (size_t i = 0; i < f->nlabels; i++)
        if (strcmp(s->values[i], values[i]) != 0)
            return false;
    return true;
}

static bool metrics_values_ok(const struct metrics_family *f, const char *const *values)
{
    if (f->nlabels == 0)
        return true;
    if (!values)
        return false;
    for (size_t i = 0; i < f->nlabels; i++)
        if (!values[i])
            return false;
    return true;
}

static struct metrics_series *metrics_find(struct metrics_family *f, const char *const *values,
                                           uint64_t h)
{
    for (struct metrics_series *s = f->index[h & (METRICS_INDEX_SIZE - 1)]; s; s = s->chain)
        if (s->hash == h && metrics_values_equal(f, s, values))
            return s;
    return NULL;
}

static void metrics_series_free(struct metrics_family *f, struct metrics_series *s)
{
    if (!s)
        return;
    if (s->values)
        for (size_t i = 0; i < f->nlabels; i++)
            free(s->values[i]);
    free(s->values);
    free(s->bucket_counts);
    free(s);
}

static struct metrics_series *metrics_series_new(struct metrics_family *f,
                                                 const char *const *values, uint64_t h)
{
    struct metrics_series *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hash = h;
    s->values = calloc(f->nlabels ? f->nlabels : 1, sizeof *s->values);
    if (f->type == METRICS_HISTOGRAM)
        s->bucket_counts = calloc(f->nbuckets ? f->nbuckets : 1, sizeof *s->bucket_counts);
    bool ok = s->values && (f->type != METRICS_HISTOGRAM || s->bucket_counts);
    for (size_t i = 0; ok && i < f->nlabels; i++)
        ok = (s->values[i] = strdup(values[i])) != NULL;
    if (!ok) {
        metrics_series_free(f, s);
        return NULL;
    }
    return s;
}

/* Finds or creates the series (lock held). NULL when out of memory or over the cap. */
static struct metrics_series *metrics_series_get(struct metrics_family *f,
                                                 const char *const *values)
{
    uint64_t h = metrics_hash(f, values);
    struct metrics_series *s = metrics_find(f, values, h);
    if (s)
        return s;
    if (f->nseries >= METRICS_MAX_SERIES) {
        f->dropped++;
        return NULL;
    }
    s = metrics_series_new(f, values, h);
    if (!s) {
        f->dropped++;
        return NULL;
    }
    size_t slot = h & (METRICS_INDEX_SIZE - 1);
    s->chain = f->index[slot];
    f->index[slot] = s;
    if (f->tail)
        f->tail->next = s;
    else
        f->head = s;
    f->tail = s;
    f->nseries++;
    return s;
}

/* ---- registry ----------------------------------------------------------------------- */

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (m && pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        m = NULL;
    }
    return m;
}

static void metrics_family_free(struct metrics_family *f)
{
    struct metrics_series *s = f->head;
    while (s) {
        struct metrics_series *next = s->next;
        metrics_series_free(f, s);
        s = next;
    }
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->labels);
    free(f->buckets);
    free(f->name);
    free(f->help);
    free(f);
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    struct metrics_family *f = m->head;
    while (f) {
        struct metrics_family *next = f->next;
        metrics_family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static size_t metrics_count_labels(const char *const *labels)
{
    size_t n = 0;
    while (labels && labels[n])
        n++;
    return n;
}

static int metrics_check_shape(enum metrics_type type, const char *name,
                               const char *const *labels, const double *buckets,
                               size_t nbuckets, struct err *e)
{
    if (!metrics_valid_name(name, true))
        return err_set(e, ERR_INVALID, "metrics: invalid metric name '%s'", name ? name : "");
    size_t n = metrics_count_labels(labels);
    if (n > METRICS_MAX_LABELS)
        return err_set(e, ERR_INVALID, "metrics: %s: too many labels", name);
    for (size_t i = 0; i < n; i++) {
        if (!metrics_valid_name(labels[i], false) || strncmp(labels[i], "__", 2) == 0 ||
            (type == METRICS_HISTOGRAM && strcmp(labels[i], "le") == 0))
            return err_set(e, ERR_INVALID, "metrics: %s: invalid label name '%s'", name,
                           labels[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0)
                return err_set(e, ERR_INVALID, "metrics: %s: duplicate label '%s'", name,
                               labels[i]);
    }
    if (type != METRICS_HISTOGRAM || !buckets)
        return 0;
    if (nbuckets == 0 || nbuckets > METRICS_MAX_BUCKETS)
        return err_set(e, ERR_INVALID, "metrics: %s: bad bucket count", name);
    for (size_t i = 0; i < nbuckets; i++)
        if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
            return err_set(e, ERR_INVALID, "metrics: %s: buckets must increase", name);
    return 0;
}

static bool metrics_same_shape(const struct metrics_family *f, enum metrics_type type,
                               const char *const *labels)
{
    if (f->type != type || f->nlabels != metrics_count_labels(labels))
        return false;
    for (size_t i = 0; i < f->nlabels; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return false;
    return true;
}

static struct metrics_family *metrics_family_new(enum metrics_type type, const char *name,
                                                 const char *help, const char *const *labels,
                                                 const double *buckets, size_t nbuckets)
{
    struct metrics_family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->nlabels = metrics_count_labels(labels);
    f->labels = calloc(f->nlabels ? f->nlabels : 1, sizeof *f->labels);
    bool ok = f->name && f->help && f->labels;
    for (size_t i = 0; ok && i < f->nlabels; i++)
        ok = (f->labels[i] = strdup(labels[i])) != NULL;
    if (ok && type == METRICS_HISTOGRAM) {
        if (!buckets) {
            buckets = metrics_default_buckets;
            nbuckets = metrics_default_buckets_len;
        }
        f->nbuckets = nbuckets;
        f->buckets = malloc(nbuckets * sizeof *f->buckets);
        ok = f->buckets != NULL;
        if (ok)
            memcpy(f->buckets, buckets, nbuckets * sizeof *f->buckets);
    }
    if (!ok) {
        metrics_family_free(f);
        return NULL;
    }
    return f;
}

static struct metrics_family *metrics_lookup_family(struct metrics *m, const char *name)
{
    for (struct metrics_family *f = m->head; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static void metrics_append_family(struct metrics *m, struct metrics_family *f)
{
    f->owner = m;
    if (m->tail)
        m->tail->next = f;
    else
        m->head = f;
    m->tail = f;
}

int metrics_register(struct metrics *m, enum metrics_type type, const char *name,
                     const char *help, const char *const *labels, const double *buckets,
                     size_t nbuckets, struct metrics_family **out, struct err *e)
{
    int rc = metrics_check_shape(type, name, labels, buckets, nbuckets, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    struct metrics_family *f = metrics_lookup_family(m, name);
    if (f) {
        bool same = metrics_same_shape(f, type, labels);
        pthread_mutex_unlock(&m->lock);
        if (!same)
            return err_set(e, ERR_CONFLICT, "metrics: %s already registered differently", name);
        *out = f;
        return 0;
    }
    f = metrics_family_new(type, name, help, labels, buckets, nbuckets);
    if (f && f->nlabels == 0 && !metrics_series_get(f, NULL)) {
        metrics_family_free(f);
        f = NULL;
    }
    if (f)
        metrics_append_family(m, f);
    pthread_mutex_unlock(&m->lock);
    if (!f)
        return err_set(e, ERR_NOMEM, "metrics: out of memory");
    *out = f;
    return 0;
}

static struct metrics_family *metrics_register_quiet(struct metrics *m, enum metrics_type type,
                                                     const char *name, const char *help,
                                                     const char *const *labels,
                                                     const double *buckets, size_t nbuckets)
{
    struct metrics_family *f = NULL;
    struct err e;
    if (!m || metrics_register(m, type, name, help, labels, buckets, nbuckets, &f, &e) != 0)
        return NULL;
    return f;
}

struct metrics_family *metrics_counter(struct metrics *m, const char *name, const char *help,
                                       const char *const *labels)
{
    return metrics_register_quiet(m, METRICS_COUNTER, name, help, labels, NULL, 0);
}

struct metrics_family *metrics_gauge(struct metrics *m, const char *name, const char *help,
                                     const char *const *labels)
{
    return metrics_register_quiet(m, METRICS_GAUGE, name, help, labels, NULL, 0);
}

struct metrics_family *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                         const char *const *labels, const double *buckets,
                                         size_t nbuckets)
{
    return metrics_register_quiet(m, METRICS_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

/* ---- updates ------------------------------------------------------------------------ */

enum metrics_op { OP_ADD, OP_SET, OP_OBSERVE };

static void metrics_apply(struct metrics_series *s, const struct metrics_family *f,
                          enum metrics_op op, double v)
{
    switch (op) {
    case OP_ADD:
        s->value += v;
        break;
    case OP_SET:
        s->value = v;
        break;
    case OP_OBSERVE:
        s->sum += v;
        s->count++;
        for (size_t i = 0; i < f->nbuckets; i++) {
            if (v <= f->buckets[i]) {
                s->bucket_counts[i]++;
                break;
            }
        }
        break;
    }
}

static void metrics_update(struct metrics_family *f, const char *const *values,
                           enum metrics_op op, double v)
{
    if (!f || !metrics_values_ok(f, values))
        return;
    pthread_mutex_lock(&f->owner->lock);
    struct metrics_series *s = metrics_series_get(f, values);
    if (s)
        metrics_apply(s, f, op, v);
    pthread_mutex_unlock(&f->owner->lock);
}

void metrics_inc(struct metrics_family *f, const char *const *values)
{
    metrics_add(f, values, 1.0);
}

void metrics_add(struct metrics_family *f, const char *const *values, double v)
{
    if (!f || f->type == METRICS_HISTOGRAM || (f->type == METRICS_COUNTER && !(v >= 0)))
        return;
    metrics_update(f, values, OP_ADD, v);
}

void metrics_set(struct metrics_family *f, const char *const *values, double v)
{
    if (f && f->type == METRICS_GAUGE)
        metrics_update(f, values, OP_SET, v);
}

void metrics_observe(struct metrics_family *f, const char *const *values, double v)
{
    if (f && f->type == METRICS_HISTOGRAM && !isnan(v))
        metrics_update(f, values, OP_OBSERVE, v);
}

static void metrics_unlink(struct metrics_family *f, struct metrics_series *s)
{
    struct metrics_series **pp = &f->index[s->hash & (METRICS_INDEX_SIZE - 1)];
    while (*pp != s)
        pp = &(*pp)->chain;
    *pp = s->chain;
    struct metrics_series *prev = NULL;
    for (struct metrics_series *it = f->head; it != s; it = it->next)
        prev = it;
    if (prev)
        prev->next = s->next;
    else
        f->head = s->next;
    if (f->tail == s)
        f->tail = prev;
    f->nseries--;
}

void metrics_remove(struct metrics_family *f, const char *const *values)
{
    if (!f || f->nlabels == 0 || !metrics_values_ok(f, values))
        return;
    pthread_mutex_lock(&f->owner->lock);
    struct metrics_series *s = metrics_find(f, values, metrics_hash(f, values));
    if (s)
        metrics_unlink(f, s);
    pthread_mutex_unlock(&f->owner->lock);
    metrics_series_free(f, s);
}

int metrics_get(struct metrics_family *f, const char *const *values, double *out)
{
    if (!f || !metrics_values_ok(f, values))
        return ERR_NOT_FOUND;
    pthread_mutex_lock(&f->owner->lock);
    struct metrics_series *s = metrics_find(f, values, metrics_hash(f, values));
    if (s)
        *out = f->type == METRICS_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&f->owner->lock);
    return s ? 0 : ERR_NOT_FOUND;
}

uint64_t metrics_dropped(struct metrics_family *f)
{
    if (!f)
        return 0;
    pthread_mutex_lock(&f->owner->lock);
    uint64_t n = f->dropped;
    pthread_mutex_unlock(&f->owner->lock);
    return n;
}

/* ---- exposition --------------------------------------------------------------------- */

/* Shortest text that reads back as the same double; Prometheus spellings for specials. */
static void metrics_fmt_double(char *buf, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(buf, cap, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, cap, "%.17g", v);
    }
}

/* HELP text: backslash and newline escaped. Label values: also the double quote. */
static void metrics_put_escaped(struct mbuf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            mbuf_puts(b, "\\\\");
        else if (*s == '\n')
            mbuf_puts(b, "\\n");
        else if (quote && *s == '"')
            mbuf_puts(b, "\\\"");
        else
            mbuf_put(b, s, 1);
    }
}

/* `{a="x",b="y"}` with an optional extra `le` label; nothing when there are no labels. */
static void metrics_put_labels(struct mbuf *b, const struct metrics_family *f,
                               const struct metrics_series *s, const char *le)
{
    if (f->nlabels == 0 && !le)
        return;
    mbuf_puts(b, "{");
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i)
            mbuf_puts(b, ",");
        mbuf_puts(b, f->labels[i]);
        mbuf_puts(b, "=\"");
        metrics_put_escaped(b, s->values[i], true);
        mbuf_puts(b, "\"");
    }
    if (le) {
        mbuf_puts(b, f->nlabels ? ",le=\"" : "le=\"");
        mbuf_puts(b, le);
        mbuf_puts(b, "\"");
    }
    mbuf_puts(b, "}");
}

static void metrics_put_sample(struct mbuf *b, const struct metrics_family *f,
                               const struct metrics_series *s, const char *suffix,
                               const char *le, double v)
{
    char num[64];
    metrics_fmt_double(num, sizeof num, v);
    mbuf_puts(b, f->name);
    mbuf_puts(b, suffix);
    metrics_put_labels(b, f, s, le);
    mbuf_puts(b, " ");
    mbuf_puts(b, num);
    mbuf_puts(b, "\n");
}

static void metrics_put_histogram(struct mbuf *b, const struct metrics_family *f,
                                  const struct metrics_series *s)
{
    char le[64];
    uint64_t cumulative = 0;
    for (size_t i = 0; i < f->nbuckets; i++) {
        cumulative += s->bucket_counts[i];
        metrics_fmt_double(le, sizeof le, f->buckets[i]);
        metrics_put_sample(b, f, s, "_bucket", le, (double)cumulative);
    }
    metrics_put_sample(b, f, s, "_bucket", "+Inf", (double)s->count);
    metrics_put_sample(b, f, s, "_sum", NULL, s->sum);
    metrics_put_sample(b, f, s, "_count", NULL, (double)s->count);
}

static const char *metrics_type_name(enum metrics_type t)
{
    switch (t) {
    case METRICS_COUNTER: return "counter";
    case METRICS_GAUGE: return "gauge";
    case METRICS_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

static void metrics_put_family(struct mbuf *b, const struct metrics_family *f)
{
    if (!f->head)
        return;
    mbuf_puts(b, "# HELP ");
    mbuf_puts(b, f->name);
    mbuf_puts(b, " ");
    metrics_put_escaped(b, f->help, false);
    mbuf_puts(b, "\n# TYPE ");
    mbuf_puts(b, f->name);
    mbuf_puts(b, " ");
    mbuf_puts(b, metrics_type_name(f->type));
    mbuf_puts(b, "\n");
    for (const struct metrics_series *s = f->head; s; s = s->next) {
        if (f->type == METRICS_HISTOGRAM)
            metrics_put_histogram(b, f, s);
        else
            metrics_put_sample(b, f, s, "", NULL, s->value);
    }
}

int metrics_render(struct metrics *m, char **out, size_t *len, struct err *e)
{
    struct mbuf b = {0};
    mbuf_reserve(&b, 0);
    pthread_mutex_lock(&m->lock);
    for (const struct metrics_family *f = m->head; f; f = f->next)
        metrics_put_family(&b, f);
    pthread_mutex_unlock(&m->lock);
    if (b.oom) {
        free(b.p);
        return err_set(e, ERR_NOMEM, "metrics: out of memory");
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return 0;
}
