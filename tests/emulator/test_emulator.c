/*
 * test_emulator.c - end-to-end tests of the aerospike-emulator executable over loopback
 * sockets, using only the as_proto codec as a client.
 *
 * Each test starts its own emulator (argv[1] is its path), reads the port from --port-file,
 * talks the protocol, and stops it with SIGTERM expecting a clean exit (so sanitizer builds
 * also check the emulator for leaks). Covered: info grammar, writes/reads with every exists
 * and generation policy and the real result codes, scans (sets, bin lists, no-bin data, max
 * records, partition lists, resume after digest, filter expressions), batch writes, two nodes
 * (peers, replicas, unavailable partitions), fault knobs; and replay of requests captured from
 * asbackup/asrestore and raw scripts against CE 8.1.2 (tests/data/wire/), comparing the
 * emulator's replies field by field with the captured server replies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "aerospike/as_auth.h"
#include "aerospike/as_proto.h"

static const char *g_emu_path;
static pid_t g_running[4];
static char g_dirs[4][64];

/* ---- emulator process ------------------------------------------------------------------------ */

struct emu {
    pid_t pid;
    int ports[8];
    int n;
    char dir[64];
    char port_file[128];
};

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void emu_start(struct emu *e, const char *extra)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/test_emulator.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->port_file, sizeof e->port_file, "%s/ports", e->dir);
    char *args[32];
    int n = 0;
    args[n++] = (char *)g_emu_path;
    args[n++] = "--port";
    args[n++] = "0";
    args[n++] = "--port-file";
    args[n++] = e->port_file;
    char *copy = strdup(extra ? extra : "");
    assert_non_null(copy);
    for (char *tok = strtok(copy, " "); tok && n < 30; tok = strtok(NULL, " "))
        args[n++] = tok;
    args[n] = NULL;
    e->pid = fork();
    assert_true(e->pid >= 0);
    if (e->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        execv(g_emu_path, args);
        _exit(127);
    }
    free(copy);
    for (int i = 0; i < 4; i++)
        if (g_running[i] == 0) {
            g_running[i] = e->pid;
            memcpy(g_dirs[i], e->dir, sizeof g_dirs[i]);
            break;
        }
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(e->port_file, "r");
        if (f) {
            while (e->n < 8 && fscanf(f, "%d", &e->ports[e->n]) == 1)
                e->n++;
            fclose(f);
            if (e->n > 0)
                return;
        }
        int st;
        assert_int_equal(waitpid(e->pid, &st, WNOHANG), 0); /* still running */
        sleep_ms(10);
    }
    fail_msg("emulator did not write its port file");
}

static void emu_stop(struct emu *e)
{
    for (int i = 0; i < 4; i++)
        if (g_running[i] == e->pid)
            g_running[i] = 0;
    assert_int_equal(kill(e->pid, SIGTERM), 0);
    int st = 0;
    assert_int_equal(waitpid(e->pid, &st, 0), e->pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    rmdir(e->dir);
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = { 20, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_bytes(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        b += w;
        n -= (size_t)w;
    }
}

static bool recv_exact(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = recv(fd, b, n, 0);
        if (r <= 0)
            return false;
        b += r;
        n -= (size_t)r;
    }
    return true;
}

/* One proto message; NULL on EOF. The body is malloc'd with exactly its size. */
static uint8_t *recv_msg(int fd, struct as_proto_header *h)
{
    uint8_t hdr[8];
    if (!recv_exact(fd, hdr, 8))
        return NULL;
    struct err e;
    assert_int_equal(as_proto_header_decode(hdr, h, &e), 0);
    uint8_t *body = malloc(h->size ? h->size : 1);
    assert_non_null(body);
    if (h->size)
        assert_true(recv_exact(fd, body, h->size));
    return body;
}

/* Sends an info request and returns the reply body as a NUL-terminated string. */
static char *info(int fd, const char *cmds)
{
    struct as_buf b;
    as_buf_init(&b);
    struct err e;
    assert_int_equal(as_info_request(&b, cmds, &e), 0);
    send_bytes(fd, b.data, b.len);
    as_buf_free(&b);
    struct as_proto_header h;
    uint8_t *body = recv_msg(fd, &h);
    assert_non_null(body);
    assert_int_equal(h.type, AS_PROTO_INFO);
    char *s = malloc(h.size + 1);
    assert_non_null(s);
    memcpy(s, body, h.size);
    s[h.size] = '\0';
    free(body);
    return s;
}

/* The value of one command (sent alone), NUL-terminated, caller frees. */
static char *info1(int fd, const char *cmd)
{
    char *all = info(fd, cmd);
    struct as_info_line l;
    char name[512];
    snprintf(name, sizeof name, "%s", cmd);
    name[strcspn(name, "\n")] = '\0';
    assert_true(as_info_find(all, strlen(all), name, &l));
    char *v = strndup(l.value, l.value_len);
    free(all);
    return v;
}

/* Per-test teardown: a test that failed half-way leaves its emulator running; kill it by pid. */
static int kill_leftovers(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        if (g_running[i] > 0) {
            kill(g_running[i], SIGKILL);
            waitpid(g_running[i], NULL, 0);
            char cmd[320];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dirs[i]);
            if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", g_dirs[i]);
        }
        g_running[i] = 0;
    }
    return 0;
}

/* ---- record commands ------------------------------------------------------------------------------- */

struct bin {
    const char *name;
    uint8_t ptype;
    const void *val;
    size_t len;
};

struct wr {
    const char *ns;
    const char *set;   /* NULL: no SET field */
    const char *key;   /* string key, also used for the digest; NULL with `digest` */
    const uint8_t *digest;
    bool send_key;
    uint8_t info1, info2, info3;
    uint32_t gen, ttl;
    const uint8_t *filter;
    size_t filter_len;
};

static void digest_of(const struct wr *w, uint8_t d[20])
{
    if (w->digest) {
        memcpy(d, w->digest, 20);
        return;
    }
    struct err e;
    assert_int_equal(as_digest_str(w->set, w->key, d, &e), 0);
}

static void build_rec_cmd(struct as_buf *b, const struct wr *w, const struct bin *bins, size_t n,
                          uint8_t op_type)
{
    struct as_msgw mw;
    struct as_msg_header h = { .info1 = w->info1, .info2 = w->info2, .info3 = w->info3,
                               .generation = w->gen, .record_ttl = w->ttl, .transaction_ttl = 1000 };
    struct err e;
    uint8_t d[20];
    digest_of(w, d);
    as_msgw_begin(&mw, b, &h);
    as_msgw_field_str(&mw, AS_FIELD_NAMESPACE, w->ns);
    if (w->set)
        as_msgw_field_str(&mw, AS_FIELD_SET, w->set);
    as_msgw_field(&mw, AS_FIELD_DIGEST, d, 20);
    if (w->send_key && w->key) {
        uint8_t k[256];
        size_t kl = strlen(w->key);
        k[0] = AS_PARTICLE_STRING;
        memcpy(k + 1, w->key, kl);
        as_msgw_field(&mw, AS_FIELD_KEY, k, kl + 1);
    }
    if (w->filter)
        as_msgw_field(&mw, AS_FIELD_FILTER, w->filter, w->filter_len);
    for (size_t i = 0; i < n; i++)
        as_msgw_op(&mw, op_type, bins[i].ptype, bins[i].name, strlen(bins[i].name), bins[i].val, bins[i].len);
    assert_int_equal(as_msgw_end(&mw, &e), 0);
}

/* Sends one record command and returns the reply view (body owned by *body). */
static struct as_msg_view rec_cmd(int fd, const struct wr *w, const struct bin *bins, size_t n,
                                  uint8_t op_type, uint8_t **body)
{
    struct as_buf b;
    as_buf_init(&b);
    build_rec_cmd(&b, w, bins, n, op_type);
    send_bytes(fd, b.data, b.len);
    as_buf_free(&b);
    struct as_proto_header h;
    *body = recv_msg(fd, &h);
    assert_non_null(*body);
    assert_int_equal(h.type, AS_PROTO_MSG);
    struct as_msg_view v;
    struct err e;
    assert_int_equal(as_msg_parse(*body, h.size, &v, &e), 0);
    assert_int_equal(v.size, h.size);
    return v;
}

/* Result code (and generation) of a write of `bins`. */
static int put(int fd, const struct wr *w, const struct bin *bins, size_t n, uint32_t *gen)
{
    uint8_t *body;
    struct wr ww = *w;
    ww.info2 |= AS_INFO2_WRITE;
    struct as_msg_view v = rec_cmd(fd, &ww, bins, n, AS_OP_WRITE, &body);
    if (gen)
        *gen = v.h.generation;
    int rc = v.h.result_code;
    free(body);
    return rc;
}

static int get_int_bin(int fd, const struct wr *w, const char *bin, int64_t *out, uint32_t *gen)
{
    uint8_t *body;
    struct wr rw = *w;
    rw.info1 = AS_INFO1_READ | AS_INFO1_GET_ALL;
    rw.info2 = 0;
    struct as_msg_view v = rec_cmd(fd, &rw, NULL, 0, 0, &body);
    int rc = v.h.result_code;
    if (gen)
        *gen = v.h.generation;
    if (rc == 0 && out) {
        struct as_iter it;
        struct as_op op;
        as_msg_ops(&v, &it);
        rc = -1;
        while (as_op_next(&it, &op))
            if (op.name_len == strlen(bin) && memcmp(op.name, bin, op.name_len) == 0 &&
                as_particle_int(op.value, op.value_len, out) == 0)
                rc = 0;
    }
    free(body);
    return rc;
}

static void be64(uint8_t out[8], int64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
}

/* Writes `n` records "k<i>" with bins i (int) and s (string) into ns/set, sending the key. */
static void put_many(int fd, const char *ns, const char *set, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", i);
        uint8_t iv[8];
        be64(iv, i);
        struct bin bins[2] = { { "i", AS_PARTICLE_INTEGER, iv, 8 }, { "s", AS_PARTICLE_STRING, key, strlen(key) } };
        struct wr w = { .ns = ns, .set = set, .key = key, .send_key = true };
        assert_int_equal(put(fd, &w, bins, 2, NULL), 0);
    }
}

/* ---- scans ---------------------------------------------------------------------------------------- */

