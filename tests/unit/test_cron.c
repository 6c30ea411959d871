/*
 * test_cron.c - Quartz cron expressions (src/sched/cron.c): a table of expressions x instants
 * with answers worked out by hand (weekdays checked against an independent calendar), the
 * answers of go-quartz's own test suite (the library ABS uses), a table of invalid expressions
 * with the expected message fragments, and a brute-force second-by-second cross-check whose
 * calendar comes from the C library (timegm/gmtime_r), not from cron.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sched/cron.h"

/* "YYYY-MM-DDTHH:MM:SS[.mmm]Z" -> epoch ms, through the C library's timegm. */
static int64_t iso_ms(const char *iso)
{
    struct tm tm = {0};
    int ms = 0, n = 0;
    int got = sscanf(iso, "%d-%d-%dT%d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec, &n);
    assert_int_equal(got, 6);
    if (iso[n] == '.') {
        assert_int_equal(sscanf(iso + n, ".%3d", &ms), 1);
        n += 4;
    }
    assert_int_equal(iso[n], 'Z');
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static void ms_iso(int64_t ms, char *buf, size_t size)
{
    if (ms < 0) {
        snprintf(buf, size, "none (%lld)", (long long)ms);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* ---- next fire times ----------------------------------------------------------------- */

struct next_case {
    const char *expr;
    const char *after;  /* start instant */
    const char *expect; /* fire time after `iter` steps; NULL: none (-1) */
    int iter;           /* apply cron_next this many times (0 means 1) */
};

static const struct next_case next_cases[] = {
    /* plain values, strictly-after, sub-second starts */
    {"0 0 12 * * ?", "2024-01-01T12:00:00Z", "2024-01-02T12:00:00Z", 0},
    {"0 0 12 * * ?", "2024-01-01T11:59:59.999Z", "2024-01-01T12:00:00Z", 0},
    {"* * * * * ?", "2024-01-01T00:00:00.500Z", "2024-01-01T00:00:01Z", 0},
    {"* * * * * ?", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z", 0},
    {"15 30 23 31 12 ?", "2024-06-01T00:00:00Z", "2024-12-31T23:30:15Z", 0},
    {"59 59 23 * * ?", "2024-12-31T23:59:59Z", "2025-01-01T23:59:59Z", 0},
    /* steps and ranges */
    {"*/5 * * * * ?", "2024-01-01T00:00:59Z", "2024-01-01T00:01:00Z", 0},
    {"10/20 * * * * ?", "2024-01-01T00:00:31Z", "2024-01-01T00:00:50Z", 0},
    {"0 */15 * * * ?", "2023-12-31T23:50:00Z", "2024-01-01T00:00:00Z", 0},
    {"0 10-30/5 * * * ?", "2024-03-01T08:31:00Z", "2024-03-01T09:10:00Z", 0},
    {"0 5/15 * * * ?", "2024-03-01T08:50:00Z", "2024-03-01T09:05:00Z", 0},
    {"0 0 5-11/2 * * *", "2024-01-01T11:00:00Z", "2024-01-02T05:00:00Z", 0},
    {"0 0 1,5-11/3 * * *", "2024-01-01T05:00:00Z", "2024-01-01T08:00:00Z", 0},
    {"0 0 0-2,5,7-9,21-22 * * *", "2024-01-01T09:30:00Z", "2024-01-01T21:00:00Z", 0},
    {"0 0 0 1/10 * ?", "2024-02-21T00:00:00Z", "2024-03-01T00:00:00Z", 0},
    {"0 0 0 1-31/10 * ?", "2024-01-21T00:00:00Z", "2024-01-31T00:00:00Z", 0},
    {"0 0 0 1 */4 ?", "2024-01-01T00:00:00Z", "2024-05-01T00:00:00Z", 0},
    /* month ends */
    {"0 0 0 31 * ?", "2024-04-01T00:00:00Z", "2024-05-31T00:00:00Z", 0},
    {"0 0 0 31 * ?", "2024-01-31T00:00:00Z", "2024-03-31T00:00:00Z", 0},
    {"0 0 0 30 * ?", "2024-01-30T00:00:00Z", "2024-03-30T00:00:00Z", 0},
    {"0 0 0 31 2,4,6,9,11 ?", "2024-01-01T00:00:00Z", NULL, 0},
    {"0 0 0 30 2 ?", "2024-01-01T00:00:00Z", NULL, 0},
    {"0 0 0 L * ?", "2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z", 0},
    {"0 0 0 L * ?", "2023-01-31T00:00:00Z", "2023-02-28T00:00:00Z", 0},
    {"0 0 0 L * ?", "2100-01-31T00:00:00Z", "2100-02-28T00:00:00Z", 0},
    {"0 0 0 L * ?", "2024-04-15T00:00:00Z", "2024-04-30T00:00:00Z", 0},
    {"0 0 0 L * ?", "2024-12-31T00:00:00Z", "2025-01-31T00:00:00Z", 0},
    /* Feb 29 */
    {"0 0 0 29 2 ?", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z", 0},
    {"0 0 0 29 2 ?", "2023-01-01T00:00:00Z", "2024-02-29T00:00:00Z", 0},
    {"0 0 0 29 2 ?", "2024-02-29T00:00:00Z", "2028-02-29T00:00:00Z", 0},
    {"0 0 0 29 2 ?", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z", 0},
    {"0 0 0 29 FEB ? 2100", "2024-01-01T00:00:00Z", NULL, 0},
    {"0 0 0 29 2 ? 2025-2027", "2024-06-01T00:00:00Z", NULL, 0},
    {"0 0 0 29 2 ? 2025-2030", "2024-06-01T00:00:00Z", "2028-02-29T00:00:00Z", 0},
    {"0 0 0 ? 2 5#5", "2024-01-01T00:00:00Z", "2024-02-29T00:00:00Z", 0}, /* 5th Thursday */
    /* year field */
    {"0 0 0 1 1 ? 2030", "2024-06-01T00:00:00Z", "2030-01-01T00:00:00Z", 0},
    {"0 0 0 1 1 ? 2023", "2024-01-01T00:00:00Z", NULL, 0},
    {"0 0 0 1 5 ? 2023/2", "2024-01-01T12:00:00Z", "2025-05-01T00:00:00Z", 0},
    {"0 30 6 * * ? 2026,2028", "2026-12-31T06:30:00Z", "2028-01-01T06:30:00Z", 0},
    {"0 0 0 1 1 ? *", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", 0},
    {"0 0 0 * * ? 1970", "1970-01-01T00:00:00Z", "1970-01-02T00:00:00Z", 0},
    {"0 0 0 1 1 ? 3940", "2024-01-01T00:00:00Z", "3940-01-01T00:00:00Z", 0},
    {"0 0 0 L * ? 3940", "3940-12-31T00:00:00Z", NULL, 0},
    /* L-n, W, LW */
    {"0 15 10 L-2 * ?", "2024-02-01T00:00:00Z", "2024-02-27T10:15:00Z", 0},
    {"0 15 10 L-5 * ?", "2025-03-01T00:00:00Z", "2025-03-26T10:15:00Z", 0},
    {"0 0 12 L-30 * ?", "2024-01-01T12:00:00Z", "2024-03-01T12:00:00Z", 0},
    {"0 15 10 15W * ?", "2025-03-01T00:00:00Z", "2025-03-14T10:15:00Z", 0}, /* Sat -> Fri */
    {"0 0 0 15W * ?", "2025-06-01T00:00:00Z", "2025-06-16T00:00:00Z", 0},   /* Sun -> Mon */
    {"0 0 0 1W * ?", "2025-02-15T00:00:00Z", "2025-03-03T00:00:00Z", 0},    /* Sat 1st -> Mon 3rd */
    {"0 0 0 31W * ?", "2025-08-01T00:00:00Z", "2025-08-29T00:00:00Z", 0},   /* Sun 31st -> Fri */
    {"0 0 0 31W * ?", "2026-04-01T00:00:00Z", "2026-04-30T00:00:00Z", 0},   /* 30-day month */
    {"0 0 0 10W * ?", "2024-01-10T00:00:00Z", "2024-02-09T00:00:00Z", 0},   /* Sat Feb 10 -> Fri */
    {"0 0 0 LW * ?", "2025-05-01T00:00:00Z", "2025-05-30T00:00:00Z", 0},    /* Sat 31st -> Fri */
    {"0 0 0 LW * ?", "2025-11-01T00:00:00Z", "2025-11-28T00:00:00Z", 0},    /* Sun 30th -> Fri */
    {"0 0 0 LW * ?", "2024-02-01T00:00:00Z", "2024-02-29T00:00:00Z", 0},
    /* last weekday-of-month, nth weekday */
    {"0 15 10 ? * 6L", "2024-02-01T00:00:00Z", "2024-02-23T10:15:00Z", 0},
    {"0 15 10 ? * FRIL", "2024-02-23T10:15:00Z", "2024-03-29T10:15:00Z", 0},
    {"0 15 10 ? * L", "2024-10-01T00:00:00Z", "2024-10-26T10:15:00Z", 0}, /* last Saturday */
    {"0 15 10 ? * 5L", "2024-10-01T00:00:00Z", "2024-10-31T10:15:00Z", 0},
    {"0 15 10 ? * 6#3", "2024-01-01T00:00:00Z", "2024-01-19T10:15:00Z", 0},
    {"0 15 10 ? * MON#1", "2024-10-07T10:15:00Z", "2024-11-04T10:15:00Z", 0},
    {"0 15 10 ? * 3#5", "2024-01-01T12:00:00Z", "2024-01-30T10:15:00Z", 0},
    {"0 0 0 ? * 2#5", "2024-02-01T00:00:00Z", "2024-04-29T00:00:00Z", 0},
    {"0 0 0 ? * sun#1", "2024-08-31T00:00:00Z", "2024-09-01T00:00:00Z", 0},
    /* weekday numbering (1 = SUN ... 7 = SAT) and names */
    {"0 0 0 ? * SUN", "2019-04-17T18:00:00Z", "2019-04-21T00:00:00Z", 0},
    {"0 0 0 ? * 1", "2019-04-17T18:00:00Z", "2019-04-21T00:00:00Z", 0},
    {"0 0 0 ? * 7", "2019-04-17T18:00:00Z", "2019-04-20T00:00:00Z", 0},
    {"0 0 0 ? * 5", "2019-04-17T18:00:00Z", "2019-04-18T00:00:00Z", 0},
    {"0 0 0 ? * mon-fri", "2024-01-05T00:00:00Z", "2024-01-08T00:00:00Z", 0},
    {"0 0 0 ? * SUN,TUE-WED,Fri-Sat", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", 0},
    {"0 0 0 1 jan-mar,Dec ?", "2024-03-01T00:00:00Z", "2024-12-01T00:00:00Z", 0},
    {"0 0 0 1 JUL/2 ?", "2024-07-01T00:00:00Z", "2024-09-01T00:00:00Z", 0},
    {"0 0 14/2 ? * mon/3 *", "2024-01-01T22:00:00Z", "2024-01-04T14:00:00Z", 0},
    {"0 0 0 ? 4,6 SAT,MON", "2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z", 0},
    /* descriptors */
    {"@yearly", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", 0},
    {"@annually", "2024-06-15T12:00:00Z", "2025-01-01T00:00:00Z", 0},
    {"@monthly", "2024-01-31T23:59:59Z", "2024-02-01T00:00:00Z", 0},
    {"@weekly", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z", 0},
    {"@daily", "2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z", 0},
    {"@midnight", "2024-12-31T23:59:59.999Z", "2025-01-01T00:00:00Z", 0},
    {"@hourly", "2024-01-01T12:00:00Z", "2024-01-01T13:00:00Z", 0},
    {" \t@hourly\n", "2024-01-01T12:30:00Z", "2024-01-01T13:00:00Z", 0},
    /* '?' and '*' in the day fields, '?' elsewhere, white space */
    {"0 0 0 * * *", "2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z", 0},
    {"0 0 0 ? * ?", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z", 0},
    {"? 0 0 1 * ?", "2024-01-01T00:00:30Z", "2024-01-01T00:00:31Z", 0},
    {"0 0 12 15 * *", "2024-01-15T12:00:00Z", "2024-02-15T12:00:00Z", 0},
    {"0 0 12 * * MON", "2024-01-01T12:00:00Z", "2024-01-08T12:00:00Z", 0},
    {"  0\t0  12 *\n* ?  ", "2024-01-01T12:00:00Z", "2024-01-02T12:00:00Z", 0},
    /* instants before 1970 search from the epoch */
    {"0 0 0 * * ?", "1969-12-31T23:59:55Z", "1970-01-01T00:00:00Z", 0},
    /* go-quartz's own expectations (quartz/cron_test.go): iterate from 2024-01-01T12:00Z */
    {"10/20 15 14 5-10 * ? *", "2024-01-01T12:00:00Z", "2024-03-09T14:15:30Z", 50},
    {"0 5,7,9 14/2 ? * WED,Sat *", "2024-01-01T12:00:00Z", "2024-01-13T16:07:00Z", 50},
    {"*/3 */51 */12 */2 */4 ? *", "2024-01-01T12:00:00Z", "2024-01-03T00:00:30Z", 50},
    {"10,20 10,20 10,20 ? 6,12 3,6", "2024-01-01T12:00:00Z", "2024-06-25T10:10:20Z", 50},
    {"0 0 0 29 2 ?", "2024-01-01T12:00:00Z", "2228-02-29T00:00:00Z", 50},
    {"0 0 0 1 5 ? 2023/2", "2024-01-01T12:00:00Z", "2123-05-01T00:00:00Z", 50},
    {"@weekly", "2024-01-01T12:00:00Z", "2025-11-30T00:00:00Z", 100},
    {"@yearly", "2024-01-01T12:00:00Z", "2124-01-01T00:00:00Z", 100},
    {"0 15 10 1W 1/2 ?", "2024-01-01T12:00:00Z", "2026-07-01T10:15:00Z", 15},
    {"0 15 10 31W * ?", "2024-01-01T12:00:00Z", "2025-03-31T10:15:00Z", 15},
    {"0 15 10 LW * ?", "2024-01-01T12:00:00Z", "2025-03-31T10:15:00Z", 15},
    {"0 0 12 L-30 * ?", "2024-01-01T12:00:00Z", "2026-03-01T12:00:00Z", 15},
    {"0 15 10 ? * L", "2024-01-01T12:00:00Z", "2024-10-26T10:15:00Z", 10},
    {"0 15 10 ? * Tue#5", "2024-01-01T12:00:00Z", "2026-03-31T10:15:00Z", 10},
    {"0 15 10 ? * sat#5", "2024-01-01T12:00:00Z", "2026-05-30T10:15:00Z", 10},
};

static void test_next_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof next_cases / sizeof next_cases[0]; i++) {
        const struct next_case *tc = &next_cases[i];
        struct cron_expr c;
        struct err e = {0};
        if (cron_parse(tc->expr, &c, &e) != 0) {
            print_error("case %zu \"%s\": parse failed: %s\n", i, tc->expr, e.msg);
            failures++;
            continue;
        }
        int64_t t = iso_ms(tc->after);
        for (int k = 0; k < (tc->iter ? tc->iter : 1) && (k == 0 || t >= 0); k++)
            t = cron_next(&c, t);
        int64_t want = tc->expect ? iso_ms(tc->expect) : -1;
        if (t != want) {
            char got_s[64], want_s[64];
            ms_iso(t, got_s, sizeof got_s);
            ms_iso(want, want_s, sizeof want_s);
            print_error("case %zu \"%s\" after %s (x%d): got %s, want %s\n", i, tc->expr, tc->after,
                        tc->iter ? tc->iter : 1, got_s, want_s);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    assert_true(sizeof next_cases / sizeof next_cases[0] >= 60);
}

/* ---- invalid expressions ------------------------------------------------------------- */

struct bad_case {
    const char *expr;
    const char *frag1; /* both fragments must appear in the message */
    const char *frag2;
};

static const struct bad_case bad_cases[] = {
    {"", "empty", NULL},
    {" \t ", "empty", NULL},
    {"0 0 * * *", "5 fields", "5-field crontab"},
    {"0 0 0 * * ? * *", "8 fields", "expected 6 or 7"},
    {"0 0 0", "3 fields", NULL},
    {"60 * * * * ?", "second field \"60\"", "out of range 0-59"},
    {"* 60 * * * ?", "minute field \"60\"", "out of range 0-59"},
    {"* * 24 * * ?", "hour field \"24\"", "out of range 0-23"},
    {"* * * 0 * ?", "day-of-month field \"0\"", "out of range 1-31"},
    {"* * * 32 * ?", "day-of-month field \"32\"", "out of range 1-31"},
    {"* * * * 13 ?", "month field \"13\"", "out of range 1-12"},
    {"* * * ? * 0", "day-of-week field \"0\"", "out of range 1-7"},
    {"* * * ? * 8", "day-of-week field \"8\"", "out of range 1-7"},
    {"* * * * FOO ?", "month field \"FOO\"", "unknown value \"FOO\""},
    {"* * * ? * MONDAY", "day-of-week field", "unknown value \"MONDAY\""},
    {"* * * ? JAN-MON *", "month field", "unknown value \"MON\""},
    {"X * * * * ?", "second field \"X\"", "unknown value \"X\""},
    {"0 0 0 15 * MON", "day-of-month \"15\" and day-of-week \"MON\" both set", NULL},
    {"0 0 0 L * 6L", "both set", NULL},
    {"*/0 * * * * ?", "second field \"*/0\"", "step 0 out of range 1-59"},
    {"*/60 * * * * ?", "second field", "step 60 out of range"},
    {"* * */x * * ?", "hour field", "step \"x\" is not a number"},
    {"1/2/3 * * * * ?", "second field", "more than one \"/\""},
    {"1-2-3 * * * * ?", "second field", "more than one \"-\""},
    {"30-10 * * * * ?", "second field \"30-10\"", "starts after it ends"},
    {"0 0 0 ? * FRI-MON", "day-of-week field", "starts after it ends"},
    {"1,,2 * * * * ?", "second field \"1,,2\"", "empty list element"},
    {"5, * * * * ?", "second field \"5,\"", "empty list element"},
    {"*,5 * * * * ?", "second field", "\"*\" cannot be part of a list"},
    {"0 0 0 ?,1 * ?", "day-of-month field", "\"?\" cannot be part of a list"},
    {"-1 * * * * ?", "second field \"-1\"", "empty value"},
    {"+5 * * * * ?", "second field", "unknown value \"+5\""},
    {"0 0 0 * * ? 1969", "year field \"1969\"", "out of range 1970-3940"},
    {"0 0 0 * * ? 3941", "year field", "out of range 1970-3940"},
    {"0 0 0 L-0 * ?", "day-of-month field \"L-0\"", "out of range 1-31"},
    {"0 0 0 L-32 * ?", "day-of-month field \"L-32\"", "out of range 1-31"},
    {"0 0 0 L- * ?", "day-of-month field \"L-\"", "L-n"},
    {"0 0 0 W * ?", "day-of-month field \"W\"", "L and W"},
    {"0 0 0 0W * ?", "day-of-month field \"0W\"", "out of range 1-31"},
    {"0 0 0 32W * ?", "day-of-month field \"32W\"", "out of range 1-31"},
    {"0 0 0 WL * ?", "day-of-month field", "L and W"},
    {"0 0 0 W15 * ?", "day-of-month field", "L and W"},
    {"0 0 0 L,15 * ?", "day-of-month field", "L and W"},
    {"0 0 0 1-5W * ?", "day-of-month field", "L and W"},
    {"0 0 0 ? * 2#6", "day-of-week field \"2#6\"", "must be 1-5"},
    {"0 0 0 ? * 2#0", "day-of-week field", "must be 1-5"},
    {"0 0 0 ? * #1", "day-of-week field \"#1\"", "\"#\" is only allowed"},
    {"0 0 0 ? * 1#", "day-of-week field", "must be 1-5"},
    {"0 0 0 ? * a#2", "day-of-week field", "unknown value \"a\""},
    {"0 0 0 ? * 8L", "day-of-week field \"8L\"", "out of range 1-7"},
    {"0 0 0 ? * 0L", "day-of-week field", "out of range 1-7"},
    {"0 0 0 ? * 2#4,4L", "day-of-week field", "\"#\" is only allowed"},
    {"0 0 0 ? * 1-5L", "day-of-week field", "L is only allowed"},
    {"0 0 0 ? * 6l", "day-of-week field", "unknown value \"6l\""},
    {"0 0 0 l * ?", "day-of-month field", "unknown value \"l\""},
    {"@DAILY", "unknown cron descriptor \"@DAILY\"", NULL},
    {"@reboot", "unknown cron descriptor", NULL},
    {"@every 5m", "2 fields", NULL},
    {"@daily *", "2 fields", NULL},
};

static void test_invalid_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *tc = &bad_cases[i];
        struct cron_expr c;
        struct err e = {0};
        int rc = cron_parse(tc->expr, &c, &e);
        bool ok = rc == ERR_INVALID && e.code == ERR_INVALID && strstr(e.msg, tc->frag1) &&
                  (!tc->frag2 || strstr(e.msg, tc->frag2));
        if (!ok) {
            print_error("bad case %zu \"%s\": rc %d, message \"%s\"; want \"%s\" and \"%s\"\n", i,
                        tc->expr, rc, e.msg, tc->frag1, tc->frag2 ? tc->frag2 : "");
            failures++;
        }
        struct err e2 = {0};
        if (cron_validate(tc->expr, &e2) != ERR_INVALID || strcmp(e.msg, e2.msg) != 0) {
            print_error("bad case %zu: cron_validate disagrees\n", i);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
    assert_true(sizeof bad_cases / sizeof bad_cases[0] >= 20);
}

static void test_misc_parse(void **state)
{
    (void)state;
    struct cron_expr c;
    struct err e = {0};
    assert_int_equal(cron_parse(NULL, &c, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "empty"));

    char longexpr[CRON_EXPR_MAX + 40];
    memset(longexpr, ' ', sizeof longexpr - 1);
    longexpr[sizeof longexpr - 1] = '\0';
    memcpy(longexpr, "0 0 0 * * ?", 11);
    assert_int_equal(cron_parse(longexpr, &c, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "longer than"));

    /* a failed parse leaves the output untouched */
    assert_int_equal(cron_parse("0 0 12 * * ?", &c, &e), 0);
    struct cron_expr before = c;
    assert_int_equal(cron_parse("0 0 99 * * ?", &c, &e), ERR_INVALID);
    assert_memory_equal(&before, &c, sizeof c);

    /* descriptors equal their expansions */
    static const char *const pairs[][2] = {
        {"@yearly", "0 0 0 1 1 *"},   {"@annually", "0 0 0 1 1 ?"}, {"@monthly", "0 0 0 1 * ?"},
        {"@weekly", "0 0 0 ? * SUN"}, {"@daily", "0 0 0 * * ?"},    {"@midnight", "0 0 0 ? * *"},
        {"@hourly", "0 0 * * * ?"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        struct cron_expr a, b;
        assert_int_equal(cron_parse(pairs[i][0], &a, &e), 0);
        assert_int_equal(cron_parse(pairs[i][1], &b, &e), 0);
        int64_t t = iso_ms("2023-11-20T07:00:00Z");
        for (int k = 0; k < 30; k++) {
            int64_t ta = cron_next(&a, t), tb = cron_next(&b, t);
            assert_int_equal(ta, tb);
            t = ta;
        }
    }

    /* results are whole seconds, strictly after the start, and never before 1970 */
    assert_int_equal(cron_parse("* * * * * ?", &c, &e), 0);
    assert_int_equal(cron_next(&c, 0), 1000);
    assert_int_equal(cron_next(&c, 999), 1000);
    assert_int_equal(cron_next(&c, 1000), 2000);
    assert_int_equal(cron_next(&c, -1), 0);
    assert_int_equal(cron_next(&c, INT64_MIN), 0);
    assert_int_equal(cron_next(&c, INT64_MAX), -1);
    assert_int_equal(cron_next(&c, iso_ms("3940-12-31T23:59:58Z")), iso_ms("3940-12-31T23:59:59Z"));
    assert_int_equal(cron_next(&c, iso_ms("3940-12-31T23:59:59Z")), -1);
}

/* ---- brute force: every second of a window, calendar from the C library -------------- */

typedef bool (*tm_match)(const struct tm *tm);

static int days_in_month_tm(const struct tm *tm)
{
    struct tm next = *tm;
    next.tm_mday = 32; /* timegm normalises: day 32 of this month -> day (32 - len) of next */
    next.tm_hour = 12;
    time_t t = timegm(&next);
    struct tm n;
    gmtime_r(&t, &n);
    return 32 - n.tm_mday;
}

static bool m_every7s(const struct tm *tm) { return tm->tm_sec % 7 == 0; }
static bool m_quarter(const struct tm *tm) { return tm->tm_sec == 0 && tm->tm_min % 15 == 0; }
static bool m_workhours(const struct tm *tm)
{
    return tm->tm_sec == 30 && tm->tm_min == 5 && tm->tm_hour >= 10 && tm->tm_hour <= 12 &&
           tm->tm_wday >= 1 && tm->tm_wday <= 5;
}
static bool m_last_day(const struct tm *tm)
{
    return tm->tm_sec == 0 && tm->tm_min == 0 && tm->tm_hour == 0 &&
           tm->tm_mday == days_in_month_tm(tm);
}
static bool m_third_friday(const struct tm *tm)
{
    return tm->tm_sec == 0 && tm->tm_min == 0 && tm->tm_hour == 12 && tm->tm_wday == 5 &&
           (tm->tm_mday - 1) / 7 == 2;
}
static bool m_leap_day(const struct tm *tm)
{
    return (tm->tm_sec == 15 || tm->tm_sec == 45) && tm->tm_hour == 3 && tm->tm_mday == 29 &&
           tm->tm_mon == 1;
}
static bool m_last_sunday(const struct tm *tm)
{
    return tm->tm_sec == 0 && tm->tm_min == 30 && tm->tm_hour == 1 && tm->tm_wday == 0 &&
           tm->tm_mday + 7 > days_in_month_tm(tm);
}
static bool m_month_steps(const struct tm *tm)
{
    return tm->tm_sec == 0 && tm->tm_min == 0 && tm->tm_hour % 6 == 0 && tm->tm_mday >= 28 &&
           (tm->tm_mon + 1 == 2 || tm->tm_mon + 1 == 3);
}

struct brute_case {
    const char *expr;
    const char *from;
    int64_t seconds;
    tm_match match;
};

static const struct brute_case brute_cases[] = {
    {"*/7 * * * * ?", "2024-12-31T22:30:00Z", 3 * 3600, m_every7s},
    {"0 */15 * * * ?", "2024-02-28T00:00:00Z", 2 * 86400, m_quarter},
    {"30 5 10-12 ? * MON-FRI", "2024-03-27T00:00:00Z", 8 * 86400, m_workhours},
    {"0 0 0 L * ?", "2024-02-27T00:00:00Z", 4 * 86400, m_last_day},
    {"0 0 0 L * ?", "2100-02-26T00:00:00Z", 5 * 86400, m_last_day},
    {"0 0 12 ? * 6#3", "2024-05-14T00:00:00Z", 8 * 86400, m_third_friday},
    {"15,45 * 3 29 2 ? *", "2028-02-28T23:00:00Z", 2 * 86400, m_leap_day},
    {"0 30 1 ? * 1L", "2024-10-25T00:00:00Z", 4 * 86400, m_last_sunday},
    {"0 0 */6 28-31 FEB-MAR ?", "2024-02-27T00:00:00Z", 4 * 86400, m_month_steps},
};

/* Walks the window backwards keeping the first matching second after t, and checks
 * cron_next at every second (with several millisecond offsets) once that is known. */
static void brute_check(const char *expr, int64_t from_s, int64_t seconds, tm_match match,
                        const uint64_t *sets)
{
    struct cron_expr c;
    struct err e = {0};
    if (cron_parse(expr, &c, &e) != 0)
        fail_msg("\"%s\": %s", expr, e.msg);
    static const int offsets[] = {0, 1, 500, 999};
    int64_t next = -1;
    long checked = 0, matched = 0;
    for (int64_t t = from_s + seconds; t >= from_s; t--) {
        if (next >= 0) {
            int64_t got = cron_next(&c, t * 1000 + offsets[t % 4]);
            if (got != next * 1000) {
                char a[64], b[64], s[64];
                ms_iso(got, a, sizeof a);
                ms_iso(next * 1000, b, sizeof b);
                ms_iso(t * 1000, s, sizeof s);
                fail_msg("\"%s\" after %s: got %s, brute force says %s", expr, s, a, b);
            }
            checked++;
        }
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        bool m = match ? match(&tm)
                       : ((sets[0] >> tm.tm_sec) & 1) && ((sets[1] >> tm.tm_min) & 1) &&
                             ((sets[2] >> tm.tm_hour) & 1);
        if (m) {
            next = t;
            matched++;
        }
    }
    assert_true(matched > 0);
    assert_true(checked > 0);
}

static void test_brute_force(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof brute_cases / sizeof brute_cases[0]; i++) {
        const struct brute_case *bc = &brute_cases[i];
        brute_check(bc->expr, iso_ms(bc->from) / 1000, bc->seconds, bc->match, NULL);
    }
}

/* Random lists of seconds, minutes and hours rendered as text; membership checked directly. */
static void render_list(char *buf, size_t size, uint64_t set, int max)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int v = 0; v <= max; v++)
        if ((set >> v) & 1)
            n += (size_t)snprintf(buf + n, size - n, "%s%d", n ? "," : "", v);
}

static void test_brute_force_random_lists(void **state)
{
    (void)state;
    unsigned seed = 12345;
    for (int round = 0; round < 6; round++) {
        uint64_t sets[3] = {0, 0, 0};
        const int max[3] = {59, 59, 23};
        const int density[3] = {8, 6, 3}; /* about one value in `density` */
        for (int f = 0; f < 3; f++) {
            while (!sets[f])
                for (int v = 0; v <= max[f]; v++)
                    if (rand_r(&seed) % density[f] == 0)
                        sets[f] |= UINT64_C(1) << v;
        }
        char s[256], m[256], h[128], expr[700];
        render_list(s, sizeof s, sets[0], 59);
        render_list(m, sizeof m, sets[1], 59);
        render_list(h, sizeof h, sets[2], 23);
        snprintf(expr, sizeof expr, "%s %s %s * * ?", s, m, h);
        int64_t from = iso_ms("2024-02-28T00:00:00Z") / 1000 + (int64_t)(rand_r(&seed) % 86400);
        brute_check(expr, from, 2 * 86400, NULL, sets);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_table),
        cmocka_unit_test(test_invalid_table),
        cmocka_unit_test(test_misc_parse),
        cmocka_unit_test(test_brute_force),
        cmocka_unit_test(test_brute_force_random_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
