/*
 * test_as_tls.c - TLS connections and logins of the native client end to end against the
 * protocol emulator (tests/emulator) started with TLS listeners and/or users. Certificates
 * (a CA, a server certificate for node1.test / node2.test / *.cluster.test / 127.0.0.1, a client
 * certificate with an encrypted key, a hashed CA directory, an unrelated CA) are made at
 * start-up by tests/emulator/gen-test-certs.sh with the openssl CLI into a temporary directory.
 *
 * TLS: ca-file, ca-path, name check and SNI per seed (a wrong name fails clearly, the next seed
 * is used), peers' TLS names from peers-tls-std, unknown CA, TLS against a clear port, mutual
 * TLS with the key password literal / env: / file:, wrong or missing password, missing client
 * certificate, protocol and cipher mismatches (each with a clear message).
 * Login: INTERNAL, wrong password / unknown user (code names), no user against a secured node,
 * a user against Community (51) and Enterprise without security (52), token reuse on new
 * connections, renewal when the session TTL runs out and when the server expires sessions,
 * refused logins, role violations, PKI.
 *
 * The emulator binary is found through $ABS_EMULATOR or next to this test; without it (or
 * without the openssl CLI) every test is skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aerospike/as_auth.h"
#include "aerospike/as_cluster.h"
#include "aerospike/as_info.h"

#include "emu_launch.h"

static char g_bin[PATH_MAX];
static char g_dir[128];
static bool g_ready;

/* ---- emulator process ------------------------------------------------------------------------ */

struct emu {
    struct emu_proc proc;
    int ports[2];
    int tls_ports[2];
};

static const char *path(const char *name)
{
    static char buf[8][PATH_MAX];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", g_dir, name);
    return b;
}

/* Starts the emulator with 2 nodes and the extra arguments (NULL-terminated list). */
static void emu_start(struct emu *e, bool tls, ...)
{
    static int seq;
    memset(e, 0, sizeof *e);
    snprintf(e->proc.port_file, sizeof e->proc.port_file, "%s/ports-%d", g_dir, seq++);
    const char *args[EMU_MAX_ARGS + 1];
    int n = 0;
    args[n++] = "--nodes";
    args[n++] = "2";
    va_list ap;
    va_start(ap, tls);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < EMU_MAX_ARGS)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    e->proc.pid = emu_spawn(g_bin, e->proc.port_file, args);
    assert_true(e->proc.pid >= 0);
    if (emu_wait_ports(&e->proc, tls ? 4 : 2) == 0) {
        memcpy(e->ports, e->proc.ports, sizeof e->ports);
        memcpy(e->tls_ports, e->proc.ports + 2, sizeof e->tls_ports);
        return;
    }
    if (e->proc.pid < 0)
        fail_msg("emulator exited with status %d", e->proc.exit_status);
    fail_msg("emulator did not start");
}

static void emu_stop(struct emu *e)
{
    emu_proc_stop(&e->proc);
}

/* An info request on a raw clear connection (emulator-* knobs answer without a login). */
static char *raw_info(int port, const char *cmd)
{
    struct as_conn c;
    struct err e;
    if (as_conn_open(&c, "127.0.0.1", (uint16_t)port, NULL, NULL, 2000, &e) != 0)
        fail_msg("%s", e.msg);
    struct as_buf reply;
    as_buf_init(&reply);
    if (as_info_exec(&c, cmd, &reply, as_deadline_in(5000), 0, &e) != 0)
        fail_msg("%s", e.msg);
    as_conn_close(&c);
    const char *v;
    size_t vl;
    char *out = as_info_reply_value(&reply, cmd, &v, &vl) ? strndup(v, vl)
                                                          : strndup((const char *)reply.data, reply.len);
    as_buf_free(&reply);
    return out;
}

/* A counter from emulator-stats. */
static long stat_of(int port, const char *key)
{
    char *v = raw_info(port, "emulator-stats");
    uint64_t x = 0;
    bool ok = as_info_kv_u64(v, strlen(v), ';', key, &x);
    free(v);
    assert_true(ok);
    return (long)x;
}

/* ---- client side ------------------------------------------------------------------------------- */

