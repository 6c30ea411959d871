/*
 * test_stor_s3.c - the s3-storage backend: the shared storage contract (storage_contract.h)
 * against s3rver (each test in a fresh random prefix of the test bucket), plus S3 specifics:
 * multipart uploads with 5 MiB parts, aborted uploads leaving no upload behind, wrong
 * credentials, a missing bucket, a store that is down (short retry policy), the credential
 * chain (configuration, environment, ~/.aws files in a temp dir with profiles), and the
 * request headers (storage class, x-amz-content-sha256, session token, SigV4 signature
 * checked independently) seen by a tiny capture server (tests/services/s3_capture.py).
 *
 * Needs s3rver: run through tests/services/s3rver.sh (S3_ENDPOINT, S3_BUCKET, ... exported).
 * Started without S3_ENDPOINT, the binary re-runs itself under that script.
 */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage_contract.h"
#include "config/config.h"
#include "storage/s3_creds.h"
#include "storage/stor_s3.h"

/* ---- environment -------------------------------------------------------------------------- */

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static void short_retry(struct cloud_retry *r) { *r = sc_short_retry(50, 0, 30000); }

/* Opens the store `c` describes with the short test retry policy. */
static int open_s3_cfg(const struct cfg_s3_storage *c, struct stor **out, struct err *e)
{
    struct cloud_retry r;
    short_retry(&r);
    return stor_s3_open_with(c, &r, out, e);
}

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Opens the test bucket under `prefix` with s3rver's account (or the given keys). */
static int open_s3(const char *bucket, const char *prefix, const char *key_id,
                   const char *secret, size_t min_part, struct cfg_storage_class *cls,
                   struct stor **out, struct err *e)
{
    struct cfg_s3_storage c = {
        .bucket = (char *)bucket,
        .s3_region = (char *)env_or("S3_REGION", "us-east-1"),
        .path = (char *)prefix,
        .s3_endpoint_override = (char *)getenv("S3_ENDPOINT"),
        .access_key_id = (char *)key_id,
        .secret_access_key = (char *)secret,
        .storage_class = cls,
    };
    if (min_part)
        c.min_part_size = (cfg_int){true, (int64_t)min_part};
    return open_s3_cfg(&c, out, e);
}

/* ---- contract backend --------------------------------------------------------------------- */

static int s3_contract_open(void *ctx, struct stor **out, struct err *e)
{
    (void)ctx;
    static unsigned seq;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "contract/%d-%u-%ld", (int)getpid(), seq++, (long)time(NULL));
    return open_s3(getenv("S3_BUCKET"), prefix, getenv("S3_ACCESS_KEY_ID"),
                   getenv("S3_SECRET_ACCESS_KEY"), 0, NULL, out, e);
}

static struct stor_contract s3_backend = {
    .name = "s3",
    .open = s3_contract_open,
    .cleanup = sc_cleanup_delete_all, /* so the emulator's directory stays small */
    .leftovers = NULL, /* s3rver implements neither ListMultipartUploads nor their abort */
    .big_size = (11u << 20) + 7,
    .big_part = 5u << 20,
    .threads = 4,
    .per_thread = 25,
    .private_churn = true, /* s3rver crashes when one folder is emptied and filled at once */
    /* s3rver rewrites an object's file in place: a concurrent reader can see it empty or
     * half-written (real S3 replaces atomically; the reader's ETag pinning is tested with
     * the capture server below). */
    .no_atomic_replace = true,
};

/* ---- S3 specifics against s3rver ---------------------------------------------------------- */

