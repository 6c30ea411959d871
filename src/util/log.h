/*
 * log.h - process-wide logger: levels TRACE..ERROR, PLAIN or JSON lines, to stdout and/or a
 * file with size rotation (maxsize MB, maxbackups, maxage days, gzip of rotated files).
 *
 * The logger is the one piece of global state the service has: it is configured once at
 * start-up (and again on config apply) and is safe to call from any thread. Callers must
 * never pass secrets (passwords, keys, tokens) in messages.
 */
#ifndef ABS_UTIL_LOG_H
#define ABS_UTIL_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

enum log_level { LOG_TRACE = 0, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_PLAIN = 0, LOG_FORMAT_JSON };

struct log_options {
    enum log_level level;
    enum log_format format;
    bool to_stdout;
    const char *file;          /* NULL: no file writer */
    int64_t max_size_mb;       /* 0: no size rotation */
    int64_t max_age_days;      /* 0: keep rotated files forever */
    int64_t max_backups;       /* 0: keep all rotated files */
    bool compress;             /* gzip rotated files */
};

/* Parses "TRACE","DEBUG","INFO","WARN","WARNING","ERROR" (case-insensitive). */
int log_level_parse(const char *s, enum log_level *out);
/* Parses "PLAIN" or "JSON" (case-insensitive). */
int log_format_parse(const char *s, enum log_format *out);
/* "TRACE", "DEBUG", "INFO", "WARN", "ERROR" (upper case, as printed in log lines). */
const char *log_level_name(enum log_level level);

/* (Re)configures the logger; on failure the previous configuration stays in force. */
int log_configure(const struct log_options *opts, struct err *e);
/* Flushes and closes the file writer; logging afterwards goes to stderr only. */
void log_shutdown(void);

bool log_enabled(enum log_level level);
/* Writes one line. Control characters in module and message (newlines included) become
 * spaces, so a message can never forge a second line; a NULL or empty module is omitted.
 * errno is preserved. */
void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Tests only: how many bytes "1 MB" of max_size_mb means (default 1048576; <= 0 resets). */
void log_set_rotation_unit_for_tests(int64_t bytes_per_mb);

#define LOG_T(mod, ...) do { if (log_enabled(LOG_TRACE)) log_write(LOG_TRACE, mod, __VA_ARGS__); } while (0)
#define LOG_D(mod, ...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, mod, __VA_ARGS__); } while (0)
#define LOG_I(mod, ...) log_write(LOG_INFO, mod, __VA_ARGS__)
#define LOG_W(mod, ...) log_write(LOG_WARN, mod, __VA_ARGS__)
#define LOG_E(mod, ...) log_write(LOG_ERROR, mod, __VA_ARGS__)

#endif