struct opts {
    const char *tls_name, *tls_name2; /* seeds 1 and 2 (2 only with two_seeds) */
    bool two_seeds;
    bool tls;
    const char *ca_file, *ca_path, *cert, *key, *key_pw, *protocols, *ciphers;
    const char *user, *password;
    enum as_auth_mode mode;
};

static int connect_cluster(const struct emu *em, const struct opts *o, struct as_cluster **c, struct err *e)
{
    struct as_host h[2];
    memset(h, 0, sizeof h);
    for (int i = 0; i < 2; i++) {
        snprintf(h[i].name, sizeof h[i].name, "127.0.0.1");
        h[i].port = (uint16_t)(o->tls ? em->tls_ports[i] : em->ports[i]);
    }
    if (o->tls_name)
        snprintf(h[0].tls_name, sizeof h[0].tls_name, "%s", o->tls_name);
    if (o->tls_name2)
        snprintf(h[1].tls_name, sizeof h[1].tls_name, "%s", o->tls_name2);
    struct as_cluster_config cfg = {
        .seeds = h, .n_seeds = o->two_seeds ? 2 : 1, .user = o->user, .password = o->password,
        .auth_mode = o->mode, .connect_timeout_ms = 3000, .login_timeout_ms = 3000,
        .info_timeout_ms = 3000,
    };
    cfg.tls = (struct as_tls_config){ .enable = o->tls, .ca_file = o->ca_file, .ca_path = o->ca_path,
                                      .cert_file = o->cert, .key_file = o->key,
                                      .key_password = o->key_pw, .protocols = o->protocols,
                                      .cipher_suite = o->ciphers };
    *c = NULL;
    return as_cluster_new(&cfg, c, e);
}

/* namespaces on a pooled (non-tend) connection of every node */
static void check_info(struct as_cluster *c)
{
    struct as_node **nodes;
    size_t n;
    struct err e;
    assert_int_equal(as_cluster_nodes(c, &nodes, &n, &e), 0);
    for (size_t i = 0; i < n; i++) {
        struct as_strv ns;
        if (as_info_namespaces(nodes[i], &ns, &e) != 0)
            fail_msg("namespaces: %s", e.msg);
        assert_int_equal(ns.n, 1);
        assert_string_equal(ns.v[0], "test");
        as_strv_free(&ns);
    }
    as_nodes_release(nodes, n);
}

static void must_connect(const struct emu *em, const struct opts *o, size_t want_nodes)
{
    struct as_cluster *c;
    struct err e;
    if (connect_cluster(em, o, &c, &e) != 0)
        fail_msg("cluster: %s", e.msg);
    assert_int_equal(as_cluster_node_count(c), want_nodes);
    check_info(c);
    as_cluster_free(c);
}

/* Connecting fails with `code` and a message holding every given fragment. */
static void must_fail(const struct emu *em, const struct opts *o, int code, ...)
{
    struct as_cluster *c;
    struct err e;
    err_clear(&e);
    int rc = connect_cluster(em, o, &c, &e);
    if (rc == 0) {
        as_cluster_free(c);
        fail_msg("connected, expected a failure");
    }
    if (code)
        assert_int_equal(rc, code);
    va_list ap;
    va_start(ap, code);
    const char *frag;
    while ((frag = va_arg(ap, const char *)) != NULL)
        if (!strstr(e.msg, frag))
            fail_msg("'%s' not in: %s", frag, e.msg);
    va_end(ap);
}

#define NEED_READY()                                                          \
    do {                                                                      \
        if (!g_ready) {                                                       \
            fprintf(stderr, "emulator or openssl CLI not available: skipped\n"); \
            skip();                                                           \
        }                                                                     \
    } while (0)

#define TLS_ARGS "--tls-port", "0", "--tls-cert", path("server.pem"), "--tls-key", path("server.key")

/* ---- TLS --------------------------------------------------------------------------------------- */