struct scan_req {
    const char *ns;
    const char *set;
    const uint16_t *pids;
    size_t n_pids;
    const uint8_t *digests; /* resume digests, 20 bytes each */
    size_t n_digests;
    const char *const *bins;
    size_t n_bins;
    bool nobins;
    bool no_pdone_bit;
    uint64_t max_records;
    const uint8_t *filter;
    size_t filter_len;
};

struct scan_res {
    unsigned records;
    unsigned pdone;         /* partition-done headers */
    unsigned pdone_rc11;
    int reject_rc;          /* result of a single rejecting header, -1 if none */
    bool last;
    bool closed;            /* EOF before LAST */
    unsigned msgs;
    uint8_t (*digests)[20]; /* every record's digest, in order */
    unsigned cap;
    unsigned ops_total;
    unsigned with_key;
    unsigned nobin_flag;
};

static void scan_send(int fd, const struct scan_req *q)
{
    struct as_buf b;
    as_buf_init(&b);
    struct as_msgw w;
    struct as_msg_header h = { .info1 = AS_INFO1_READ | (q->nobins ? AS_INFO1_NOBINDATA : 0),
                               .info3 = q->no_pdone_bit ? 0 : AS_INFO3_PARTITION_DONE,
                               .record_ttl = AS_READ_TOUCH_OFF };
    struct err e;
    as_msgw_begin(&w, &b, &h);
    as_msgw_field_str(&w, AS_FIELD_NAMESPACE, q->ns);
    if (q->set)
        as_msgw_field_str(&w, AS_FIELD_SET, q->set);
    as_msgw_field_u32(&w, AS_FIELD_SOCKET_TIMEOUT, 10000);
    as_msgw_field_u64(&w, AS_FIELD_TRID, 42);
    if (q->filter)
        as_msgw_field(&w, AS_FIELD_FILTER, q->filter, q->filter_len);
    if (q->n_pids) {
        size_t off = as_msgw_field_begin(&w, AS_FIELD_PID_ARRAY);
        for (size_t i = 0; i < q->n_pids; i++)
            as_buf_put_u16le(&b, q->pids[i]);
        as_field_end(&b, off);
    } else if (!q->n_digests) {
        size_t off = as_msgw_field_begin(&w, AS_FIELD_PID_ARRAY);
        for (unsigned p = 0; p < AS_PARTITIONS; p++)
            as_buf_put_u16le(&b, (uint16_t)p);
        as_field_end(&b, off);
    }
    if (q->n_digests)
        as_msgw_field(&w, AS_FIELD_DIGEST_ARRAY, q->digests, 20 * q->n_digests);
    if (q->max_records)
        as_msgw_field_u64(&w, AS_FIELD_MAX_RECORDS, q->max_records);
    for (size_t i = 0; i < q->n_bins; i++)
        as_msgw_op(&w, AS_OP_READ, 0, q->bins[i], strlen(q->bins[i]), NULL, 0);
    assert_int_equal(as_msgw_end(&w, &e), 0);
    send_bytes(fd, b.data, b.len);
    as_buf_free(&b);
}

static void scan_read(int fd, struct scan_res *r)
{
    memset(r, 0, sizeof *r);
    r->reject_rc = -1;
    for (;;) {
        struct as_proto_header h;
        uint8_t *body = recv_msg(fd, &h);
        if (!body) {
            r->closed = true;
            return;
        }
        assert_int_equal(h.type, AS_PROTO_MSG);
        r->msgs++;
        size_t pos = 0;
        bool done = false;
        unsigned in_msg = 0;
        while (pos < h.size) {
            struct as_msg_view v;
            struct err e;
            assert_int_equal(as_msg_parse(body + pos, h.size - pos, &v, &e), 0);
            pos += v.size;
            in_msg++;
            if (v.h.info3 & AS_INFO3_LAST) {
                assert_int_equal(v.h.result_code, 0);
                assert_int_equal(in_msg, 1); /* LAST travels alone */
                assert_int_equal(pos, h.size);
                r->last = true;
                done = true;
            } else if (v.h.info3 & AS_INFO3_PARTITION_DONE) {
                r->pdone++;
                if (v.h.result_code == AS_ERR_UNAVAILABLE)
                    r->pdone_rc11++;
                assert_true(v.h.generation < AS_PARTITIONS);
            } else if (v.h.result_code != 0) {
                r->reject_rc = v.h.result_code;
                done = true;
            } else {
                struct as_field f;
                assert_true(as_msg_find_field(&v, AS_FIELD_DIGEST, &f));
                if (r->records == r->cap) {
                    r->cap = r->cap ? 2 * r->cap : 256;
                    r->digests = realloc(r->digests, r->cap * sizeof *r->digests);
                    assert_non_null(r->digests);
                }
                memcpy(r->digests[r->records++], f.data, 20);
                r->ops_total += v.h.n_ops;
                if (as_msg_find_field(&v, AS_FIELD_KEY, &f))
                    r->with_key++;
                if (v.h.info1 & AS_INFO1_NOBINDATA)
                    r->nobin_flag++;
            }
        }
        free(body);
        if (done)
            return;
    }
}

static void scan(int fd, const struct scan_req *q, struct scan_res *r)
{
    scan_send(fd, q);
    scan_read(fd, r);
}

/* ---- tests: info ------------------------------------------------------------------------------------ */

static void test_info(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test --namespace bar --cluster-name backup-test");
    int fd = connect_port(e.ports[0]);
    char *s = info(fd, "node\nbuild\nnamespaces\npartition-generation\ncluster-name\nnope\n\npartitions\n");
    assert_string_equal(s, "node\tBB9000000000001\nbuild\t8.1.2.0\nnamespaces\ttest;bar\n"
                           "partition-generation\t0\ncluster-name\tbackup-test\n"
                           "nope\tERROR:4:unrecognized command\n\tERROR:4:unrecognized command\n"
                           "partitions\t4096\n");
    free(s);
    /* a last command without '\n' is ignored (sent raw: as_info_request would add the '\n') */
    uint8_t raw[8 + 10];
    as_proto_header_encode(raw, AS_PROTO_INFO, 10);
    memcpy(raw + 8, "node\nbuild", 10);
    send_bytes(fd, raw, sizeof raw);
    struct as_proto_header rh;
    uint8_t *rb = recv_msg(fd, &rh);
    assert_non_null(rb);
    assert_int_equal(rh.size, 21);
    assert_memory_equal(rb, "node\tBB9000000000001\n", 21);
    free(rb);
    s = info(fd, "build\nbuild\n");
    assert_string_equal(s, "build\t8.1.2.0\nbuild\t8.1.2.0\n");
    free(s);

    /* empty body: the 15-line legacy summary */
    struct as_proto_header ph;
    uint8_t empty[8];
    as_proto_header_encode(empty, AS_PROTO_INFO, 0);
    send_bytes(fd, empty, 8);
    uint8_t *body = recv_msg(fd, &ph);
    assert_non_null(body);
    const char *cur = (const char *)body;
    struct as_info_line l;
    int lines = 0;
    while (as_info_next_line(&cur, (const char *)body + ph.size, &l, NULL) == 1)
        lines++;
    assert_int_equal(lines, 15);
    free(body);

    char *v = info1(fd, "peers-clear-std");
    assert_string_equal(v, "0,3000,[]");
    free(v);
    v = info1(fd, "peers-tls-std");
    assert_string_equal(v, "ERROR:25:enterprise only");
    free(v);
    v = info1(fd, "namespace/nosuchns");
    assert_string_equal(v, "type=unknown");
    free(v);
    v = info1(fd, "sets/nosuchns");
    assert_string_equal(v, "ns_type=unknown");
    free(v);
    v = info1(fd, "bins/test");
    assert_string_equal(v, "ERROR:4:unrecognized command");
    free(v);
    v = info1(fd, "user-agent-set:value=MSxjLTcuMy4wLG5vdC1zZXQ=");
    assert_string_equal(v, "ok");
    free(v);
    v = info1(fd, "features");
    assert_non_null(strstr(v, "batch-any;batch-index"));
    free(v);

    /* replicas: every bit of a single node set, 684 base64 characters per column */
    v = info1(fd, "replicas");
    assert_int_equal(strlen(v), 2 * (strlen("test:0,1,") + 684) + 1 - 1);
    assert_memory_equal(v, "test:0,1,////", 13);
    assert_non_null(strstr(v, "8=;bar:0,1,//"));
    free(v);
    v = info1(fd, "replicas-all");
    assert_memory_equal(v, "test:1,///", 10);
    free(v);
    v = info1(fd, "replicas-master");
    assert_memory_equal(v, "test:///", 8);
    free(v);

    /* namespace stats and sets follow the data */
    put_many(fd, "test", "users", 0, 7);
    put_many(fd, "test", "events", 100, 3);
    put_many(fd, "test", NULL, 200, 2);
    v = info1(fd, "namespace/test");
    const char *val;
    size_t vl;
    assert_true(as_info_kv(v, strlen(v), ';', "objects", &val, &vl));
    assert_int_equal(strtol(val, NULL, 10), 12);
    assert_true(as_info_kv(v, strlen(v), ';', "replication-factor", &val, &vl));
    assert_true(as_info_kv(v, strlen(v), ';', "effective_replication_factor", &val, &vl));
    free(v);
    v = info1(fd, "sets/test");
    assert_non_null(strstr(v, "ns=test:set=users:objects=7:tombstones=0:"));
    assert_non_null(strstr(v, "ns=test:set=events:objects=3:"));
    assert_true(v[strlen(v) - 1] == ';');
    free(v);
    v = info1(fd, "sets/test/users");
    assert_memory_equal(v, "objects=7:", 10);
    free(v);

    /* sindexes */
    v = info1(fd, "sindex-create:namespace=test;set=users;indexname=idx_age;indextype=DEFAULT;bin=i;type=NUMERIC");
    assert_string_equal(v, "ok");
    free(v);
    v = info1(fd, "sindex-create:namespace=test;indexname=idx_mk;context=kiKkA2x2bA==;indextype=MAPKEYS;bin=m;type=STRING");
    assert_string_equal(v, "ok");
    free(v);
    v = info1(fd, "sindex-create:namespace=test;set=users;indexname=idx_age;bin=s;type=NUMERIC");
    assert_string_equal(v, "ERROR:200:'indexname' already exists with different definition");
    free(v);
    v = info1(fd, "sindex-create:namespace=test;set=users;indexname=idx_age;indextype=DEFAULT;bin=i;type=NUMERIC");
    assert_string_equal(v, "ok"); /* identical definition: idempotent */
    free(v);
    v = info1(fd, "sindex-list:ns=test;b64=true");
    assert_string_equal(v, "ns=test:indexname=idx_age:set=users:bin=i:type=numeric:indextype=default:"
                           "context=null:exp=null:state=RW;ns=test:indexname=idx_mk:set=null:bin=m:"
                           "type=string:indextype=mapkeys:context=kiKkA2x2bA==:exp=null:state=RW");
    free(v);
    v = info1(fd, "sindex-exists:ns=test;indexname=idx_age");
    assert_string_equal(v, "true");
    free(v);
    v = info1(fd, "sindex-stat:namespace=test;indexname=idx_age");
    assert_memory_equal(v, "entries=7;", 10);
    assert_non_null(strstr(v, "load_pct=100"));
    free(v);
    v = info1(fd, "sindex-stat:namespace=test;indexname=nosuch");
    assert_string_equal(v, "ERROR:201:no index");
    free(v);
    v = info1(fd, "sets/test/users");
    assert_non_null(strstr(v, ":sindexes=1:"));
    free(v);

    /* UDFs: content-len is the base64 length */
    v = info1(fd, "udf-put:filename=a.lua;content=LS0gaGkK;content-len=8;udf-type=LUA;");
    assert_string_equal(v, "ok");
    free(v);
    v = info1(fd, "udf-put:filename=b.lua;content=YWJj;content-len=5;udf-type=LUA;");
    assert_string_equal(v, "error=invalid_content_len");
    free(v);
    v = info1(fd, "udf-list");
    assert_memory_equal(v, "filename=a.lua,hash=", 20);
    assert_memory_equal(v + strlen(v) - 10, ",type=LUA;", 10);
    free(v);
    v = info1(fd, "udf-get:filename=a.lua;");
    assert_string_equal(v, "type=LUA;content=LS0gaGkK;");
    free(v);
    v = info1(fd, "udf-get:filename=nosuch.lua");
    assert_string_equal(v, "error=not_found");
    free(v);

    /* config */
    v = info1(fd, "get-config:context=service");
    assert_true(as_info_kv(v, strlen(v), ';', "batch-index-threads", &val, &vl));
    assert_true(vl == 1 && val[0] == '2');
    free(v);
    v = info1(fd, "get-config:context=namespace;id=test");
    assert_true(as_info_kv(v, strlen(v), ';', "nsup-period", &val, &vl));
    free(v);

    /* truncate one set */
    v = info1(fd, "truncate:namespace=test;set=events");
    assert_string_equal(v, "ok");
    free(v);
    v = info1(fd, "sets/test/events");
    assert_memory_equal(v, "objects=0:", 10);
    free(v);

    /* a header with version 3 closes the connection without a reply */
    uint8_t bad[14] = { 3, 1, 0, 0, 0, 0, 0, 6, 'b', 'u', 'i', 'l', 'd', '\n' };
    send_bytes(fd, bad, sizeof bad);
    uint8_t x;
    assert_true(recv(fd, &x, 1, 0) <= 0);
    close(fd);
    emu_stop(&e);
}

