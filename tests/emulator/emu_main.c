/*
 * emu_main.c - the `aerospike-emulator` executable: command line, one loopback listening
 * socket per emulated node, one thread per client connection, clean shutdown on
 * SIGINT/SIGTERM.
 *
 * A connection reads proto frames (8-byte header, then the body) and dispatches on the type:
 * info (1) to emu_info.c, AS_MSG (3) to emu_msg.c, admin (2) to emu_sec.c (without users:
 * result 51 like Community, or 52 with --enterprise); compressed (4) like CE (type-3 reply,
 * result 25). A header that does not decode (version != 2, unknown type, body over 128 MiB)
 * makes the emulator close the connection without a reply, as the real server does.
 *
 * TLS (--tls-port): each node also listens on a TLS port; the handshake runs in the
 * connection's thread (OpenSSL server context from --tls-cert/--tls-key, client certificates
 * required and verified when --tls-ca is given, --tls-protocols / --tls-cipher-suite
 * restrict the handshake). The subject CN of a verified client certificate is the PKI user.
 *
 * Nodes can be stopped and restarted (emulator-node-stop/-start): the main loop owns the
 * listening sockets, so an info thread asks it through a pipe and waits for the change.
 *
 * Usage: see usage() and README.md. --port defaults to 3000 (node i listens on port + i);
 * --port 0 picks free ports. The listening ports are printed on stdout on one line (space
 * separated; TLS ports on a second line "tls P1 P2..."), and written one per line to
 * --port-file (clear ports, then TLS ports; atomically, after every node listens; removed at
 * exit).
 */
#include "emu.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct conn_slot {
    pthread_t tid;
    int fd;
    bool done;
    bool tls;
    struct emu_cluster *c;
    struct emu_node *node;
    struct emu_conn *conn; /* while the thread runs (under g_conns_lock) */
    struct conn_slot *next;
};

static pthread_mutex_t g_conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn_slot *g_conns;
static int g_wake[2] = { -1, -1 };
static SSL_CTX *g_tls;
atomic_bool emu_stopping;

/* node stop/start requests from info threads to the main loop */
static pthread_mutex_t g_ctl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_ctl_cv = PTHREAD_COND_INITIALIZER;
static int g_ctl[2] = { -1, -1 };
static struct {
    bool pending;
    unsigned idx;
    bool up;
    int result;
} g_ctl_req;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (g_wake[1] >= 0) {
        ssize_t w = write(g_wake[1], "x", 1);
        (void)w;
    }
    errno = saved;
}

int emu_send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int emu_conn_send(struct emu_conn *conn, const void *p, size_t n)
{
    if (!conn->ssl)
        return emu_send_all(conn->fd, p, n);
    const uint8_t *b = p;
    while (n > 0) {
        size_t w = 0;
        if (SSL_write_ex(conn->ssl, b, n, &w) != 1)
            return -1;
        b += w;
        n -= w;
    }
    return 0;
}

/* 1 = got n bytes, 0 = clean EOF before the first byte, -1 = error / EOF inside. */
static int recv_all(struct emu_conn *conn, void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        if (conn->ssl) {
            size_t r = 0;
            if (SSL_read_ex(conn->ssl, b + got, n - got, &r) != 1)
                return got == 0 && SSL_get_error(conn->ssl, 0) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
            got += r;
            continue;
        }
        ssize_t r = recv(conn->fd, b + got, n - got, 0);
        if (r == 0)
            return got == 0 ? 0 : -1;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 1;
}

static void reply_simple(struct emu_conn *conn, uint8_t type, const uint8_t *body, size_t len)
{
    uint8_t hdr[AS_PROTO_HEADER_SIZE];
    as_proto_header_encode(hdr, type, len);
    if (emu_conn_send(conn, hdr, sizeof hdr) == 0)
        emu_conn_send(conn, body, len);
}