static void test_tls_ca_and_names(void **state)
{
    (void)state;
    NEED_READY();
    struct emu em;
    emu_start(&em, true, TLS_ARGS, "--tls-name", "node1.test,node2.test", NULL);
    struct opts o = { .tls = true, .ca_file = path("ca.pem"), .tls_name = "node1.test" };
    must_connect(&em, &o, 2); /* node 2 found through peers-tls-std with its own name */
    char *st = raw_info(em.ports[0], "emulator-stats");
    assert_non_null(strstr(st, "last_sni=node")); /* the name is sent as SNI */
    free(st);
    /* wildcard SAN */
    o.tls_name = "a.cluster.test";
    must_connect(&em, &o, 2);
    /* a name the certificate does not carry */
    o.tls_name = "other.test";
    must_fail(&em, &o, 0, "certificate verification failed", "other.test", NULL);
    /* per seed: the first seed's name is wrong, the second seed's is right */
    o.two_seeds = true;
    o.tls_name2 = "node2.test";
    must_connect(&em, &o, 2);
    o.two_seeds = false;
    o.tls_name2 = NULL;
    /* ca-path: a hashed directory */
    o = (struct opts){ .tls = true, .ca_path = path("capath"), .tls_name = "node1.test" };
    must_connect(&em, &o, 2);
    /* a CA that did not sign the server certificate */
    o = (struct opts){ .tls = true, .ca_file = path("other-ca.pem"), .tls_name = "node1.test" };
    must_fail(&em, &o, 0, "certificate verification failed", NULL);
    /* TLS against the clear port fails, no hang */
    struct emu clear = em;
    clear.tls_ports[0] = em.ports[0];
    o = (struct opts){ .tls = true, .ca_file = path("ca.pem"), .tls_name = "node1.test" };
    must_fail(&clear, &o, 0, "tls", NULL);
    emu_stop(&em);
}

static void test_tls_mutual(void **state)
{
    (void)state;
    NEED_READY();
    struct emu em;
    emu_start(&em, true, TLS_ARGS, "--tls-name", "node1.test", "--tls-ca", path("ca.pem"), NULL);
    struct opts o = { .tls = true, .ca_file = path("ca.pem"), .tls_name = "node1.test",
                      .cert = path("client.pem"), .key = path("client.key"), .key_pw = "kpw" };
    must_connect(&em, &o, 2);
    /* key-file-password from the environment and from a file */
    setenv("ABS_TEST_KEY_PW", "kpw", 1);
    o.key_pw = "env:ABS_TEST_KEY_PW";
    must_connect(&em, &o, 2);
    FILE *f = fopen(path("kpw.txt"), "w");
    assert_non_null(f);
    fputs("kpw\n", f);
    fclose(f);
    char spec[PATH_MAX + 8];
    snprintf(spec, sizeof spec, "file:%s", path("kpw.txt"));
    o.key_pw = spec;
    must_connect(&em, &o, 2);
    /* an unencrypted key needs no password */
    o.key = path("client-plain.key");
    o.key_pw = NULL;
    must_connect(&em, &o, 2);
    /* wrong password, unset variable, missing password: refused while building the context,
     * without the password in the message */
    o.key = path("client.key");
    o.key_pw = "not-the-pw";
    must_fail(&em, &o, ERR_INVALID, "key-file", "wrong key-file-password", NULL);
    struct as_cluster *c;
    struct err e;
    connect_cluster(&em, &o, &c, &e);
    assert_null(strstr(e.msg, "not-the-pw"));
    unsetenv("ABS_TEST_KEY_PW");
    o.key_pw = "env:ABS_TEST_KEY_PW";
    must_fail(&em, &o, ERR_INVALID, "ABS_TEST_KEY_PW", "not set", NULL);
    o.key_pw = "file:/nonexistent/pw";
    must_fail(&em, &o, ERR_INVALID, "/nonexistent/pw", NULL);
    o.key_pw = NULL;
    must_fail(&em, &o, ERR_INVALID, "key-file", NULL);
    /* no client certificate: the server refuses */
    o = (struct opts){ .tls = true, .ca_file = path("ca.pem"), .tls_name = "node1.test" };
    must_fail(&em, &o, 0, "client certificate", NULL);
    emu_stop(&em);
}