/* ---- tests: single-record commands ------------------------------------------------------------------ */

static void test_write_read(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test");
    int fd = connect_port(e.ports[0]);
    uint8_t one[8], two[8], three[8];
    be64(one, 1);
    be64(two, 2);
    be64(three, 3);
    struct bin a1 = { "a", AS_PARTICLE_INTEGER, one, 8 };
    struct bin a2 = { "a", AS_PARTICLE_INTEGER, two, 8 };
    struct bin b3 = { "b", AS_PARTICLE_INTEGER, three, 8 };
    struct wr k1 = { .ns = "test", .set = "s", .key = "k1", .send_key = true };
    uint32_t gen;
    int64_t iv;

    assert_int_equal(put(fd, &k1, &a1, 1, &gen), 0);
    assert_int_equal(gen, 1);
    assert_int_equal(get_int_bin(fd, &k1, "a", &iv, &gen), 0);
    assert_int_equal(iv, 1);
    assert_int_equal(gen, 1);

    /* update merges bins, generation increments */
    assert_int_equal(put(fd, &k1, &b3, 1, &gen), 0);
    assert_int_equal(gen, 2);
    assert_int_equal(get_int_bin(fd, &k1, "a", &iv, NULL), 0);
    assert_int_equal(get_int_bin(fd, &k1, "b", &iv, NULL), 0);
    assert_int_equal(iv, 3);

    /* exists policies */
    struct wr w = k1;
    w.info2 = AS_INFO2_CREATE_ONLY;
    assert_int_equal(put(fd, &w, &a2, 1, &gen), AS_ERR_RECORD_EXISTS);
    assert_int_equal(gen, 2); /* the stored generation */
    w = (struct wr){ .ns = "test", .set = "s", .key = "missing", .info3 = AS_INFO3_UPDATE_ONLY };
    assert_int_equal(put(fd, &w, &a2, 1, &gen), AS_ERR_NOT_FOUND);
    w.info3 = AS_INFO3_REPLACE_ONLY;
    assert_int_equal(put(fd, &w, &a2, 1, &gen), AS_ERR_NOT_FOUND);
    w = k1;
    w.info3 = AS_INFO3_REPLACE_ONLY; /* replace drops bin b */
    assert_int_equal(put(fd, &w, &a2, 1, &gen), 0);
    assert_int_equal(gen, 3);
    assert_int_equal(get_int_bin(fd, &k1, "b", &iv, NULL), -1);
    w.info3 = AS_INFO3_CREATE_OR_REPLACE;
    assert_int_equal(put(fd, &w, &b3, 1, &gen), 0);
    assert_int_equal(get_int_bin(fd, &k1, "a", &iv, NULL), -1);

    /* generation policies: EQ and GT (restore mode) */
    w = k1;
    w.info2 = AS_INFO2_GENERATION;
    w.gen = 99;
    assert_int_equal(put(fd, &w, &a1, 1, &gen), AS_ERR_GENERATION);
    assert_int_equal(gen, 4);
    w.gen = 4;
    assert_int_equal(put(fd, &w, &a1, 1, &gen), 0);
    assert_int_equal(gen, 5);
    w.info2 = AS_INFO2_GENERATION_GT;
    w.gen = 5;
    assert_int_equal(put(fd, &w, &a1, 1, &gen), AS_ERR_GENERATION);
    w.gen = 9;
    assert_int_equal(put(fd, &w, &a1, 1, &gen), 0);
    assert_int_equal(gen, 6); /* the sent generation is only a condition */
    w = (struct wr){ .ns = "test", .set = "s", .key = "new-gt", .info2 = AS_INFO2_GENERATION_GT, .gen = 1 };
    assert_int_equal(put(fd, &w, &a1, 1, &gen), 0); /* new records pass GT with gen >= 1 */
    assert_int_equal(gen, 1);
    w.key = "new-gt0";
    w.gen = 0;
    assert_int_equal(put(fd, &w, &a1, 1, &gen), AS_ERR_GENERATION); /* 0 > 0 fails */
    w = (struct wr){ .ns = "test", .set = "s", .key = "unique", .info2 = AS_INFO2_GENERATION_GT | AS_INFO2_CREATE_ONLY, .gen = 1 };
    assert_int_equal(put(fd, &w, &a1, 1, NULL), 0);
    assert_int_equal(put(fd, &w, &a1, 1, &gen), AS_ERR_RECORD_EXISTS); /* create-only wins over GT */

    /* key and set mismatch */
    w = k1;
    w.key = "k1";
    uint8_t dk1[20];
    digest_of(&k1, dk1);
    struct wr other = { .ns = "test", .set = "s", .key = "other", .digest = dk1, .send_key = true };
    assert_int_equal(put(fd, &other, &a1, 1, &gen), AS_ERR_KEY_MISMATCH);
    assert_int_equal(gen, 6);
    struct wr wrongset = { .ns = "test", .set = "s2", .digest = dk1 };
    assert_int_equal(put(fd, &wrongset, &a1, 1, &gen), AS_ERR_PARAMETER);
    struct wr emptyset = { .ns = "test", .set = "", .digest = dk1 };
    assert_int_equal(put(fd, &emptyset, &a1, 1, &gen), 0); /* an empty SET is "no set given" */

    /* value and message checks */
    w = (struct wr){ .ns = "test", .set = "s", .key = "v" };
    w.ttl = AS_TTL_MAX + 1;
    assert_int_equal(put(fd, &w, &a1, 1, NULL), AS_ERR_PARAMETER);
    w.ttl = 0;
    struct bin longname = { "abcdefghijklmnop", AS_PARTICLE_INTEGER, one, 8 };
    assert_int_equal(put(fd, &w, &longname, 1, NULL), AS_ERR_BIN_NAME);
    struct bin bool2 = { "b", AS_PARTICLE_BOOL, "\x02", 1 };
    assert_int_equal(put(fd, &w, &bool2, 1, NULL), AS_ERR_PARAMETER);
    static const uint8_t unsorted[] = { 0x83, 0xc7, 0x00, 0x01, 0xc0, 0xa2, 0x03, 0x7a, 0x01, 0xa2, 0x03, 0x61, 0x02 };
    struct bin om = { "m", AS_PARTICLE_MAP, unsorted, sizeof unsorted };
    assert_int_equal(put(fd, &w, &om, 1, NULL), AS_ERR_UNKNOWN);
    static const uint8_t floatkey[] = { 0x81, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x01 };
    struct bin fk = { "m", AS_PARTICLE_MAP, floatkey, sizeof floatkey };
    assert_int_equal(put(fd, &w, &fk, 1, NULL), AS_ERR_UNKNOWN);
    static const uint8_t sorted[] = { 0x83, 0xc7, 0x00, 0x01, 0xc0, 0xa2, 0x03, 0x61, 0x01, 0xa2, 0x03, 0x7a, 0x02 };
    struct bin okm = { "m", AS_PARTICLE_MAP, sorted, sizeof sorted };
    assert_int_equal(put(fd, &w, &okm, 1, NULL), 0);
    static const uint8_t badgeo[] = "\x00\x00\x00{\"type\":\"Pt\"}";
    struct bin bg = { "g", AS_PARTICLE_GEOJSON, badgeo, sizeof badgeo - 1 };
    assert_int_equal(put(fd, &w, &bg, 1, NULL), AS_ERR_GEO_INVALID_GEOJSON);
    static const uint8_t point[] = "\x00\x00\x00{\"type\":\"Point\",\"coordinates\":[1,2]}";
    struct bin pg = { "g", AS_PARTICLE_GEOJSON, point, sizeof point - 1 };
    assert_int_equal(put(fd, &w, &pg, 1, NULL), 0);
    struct wr nons = { .ns = "nosuchns", .set = "s", .key = "x" };
    assert_int_equal(put(fd, &nons, &a1, 1, NULL), AS_ERR_NAMESPACE);

    /* TTL: the reply carries the void-time */
    w = (struct wr){ .ns = "test", .set = "s", .key = "ttl", .ttl = 3600 };
    uint8_t *body;
    w.info2 = AS_INFO2_WRITE;
    struct as_msg_view v = rec_cmd(fd, &w, &a1, 1, AS_OP_WRITE, &body);
    assert_int_equal(v.h.result_code, 0);
    uint32_t now_cl = (uint32_t)(time(NULL) - AS_CITRUSLEAF_EPOCH);
    assert_true(v.h.record_ttl >= now_cl + 3599 && v.h.record_ttl <= now_cl + 3601);
    free(body);

    /* RESPOND_ALL_OPS: one NULL op per written bin */
    w = (struct wr){ .ns = "test", .set = "s", .key = "rao", .info2 = AS_INFO2_WRITE | AS_INFO2_RESPOND_ALL_OPS };
    struct bin two_bins[2] = { a1, b3 };
    v = rec_cmd(fd, &w, two_bins, 2, AS_OP_WRITE, &body);
    assert_int_equal(v.h.result_code, 0);
    assert_int_equal(v.h.n_ops, 2);
    struct as_iter it;
    struct as_op op;
    as_msg_ops(&v, &it);
    assert_true(as_op_next(&it, &op));
    assert_true(op.op_type == AS_OP_WRITE && op.particle_type == 0 && op.name_len == 1 &&
                op.name[0] == 'a' && op.value_len == 0);
    free(body);

    /* delete: missing -> 2, existing -> 0 then reads 2; durable delete -> 25 */
    w = (struct wr){ .ns = "test", .set = "s", .key = "missing", .info2 = AS_INFO2_DELETE };
    assert_int_equal(put(fd, &w, NULL, 0, NULL), AS_ERR_NOT_FOUND);
    w = k1;
    w.info2 = AS_INFO2_DELETE | AS_INFO2_DURABLE_DELETE;
    assert_int_equal(put(fd, &w, NULL, 0, NULL), AS_ERR_ENTERPRISE_ONLY);
    w.info2 = AS_INFO2_DELETE;
    assert_int_equal(put(fd, &w, NULL, 0, &gen), 0);
    assert_int_equal(gen, 0);
    assert_int_equal(get_int_bin(fd, &k1, "a", &iv, NULL), AS_ERR_NOT_FOUND);

    /* writing NULL to the only bin deletes the record */
    struct wr nb = { .ns = "test", .set = "s", .key = "nullbin" };
    assert_int_equal(put(fd, &nb, &a1, 1, NULL), 0);
    struct bin anull = { "a", AS_PARTICLE_NULL, NULL, 0 };
    assert_int_equal(put(fd, &nb, &anull, 1, NULL), 0);
    assert_int_equal(get_int_bin(fd, &nb, "a", &iv, NULL), AS_ERR_NOT_FOUND);

    /* a record of more than 1 MiB: 13; just under: accepted */
    uint8_t *big = calloc(1, 1100000);
    assert_non_null(big);
    struct bin bb = { "b", AS_PARTICLE_BLOB, big, 1100000 };
    w = (struct wr){ .ns = "test", .set = "s", .key = "big" };
    assert_int_equal(put(fd, &w, &bb, 1, NULL), AS_ERR_RECORD_TOO_BIG);
    bb.len = 1048000;
    assert_int_equal(put(fd, &w, &bb, 1, NULL), 0);
    free(big);

    /* admin message: CE without security answers 51; compressed: 25 */
    uint8_t admin[8 + 16] = { 2, 2, 0, 0, 0, 0, 0, 16, 0, 0, 20, 0 };
    send_bytes(fd, admin, sizeof admin);
    struct as_proto_header ph;
    body = recv_msg(fd, &ph);
    assert_true(body && ph.type == AS_PROTO_ADMIN && ph.size == 16 && body[1] == 51);
    free(body);
    uint8_t comp[8 + 8] = { 2, 4, 0, 0, 0, 0, 0, 8 };
    send_bytes(fd, comp, sizeof comp);
    body = recv_msg(fd, &ph);
    assert_true(body && ph.type == AS_PROTO_MSG && ph.size == 22 && body[5] == 25);
    free(body);

    close(fd);
    emu_stop(&e);
}

