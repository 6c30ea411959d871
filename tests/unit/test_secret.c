/*
 * test_secret.c - the Secret Agent client (src/secret/), the resolution of secret references in
 * cluster credentials and storage, and the AES key sources, against the test agent of
 * tests/secret_agent/ running in a thread: TCP, TLS and Unix sockets; agent down, unknown key,
 * wrong magic, oversized reply, silence (timeout), Error replies, broken base64. Every error
 * message is checked to name the agent and the key and to carry no secret value.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>

#include "config/cfg_schema.h"
#include "io/io.h"
#include "jobs/cluster_link.h"
#include "jobs/stor_link.h"
#include "sa_server.h"
#include "secret/key_source.h"
#include "secret/secret_agent.h"
#include "secret/secret_config.h"
#include "slurp.h"

#define SECRET_DATA TEST_DATA_DIR "/secret/"
#define AES_DATA TEST_DATA_DIR "/asb/"
#define PASSWORD "s3cr3t-Pa55word-xyz"
/* SHA-256 of the PKCS#1 DER of asb/e-backup-aes256/key.pem (the wire capture's key) */
#define AES256_KEY_HEX "84fcd2c45bc9b74a53fcb3c1476f9aca6a64f808f2d077711a7a7a42d56eb219"

/* ---- a test agent in a thread ------------------------------------------------------------- */

struct agent {
    struct sa_config cfg;
    int fd, port;
    char path[108];
    volatile bool stop;
    pthread_t thread;
};

static void *agent_main(void *arg)
{
    struct agent *a = arg;
    sa_serve(a->fd, &a->cfg, &a->stop);
    return NULL;
}

enum transport { T_TCP, T_TLS, T_UNIX };

static struct agent *agent_start(enum transport t, enum sa_fault fault)
{
    struct agent *a = calloc(1, sizeof *a);
    assert_non_null(a);
    a->cfg.fault = fault;
    assert_int_equal(sa_add(&a->cfg, "vault", "password", PASSWORD), 0);
    assert_int_equal(sa_add(&a->cfg, "aws", "id", "AKIA-TEST-ID-123"), 0);
    assert_int_equal(sa_add(&a->cfg, "aws", "key", "aws-secret-key-456"), 0);
    if (t == T_TLS) {
        a->cfg.tls = sa_tls_ctx(SECRET_DATA "agent.pem", SECRET_DATA "agent.key");
        assert_non_null(a->cfg.tls);
    }
    if (t == T_UNIX) {
        snprintf(a->path, sizeof a->path, "/tmp/abs-sa-%d-%ld.sock", (int)getpid(), (long)random());
        a->fd = sa_listen_unix(a->path);
    } else {
        a->fd = sa_listen_tcp("127.0.0.1", 0, &a->port);
    }
    assert_true(a->fd >= 0);
    assert_int_equal(pthread_create(&a->thread, NULL, agent_main, a), 0);
    return a;
}

static void agent_stop(struct agent *a)
{
    a->stop = true;
    pthread_join(a->thread, NULL);
    close(a->fd);
    if (a->path[0])
        unlink(a->path);
    sa_config_free(&a->cfg);
    free(a);
}

/* The client's view of an agent: a cfg_secret_agent as the configuration would give it. */
struct client {
    struct cfg_secret_agent c;
    char type[8], address[128], ca[256];
};

static void client_for(struct client *cl, const struct agent *a, enum transport t, int timeout_ms)
{
    memset(cl, 0, sizeof *cl);
    snprintf(cl->type, sizeof cl->type, "%s", t == T_UNIX ? "unix" : "tcp");
    snprintf(cl->address, sizeof cl->address, "%s", t == T_UNIX ? a->path : "127.0.0.1");
    cl->c.connection_type = cl->type;
    cl->c.address = cl->address;
    if (t != T_UNIX)
        cl->c.port = (cfg_int){true, a->port};
    cl->c.timeout = (cfg_int){true, timeout_ms};
    if (t == T_TLS) {
        snprintf(cl->ca, sizeof cl->ca, "%s", SECRET_DATA "ca.pem");
        cl->c.tls_ca_file = cl->ca;
    }
}

