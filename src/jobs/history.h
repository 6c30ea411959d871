/*
 * history.h - the backup history of routines (abs-reference §4.2): which backups a routine has
 * in its storage, read from their metadata.yaml; a service-wide cache of it for the scheduler
 * (last successful backups), the incremental lower bound and the listing API (§1.2, §3.5); and
 * retention (§4.3).
 *
 * One history entry is one namespace backup: a `<routine>/<backup|incremental>/<TS>/data/<ns>/`
 * folder holding a metadata.yaml. All namespaces of one run share the timestamp folder; the
 * listing API shows one BackupDetails per namespace, retention deletes whole timestamp folders.
 *
 * Loading (history_load) walks the storage with delimiter listings: the timestamp folders of
 * `<routine>/backup/` and `<routine>/incremental/` (names that are not `<13 digits>[_...]` are
 * ignored), then the namespace folders under each `<TS>/data/`, then reads each
 * `<ns>/metadata.yaml`. A namespace folder without metadata.yaml is not a backup (a run in
 * progress or a leftover; counted in `incomplete`); a metadata.yaml that does not parse is
 * logged and skipped (counted in `corrupt`). Entries come sorted by time.
 *
 * The cache (struct history_cache) holds one history per routine behind a read-write lock:
 * listings run concurrently; refresh does its storage I/O outside the lock and swaps the result
 * in, replaying whatever history_cache_add / history_cache_forget did meanwhile, so a job that
 * reports its backup while a refresh runs is never lost and a deleted folder never comes back.
 * Keep the cache current with history_cache_refresh at start-up and on config apply (and when
 * in doubt after a job), and history_cache_add when a job has just written a backup (no storage
 * access). Listing 10,000 cached backups as JSON text (history_list_text) takes a few
 * milliseconds (about 1 ms); as a jansson tree (history_list_json) plus json_dumps, 60-120 ms,
 * so the API should send the text for the list routes.
 *
 * Errors follow util/err.h; nothing here logs secrets (keys and storage names only).
 */
#ifndef ABS_JOBS_HISTORY_H
#define ABS_JOBS_HISTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg_model.h"
#include "jobs/backup_meta.h"
#include "storage/storage.h"
#include "util/err.h"

/* Same values as enum backup_kind (jobs/backup_job.h) and enum sched_backup_type
 * (sched/scheduler.h): the cache functions take the kind as a plain int so that any of the
 * three enums can be passed without conversion warnings; other values count as incremental. */
enum history_kind { HISTORY_FULL = 0, HISTORY_INCREMENTAL = 1 };
#define HISTORY_KIND_COUNT 2

/* Largest metadata.yaml read (larger ones count as corrupt). */
#define HISTORY_META_MAX (64 * 1024)

struct history_entry {
    enum history_kind kind;
    int64_t timestamp_ms;  /* from the timestamp folder name (= metadata created) */
    char *folder;          /* "<routine>/backup/<TS-folder>/" (trailing '/') */
    char *key;             /* "<routine>/backup/<TS-folder>/data/<ns>" (BackupDetails.key) */
    struct backup_meta meta;
    /* BackupDetails without `storage`, rendered once (compact JSON without the closing '}'),
     * so that big listings are a matter of copying bytes. */
    char *details;
    size_t details_len;
};

struct history {
    struct history_entry *v; /* sorted by timestamp, then kind (full first), folder, key */
    size_t n, cap;
    size_t incomplete;       /* namespace folders without metadata.yaml (last load) */
    size_t corrupt;          /* metadata.yaml files that could not be read or parsed (last load) */
};

/* "backup" / "incremental": the folder under the routine. */
const char *history_kind_folder(enum history_kind kind);

/* ---- one routine, straight from storage ------------------------------------------------- */

/* Loads the history of `routine` from `s`; `out` is initialised here (free it with
 * history_free even on failure). Fails (ERR_IO, ERR_INVALID for a routine name that cannot be
 * a key) only when a listing fails; unreadable or corrupt metadata files are skipped. */