/* ---- tests: scans --------------------------------------------------------------------------------------- */

static int cmp_digest_desc(const void *a, const void *b)
{
    return -memcmp(a, b, 20);
}

static void test_scan(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test --namespace bar --chunk-size 4096");
    int fd = connect_port(e.ports[0]);
    put_many(fd, "test", "users", 0, 300);
    put_many(fd, "test", "events", 1000, 200);
    put_many(fd, "test", NULL, 2000, 100);
    struct scan_res r;

    /* whole namespace; small chunks so several messages; LAST alone */
    struct scan_req q = { .ns = "test" };
    scan(fd, &q, &r);
    assert_true(r.last);
    assert_int_equal(r.records, 600);
    assert_int_equal(r.pdone, 0);
    assert_int_equal(r.with_key, 600);
    assert_int_equal(r.ops_total, 1200);
    assert_true(r.msgs > 3);
    /* inside a partition: descending digests */
    for (unsigned i = 1; i < r.records; i++)
        if (as_partition_id(r.digests[i]) == as_partition_id(r.digests[i - 1]))
            assert_true(memcmp(r.digests[i], r.digests[i - 1], 20) < 0);
    free(r.digests);

    /* one set */
    q.set = "events";
    scan(fd, &q, &r);
    assert_int_equal(r.records, 200);
    free(r.digests);
    q.set = "nosuchset";
    scan(fd, &q, &r);
    assert_int_equal(r.reject_rc, AS_ERR_PARAMETER);
    assert_false(r.last);
    free(r.digests);

    /* bin list: only records having one of the bins, only those bins */
    q = (struct scan_req){ .ns = "test" };
    const char *bins[] = { "i" };
    q.bins = bins;
    q.n_bins = 1;
    scan(fd, &q, &r);
    assert_int_equal(r.records, 600);
    assert_int_equal(r.ops_total, 600);
    free(r.digests);
    const char *nobin[] = { "zzz" };
    q.bins = nobin;
    scan(fd, &q, &r);
    assert_int_equal(r.records, 0);
    assert_true(r.last);
    free(r.digests);

    /* no bin data: metadata only, NOBINDATA echoed */
    q = (struct scan_req){ .ns = "test", .nobins = true };
    scan(fd, &q, &r);
    assert_int_equal(r.records, 600);
    assert_int_equal(r.ops_total, 0);
    assert_int_equal(r.nobin_flag, 600);
    free(r.digests);

    /* max records */
    q = (struct scan_req){ .ns = "test", .max_records = 10 };
    scan(fd, &q, &r);
    assert_int_equal(r.records, 10);
    assert_true(r.last);
    free(r.digests);

    /* partition list, then resume after a digest inside a partition */
    q = (struct scan_req){ .ns = "test" };
    scan(fd, &q, &r);
    uint8_t (*all)[20] = r.digests;
    unsigned n_all = r.records;
    unsigned pid_best = 0, best = 0;
    unsigned counts[AS_PARTITIONS] = { 0 };
    for (unsigned i = 0; i < n_all; i++) {
        unsigned p = as_partition_id(all[i]);
        if (++counts[p] > best) {
            best = counts[p];
            pid_best = p;
        }
    }
    assert_true(best >= 2);
    uint16_t pids[2] = { (uint16_t)pid_best, (uint16_t)((pid_best + 1) % AS_PARTITIONS) };
    q.pids = pids;
    q.n_pids = 2;
    scan(fd, &q, &r);
    assert_int_equal(r.records, counts[pids[0]] + counts[pids[1]]);
    free(r.digests);
    uint8_t (*part)[20] = calloc(best, 20);
    unsigned k = 0;
    for (unsigned i = 0; i < n_all; i++)
        if (as_partition_id(all[i]) == pid_best)
            memcpy(part[k++], all[i], 20);
    qsort(part, k, 20, cmp_digest_desc);
    q = (struct scan_req){ .ns = "test", .digests = part[0], .n_digests = 1 };
    scan(fd, &q, &r);
    assert_int_equal(r.records, best - 1); /* strictly after the boundary */
    assert_memory_equal(r.digests[0], part[1], 20);
    free(r.digests);
    free(part);
    free(all);

    /* rejections: one header, no LAST */
    uint16_t dup[2] = { 5, 5 };
    q = (struct scan_req){ .ns = "test", .pids = dup, .n_pids = 2 };
    scan(fd, &q, &r);
    assert_int_equal(r.reject_rc, AS_ERR_PARAMETER);
    free(r.digests);
    uint16_t big[1] = { 4096 };
    q.pids = big;
    q.n_pids = 1;
    scan(fd, &q, &r);
    assert_int_equal(r.reject_rc, AS_ERR_PARAMETER);
    free(r.digests);
    q = (struct scan_req){ .ns = "nosuchns" };
    scan(fd, &q, &r);
    assert_int_equal(r.reject_rc, AS_ERR_NAMESPACE);
    free(r.digests);
    q = (struct scan_req){ .ns = "test", .no_pdone_bit = true };
    scan(fd, &q, &r);
    assert_int_equal(r.reject_rc, AS_ERR_UNSUPPORTED_FEATURE);
    free(r.digests);

    /* the connection is still usable, and an empty namespace ends with LAST */
    q = (struct scan_req){ .ns = "bar" };
    scan(fd, &q, &r);
    assert_int_equal(r.records, 0);
    assert_true(r.last);
    free(r.digests);
    close(fd);
    emu_stop(&e);
}

