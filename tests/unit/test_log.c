/*
 * test_log.c - unit tests for util/log.c: level parsing and filtering, PLAIN/JSON line
 * format, newline sanitising, stdout flushing, file writer (append, 0600, parent dirs),
 * rotation naming, maxbackups, maxage, gzip compression, error handling on a bad path,
 * shutdown closing the file, and concurrent writers producing intact lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "util/log.h"

/* ---- helpers ------------------------------------------------------------------------ */

struct fixture {
    char dir[64];
    char file[PATH_MAX];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_log.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->file, sizeof f->file, "%s/app.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    log_shutdown();
    log_set_rotation_unit_for_tests(0);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static struct log_options file_opts(const char *file)
{
    struct log_options o = {
        .level = LOG_INFO,
        .format = LOG_FORMAT_PLAIN,
        .to_stdout = false,
        .file = file,
    };
    return o;
}

static void configure_ok(const struct log_options *o)
{
    struct err e = {0};
    int rc = log_configure(o, &e);
    if (rc != 0)
        print_error("log_configure: %s\n", e.msg);
    assert_int_equal(rc, 0);
}

/* Reads a whole file (NUL-terminated); NULL if it cannot be read. */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(fp);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* Reads a whole gzip file; NULL if it is not valid gzip. */
static char *slurp_gz(const char *path)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return NULL;
    if (gzdirect(gz)) { /* not gzip data: zlib would pass it through */
        gzclose(gz);
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int n;
    while ((n = gzread(gz, buf + len, (unsigned)(cap - len - 1))) > 0) {
        len += (size_t)n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    int errnum = Z_OK;
    gzerror(gz, &errnum);
    bool ok = n == 0 && errnum == Z_OK;
    if (gzclose(gz) != Z_OK)
        ok = false;
    if (!ok) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static bool matches(const char *pattern, const char *s)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* Names in dir matching an ERE, sorted; returns the count. */
static size_t list_matching(const char *dir, const char *pattern, char names[][256], size_t max)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (matches(pattern, de->d_name)) {
            assert_true(n < max);
            snprintf(names[n++], 256, "%s", de->d_name);
        }
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) /* insertion sort */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char tmp[256];
            memcpy(tmp, names[j], 256);
            memcpy(names[j], names[j - 1], 256);
            memcpy(names[j - 1], tmp, 256);
        }
    return n;
}

#define BACKUP_RE "^app-[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}\\.[0-9]{3}\\.log$"
#define BACKUP_GZ_RE "^app-[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}\\.[0-9]{3}\\.log\\.gz$"
#define ANY_BACKUP_RE "^app-.*\\.log(\\.gz)?$"

/* Marks in seen[] every "seq=N" found in text; returns the number of lines. */
static size_t collect_seqs(const char *text, bool *seen, size_t nseen)
{
    size_t lines = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        const char *s = strstr(p, "seq=");
        assert_true(s != NULL && s < nl);
        long v = strtol(s + 4, NULL, 10);
        assert_true(v >= 0 && (size_t)v < nseen);
        assert_false(seen[v]);
        seen[v] = true;
        lines++;
        p = nl + 1;
    }
    return lines;
}

/* Redirects fd 1 to a file; returns the saved fd. */
static int capture_stdout(const char *path)
{
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
    close(fd);
    return saved;
}

static void restore_stdout(int saved)
{
    /* no fflush here on purpose: the logger must already have flushed */
    assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
    close(saved);
}

/* ---- tests -------------------------------------------------------------------------- */

/* Must run first: the state before any log_configure(). */
static void test_default_state(void **state)
{
    struct fixture *f = *state;
    assert_false(log_enabled(LOG_DEBUG));
    assert_true(log_enabled(LOG_INFO));
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s/stdout.txt", f->dir);
    int saved = capture_stdout(out);
    LOG_D("boot", "hidden");
    LOG_I("boot", "default to stdout");
    char *text = slurp(out);
    restore_stdout(saved);
    assert_non_null(text);
    assert_true(matches("^[0-9T:.-]+Z INFO \\[boot\\] default to stdout\n$", text));
    free(text);
}

