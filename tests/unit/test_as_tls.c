/*
 * test_as_tls.c - TLS connections and logins of the native client against a small fake
 * node running in a thread on loopback (the emulator speaks neither TLS nor security, and
 * Community servers have neither).
 *
 * The fake node answers the tend commands (node, partition-generation, build, peers,
 * replicas), `namespaces`, and the admin protocol: LOGIN checks the user and the bcrypt
 * credential and hands out a session token with a TTL, AUTHENTICATE checks the token, and
 * every info command on an unauthenticated connection gets ERROR:80. Certificates (a CA, a
 * server certificate for node1.test / 127.0.0.1, a client certificate with an encrypted key)
 * are generated at start-up with OpenSSL.
 *
 * Covered: server name check (SNI sent, matching and mismatching names, unknown CA), mutual
 * TLS with a password-protected key, INTERNAL login, token reuse on new connections
 * (AUTHENTICATE), re-login when the server forgets the session, wrong password, a server
 * without security (51 -> error when a user is configured, 52 -> no login), PKI login.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "aerospike/as_auth.h"
#include "aerospike/as_cluster.h"
#include "aerospike/as_info.h"

/* ---- certificates ------------------------------------------------------------------------ */

static char g_dir[64];
static char g_ca[128], g_srv_cert[128], g_srv_key[128], g_cli_cert[128], g_cli_key[128];

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                      const char *san, bool ca)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ext;
    if (ca) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (san) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k, const char *pw)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (x)
        PEM_write_X509(f, x);
    if (k)
        PEM_write_PrivateKey(f, k, pw ? EVP_aes_128_cbc() : NULL, (unsigned char *)pw,
                             pw ? (int)strlen(pw) : 0, NULL, NULL);
    fclose(f);
}

static void make_certs(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/as-tls-%d", (int)getpid());
    mkdir(g_dir, 0700);
    snprintf(g_ca, sizeof g_ca, "%s/ca.pem", g_dir);
    snprintf(g_srv_cert, sizeof g_srv_cert, "%s/server.pem", g_dir);
    snprintf(g_srv_key, sizeof g_srv_key, "%s/server.key", g_dir);
    snprintf(g_cli_cert, sizeof g_cli_cert, "%s/client.pem", g_dir);
    snprintf(g_cli_key, sizeof g_cli_key, "%s/client.key", g_dir);
    EVP_PKEY *cak = new_key(), *sk = new_key(), *ck = new_key();
    X509 *ca = new_cert(cak, "test CA", NULL, NULL, NULL, true);
    X509 *srv = new_cert(sk, "node1.test", ca, cak, "DNS:node1.test,DNS:*.cluster.test,IP:127.0.0.1", false);
    X509 *cli = new_cert(ck, "backup-user", ca, cak, NULL, false);
    write_pem(g_ca, ca, NULL, NULL);
    write_pem(g_srv_cert, srv, NULL, NULL);
    write_pem(g_srv_key, NULL, sk, NULL);
    write_pem(g_cli_cert, cli, NULL, NULL);
    write_pem(g_cli_key, NULL, ck, "kpw");
    X509_free(ca);
    X509_free(srv);
    X509_free(cli);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
}

/* ---- fake node ---------------------------------------------------------------------------- */

enum sec_mode { SEC_NONE_CE = 0, SEC_NOT_CONFIGURED = 1, SEC_ON = 2 };

struct fake {
    int listen_fd;
    int port;
    bool tls;
    bool require_client_cert;
    enum sec_mode sec;
    SSL_CTX *ctx;
    char credential[AS_CREDENTIAL_LEN + 1];
    char token[32];
    atomic_int logins, authenticates, connections, pki_logins;
    atomic_bool stop;
    char sni[128];
    pthread_mutex_t mu;
    pthread_t th;
};