/* The message names the agent and the key, and carries none of the table's secret values. */
static void assert_clean_error(const struct err *e, const char *must_contain)
{
    if (must_contain && !strstr(e->msg, must_contain))
        fail_msg("error lacks '%s': %s", must_contain, e->msg);
    assert_null(strstr(e->msg, PASSWORD));
    assert_null(strstr(e->msg, "aws-secret-key-456"));
    assert_null(strstr(e->msg, "AKIA-TEST-ID-123"));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- references --------------------------------------------------------------------------- */

static void test_ref_parse(void **state)
{
    (void)state;
    char res[32], key[32];
    struct err e = {0};
    assert_int_equal(secret_ref_parse("secrets:vault:password", res, sizeof res, key, sizeof key, &e), 0);
    assert_string_equal(res, "vault");
    assert_string_equal(key, "password");
    static const char *const bad[] = {"secrets:only", "secrets::k", "secrets:r:", "secrets:a:b:c", "plain", NULL};
    for (const char *const *b = bad; *b; b++)
        assert_int_equal(secret_ref_parse(*b, res, sizeof res, key, sizeof key, &e), ERR_INVALID);
    assert_true(secret_is_ref("secrets:a:b"));
    assert_false(secret_is_ref("Secrets:a:b"));
    assert_false(secret_is_ref(NULL));

    /* literals come back as they are, without any agent */
    char *v = NULL;
    assert_int_equal(secret_resolve(NULL, "literal:value", "f", &v, &e), 0);
    assert_string_equal(v, "literal:value");
    secret_free(v);
    /* a reference without an agent is an error naming the field */
    assert_int_equal(secret_resolve(NULL, "secrets:vault:password", "cluster c1 credentials.password", &v, &e),
                     ERR_INVALID);
    assert_null(v);
    assert_non_null(strstr(e.msg, "cluster c1 credentials.password"));
    assert_non_null(strstr(e.msg, "no secret agent"));
}

/* ---- transports --------------------------------------------------------------------------- */

static void get_ok(enum transport t)
{
    struct agent *a = agent_start(t, SA_FAULT_NONE);
    struct client cl;
    client_for(&cl, a, t, 2000);
    struct err e = {0};
    char *v = NULL;
    size_t len = 0;
    if (secret_agent_get(&cl.c, "vault", "password", &v, &len, &e))
        fail_msg("%s", e.msg);
    assert_string_equal(v, PASSWORD);
    assert_int_equal(len, strlen(PASSWORD));
    secret_free(v);
    /* the request is the agent's JSON: Resource and SecretKey */
    assert_string_equal(a->cfg.last_request, "{\"Resource\":\"vault\",\"SecretKey\":\"password\"}");
    /* one request per connection: a second call works the same */
    assert_int_equal(secret_resolve(&cl.c, "secrets:aws:key", "f", &v, &e), 0);
    assert_string_equal(v, "aws-secret-key-456");
    secret_free(v);
    assert_int_equal(a->cfg.requests, 2);
    agent_stop(a);
}

static void test_tcp(void **state)
{
    (void)state;
    get_ok(T_TCP);
}

static void test_tls(void **state)
{
    (void)state;
    get_ok(T_TLS);
}

static void test_unix(void **state)
{
    (void)state;
    get_ok(T_UNIX);
}

static void test_tls_wrong_ca_and_plain_peer(void **state)
{
    (void)state;
    struct agent *a = agent_start(T_TLS, SA_FAULT_NONE);
    struct client cl;
    client_for(&cl, a, T_TLS, 2000);
    snprintf(cl.ca, sizeof cl.ca, "%s", SECRET_DATA "other-ca.pem");
    struct err e = {0};
    char *v = NULL;
    assert_int_equal(secret_agent_get(&cl.c, "vault", "password", &v, NULL, &e), ERR_IO);
    assert_clean_error(&e, "certificate verification failed");
    assert_null(v);
    /* by name: localhost matches */
    snprintf(cl.ca, sizeof cl.ca, "%s", SECRET_DATA "ca.pem");
    snprintf(cl.address, sizeof cl.address, "localhost");
    if (secret_agent_get(&cl.c, "vault", "password", &v, NULL, &e))
        fail_msg("%s", e.msg);
    secret_free(v);
    /* a missing CA file */
    snprintf(cl.ca, sizeof cl.ca, "/nonexistent/ca.pem");
    assert_int_equal(secret_agent_get(&cl.c, "vault", "password", &v, NULL, &e), ERR_INVALID);
    assert_clean_error(&e, "tls-ca-file /nonexistent/ca.pem");
    agent_stop(a);

    /* the certificate names localhost and 127.0.0.1: an agent reached as 127.0.0.2 is refused */
    struct sa_config tls2 = {.tls = sa_tls_ctx(SECRET_DATA "agent.pem", SECRET_DATA "agent.key")};
    struct agent other = {.cfg = tls2};
    other.fd = sa_listen_tcp("127.0.0.2", 0, &other.port);
    if (other.fd >= 0) {
        assert_int_equal(pthread_create(&other.thread, NULL, agent_main, &other), 0);
        client_for(&cl, &other, T_TLS, 2000);
        snprintf(cl.address, sizeof cl.address, "127.0.0.2");
        assert_int_equal(secret_agent_get(&cl.c, "vault", "password", &v, NULL, &e), ERR_IO);
        assert_clean_error(&e, "certificate verification failed");
        assert_clean_error(&e, "secret agent 127.0.0.2:");
        other.stop = true;
        pthread_join(other.thread, NULL);
        close(other.fd);
        sa_config_free(&other.cfg);
    }

    /* TLS client against a plain agent: the handshake fails, the value never comes */
    a = agent_start(T_TCP, SA_FAULT_NONE);
    client_for(&cl, a, T_TLS, 500);
    assert_int_equal(secret_agent_get(&cl.c, "vault", "password", &v, NULL, &e), ERR_IO);
    assert_clean_error(&e, "resource vault key password");
    agent_stop(a);
}

static void test_base64(void **state)
{
    (void)state;
    struct agent *a = agent_start(T_TCP, SA_FAULT_NONE);
    a->cfg.base64 = true;
    struct client cl;
    client_for(&cl, a, T_TCP, 2000);
    cl.c.is_base64 = (cfg_bool){true, true};
    struct err e = {0};
    char *v = NULL;
    assert_int_equal(secret_agent_get(&cl.c, "vault", "password", &v, NULL, &e), 0);
    assert_string_equal(v, PASSWORD);
    secret_free(v);
    /* without is-base64 the encoded text is the value, as ABS does */
    cl.c.is_base64 = (cfg_bool){true, false};
    assert_int_equal(secret_agent_get(&cl.c, "vault", "password", &v, NULL, &e), 0);
    assert_string_not_equal(v, PASSWORD);
    secret_free(v);
    /* is-base64 with a value that is not base64: an error without the value */
    a->cfg.base64 = false;
    cl.c.is_base64 = (cfg_bool){true, true};
    assert_int_equal(secret_agent_get(&cl.c, "vault", "password", &v, NULL, &e), ERR_IO);
    assert_clean_error(&e, "not valid base64");
    agent_stop(a);
}

/* ---- faults ------------------------------------------------------------------------------- */

static void expect_fault(enum sa_fault fault, int timeout_ms, const char *want)
{
    struct agent *a = agent_start(T_TCP, fault);
    struct client cl;
    client_for(&cl, a, T_TCP, timeout_ms);
    char addr[64];
    snprintf(addr, sizeof addr, "secret agent 127.0.0.1:%d", a->port);
    struct err e = {0};
    char *v = NULL;
    double t0 = now_s();
    assert_int_equal(secret_resolve(&cl.c, "secrets:vault:password", "cluster c1 credentials.password", &v, &e),
                     ERR_IO);
    double took = now_s() - t0;
    assert_null(v);
    assert_clean_error(&e, want);
    assert_clean_error(&e, addr);
    assert_clean_error(&e, "resource vault key password");
    assert_clean_error(&e, "cluster c1 credentials.password");
    assert_true(took < 3.0);
    agent_stop(a);
}

static void test_faults(void **state)
{
    (void)state;
    expect_fault(SA_FAULT_WRONG_MAGIC, 2000, "magic 0xDEADBEEF");
    expect_fault(SA_FAULT_OVERSIZED, 2000, "over the 1048576-byte limit");
    expect_fault(SA_FAULT_ERROR, 2000, "the agent answered: backend unavailable (test fault)");
    expect_fault(SA_FAULT_CLOSE, 2000, "connection closed by the agent");
    double t0 = now_s();
    expect_fault(SA_FAULT_NO_REPLY, 300, "read timed out after 300 ms");
    assert_true(now_s() - t0 >= 0.25);
}

static void test_unknown_key_and_agent_down(void **state)
{
    (void)state;
    struct agent *a = agent_start(T_TCP, SA_FAULT_NONE);
    struct client cl;
    client_for(&cl, a, T_TCP, 1000);
    struct err e = {0};
    char *v = NULL;
    assert_int_equal(secret_agent_get(&cl.c, "vault", "nope", &v, NULL, &e), ERR_IO);
    assert_clean_error(&e, "resource vault key nope");
    assert_clean_error(&e, "secret not found");
    int port = a->port;
    agent_stop(a);

    /* nothing listens any more */
    cl.c.port.v = port;
    assert_int_equal(secret_agent_get(&cl.c, "vault", "password", &v, NULL, &e), ERR_IO);
    assert_clean_error(&e, "connect");
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_clean_error(&e, addr);
    /* a Unix socket that is not there */
    struct cfg_secret_agent u = {.connection_type = (char *)"unix", .address = (char *)"/tmp/abs-no-such-agent.sock"};
    assert_int_equal(secret_agent_get(&u, "vault", "password", &v, NULL, &e), ERR_IO);
    assert_clean_error(&e, "secret agent /tmp/abs-no-such-agent.sock");
}

/* ---- configuration: storage and cluster ------------------------------------------------- */

static void *decode(const struct cfg_type *t, const char *json)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    assert_non_null(j);
    void *obj = NULL;
    struct err e = {0};
    if (cfg_decode(t, j, "test", NULL, &obj, &e))
        fail_msg("%s", e.msg);
    json_decref(j);
    return obj;
}