static void test_parse(void **state)
{
    (void)state;
    enum log_level l;
    assert_int_equal(log_level_parse("TRACE", &l), 0);
    assert_int_equal(l, LOG_TRACE);
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_level_parse("Info", &l), 0);
    assert_int_equal(l, LOG_INFO);
    assert_int_equal(log_level_parse("WARN", &l), 0);
    assert_int_equal(l, LOG_WARN);
    l = LOG_TRACE;
    assert_int_equal(log_level_parse("warning", &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_level_parse("ERROR", &l), 0);
    assert_int_equal(l, LOG_ERROR);
    assert_true(log_level_parse("FATAL", &l) < 0);
    assert_true(log_level_parse("", &l) < 0);
    assert_true(log_level_parse("INFOX", &l) < 0);
    assert_true(log_level_parse(NULL, &l) < 0);

    enum log_format fm;
    assert_int_equal(log_format_parse("json", &fm), 0);
    assert_int_equal(fm, LOG_FORMAT_JSON);
    assert_int_equal(log_format_parse("PLAIN", &fm), 0);
    assert_int_equal(fm, LOG_FORMAT_PLAIN);
    assert_true(log_format_parse("text", &fm) < 0);
    assert_true(log_format_parse(NULL, &fm) < 0);

    assert_string_equal(log_level_name(LOG_WARN), "WARN");
    assert_string_equal(log_level_name(LOG_TRACE), "TRACE");
}

static void test_level_filtering(void **state)
{
    struct fixture *f = *state;
    struct log_options o = file_opts(f->file);
    o.level = LOG_WARN;
    configure_ok(&o);
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_WARN));
    assert_true(log_enabled(LOG_ERROR));
    LOG_T("m", "t1");
    LOG_D("m", "d1");
    LOG_I("m", "i1");
    LOG_W("m", "w1");
    LOG_E("m", "e1");

    o.level = LOG_TRACE;
    configure_ok(&o);
    assert_true(log_enabled(LOG_TRACE));
    LOG_T("m", "t2");
    LOG_D("m", "d2");

    char *text = slurp(f->file);
    assert_non_null(text);
    assert_int_equal(count_lines(text), 4);
    assert_non_null(strstr(text, " WARN [m] w1\n"));
    assert_non_null(strstr(text, " ERROR [m] e1\n"));
    assert_non_null(strstr(text, " TRACE [m] t2\n"));
    assert_non_null(strstr(text, " DEBUG [m] d2\n"));
    assert_null(strstr(text, "i1"));
    assert_null(strstr(text, "d1"));
    assert_null(strstr(text, "t1"));
    free(text);
}

static void test_plain_format(void **state)
{
    struct fixture *f = *state;
    struct log_options o = file_opts(f->file);
    configure_ok(&o);
    time_t before = time(NULL);
    LOG_I("api", "hello %d %s", 42, "world");
    LOG_W(NULL, "no module");
    char *text = slurp(f->file);
    assert_non_null(text);
    assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                        "INFO \\[api\\] hello 42 world\n"
                        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                        "WARN no module\n$",
                        text));
    /* timestamp is UTC: parse it as UTC and compare with the clock */
    struct tm tm = {0};
    assert_non_null(strptime(text, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t t = timegm(&tm);
    assert_true(t >= before - 2 && t <= time(NULL) + 2);
    free(text);
}

static void test_json_format(void **state)
{
    struct fixture *f = *state;
    struct log_options o = file_opts(f->file);
    o.format = LOG_FORMAT_JSON;
    configure_ok(&o);
    LOG_E("stor\"age", "quote\" back\\slash tab\tnl\nend caf\xc3\xa9 bad\xff!");
    LOG_I(NULL, "plain");
    char *text = slurp(f->file);
    assert_non_null(text);
    assert_int_equal(count_lines(text), 2);

    char *nl = strchr(text, '\n');
    *nl = '\0';
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        print_error("json: %s in %s\n", je.text, text);
    assert_non_null(j);
    assert_true(json_is_object(j));
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "ERROR");
    assert_string_equal(json_string_value(json_object_get(j, "module")), "stor\"age");
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "quote\" back\\slash tab nl end caf\xc3\xa9 bad\xef\xbf\xbd!");
    const char *tm = json_string_value(json_object_get(j, "time"));
    assert_non_null(tm);
    assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$", tm));
    /* key order as documented */
    assert_true(strncmp(text, "{\"time\":", 8) == 0);
    json_decref(j);

    j = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "plain");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "INFO");
    assert_null(json_object_get(j, "module"));
    json_decref(j);
    free(text);
}

static void test_newline_injection(void **state)
{
    struct fixture *f = *state;
    struct log_options o = file_opts(f->file);
    configure_ok(&o);
    LOG_I("m\nx", "user=%s", "bob\n2026-01-01T00:00:00.000Z ERROR [auth] forged\r\n");
    char *text = slurp(f->file);
    assert_non_null(text);
    assert_int_equal(count_lines(text), 1);
    assert_non_null(strstr(text, " INFO [m x] user=bob 2026-01-01T00:00:00.000Z ERROR [auth] forged  \n"));
    free(text);
}

