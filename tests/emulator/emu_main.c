/*
 * emu_main.c - the `aerospike-emulator` executable: command line, one loopback listening
 * socket per emulated node, one thread per client connection, clean shutdown on
 * SIGINT/SIGTERM.
 *
 * A connection reads proto frames (8-byte header, then the body) and dispatches on the type:
 * info (1) to emu_info.c, AS_MSG (3) to emu_msg.c; admin (2) is answered like a Community
 * server without security (result 51); compressed (4) like CE (type-3 reply, result 25).
 * A header that does not decode (version != 2, unknown type, body over 128 MiB) makes the
 * emulator close the connection without a reply, as the real server does.
 *
 * Usage: aerospike-emulator [--port N] [--nodes N] [--namespace NAME[:RF]]... [--port-file PATH]
 *        [--cluster-name NAME] [--chunk-size BYTES] [--fault-close-after-records N]
 *        [--fault-delay-ms N] [--fault-unavailable PID[,PID|-PID...]] [--load-asb FILE]...
 *        [--generate NS:COUNT[:SET[:BYTES]]]... [--verbose]
 * --port defaults to 3000 (node i listens on port + i); --port 0 picks free ports. The listening
 * ports are printed on stdout on one line (space separated), and written one per line to
 * --port-file (atomically, after every node listens; removed at exit).
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
#include <unistd.h>

struct conn_slot {
    pthread_t tid;
    int fd;
    bool done;
    struct emu_cluster *c;
    struct emu_node *node;
    struct conn_slot *next;
};

static pthread_mutex_t g_conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn_slot *g_conns;
static int g_wake[2] = { -1, -1 };
atomic_bool emu_stopping;

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

/* 1 = got n bytes, 0 = clean EOF before the first byte, -1 = error / EOF inside. */
static int recv_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, b + got, n - got, 0);
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
    if (emu_send_all(conn->fd, hdr, sizeof hdr) == 0)
        emu_send_all(conn->fd, body, len);
}

static void *conn_main(void *arg)
{
    struct conn_slot *slot = arg;
    struct emu_conn conn = { .fd = slot->fd, .c = slot->c, .node = slot->node };
    as_buf_init(&conn.out);
    uint8_t *body = NULL;
    size_t body_cap = 0;
    for (;;) {
        uint8_t hdr[AS_PROTO_HEADER_SIZE];
        int r = recv_all(conn.fd, hdr, sizeof hdr);
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
        if (ph.size > 0 && recv_all(conn.fd, body, ph.size) != 1)
            break;
        if (ph.type == AS_PROTO_INFO) {
            atomic_fetch_add(&conn.c->n_infos, 1);
            as_buf_reset(&conn.out);
            size_t off = as_proto_begin(&conn.out, AS_PROTO_INFO);
            emu_info_handle(conn.c, conn.node, (const char *)body, ph.size, &conn.out);
            if (as_proto_end(&conn.out, off, &e) != 0 ||
                emu_send_all(conn.fd, conn.out.data, conn.out.len) != 0)
                break;
        } else if (ph.type == AS_PROTO_ADMIN) {
            uint8_t sec[16] = { 0, AS_SEC_ERR_NOT_SUPPORTED };
            reply_simple(&conn, AS_PROTO_ADMIN, sec, sizeof sec);
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
    free(body);
    as_buf_free(&conn.out);
    shutdown(conn.fd, SHUT_RDWR);
    pthread_mutex_lock(&g_conns_lock);
    slot->done = true;
    pthread_mutex_unlock(&g_conns_lock);
    return NULL;
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

static void accept_one(struct emu_cluster *c, struct emu_node *node)
{
    int fd = accept4(node->listen_fd, NULL, NULL, SOCK_CLOEXEC);
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

static int listen_on(struct emu_node *node, int port)
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
    node->listen_fd = fd;
    node->port = ntohs(a.sin_port);
    return 0;
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
            "       [--generate NS:COUNT[:SET[:BYTES]]]... [--verbose]\n");
}

static long parse_long(const char *s, long min, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        return min - 1;
    return v;
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
        { "load-asb", required_argument, NULL, 'l' },
        { "generate", required_argument, NULL, 'g' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    long port = 3000, nodes = 1, chunk = 128 * 1024, close_after = 0, delay = 0;
    const char *port_file = NULL, *cluster_name = NULL;
    const char *ns_specs[EMU_MAX_NS];
    const char *loads[16], *gens[16];
    unsigned n_loads = 0, n_gens = 0;
    unsigned n_specs = 0;
    uint8_t unavailable[AS_PARTITIONS / 8] = { 0 };
    bool verbose = false;
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

    if (pipe2(g_wake, O_CLOEXEC) != 0)
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
        if (listen_on(&c->nodes[i], port ? (int)(port + i) : 0) != 0) {
            fprintf(stderr, "aerospike-emulator: cannot listen on 127.0.0.1:%ld: %s\n",
                    port ? port + i : 0, strerror(errno));
            return 1;
        }
    }

    for (unsigned i = 0; i < c->n_nodes; i++)
        printf("%s%d", i ? " " : "", c->nodes[i].port);
    printf("\n");
    fflush(stdout);
    if (port_file && write_port_file(port_file, c) != 0) {
        fprintf(stderr, "aerospike-emulator: cannot write %s: %s\n", port_file, strerror(errno));
        return 1;
    }
    if (verbose)
        for (unsigned i = 0; i < c->n_nodes; i++)
            fprintf(stderr, "emulator: node %" PRIX64 " on 127.0.0.1:%d\n", c->nodes[i].id,
                    c->nodes[i].port);

    struct pollfd pfd[EMU_MAX_NODES + 1];
    for (;;) {
        unsigned n = 0;
        pfd[n++] = (struct pollfd){ .fd = g_wake[0], .events = POLLIN };
        for (unsigned i = 0; i < c->n_nodes; i++)
            pfd[n++] = (struct pollfd){ .fd = c->nodes[i].listen_fd, .events = POLLIN };
        int r = poll(pfd, n, 200);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && (pfd[0].revents & POLLIN))
            break;
        for (unsigned i = 1; r > 0 && i < n; i++)
            if (pfd[i].revents & POLLIN)
                accept_one(c, &c->nodes[i - 1]);
        reap_conns(false);
    }
    atomic_store(&emu_stopping, true);
    for (unsigned i = 0; i < c->n_nodes; i++)
        close(c->nodes[i].listen_fd);
    reap_conns(true);
    if (port_file)
        unlink(port_file);
    emu_cluster_free(c);
    free(c);
    close(g_wake[0]);
    close(g_wake[1]);
    return 0;

bad:
    usage(stderr);
    return 2;
}
