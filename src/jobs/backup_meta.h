/*
 * backup_meta.h - the per-namespace `metadata.yaml` of a backup (abs-reference §4.1), the
 * names of backup folders (`<ms>[_<human UTC time>]`, §4) and the BackupDetails JSON of the
 * listing API (§3.5).
 *
 * metadata.yaml is what makes a folder a backup: it is written last, and a namespace folder
 * without it is not listed. The writer emits exactly ABS's keys and order; the reader accepts
 * what Go's yaml.v3 writes (RFC 3339 times with optional fraction and zone offset).
 */
#ifndef ABS_JOBS_BACKUP_META_H
#define ABS_JOBS_BACKUP_META_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Go's zero time, written as `from` of full backups. */
#define META_ZERO_TIME_MS INT64_MIN

struct backup_meta {
    int64_t created_ms;  /* backup start = folder timestamp */
    int64_t finished_ms;
    int64_t from_ms;     /* incremental lower bound; META_ZERO_TIME_MS for full backups */
    char namespace_[256];
    uint64_t record_count;
    uint64_t byte_count;
    uint64_t file_count;
    uint64_t secondary_index_count;
    uint64_t udf_count;
    char compression[8]; /* NONE | ZSTD */
    char encryption[8];  /* NONE | AES128 | AES256 */
};

/* Renders metadata.yaml (heap string, caller frees). */
int meta_render(const struct backup_meta *m, char **out, struct err *e);
/* Parses metadata.yaml; `origin` names the object in messages. */
int meta_parse(const char *text, size_t len, const char *origin, struct backup_meta *out, struct err *e);

/* RFC 3339 in UTC as Go's time.Time marshals it: trailing zero fractions dropped. */
void meta_format_time(int64_t ms, char *buf, size_t cap);
/* Parses RFC 3339 (fraction and offset optional; Go's zero time gives META_ZERO_TIME_MS). */
int meta_parse_time(const char *s, int64_t *ms_out);

/*
 * Backup folder name for a run started at `ms`: "<ms>" or, with a service timestamp-format
 * (ISO | US | EU, case-insensitive, NULL for none), "<ms>_<UTC time in that layout>".
 */
int meta_folder_name(int64_t ms, const char *timestamp_format, char *buf, size_t cap, struct err *e);
/* Extracts the 13-digit timestamp of a folder name ("1704110400000_2024-..." -> ms). */
int meta_folder_timestamp(const char *folder, int64_t *ms_out);

/* BackupDetails JSON; `key` is the namespace folder, `storage` (borrowed, may be NULL) the
 * redacted dto.Storage. */
json_t *meta_details_json(const struct backup_meta *m, const char *key, json_t *storage);

#endif