/* msgpack helpers for filters */
static size_t mp_u64(uint8_t *o, uint64_t v)
{
    o[0] = 0xcf;
    for (int i = 0; i < 8; i++)
        o[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    return 9;
}

static size_t mp_lut_cmp(uint8_t *o, uint8_t op, uint64_t t)
{
    o[0] = 0x93;
    o[1] = op;
    o[2] = 0x91;
    o[3] = 0x42;
    return 4 + mp_u64(o + 4, t);
}

static size_t mp_set_eq(uint8_t *o, const char *set)
{
    size_t n = strlen(set);
    o[0] = 0x93;
    o[1] = 0x01;
    o[2] = 0x91;
    o[3] = 0x46;
    o[4] = (uint8_t)(0xa0 | (n + 1));
    o[5] = 0x03;
    memcpy(o + 6, set, n);
    return 6 + n;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned scan_count_filter(int fd, const uint8_t *f, size_t n)
{
    struct scan_req q = { .ns = "test", .filter = f, .filter_len = n };
    struct scan_res r;
    scan(fd, &q, &r);
    free(r.digests);
    if (r.reject_rc >= 0)
        return 100000u + (unsigned)r.reject_rc;
    assert_true(r.last);
    return r.records;
}

static void test_scan_filters(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test");
    int fd = connect_port(e.ports[0]);
    put_many(fd, "test", "users", 0, 40);
    sleep_ms(20);
    uint64_t t1 = now_ns();
    sleep_ms(20);
    put_many(fd, "test", "events", 100, 25);
    sleep_ms(20);
    uint64_t t2 = now_ns();
    sleep_ms(20);
    put_many(fd, "test", NULL, 200, 10);
    /* 5 expiring records in set users */
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "ttl%d", i);
        struct bin b = { "s", AS_PARTICLE_STRING, key, strlen(key) };
        struct wr w = { .ns = "test", .set = "users", .key = key, .ttl = 5000 };
        assert_int_equal(put(fd, &w, &b, 1, NULL), 0);
    }
    uint8_t f[128];
    size_t n;

    n = mp_lut_cmp(f, 4, t1); /* LUT >= t1 */
    assert_int_equal(scan_count_filter(fd, f, n), 40);
    n = mp_lut_cmp(f, 5, t1); /* LUT < t1 */
    assert_int_equal(scan_count_filter(fd, f, n), 40);
    /* asbackup's range order: AND(LT before, GE after) */
    f[0] = 0x93;
    f[1] = 0x10;
    n = 2;
    n += mp_lut_cmp(f + n, 5, t2);
    n += mp_lut_cmp(f + n, 4, t1);
    assert_int_equal(scan_count_filter(fd, f, n), 25);
    /* set name, OR, NOT */
    n = mp_set_eq(f, "events");
    assert_int_equal(scan_count_filter(fd, f, n), 25);
    f[0] = 0x93;
    f[1] = 0x11;
    n = 2;
    n += mp_set_eq(f + n, "events");
    n += mp_set_eq(f + n, "users");
    assert_int_equal(scan_count_filter(fd, f, n), 70);
    f[0] = 0x92;
    f[1] = 0x12;
    n = 2 + mp_set_eq(f + 2, "users");
    assert_int_equal(scan_count_filter(fd, f, n), 35);
    /* --no-ttl-only: [EQ, [TTL], -1] */
    static const uint8_t nottl[] = { 0x93, 0x01, 0x91, 0x45, 0xff };
    assert_int_equal(scan_count_filter(fd, nottl, sizeof nottl), 75);
    /* bin compare: [GT, [BIN, INT, "i"], 205] hits k206..k209 */
    static const uint8_t bingt[] = { 0x93, 0x03, 0x93, 0x51, 0x02, 0xa1, 'i', 0xcc, 0xcd };
    assert_int_equal(scan_count_filter(fd, bingt, sizeof bingt), 4);
    /* a missing bin is unknown: neither it nor its negation matches */
    static const uint8_t nobin[] = { 0x92, 0x12, 0x93, 0x01, 0x93, 0x51, 0x02, 0xa1, 'z', 0x01 };
    assert_int_equal(scan_count_filter(fd, nobin, sizeof nobin), 0);
    /* key exists */
    static const uint8_t kex[] = { 0x91, 0x47 };
    assert_int_equal(scan_count_filter(fd, kex, sizeof kex), 75); /* the ttl records have no stored key */
    /* not boolean, unknown op, garbage: rejected with 4 */
    static const uint8_t notbool[] = { 0x91, 0x42 };
    assert_int_equal(scan_count_filter(fd, notbool, sizeof notbool), 100000u + 4);
    static const uint8_t unknown_op[] = { 0x92, 0x7f, 0x01 };
    assert_int_equal(scan_count_filter(fd, unknown_op, sizeof unknown_op), 100000u + 4);
    static const uint8_t garbage[] = { 0x93, 0x04, 0x91 };
    assert_int_equal(scan_count_filter(fd, garbage, sizeof garbage), 100000u + 4);

    /* a filter on a single-record write: 27 when it does not match */
    uint8_t one[8];
    be64(one, 1);
    struct bin a = { "a", AS_PARTICLE_INTEGER, one, 8 };
    n = mp_set_eq(f, "nope");
    struct wr w = { .ns = "test", .set = "users", .key = "k1", .filter = f, .filter_len = n };
    assert_int_equal(put(fd, &w, &a, 1, NULL), AS_ERR_FILTERED_OUT);
    n = mp_set_eq(f, "users");
    w.filter_len = n;
    assert_int_equal(put(fd, &w, &a, 1, NULL), 0);
    close(fd);
    emu_stop(&e);
}

/* ---- tests: batch writes ------------------------------------------------------------------------------ */

static void put_row(struct as_buf *b, uint32_t index, const char *set, const char *key, uint8_t info2,
                    uint8_t info3, uint16_t gen, int64_t val)
{
    uint8_t d[20];
    struct err e;
    assert_int_equal(as_digest_str(set, key, d, &e), 0);
    as_buf_put_u32(b, index);
    as_buf_append(b, d, 20);
    as_buf_put_u8(b, 0x0e);
    as_buf_put_u8(b, 0);
    as_buf_put_u8(b, info2);
    as_buf_put_u8(b, info3);
    as_buf_put_u16(b, gen);
    as_buf_put_u32(b, AS_TTL_NEVER_EXPIRE);
    as_buf_put_u16(b, 3);
    as_buf_put_u16(b, 1);
    as_field_put_str(b, AS_FIELD_NAMESPACE, "test");
    as_field_put_str(b, AS_FIELD_SET, set);
    uint8_t k[64];
    k[0] = AS_PARTICLE_STRING;
    memcpy(k + 1, key, strlen(key));
    as_field_put(b, AS_FIELD_KEY, k, strlen(key) + 1);
    as_op_put_int(b, AS_OP_WRITE, "v", val);
}

static void test_batch(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test");
    int fd = connect_port(e.ports[0]);
    put_many(fd, "test", "s", 0, 1); /* k0 exists with generation 1 */

    struct as_buf b;
    as_buf_init(&b);
    struct as_msgw w;
    struct as_msg_header h = { .info1 = AS_INFO1_BATCH, .transaction_ttl = 10000 };
    struct err e2;
    as_msgw_begin(&w, &b, &h);
    size_t f = as_msgw_field_begin(&w, AS_FIELD_BATCH);
    as_buf_put_u32(&b, 4);
    as_buf_put_u8(&b, 0x0d);
    const uint8_t gt_rao = AS_INFO2_WRITE | AS_INFO2_GENERATION_GT | AS_INFO2_RESPOND_ALL_OPS;
    put_row(&b, 0, "s", "new1", gt_rao, 0, 1, 10);                              /* -> 0, gen 1 */
    put_row(&b, 1, "s", "k0", gt_rao, 0, 1, 11);                                /* -> 3 (1 <= 1) */
    put_row(&b, 2, "s", "k0", gt_rao | AS_INFO2_CREATE_ONLY, 0, 5, 12);          /* -> 5 */
    put_row(&b, 3, "s", "k0", gt_rao, AS_INFO3_CREATE_OR_REPLACE, 7, 13);        /* -> 0, gen 2 */
    as_field_end(&b, f);
    assert_int_equal(as_msgw_end(&w, &e2), 0);
    send_bytes(fd, b.data, b.len);
    as_buf_free(&b);

    struct as_proto_header ph;
    uint8_t *body = recv_msg(fd, &ph);
    assert_non_null(body);
    static const int want_rc[4] = { 0, 3, 5, 0 };
    static const uint32_t want_gen[4] = { 1, 1, 1, 2 };
    size_t pos = 0;
    unsigned rows = 0;
    while (pos < ph.size) {
        struct as_msg_view v;
        assert_int_equal(as_msg_parse(body + pos, ph.size - pos, &v, &e2), 0);
        pos += v.size;
        assert_false(v.h.info3 & AS_INFO3_LAST);
        assert_int_equal(v.h.transaction_ttl, rows);
        assert_int_equal(v.h.result_code, want_rc[rows]);
        assert_int_equal(v.h.generation, want_gen[rows]);
        assert_int_equal(v.h.n_ops, want_rc[rows] ? 0 : 1);
        rows++;
    }
    assert_int_equal(rows, 4);
    free(body);
    body = recv_msg(fd, &ph); /* LAST in a message of its own */
    assert_true(body && ph.size == 22 && body[3] == AS_INFO3_LAST && body[5] == 0);
    free(body);

    int64_t iv;
    struct wr k0 = { .ns = "test", .set = "s", .key = "k0" };
    assert_int_equal(get_int_bin(fd, &k0, "v", &iv, NULL), 0);
    assert_int_equal(iv, 13);
    assert_int_equal(get_int_bin(fd, &k0, "i", &iv, NULL), -1); /* replaced */
    close(fd);
    emu_stop(&e);
}

/* ---- tests: two nodes ------------------------------------------------------------------------------------ */

static void decode_bitmap(const char *b64, size_t len, uint8_t out[512])
{
    assert_int_equal(len, 684);
    uint8_t tmp[520];
    assert_int_equal(EVP_DecodeBlock(tmp, (const unsigned char *)b64, (int)len), 513);
    assert_int_equal(b64[683], '=');
    memcpy(out, tmp, 512);
}

