/*
 * as_conn.c - sockets, TLS and the per-node connection pool (contract in as_conn.h).
 *
 * Sockets are non-blocking; every wait is a poll() bounded by the smaller of the socket
 * timeout and what is left of the deadline. TLS uses the same loop: SSL_read_ex/SSL_write_ex
 * report WANT_READ/WANT_WRITE and we poll for that direction.
 */
#include "aerospike/as_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/log.h"

/* ---- time ------------------------------------------------------------------------------ */

uint64_t as_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t as_deadline_in(uint32_t ms)
{
    return ms ? as_now_ms() + ms : 0;
}

bool as_sleep_ms(uint32_t ms, const volatile bool *cancel)
{
    uint64_t end = as_now_ms() + ms;
    for (;;) {
        if (cancel && *cancel)
            return true;
        uint64_t now = as_now_ms();
        if (now >= end)
            return false;
        uint64_t left = end - now;
        if (left > 20)
            left = 20;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)left * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* Milliseconds one poll may wait: min(socket timeout, time to deadline); -1 = forever.
 * Returns 0 when the deadline has passed. */
static int wait_budget(uint64_t deadline_ms, uint32_t socket_timeout_ms)
{
    int64_t t = -1;
    if (deadline_ms) {
        uint64_t now = as_now_ms();
        if (now >= deadline_ms)
            return 0;
        t = (int64_t)(deadline_ms - now);
    }
    if (socket_timeout_ms && (t < 0 || (int64_t)socket_timeout_ms < t))
        t = socket_timeout_ms;
    if (t > INT32_MAX)
        t = INT32_MAX;
    return (int)t;
}

/* 1 ready, ERR_UNAVAILABLE timeout, ERR_IO poll failure. */
static int wait_fd(int fd, short events, uint64_t deadline_ms, uint32_t socket_timeout_ms,
                   const char *peer, const char *what, struct err *e)
{
    for (;;) {
        int budget = wait_budget(deadline_ms, socket_timeout_ms);
        if (budget == 0)
            return err_set(e, ERR_UNAVAILABLE, "%s: timeout while %s", peer, what);
        struct pollfd pfd = { .fd = fd, .events = events };
        int r = poll(&pfd, 1, budget);
        if (r > 0)
            return 1;
        if (r == 0)
            return err_set(e, ERR_UNAVAILABLE, "%s: timeout while %s", peer, what);
        if (errno != EINTR)
            return err_set(e, ERR_IO, "%s: poll: %s", peer, strerror(errno));
    }
}

/* ---- TLS context ---------------------------------------------------------------------- */

struct as_tls_ctx {
    SSL_CTX *ctx;
};

/* What an OpenSSL failure usually means for a user, from the reason of its last error. */
static const char *tls_hint(unsigned long code)
{
    if (!code || ERR_GET_LIB(code) != ERR_LIB_SSL)
        return "";
    switch (ERR_GET_REASON(code)) {
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return " (the server closed the connection in the handshake: is TLS enabled on this port?)";
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_WRONG_VERSION_NUMBER:
        return " (no TLS protocol version in common with the server: check tls protocols)";
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_CIPHERS_AVAILABLE:
        return " (no cipher suite in common with the server: check tls cipher-suite)";
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        return " (the server refused the client certificate or requires one: check cert-file/key-file)";
    default:
        return "";
    }
}

static void tls_errors(char *out, size_t cap)
{
    unsigned long code, last = 0;
    size_t used = 0;
    out[0] = 0;
    while ((code = ERR_get_error()) != 0) {
        last = code;
        if (used + 3 < cap) {
            char one[256];
            ERR_error_string_n(code, one, sizeof one);
            int n = snprintf(out + used, cap - used, "%s%s", used ? "; " : "", one);
            if (n > 0)
                used += (size_t)n < cap - used ? (size_t)n : cap - used - 1;
        }
    }
    if (!out[0])
        snprintf(out, cap, "unknown OpenSSL error");
    const char *hint = tls_hint(last);
    if (*hint && used + strlen(hint) + 1 < cap)
        snprintf(out + used, cap - used, "%s", hint);
}

static int protocol_version(const char *tok, size_t len)
{
    static const struct { const char *name; int v; } names[] = {
        { "TLSv1", TLS1_VERSION }, { "TLSv1.1", TLS1_1_VERSION },
        { "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && strncasecmp(tok, names[i].name, len) == 0)
            return names[i].v;
    return 0;
}

/* Aerospike-style protocol list: tokens separated by spaces/commas, each "all", a version,
 * "+version" or "-version". The enabled set becomes OpenSSL's min..max range. */
static int set_protocols(SSL_CTX *ctx, const char *spec, struct err *e)
{
    bool on[4] = { false, false, true, true }; /* default TLSv1.2 + TLSv1.3 */
    static const int vers[4] = { TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION };
    if (spec && *spec) {
        bool any_plain = false;
        for (const char *p = spec; *p;) {
            while (*p == ' ' || *p == ',' || *p == '\t')
                p++;
            if (!*p)
                break;
            const char *s = p;
            while (*p && *p != ' ' && *p != ',' && *p != '\t')
                p++;
            char sign = 0;
            if (*s == '+' || *s == '-')
                sign = *s++;
            size_t len = (size_t)(p - s);
            if (!sign && !any_plain) { /* a plain list replaces the default */
                memset(on, 0, sizeof on);
                any_plain = true;
            }
            if (len == 3 && strncasecmp(s, "all", 3) == 0) {
                for (int i = 0; i < 4; i++)
                    on[i] = sign != '-';
                continue;
            }
            int v = protocol_version(s, len);
            if (!v)
                return err_set(e, ERR_INVALID, "tls protocols: unknown protocol '%.*s'", (int)len, s);
            for (int i = 0; i < 4; i++)
                if (vers[i] == v)
                    on[i] = sign != '-';
        }
    }
    int lo = -1, hi = -1;
    for (int i = 0; i < 4; i++)
        if (on[i]) {
            if (lo < 0)
                lo = i;
            hi = i;
        }
    if (lo < 0)
        return err_set(e, ERR_INVALID, "tls protocols: no protocol enabled");
    for (int i = lo; i <= hi; i++)
        if (!on[i])
            return err_set(e, ERR_INVALID, "tls protocols: enabled protocols must be contiguous");
    if (!SSL_CTX_set_min_proto_version(ctx, vers[lo]) || !SSL_CTX_set_max_proto_version(ctx, vers[hi]))
        return err_set(e, ERR_INVALID, "tls protocols: OpenSSL refused the range");
    return 0;
}

struct pw_cb {
    const char *pw;
};

static int key_password_cb(char *buf, int size, int rwflag, void *u)
{
    const struct pw_cb *p = u;
    if (!p || !p->pw || size <= 0)
        return 0;
    size_t n = strlen(p->pw);
    if (n > (size_t)size)
        n = (size_t)size;
    memcpy(buf, p->pw, n);
    return (int)n;
}

/* key-file-password: "env:VAR", "file:PATH" (first line) or the literal password. The result
 * is malloc'ed (wipe and free it); the password itself never appears in a message. */
static int key_password_resolve(const char *spec, char **out, struct err *e)
{
    *out = NULL;
    if (!spec)
        return 0;
    if (strncmp(spec, "env:", 4) == 0) {
        const char *v = getenv(spec + 4);
        if (!v)
            return err_set(e, ERR_INVALID, "tls: key-file-password: environment variable %s is not set",
                           spec + 4);
        *out = strdup(v);
    } else if (strncmp(spec, "file:", 5) == 0) {
        FILE *f = fopen(spec + 5, "r");
        if (!f)
            return err_set(e, ERR_INVALID, "tls: key-file-password: cannot read %s: %s", spec + 5,
                           strerror(errno));
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        buf[strcspn(buf, "\r\n")] = 0;
        *out = strdup(buf);
        explicit_bzero(buf, sizeof buf);
    } else {
        *out = strdup(spec);
    }
    return *out ? 0 : err_set(e, ERR_NOMEM, "tls: out of memory");
}

int as_tls_ctx_new(const struct as_tls_config *cfg, struct as_tls_ctx **out, struct err *e)
{
    *out = NULL;
    char oe[400];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        tls_errors(oe, sizeof oe);
        return err_set(e, ERR_INTERNAL, "tls: cannot create context: %s", oe);
    }
    int rc = set_protocols(ctx, cfg->protocols, e);
    if (rc)
        goto fail;
    if (cfg->cipher_suite && *cfg->cipher_suite) {
        /* TLS <= 1.2 cipher list first; TLS 1.3 suite names ("TLS_AES_...") otherwise. */
        int ok12 = SSL_CTX_set_cipher_list(ctx, cfg->cipher_suite);
        ERR_clear_error();
        int ok13 = strncmp(cfg->cipher_suite, "TLS_", 4) == 0
                       ? SSL_CTX_set_ciphersuites(ctx, cfg->cipher_suite) : 0;
        ERR_clear_error();
        if (!ok12 && !ok13) {
            rc = err_set(e, ERR_INVALID, "tls: cipher-suite '%s' matches no cipher", cfg->cipher_suite);
            goto fail;
        }
    }
    if ((cfg->ca_file && *cfg->ca_file) || (cfg->ca_path && *cfg->ca_path)) {
        const char *f = cfg->ca_file && *cfg->ca_file ? cfg->ca_file : NULL;
        const char *d = cfg->ca_path && *cfg->ca_path ? cfg->ca_path : NULL;
        if (SSL_CTX_load_verify_locations(ctx, f, d) != 1) {
            tls_errors(oe, sizeof oe);
            rc = err_set(e, ERR_INVALID, "tls: cannot load CA %s%s%s: %s", f ? f : "",
                         f && d ? " / " : "", d ? d : "", oe);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        tls_errors(oe, sizeof oe);
        rc = err_set(e, ERR_INVALID, "tls: cannot load the system CA store: %s", oe);
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->cert_file && *cfg->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
            tls_errors(oe, sizeof oe);
            rc = err_set(e, ERR_INVALID, "tls: cannot load cert-file %s: %s", cfg->cert_file, oe);
            goto fail;
        }
    }
    if (cfg->key_file && *cfg->key_file) {
        char *password = NULL;
        rc = key_password_resolve(cfg->key_password, &password, e);
        if (rc)
            goto fail;
        struct pw_cb pw = { password };
        SSL_CTX_set_default_passwd_cb(ctx, key_password_cb);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, &pw);
        int ok = SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM);
        SSL_CTX_set_default_passwd_cb(ctx, NULL);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
        if (password) {
            explicit_bzero(password, strlen(password));
            free(password);
        }
        if (ok != 1) {
            tls_errors(oe, sizeof oe);
            rc = err_set(e, ERR_INVALID, "tls: cannot load key-file %s (%s): %s", cfg->key_file,
                         cfg->key_password ? "wrong key-file-password?" : "encrypted? set key-file-password", oe);
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            rc = err_set(e, ERR_INVALID, "tls: key-file %s does not match cert-file", cfg->key_file);
            goto fail;
        }
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    struct as_tls_ctx *t = calloc(1, sizeof *t);
    if (!t) {
        rc = err_set(e, ERR_NOMEM, "tls: out of memory");
        goto fail;
    }
    t->ctx = ctx;
    *out = t;
    return 0;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

void as_tls_ctx_free(struct as_tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

/* ---- connect ---------------------------------------------------------------------------- */

static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(out, cap, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(out, cap, "[%s]:%u", ip, port);
    } else {
        snprintf(out, cap, "?");
    }
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline, const char *peer, struct err *e)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return err_set(e, ERR_IO, "%s: socket: %s", peer, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            int rc = err_set(e, ERR_IO, "%s: connect: %s", peer, strerror(errno));
            close(fd);
            return rc;
        }
        int rc = wait_fd(fd, POLLOUT, deadline, 0, peer, "connecting", e);
        if (rc < 0) {
            close(fd);
            return rc;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        if (soerr) {
            rc = err_set(e, ERR_IO, "%s: connect: %s", peer, strerror(soerr));
            close(fd);
            return rc;
        }
    }
    return fd;
}

static int tls_handshake(struct as_conn *c, struct as_tls_ctx *tls, const char *tls_name,
                         uint64_t deadline, struct err *e)
{
    char oe[400];
    ERR_clear_error();
    SSL *ssl = SSL_new(tls->ctx);
    if (!ssl)
        return err_set(e, ERR_NOMEM, "%s: tls: SSL_new failed", c->peer);
    c->ssl = ssl;
    if (SSL_set_fd(ssl, c->fd) != 1)
        return err_set(e, ERR_IO, "%s: tls: SSL_set_fd failed", c->peer);
    if (tls_name && *tls_name) {
        SSL_set_tlsext_host_name(ssl, tls_name);
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(ssl, tls_name) != 1)
            return err_set(e, ERR_INVALID, "%s: tls: bad tls-name '%s'", c->peer, tls_name);
    }
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        int se = SSL_get_error(ssl, r);
        if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
            int w = wait_fd(c->fd, se == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, 0,
                            c->peer, "in the TLS handshake", e);
            if (w < 0)
                return w;
            continue;
        }
        long vr = SSL_get_verify_result(ssl);
        if (vr != X509_V_OK)
            return err_set(e, ERR_IO, "%s: tls: certificate verification failed: %s%s%s%s",
                           c->peer, X509_verify_cert_error_string(vr),
                           tls_name && *tls_name ? " (tls-name " : "",
                           tls_name && *tls_name ? tls_name : "", tls_name && *tls_name ? ")" : "");
        if (ERR_peek_error() == 0)
            return err_set(e, ERR_IO, "%s: tls handshake failed: the server closed the connection "
                           "(is TLS enabled on this port?)", c->peer);
        tls_errors(oe, sizeof oe);
        return err_set(e, ERR_IO, "%s: tls handshake failed: %s", c->peer, oe);
    }
    return 0;
}