/* Server side of the handshake; records the verified client certificate's CN. */
static int tls_accept(struct emu_conn *conn)
{
    SSL *ssl = SSL_new(g_tls);
    if (!ssl)
        return -1;
    conn->ssl = ssl;
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(conn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (SSL_set_fd(ssl, conn->fd) != 1 || SSL_accept(ssl) != 1) {
        if (conn->c->verbose) {
            char msg[256];
            ERR_error_string_n(ERR_peek_last_error(), msg, sizeof msg);
            fprintf(stderr, "emulator: TLS handshake failed: %s\n", msg);
        }
        ERR_clear_error();
        return -1;
    }
    tv.tv_sec = 0;
    setsockopt(conn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    pthread_mutex_lock(&conn->c->meta);
    snprintf(conn->c->last_sni, sizeof conn->c->last_sni, "%s", sni ? sni : "");
    pthread_mutex_unlock(&conn->c->meta);
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer && SSL_get_verify_result(ssl) == X509_V_OK)
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, conn->peer_cn,
                                  sizeof conn->peer_cn);
    return 0;
}

/* A body made only of emulator-* commands: test knobs answer without a login. */
static bool only_knobs(const uint8_t *body, size_t len)
{
    const char *p = (const char *)body, *end = p + len;
    if (len == 0)
        return false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (ll < 9 || memcmp(p, "emulator-", 9) != 0)
            return false;
        p += ll + 1;
    }
    return true;
}

/* Records a request (not the knobs) for emulator-info-log: "<conn>:<cmd>|<cmd>...;". */
static void log_info_request(struct emu_conn *conn, const uint8_t *body, size_t len)
{
    struct emu_cluster *c = conn->c;
    if (only_knobs(body, len))
        return;
    pthread_mutex_lock(&c->meta);
    if (c->info_log.len < 256 * 1024) {
        char id[16];
        int n = snprintf(id, sizeof id, "%u:", conn->id);
        as_buf_append(&c->info_log, id, (size_t)n);
        for (size_t i = 0; i < len; i++) {
            char ch = (char)body[i];
            if (ch == '\n' && i + 1 == len)
                break;
            ch = ch == '\n' ? '|' : ch == ';' || ch == '\t' ? ' ' : ch;
            as_buf_append(&c->info_log, &ch, 1);
        }
        as_buf_append(&c->info_log, ";", 1);
    }
    pthread_mutex_unlock(&c->meta);
}

static void handle_info(struct emu_conn *conn, const uint8_t *body, size_t len)
{
    atomic_fetch_add(&conn->c->n_infos, 1);
    log_info_request(conn, body, len);
    as_buf_reset(&conn->out);
    size_t off = as_proto_begin(&conn->out, AS_PROTO_INFO);
    if (emu_sec_check(conn, 0) != 0 && !only_knobs(body, len)) {
        const char *m = "ERROR:80:not authenticated\n"; /* the whole reply, no command echo */
        as_buf_append(&conn->out, m, strlen(m));
    } else {
        emu_info_handle(conn, (const char *)body, len, &conn->out);
    }
    struct err e;
    if (as_proto_end(&conn->out, off, &e) != 0 ||
        emu_conn_send(conn, conn->out.data, conn->out.len) != 0)
        conn->close_now = true;
}

static void handle_admin(struct emu_conn *conn, const uint8_t *body, size_t len)
{
    as_buf_reset(&conn->out);
    size_t off = as_proto_begin(&conn->out, AS_PROTO_ADMIN);
    emu_sec_admin(conn, body, len, &conn->out);
    struct err e;
    if (as_proto_end(&conn->out, off, &e) != 0 ||
        emu_conn_send(conn, conn->out.data, conn->out.len) != 0)
        conn->close_now = true;
}

