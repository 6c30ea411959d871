/*
 * sdnotify.h - the systemd readiness protocol (sd_notify) without libsystemd: state lines such
 * as "READY=1" sent as one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or
 * an abstract name written with a leading '@'). Outside systemd (no $NOTIFY_SOCKET) every call
 * is a no-op that succeeds, so callers never need to know how the process was started.
 */
#ifndef ABS_UTIL_SDNOTIFY_H
#define ABS_UTIL_SDNOTIFY_H

#include "util/err.h"

/* Sends `state` (newline-separated VAR=value lines) to $NOTIFY_SOCKET. Returns 0 when sent or
 * when $NOTIFY_SOCKET is unset/empty; ERR_INVALID for an unusable socket name, ERR_IO when the
 * datagram cannot be sent. */
int sdnotify_send(const char *state, struct err *e);

/* The service finished starting up (HTTP server listening). */
int sdnotify_ready(struct err *e);
/* The service begins its graceful shutdown. */
int sdnotify_stopping(struct err *e);
/* The service begins re-reading its configuration (RELOADING=1 with the CLOCK_MONOTONIC time
 * systemd's Type=notify-reload expects); follow with sdnotify_ready() when done. */
int sdnotify_reloading(struct err *e);

#endif
