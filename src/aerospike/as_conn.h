/*
 * as_conn.h - connections to Aerospike nodes: TCP sockets with poll-based timeouts, TLS
 * through OpenSSL, whole-message send/receive, and a small per-node connection pool.
 *
 * Model: a connection is a non-blocking socket used synchronously. Every call that waits
 * takes a *deadline* (absolute monotonic milliseconds, 0 = none) and a *socket timeout*
 * (milliseconds one poll may wait for progress, 0 = none): the call fails when either
 * passes. Nothing here knows about nodes, clusters or logins; callers (as_cluster, as_auth)
 * open, authenticate and pool connections.
 *
 * Error classes (the int returned, message in struct err):
 *   ERR_UNAVAILABLE  a timeout (connect, send or receive)
 *   ERR_IO           network failure: refused, reset, closed by the peer, TLS failure
 *   ERR_INVALID      bad arguments or a malformed proto header from the peer
 *   ERR_NOMEM        allocation failure
 * A connection that failed with anything but ERR_INVALID-from-arguments must be closed.
 *
 * TLS: one `struct as_tls_ctx` (an SSL_CTX) per cluster, built from ca-file / ca-path /
 * cert-file / key-file (+ password) / protocols / cipher-suite. Each connection verifies the
 * server chain; when a TLS name is given it is sent as SNI and checked against the
 * certificate (CN/SAN, wildcards) with OpenSSL's host check. Handshake failures name the
 * likely cause (protocol or cipher mismatch, client certificate refused or missing).
 *
 * Thread-safety: a connection is used by one thread at a time; the pool and the TLS context
 * are safe to share.
 */
#ifndef ABS_AEROSPIKE_AS_CONN_H
#define ABS_AEROSPIKE_AS_CONN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aerospike/as_proto.h"
#include "util/err.h"

/* ---- time ------------------------------------------------------------------------------ */

/* Monotonic clock in milliseconds. */
uint64_t as_now_ms(void);
/* Deadline `ms` from now, 0 when ms == 0 (no deadline). */
uint64_t as_deadline_in(uint32_t ms);
/* Sleeps ms milliseconds, waking early (returning true) when *cancel becomes true. cancel may
 * be NULL. Polls the flag every 20 ms at most. */
bool as_sleep_ms(uint32_t ms, const volatile bool *cancel);

/* ---- TLS ----------------------------------------------------------------------------- */

struct as_tls_config {
    bool enable;
    const char *ca_file;      /* PEM bundle; NULL: ca_path or the system default */
    const char *ca_path;      /* hashed directory */
    const char *cert_file;    /* client certificate chain (mutual TLS / PKI login) */
    const char *key_file;     /* client private key */
    const char *key_password; /* for an encrypted key_file: "env:VAR", "file:PATH" (its first
                                 line) or the password itself; never logged */
    const char *protocols;    /* "TLSv1.2", "TLSv1.2 TLSv1.3", "+TLSv1.3 -TLSv1", "all"; NULL: TLSv1.2+ */
    const char *cipher_suite; /* OpenSSL cipher list (TLS <= 1.2) or TLS 1.3 suites */
};

struct as_tls_ctx;

int as_tls_ctx_new(const struct as_tls_config *cfg, struct as_tls_ctx **out, struct err *e);
void as_tls_ctx_free(struct as_tls_ctx *t);

/* ---- connection ---------------------------------------------------------------------- */

struct as_conn {
    int fd;                 /* -1 when closed */
    void *ssl;              /* SSL *, NULL for clear connections */
    uint64_t last_used_ms;  /* monotonic time of the last completed exchange */
    bool authenticated;     /* set by as_auth after AUTHENTICATE/LOGIN */
    char peer[64];          /* "ip:port" for messages */
    struct as_conn *next;   /* pool link */
};

/* Resolves host (name or address) and connects to the first address that answers within
 * connect_timeout_ms (0: wait for the system). With tls, runs the handshake, verifying the
 * chain and, when tls_name is non-empty, the certificate name (SNI set to it as well).
 * `c` is filled in place (no allocation besides OpenSSL's). */
int as_conn_open(struct as_conn *c, const char *host, uint16_t port, struct as_tls_ctx *tls,
                 const char *tls_name, uint32_t connect_timeout_ms, struct err *e);
/* Allocates a connection object and opens it (as_conn_destroy() closes and frees). */
int as_conn_new(const char *host, uint16_t port, struct as_tls_ctx *tls, const char *tls_name,
                uint32_t connect_timeout_ms, struct as_conn **out, struct err *e);
void as_conn_close(struct as_conn *c);
void as_conn_destroy(struct as_conn *c);

/* Sends or receives exactly `len` bytes. */
int as_conn_write(struct as_conn *c, const void *buf, size_t len, uint64_t deadline_ms,
                  uint32_t socket_timeout_ms, struct err *e);
int as_conn_read(struct as_conn *c, void *buf, size_t len, uint64_t deadline_ms,
                 uint32_t socket_timeout_ms, struct err *e);

/* Receives one proto message: the 8-byte header into *h, the body into `body` (reset, then
 * grown as needed; reused across calls so steady streams allocate nothing). The header is
 * validated (version 2, known type, <= 128 MiB). */
int as_conn_read_proto(struct as_conn *c, struct as_proto_header *h, struct as_buf *body,
                       uint64_t deadline_ms, uint32_t socket_timeout_ms, struct err *e);

/* ---- pool ---------------------------------------------------------------------------- */

/*
 * Connections to one node. `max_conns` bounds open connections (idle + lent out);
 * idle connections older than `idle_timeout_ms` are closed instead of being lent
 * (servers drop idle sockets after proto-fd-idle-ms, 60 s by default).
 */
struct as_pool {
    pthread_mutex_t mu;
    struct as_conn *idle;  /* LIFO: the most recently used first */
    uint32_t n_idle;
    uint32_t n_out;        /* lent out or being opened */
    uint32_t max_conns;
    uint32_t idle_timeout_ms;
};

void as_pool_init(struct as_pool *p, uint32_t max_conns, uint32_t idle_timeout_ms);
/* Closes every idle connection. Lent-out ones must have been returned or dropped. */
void as_pool_destroy(struct as_pool *p);
/* Returns 1 and *c = an idle connection, or 0 when the caller may open a new one (a slot is
 * reserved: give it back with as_pool_put() or as_pool_drop()), or ERR_UNAVAILABLE when
 * max_conns connections are out. */
int as_pool_get(struct as_pool *p, struct as_conn **c, struct err *e);
/* Returns a healthy connection to the idle list. */
void as_pool_put(struct as_pool *p, struct as_conn *c);
/* Releases the slot of a connection that failed (or was never opened: c may be NULL);
 * closes and frees c. */
void as_pool_drop(struct as_pool *p, struct as_conn *c);
/* Closes all idle connections (e.g. after a node's session changed). */
void as_pool_close_idle(struct as_pool *p);

#endif