int as_conn_open(struct as_conn *c, const char *host, uint16_t port, struct as_tls_ctx *tls,
                 const char *tls_name, uint32_t connect_timeout_ms, struct err *e)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    snprintf(c->peer, sizeof c->peer, "%s:%u", host, port);
    uint64_t deadline = as_deadline_in(connect_timeout_ms);
    char ports[8];
    snprintf(ports, sizeof ports, "%u", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_ADDRCONFIG };
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, ports, &hints, &res);
    if (g != 0 || !res) {
        /* AI_ADDRCONFIG hides loopback-only hosts on some systems; retry without it. */
        hints.ai_flags = 0;
        g = getaddrinfo(host, ports, &hints, &res);
        if (g != 0 || !res)
            return err_set(e, ERR_IO, "%s: cannot resolve: %s", c->peer, gai_strerror(g));
    }
    int rc = ERR_IO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char peer[64];
        addr_text(ai->ai_addr, peer, sizeof peer);
        int fd = connect_one(ai, deadline, peer, e);
        if (fd >= 0) {
            c->fd = fd;
            snprintf(c->peer, sizeof c->peer, "%s", peer);
            rc = 0;
            break;
        }
        rc = fd;
        if (rc == ERR_UNAVAILABLE)
            break; /* the whole connect budget is spent */
    }
    freeaddrinfo(res);
    if (rc)
        return rc;
    if (tls) {
        rc = tls_handshake(c, tls, tls_name, deadline, e);
        if (rc) {
            as_conn_close(c);
            return rc;
        }
    }
    c->last_used_ms = as_now_ms();
    LOG_T("as", "connected to %s%s", c->peer, tls ? " (TLS)" : "");
    return 0;
}

