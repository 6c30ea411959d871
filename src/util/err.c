/* err.c - formatting helpers for struct err (see err.h for the convention). */
#include "util/err.h"

#include <stdio.h>
#include <string.h>

int err_setv(struct err *e, int code, const char *fmt, va_list ap)
{
    if (e) {
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    }
    return code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_setv(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int err_prefix(struct err *e, const char *fmt, ...)
{
    if (!e)
        return ERR_INTERNAL;
    char prefix[ERR_MSG_MAX], old[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t plen = strnlen(prefix, sizeof e->msg - 1);
    memcpy(e->msg, prefix, plen);
    size_t pos = plen;
    for (const char *sep = ": "; *sep && pos < sizeof e->msg - 1; sep++)
        e->msg[pos++] = *sep;
    size_t rest = strnlen(old, sizeof old);
    if (rest > sizeof e->msg - 1 - pos)
        rest = sizeof e->msg - 1 - pos;
    memcpy(e->msg + pos, old, rest);
    e->msg[pos + rest] = '\0';
    return e->code;
}

void err_clear(struct err *e)
{
    if (e) {
        e->code = ERR_OK;
        e->msg[0] = '\0';
    }
}

const char *err_code_name(int code)
{
    switch (code) {
    case ERR_OK: return "ok";
    case ERR_INVALID: return "invalid";
    case ERR_NOT_FOUND: return "not found";
    case ERR_CONFLICT: return "conflict";
    case ERR_IN_USE: return "in use";
    case ERR_IO: return "i/o error";
    case ERR_NOMEM: return "out of memory";
    case ERR_UNAVAILABLE: return "unavailable";
    default: return "internal error";
    }
}

bool err_keep_first(pthread_mutex_t *lock, bool *failed, struct err *first, const struct err *e)
{
    pthread_mutex_lock(lock);
    bool kept = !*failed;
    if (kept) {
        *failed = true;
        *first = *e;
    }
    pthread_mutex_unlock(lock);
    return kept;
}