static int io_read(int fd, SSL *ssl, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        int r = ssl ? SSL_read(ssl, p, (int)len) : (int)read(fd, p, len);
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static int io_write(int fd, SSL *ssl, const void *buf, size_t len)
{
    return ssl ? (SSL_write(ssl, buf, (int)len) == (int)len ? 0 : -1)
               : (write(fd, buf, len) == (ssize_t)len ? 0 : -1);
}

static void reply(int fd, SSL *ssl, uint8_t type, const void *body, size_t len)
{
    uint8_t h[8];
    as_proto_header_encode(h, type, len);
    io_write(fd, ssl, h, 8);
    io_write(fd, ssl, body, len);
}

static void admin_reply(int fd, SSL *ssl, uint8_t result, const char *token)
{
    uint8_t b[64] = { 0 };
    size_t n = 16;
    b[1] = result;
    if (token) {
        b[3] = 2;
        size_t tl = strlen(token);
        b[n + 3] = (uint8_t)(tl + 1);
        b[n + 4] = AS_ADMIN_FIELD_SESSION_TOKEN;
        memcpy(b + n + 5, token, tl);
        n += 5 + tl;
        b[n + 3] = 5;
        b[n + 4] = AS_ADMIN_FIELD_SESSION_TTL;
        b[n + 8] = 120; /* 120 s */
        n += 9;
    }
    reply(fd, ssl, AS_PROTO_ADMIN, b, n);
}

struct conn_arg {
    struct fake *f;
    int fd;
};

static void *serve(void *arg)
{
    struct conn_arg *ca = arg;
    struct fake *f = ca->f;
    int fd = ca->fd;
    free(ca);
    SSL *ssl = NULL;
    if (f->tls) {
        ssl = SSL_new(f->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1)
            goto out;
        const char *sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        pthread_mutex_lock(&f->mu);
        snprintf(f->sni, sizeof f->sni, "%s", sn ? sn : "");
        pthread_mutex_unlock(&f->mu);
    }
    atomic_fetch_add(&f->connections, 1);
    bool authed = f->sec != SEC_ON;
    for (;;) {
        uint8_t h[8];
        if (io_read(fd, ssl, h, 8))
            break;
        struct as_proto_header ph;
        struct err e;
        if (as_proto_header_decode(h, &ph, &e) || ph.size > 1 << 20)
            break;
        uint8_t *body = malloc(ph.size + 1);
        if (io_read(fd, ssl, body, ph.size)) {
            free(body);
            break;
        }
        if (ph.type == AS_PROTO_ADMIN) {
            if (f->sec == SEC_NONE_CE) {
                admin_reply(fd, ssl, AS_SEC_ERR_NOT_SUPPORTED, NULL);
            } else if (f->sec == SEC_NOT_CONFIGURED) {
                admin_reply(fd, ssl, AS_SEC_ERR_NOT_CONFIGURED, NULL);
            } else {
                uint8_t cmd = body[2], nf = body[3];
                char user[64] = "", cred[128] = "", tok[64] = "";
                size_t pos = 16;
                for (unsigned i = 0; i < nf && pos + 5 <= ph.size; i++) {
                    uint32_t sz = as_get_u32(body + pos);
                    uint8_t id = body[pos + 4];
                    size_t dl = sz - 1 < 63 ? sz - 1 : 63;
                    char *dst = id == AS_ADMIN_FIELD_USER ? user : id == AS_ADMIN_FIELD_CREDENTIAL ? cred
                                : id == AS_ADMIN_FIELD_SESSION_TOKEN ? tok : NULL;
                    if (dst) {
                        memcpy(dst, body + pos + 5, dl);
                        dst[dl] = 0;
                    }
                    pos += 4 + sz;
                }
                pthread_mutex_lock(&f->mu);
                if (cmd == AS_ADMIN_LOGIN) {
                    bool pki = nf == 0 && ssl && SSL_get0_peer_certificate(ssl);
                    if (pki || (strcmp(user, "u") == 0 && strcmp(cred, f->credential) == 0)) {
                        atomic_fetch_add(pki ? &f->pki_logins : &f->logins, 1);
                        snprintf(f->token, sizeof f->token, "TOKEN%d", atomic_load(&f->logins) + atomic_load(&f->pki_logins));
                        authed = true;
                        admin_reply(fd, ssl, 0, f->token);
                    } else {
                        admin_reply(fd, ssl, AS_SEC_ERR_CREDENTIAL, NULL);
                    }
                } else if (cmd == AS_ADMIN_AUTHENTICATE) {
                    atomic_fetch_add(&f->authenticates, 1);
                    if (f->token[0] && strcmp(tok, f->token) == 0) {
                        authed = true;
                        admin_reply(fd, ssl, 0, NULL);
                    } else {
                        admin_reply(fd, ssl, AS_SEC_ERR_EXPIRED_SESSION, NULL);
                    }
                } else {
                    admin_reply(fd, ssl, AS_SEC_ERR_COMMAND, NULL);
                }
                pthread_mutex_unlock(&f->mu);
            }
        } else if (ph.type == AS_PROTO_INFO) {
            char out[2048];
            size_t n = 0;
            const char *cur = (const char *)body, *end = (const char *)body + ph.size;
            while (cur < end) {
                const char *nl = memchr(cur, '\n', (size_t)(end - cur));
                if (!nl)
                    break;
                char cmd[128];
                snprintf(cmd, sizeof cmd, "%.*s", (int)(nl - cur), cur);
                cur = nl + 1;
                const char *v = "ERROR:4:unrecognized command";
                char rep[800];
                if (!authed) {
                    v = "ERROR:80:not authenticated";
                } else if (strcmp(cmd, "node") == 0) {
                    v = "BB9000000000099";
                } else if (strcmp(cmd, "partition-generation") == 0 || strcmp(cmd, "peers-generation") == 0) {
                    v = "1";
                } else if (strcmp(cmd, "build") == 0) {
                    v = "8.1.2.0";
                } else if (strncmp(cmd, "peers-", 6) == 0) {
                    v = "1,3000,[]";
                } else if (strcmp(cmd, "namespaces") == 0) {
                    v = "test";
                } else if (strcmp(cmd, "replicas") == 0) {
                    uint8_t bm[512];
                    memset(bm, 0xff, sizeof bm);
                    size_t k = (size_t)snprintf(rep, sizeof rep, "test:0,1,");
                    k += as_b64_encode(bm, sizeof bm, rep + k);
                    rep[k] = 0;
                    v = rep;
                }
                n += (size_t)snprintf(out + n, sizeof out - n, "%s\t%s\n", cmd, v);
            }
            reply(fd, ssl, AS_PROTO_INFO, out, n);
        } else {
            free(body);
            break;
        }
        free(body);
    }
out:
    if (ssl)
        SSL_free(ssl);
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        if (atomic_load(&f->stop)) {
            close(fd);
            break;
        }
        struct conn_arg *ca = malloc(sizeof *ca);
        ca->f = f;
        ca->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, serve, ca);
        pthread_detach(t);
    }
    return NULL;
}