int as_conn_new(const char *host, uint16_t port, struct as_tls_ctx *tls, const char *tls_name,
                uint32_t connect_timeout_ms, struct as_conn **out, struct err *e)
{
    *out = NULL;
    struct as_conn *c = malloc(sizeof *c);
    if (!c)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = as_conn_open(c, host, port, tls, tls_name, connect_timeout_ms, e);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void as_conn_close(struct as_conn *c)
{
    if (!c)
        return;
    if (c->ssl) {
        SSL_free(c->ssl); /* no close_notify: the socket may be broken and we never block */
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->authenticated = false;
}

void as_conn_destroy(struct as_conn *c)
{
    if (!c)
        return;
    as_conn_close(c);
    free(c);
}

/* ---- I/O -------------------------------------------------------------------------------- */

int as_conn_write(struct as_conn *c, const void *buf, size_t len, uint64_t deadline_ms,
                  uint32_t socket_timeout_ms, struct err *e)
{
    const uint8_t *p = buf;
    if (c->fd < 0)
        return err_set(e, ERR_IO, "%s: connection is closed", c->peer);
    while (len > 0) {
        if (c->ssl) {
            size_t w = 0;
            ERR_clear_error();
            int r = SSL_write_ex(c->ssl, p, len, &w);
            if (r == 1) {
                p += w;
                len -= w;
                continue;
            }
            int se = SSL_get_error(c->ssl, r);
            if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
                int rc = wait_fd(c->fd, se == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline_ms,
                                 socket_timeout_ms, c->peer, "sending", e);
                if (rc < 0)
                    return rc;
                continue;
            }
            char oe[300];
            tls_errors(oe, sizeof oe);
            return err_set(e, ERR_IO, "%s: tls send failed: %s", c->peer, oe);
        }
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(c->fd, POLLOUT, deadline_ms, socket_timeout_ms, c->peer, "sending", e);
            if (rc < 0)
                return rc;
            continue;
        }
        return err_set(e, ERR_IO, "%s: send: %s", c->peer, strerror(w < 0 ? errno : EPIPE));
    }
    return 0;
}