static void *conn_main(void *arg)
{
    struct conn_slot *slot = arg;
    struct emu_conn conn = { .fd = slot->fd, .c = slot->c, .node = slot->node, .user = -1,
                             .id = atomic_fetch_add(&slot->c->next_conn_id, 1) };
    as_buf_init(&conn.out);
    uint8_t *body = NULL;
    size_t body_cap = 0;
    pthread_mutex_lock(&g_conns_lock);
    slot->conn = &conn;
    pthread_mutex_unlock(&g_conns_lock);
    if (slot->tls && tls_accept(&conn) != 0)
        goto out;
    for (;;) {
        uint8_t hdr[AS_PROTO_HEADER_SIZE];
        int r = recv_all(&conn, hdr, sizeof hdr);
        if (r <= 0)
            break;
        struct as_proto_header ph;
        struct err e;
        if (as_proto_header_decode(hdr, &ph, &e) != 0) {
            if (conn.c->verbose)
                fprintf(stderr, "emulator: closing connection: %s\n", e.msg);
            break;
        }
        if (ph.size > body_cap) {
            uint8_t *nb = realloc(body, ph.size);
            if (!nb)
                break;
            body = nb;
            body_cap = ph.size;
        }
        if (ph.size > 0 && recv_all(&conn, body, ph.size) != 1)
            break;
        if (ph.type == AS_PROTO_INFO) {
            handle_info(&conn, body, ph.size);
        } else if (ph.type == AS_PROTO_ADMIN) {
            handle_admin(&conn, body, ph.size);
        } else if (ph.type == AS_PROTO_COMPRESSED) {
            uint8_t m[AS_MSG_HEADER_SIZE] = { AS_MSG_HEADER_SIZE, 0, 0, 0, 0, AS_ERR_ENTERPRISE_ONLY };
            reply_simple(&conn, AS_PROTO_MSG, m, sizeof m);
        } else {
            if (emu_msg_handle(&conn, body, ph.size) != 0)
                break;
        }
        if (conn.close_now)
            break;
    }
out:
    free(body);
    as_buf_free(&conn.out);
    shutdown(conn.fd, SHUT_RDWR);
    pthread_mutex_lock(&g_conns_lock);
    slot->done = true;
    slot->conn = NULL;
    if (conn.ssl)
        SSL_free(conn.ssl);
    pthread_mutex_unlock(&g_conns_lock);
    return NULL;
}

void emu_user_agents(struct emu_cluster *c, struct as_buf *out)
{
    struct { char ua[96]; unsigned n; } seen[64];
    unsigned ns = 0;
    pthread_mutex_lock(&g_conns_lock);
    for (struct conn_slot *s = g_conns; s; s = s->next) {
        if (s->done || !s->conn || s->c != c || !s->conn->user_agent[0])
            continue;
        unsigned i = 0;
        while (i < ns && strcmp(seen[i].ua, s->conn->user_agent) != 0)
            i++;
        if (i == ns) {
            if (ns == 64)
                continue;
            memcpy(seen[ns].ua, s->conn->user_agent, sizeof seen[ns].ua);
            seen[ns++].n = 0;
        }
        seen[i].n++;
    }
    pthread_mutex_unlock(&g_conns_lock);
    for (unsigned i = 0; i < ns; i++) {
        char line[160];
        int n = snprintf(line, sizeof line, "user-agent=%s:count=%u;", seen[i].ua, seen[i].n);
        if (n > 0)
            as_buf_append(out, line, (size_t)n);
    }
}

void emu_conn_set_user_agent(struct emu_conn *conn, const char *b64, size_t len)
{
    pthread_mutex_lock(&g_conns_lock);
    size_t k = len < sizeof conn->user_agent - 1 ? len : sizeof conn->user_agent - 1;
    memcpy(conn->user_agent, b64, k);
    conn->user_agent[k] = '\0';
    pthread_mutex_unlock(&g_conns_lock);
}

