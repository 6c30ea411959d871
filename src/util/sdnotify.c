/*
 * sdnotify.c - sd_notify written by hand: one datagram per state change to the AF_UNIX socket
 * systemd names in $NOTIFY_SOCKET. A name starting with '@' is an abstract socket (the '@'
 * becomes a leading NUL and the address has no terminating NUL); anything else must be an
 * absolute path.
 */
#include "util/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/strutil.h"

/* Fills *addr from $NOTIFY_SOCKET's value; returns the address length or 0 if unusable. */
static socklen_t notify_address(const char *name, struct sockaddr_un *addr)
{
    size_t len = strlen(name);
    if (len < 2 || len >= sizeof addr->sun_path || (name[0] != '/' && name[0] != '@'))
        return 0;
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, name, len);
    if (name[0] == '@') {
        addr->sun_path[0] = '\0';
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

int sdnotify_send(const char *state, struct err *e)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !name[0])
        return 0;
    if (!state || !state[0])
        return err_set(e, ERR_INVALID, "sd_notify: empty state");
    struct sockaddr_un addr;
    socklen_t addr_len = notify_address(name, &addr);
    if (addr_len == 0)
        return err_set(e, ERR_INVALID, "sd_notify: unusable NOTIFY_SOCKET %s", name);

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set(e, ERR_IO, "sd_notify: socket: %s", strerror(errno));
    size_t len = strlen(state);
    ssize_t sent;
    do {
        sent = sendto(fd, state, len, MSG_NOSIGNAL, (const struct sockaddr *)&addr, addr_len);
    } while (sent < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (sent < 0)
        return err_set(e, ERR_IO, "sd_notify to %s: %s", name, strerror(saved));
    if ((size_t)sent != len)
        return err_set(e, ERR_IO, "sd_notify to %s: short send", name);
    return 0;
}

int sdnotify_ready(struct err *e)
{
    return sdnotify_send("READY=1", e);
}

int sdnotify_stopping(struct err *e)
{
    return sdnotify_send("STOPPING=1", e);
}

int sdnotify_reloading(struct err *e)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    char state[64];
    str_printf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)usec);
    return sdnotify_send(state, e);
}