static void test_storage_resolution(void **state)
{
    (void)state;
    struct agent *a = agent_start(T_TCP, SA_FAULT_NONE);
    char json[1024];
    /* S3 keys through a named agent */
    snprintf(json, sizeof json, "{\"s3-storage\": {\"bucket\": \"b\", \"s3-region\": \"r\","
                                " \"access-key-id\": \"secrets:aws:id\", \"secret-access-key\": \"secrets:aws:key\","
                                " \"secret-agent-name\": \"sa\"}}");
    struct cfg_storage *s3 = decode(&cfg_type_storage, json);
    struct client cl;
    client_for(&cl, a, T_TCP, 2000);
    cfg_map agents = {.n = 1, .names = (char *[]){(char *)"sa"}, .items = (void *[]){&cl.c}};
    struct secret_scope scope = {.agents = &agents};
    struct cfg_storage *r = NULL;
    struct err e = {0};
    if (secret_storage_resolve(s3, &scope, "s3store", &r, &e))
        fail_msg("%s", e.msg);
    assert_string_equal(r->s3->access_key_id, "AKIA-TEST-ID-123");
    assert_string_equal(r->s3->secret_access_key, "aws-secret-key-456");
    assert_string_equal(r->s3->bucket, "b");
    assert_string_equal(s3->s3->access_key_id, "secrets:aws:id"); /* the original is untouched */
    secret_storage_free(r);

    /* an agent name that is not configured, and no agent at all */
    struct secret_scope empty = {0};
    assert_int_equal(secret_storage_resolve(s3, &empty, "s3store", &r, &e), ERR_INVALID);
    assert_null(r);
    assert_non_null(strstr(e.msg, "storage s3store s3-storage: secret agent sa is not defined"));
    cfg_free_obj(&cfg_type_storage, s3);

    /* Azure through an inline agent, GCP through the fallback (a restore request's agent) */
    snprintf(json, sizeof json, "{\"azure-storage\": {\"endpoint\": \"http://127.0.0.1:1\", \"container-name\": \"c\","
                                " \"tenant-id\": \"secrets:aws:id\", \"client-id\": \"literal-client\","
                                " \"client-secret\": \"secrets:aws:key\", \"secret-agent\": {\"connection-type\": \"tcp\","
                                " \"address\": \"127.0.0.1\", \"port\": %d}}}",
             a->port);
    struct cfg_storage *az = decode(&cfg_type_storage, json);
    assert_int_equal(secret_storage_resolve(az, NULL, "az", &r, &e), 0);
    assert_string_equal(r->azure->tenant_id, "AKIA-TEST-ID-123");
    assert_string_equal(r->azure->client_id, "literal-client");
    assert_string_equal(r->azure->client_secret, "aws-secret-key-456");
    secret_storage_free(r);
    cfg_free_obj(&cfg_type_storage, az);

    struct cfg_storage *gcp = decode(&cfg_type_storage, "{\"gcp-storage\": {\"bucket-name\": \"g\", \"key\": \"secrets:vault:password\"}}");
    struct secret_scope fb = {.fallback = &cl.c};
    assert_int_equal(secret_storage_resolve(gcp, &fb, "g", &r, &e), 0);
    assert_string_equal(r->gcp->key, PASSWORD);
    secret_storage_free(r);
    /* the agent fails: the message names the storage, field, agent and key, no value */
    assert_int_equal(secret_storage_resolve(gcp, &empty, "g", &r, &e), ERR_INVALID);
    assert_clean_error(&e, "storage g gcp-storage.key");
    cfg_free_obj(&cfg_type_storage, gcp);

    /* literal credentials need no agent; local storage opens as before */
    struct cfg_storage *lit = decode(&cfg_type_storage, "{\"s3-storage\": {\"bucket\": \"b\", \"s3-region\": \"r\","
                                                        " \"access-key-id\": \"A\", \"secret-access-key\": \"B\"}}");
    assert_int_equal(secret_storage_resolve(lit, NULL, "lit", &r, &e), 0);
    assert_string_equal(r->s3->secret_access_key, "B");
    secret_storage_free(r);
    cfg_free_obj(&cfg_type_storage, lit);
    char dir[] = "/tmp/abs-secret-stor-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(json, sizeof json, "{\"local-storage\": {\"path\": \"%s\"}}", dir);
    struct cfg_storage *loc = decode(&cfg_type_storage, json);
    struct stor *st = NULL;
    assert_int_equal(job_stor_open("local", loc, NULL, &st, &e), 0);
    stor_close(st);
    cfg_free_obj(&cfg_type_storage, loc);
    rmdir(dir);
    agent_stop(a);
}