/* Joins finished connection threads (all of them, after shutting their sockets, when `all`). */
static void reap_conns(bool all)
{
    pthread_mutex_lock(&g_conns_lock);
    if (all)
        for (struct conn_slot *s = g_conns; s; s = s->next)
            shutdown(s->fd, SHUT_RDWR);
    struct conn_slot **pp = &g_conns;
    while (*pp) {
        struct conn_slot *s = *pp;
        if (s->done || all) {
            *pp = s->next;
            pthread_mutex_unlock(&g_conns_lock);
            pthread_join(s->tid, NULL);
            close(s->fd);
            free(s);
            pthread_mutex_lock(&g_conns_lock);
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&g_conns_lock);
}

static void accept_one(struct emu_cluster *c, struct emu_node *node, bool tls)
{
    int fd = accept4(tls ? node->tls_listen_fd : node->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn_slot *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return;
    }
    s->fd = fd;
    s->c = c;
    s->node = node;
    s->tls = tls;
    pthread_mutex_lock(&g_conns_lock);
    s->next = g_conns;
    g_conns = s;
    if (pthread_create(&s->tid, NULL, conn_main, s) != 0) {
        g_conns = s->next;
        pthread_mutex_unlock(&g_conns_lock);
        close(fd);
        free(s);
        return;
    }
    pthread_mutex_unlock(&g_conns_lock);
}

static int listen_port(int port, int *fd_out, int *port_out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 512) != 0) {
        close(fd);
        return -1;
    }
    socklen_t alen = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fd);
        return -1;
    }
    *fd_out = fd;
    *port_out = ntohs(a.sin_port);
    return 0;
}

static int node_listen(struct emu_cluster *c, struct emu_node *n, int port, int tls_port)
{
    if (listen_port(port, &n->listen_fd, &n->port) != 0)
        return -1;
    if (c->tls && listen_port(tls_port, &n->tls_listen_fd, &n->tls_port) != 0) {
        close(n->listen_fd);
        n->listen_fd = -1;
        return -1;
    }
    return 0;
}

static void node_unlisten(struct emu_node *n)
{
    if (n->listen_fd >= 0)
        close(n->listen_fd);
    if (n->tls_listen_fd >= 0)
        close(n->tls_listen_fd);
    n->listen_fd = n->tls_listen_fd = -1;
}

int emu_node_set_up(struct emu_cluster *c, unsigned idx, bool up)
{
    if (idx >= c->n_nodes)
        return -1;
    pthread_mutex_lock(&g_ctl_mu);
    while (g_ctl_req.pending)
        pthread_cond_wait(&g_ctl_cv, &g_ctl_mu);
    g_ctl_req.pending = true;
    g_ctl_req.idx = idx;
    g_ctl_req.up = up;
    g_ctl_req.result = 1;
    ssize_t w = write(g_ctl[1], "n", 1);
    (void)w;
    while (g_ctl_req.result == 1)
        pthread_cond_wait(&g_ctl_cv, &g_ctl_mu);
    int rc = g_ctl_req.result;
    g_ctl_req.pending = false;
    pthread_cond_broadcast(&g_ctl_cv);
    pthread_mutex_unlock(&g_ctl_mu);
    return rc;
}

/* Main loop side of emu_node_set_up(): the node's sockets, ownership, peers generation. */
static void apply_node_change(struct emu_cluster *c)
{
    char drain[16];
    ssize_t r = read(g_ctl[0], drain, sizeof drain);
    (void)r;
    pthread_mutex_lock(&g_ctl_mu);
    if (!g_ctl_req.pending || g_ctl_req.result != 1) {
        pthread_mutex_unlock(&g_ctl_mu);
        return;
    }
    struct emu_node *n = &c->nodes[g_ctl_req.idx];
    bool up = g_ctl_req.up;
    int rc = 0;
    if (atomic_load(&n->up) == up || (!up && emu_nodes_up(c) <= 1))
        rc = -1;
    else if (up && node_listen(c, n, n->port, n->tls_port) != 0)
        rc = -1;
    if (rc == 0) {
        if (!up)
            node_unlisten(n);
        pthread_mutex_lock(&c->meta);
        atomic_store(&n->up, up);
        emu_rebalance_locked(c);
        c->peers_gen++;
        pthread_mutex_unlock(&c->meta);
        if (!up) { /* a stopped node's clients see their connections drop */
            pthread_mutex_lock(&g_conns_lock);
            for (struct conn_slot *s = g_conns; s; s = s->next)
                if (s->node == n && !s->done)
                    shutdown(s->fd, SHUT_RDWR);
            pthread_mutex_unlock(&g_conns_lock);
        }
        if (c->verbose)
            fprintf(stderr, "emulator: node %u %s\n", n->idx, up ? "started" : "stopped");
    }
    g_ctl_req.result = rc;
    pthread_cond_broadcast(&g_ctl_cv);
    pthread_mutex_unlock(&g_ctl_mu);
}