static void test_two_nodes(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--nodes 2 --namespace test --namespace bar:2");
    assert_int_equal(e.n, 2);
    int fd1 = connect_port(e.ports[0]), fd2 = connect_port(e.ports[1]);
    char expect[128];
    char *v = info1(fd1, "node");
    assert_string_equal(v, "BB9000000000001");
    free(v);
    v = info1(fd2, "node");
    assert_string_equal(v, "BB9000000000002");
    free(v);
    v = info1(fd1, "peers-clear-std");
    snprintf(expect, sizeof expect, "2,3000,[[BB9000000000002,,[127.0.0.1:%d]]]", e.ports[1]);
    assert_string_equal(v, expect);
    free(v);
    v = info1(fd2, "services");
    snprintf(expect, sizeof expect, "127.0.0.1:%d", e.ports[0]);
    assert_string_equal(v, expect);
    free(v);

    /* replicas: test masters disjoint and complete; bar column 1 of one node = column 0 of the other */
    uint8_t m1[512], m2[512], p1[512], p2[512];
    char *r1 = info1(fd1, "replicas"), *r2 = info1(fd2, "replicas");
    /* layout: test:0,1,<684>;bar:0,2,<684>,<684> */
    assert_memory_equal(r1, "test:0,1,", 9);
    decode_bitmap(r1 + 9, 684, m1);
    decode_bitmap(r2 + 9, 684, m2);
    unsigned c1 = 0, c2 = 0;
    for (unsigned p = 0; p < AS_PARTITIONS; p++) {
        bool a = m1[p >> 3] & (0x80 >> (p & 7)), b = m2[p >> 3] & (0x80 >> (p & 7));
        assert_true(a != b);
        c1 += a;
        c2 += b;
    }
    assert_int_equal(c1 + c2, AS_PARTITIONS);
    assert_true(c1 > 1500 && c2 > 1500);
    const char *bar1 = strstr(r1, ";bar:0,2,"), *bar2 = strstr(r2, ";bar:0,2,");
    assert_non_null(bar1);
    assert_non_null(bar2);
    decode_bitmap(bar1 + 9 + 685, 684, p1);
    decode_bitmap(bar2 + 9 + 685, 684, p2);
    assert_memory_equal(p1, m2, 512);
    assert_memory_equal(p2, m1, 512);
    free(r1);
    free(r2);
    v = info1(fd1, "replicas:max=1");
    assert_non_null(strstr(v, ";bar:0,1,"));
    free(v);

    /* data: each node serves its masters; a full-range scan on one node reports the rest as
     * unavailable partitions (result 11) */
    put_many(fd1, "test", "s", 0, 400);
    struct scan_req q = { .ns = "test" };
    struct scan_res a, b;
    scan(fd1, &q, &a);
    scan(fd2, &q, &b);
    assert_true(a.last && b.last);
    assert_int_equal(a.records + b.records, 400);
    assert_int_equal(a.pdone_rc11, c2);
    assert_int_equal(b.pdone_rc11, c1);
    free(a.digests);
    free(b.digests);
    /* namespace objects are per node; RF 2 holds everything on both */
    put_many(fd2, "bar", NULL, 0, 50);
    v = info1(fd1, "namespace/bar");
    const char *val;
    size_t vl;
    assert_true(as_info_kv(v, strlen(v), ';', "objects", &val, &vl));
    assert_int_equal(strtol(val, NULL, 10), 50);
    free(v);
    q.ns = "bar";
    scan(fd1, &q, &a);
    assert_int_equal(a.records, 50);
    assert_int_equal(a.pdone, 0);
    free(a.digests);

    /* moving partitions changes partition-generation and the scan answer */
    v = info1(fd1, "emulator-move:pid=0-4095;node=1");
    assert_string_equal(v, "ok");
    free(v);
    v = info1(fd1, "partition-generation");
    assert_string_equal(v, "1");
    free(v);
    q.ns = "test";
    scan(fd2, &q, &b);
    assert_int_equal(b.records, 400);
    assert_int_equal(b.pdone, 0);
    free(b.digests);
    close(fd1);
    close(fd2);
    emu_stop(&e);
}

/* ---- tests: faults ---------------------------------------------------------------------------------------- */

static void test_faults(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test --fault-unavailable 0-99");
    int fd = connect_port(e.ports[0]);
    put_many(fd, "test", "s", 0, 300);
    struct scan_req q = { .ns = "test" };
    struct scan_res r;
    scan(fd, &q, &r);
    assert_int_equal(r.pdone_rc11, 100);
    assert_true(r.last);
    unsigned served = r.records;
    free(r.digests);
    char *v = info1(fd, "emulator-fault:unavailable=none;close-after-records=7");
    assert_string_equal(v, "ok");
    free(v);
    scan(fd, &q, &r);
    assert_true(r.closed);
    assert_false(r.last);
    assert_int_equal(r.records, 7);
    assert_true(served < 300);
    free(r.digests);
    close(fd);
    fd = connect_port(e.ports[0]);
    v = info1(fd, "emulator-fault:close-after-records=0");
    free(v);
    scan(fd, &q, &r);
    assert_int_equal(r.records, 300);
    free(r.digests);
    close(fd);
    emu_stop(&e);
}

/* ---- replay of captured traffic ----------------------------------------------------------------------------- */

struct cap_msg {
    int conn;
    int c2s;
    int type;
    uint8_t *bytes;
    size_t len;
};

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static struct cap_msg *capture_load(const char *name, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/wire/%s", TEST_DATA_DIR, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct cap_msg *m = NULL;
    *n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        m = realloc(m, (*n + 1) * sizeof *m);
        assert_non_null(m);
        struct cap_msg *c = &m[(*n)++];
        c->conn = (int)json_integer_value(json_object_get(j, "conn"));
        c->c2s = strcmp(json_string_value(json_object_get(j, "dir")), "c2s") == 0;
        c->type = (int)json_integer_value(json_object_get(j, "type"));
        const char *hex = json_string_value(json_object_get(j, "hex"));
        c->len = strlen(hex) / 2;
        c->bytes = malloc(c->len);
        assert_non_null(c->bytes);
        for (size_t i = 0; i < c->len; i++)
            c->bytes[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
        json_decref(j);
    }
    free(line);
    fclose(f);
    return m;
}

static void capture_free(struct cap_msg *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].bytes);
    free(m);
}

/* Compares every AS_MSG header of two type-3 bodies: result, info bits, counts, generation and
 * the batch index; op names and particle types too. Void-times are compared for zero-ness. */
static void compare_msgs(const uint8_t *got, size_t glen, const uint8_t *want, size_t wlen, bool check_gen)
{
    size_t gp = 0, wp = 0;
    while (wp < wlen) {
        struct as_msg_view g, w;
        struct err e;
        assert_true(gp < glen);
        assert_int_equal(as_msg_parse(got + gp, glen - gp, &g, &e), 0);
        assert_int_equal(as_msg_parse(want + wp, wlen - wp, &w, &e), 0);
        gp += g.size;
        wp += w.size;
        assert_int_equal(g.h.result_code, w.h.result_code);
        assert_int_equal(g.h.info1, w.h.info1);
        assert_int_equal(g.h.info2, w.h.info2);
        assert_int_equal(g.h.info3, w.h.info3);
        assert_int_equal(g.h.n_fields, w.h.n_fields);
        assert_int_equal(g.h.n_ops, w.h.n_ops);
        assert_int_equal(g.h.transaction_ttl, w.h.transaction_ttl);
        assert_int_equal(g.h.record_ttl == 0, w.h.record_ttl == 0);
        if (check_gen)
            assert_int_equal(g.h.generation, w.h.generation);
        struct as_iter gi, wi;
        struct as_op go, wo;
        as_msg_ops(&g, &gi);
        as_msg_ops(&w, &wi);
        while (as_op_next(&wi, &wo)) {
            assert_true(as_op_next(&gi, &go));
            assert_int_equal(go.op_type, wo.op_type);
            assert_int_equal(go.particle_type, wo.particle_type);
            assert_int_equal(go.name_len, wo.name_len);
            assert_memory_equal(go.name, wo.name, wo.name_len);
            if (wo.particle_type != AS_PARTICLE_GEOJSON) { /* GeoJSON cell ids are the server's */
                assert_int_equal(go.value_len, wo.value_len);
                assert_memory_equal(go.value, wo.value, wo.value_len);
            }
        }
    }
    assert_int_equal(gp, glen);
}

/* Sends every client message of every connection of a capture to the emulator and compares the
 * replies with the captured server replies (skipping connections listed in `skip`). */
static void replay(struct emu *e, struct cap_msg *m, size_t n, const int *skip, size_t n_skip, bool check_gen)
{
    int max_conn = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i].conn > max_conn)
            max_conn = m[i].conn;
    for (int conn = 0; conn <= max_conn; conn++) {
        bool skipped = false;
        for (size_t s = 0; s < n_skip; s++)
            skipped |= skip[s] == conn;
        if (skipped)
            continue;
        int fd = -1;
        for (size_t i = 0; i < n; i++) {
            if (m[i].conn != conn)
                continue;
            if (fd < 0)
                fd = connect_port(e->ports[0]);
            if (m[i].c2s) {
                send_bytes(fd, m[i].bytes, m[i].len);
                continue;
            }
            struct as_proto_header h;
            uint8_t *body = recv_msg(fd, &h);
            assert_non_null(body);
            assert_int_equal(h.type, m[i].type);
            const uint8_t *want = m[i].bytes + 8;
            size_t wlen = m[i].len - 8;
            if (h.type == AS_PROTO_INFO) {
                assert_int_equal(h.size, wlen);
                assert_memory_equal(body, want, wlen);
            } else if (h.type == AS_PROTO_ADMIN) {
                assert_int_equal(h.size, wlen);
                assert_int_equal(body[1], want[1]);
            } else {
                compare_msgs(body, h.size, want, wlen, check_gen);
            }
            free(body);
        }
        if (fd >= 0)
            close(fd);
    }
}