int history_load(struct stor *s, const char *routine, struct history *out, struct err *e);
void history_free(struct history *h); /* frees the entries; leaves h empty and reusable */

/* Deep copy (dst initialised here). */
int history_copy(const struct history *src, struct history *dst, struct err *e);

/* Adds an entry (deep copy of folder, key and meta) at its sorted place; an entry with the same
 * key is replaced. */
int history_insert(struct history *h, enum history_kind kind, int64_t timestamp_ms,
                   const char *folder, const char *key, const struct backup_meta *meta,
                   struct err *e);
/* Removes every entry of that timestamp folder; returns how many. */
size_t history_remove_folder(struct history *h, const char *folder);

/* Metadata `created` of the newest entry of that kind, -1 when none. */
int64_t history_last_created(const struct history *h, enum history_kind kind);

/* ---- leftovers of interrupted runs ---------------------------------------------------------- */

/*
 * Deletes, through the storage interface, what a crash left of unfinished backups of `routine`
 * (each deletion logged): a timestamp folder in which no namespace has a metadata.yaml goes
 * whole (configuration files and temporary files included); in a folder where some namespaces
 * are complete, only the namespace folders without metadata.yaml go. On local storage, timestamp
 * folders holding nothing but temporary files (invisible to listings) go too. Only safe while
 * no backup of the routine runs (start-up). *deleted counts the folders removed. A listing
 * failure stops it (nothing is deleted on a doubt); a failed delete is logged and the first
 * error returned after the others were tried.
 */
int history_clean_partial(struct stor *s, const char *routine, size_t *deleted, struct err *e);

/* ---- retention ---------------------------------------------------------------------------- */

struct history_folder {
    enum history_kind kind;
    int64_t timestamp_ms;
    char *folder;          /* "<routine>/<backup|incremental>/<TS-folder>/" */
};

struct history_victims {
    struct history_folder *v; /* oldest first */
    size_t n, cap;
};
void history_victims_free(struct history_victims *v); /* leaves it empty and reusable */

/*
 * Which timestamp folders retention deletes after a successful full backup (abs-reference
 * §4.3), from the history `h` that already includes that backup. Fulls are counted newest
 * first; F0 is the newest full (the backup just written, never deleted).
 *   - full_keep >= 1: the fulls after the newest `full_keep` are deleted; < 0 (retention or
 *     its `full` missing): no full is deleted; 0 is taken as 1.
 *   - incr_keep >= 0: an incremental belongs to the newest full created before it (same
 *     timestamp counts as after the full); incrementals are kept only when they belong to one
 *     of the newest max(incr_keep, 1) fulls (capped at full_keep when that is set, since an
 *     incremental whose full is deleted cannot be restored); everything older is deleted,
 *     incrementals older than every full included. 0 and 1 both mean "delete every
 *     incremental older than the newest full". < 0 (missing): no incremental is deleted.
 *   - no full in the history: nothing is deleted.
 * `out` is initialised here (free it with history_victims_free even on failure).
 */
int history_retention_plan(const struct history *h, int64_t full_keep, int64_t incr_keep,
                           struct history_victims *out, struct err *e);

struct history_cache;

/*
 * Deletes the victims' timestamp folders (stor_delete_prefix), each forgotten first by the
 * cache (`cache` may be NULL) so a listing never shows a half-deleted backup. Goes on after a
 * failure and returns the first error. The caller makes sure no restore reads the routine.
 */
int history_retention_apply(struct history_cache *cache, const char *routine, struct stor *s,
                            const struct history_victims *victims, struct err *e);

/* ---- the service-wide cache --------------------------------------------------------------- */

int history_cache_new(struct history_cache **out, struct err *e);
void history_cache_free(struct history_cache *c); /* NULL ok; no call may be running */