static int write_port_file(const char *path, const struct emu_cluster *c)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    for (unsigned i = 0; i < c->n_nodes; i++)
        fprintf(f, "%d\n", c->nodes[i].port);
    for (unsigned i = 0; c->tls && i < c->n_nodes; i++)
        fprintf(f, "%d\n", c->nodes[i].tls_port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* "1,2,10-20" into the unavailable bitmap. */
static int parse_pid_list(const char *s, uint8_t *bits)
{
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s || a < 0 || a >= AS_PARTITIONS)
            return -1;
        if (*end == '-') {
            const char *q = end + 1;
            b = strtol(q, &end, 10);
            if (end == q || b < a || b >= AS_PARTITIONS)
                return -1;
        }
        for (long p = a; p <= b; p++)
            bits[p >> 3] |= (uint8_t)(0x80 >> (p & 7));
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        s = end;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aerospike-emulator [--port N] [--nodes N] [--namespace NAME[:RF]]...\n"
            "       [--port-file PATH] [--cluster-name NAME] [--chunk-size BYTES]\n"
            "       [--fault-close-after-records N] [--fault-delay-ms N]\n"
            "       [--fault-unavailable PID[-PID][,...]] [--load-asb FILE]...\n"
            "       [--generate NS:COUNT[:SET[:BYTES]]]... [--verbose]\n"
            "       [--user NAME:PASSWORD[:ROLE,...]]... [--session-ttl SECONDS] [--enterprise]\n"
            "       [--tls-port N] [--tls-cert PEM] [--tls-key PEM] [--tls-ca PEM]\n"
            "       [--tls-name NAME[,NAME...]] [--tls-protocols LIST] [--tls-cipher-suite LIST]\n"
            "       [--alt-host HOST] [--racks ID,ID,...]\n");
}

static long parse_long(const char *s, long min, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        return min - 1;
    return v;
}

/* --racks 1,1,2: rack id of node 0, 1, 2... (nodes not listed stay in rack 0). */
static int set_racks(struct emu_cluster *c, const char *list)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    unsigned i = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long id = parse_long(t, 0, 1000000);
        if (id < 0 || i >= c->n_nodes)
            return -1;
        c->nodes[i++].rack_id = (int)id;
    }
    return i ? 0 : -1;
}

struct tls_opts {
    const char *cert, *key, *ca, *protocols, *ciphers;
};

static int tls_version(const char *tok, size_t len)
{
    if (len == 7 && strncmp(tok, "TLSv1.2", 7) == 0)
        return TLS1_2_VERSION;
    if (len == 7 && strncmp(tok, "TLSv1.3", 7) == 0)
        return TLS1_3_VERSION;
    if (len == 7 && strncmp(tok, "TLSv1.1", 7) == 0)
        return TLS1_1_VERSION;
    if (len == 5 && strncmp(tok, "TLSv1", 5) == 0)
        return TLS1_VERSION;
    return 0;
}

/* "TLSv1.2 TLSv1.3" -> the min..max range. */
static int tls_set_protocols(SSL_CTX *ctx, const char *spec)
{
    int lo = 0, hi = 0;
    for (const char *p = spec; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *t = p;
        while (*p && *p != ' ' && *p != ',')
            p++;
        if (p == t)
            break;
        int v = tls_version(t, (size_t)(p - t));
        if (!v)
            return -1;
        if (!lo || v < lo)
            lo = v;
        if (v > hi)
            hi = v;
    }
    if (!lo)
        return -1;
    return SSL_CTX_set_min_proto_version(ctx, lo) == 1 && SSL_CTX_set_max_proto_version(ctx, hi) == 1
               ? 0 : -1;
}

