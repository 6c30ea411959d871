/*
 * strutil.h - small string helpers.
 *
 * str_printf is snprintf for messages and paths where cutting a too-long result is the
 * intended behaviour (bounded buffers for field paths and error texts); it keeps optimized
 * builds' -Wformat-truncation focused on the places where truncation would be a bug.
 */
#ifndef ABS_UTIL_STRUTIL_H
#define ABS_UTIL_STRUTIL_H

#include <stddef.h>

/* Formats into buf (always NUL-terminated when cap > 0); returns the untruncated length. */
int str_printf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
