/*
 * sa_server.c - the test Secret Agent (see sa_server.h). Plain blocking I/O, one connection at
 * a time, each socket with a 5 s receive/send timeout so a stuck client cannot hang a test.
 */
#include "sa_server.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#define SA_MAGIC 0x51DEC1CCu
#define SA_REQUEST_MAX (64u * 1024u)
#define SA_OVERSIZED_LEN (2u * 1024u * 1024u)
#define SA_SILENCE_MS 10000

static const char *const fault_names[] = {"none", "wrong-magic", "oversized", "no-reply", "error", "close", NULL};

int sa_fault_parse(const char *name)
{
    for (int i = 0; fault_names[i]; i++)
        if (strcmp(fault_names[i], name) == 0)
            return i;
    return -1;
}

/* ---- table -------------------------------------------------------------------------------- */

int sa_add(struct sa_config *c, const char *resource, const char *key, const char *value)
{
    struct sa_entry *v = realloc(c->entries, (c->n_entries + 1) * sizeof *v);
    if (!v)
        return -1;
    c->entries = v;
    struct sa_entry *en = &v[c->n_entries];
    en->resource = strdup(resource);
    en->key = strdup(key);
    en->value = strdup(value);
    if (!en->resource || !en->key || !en->value)
        return -1;
    c->n_entries++;
    return 0;
}

int sa_load_json(struct sa_config *c, const char *path)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!json_is_object(root)) {
        fprintf(stderr, "secret-agent: %s: %s\n", path, root ? "not an object" : je.text);
        json_decref(root);
        return -1;
    }
    const char *res, *key;
    json_t *keys, *val;
    int rc = 0;
    json_object_foreach(root, res, keys) {
        json_object_foreach(keys, key, val) {
            if (rc == 0 && (!json_is_string(val) || sa_add(c, res, key, json_string_value(val))))
                rc = -1;
        }
    }
    json_decref(root);
    return rc;
}

void sa_config_free(struct sa_config *c)
{
    for (size_t i = 0; i < c->n_entries; i++) {
        free(c->entries[i].resource);
        free(c->entries[i].key);
        free(c->entries[i].value);
    }
    free(c->entries);
    c->entries = NULL;
    c->n_entries = 0;
    if (c->tls)
        SSL_CTX_free(c->tls);
    c->tls = NULL;
}

static const char *lookup(const struct sa_config *c, const char *resource, const char *key)
{
    for (size_t i = 0; i < c->n_entries; i++)
        if (strcmp(c->entries[i].resource, resource ? resource : "") == 0 && strcmp(c->entries[i].key, key) == 0)
            return c->entries[i].value;
    return NULL;
}

/* ---- sockets ------------------------------------------------------------------------------ */

int sa_listen_tcp(const char *ip, int port, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
        close(fd);
        return -1;
    }
    socklen_t len = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return -1;
    }
    if (bound)
        *bound = ntohs(sa.sin_port);
    return fd;
}

int sa_listen_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path)
        return -1;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(fd, 16) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