static void test_cluster_password(void **state)
{
    (void)state;
    struct agent *a = agent_start(T_UNIX, SA_FAULT_NONE);
    struct client cl;
    client_for(&cl, a, T_UNIX, 2000);
    cfg_map agents = {.n = 1, .names = (char *[]){(char *)"sa"}, .items = (void *[]){&cl.c}};
    struct secret_scope scope = {.agents = &agents};
    struct err e = {0};
    char *pw = NULL;

    /* secret-agent-name */
    struct cfg_credentials cr = {.user = (char *)"admin", .password = (char *)"secrets:vault:password",
                                 .secret_agent_name = (char *)"sa"};
    assert_int_equal(secret_cluster_password(&cr, &scope, "c1", &pw, &e), 0);
    assert_string_equal(pw, PASSWORD);
    secret_free(pw);
    /* inline secret-agent */
    cr.secret_agent_name = NULL;
    cr.secret_agent = &cl.c;
    assert_int_equal(secret_cluster_password(&cr, NULL, "c1", &pw, &e), 0);
    assert_string_equal(pw, PASSWORD);
    secret_free(pw);
    /* a literal password is used as it is */
    cr.password = (char *)"plain-pw";
    assert_int_equal(secret_cluster_password(&cr, NULL, "c1", &pw, &e), 0);
    assert_string_equal(pw, "plain-pw");
    secret_free(pw);
    /* a reference with no agent anywhere */
    cr = (struct cfg_credentials){.user = (char *)"admin", .password = (char *)"secrets:vault:password"};
    assert_int_equal(secret_cluster_password(&cr, NULL, "c1", &pw, &e), ERR_INVALID);
    assert_clean_error(&e, "cluster c1 credentials.password");
    /* password-path: the file's content, trailing newline trimmed */
    char path[] = "/tmp/abs-secret-pw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "file-pw\n", 8), 8);
    close(fd);
    cr = (struct cfg_credentials){.user = (char *)"admin", .password_path = path};
    assert_int_equal(secret_cluster_password(&cr, NULL, "c1", &pw, &e), 0);
    assert_string_equal(pw, "file-pw");
    secret_free(pw);
    unlink(path);

    /* job_cluster_connect resolves it before connecting: an agent failure stops it there */
    struct cfg_cluster *cc = decode(&cfg_type_cluster, "{\"seed-nodes\": [{\"host-name\": \"127.0.0.1\", \"port\": 1}],"
                                                       " \"conn-timeout\": 200, \"credentials\": {\"user\": \"admin\","
                                                       " \"password\": \"secrets:vault:missing\", \"secret-agent-name\": \"sa\"}}");
    struct as_cluster *c = NULL;
    assert_int_equal(job_cluster_connect("c1", cc, &scope, &c, &e), ERR_IO);
    assert_null(c);
    assert_clean_error(&e, "cluster c1 credentials.password: resource vault key missing");
    assert_clean_error(&e, "secret not found");
    cfg_free_obj(&cfg_type_cluster, cc);
    agent_stop(a);
}