static void test_tls_protocols_and_ciphers(void **state)
{
    (void)state;
    NEED_READY();
    struct emu em;
    emu_start(&em, true, TLS_ARGS, "--tls-protocols", "TLSv1.3", NULL);
    struct opts o = { .tls = true, .ca_file = path("ca.pem"), .tls_name = "node1.test", .protocols = "TLSv1.2" };
    must_fail(&em, &o, ERR_IO, "protocol", NULL);
    o.protocols = "TLSv1.3";
    must_connect(&em, &o, 2);
    o.protocols = "+TLSv1.3"; /* added to the default set */
    must_connect(&em, &o, 2);
    o.protocols = "TLSv9";
    must_fail(&em, &o, ERR_INVALID, "unknown protocol", NULL);
    emu_stop(&em);

    emu_start(&em, true, TLS_ARGS, "--tls-protocols", "TLSv1.2", "--tls-cipher-suite",
              "ECDHE-ECDSA-AES128-GCM-SHA256", NULL);
    o = (struct opts){ .tls = true, .ca_file = path("ca.pem"), .tls_name = "node1.test",
                       .ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384" };
    must_fail(&em, &o, ERR_IO, "cipher", NULL);
    o.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
    must_connect(&em, &o, 2);
    o.ciphers = "NO-SUCH-CIPHER";
    must_fail(&em, &o, ERR_INVALID, "cipher-suite", NULL);
    emu_stop(&em);
}

/* ---- login --------------------------------------------------------------------------------------- */

static void test_login_internal(void **state)
{
    (void)state;
    NEED_READY();
    struct emu em;
    emu_start(&em, false, "--user", "admin:s3cret", "--user", "reader:rpw:read", NULL);
    struct opts o = { .user = "admin", .password = "s3cret" };
    struct as_cluster *c;
    struct err e;
    if (connect_cluster(&em, &o, &c, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(as_cluster_node_count(c), 2);
    assert_int_equal(stat_of(em.ports[0], "logins"), 2); /* one per node, on its tend connection */
    check_info(c);                                      /* pooled connections: AUTHENTICATE */
    assert_int_equal(stat_of(em.ports[0], "logins"), 2);
    assert_true(stat_of(em.ports[0], "authenticates") >= 2);
    as_cluster_free(c);

    /* wrong password and unknown user: the code name, a hint, never the password */
    o.password = "wrong-pw";
    must_fail(&em, &o, ERR_INVALID, "INVALID_CREDENTIAL", "wrong password", "'admin'", NULL);
    connect_cluster(&em, &o, &c, &e);
    assert_null(strstr(e.msg, "wrong-pw"));
    o = (struct opts){ .user = "nobody", .password = "x" };
    must_fail(&em, &o, ERR_INVALID, "INVALID_USER", NULL);
    /* no user against a secured node */
    o = (struct opts){ 0 };
    must_fail(&em, &o, 0, "NOT_AUTHENTICATED", "no user is configured", NULL);
    /* refused logins (fault knob) */
    char *v = raw_info(em.ports[0], "emulator-fault:refuse-logins=82");
    assert_string_equal(v, "ok");
    free(v);
    o = (struct opts){ .user = "admin", .password = "s3cret" };
    must_fail(&em, &o, ERR_INVALID, "NOT_WHITELISTED", NULL);
    free(raw_info(em.ports[0], "emulator-fault:refuse-logins=0"));
    /* a read-only user reads but may not install a UDF */
    o = (struct opts){ .user = "reader", .password = "rpw" };
    if (connect_cluster(&em, &o, &c, &e) != 0)
        fail_msg("%s", e.msg);
    check_info(c);
    struct as_node *n = as_cluster_random_node(c);
    assert_int_not_equal(as_info_udf_put(n, "x.lua", (const uint8_t *)"-- x", 4, &e), 0);
    assert_non_null(strstr(e.msg, "ROLE_VIOLATION"));
    as_node_release(n);
    as_cluster_free(c);
    emu_stop(&em);
}

static void test_login_sessions(void **state)
{
    (void)state;
    NEED_READY();
    struct emu em;
    emu_start(&em, false, "--user", "admin:s3cret", NULL);
    struct opts o = { .user = "admin", .password = "s3cret" };
    struct as_cluster *c;
    struct err e;
    if (connect_cluster(&em, &o, &c, &e) != 0)
        fail_msg("%s", e.msg);
    long logins = stat_of(em.ports[0], "logins");
    struct as_node *n = as_cluster_node_by_name(c, "BB9000000000001");
    assert_non_null(n);
    struct as_conn *c1, *c2, *c3;
    assert_int_equal(as_node_conn_get(n, &c1, &e), 0); /* token reused: AUTHENTICATE */
    assert_int_equal(stat_of(em.ports[0], "logins"), logins);
    long auths = stat_of(em.ports[0], "authenticates");
    assert_true(auths >= 1);
    /* the server expires every session: the next new connection is refused (66), logs in again */
    free(raw_info(em.ports[0], "emulator-fault:expire-sessions=1"));
    if (as_node_conn_get(n, &c2, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(stat_of(em.ports[0], "logins"), logins + 1);
    assert_int_equal(stat_of(em.ports[0], "auth_failures"), 1);
    /* the renewed token is reused again */
    assert_int_equal(as_node_conn_get(n, &c3, &e), 0);
    assert_int_equal(stat_of(em.ports[0], "logins"), logins + 1);
    as_node_conn_put(n, c1);
    as_node_conn_put(n, c2);
    as_node_conn_put(n, c3);
    as_node_release(n);
    as_cluster_free(c);
    emu_stop(&em);

    /* a short session TTL: the client renews the token before the server forgets it */
    emu_start(&em, false, "--user", "admin:s3cret", "--session-ttl", "2", NULL);
    if (connect_cluster(&em, &o, &c, &e) != 0)
        fail_msg("%s", e.msg);
    logins = stat_of(em.ports[0], "logins");
    struct timespec ts = { 1, 300 * 1000000L };
    nanosleep(&ts, NULL);
    check_info(c); /* new connections: the session is due, LOGIN instead of AUTHENTICATE */
    assert_true(stat_of(em.ports[0], "logins") > logins);
    assert_int_equal(stat_of(em.ports[0], "auth_failures"), 0);
    assert_int_equal(as_cluster_tend(c, &e), 0);
    as_cluster_free(c);
    emu_stop(&em);
}

static void test_login_without_security(void **state)
{
    (void)state;
    NEED_READY();
    struct emu em;
    /* Community (51): a configured user is an error, no user works */
    emu_start(&em, false, NULL);
    struct opts o = { .user = "admin", .password = "s3cret" };
    must_fail(&em, &o, ERR_INVALID, "SECURITY_NOT_SUPPORTED", "Community", NULL);
    o = (struct opts){ 0 };
    must_connect(&em, &o, 2);
    emu_stop(&em);
    /* Enterprise without security (52): no login needed even with a user */
    emu_start(&em, false, "--enterprise", NULL);
    o = (struct opts){ .user = "admin", .password = "s3cret" };
    must_connect(&em, &o, 2);
    emu_stop(&em);
}

static void test_login_pki(void **state)
{
    (void)state;
    NEED_READY();
    struct emu em;
    emu_start(&em, true, TLS_ARGS, "--tls-name", "node1.test", "--tls-ca", path("ca.pem"),
              "--user", "backup-user:unused", NULL);
    struct opts o = { .tls = true, .ca_file = path("ca.pem"), .tls_name = "node1.test",
                      .cert = path("client.pem"), .key = path("client.key"), .key_pw = "kpw",
                      .mode = AS_AUTH_PKI };
    must_connect(&em, &o, 2);
    assert_int_equal(stat_of(em.ports[0], "logins"), 2);
    /* INTERNAL over mutual TLS works too */
    o.mode = AS_AUTH_INTERNAL;
    o.user = "backup-user";
    o.password = "unused";
    must_connect(&em, &o, 2);
    emu_stop(&em);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (!emu_find(g_bin, sizeof g_bin))
        return 0;
    snprintf(g_dir, sizeof g_dir, "/tmp/as-tls-%d", (int)getpid());
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof cmd, "bash '%s/../emulator/gen-test-certs.sh' '%s' kpw backup-user",
             TEST_DATA_DIR, g_dir);
    g_ready = system(cmd) == 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_dir[0]) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", g_dir);
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_ca_and_names),
        cmocka_unit_test(test_tls_mutual),
        cmocka_unit_test(test_tls_protocols_and_ciphers),
        cmocka_unit_test(test_login_internal),
        cmocka_unit_test(test_login_sessions),
        cmocka_unit_test(test_login_without_security),
        cmocka_unit_test(test_login_pki),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