static void test_replay_errors(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test --namespace bar");
    int fd = connect_port(e.ports[0]);
    /* the state the capture ran against: an index named idx_users_age and two of the three
     * records the batch read asks for (rows 0 and 2), each with five bins */
    char *v = info1(fd, "sindex-create:namespace=test;set=users;indexname=idx_users_age;indextype=DEFAULT;bin=age;type=NUMERIC");
    assert_string_equal(v, "ok");
    free(v);
    static const uint8_t d_user[20] = { 0x0d, 0xe2, 0xb9, 0xa7, 0xf1, 0xf1, 0x49, 0xf5, 0x02, 0x4c,
                                        0xbd, 0x8d, 0x5e, 0x87, 0x7e, 0xc2, 0x85, 0xcf, 0x44, 0xdc };
    static const uint8_t d_event[20] = { 0xb0, 0x93, 0x96, 0x63, 0x5b, 0x9a, 0x18, 0x67, 0x34, 0x79,
                                         0x62, 0x90, 0x50, 0x66, 0x0d, 0x52, 0x9a, 0x8d, 0xf3, 0xd5 };
    size_t n;
    struct cap_msg *m = capture_load("g-errors.jsonl", &n);
    for (size_t i = 0; i < n; i++) {
        if (m[i].conn != 21 || m[i].c2s || m[i].len == 30)
            continue;
        const uint8_t *body = m[i].bytes + 8;
        size_t len = m[i].len - 8, pos = 0;
        while (pos < len) {
            struct as_msg_view rv;
            struct err e2;
            assert_int_equal(as_msg_parse(body + pos, len - pos, &rv, &e2), 0);
            pos += rv.size;
            if (rv.h.result_code != 0)
                continue;
            struct wr w = { .ns = "test", .set = rv.h.transaction_ttl == 0 ? "users" : "events",
                            .digest = rv.h.transaction_ttl == 0 ? d_user : d_event };
            struct bin bins[16];
            size_t nb = 0;
            char names[16][16];
            struct as_iter it;
            struct as_op op;
            as_msg_ops(&rv, &it);
            while (as_op_next(&it, &op) && nb < 16) {
                memcpy(names[nb], op.name, op.name_len);
                names[nb][op.name_len] = '\0';
                bins[nb] = (struct bin){ names[nb], op.particle_type, op.value, op.value_len };
                nb++;
            }
            assert_int_equal(put(fd, &w, bins, nb, NULL), 0);
        }
    }
    close(fd);

    /* conn 26 is a Lua compile error, which the emulator cannot detect (it does not run Lua) */
    static const int skip_values[] = { 26 };
    replay(&e, m, n, skip_values, 1, true);
    capture_free(m, n);
    emu_stop(&e);
}

/* The only admin traffic in the captures: asbackup's LOGIN (user admin, bcrypt credential) to CE,
 * answered 51. The client encodes the same LOGIN byte for byte; a secured emulator holding that
 * credential answers it with a session token and TTL, one holding another password with 65 in
 * the captured reply's shape (16-byte body, no fields); the token then authenticates a new
 * connection, and before that info and AS_MSG requests answer 80. */
static void test_replay_admin(void **state)
{
    (void)state;
    size_t n;
    struct cap_msg *m = capture_load("g-errors.jsonl", &n);
    const struct cap_msg *login = NULL, *reply = NULL;
    for (size_t i = 0; i < n; i++) {
        if (m[i].type != AS_PROTO_ADMIN)
            continue;
        if (m[i].c2s)
            login = &m[i];
        else
            reply = &m[i];
    }
    assert_non_null(login);
    assert_non_null(reply);
    /* fields: USER "admin", CREDENTIAL (60 characters) */
    const uint8_t *b = login->bytes + 8;
    assert_int_equal(b[2], AS_ADMIN_LOGIN);
    assert_int_equal(b[3], 2);
    uint32_t ul = as_get_u32(b + 16) - 1;
    char user[32] = "", cred[AS_CREDENTIAL_LEN + 1] = "";
    assert_true(ul < sizeof user);
    memcpy(user, b + 21, ul);
    const uint8_t *cf = b + 21 + ul;
    assert_int_equal(as_get_u32(cf) - 1, AS_CREDENTIAL_LEN);
    assert_int_equal(cf[4], AS_ADMIN_FIELD_CREDENTIAL);
    memcpy(cred, cf + 5, AS_CREDENTIAL_LEN);
    assert_string_equal(user, "admin");

    struct as_buf enc;
    as_buf_init(&enc);
    struct err err;
    assert_int_equal(as_auth_login_encode(&enc, AS_AUTH_INTERNAL, user, cred, NULL, &err), 0);
    assert_int_equal(enc.len, login->len);
    assert_memory_equal(enc.data, login->bytes, login->len);
    as_buf_free(&enc);

    /* a password the capture did not use: 65 in the captured reply's shape */
    struct emu e;
    emu_start(&e, "--user admin:other-password");
    int fd = connect_port(e.ports[0]);
    send_bytes(fd, login->bytes, login->len);
    struct as_proto_header h;
    uint8_t *body = recv_msg(fd, &h);
    assert_non_null(body);
    assert_int_equal(h.type, AS_PROTO_ADMIN);
    assert_int_equal(h.size, reply->len - 8);
    assert_int_equal(body[1], AS_SEC_ERR_CREDENTIAL);
    assert_int_equal(body[3], 0);
    free(body);
    close(fd);
    emu_stop(&e);

    /* the stored credential of the capture: a session */
    char args[128];
    snprintf(args, sizeof args, "--user admin:%s --session-ttl 600", cred);
    emu_start(&e, args);
    fd = connect_port(e.ports[0]);
    char *v = info(fd, "namespaces\nbuild\n"); /* not logged in: the whole reply is the error */
    assert_string_equal(v, "ERROR:80:not authenticated\n");
    free(v);
    close(fd);
    fd = connect_port(e.ports[0]);
    send_bytes(fd, login->bytes, login->len);
    body = recv_msg(fd, &h);
    assert_non_null(body);
    assert_int_equal(h.type, AS_PROTO_ADMIN);
    int result = -1;
    uint32_t ttl = 0;
    struct as_session sess = { 0 };
    assert_int_equal(as_auth_reply_decode(body, h.size, &result, &sess, &ttl, &err), 0);
    assert_int_equal(result, 0);
    assert_int_equal(body[3], 2);
    assert_int_equal(ttl, 600);
    assert_non_null(sess.token);
    free(body);
    v = info1(fd, "namespaces");
    assert_string_equal(v, "test");
    free(v);
    close(fd);
    /* a new connection: AUTHENTICATE with the token */
    fd = connect_port(e.ports[0]);
    struct as_buf a;
    as_buf_init(&a);
    assert_int_equal(as_auth_authenticate_encode(&a, AS_AUTH_INTERNAL, "admin", &sess, &err), 0);
    send_bytes(fd, a.data, a.len);
    body = recv_msg(fd, &h);
    assert_non_null(body);
    assert_int_equal(h.size, 16);
    assert_int_equal(body[1], 0);
    free(body);
    /* a second AUTHENTICATE on an authenticated connection: 56 */
    send_bytes(fd, a.data, a.len);
    body = recv_msg(fd, &h);
    assert_non_null(body);
    assert_int_equal(body[1], AS_SEC_ERR_STATE);
    free(body);
    v = info1(fd, "build");
    assert_string_equal(v, "8.1.2.0");
    free(v);
    close(fd);
    /* a tampered token: 65 */
    sess.token[sess.token_len - 1] ^= 1;
    as_buf_reset(&a);
    assert_int_equal(as_auth_authenticate_encode(&a, AS_AUTH_INTERNAL, "admin", &sess, &err), 0);
    fd = connect_port(e.ports[0]);
    send_bytes(fd, a.data, a.len);
    body = recv_msg(fd, &h);
    assert_non_null(body);
    assert_int_equal(body[1], AS_SEC_ERR_CREDENTIAL);
    free(body);
    /* an AS_MSG before login: 80 */
    for (size_t i = 0; i < n; i++) {
        if (m[i].type == AS_PROTO_MSG && m[i].c2s) {
            send_bytes(fd, m[i].bytes, m[i].len);
            break;
        }
    }
    body = recv_msg(fd, &h);
    assert_non_null(body);
    assert_int_equal(h.type, AS_PROTO_MSG);
    assert_int_equal(body[5], AS_SEC_ERR_NOT_AUTHENTICATED);
    free(body);
    close(fd);
    as_buf_free(&a);
    as_session_clear(&sess);
    emu_stop(&e);
    capture_free(m, n);
}

static void test_replay_restore_and_backup(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test");
    size_t n;
    struct cap_msg *m = capture_load("f1-restore.batch.jsonl", &n);
    /* asrestore's first 128-row batch into a fresh server and one single write: same per-row
     * results, generations, indexes and RESPOND_ALL_OPS ops as CE 8.1.2 */
    replay(&e, m, n, NULL, 0, true);
    capture_free(m, n);

    /* asbackup's full-scan request against that data: one stream ending with LAST alone; every
     * record the emulator returns that is also in the captured chunk has the same fields and bins */
    struct cap_msg *s = capture_load("b-backup-full-p1.scan.jsonl", &n);
    int fd = connect_port(e.ports[0]);
    send_bytes(fd, s[0].bytes, s[0].len);
    struct scan_res r;
    scan_read(fd, &r);
    assert_true(r.last);
    assert_int_equal(r.records, 129);
    free(r.digests);
    /* same request again, records compared with the captured ones by digest */
    send_bytes(fd, s[0].bytes, s[0].len);
    const uint8_t *cap = s[1].bytes + 8;
    size_t cap_len = s[1].len - 8;
    unsigned compared = 0;
    for (;;) {
        struct as_proto_header h;
        uint8_t *body = recv_msg(fd, &h);
        assert_non_null(body);
        size_t pos = 0;
        bool last = false;
        while (pos < h.size) {
            struct as_msg_view g;
            struct err e2;
            assert_int_equal(as_msg_parse(body + pos, h.size - pos, &g, &e2), 0);
            if (g.h.info3 & AS_INFO3_LAST) {
                last = true;
                break;
            }
            struct as_field gd;
            assert_true(as_msg_find_field(&g, AS_FIELD_DIGEST, &gd));
            /* field order NAMESPACE, DIGEST, [SET], [KEY] */
            struct as_iter it;
            struct as_field f;
            as_msg_fields(&g, &it);
            assert_true(as_field_next(&it, &f) && f.type == AS_FIELD_NAMESPACE);
            assert_true(as_field_next(&it, &f) && f.type == AS_FIELD_DIGEST);
            size_t cp = 0;
            while (cp < cap_len) {
                struct as_msg_view w;
                assert_int_equal(as_msg_parse(cap + cp, cap_len - cp, &w, &e2), 0);
                struct as_field wd;
                assert_true(as_msg_find_field(&w, AS_FIELD_DIGEST, &wd));
                if (memcmp(wd.data, gd.data, 20) == 0) {
                    compare_msgs(body + pos, g.size, cap + cp, w.size, true);
                    assert_int_equal(g.fields_len, w.fields_len);
                    assert_int_equal(memcmp(body + pos + AS_MSG_HEADER_SIZE, cap + cp + AS_MSG_HEADER_SIZE,
                                            g.fields_len), 0);
                    compared++;
                }
                cp += w.size;
            }
            pos += g.size;
        }
        free(body);
        if (last)
            break;
    }
    assert_true(compared >= 10);
    close(fd);
    capture_free(s, n);
    emu_stop(&e);
}