static void test_long_message(void **state)
{
    struct fixture *f = *state;
    struct log_options o = file_opts(f->file);
    configure_ok(&o);
    size_t n = 10000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    LOG_I("m", "<%s>", big);
    char *text = slurp(f->file);
    assert_non_null(text);
    assert_int_equal(count_lines(text), 1);
    char *lt = strchr(text, '<');
    assert_non_null(lt);
    assert_int_equal(strlen(lt), n + 3); /* "<" + n + ">" + "\n" */
    free(text);
    free(big);
}

static void test_stdout_flushed_per_line(void **state)
{
    struct fixture *f = *state;
    struct log_options o = {.level = LOG_INFO, .format = LOG_FORMAT_JSON, .to_stdout = true};
    configure_ok(&o);
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s/stdout.txt", f->dir);
    int saved = capture_stdout(out);
    LOG_I("x", "one");
    char *text1 = slurp(out); /* read before any flush by the test */
    LOG_I("x", "two");
    char *text2 = slurp(out);
    restore_stdout(saved);
    assert_non_null(text1);
    assert_non_null(text2);
    assert_int_equal(count_lines(text1), 1);
    assert_non_null(strstr(text1, "\"msg\":\"one\""));
    assert_int_equal(count_lines(text2), 2);
    assert_non_null(strstr(text2, "\"msg\":\"two\""));
    free(text1);
    free(text2);
}

static void test_file_append_mode_and_perms(void **state)
{
    struct fixture *f = *state;
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/a/b/app.log", f->dir);
    struct log_options o = file_opts(file);
    configure_ok(&o);
    LOG_I("m", "first");
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/a/b", f->dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);

    log_shutdown();
    configure_ok(&o); /* reopen: must append, not truncate */
    LOG_I("m", "second");
    char *text = slurp(file);
    assert_non_null(text);
    assert_int_equal(count_lines(text), 2);
    assert_true(strstr(text, "first") < strstr(text, "second"));
    free(text);
}

static void test_rotation_creates_backups(void **state)
{
    struct fixture *f = *state;
    log_set_rotation_unit_for_tests(200);
    struct log_options o = file_opts(f->file);
    o.max_size_mb = 1; /* 200 bytes */
    configure_ok(&o);
    /* each line is 66 bytes: 3 lines per file */
    for (int i = 0; i < 10; i++)
        LOG_I("rot", "seq=%d padding-padding-padding", i);

    char names[64][256];
    size_t nb = list_matching(f->dir, BACKUP_RE, names, 64);
    assert_int_equal(nb, 3);
    assert_int_equal(list_matching(f->dir, ANY_BACKUP_RE, names, 64), nb); /* nothing else */

    bool seen[10] = {0};
    size_t total = 0;
    struct stat st;
    for (size_t i = 0; i < nb; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%.255s", f->dir, names[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size > 0 && st.st_size <= 200);
        assert_int_equal(st.st_mode & 0777, 0600);
        char *text = slurp(path);
        assert_non_null(text);
        total += collect_seqs(text, seen, 10);
        free(text);
    }
    assert_int_equal(stat(f->file, &st), 0);
    assert_true(st.st_size > 0 && st.st_size <= 200);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *text = slurp(f->file);
    assert_non_null(text);
    total += collect_seqs(text, seen, 10);
    assert_non_null(strstr(text, "seq=9 "));
    free(text);
    assert_int_equal(total, 10);

    /* the oldest backup (names sort by time) holds the first line */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%.255s", f->dir, names[0]);
    text = slurp(path);
    assert_non_null(strstr(text, "seq=0 "));
    free(text);
}

static void test_max_backups_prunes(void **state)
{
    struct fixture *f = *state;
    log_set_rotation_unit_for_tests(200);
    struct log_options o = file_opts(f->file);
    o.max_size_mb = 1;
    o.max_backups = 2;
    configure_ok(&o);
    enum { N = 20 };
    for (int i = 0; i < N; i++)
        LOG_I("rot", "seq=%d padding-padding-padding", i);

    char names[64][256];
    assert_int_equal(list_matching(f->dir, ANY_BACKUP_RE, names, 64), 2);
    assert_int_equal(list_matching(f->dir, BACKUP_RE, names, 64), 2);

    /* what is left must be the newest lines, without gaps, ending at N-1 */
    bool seen[N] = {0};
    size_t total = 0;
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%.255s", f->dir, names[i]);
        char *text = slurp(path);
        assert_non_null(text);
        total += collect_seqs(text, seen, N);
        free(text);
    }
    char *text = slurp(f->file);
    assert_non_null(text);
    total += collect_seqs(text, seen, N);
    free(text);
    assert_true(total >= 3 && total < N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(seen[i], i >= N - total);
}

