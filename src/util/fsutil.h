/*
 * fsutil.h - small file helpers: whole-file reads and atomic replacement of user-visible files
 * (temp file in the same directory + fsync + rename + directory fsync), so that a reader or a
 * crash never sees a half-written file.
 */
#ifndef ABS_UTIL_FSUTIL_H
#define ABS_UTIL_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

/* Reads a whole file (at most max_bytes) into a NUL-terminated heap buffer. */
int fs_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, struct err *e);

/*
 * Atomically replaces `path` with `data`. The new file keeps the mode of the file it replaces,
 * or gets `new_mode` when there was none.
 */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t new_mode, struct err *e);

/* Writes all `len` bytes (retrying short writes and EINTR); -1 with errno set on failure. */
int fs_write_all(int fd, const void *data, size_t len);

/* Creates a directory and its parents with `mode` (existing directories are fine). */
int fs_mkdirs(const char *path, mode_t mode, struct err *e);

#endif