static struct fake *fake_start(bool tls, bool client_cert, enum sec_mode sec)
{
    struct fake *f = calloc(1, sizeof *f);
    f->tls = tls;
    f->require_client_cert = client_cert;
    f->sec = sec;
    pthread_mutex_init(&f->mu, NULL);
    struct err e;
    assert_int_equal(as_auth_credential("pw", f->credential, &e), 0);
    if (tls) {
        f->ctx = SSL_CTX_new(TLS_server_method());
        assert_int_equal(SSL_CTX_use_certificate_chain_file(f->ctx, g_srv_cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(f->ctx, g_srv_key, SSL_FILETYPE_PEM), 1);
        if (client_cert) {
            SSL_CTX_load_verify_locations(f->ctx, g_ca, NULL);
            SSL_CTX_set_verify(f->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
    }
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->listen_fd, 64), 0);
    socklen_t sl = sizeof a;
    getsockname(f->listen_fd, (struct sockaddr *)&a, &sl);
    f->port = ntohs(a.sin_port);
    pthread_create(&f->th, NULL, accept_loop, f);
    return f;
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->stop, true);
    /* wake accept() */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)f->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    connect(fd, (struct sockaddr *)&a, sizeof a);
    close(fd);
    pthread_join(f->th, NULL);
    close(f->listen_fd);
    usleep(50000); /* detached connection threads finish after their clients closed */
    if (f->ctx)
        SSL_CTX_free(f->ctx);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int cluster_for(struct fake *f, const char *tls_name, const char *user, const char *pw,
                       enum as_auth_mode mode, bool client_cert, const char *key_pw,
                       struct as_cluster **c, struct err *e)
{
    struct as_host h = { .name = "127.0.0.1", .port = (uint16_t)f->port };
    if (tls_name)
        snprintf(h.tls_name, sizeof h.tls_name, "%s", tls_name);
    struct as_cluster_config cfg = { .seeds = &h, .n_seeds = 1, .user = user, .password = pw,
                                     .auth_mode = mode, .connect_timeout_ms = 3000 };
    if (f->tls) {
        cfg.tls.enable = true;
        cfg.tls.ca_file = g_ca;
        if (client_cert) {
            cfg.tls.cert_file = g_cli_cert;
            cfg.tls.key_file = g_cli_key;
            cfg.tls.key_password = key_pw;
        }
    }
    return as_cluster_new(&cfg, c, e);
}