static void test_compress(void **state)
{
    struct fixture *f = *state;
    log_set_rotation_unit_for_tests(200);
    struct log_options o = file_opts(f->file);
    o.max_size_mb = 1;
    o.compress = true;
    configure_ok(&o);
    enum { N = 12 };
    for (int i = 0; i < N; i++)
        LOG_I("gz", "seq=%d padding-padding-padding", i);

    char names[64][256];
    assert_int_equal(list_matching(f->dir, BACKUP_RE, names, 64), 0); /* no plain backups */
    size_t nb = list_matching(f->dir, BACKUP_GZ_RE, names, 64);
    assert_true(nb >= 3);

    bool seen[N] = {0};
    size_t total = 0;
    for (size_t i = 0; i < nb; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%.255s", f->dir, names[i]);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        char *text = slurp_gz(path);
        assert_non_null(text);
        assert_true(matches("^([0-9T:.-]+Z INFO \\[gz\\] seq=[0-9]+ padding-padding-padding\n)+$", text));
        total += collect_seqs(text, seen, N);
        free(text);
    }
    char *text = slurp(f->file);
    assert_non_null(text);
    total += collect_seqs(text, seen, N);
    free(text);
    assert_int_equal(total, N);
}

static void test_max_age(void **state)
{
    struct fixture *f = *state;
    /* pre-existing backups: one old, one recent, and an unrelated old file */
    const char *old_name = "app-2020-01-01T00-00-00.000.log";
    const char *old_gz = "app-2020-01-02T00-00-00.000.log.gz";
    const char *recent = "app-2020-01-03T00-00-00.000.log";
    const char *other = "other-2020-01-01T00-00-00.000.log";
    const char *files[] = {old_name, old_gz, recent, other};
    time_t now = time(NULL);
    for (size_t i = 0; i < 4; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", f->dir, files[i]);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("x\n", fp);
        fclose(fp);
        time_t t = files[i] == recent ? now - 3600 : now - 3 * 86400;
        struct timespec ts[2] = {{t, 0}, {t, 0}};
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    }

    log_set_rotation_unit_for_tests(200);
    struct log_options o = file_opts(f->file);
    o.max_size_mb = 1;
    o.max_age_days = 1;
    configure_ok(&o);
    for (int i = 0; i < 4; i++)
        LOG_I("age", "seq=%d padding-padding-padding", i);

    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", f->dir, old_name);
    assert_int_equal(stat(path, &st), -1);
    snprintf(path, sizeof path, "%s/%s", f->dir, old_gz);
    assert_int_equal(stat(path, &st), -1);
    snprintf(path, sizeof path, "%s/%s", f->dir, recent);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/%s", f->dir, other);
    assert_int_equal(stat(path, &st), 0);
    char names[64][256];
    assert_true(list_matching(f->dir, BACKUP_RE, names, 64) >= 2); /* recent + new rotation(s) */
}

static void test_invalid_path_keeps_previous(void **state)
{
    struct fixture *f = *state;
    struct log_options o = file_opts(f->file);
    configure_ok(&o);
    LOG_I("m", "before");

    /* parent "dir" is a regular file: cannot be created or opened */
    char blocker[128], bad[PATH_MAX];
    snprintf(blocker, sizeof blocker, "%s/blocker", f->dir);
    FILE *fp = fopen(blocker, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(bad, sizeof bad, "%s/sub/x.log", blocker);

    struct log_options b = file_opts(bad);
    b.level = LOG_TRACE;
    b.format = LOG_FORMAT_JSON;
    struct err e = {0};
    assert_int_equal(log_configure(&b, &e), ERR_IO);
    assert_int_equal(e.code, ERR_IO);
    assert_non_null(strstr(e.msg, bad));

    /* previous config still in force: INFO, PLAIN, same file */
    assert_false(log_enabled(LOG_DEBUG));
    LOG_D("m", "debug-hidden");
    LOG_I("m", "after");
    char *text = slurp(f->file);
    assert_non_null(text);
    assert_int_equal(count_lines(text), 2);
    assert_non_null(strstr(text, " INFO [m] after\n"));
    assert_null(strstr(text, "debug-hidden"));
    free(text);

    /* a directory as the file */
    struct log_options d = file_opts(f->dir);
    assert_int_equal(log_configure(&d, &e), ERR_IO);
    assert_non_null(strstr(e.msg, f->dir));

    /* invalid arguments */
    struct log_options neg = file_opts(f->file);
    neg.max_backups = -1;
    assert_int_equal(log_configure(&neg, &e), ERR_INVALID);
    assert_int_equal(log_configure(NULL, &e), ERR_INVALID);
}

/* true if this process has path open */
static bool fd_open_for(const char *path)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    bool found = false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char link[PATH_MAX], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, path) == 0)
            found = true;
    }
    closedir(d);
    return found;
}