int as_conn_read(struct as_conn *c, void *buf, size_t len, uint64_t deadline_ms,
                 uint32_t socket_timeout_ms, struct err *e)
{
    uint8_t *p = buf;
    if (c->fd < 0)
        return err_set(e, ERR_IO, "%s: connection is closed", c->peer);
    while (len > 0) {
        if (c->ssl) {
            size_t got = 0;
            ERR_clear_error();
            int r = SSL_read_ex(c->ssl, p, len, &got);
            if (r == 1) {
                p += got;
                len -= got;
                continue;
            }
            int se = SSL_get_error(c->ssl, r);
            if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
                int rc = wait_fd(c->fd, se == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline_ms,
                                 socket_timeout_ms, c->peer, "receiving", e);
                if (rc < 0)
                    return rc;
                continue;
            }
            if (se == SSL_ERROR_ZERO_RETURN)
                return err_set(e, ERR_IO, "%s: connection closed by the server", c->peer);
            char oe[300];
            tls_errors(oe, sizeof oe);
            return err_set(e, ERR_IO, "%s: tls receive failed: %s", c->peer, oe);
        }
        ssize_t r = recv(c->fd, p, len, 0);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        if (r == 0)
            return err_set(e, ERR_IO, "%s: connection closed by the server", c->peer);
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = wait_fd(c->fd, POLLIN, deadline_ms, socket_timeout_ms, c->peer, "receiving", e);
            if (rc < 0)
                return rc;
            continue;
        }
        return err_set(e, ERR_IO, "%s: recv: %s", c->peer, strerror(errno));
    }
    return 0;
}

