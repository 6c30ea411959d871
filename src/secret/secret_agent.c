/*
 * secret_agent.c - Aerospike Secret Agent client (see secret_agent.h).
 *
 * The socket is non-blocking from the start; every phase (connect + TLS handshake, write,
 * read) gets its own deadline of `timeout` ms and waits with poll(), so a silent agent costs
 * at most three timeouts. TLS goes through OpenSSL on the same non-blocking socket.
 */
#include "secret/secret_agent.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/strutil.h"

#define PART_MAX 256    /* bytes of a resource or key name */
#define AGENT_ERROR_SHOWN 200

/* ---- references -------------------------------------------------------------------------- */

bool secret_is_ref(const char *value)
{
    return value && strncmp(value, SECRET_REF_PREFIX, strlen(SECRET_REF_PREFIX)) == 0;
}

static int copy_part(const char *from, size_t len, char *to, size_t cap)
{
    if (len == 0 || len >= cap)
        return -1;
    memcpy(to, from, len);
    to[len] = '\0';
    return 0;
}

int secret_ref_parse(const char *ref, char *resource, size_t resource_cap, char *key, size_t key_cap,
                     struct err *e)
{
    const char *res = secret_is_ref(ref) ? ref + strlen(SECRET_REF_PREFIX) : NULL;
    const char *colon = res ? strchr(res, ':') : NULL;
    if (!colon || strchr(colon + 1, ':') || copy_part(res, (size_t)(colon - res), resource, resource_cap) ||
        copy_part(colon + 1, strlen(colon + 1), key, key_cap))
        return err_set(e, ERR_INVALID, "invalid secret reference: must be secrets:<resource>:<key>");
    return 0;
}

/* ---- connection --------------------------------------------------------------------------- */

