/*
 * zip.h - minimal in-memory ZIP archive writer (owns the ZIP container format only).
 *
 * Builds a complete archive in memory: each entry is stored with raw deflate (zlib) when
 * that is smaller, otherwise uncompressed ("stored"); CRC-32 from zlib. No ZIP64: an
 * archive is limited to 65535 entries and entries/offsets below 4 GiB (ERR_INVALID past
 * that). Names are flagged UTF-8 (general purpose bit 11); entries get mode 0644 and the
 * DOS time of zip_new().
 *
 *     struct zip *z = zip_new();
 *     zip_add(z, "a.conf", data, len, &e);
 *     zip_finish(z, &buf, &buf_len, &e);   // buf malloc'ed, caller free()s
 *     zip_free(z);
 */
#ifndef ABS_UTIL_ZIP_H
#define ABS_UTIL_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct zip;

/* NULL on allocation failure. */
struct zip *zip_new(void);
/* Appends one file. name: non-empty, no leading '/', < 65536 bytes. data may be NULL when
 * len is 0. ERR_INVALID for a bad name, a finished archive or too much data; ERR_NOMEM. */
int zip_add(struct zip *z, const char *name, const void *data, size_t len, struct err *e);
/* Writes the central directory and hands the whole archive over in *buf (malloc'ed, the
 * caller frees it). The archive is finished afterwards: further zip_add calls fail. */
int zip_finish(struct zip *z, uint8_t **buf, size_t *len, struct err *e);
/* Frees the writer (NULL is fine). */
void zip_free(struct zip *z);

#endif