static void test_shutdown_closes_file(void **state)
{
    struct fixture *f = *state;
    struct log_options o = file_opts(f->file);
    configure_ok(&o);
    LOG_I("m", "open");
    assert_true(fd_open_for(f->file));
    log_shutdown();
    assert_false(fd_open_for(f->file));
    /* afterwards: stderr only, nothing more in the file */
    int saved = dup(STDERR_FILENO);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDERR_FILENO);
    close(devnull);
    LOG_E("m", "after-shutdown");
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *text = slurp(f->file);
    assert_non_null(text);
    assert_null(strstr(text, "after-shutdown"));
    free(text);
    log_shutdown(); /* idempotent */
}

enum { THREADS = 4, PER_THREAD = 2000 };

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++)
        LOG_I("thr", "seq=%d thread=%d i=%d payload-abcdefghijklmnopqrstuvwxyz", id * PER_THREAD + i, id, i);
    return NULL;
}

static size_t check_concurrent_text(const char *text, bool *seen)
{
    size_t lines = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char line[256];
        size_t len = (size_t)(nl - p);
        assert_true(len < sizeof line);
        memcpy(line, p, len);
        line[len] = '\0';
        if (!matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z INFO \\[thr\\] seq=[0-9]+ thread=[0-3] "
                     "i=[0-9]+ payload-abcdefghijklmnopqrstuvwxyz$",
                     line))
            fail_msg("torn line: %s", line);
        int seq, id, i;
        assert_int_equal(sscanf(strstr(line, "seq="), "seq=%d thread=%d i=%d", &seq, &id, &i), 3);
        assert_int_equal(seq, id * PER_THREAD + i);
        assert_false(seen[seq]);
        seen[seq] = true;
        lines++;
        p = nl + 1;
    }
    return lines;
}

static void run_writers(void)
{
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
}

static void test_concurrent_writers(void **state)
{
    struct fixture *f = *state;
    struct log_options o = file_opts(f->file);
    configure_ok(&o);
    run_writers();
    char *text = slurp(f->file);
    assert_non_null(text);
    bool *seen = calloc(THREADS * PER_THREAD, 1);
    assert_non_null(seen);
    assert_int_equal(check_concurrent_text(text, seen), THREADS * PER_THREAD);
    free(text);
    free(seen);
}

static void test_concurrent_writers_with_rotation(void **state)
{
    struct fixture *f = *state;
    log_set_rotation_unit_for_tests(16384);
    struct log_options o = file_opts(f->file);
    o.max_size_mb = 1; /* 16 KiB: ~800 KiB of logs -> dozens of rotations */
    configure_ok(&o);
    run_writers();

    bool *seen = calloc(THREADS * PER_THREAD, 1);
    assert_non_null(seen);
    static char names[256][256];
    size_t nb = list_matching(f->dir, BACKUP_RE, names, 256);
    assert_true(nb >= 10);
    size_t total = 0;
    for (size_t i = 0; i < nb; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%.255s", f->dir, names[i]);
        char *text = slurp(path);
        assert_non_null(text);
        assert_true(strlen(text) <= 16384);
        total += check_concurrent_text(text, seen);
        free(text);
    }
    char *text = slurp(f->file);
    assert_non_null(text);
    total += check_concurrent_text(text, seen);
    free(text);
    assert_int_equal(total, THREADS * PER_THREAD);
    free(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_default_state, setup, teardown),
        cmocka_unit_test(test_parse),
        cmocka_unit_test_setup_teardown(test_level_filtering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newline_injection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdout_flushed_per_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_append_mode_and_perms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_creates_backups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_backups_prunes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_path_keeps_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_closes_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers_with_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