struct conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int timeout_ms;
    char who[320]; /* "secret agent ADDR" */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events` or the deadline passes (ERR_IO "timed out"). */
static int wait_fd(const struct conn *c, short events, int64_t deadline, const char *phase, struct err *e)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return err_set(e, ERR_IO, "%s: %s timed out after %d ms", c->who, phase, c->timeout_ms);
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return err_set(e, ERR_IO, "%s: %s: %s", c->who, phase, strerror(errno));
    }
}

static int connect_addr(struct conn *c, const struct sockaddr *sa, socklen_t salen, int64_t deadline,
                        struct err *e)
{
    c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return err_set(e, ERR_IO, "%s: socket: %s", c->who, strerror(errno));
    if (connect(c->fd, sa, salen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EAGAIN)
        return err_set(e, ERR_IO, "%s: connect: %s", c->who, strerror(errno));
    if (wait_fd(c, POLLOUT, deadline, "connect", e))
        return e->code;
    int so = 0;
    socklen_t len = sizeof so;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so, &len) != 0)
        so = errno;
    return so ? err_set(e, ERR_IO, "%s: connect: %s", c->who, strerror(so)) : 0;
}

static int connect_unix(struct conn *c, const char *path, int64_t deadline, struct err *e)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path)
        return err_set(e, ERR_INVALID, "%s: socket path too long", c->who);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    return connect_addr(c, (const struct sockaddr *)&sun, sizeof sun, deadline, e);
}

static int connect_tcp(struct conn *c, const char *host, int port, int64_t deadline, struct err *e)
{
    char service[16];
    str_printf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, service, &hints, &res);
    if (g != 0)
        return err_set(e, ERR_IO, "%s: cannot resolve address: %s", c->who, gai_strerror(g));
    int rc = ERR_IO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        if ((rc = connect_addr(c, ai->ai_addr, ai->ai_addrlen, deadline, e)) == 0)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

static const char *ssl_reason(void)
{
    unsigned long code = ERR_peek_last_error();
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    return r ? r : "unknown error";
}

/* Drives one SSL call to completion on the non-blocking socket: >0 done, else error set. */
static int ssl_wait(struct conn *c, int ret, int64_t deadline, const char *phase, struct err *e)
{
    int err = SSL_get_error(c->ssl, ret);
    if (err == SSL_ERROR_WANT_READ)
        return wait_fd(c, POLLIN, deadline, phase, e);
    if (err == SSL_ERROR_WANT_WRITE)
        return wait_fd(c, POLLOUT, deadline, phase, e);
    if (err == SSL_ERROR_ZERO_RETURN)
        return err_set(e, ERR_IO, "%s: %s: connection closed by the agent", c->who, phase);
    long verify = SSL_get_verify_result(c->ssl);
    if (verify != X509_V_OK)
        err_set(e, ERR_IO, "%s: TLS: certificate verification failed: %s", c->who,
                X509_verify_cert_error_string(verify));
    else if (err == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
        err_set(e, ERR_IO, "%s: %s: connection closed by the agent", c->who, phase);
    else
        err_set(e, ERR_IO, "%s: TLS %s: %s", c->who, phase, ssl_reason());
    ERR_clear_error();
    return e->code;
}

static int start_tls(struct conn *c, const struct cfg_secret_agent *a, int64_t deadline, struct err *e)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        return err_set(e, ERR_NOMEM, "%s: TLS: cannot create a context", c->who);
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(c->ctx, a->tls_ca_file, NULL) != 1) {
        ERR_clear_error();
        return err_set(e, ERR_INVALID, "%s: tls-ca-file %s: cannot load the CA certificate", c->who, a->tls_ca_file);
    }
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        return err_set(e, ERR_NOMEM, "%s: TLS: cannot create a session", c->who);
    /* The certificate must name the address we dialled, as Go's tls.Dial checks. */
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, a->address, ip) == 1 || inet_pton(AF_INET6, a->address, ip) == 1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, a->address)
                   : X509_VERIFY_PARAM_set1_host(vp, a->address, 0) && SSL_set_tlsext_host_name(c->ssl, a->address);
    if (ok != 1) {
        ERR_clear_error();
        return err_set(e, ERR_INVALID, "%s: TLS: cannot use the address for verification", c->who);
    }
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        if (ssl_wait(c, r, deadline, "handshake", e))
            return e->code;
    }
}

static int conn_open(struct conn *c, const struct cfg_secret_agent *a, struct err *e)
{
    int64_t deadline = mono_ms() + c->timeout_ms;
    bool unix_socket = a->connection_type && strcasecmp(a->connection_type, "unix") == 0;
    if (unix_socket && a->tls_ca_file)
        return err_set(e, ERR_INVALID, "%s: TLS is only available with connection-type tcp", c->who);
    if (!a->address || !*a->address)
        return err_set(e, ERR_INVALID, "secret agent: no address");
    if (unix_socket)
        return connect_unix(c, a->address, deadline, e);
    if (!a->port.set)
        return err_set(e, ERR_INVALID, "%s: port is required for connection-type tcp", c->who);
    if (connect_tcp(c, a->address, (int)a->port.v, deadline, e))
        return e->code;
    return a->tls_ca_file ? start_tls(c, a, deadline, e) : 0;
}

static void conn_close(struct conn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    ERR_clear_error();
}

static int write_all(struct conn *c, const uint8_t *buf, size_t len, struct err *e)
{
    int64_t deadline = mono_ms() + c->timeout_ms;
    size_t done = 0;
    while (done < len) {
        if (c->ssl) {
            int r = SSL_write(c->ssl, buf + done, (int)(len - done));
            if (r > 0)
                done += (size_t)r;
            else if (ssl_wait(c, r, deadline, "write", e))
                return e->code;
            continue;
        }
        ssize_t r = send(c->fd, buf + done, len - done, MSG_NOSIGNAL);
        if (r > 0)
            done += (size_t)r;
        else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(c, POLLOUT, deadline, "write", e))
                return e->code;
        } else if (r < 0 && errno != EINTR)
            return err_set(e, ERR_IO, "%s: write: %s", c->who, strerror(errno));
    }
    return 0;
}

static int read_all(struct conn *c, uint8_t *buf, size_t len, int64_t deadline, struct err *e)
{
    size_t done = 0;
    while (done < len) {
        if (c->ssl) {
            int r = SSL_read(c->ssl, buf + done, (int)(len - done));
            if (r > 0)
                done += (size_t)r;
            else if (ssl_wait(c, r, deadline, "read", e))
                return e->code;
            continue;
        }
        ssize_t r = recv(c->fd, buf + done, len - done, 0);
        if (r > 0)
            done += (size_t)r;
        else if (r == 0)
            return err_set(e, ERR_IO, "%s: read: connection closed by the agent after %zu of %zu bytes", c->who,
                           done, len);
        else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_fd(c, POLLIN, deadline, "read", e))
                return e->code;
        } else if (errno != EINTR)
            return err_set(e, ERR_IO, "%s: read: %s", c->who, strerror(errno));
    }
    return 0;
}

/* ---- framing ------------------------------------------------------------------------------ */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int send_request(struct conn *c, const char *resource, const char *key, struct err *e)
{
    json_t *req = json_pack("{s:s, s:s}", "Resource", resource, "SecretKey", key);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t len = strlen(body);
    uint8_t *frame = malloc(SECRET_HEADER_LEN + len);
    int rc;
    if (!frame) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
    } else {
        put_be32(frame, SECRET_MAGIC);
        put_be32(frame + 4, (uint32_t)len);
        memcpy(frame + SECRET_HEADER_LEN, body, len);
        rc = write_all(c, frame, SECRET_HEADER_LEN + len, e);
    }
    free(frame);
    free(body);
    return rc;
}

/* Reads one framed reply: *body malloc'd, NUL-terminated. */
static int read_reply(struct conn *c, char **body, size_t *len, struct err *e)
{
    int64_t deadline = mono_ms() + c->timeout_ms;
    uint8_t hdr[SECRET_HEADER_LEN];
    if (read_all(c, hdr, sizeof hdr, deadline, e))
        return e->code;
    uint32_t magic = get_be32(hdr), n = get_be32(hdr + 4);
    if (magic != SECRET_MAGIC)
        return err_set(e, ERR_IO, "%s: invalid reply: magic 0x%08X, want 0x%08X (is this a secret agent?)", c->who,
                       magic, SECRET_MAGIC);
    if (n > SECRET_REPLY_MAX)
        return err_set(e, ERR_IO, "%s: reply of %u bytes is over the %u-byte limit", c->who, n, SECRET_REPLY_MAX);
    *body = malloc((size_t)n + 1);
    if (!*body)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (read_all(c, (uint8_t *)*body, n, deadline, e)) {
        free(*body);
        *body = NULL;
        return e->code;
    }
    (*body)[n] = '\0';
    *len = n;
    return 0;
}

/* ---- reply -------------------------------------------------------------------------------- */

/* The agent's own error text, made printable and short (it is the agent's, not a secret). */
static void show_agent_error(const char *msg, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = msg; *p && n + 1 < cap && n < AGENT_ERROR_SHOWN; p++)
        out[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    out[n] = '\0';
}

static int b64_decode_strict(const char *in, size_t len, char **out, size_t *out_len)
{
    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' ||
                  ch == '/' || (ch == '=' && i >= len - 2 && (i == len - 1 || in[len - 1] == '='));
        if (!ok)
            return -1;
    }
    *out = malloc(len / 4 * 3 + 1);
    if (!*out)
        return -1;
    int n = len ? EVP_DecodeBlock((unsigned char *)*out, (const unsigned char *)in, (int)len) : 0;
    if (n < 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    size_t pad = len ? (in[len - 1] == '=') + (in[len - 2] == '=') : 0;
    *out_len = (size_t)n - pad;
    (*out)[*out_len] = '\0';
    return 0;
}

static int parse_reply(const char *who, const char *body, size_t body_len, bool is_base64, char **value,
                       size_t *len, struct err *e)
{
    json_error_t je;
    json_t *root = json_loadb(body, body_len, 0, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(e, ERR_IO, "%s: reply is not a JSON object", who);
    }
    const json_t *error = json_object_get(root, "Error");
    const json_t *sv = json_object_get(root, "SecretValue");
    int rc = 0;
    if (json_is_string(error) && json_string_length(error) > 0) {
        char shown[AGENT_ERROR_SHOWN + 1];
        show_agent_error(json_string_value(error), shown, sizeof shown);
        rc = err_set(e, ERR_IO, "%s: the agent answered: %s", who, shown);
    } else if (!json_is_string(sv)) {
        rc = err_set(e, ERR_IO, "%s: reply has no SecretValue", who);
    } else if (is_base64) {
        if (b64_decode_strict(json_string_value(sv), json_string_length(sv), value, len))
            rc = err_set(e, ERR_IO, "%s: is-base64 is set but the value is not valid base64", who);
    } else {
        *len = json_string_length(sv);
        *value = malloc(*len + 1);
        if (!*value)
            rc = err_set(e, ERR_NOMEM, "out of memory");
        else
            memcpy(*value, json_string_value(sv), *len + 1);
    }
    /* jansson keeps its own copy of the value: wipe it before letting go */
    if (json_is_string(sv))
        OPENSSL_cleanse((void *)json_string_value(sv), json_string_length(sv));
    json_decref(root);
    return rc;
}

/* ---- public ------------------------------------------------------------------------------- */

void secret_agent_describe(const struct cfg_secret_agent *a, char *buf, size_t cap)
{
    bool unix_socket = a->connection_type && strcasecmp(a->connection_type, "unix") == 0;
    const char *addr = a->address ? a->address : "?";
    if (unix_socket || !a->port.set)
        str_printf(buf, cap, "%s", addr);
    else if (strchr(addr, ':'))
        str_printf(buf, cap, "[%s]:%lld", addr, (long long)a->port.v);
    else
        str_printf(buf, cap, "%s:%lld", addr, (long long)a->port.v);
}

int secret_agent_get(const struct cfg_secret_agent *agent, const char *resource, const char *key, char **value,
                     size_t *len, struct err *e)
{
    *value = NULL;
    char addr[280];
    secret_agent_describe(agent, addr, sizeof addr);
    struct conn c = {.fd = -1};
    c.timeout_ms = agent->timeout.set && agent->timeout.v > 0 ? (int)agent->timeout.v : SECRET_DEFAULT_TIMEOUT_MS;
    str_printf(c.who, sizeof c.who, "secret agent %s", addr);
    char *body = NULL;
    size_t body_len = 0, n = 0;
    int rc = conn_open(&c, agent, e);
    if (rc == 0)
        rc = send_request(&c, resource, key, e);
    if (rc == 0)
        rc = read_reply(&c, &body, &body_len, e);
    conn_close(&c);
    if (rc == 0)
        rc = parse_reply(c.who, body, body_len, agent->is_base64.set && agent->is_base64.v, value, &n, e);
    if (body) {
        OPENSSL_cleanse(body, body_len);
        free(body);
    }
    if (rc)
        return err_prefix(e, "resource %s key %s", resource, key);
    if (len)
        *len = n;
    return 0;
}

int secret_resolve(const struct cfg_secret_agent *agent, const char *value, const char *what, char **out,
                   struct err *e)
{
    *out = NULL;
    if (!value)
        return err_set(e, ERR_INVALID, "%s: no value", what);
    if (!secret_is_ref(value)) {
        *out = strdup(value);
        return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    }
    char resource[PART_MAX], key[PART_MAX];
    if (secret_ref_parse(value, resource, sizeof resource, key, sizeof key, e))
        return err_prefix(e, "%s", what);
    if (!agent)
        return err_set(e, ERR_INVALID, "%s: %s is a secret reference but no secret agent is configured for it", what,
                       value);
    if (secret_agent_get(agent, resource, key, out, NULL, e))
        return err_prefix(e, "%s", what);
    return 0;
}

void secret_free(char *value)
{
    if (!value)
        return;
    OPENSSL_cleanse(value, strlen(value));
    free(value);
}