static void test_name_and_parts(void **state)
{
    (void)state;
    struct stor *s;
    struct err e = {0};
    assert_int_equal(open_s3(getenv("S3_BUCKET"), "/a/b/", "k", "v", 1000, NULL, &s, &e), 0);
    char want[200];
    snprintf(want, sizeof want, "s3://%s/a/b", getenv("S3_BUCKET"));
    assert_string_equal(stor_name(s), want);
    assert_string_equal(stor_root(s), "a/b");
    assert_int_equal(stor_get_kind(s), STOR_S3);
    assert_int_equal(stor_part_size(s), 5u << 20); /* clamped up */
    stor_close(s);
    assert_int_equal(open_s3(getenv("S3_BUCKET"), NULL, "k", "v", 0, NULL, &s, &e), 0);
    assert_int_equal(stor_part_size(s), 50u << 20); /* ABS 3.6+ default */
    snprintf(want, sizeof want, "s3://%s", getenv("S3_BUCKET"));
    assert_string_equal(stor_name(s), want);
    stor_close(s);
    assert_int_equal(s3_clamp_part(0), 5u << 20);
    assert_int_equal(s3_clamp_part(64u << 20), 64u << 20);
    /* Bucket required; keys in pairs. */
    assert_int_equal(open_s3("", NULL, "k", "v", 0, NULL, &s, &e), ERR_INVALID);
    assert_int_equal(open_s3("b", NULL, "k", NULL, 0, NULL, &s, &e), ERR_INVALID);
    assert_null(strstr(e.msg, "k:"));
}

/* A multipart object (3 parts of 5 MiB + a tail) read back, and its abort. */
static void test_multipart_upload(void **state)
{
    struct stor_contract_fx *fx = *state;
    struct stor *s = fx->s;
    size_t n = (15u << 20) + 123;
    sc_write_obj_part(s, "mp/obj", n, 11, 1); /* hint 1 byte: clamped to 5 MiB */
    unsigned char *want = malloc(n);
    sc_pattern(want, n, 11);
    size_t got;
    unsigned char *all = sc_read_range(s, "mp/obj", 0, -1, &got);
    assert_int_equal(got, n);
    assert_memory_equal(all, want, n);
    free(all);
    /* Several readers' chunks: a range crossing the 8 MiB read chunk. */
    unsigned char *p = sc_read_range(s, "mp/obj", (8u << 20) - 10, 6u << 20, &got);
    assert_int_equal(got, 6u << 20);
    assert_memory_equal(p, want + (8u << 20) - 10, got);
    free(p);
    free(want);
    /* An aborted multipart upload leaves no object (the abort request itself is checked with
     * the capture server: s3rver does not implement it). */
    struct stor_writer *w;
    struct err e = {0};
    assert_int_equal(stor_writer_open(s, "mp/aborted", 0, &w, &e), 0);
    unsigned char *buf = calloc(1, 6u << 20);
    assert_int_equal(stor_writer_write(w, buf, 6u << 20, &e), 0);
    assert_int_equal(stor_writer_write(w, buf, 6u << 20, &e), 0);
    stor_writer_abort(w);
    free(buf);
    sc_assert_list(s, "mp/", false, "mp/obj");
}

static void test_wrong_credentials(void **state)
{
    (void)state;
    struct stor *s;
    struct err e = {0};
    assert_int_equal(open_s3(getenv("S3_BUCKET"), "creds", "NOT-A-KEY", "very-secret-value", 0,
                             NULL, &s, &e), 0);
    assert_int_equal(stor_put(s, "x", "y", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "access denied (check credentials)"));
    assert_non_null(strstr(e.msg, getenv("S3_BUCKET")));
    assert_null(strstr(e.msg, "very-secret-value"));
    struct stor_page p;
    struct stor_list_opts o = {0};
    assert_int_equal(stor_list_page(s, &o, NULL, &p, &e), ERR_IO);
    stor_page_free(&p);
    assert_non_null(strstr(e.msg, "access denied"));
    assert_null(strstr(e.msg, "very-secret-value"));
    stor_close(s);
}

static void test_missing_bucket(void **state)
{
    (void)state;
    struct stor *s;
    struct err e = {0};
    assert_int_equal(open_s3("no-such-bucket", NULL, getenv("S3_ACCESS_KEY_ID"),
                             getenv("S3_SECRET_ACCESS_KEY"), 0, NULL, &s, &e), 0);
    assert_int_equal(stor_put(s, "x", "y", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "bucket no-such-bucket does not exist"));
    struct stor_reader *r;
    assert_int_equal(stor_reader_open(s, "x", 0, -1, &r, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "does not exist"));
    struct stor_page p;
    struct stor_list_opts o = {0};
    assert_int_equal(stor_list_page(s, &o, NULL, &p, &e), ERR_IO);
    stor_page_free(&p);
    assert_non_null(strstr(e.msg, "bucket no-such-bucket does not exist"));
    assert_int_equal(stor_delete_prefix(s, "a/", &e), ERR_IO);
    stor_close(s);
}