static SSL_CTX *tls_server_ctx(const struct tls_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    const char *what = "certificate";
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1)
        goto fail;
    what = "key";
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    if (o->ca) {
        what = "CA";
        if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1)
            goto fail;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    what = "protocols";
    if (o->protocols && tls_set_protocols(ctx, o->protocols) != 0)
        goto fail;
    if (o->ciphers) {
        what = "cipher suite";
        int ok12 = SSL_CTX_set_cipher_list(ctx, o->ciphers);
        int ok13 = strncmp(o->ciphers, "TLS_", 4) == 0 ? SSL_CTX_set_ciphersuites(ctx, o->ciphers) : 0;
        if (!ok12 && !ok13)
            goto fail;
    }
    ERR_clear_error();
    return ctx;
fail:
    fprintf(stderr, "aerospike-emulator: TLS %s: ", what);
    ERR_print_errors_fp(stderr);
    fprintf(stderr, "\n");
    SSL_CTX_free(ctx);
    return NULL;
}

/* --tls-name "a" (every node) or "a,b,..." (node by node). */
static void set_tls_names(struct emu_cluster *c, const char *names)
{
    const char *p = names;
    for (unsigned i = 0; i < c->n_nodes; i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len >= sizeof c->nodes[i].tls_name)
            len = sizeof c->nodes[i].tls_name - 1;
        memcpy(c->nodes[i].tls_name, p, len);
        c->nodes[i].tls_name[len] = '\0';
        if (comma)
            p = comma + 1;
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "nodes", required_argument, NULL, 'n' },
        { "namespace", required_argument, NULL, 's' },
        { "port-file", required_argument, NULL, 'f' },
        { "cluster-name", required_argument, NULL, 'c' },
        { "chunk-size", required_argument, NULL, 'k' },
        { "fault-close-after-records", required_argument, NULL, 1 },
        { "fault-delay-ms", required_argument, NULL, 2 },
        { "fault-unavailable", required_argument, NULL, 3 },
        { "user", required_argument, NULL, 4 },
        { "session-ttl", required_argument, NULL, 5 },
        { "enterprise", no_argument, NULL, 6 },
        { "tls-port", required_argument, NULL, 7 },
        { "tls-cert", required_argument, NULL, 8 },
        { "tls-key", required_argument, NULL, 9 },
        { "tls-ca", required_argument, NULL, 10 },
        { "tls-name", required_argument, NULL, 11 },
        { "tls-protocols", required_argument, NULL, 12 },
        { "tls-cipher-suite", required_argument, NULL, 13 },
        { "alt-host", required_argument, NULL, 14 },
        { "racks", required_argument, NULL, 15 },
        { "load-asb", required_argument, NULL, 'l' },
        { "generate", required_argument, NULL, 'g' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    long port = 3000, nodes = 1, chunk = 128 * 1024, close_after = 0, delay = 0;
    long tls_port = -1, session_ttl = 86400;
    const char *port_file = NULL, *cluster_name = NULL, *tls_names = NULL, *alt_host = NULL;
    const char *racks = NULL;
    struct tls_opts tls = { 0 };
    const char *ns_specs[EMU_MAX_NS];
    const char *loads[16], *gens[16], *users[EMU_MAX_USERS];
    unsigned n_loads = 0, n_gens = 0, n_users = 0;
    unsigned n_specs = 0;
    uint8_t unavailable[AS_PARTITIONS / 8] = { 0 };
    bool verbose = false, enterprise = false;
    int o;
    while ((o = getopt_long(argc, argv, "p:n:s:f:c:k:vh", opts, NULL)) != -1) {
        switch (o) {
        case 'p': port = parse_long(optarg, 0, 65535); if (port < 0) goto bad; break;
        case 'n': nodes = parse_long(optarg, 1, EMU_MAX_NODES); if (nodes < 1) goto bad; break;
        case 's':
            if (n_specs >= EMU_MAX_NS)
                goto bad;
            ns_specs[n_specs++] = optarg;
            break;
        case 'f': port_file = optarg; break;
        case 'c': cluster_name = optarg; break;
        case 'k': chunk = parse_long(optarg, 64, 64L * 1024 * 1024); if (chunk < 64) goto bad; break;
        case 1: close_after = parse_long(optarg, 0, 1L << 40); if (close_after < 0) goto bad; break;
        case 2: delay = parse_long(optarg, 0, 600000); if (delay < 0) goto bad; break;
        case 3: if (parse_pid_list(optarg, unavailable) != 0) goto bad; break;
        case 4:
            if (n_users >= EMU_MAX_USERS)
                goto bad;
            users[n_users++] = optarg;
            break;
        case 5: session_ttl = parse_long(optarg, 1, 1L << 30); if (session_ttl < 1) goto bad; break;
        case 6: enterprise = true; break;
        case 7: tls_port = parse_long(optarg, 0, 65535); if (tls_port < 0) goto bad; break;
        case 8: tls.cert = optarg; break;
        case 9: tls.key = optarg; break;
        case 10: tls.ca = optarg; break;
        case 11: tls_names = optarg; break;
        case 12: tls.protocols = optarg; break;
        case 13: tls.ciphers = optarg; break;
        case 14: alt_host = optarg; break;
        case 15: racks = optarg; break;
        case 'l':
            if (n_loads >= 16)
                goto bad;
            loads[n_loads++] = optarg;
            break;
        case 'g':
            if (n_gens >= 16)
                goto bad;
            gens[n_gens++] = optarg;
            break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return 0;
        default: goto bad;
        }
    }
    if (optind != argc)
        goto bad;
    if (port != 0 && port + nodes - 1 > 65535)
        goto bad;
    if (tls_port > 0 && tls_port + nodes - 1 > 65535)
        goto bad;
    if (tls_port >= 0 && (!tls.cert || !tls.key)) {
        fprintf(stderr, "aerospike-emulator: --tls-port needs --tls-cert and --tls-key\n");
        return 2;
    }

    struct emu_cluster *c = calloc(1, sizeof *c);
    if (!c || emu_cluster_init(c, (unsigned)nodes) != 0) {
        fprintf(stderr, "aerospike-emulator: out of memory\n");
        free(c);
        return 1;
    }
    c->chunk_size = (size_t)chunk;
    c->verbose = verbose;
    c->faults.close_after_records = close_after;
    c->faults.delay_ms = delay;
    memcpy(c->faults.unavailable, unavailable, sizeof unavailable);
    if (cluster_name)
        snprintf(c->cluster_name, sizeof c->cluster_name, "%s", cluster_name);
    if (alt_host)
        snprintf(c->alt_host, sizeof c->alt_host, "%s", alt_host);
    if (racks && set_racks(c, racks) != 0) {
        fprintf(stderr, "aerospike-emulator: --racks wants one rack id (0..1000000) per node\n");
        emu_cluster_free(c);
        free(c);
        return 2;
    }
    c->sec.enterprise = enterprise;
    c->sec.session_ttl = (uint32_t)session_ttl;
    for (unsigned i = 0; i < n_users; i++) {
        const char *why = "";
        if (emu_sec_add_user(&c->sec, users[i], &why) != 0) {
            fprintf(stderr, "aerospike-emulator: --user: %s\n", why);
            emu_cluster_free(c);
            free(c);
            return 2;
        }
    }
    if (tls_port >= 0) {
        g_tls = tls_server_ctx(&tls);
        if (!g_tls) {
            emu_cluster_free(c);
            free(c);
            return 2;
        }
        c->tls = true;
        if (tls_names)
            set_tls_names(c, tls_names);
    }
    if (n_specs == 0)
        ns_specs[n_specs++] = "test";
    for (unsigned i = 0; i < n_specs; i++) {
        if (emu_cluster_add_ns(c, ns_specs[i]) != 0) {
            fprintf(stderr, "aerospike-emulator: bad or duplicate namespace '%s'\n", ns_specs[i]);
            emu_cluster_free(c);
            free(c);
            return 2;
        }
    }

    if (pipe2(g_wake, O_CLOEXEC) != 0 || pipe2(g_ctl, O_CLOEXEC) != 0)
        return 1; /* before loading, so a signal during a long load is not fatal */
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (unsigned i = 0; i < n_loads; i++) {
        struct err e;
        if (emu_load_asb(c, loads[i], &e) != 0) {
            fprintf(stderr, "aerospike-emulator: --load-asb %s\n", e.msg);
            emu_cluster_free(c);
            free(c);
            return 2;
        }
    }

    for (unsigned i = 0; i < n_gens; i++) {
        struct err e;
        if (emu_generate(c, gens[i], &e) != 0) {
            fprintf(stderr, "aerospike-emulator: --generate %s: %s\n", gens[i], e.msg);
            emu_cluster_free(c);
            free(c);
            return 2;
        }
    }

    for (unsigned i = 0; i < c->n_nodes; i++) {
        if (node_listen(c, &c->nodes[i], port ? (int)(port + i) : 0,
                        tls_port > 0 ? (int)(tls_port + i) : 0) != 0) {
            fprintf(stderr, "aerospike-emulator: cannot listen on 127.0.0.1:%ld: %s\n",
                    port ? port + i : 0, strerror(errno));
            return 1;
        }
    }

    for (unsigned i = 0; i < c->n_nodes; i++)
        printf("%s%d", i ? " " : "", c->nodes[i].port);
    printf("\n");
    if (c->tls) {
        printf("tls");
        for (unsigned i = 0; i < c->n_nodes; i++)
            printf(" %d", c->nodes[i].tls_port);
        printf("\n");
    }
    fflush(stdout);
    if (port_file && write_port_file(port_file, c) != 0) {
        fprintf(stderr, "aerospike-emulator: cannot write %s: %s\n", port_file, strerror(errno));
        return 1;
    }
    if (verbose)
        for (unsigned i = 0; i < c->n_nodes; i++)
            fprintf(stderr, "emulator: node %" PRIX64 " on 127.0.0.1:%d\n", c->nodes[i].id,
                    c->nodes[i].port);

    struct pollfd pfd[2 * EMU_MAX_NODES + 2];
    struct { struct emu_node *node; bool tls; } who[2 * EMU_MAX_NODES + 2];
    for (;;) {
        unsigned n = 0;
        pfd[n++] = (struct pollfd){ .fd = g_wake[0], .events = POLLIN };
        pfd[n++] = (struct pollfd){ .fd = g_ctl[0], .events = POLLIN };
        for (unsigned i = 0; i < c->n_nodes; i++) {
            struct emu_node *nd = &c->nodes[i];
            if (nd->listen_fd >= 0) {
                who[n].node = nd;
                who[n].tls = false;
                pfd[n++] = (struct pollfd){ .fd = nd->listen_fd, .events = POLLIN };
            }
            if (nd->tls_listen_fd >= 0) {
                who[n].node = nd;
                who[n].tls = true;
                pfd[n++] = (struct pollfd){ .fd = nd->tls_listen_fd, .events = POLLIN };
            }
        }
        int r = poll(pfd, n, 200);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && (pfd[0].revents & POLLIN))
            break;
        for (unsigned i = 2; r > 0 && i < n; i++)
            if (pfd[i].revents & POLLIN)
                accept_one(c, who[i].node, who[i].tls);
        if (r > 0 && (pfd[1].revents & POLLIN))
            apply_node_change(c);
        reap_conns(false);
    }
    atomic_store(&emu_stopping, true);
    for (unsigned i = 0; i < c->n_nodes; i++)
        node_unlisten(&c->nodes[i]);
    reap_conns(true);
    if (port_file)
        unlink(port_file);
    emu_cluster_free(c);
    free(c);
    SSL_CTX_free(g_tls);
    close(g_wake[0]);
    close(g_wake[1]);
    close(g_ctl[0]);
    close(g_ctl[1]);
    return 0;

bad:
    usage(stderr);
    return 2;
}
