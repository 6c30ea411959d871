/*
 * err.h - the project's single error convention.
 *
 * Every fallible function returns int (0 = success, negative = failure) and fills a
 * caller-owned `struct err` with a category code and a human message. The API layer maps
 * the category to an HTTP status in one place (api/http.c); nothing below the API knows
 * about HTTP.
 */
#ifndef ABS_UTIL_ERR_H
#define ABS_UTIL_ERR_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>

enum err_code {
    ERR_OK = 0,
    ERR_INVALID = -1,   /* bad input: validation, syntax, wrong type (HTTP 400) */
    ERR_NOT_FOUND = -2, /* unknown entity (HTTP 404) */
    ERR_CONFLICT = -3,  /* duplicate name (HTTP 409) */
    ERR_IN_USE = -4,    /* entity still referenced (HTTP 400) */
    ERR_IO = -5,        /* file, socket or storage failure (HTTP 500) */
    ERR_NOMEM = -6,     /* allocation failure (HTTP 500) */
    ERR_INTERNAL = -7,  /* broken invariant (HTTP 500) */
    ERR_UNAVAILABLE = -8, /* could not persist / dependency down (HTTP 503) */
};

#define ERR_MSG_MAX 512

struct err {
    int code;
    char msg[ERR_MSG_MAX];
};

/* Sets code and formatted message; returns code so callers can `return err_set(...)`. */
int err_set(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int err_setv(struct err *e, int code, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
/* Prepends "prefix: " to the existing message, keeping the code; returns the code. */
int err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct err *e);
/* Keeps the first of several threads' errors: under `lock`, copies `e` into `first` and sets
 * *failed unless an error is already kept. Returns whether this one was kept. */
bool err_keep_first(pthread_mutex_t *lock, bool *failed, struct err *first, const struct err *e);
const char *err_code_name(int code);

#endif