/* Load asbackup's golden full backup, scan it with asbackup's captured request and compare every
 * record of the captured reply chunk with the emulator's (bins, key, set, generation, void-time
 * zero-ness); then dump, reload the dump in a second emulator and dump again: identical files. */
static void test_load_and_dump(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "--namespace test --namespace bar --load-asb %s/asb/b-backup-full-p1/test_00000.asb",
             TEST_DATA_DIR);
    struct emu e;
    emu_start(&e, path);
    int fd = connect_port(e.ports[0]);
    char *v = info1(fd, "namespace/test");
    const char *val;
    size_t vl;
    assert_true(as_info_kv(v, strlen(v), ';', "objects", &val, &vl));
    assert_int_equal(strtol(val, NULL, 10), 2000);
    free(v);
    v = info1(fd, "udf-list");
    assert_memory_equal(v, "filename=wirecorpus.lua,hash=", 29);
    free(v);
    v = info1(fd, "sindex-list:ns=test;b64=true");
    unsigned idx = 1;
    for (const char *p = v; (p = strchr(p, ';')) != NULL; p++)
        idx++;
    assert_int_equal(idx, 6);
    assert_non_null(strstr(v, "indexname=idx_loc:set=null:bin=loc:type=geo2dsphere"));
    assert_non_null(strstr(v, "context=kiKkA2x2bA=="));
    free(v);

    size_t n;
    struct cap_msg *s = capture_load("b-backup-full-p1.scan.jsonl", &n);
    send_bytes(fd, s[0].bytes, s[0].len);
    const uint8_t *cap = s[1].bytes + 8;
    size_t cap_len = s[1].len - 8;
    unsigned total = 0, compared = 0;
    for (bool last = false; !last;) {
        struct as_proto_header h;
        uint8_t *body = recv_msg(fd, &h);
        assert_non_null(body);
        size_t pos = 0;
        while (pos < h.size) {
            struct as_msg_view g;
            struct err e2;
            assert_int_equal(as_msg_parse(body + pos, h.size - pos, &g, &e2), 0);
            if (g.h.info3 & AS_INFO3_LAST) {
                last = true;
                break;
            }
            total++;
            struct as_field gd;
            assert_true(as_msg_find_field(&g, AS_FIELD_DIGEST, &gd));
            size_t cp = 0;
            while (cp < cap_len) {
                struct as_msg_view w;
                assert_int_equal(as_msg_parse(cap + cp, cap_len - cp, &w, &e2), 0);
                struct as_field wd;
                assert_true(as_msg_find_field(&w, AS_FIELD_DIGEST, &wd));
                if (memcmp(wd.data, gd.data, 20) == 0) {
                    compare_msgs(body + pos, g.size, cap + cp, w.size, true);
                    assert_int_equal(g.fields_len, w.fields_len);
                    assert_int_equal(memcmp(body + pos + AS_MSG_HEADER_SIZE, cap + cp + AS_MSG_HEADER_SIZE,
                                            g.fields_len), 0);
                    if (g.h.record_ttl != 0) /* +0/+1 s drift: asbackup wrote what the server said */
                        assert_int_equal(g.h.record_ttl, w.h.record_ttl);
                    compared++;
                }
                cp += w.size;
            }
            pos += g.size;
        }
        free(body);
    }
    assert_int_equal(total, 2000);
    assert_int_equal(compared, 526);
    capture_free(s, n);

    /* dump -> load -> dump is stable */
    char d1[256], d2[256], cmd[600];
    snprintf(d1, sizeof d1, "%s/dump1.asb", e.dir);
    snprintf(d2, sizeof d2, "%s/dump2.asb", e.dir);
    snprintf(cmd, sizeof cmd, "emulator-dump:namespace=test;file=%s", d1);
    v = info1(fd, cmd);
    assert_string_equal(v, "ok");
    free(v);
    v = info1(fd, "emulator-dump:namespace=nosuch;file=/nonexistent/x");
    assert_memory_equal(v, "ERROR::", 7);
    free(v);
    close(fd);
    struct emu e2;
    snprintf(path, sizeof path, "--namespace test --load-asb %s", d1);
    emu_start(&e2, path);
    fd = connect_port(e2.ports[0]);
    snprintf(cmd, sizeof cmd, "emulator-dump:namespace=test;file=%s", d2);
    v = info1(fd, cmd);
    assert_string_equal(v, "ok");
    free(v);
    close(fd);
    emu_stop(&e2);
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", d1, d2);
    assert_int_equal(system(cmd), 0);
    struct stat st;
    assert_int_equal(stat(d1, &st), 0);
    assert_true(st.st_size > 300000);
    unlink(d1);
    unlink(d2);
    emu_stop(&e);
}

/* ---- tests: concurrency ------------------------------------------------------------------------------------ */

struct worker {
    int port;
    int id;
    bool scanner;
    unsigned scans;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int fd = connect_port(w->port);
    if (w->scanner) {
        for (int i = 0; i < 20; i++) {
            struct scan_req q = { .ns = "test" };
            struct scan_res r;
            scan(fd, &q, &r);
            assert_true(r.last);
            free(r.digests);
            w->scans++;
        }
    } else {
        char set[16];
        snprintf(set, sizeof set, "set%d", w->id);
        put_many(fd, "test", set, 0, 300);
    }
    close(fd);
    return NULL;
}

static void test_concurrency(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test --chunk-size 8192");
    struct worker w[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (struct worker){ .port = e.ports[0], .id = i, .scanner = i >= 4 };
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    int fd = connect_port(e.ports[0]);
    struct scan_req q = { .ns = "test" };
    struct scan_res r;
    scan(fd, &q, &r);
    assert_int_equal(r.records, 1200);
    free(r.digests);
    close(fd);
    emu_stop(&e);
}

/* ---- tests: hostile input ------------------------------------------------------------------------------------ */

/* Mutated copies of real client requests (scans, writes, batches) must never crash or hang the
 * emulator: each goes on its own connection, the replies are drained until the emulator closes,
 * and the emulator must still answer and exit cleanly (sanitizer builds check memory). */
static void test_hostile_requests(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test --namespace bar");
    size_t n1, n2;
    struct cap_msg *g = capture_load("g-errors.jsonl", &n1);
    struct cap_msg *f = capture_load("f1-restore.batch.jsonl", &n2);
    struct cap_msg *pool[64];
    size_t np = 0;
    for (size_t i = 0; i < n1 && np < 64; i++)
        if (g[i].c2s && g[i].type == AS_PROTO_MSG)
            pool[np++] = &g[i];
    for (size_t i = 0; i < n2 && np < 64; i++)
        if (f[i].c2s)
            pool[np++] = &f[i];
    assert_true(np > 20);
    srand(4242);
    for (int round = 0; round < 600; round++) {
        const struct cap_msg *m = pool[(size_t)rand() % np];
        size_t len = m->len;
        uint8_t *b = malloc(len);
        assert_non_null(b);
        memcpy(b, m->bytes, len);
        int flips = 1 + rand() % 6;
        for (int k = 0; k < flips; k++)
            b[8 + (size_t)rand() % (len - 8)] = (uint8_t)rand();
        if (rand() % 4 == 0) { /* truncate the body, keeping the frame consistent */
            len = 8 + (size_t)rand() % (len - 8);
            as_proto_header_encode(b, AS_PROTO_MSG, len - 8);
        }
        int fd = connect_port(e.ports[0]);
        struct timeval tv = { 5, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        send_bytes(fd, b, len);
        shutdown(fd, SHUT_WR);
        uint8_t sink[65536];
        ssize_t r;
        while ((r = recv(fd, sink, sizeof sink, 0)) > 0)
            ;
        assert_int_equal(r, 0); /* EOF, not a timeout */
        close(fd);
        free(b);
    }
    int fd = connect_port(e.ports[0]);
    char *v = info1(fd, "build");
    assert_string_equal(v, "8.1.2.0");
    free(v);
    close(fd);
    capture_free(g, n1);
    capture_free(f, n2);
    emu_stop(&e);
}

static void test_generate(void **state)
{
    (void)state;
    struct emu e;
    emu_start(&e, "--namespace test --generate test:3000:gen:120 --generate test:500");
    int fd = connect_port(e.ports[0]);
    struct scan_req q = { .ns = "test", .set = "gen" };
    struct scan_res r;
    scan(fd, &q, &r);
    assert_int_equal(r.records, 3000);
    assert_int_equal(r.with_key, 3000);
    assert_int_equal(r.ops_total, 9000);
    free(r.digests);
    q.set = NULL;
    scan(fd, &q, &r);
    assert_int_equal(r.records, 3500);
    free(r.digests);
    int64_t iv;
    struct wr w = { .ns = "test", .set = "gen", .key = "key-42" };
    assert_int_equal(get_int_bin(fd, &w, "id", &iv, NULL), 0);
    assert_int_equal(iv, 42);
    close(fd);
    emu_stop(&e);
}

int main(int argc, char **argv)
{
    g_emu_path = argc > 1 ? argv[1] : "./aerospike-emulator";
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_info, kill_leftovers),
        cmocka_unit_test_teardown(test_write_read, kill_leftovers),
        cmocka_unit_test_teardown(test_scan, kill_leftovers),
        cmocka_unit_test_teardown(test_scan_filters, kill_leftovers),
        cmocka_unit_test_teardown(test_batch, kill_leftovers),
        cmocka_unit_test_teardown(test_two_nodes, kill_leftovers),
        cmocka_unit_test_teardown(test_faults, kill_leftovers),
        cmocka_unit_test_teardown(test_replay_errors, kill_leftovers),
        cmocka_unit_test_teardown(test_replay_restore_and_backup, kill_leftovers),
        cmocka_unit_test_teardown(test_load_and_dump, kill_leftovers),
        cmocka_unit_test_teardown(test_replay_admin, kill_leftovers),
        cmocka_unit_test_teardown(test_concurrency, kill_leftovers),
        cmocka_unit_test_teardown(test_hostile_requests, kill_leftovers),
        cmocka_unit_test_teardown(test_generate, kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