/* A closed port: the short test retry policy gives up quickly with a clear error. */
static void test_store_down(void **state)
{
    (void)state;
    char endpoint[64];
    /* A port nobody listens on: bind one, close it. */
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", 1);
    struct cfg_s3_storage c = {.bucket = "b", .s3_region = "us-east-1",
                               .s3_endpoint_override = endpoint, .access_key_id = "k",
                               .secret_access_key = "sekrit"};
    struct stor *s;
    struct err e = {0};
    assert_int_equal(open_s3_cfg(&c, &s, &e), 0);
    time_t t0 = time(NULL);
    assert_int_equal(stor_put(s, "x", "y", 1, &e), ERR_IO);
    assert_true(time(NULL) - t0 < 10);
    assert_non_null(strstr(e.msg, "s3://b"));
    assert_non_null(strstr(e.msg, "3 attempts"));
    assert_null(strstr(e.msg, "sekrit"));
    assert_int_equal(stor_stat(s, "x", NULL, NULL, &e), ERR_IO);
    stor_close(s);
}

/* ---- credential chain --------------------------------------------------------------------- */

struct env_save {
    const char *name;
    char *value;
};

static const char *const AWS_VARS[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN", "AWS_PROFILE",
                                       "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "HOME"};
#define N_AWS_VARS (sizeof AWS_VARS / sizeof AWS_VARS[0])

static void env_push(struct env_save *save)
{
    for (size_t i = 0; i < N_AWS_VARS; i++) {
        const char *v = getenv(AWS_VARS[i]);
        save[i] = (struct env_save){AWS_VARS[i], v ? strdup(v) : NULL};
        unsetenv(AWS_VARS[i]);
    }
}

static void env_pop(struct env_save *save)
{
    for (size_t i = 0; i < N_AWS_VARS; i++) {
        if (save[i].value)
            setenv(save[i].name, save[i].value, 1);
        else
            unsetenv(save[i].name);
        free(save[i].value);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_credential_chain(void **state)
{
    (void)state;
    struct env_save save[N_AWS_VARS];
    env_push(save);
    char home[64] = "/tmp/abs_s3_home.XXXXXX", path[160];
    assert_non_null(mkdtemp(home));
    setenv("HOME", home, 1);
    struct s3_creds c;
    struct err e = {0};

    /* Nothing anywhere: anonymous. */
    assert_int_equal(s3_creds_resolve(NULL, NULL, NULL, &c, &e), 0);
    assert_null(c.key_id);
    assert_string_equal(c.source, "none");
    s3_creds_free(&c);
    /* A named profile that exists nowhere is an error naming it. */
    assert_int_equal(s3_creds_resolve(NULL, NULL, "ghost", &c, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "'ghost'"));

    /* ~/.aws files: default profile, a named one, config-file profiles and region. */
    snprintf(path, sizeof path, "%s/.aws", home);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/.aws/credentials", home);
    write_file(path, "# comment\n[default]\naws_access_key_id = DEFID\n"
                     "aws_secret_access_key=DEFSECRET\n\n[  team ]\n ; x\n"
                     "aws_access_key_id=TEAMID\naws_secret_access_key = TEAMSECRET \n"
                     "aws_session_token = TEAMTOKEN\n[half]\naws_access_key_id=H\n");
    snprintf(path, sizeof path, "%s/.aws/config", home);
    write_file(path, "[default]\nregion = eu-west-1\n[profile team]\nregion=ap-south-1\n"
                     "[profile conf]\naws_access_key_id=CONFID\naws_secret_access_key=CONFS\n"
                     "[profile regiononly]\nregion=us-west-2\n");
    assert_int_equal(s3_creds_resolve(NULL, NULL, NULL, &c, &e), 0);
    assert_string_equal(c.key_id, "DEFID");
    assert_string_equal(c.secret, "DEFSECRET");
    assert_null(c.session_token);
    assert_string_equal(c.region, "eu-west-1");
    assert_string_equal(c.source, "shared credentials file");
    s3_creds_free(&c);
    assert_int_equal(s3_creds_resolve(NULL, NULL, "team", &c, &e), 0);
    assert_string_equal(c.key_id, "TEAMID");
    assert_string_equal(c.secret, "TEAMSECRET");
    assert_string_equal(c.session_token, "TEAMTOKEN");
    assert_string_equal(c.region, "ap-south-1");
    s3_creds_free(&c);
    setenv("AWS_PROFILE", "conf", 1); /* AWS_PROFILE when s3-profile is unset */
    assert_int_equal(s3_creds_resolve(NULL, NULL, NULL, &c, &e), 0);
    assert_string_equal(c.key_id, "CONFID");
    s3_creds_free(&c);
    assert_int_equal(s3_creds_resolve(NULL, NULL, "team", &c, &e), 0); /* s3-profile wins */
    assert_string_equal(c.key_id, "TEAMID");
    s3_creds_free(&c);
    unsetenv("AWS_PROFILE");
    assert_int_equal(s3_creds_resolve(NULL, NULL, "regiononly", &c, &e), 0);
    assert_null(c.key_id);
    assert_string_equal(c.region, "us-west-2");
    s3_creds_free(&c);
    assert_int_equal(s3_creds_resolve(NULL, NULL, "half", &c, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "'half'"));

    /* AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE elsewhere. */
    snprintf(path, sizeof path, "%s/other-creds", home);
    write_file(path, "[default]\naws_access_key_id=OTHERID\naws_secret_access_key=OTHERS\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    snprintf(path, sizeof path, "%s/other-config", home);
    write_file(path, "[default]\nregion=sa-east-1\n");
    setenv("AWS_CONFIG_FILE", path, 1);
    assert_int_equal(s3_creds_resolve(NULL, NULL, NULL, &c, &e), 0);
    assert_string_equal(c.key_id, "OTHERID");
    assert_string_equal(c.region, "sa-east-1");
    s3_creds_free(&c);

    /* The environment beats the files; the configuration beats both. */
    setenv("AWS_ACCESS_KEY_ID", "ENVID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
    setenv("AWS_SESSION_TOKEN", "ENVTOKEN", 1);
    assert_int_equal(s3_creds_resolve(NULL, NULL, "team", &c, &e), 0);
    assert_string_equal(c.key_id, "ENVID");
    assert_string_equal(c.session_token, "ENVTOKEN");
    assert_string_equal(c.source, "environment");
    s3_creds_free(&c);
    assert_int_equal(s3_creds_resolve("CFGID", "CFGSECRET", "team", &c, &e), 0);
    assert_string_equal(c.key_id, "CFGID");
    assert_string_equal(c.secret, "CFGSECRET");
    assert_null(c.session_token);
    assert_string_equal(c.source, "configuration");
    s3_creds_free(&c);
    assert_int_equal(s3_creds_resolve("CFGID", NULL, NULL, &c, &e), ERR_INVALID);

    /* INI details. */
    char *v = s3_ini_get("[a]\nk=1\n[b]\nk = 2 \n", "b", "k");
    assert_string_equal(v, "2");
    free(v);
    assert_null(s3_ini_get("[a]\nk=1\n", "b", "k"));
    assert_null(s3_ini_get("[a]\n#k=1\n", "a", "k"));

    rm_rf(home);
    env_pop(save);
}

/* ---- request inspection ------------------------------------------------------------------- */

/* Starts tests/services/s3_capture.py on a free port: it answers S3-like replies and appends one
 * JSON line per request (method, path, headers, SigV4 verdict) to `log`. */
static pid_t capture_pid; /* killed by capture_teardown when a test fails midway */

static pid_t capture_start(const char *log, int *port)
{
    char portfile[200];
    snprintf(portfile, sizeof portfile, "%s.port", log);
    unlink(portfile);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(126);
        execlp("python3", "python3", TEST_DATA_DIR "/../services/s3_capture.py", log, portfile,
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", port) == 1;
            fclose(f);
            if (ok) {
                capture_pid = pid;
                return pid;
            }
        }
        usleep(50000);
    }
    kill(pid, SIGTERM);
    fail_msg("capture server did not start");
    return -1;
}

static void capture_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    capture_pid = 0;
}

static int capture_teardown(void **state)
{
    (void)state;
    if (capture_pid > 0)
        capture_stop(capture_pid);
    return 0;
}

/* A capture server logging into a fresh temporary directory. */
struct capture_run {
    char dir[64];
    char log[128];
    char endpoint[64];
    pid_t pid;
};

static void capture_run_start(struct capture_run *cr)
{
    snprintf(cr->dir, sizeof cr->dir, "/tmp/abs_s3_capture.XXXXXX");
    assert_non_null(mkdtemp(cr->dir));
    snprintf(cr->log, sizeof cr->log, "%s/requests.log", cr->dir);
    int port = 0;
    cr->pid = capture_start(cr->log, &port);
    snprintf(cr->endpoint, sizeof cr->endpoint, "http://127.0.0.1:%d", port);
}

/* How often `needle` occurs in `text`. */
static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

static void test_request_headers(void **state)
{
    (void)state;
    struct capture_run cr;
    capture_run_start(&cr);

    struct env_save save[N_AWS_VARS];
    env_push(save);
    setenv("AWS_ACCESS_KEY_ID", "AKIDCAPTURE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "capture-secret", 1);
    setenv("AWS_SESSION_TOKEN", "capture-token", 1);
    struct cfg_storage_class cls = {.data = "GLACIER_IR", .metadata = "STANDARD_IA"};
    struct cfg_s3_storage c = {.bucket = "capbucket", .s3_region = "eu-central-1",
                               .path = "pre", .s3_endpoint_override = cr.endpoint,
                               .storage_class = &cls, .min_part_size = {true, 5 << 20}};
    struct stor *s;
    struct err e = {0};
    assert_int_equal(open_s3_cfg(&c, &s, &e), 0);
    env_pop(save);

    /* Data through a writer, metadata through put; a multipart object; a list; a delete. */
    sc_write_obj(s, "r/backup/1/data/ns/0_ns_1.asb", 1000, 1);
    sc_put_str(s, "r/backup/1/data/ns/metadata.yaml", "m");
    sc_write_obj_part(s, "r/big", (5u << 20) + 10, 2, 0);
    struct stor_page p;
    struct stor_list_opts o = {.prefix = "r/b", .delimiter = true, .start_after = "r/b x"};
    assert_int_equal(stor_list_page(s, &o, NULL, &p, &e), 0);
    stor_page_free(&p);
    assert_int_equal(stor_delete_prefix(s, "r/", &e), 0);
    stor_close(s);
    capture_stop(cr.pid);

    char *text = slurp(cr.log);
    /* One line per request: "METHOD PATH?QUERY class=... sha=ok sig=ok token=..." */
    assert_non_null(strstr(text, "PUT /capbucket/pre/r/backup/1/data/ns/0_ns_1.asb? "
                                 "class=GLACIER_IR sha=ok sig=ok token=capture-token"));
    assert_non_null(strstr(text, "PUT /capbucket/pre/r/backup/1/data/ns/metadata.yaml? "
                                 "class=STANDARD_IA sha=ok sig=ok"));
    assert_non_null(strstr(text, "POST /capbucket/pre/r/big?uploads= class=GLACIER_IR sha=ok "
                                 "sig=ok"));
    assert_non_null(strstr(text, "PUT /capbucket/pre/r/big?partNumber=1&uploadId=UP%2F1 "
                                 "class=- sha=ok sig=ok"));
    assert_non_null(strstr(text, "PUT /capbucket/pre/r/big?partNumber=2&uploadId=UP%2F1 "));
    assert_non_null(strstr(text, "POST /capbucket/pre/r/big?uploadId=UP%2F1 class=- sha=ok "
                                 "sig=ok"));
    assert_non_null(strstr(text, "GET /capbucket/?list-type=2&max-keys=1000&prefix=pre%2Fr%2Fb&"
                                 "start-after=pre%2Fr%2Fb%20x class=- sha=ok sig=ok"));
    assert_non_null(strstr(text, "POST /capbucket/?delete= class=- sha=ok sig=ok "
                                 "token=capture-token md5=ok"));
    assert_null(strstr(text, "sig=bad"));
    assert_null(strstr(text, "sha=bad"));
    free(text);

    /* A 403 and a 500 from the store: clear errors; the 500 is retried, the 403 is not. */
    rm_rf(cr.dir);
}

/* The capture server's scripted failures: 403 with a body, 500s then success. */
static void test_error_replies(void **state)
{
    (void)state;
    struct capture_run cr;
    capture_run_start(&cr);
    struct cfg_s3_storage c = {.bucket = "capbucket", .s3_region = "us-east-1",
                               .s3_endpoint_override = cr.endpoint, .access_key_id = "AK",
                               .secret_access_key = "topsecret",
                               .min_part_size = {true, 5 << 20}};
    struct stor *s;
    struct err e = {0};
    assert_int_equal(open_s3_cfg(&c, &s, &e), 0);
    /* Keys the capture server treats specially. */
    assert_int_equal(stor_put(s, "deny", "x", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "access denied (check credentials): SignatureDoesNotMatch"));
    assert_null(strstr(e.msg, "topsecret"));
    assert_int_equal(stor_put(s, "flaky", "x", 1, &e), 0); /* 500, 500, then 200 */
    assert_int_equal(stor_put(s, "broken", "x", 1, &e), ERR_IO); /* 500 forever */
    assert_non_null(strstr(e.msg, "HTTP 500 InternalError"));
    assert_int_equal(stor_stat(s, "missing", NULL, NULL, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "'missing' not found"));
    /* Replaced between HEAD and GET: the reader notices the other ETag and starts over. */
    char *data;
    assert_int_equal(stor_get(s, "changing", 100, &data, NULL, &e), 0);
    assert_string_equal(data, "hello");
    free(data);
    /* A multipart upload whose part fails: the upload is aborted. */
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "failpart", 0, &w, &e), 0);
    unsigned char *buf = calloc(1, 6u << 20);
    assert_int_equal(stor_writer_write(w, buf, 6u << 20, &e), ERR_IO);
    assert_int_equal(stor_writer_commit(w, &e), ERR_IO);
    free(buf);
    /* CompleteMultipartUpload answering 200 with an <Error> body. */
    assert_int_equal(stor_writer_open(s, "failcomplete", 0, &w, &e), 0);
    buf = calloc(1, 6u << 20);
    assert_int_equal(stor_writer_write(w, buf, 6u << 20, &e), 0);
    assert_int_equal(stor_writer_write(w, buf, 10, &e), 0);
    assert_int_equal(stor_writer_commit(w, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "InternalError"));
    free(buf);
    stor_close(s);
    capture_stop(cr.pid);
    char *text = slurp(cr.log);
    assert_int_equal(count_of(text, "PUT /capbucket/flaky"), 3);
    assert_int_equal(count_of(text, "PUT /capbucket/broken"), 3); /* 1 + 2 retries */
    assert_int_equal(count_of(text, "PUT /capbucket/deny"), 1);
    assert_non_null(strstr(text, "DELETE /capbucket/failpart?uploadId=UP%2F1"));
    assert_int_equal(count_of(text, "HEAD /capbucket/changing"), 2);
    assert_non_null(strstr(text, "GET /capbucket/changing? class=- sha=ok sig=ok token=- "
                                 "if-match=\"v1\""));
    assert_non_null(strstr(text, "DELETE /capbucket/failcomplete?uploadId=UP%2F1"));
    free(text);
    rm_rf(cr.dir);
}

/* ---- remote configuration (-r) in a bucket ------------------------------------------------ */

static void test_remote_config(void **state)
{
    (void)state;
    static const char *const conf =
        "# kept header\n"
        "aerospike-clusters:\n"
        "  c: {seed-nodes: [{host-name: 127.0.0.1, port: 3000}]}\n"
        "storage:\n"
        "  s: {local-storage: {path: /tmp/backups}}\n"
        "backup-policies:\n"
        "  p: {parallel: 2}\n"
        "backup-routines:\n"
        "  r: {interval-cron: '@daily', source-cluster: c, storage: s, backup-policy: p,\n"
        "      namespaces: [test]}\n";
    struct stor *s;
    struct err e = {0};
    assert_int_equal(open_s3(getenv("S3_BUCKET"), NULL, getenv("S3_ACCESS_KEY_ID"),
                             getenv("S3_SECRET_ACCESS_KEY"), 0, NULL, &s, &e), 0);
    assert_int_equal(stor_put(s, "remote/abs.yml", conf, strlen(conf), &e), 0);

    char dir[64] = "/tmp/abs_s3_remote.XXXXXX", path[128], text[1024];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/remote.yml", dir);
    snprintf(text, sizeof text,
             "s3-storage:\n  bucket: %s\n  s3-region: us-east-1\n  path: /remote/abs.yml\n"
             "  s3-endpoint-override: %s\n  access-key-id: %s\n  secret-access-key: %s\n",
             getenv("S3_BUCKET"), getenv("S3_ENDPOINT"), getenv("S3_ACCESS_KEY_ID"),
             getenv("S3_SECRET_ACCESS_KEY"));
    write_file(path, text);
    struct cfg_store *cs;
    if (cfg_store_open(path, true, &cs, &e))
        fail_msg("%s", e.msg);
    assert_non_null(strstr(cfg_store_source(cs), "remote/abs.yml"));
    struct cfg *c = cfg_store_snapshot(cs);
    assert_non_null(cfg_map_get(&c->routines, "r"));
    cfg_release(c);
    /* A change through the store is saved back into the bucket, header kept. */
    json_t *pol = json_pack("{s:i}", "parallel", 7);
    assert_int_equal(cfg_store_create(cs, CFG_KIND_POLICY, "p2", pol, &e), 0);
    json_decref(pol);
    char *data;
    assert_int_equal(stor_get(s, "remote/abs.yml", 1 << 20, &data, NULL, &e), 0);
    assert_non_null(strstr(data, "p2"));
    assert_non_null(strstr(data, "# kept header"));
    free(data);
    cfg_store_free(cs);
    /* A missing object: a clear error naming it. */
    assert_int_equal(stor_delete(s, "remote/abs.yml", &e), 0);
    assert_int_equal(cfg_store_open(path, true, &cs, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "remote/abs.yml"));
    /* A key that is not a valid object key. */
    snprintf(text, sizeof text, "s3-storage: {bucket: b, s3-region: r, path: 'a/../b'}\n");
    write_file(path, text);
    assert_int_equal(cfg_store_open(path, true, &cs, &e), ERR_INVALID);
    stor_close(s);
    rm_rf(dir);
}

/* Without S3_ENDPOINT, re-run under tests/services/s3rver.sh (which starts the emulator). */
static void ensure_server(char **argv)
{
    if (getenv("S3_ENDPOINT"))
        return;
    execlp("bash", "bash", TEST_DATA_DIR "/../services/s3rver.sh", argv[0], (char *)NULL);
    fprintf(stderr, "cannot run tests/services/s3rver.sh: %s\n", strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    (void)argc;
    ensure_server(argv);
    const struct CMUnitTest tests[] = {
        STOR_CONTRACT_TESTS(&s3_backend),
        cmocka_unit_test(test_name_and_parts),
        STOR_CONTRACT_TEST(test_multipart_upload, &s3_backend),
        cmocka_unit_test(test_wrong_credentials),
        cmocka_unit_test(test_missing_bucket),
        cmocka_unit_test(test_store_down),
        cmocka_unit_test(test_credential_chain),
        cmocka_unit_test(test_remote_config),
        cmocka_unit_test_teardown(test_request_headers, capture_teardown),
        cmocka_unit_test_teardown(test_error_replies, capture_teardown),
    };
    /* S3_TEST_FILTER=substring runs only the matching tests (debugging). */
    const char *filter = getenv("S3_TEST_FILTER");
    struct CMUnitTest picked[sizeof tests / sizeof tests[0]];
    size_t n = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!filter || strstr(tests[i].name, filter))
            picked[n++] = tests[i];
    return _cmocka_run_group_tests("test_stor_s3", picked, n, NULL, NULL);
}