int as_conn_read_proto(struct as_conn *c, struct as_proto_header *h, struct as_buf *body,
                       uint64_t deadline_ms, uint32_t socket_timeout_ms, struct err *e)
{
    uint8_t hb[AS_PROTO_HEADER_SIZE];
    int rc = as_conn_read(c, hb, sizeof hb, deadline_ms, socket_timeout_ms, e);
    if (rc)
        return rc;
    rc = as_proto_header_decode(hb, h, e);
    if (rc)
        return err_prefix(e, "%s", c->peer);
    as_buf_reset(body);
    if (h->size) {
        if (as_buf_reserve(body, (size_t)h->size))
            return err_set(e, ERR_NOMEM, "%s: cannot buffer a %llu-byte message", c->peer,
                           (unsigned long long)h->size);
        rc = as_conn_read(c, body->data, (size_t)h->size, deadline_ms, socket_timeout_ms, e);
        if (rc)
            return rc;
        body->len = (size_t)h->size;
    }
    c->last_used_ms = as_now_ms();
    return 0;
}

/* ---- pool ---------------------------------------------------------------------------- */

void as_pool_init(struct as_pool *p, uint32_t max_conns, uint32_t idle_timeout_ms)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->max_conns = max_conns ? max_conns : 1;
    p->idle_timeout_ms = idle_timeout_ms;
}

