/*
 * metrics.h - a small, thread-safe registry of Prometheus metrics.
 *
 * The registry owns metric *families* (one name, one help text, one type, a fixed list of
 * label names). A family holds *series*, one per distinct tuple of label values, created on
 * first use. Three types exist: counters (only go up), gauges (set/add freely) and histograms
 * (cumulative buckets + sum + count). The whole registry is rendered in the Prometheus text
 * exposition format 0.0.4 for GET /metrics.
 *
 * Label values are passed as an array with exactly one string per label name of the family,
 * in the order given at registration, e.g.
 *     metrics_inc(f, (const char *[]){"GET", "/health", "200"});
 * Families with no labels take NULL.
 *
 * Ownership: the registry owns every family and series; a family pointer stays valid until
 * metrics_free(). All operations on a NULL family are no-ops, so callers may keep working
 * when metrics are disabled. Every function may be called from any thread (one mutex guards
 * the registry; operations are short).
 *
 * Memory is bounded: a family accepts at most METRICS_MAX_SERIES series; further new label
 * combinations are dropped (and counted in the family, see metrics_dropped()).
 */
#ifndef ABS_METRICS_H
#define ABS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_MAX_LABELS 8
#define METRICS_MAX_BUCKETS 64
#define METRICS_MAX_SERIES 10000

enum metrics_type { METRICS_COUNTER = 0, METRICS_GAUGE, METRICS_HISTOGRAM };

struct metrics;
struct metrics_family;

/* Prometheus client default buckets (seconds): .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10. */
extern const double metrics_default_buckets[];
extern const size_t metrics_default_buckets_len;

/* NULL only when out of memory. */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/*
 * Registers a family, or returns the existing one when a family of that name with the same
 * type and label names exists (so modules may register lazily). `labels` is a NULL-terminated
 * list (NULL = no labels). For histograms `buckets` are strictly increasing finite upper
 * bounds (+Inf is implicit); NULL selects metrics_default_buckets. Names must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__",
 * and not "le" for histograms). A name clash with a different shape is ERR_CONFLICT.
 * A family without labels starts with its single series at zero (as Prometheus clients do).
 */
int metrics_register(struct metrics *m, enum metrics_type type, const char *name,
                     const char *help, const char *const *labels, const double *buckets,
                     size_t nbuckets, struct metrics_family **out, struct err *e);

/* Shorthands of metrics_register(); NULL on failure (or when m is NULL). */
struct metrics_family *metrics_counter(struct metrics *m, const char *name, const char *help,
                                       const char *const *labels);
struct metrics_family *metrics_gauge(struct metrics *m, const char *name, const char *help,
                                     const char *const *labels);
struct metrics_family *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                         const char *const *labels, const double *buckets,
                                         size_t nbuckets);

/* Counter += 1. */
void metrics_inc(struct metrics_family *f, const char *const *values);
/* Counter += v (v < 0 ignored for counters) or gauge += v. */
void metrics_add(struct metrics_family *f, const char *const *values, double v);
/* Gauge = v. */
void metrics_set(struct metrics_family *f, const char *const *values, double v);
/* Histogram observation. */
void metrics_observe(struct metrics_family *f, const char *const *values, double v);
/* Drops one series (e.g. a deleted routine); absent series are ignored. */
void metrics_remove(struct metrics_family *f, const char *const *values);

/*
 * Reads a counter/gauge value (histograms: the observation count). ERR_NOT_FOUND when the
 * series does not exist.
 */
int metrics_get(struct metrics_family *f, const char *const *values, double *out);
/* New series refused because of METRICS_MAX_SERIES. */
uint64_t metrics_dropped(struct metrics_family *f);

/*
 * Renders every family with at least one series in registration order (series in creation
 * order) as Prometheus text 0.0.4. *out is a NUL-terminated heap string the caller frees.
 */
int metrics_render(struct metrics *m, char **out, size_t *len, struct err *e);

#endif
