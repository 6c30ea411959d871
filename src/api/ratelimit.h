/*
 * ratelimit.h - per-client token-bucket rate limiter for the HTTP API (service.http.rate).
 *
 * Each client gets a bucket of capacity `size` tokens, full at first sight, refilled at `tps`
 * tokens per second; a request takes one token or is refused (HTTP 429). Clients are keyed by
 * IP: an IPv4 address as a whole, an IPv6 address by its /64 prefix (one site or host usually
 * owns a whole /64, so per-address buckets would be trivial to evade). IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d) count as IPv4. Addresses matching a white-list entry (an IP or
 * a CIDR, IPv4 or IPv6) are never limited; an empty white-list limits everyone.
 *
 * Memory is bounded: at most `max_clients` buckets exist; when a new client arrives at the
 * cap, the least recently used bucket is evicted (that client simply starts with a full
 * bucket again, which is what an idle client would have anyway).
 *
 * The clock is injectable for tests. All functions are thread safe (one mutex).
 */
#ifndef ABS_API_RATELIMIT_H
#define ABS_API_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/err.h"

#define RATELIMIT_DEFAULT_MAX_CLIENTS 65536

/* A client address: family 4 or 6; IPv4 uses the first 4 bytes. */
struct ratelimit_addr {
    int family;
    unsigned char bytes[16];
};

/* Monotonic time in nanoseconds. */
typedef int64_t (*ratelimit_clock_fn)(void *ctx);

struct ratelimit_options {
    double tps;                     /* tokens added per second (<= 0: never refills) */
    double size;                    /* bucket capacity / burst (< 1: every request refused) */
    const char *const *white_list;  /* IPs or CIDRs; may be NULL when white_list_len is 0 */
    size_t white_list_len;
    size_t max_clients;             /* 0: RATELIMIT_DEFAULT_MAX_CLIENTS */
    ratelimit_clock_fn clock;       /* NULL: CLOCK_MONOTONIC */
    void *clock_ctx;
};

struct ratelimit;

/* ERR_INVALID for a malformed white-list entry (the message names it). */
int ratelimit_new(const struct ratelimit_options *opts, struct ratelimit **out, struct err *e);
void ratelimit_free(struct ratelimit *rl);

/* Parses an IPv4 or IPv6 literal; ERR_INVALID otherwise. */
int ratelimit_addr_parse(const char *text, struct ratelimit_addr *out);
/* From a socket address (AF_INET / AF_INET6); ERR_INVALID for other families. */
int ratelimit_addr_from_sockaddr(const struct sockaddr *sa, struct ratelimit_addr *out);

/* True when the address is covered by the white-list. */
bool ratelimit_whitelisted(const struct ratelimit *rl, const struct ratelimit_addr *addr);
/* Takes one token for this client; false means "429 Too Many Requests". */
bool ratelimit_allow(struct ratelimit *rl, const struct ratelimit_addr *addr);
/* Number of client buckets currently held. */
size_t ratelimit_clients(struct ratelimit *rl);

#endif