void as_pool_close_idle(struct as_pool *p)
{
    pthread_mutex_lock(&p->mu);
    struct as_conn *list = p->idle;
    p->idle = NULL;
    p->n_idle = 0;
    pthread_mutex_unlock(&p->mu);
    while (list) {
        struct as_conn *n = list->next;
        as_conn_destroy(list);
        list = n;
    }
}

void as_pool_destroy(struct as_pool *p)
{
    as_pool_close_idle(p);
    pthread_mutex_destroy(&p->mu);
}

/* An idle connection with something to read was closed by the server (EOF) or is out of
 * step: either way it cannot carry a new request. */
static bool conn_stale(const struct as_conn *c)
{
    if (c->fd < 0)
        return true;
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
    return poll(&pfd, 1, 0) != 0;
}

int as_pool_get(struct as_pool *p, struct as_conn **c, struct err *e)
{
    *c = NULL;
    struct as_conn *stale = NULL;
    int rc;
    uint64_t now = as_now_ms();
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct as_conn *x = p->idle;
        if (!x)
            break;
        p->idle = x->next;
        p->n_idle--;
        if ((p->idle_timeout_ms && now - x->last_used_ms > p->idle_timeout_ms) || conn_stale(x)) {
            x->next = stale;
            stale = x;
            continue;
        }
        x->next = NULL;
        *c = x;
        break;
    }
    if (*c) {
        p->n_out++;
        rc = 1;
    } else if (p->n_out + p->n_idle < p->max_conns) {
        p->n_out++;
        rc = 0;
    } else {
        rc = err_set(e, ERR_UNAVAILABLE, "all %u connections to the node are in use", p->max_conns);
    }
    pthread_mutex_unlock(&p->mu);
    while (stale) {
        struct as_conn *n = stale->next;
        as_conn_destroy(stale);
        stale = n;
    }
    return rc;
}

void as_pool_put(struct as_pool *p, struct as_conn *c)
{
    pthread_mutex_lock(&p->mu);
    if (p->n_out)
        p->n_out--;
    c->next = p->idle;
    p->idle = c;
    p->n_idle++;
    pthread_mutex_unlock(&p->mu);
}

void as_pool_drop(struct as_pool *p, struct as_conn *c)
{
    pthread_mutex_lock(&p->mu);
    if (p->n_out)
        p->n_out--;
    pthread_mutex_unlock(&p->mu);
    as_conn_destroy(c);
}
