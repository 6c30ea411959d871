/*
 * stor_s3.h - the s3-storage backend's extra entry points (the backend itself is reached
 * through storage.h's stor_open): opening with an explicit HTTP retry policy (tests use a
 * short one so a store that is down fails fast), and the pieces worth testing on their own.
 */
#ifndef ABS_STORAGE_STOR_S3_H
#define ABS_STORAGE_STOR_S3_H

#include "storage/cloud_http.h"
#include "storage/storage.h"

#define S3_MIN_PART (5u << 20)         /* S3's smallest non-last part */
#define S3_MAX_PART (5ull << 30)       /* and largest part */
#define S3_DEFAULT_PART (50u << 20)    /* ABS 3.6+ default min-part-size */
#define S3_READ_CHUNK (8u << 20)       /* bytes per ranged GET of a reader */

/* stor_s3_open with `retry` instead of the ABS defaults (NULL = defaults). */
int stor_s3_open_with(const struct cfg_s3_storage *cfg, const struct cloud_retry *retry,
                      struct stor **out, struct err *e);

/* The part size a writer uses for a hint (0 = the storage's): clamped to [5 MiB, 5 GiB]. */
size_t s3_clamp_part(size_t hint);

#endif