SSL_CTX *sa_tls_ctx(const char *cert_file, const char *key_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- one connection ----------------------------------------------------------------------- */

struct peer {
    int fd;
    SSL *ssl;
};

static int peer_read(struct peer *p, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = p->ssl ? SSL_read(p->ssl, (char *)buf + done, (int)(len - done))
                           : recv(p->fd, (char *)buf + done, len - done, 0);
        if (r <= 0) {
            if (!p->ssl && r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)r;
    }
    return 0;
}

static int peer_write(struct peer *p, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = p->ssl ? SSL_write(p->ssl, (const char *)buf + done, (int)(len - done))
                           : send(p->fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
        if (r <= 0) {
            if (!p->ssl && r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)r;
    }
    return 0;
}

static void put_be32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static int send_frame(struct peer *p, uint32_t magic, const char *body, size_t len)
{
    uint8_t hdr[8];
    put_be32(hdr, magic);
    put_be32(hdr + 4, (uint32_t)len);
    return peer_write(p, hdr, sizeof hdr) || peer_write(p, body, len) ? -1 : 0;
}

static int send_json(struct peer *p, json_t *reply, uint32_t magic)
{
    char *body = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    if (!body)
        return -1;
    int rc = send_frame(p, magic, body, strlen(body));
    free(body);
    return rc;
}

/* Waits (without answering) until the client hangs up, the stop flag or SA_SILENCE_MS. */
static void stay_silent(struct peer *p, const volatile bool *stop)
{
    for (int waited = 0; waited < SA_SILENCE_MS && !*stop; waited += 50) {
        struct pollfd pf = {.fd = p->fd, .events = POLLIN};
        if (poll(&pf, 1, 50) > 0) {
            char b;
            if (recv(p->fd, &b, 1, MSG_PEEK) <= 0)
                return;
        }
    }
}

static char *b64(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

static void answer(struct peer *p, struct sa_config *c, const volatile bool *stop)
{
    uint8_t hdr[8];
    if (peer_read(p, hdr, sizeof hdr))
        return;
    uint32_t magic = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    uint32_t len = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];
    if (magic != SA_MAGIC || len > SA_REQUEST_MAX)
        return;
    char *body = malloc((size_t)len + 1);
    if (!body || peer_read(p, body, len)) {
        free(body);
        return;
    }
    body[len] = '\0';
    snprintf(c->last_request, sizeof c->last_request, "%s", body);
    c->requests++;
    json_t *req = json_loads(body, 0, NULL);
    free(body);
    const char *resource = json_string_value(json_object_get(req, "Resource"));
    const char *key = json_string_value(json_object_get(req, "SecretKey"));
    const char *value = key ? lookup(c, resource, key) : NULL;
    if (c->log) {
        fprintf(stderr, "secret-agent: request resource=%s key=%s %s\n", resource ? resource : "-", key ? key : "-",
                value ? "found" : "unknown");
        fflush(stderr);
    }
    switch (c->fault) {
    case SA_FAULT_CLOSE:
        break;
    case SA_FAULT_NO_REPLY:
        stay_silent(p, stop);
        break;
    case SA_FAULT_OVERSIZED: {
        uint8_t big[8 + 64] = {0};
        put_be32(big, SA_MAGIC);
        put_be32(big + 4, SA_OVERSIZED_LEN);
        peer_write(p, big, sizeof big);
        break;
    }
    case SA_FAULT_ERROR:
        send_json(p, json_pack("{s:s}", "Error", "backend unavailable (test fault)"), SA_MAGIC);
        break;
    default:
        if (!value) {
            send_json(p, json_pack("{s:s}", "Error", "secret not found"), SA_MAGIC);
        } else {
            char *enc = c->base64 ? b64(value) : NULL;
            send_json(p, json_pack("{s:s}", "SecretValue", enc ? enc : value),
                      c->fault == SA_FAULT_WRONG_MAGIC ? 0xDEADBEEFu : SA_MAGIC);
            free(enc);
        }
    }
    json_decref(req);
}

static void handle(int fd, struct sa_config *c, const volatile bool *stop)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct peer p = {.fd = fd};
    if (c->tls) {
        p.ssl = SSL_new(c->tls);
        if (!p.ssl || SSL_set_fd(p.ssl, fd) != 1 || SSL_accept(p.ssl) != 1) {
            ERR_clear_error();
            SSL_free(p.ssl);
            close(fd);
            return;
        }
    }
    answer(&p, c, stop);
    if (p.ssl) {
        SSL_shutdown(p.ssl);
        SSL_free(p.ssl);
    }
    ERR_clear_error();
    close(fd);
}

void sa_serve(int listen_fd, struct sa_config *c, const volatile bool *stop)
{
    while (!*stop) {
        struct pollfd pf = {.fd = listen_fd, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            handle(fd, c, stop);
    }
}