/* info on a pooled (non-tend) connection */
static void check_info(struct as_cluster *c)
{
    struct as_node *n = as_cluster_random_node(c);
    assert_non_null(n);
    struct as_strv ns;
    struct err e;
    if (as_info_namespaces(n, &ns, &e) != 0)
        fail_msg("namespaces: %s", e.msg);
    assert_int_equal(ns.n, 1);
    assert_string_equal(ns.v[0], "test");
    as_strv_free(&ns);
    as_node_release(n);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_tls_names(void **state)
{
    (void)state;
    struct fake *f = fake_start(true, false, SEC_NONE_CE);
    struct as_cluster *c;
    struct err e;
    if (cluster_for(f, "node1.test", NULL, NULL, AS_AUTH_INTERNAL, false, NULL, &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(as_cluster_node_count(c), 1);
    check_info(c);
    assert_string_equal(f->sni, "node1.test");
    as_cluster_free(c);
    /* wildcard SAN */
    assert_int_equal(cluster_for(f, "a.cluster.test", NULL, NULL, AS_AUTH_INTERNAL, false, NULL, &c, &e), 0);
    as_cluster_free(c);
    /* a name the certificate does not carry */
    assert_int_not_equal(cluster_for(f, "other.test", NULL, NULL, AS_AUTH_INTERNAL, false, NULL, &c, &e), 0);
    assert_non_null(strstr(e.msg, "certificate verification failed"));
    /* no name: chain only */
    assert_int_equal(cluster_for(f, NULL, NULL, NULL, AS_AUTH_INTERNAL, false, NULL, &c, &e), 0);
    as_cluster_free(c);
    fake_stop(f);

    /* an unknown CA: the system store does not know our test CA */
    f = fake_start(true, false, SEC_NONE_CE);
    struct as_host h = { .name = "127.0.0.1", .port = (uint16_t)f->port, .tls_name = "node1.test" };
    struct as_cluster_config cfg = { .seeds = &h, .n_seeds = 1, .tls = { .enable = true },
                                     .connect_timeout_ms = 3000 };
    assert_int_not_equal(as_cluster_new(&cfg, &c, &e), 0);
    assert_non_null(strstr(e.msg, "certificate"));
    /* TLS against a clear server fails, clear against TLS too (no hang) */
    fake_stop(f);
    f = fake_start(false, false, SEC_NONE_CE);
    h.port = (uint16_t)f->port;
    cfg.tls.ca_file = g_ca;
    assert_int_not_equal(as_cluster_new(&cfg, &c, &e), 0);
    fake_stop(f);
}

static void test_tls_mutual(void **state)
{
    (void)state;
    struct fake *f = fake_start(true, true, SEC_NONE_CE);
    struct as_cluster *c;
    struct err e;
    if (cluster_for(f, "node1.test", NULL, NULL, AS_AUTH_INTERNAL, true, "kpw", &c, &e))
        fail_msg("%s", e.msg);
    check_info(c);
    as_cluster_free(c);
    /* wrong key password: refused while building the context */
    assert_int_equal(cluster_for(f, "node1.test", NULL, NULL, AS_AUTH_INTERNAL, true, "bad", &c, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "key-file"));
    /* no client certificate: the server refuses the handshake */
    assert_int_not_equal(cluster_for(f, "node1.test", NULL, NULL, AS_AUTH_INTERNAL, false, NULL, &c, &e), 0);
    fake_stop(f);
}

static void test_login_sessions(void **state)
{
    (void)state;
    struct fake *f = fake_start(false, false, SEC_ON);
    struct as_cluster *c;
    struct err e;
    if (cluster_for(f, NULL, "u", "pw", AS_AUTH_INTERNAL, false, NULL, &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(f->logins, 1); /* the tend connection logged in */
    check_info(c);                  /* a pooled connection: AUTHENTICATE with the token */
    assert_int_equal(f->logins, 1);
    assert_int_equal(f->authenticates, 1);
    /* the server forgets the session: the next new connection logs in again */
    pthread_mutex_lock(&f->mu);
    snprintf(f->token, sizeof f->token, "forgotten");
    pthread_mutex_unlock(&f->mu);
    struct as_node *n = as_cluster_random_node(c);
    struct as_conn *c1, *c2;
    assert_int_equal(as_node_conn_get(n, &c1, &e), 0); /* the pooled one, already authenticated */
    if (as_node_conn_get(n, &c2, &e) != 0)               /* a new one: 66 -> LOGIN */
        fail_msg("%s", e.msg);
    assert_int_equal(f->logins, 2);
    assert_int_equal(f->authenticates, 2);
    as_node_conn_put(n, c1);
    as_node_conn_put(n, c2);
    as_node_release(n);
    assert_int_equal(as_cluster_tend(c, &e), 0);
    as_cluster_free(c);

    /* wrong password */
    assert_int_equal(cluster_for(f, NULL, "u", "wrong", AS_AUTH_INTERNAL, false, NULL, &c, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "INVALID_CREDENTIAL"));
    fake_stop(f);

    /* Community answers 51: an error when a user is configured, nothing sent without one */
    f = fake_start(false, false, SEC_NONE_CE);
    assert_int_equal(cluster_for(f, NULL, "u", "pw", AS_AUTH_INTERNAL, false, NULL, &c, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "SECURITY_NOT_SUPPORTED"));
    assert_int_equal(cluster_for(f, NULL, NULL, NULL, AS_AUTH_INTERNAL, false, NULL, &c, &e), 0);
    check_info(c);
    as_cluster_free(c);
    fake_stop(f);
    /* security not enabled (52): no login needed */
    f = fake_start(false, false, SEC_NOT_CONFIGURED);
    if (cluster_for(f, NULL, "u", "pw", AS_AUTH_INTERNAL, false, NULL, &c, &e))
        fail_msg("%s", e.msg);
    check_info(c);
    as_cluster_free(c);
    fake_stop(f);
}

static void test_login_pki(void **state)
{
    (void)state;
    struct fake *f = fake_start(true, true, SEC_ON);
    struct as_cluster *c;
    struct err e;
    if (cluster_for(f, "node1.test", NULL, NULL, AS_AUTH_PKI, true, "kpw", &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(f->pki_logins, 1);
    check_info(c);
    assert_int_equal(f->authenticates, 1);
    as_cluster_free(c);
    fake_stop(f);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    make_certs();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = { g_ca, g_srv_cert, g_srv_key, g_cli_cert, g_cli_key };
    for (size_t i = 0; i < 5; i++)
        unlink(files[i]);
    rmdir(g_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_names),
        cmocka_unit_test(test_tls_mutual),
        cmocka_unit_test(test_login_sessions),
        cmocka_unit_test(test_login_pki),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