/* ---- AES key sources ---------------------------------------------------------------------- */

static char *b64(const void *data, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    assert_non_null(out);
    EVP_EncodeBlock((unsigned char *)out, data, (int)n);
    return out;
}

static void assert_wire_key(const struct io_aes_key *k, int bits)
{
    uint8_t want[32];
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(AES256_KEY_HEX + 2 * i, "%2x", &v);
        want[i] = (uint8_t)v;
    }
    assert_int_equal(k->bits, bits);
    assert_memory_equal(k->key, want, (size_t)bits / 8);
}

/* The key decrypts the wire capture's backup file: the first plaintext bytes are .asb text. */
static void assert_decrypts_fixture(const struct io_aes_key *k)
{
    struct err e = {0};
    struct io_reader *f = io_file_reader_open(AES_DATA "e-backup-aes256/test_00000.asb", &e);
    assert_non_null(f);
    struct io_reader *r = io_aes_reader_new(f, k, &e);
    assert_non_null(r);
    char buf[16];
    size_t got = 0;
    assert_int_equal(io_read_full(r, buf, 12, &got, &e), 0);
    assert_memory_equal(buf, "Version 3.1\n", 12);
    io_reader_free(r);
}

static void test_key_formats(void **state)
{
    (void)state;
    size_t pem_len;
    char *pem = slurp_file(AES_DATA "e-backup-aes256/key.pem", &pem_len);
    /* PEM with every newline turned into a space (as pasted into a one-line field) */
    char *spaced = strdup(pem);
    for (char *p = spaced; *p; p++)
        if (*p == '\n')
            *p = ' ';
    /* PEM on one line */
    char *flat = calloc(1, pem_len + 1);
    for (size_t i = 0, n = 0; i < pem_len; i++)
        if (pem[i] != '\n' && pem[i] != '\r')
            flat[n++] = pem[i];
    /* PKCS#1 PEM, base64 of PEM, base64 of DER */
    BIO *in = BIO_new_mem_buf(pem, (int)pem_len);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    BIO_free(in);
    assert_non_null(pk);
    BIO *out = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(out, pk, NULL, NULL, 0, NULL, NULL), 1);
    char *pkcs1_data;
    long pkcs1_len = BIO_get_mem_data(out, &pkcs1_data);
    char *pkcs1 = strndup(pkcs1_data, (size_t)pkcs1_len);
    BIO_free(out);
    unsigned char *der = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
    int der_len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    assert_true(der_len > 0);
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(pk);
    char *b64_pem = b64(pem, pem_len);
    char *b64_der = b64(der, (size_t)der_len);
    OPENSSL_free(der);

    /* all of them through the agent (key-secret) */
    struct agent *a = agent_start(T_TCP, SA_FAULT_NONE);
    const char *const forms[] = {pem, spaced, flat, pkcs1, b64_pem, b64_der};
    const char *const names[] = {"pem", "spaced", "flat", "pkcs1", "b64pem", "b64der"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(sa_add(&a->cfg, "keys", names[i], forms[i]), 0);
    struct client cl;
    client_for(&cl, a, T_TCP, 2000);
    struct err e = {0};
    for (size_t i = 0; i < 6; i++) {
        char ref[64];
        snprintf(ref, sizeof ref, "secrets:keys:%s", names[i]);
        struct key_source src = {.key_secret = ref, .agent = &cl.c};
        struct io_aes_key k;
        if (key_source_load(&src, 256, &k, &e))
            fail_msg("%s: %s", names[i], e.msg);
        assert_wire_key(&k, 256);
        assert_int_equal(key_source_load(&src, 128, &k, &e), 0);
        assert_wire_key(&k, 128);
    }
    struct key_source src = {.key_secret = "secrets:keys:spaced", .agent = &cl.c};
    struct io_aes_key k;
    assert_int_equal(key_source_load(&src, 256, &k, &e), 0);
    assert_decrypts_fixture(&k);

    /* key-env and key-file */
    setenv("ABS_TEST_SECRET_KEY", b64_der, 1);
    src = (struct key_source){.key_env = "ABS_TEST_SECRET_KEY"};
    assert_int_equal(key_source_load(&src, 256, &k, &e), 0);
    assert_decrypts_fixture(&k);
    unsetenv("ABS_TEST_SECRET_KEY");
    assert_int_equal(key_source_load(&src, 256, &k, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "ABS_TEST_SECRET_KEY is not set"));
    src = (struct key_source){.key_file = AES_DATA "e-backup-aes256/key.pem"};
    assert_int_equal(key_source_load(&src, 256, &k, &e), 0);
    assert_decrypts_fixture(&k);

    /* a key-secret that is not a key, an unknown one, none at all: messages without key text */
    assert_int_equal(sa_add(&a->cfg, "keys", "junk", "not a key at all"), 0);
    src = (struct key_source){.key_secret = "secrets:keys:junk", .agent = &cl.c};
    assert_int_equal(key_source_load(&src, 256, &k, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "encryption key-secret secrets:keys:junk"));
    assert_null(strstr(e.msg, "not a key at all"));
    src = (struct key_source){.key_secret = "secrets:keys:absent", .agent = &cl.c};
    assert_int_equal(key_source_load(&src, 256, &k, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "encryption key-secret: resource keys key absent"));
    src = (struct key_source){.key_secret = "secrets:keys:pem"};
    assert_int_equal(key_source_load(&src, 256, &k, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "no secret agent"));
    src = (struct key_source){0};
    assert_int_equal(key_source_load(&src, 256, &k, &e), ERR_INVALID);
    agent_stop(a);

    free(pem);
    free(spaced);
    free(flat);
    free(pkcs1);
    free(b64_pem);
    free(b64_der);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_parse),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_tls_wrong_ca_and_plain_peer),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_unknown_key_and_agent_down),
        cmocka_unit_test(test_storage_resolution),
        cmocka_unit_test(test_cluster_password),
        cmocka_unit_test(test_key_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
