/*
 * stor_gcs.h - knobs of the gcp-storage backend beyond its config block (tests use them: a short
 * retry policy, small read chunks), and its pure helpers exposed for unit tests.
 */
#ifndef ABS_STORAGE_STOR_GCS_H
#define ABS_STORAGE_STOR_GCS_H

#include <stddef.h>
#include <stdint.h>

#include "storage/cloud_http.h"
#include "storage/storage.h"

#define GCS_DEFAULT_ENDPOINT "https://storage.googleapis.com"
#define GCS_CHUNK_QUANTUM (256 * 1024)    /* resumable chunks are multiples of this */
#define GCS_DEFAULT_PART (50 * 1024 * 1024) /* min-part-size when unset (ABS 3.6+) */
#define GCS_READ_CHUNK (8 * 1024 * 1024)  /* bytes per ranged GET of a reader */

struct gcs_open_opts {
    const struct cloud_retry *retry; /* NULL = ABS's storage retry policy */
    size_t read_chunk;               /* bytes per ranged GET; 0 = GCS_READ_CHUNK */
};

/* stor_gcs_open with options (o may be NULL). */
int stor_gcs_open_opts(const struct cfg_gcp_storage *cfg, const struct gcs_open_opts *o,
                       struct stor **out, struct err *e);

/* A part size rounded up to a multiple of GCS_CHUNK_QUANTUM (at least one quantum). */
size_t gcs_chunk_size(size_t part_size);
/* The Range header of a 308 reply ("bytes=0-N") -> bytes persisted (N + 1); a missing header
 * (v NULL) means 0. -1 when malformed. */
int gcs_parse_range(const char *v, size_t len, uint64_t *persisted);
/* RFC 3339 time ("2024-01-01T12:00:00.123Z", offsets too) -> ms since the epoch; -1 if bad. */
int gcs_parse_time(const char *s, int64_t *ms);
/* The API root of an `endpoint` value: trailing '/' and a trailing "/storage/v1" removed (the
 * form Google's client libraries take). Heap; NULL on no memory. */
char *gcs_endpoint_root(const char *endpoint);

#endif
