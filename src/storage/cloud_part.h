/*
 * cloud_part.h - the part buffer the cloud writers share (S3 multipart, Azure blocks, GCS
 * resumable chunks): bytes accumulate into a buffer that grows up to one part, and a full part
 * is handed to the backend's flush before more bytes are taken, so a writer holds at most one
 * part in memory.
 */
#ifndef ABS_STORAGE_CLOUD_PART_H
#define ABS_STORAGE_CLOUD_PART_H

#include <stddef.h>

#include "util/err.h"

/* Sends (part of) the full buffer and shrinks *len accordingly (a backend that cannot make
 * progress must fail rather than loop). */
typedef int (*cloud_part_flush_fn)(void *ctx, struct err *e);

/* Appends `n` bytes to buf[0..*len) (capacity *cap, grown up to `part`), calling flush(ctx)
 * whenever the buffer holds a full part and more bytes are waiting. */
int cloud_part_append(unsigned char **buf, size_t *len, size_t *cap, size_t part,
                      const void *data, size_t n, cloud_part_flush_fn flush, void *ctx,
                      struct err *e);

#endif
