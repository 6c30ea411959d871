/* test_log_journal.c - stdout logging under systemd: when $JOURNAL_STREAM names stdout, lines
 * start with the syslog <N> priority and carry no timestamp (the journal adds its own); a file
 * writer alongside keeps its timestamps; a $JOURNAL_STREAM naming another file changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

struct capture {
    char path[64];
    int saved_stdout;
};

/* Points stdout at a fresh temporary file; returns the file's "dev:ino". */
static void capture_start(struct capture *c, char *journal_stream, size_t cap)
{
    strcpy(c->path, "/tmp/log-journal-XXXXXX");
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    fflush(stdout);
    c->saved_stdout = dup(STDOUT_FILENO);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    close(fd);
    struct stat st;
    assert_int_equal(fstat(STDOUT_FILENO, &st), 0);
    snprintf(journal_stream, cap, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
}

/* Restores stdout and returns what was written to the captured file (caller frees). */
static char *capture_end(struct capture *c)
{
    fflush(stdout);
    dup2(c->saved_stdout, STDOUT_FILENO);
    close(c->saved_stdout);
    FILE *f = fopen(c->path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 8192);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 8191, f);
    buf[n] = '\0';
    fclose(f);
    unlink(c->path);
    return buf;
}

static void configure(enum log_format format, const char *file)
{
    struct log_options lo = {.level = LOG_TRACE, .format = format, .to_stdout = true, .file = file};
    struct err e = {0};
    assert_int_equal(log_configure(&lo, &e), 0);
}

/* Logging to stdout captured, with $JOURNAL_STREAM naming that stdout. */
static void journal_start(struct capture *c, enum log_format format, const char *file)
{
    char stream[64];
    capture_start(c, stream, sizeof stream);
    setenv("JOURNAL_STREAM", stream, 1);
    configure(format, file);
}

/* Stops logging and returns what went to stdout (caller frees). */
static char *logging_end(struct capture *c)
{
    log_shutdown();
    unsetenv("JOURNAL_STREAM");
    return capture_end(c);
}

static void test_journal_lines_have_priority_and_no_timestamp(void **state)
{
    (void)state;
    struct capture c;
    journal_start(&c, LOG_FORMAT_PLAIN, NULL);
    LOG_D("main", "debug line");
    LOG_I("main", "info line");
    LOG_W("jobs", "warn line");
    LOG_E("", "error line");
    char *out = logging_end(&c);
    assert_string_equal(out, "<7>DEBUG [main] debug line\n"
                             "<6>INFO [main] info line\n"
                             "<4>WARN [jobs] warn line\n"
                             "<3>ERROR error line\n");
    free(out);
}

static void test_journal_json_keeps_its_fields(void **state)
{
    (void)state;
    struct capture c;
    journal_start(&c, LOG_FORMAT_JSON, NULL);
    LOG_W("main", "json line");
    char *out = logging_end(&c);
    assert_memory_equal(out, "<4>{\"time\":\"", 12);
    assert_non_null(strstr(out, "\"level\":\"WARN\",\"module\":\"main\",\"msg\":\"json line\"}\n"));
    free(out);
}

static void test_file_writer_keeps_timestamps(void **state)
{
    (void)state;
    char file[] = "/tmp/log-journal-file-XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    close(fd);
    struct capture c;
    journal_start(&c, LOG_FORMAT_PLAIN, file);
    LOG_I("main", "both writers");
    char *out = logging_end(&c);
    assert_string_equal(out, "<6>INFO [main] both writers\n");
    free(out);

    FILE *f = fopen(file, "r");
    assert_non_null(f);
    char line[256] = {0};
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    unlink(file);
    assert_true(line[0] == '2' && line[4] == '-' && line[10] == 'T'); /* 20YY-MM-DDT... */
    assert_non_null(strstr(line, "Z INFO [main] both writers\n"));
}

static void test_other_stream_or_none_keeps_plain_lines(void **state)
{
    (void)state;
    const char *streams[] = {"1:1", "garbage", NULL};
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        struct capture c;
        char stream[64];
        capture_start(&c, stream, sizeof stream);
        if (streams[i])
            setenv("JOURNAL_STREAM", streams[i], 1);
        else
            unsetenv("JOURNAL_STREAM");
        configure(LOG_FORMAT_PLAIN, NULL);
        LOG_I("main", "not journal");
        char *out = logging_end(&c);
        assert_true(out[0] == '2');
        assert_null(strchr(out, '<'));
        assert_non_null(strstr(out, "Z INFO [main] not journal\n"));
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_lines_have_priority_and_no_timestamp),
        cmocka_unit_test(test_journal_json_keeps_its_fields),
        cmocka_unit_test(test_file_writer_keeps_timestamps),
        cmocka_unit_test(test_other_stream_or_none_keeps_plain_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