/* Reloads the routine from storage (start-up, config apply, after a job). On failure the
 * previous history of the routine stays. A routine unknown to the cache is added (empty until
 * the load completes; dropped again when that first load fails and nothing was added
 * meanwhile). Costs one listing per timestamp folder plus one read per namespace backup
 * (about 1 s for 10,000 backups on local storage): after a job, history_cache_add is enough. */
int history_cache_refresh(struct history_cache *c, const char *routine, struct stor *s,
                          struct err *e);

/*
 * Records a namespace backup a job has just written, without touching storage: `folder` is the
 * run's timestamp folder "<routine>/<backup|incremental>/<TS-folder>/" (its timestamp comes
 * from the name, or from meta->created_ms when the name has none), `ns_dir` the namespace folder
 * name under data/ (NULL = meta->namespace_). Adding the same key again replaces the entry.
 */
int history_cache_add(struct history_cache *c, const char *routine, int kind,
                      const char *folder, const char *ns_dir, const struct backup_meta *meta,
                      struct err *e);
/* Drops every entry of a timestamp folder (after deleting it). */
void history_cache_forget(struct history_cache *c, const char *routine, const char *folder);
/* Drops a routine (removed from the configuration). */
void history_cache_remove(struct history_cache *c, const char *routine);
/* Drops every routine not in names[0..n) (config apply). */
void history_cache_retain(struct history_cache *c, const char *const *names, size_t n);

/* Metadata `created` (epoch ms) of the newest backup of that kind, -1 when none or the routine
 * is unknown: the scheduler's last success and the incremental lower bound. */
int64_t history_cache_last_success(struct history_cache *c, const char *routine, int kind);
/* Whether a refresh of the routine ever succeeded. Until then last_success's -1 means "not
 * known", not "no backup" (the scheduler must not start a catch-up full on it). */
bool history_cache_loaded(struct history_cache *c, const char *routine);
/* Copy of a routine's history (restore by timestamp, retention); ERR_NOT_FOUND when the cache
 * does not know the routine. `out` is initialised here. */
int history_cache_snapshot(struct history_cache *c, const char *routine, struct history *out,
                           struct err *e);

/*
 * Listing JSON (new reference; NULL only when out of memory) of the backups of one kind whose
 * metadata `created` lies in [from_ms, to_ms] (`from` inclusive, `to` "not after"; -1 =
 * unbounded), each a BackupDetails (§3.5) sorted by time, with `storage` = the routine's
 * dto.Storage from `snapshot` (secrets redacted; left out when `snapshot` is NULL or does not
 * name the routine's storage).
 *   - routine given: an array (empty when the cache does not know the routine: the API checks
 *     the configuration for 404).
 *   - routine NULL: an object routine name -> array, for every routine of `snapshot` (empty
 *     arrays included), or of the cache when `snapshot` is NULL; names in byte order (names
 *     that are not valid UTF-8 cannot be JSON keys and are left out).
 */
json_t *history_list_json(struct history_cache *c, const struct cfg *snapshot, const char *routine,
                          int kind, int64_t from_ms, int64_t to_ms);

/*
 * The same listing as JSON text, byte for byte what json_dumps(history_list_json(...),
 * JSON_COMPACT) gives, built from the pre-rendered entries: use it for the API replies (with
 * api_reply_owned) when the listing can be large. *out is a NUL-terminated heap string (free()),
 * *len its length (len may be NULL). ERR_NOMEM is the only failure.
 */
int history_list_text(struct history_cache *c, const struct cfg *snapshot, const char *routine,
                      int kind, int64_t from_ms, int64_t to_ms, char **out, size_t *len,
                      struct err *e);

/* Convenience after a successful full: snapshot + plan + apply for that routine (-1 = that
 * retention value missing). */
int history_cache_apply_retention(struct history_cache *c, const char *routine, struct stor *s,
                                  int64_t full_keep, int64_t incr_keep, struct err *e);

#endif
