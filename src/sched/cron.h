/*
 * cron.h - Quartz-style cron expressions as ABS v3.1 accepts them, evaluated in UTC.
 *
 * ABS validates `interval-cron` / `incr-interval-cron` with reugn/go-quartz (v0.14+, the
 * release that added L, W and #) and fires its CronTrigger in UTC. This module reproduces
 * that grammar and its next-fire-time rule; it owns nothing but the parsed form, a plain
 * value type (no allocation, no free, safe to copy and to share read-only between threads).
 *
 * Syntax (fields separated by any run of white space; leading/trailing space ignored):
 *
 *     second minute hour day-of-month month day-of-week [year]
 *
 *   field         values                 special tokens
 *   second        0-59                   * ? , - /
 *   minute        0-59                   * ? , - /
 *   hour          0-23                   * ? , - /
 *   day-of-month  1-31                   * ? , - /   L  L-n  nW  LW
 *   month         1-12 or JAN-DEC        * ? , - /
 *   day-of-week   1-7 or SUN-SAT         * ? , - /   L  nL  n#k
 *   year          1970-3940 (optional)   * ? , - /
 *
 * - Exactly 6 or 7 fields. The classic 5-field crontab form is rejected, as go-quartz
 *   rejects it ("invalid expression length"): seconds are mandatory.
 * - Day-of-week numbering is Quartz's, as in go-quartz: 1 = SUN, 2 = MON ... 7 = SAT
 *   (0 is invalid). `@weekly` therefore fires on Sunday.
 * - Month and weekday names are case-insensitive (`jan`, `Mon`); the letters L, W and the
 *   descriptors are case-sensitive, as in go-quartz.
 * - `*` and `?` both mean "any" and are accepted in every field (go-quartz does too).
 * - Lists `a,b`, ranges `a-b` (start <= end, no wrap-around), steps `a/n` (a..max),
 *   `a-b/n` and `*` + `/n` (whole range); lists may mix values, ranges and steps. A step
 *   is 1..field max.
 * - Day-of-month and day-of-week: at most one of them may be set; the other must be `*` or
 *   `?` (error "day-of-month and day-of-week both set"). When day-of-week is set it alone
 *   selects the days; otherwise day-of-month does; both `*`/`?` means every day.
 * - Day-of-month specials (whole field only, no lists): `L` last day; `L-n` (n 1..31) n days
 *   before the last day (no fire in months where that is before the 1st); `nW` (n 1..31)
 *   weekday (Mon-Fri) nearest to day n without leaving the month (n beyond the month's end
 *   counts as its last day); `LW` last weekday of the month.
 * - Day-of-week specials (whole field only): `nL` / `FRIL` last such weekday of the month;
 *   `L` alone is go-quartz's "7L" (the last Saturday of the month); `n#k` / `FRI#k`
 *   (k 1..5) k-th such weekday of the month, no fire in months without one.
 * - Descriptors (the whole expression): @yearly = @annually = "0 0 0 1 1 *",
 *   @monthly = "0 0 0 1 * *", @weekly = "0 0 0 * * 1", @daily = @midnight = "0 0 0 * * *",
 *   @hourly = "0 0 * * * *". (@annually and @midnight are aliases ABS documents.)
 *
 * Stricter than go-quartz only where go-quartz silently accepts nonsense: values in lists
 * are range-checked (go-quartz accepts "1,99"), numbers are plain digits (no sign).
 */
#ifndef ABS_SCHED_CRON_H
#define ABS_SCHED_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

#define CRON_YEAR_MIN 1970
#define CRON_YEAR_MAX 3940 /* go-quartz's upper bound for the year field; also the search limit */
#define CRON_EXPR_MAX 256  /* longest accepted expression, in bytes */

/* How the day of a month is selected (the day-of-month / day-of-week pair reduced to one rule). */
enum cron_day_mode {
    CRON_DAY_ANY = 0,          /* both fields `*` or `?` */
    CRON_DAY_DOM,              /* day-of-month list: `dom` bits */
    CRON_DAY_DOM_LAST,         /* `L` (day_arg 0) or `L-n` (day_arg n) */
    CRON_DAY_DOM_NEAREST,      /* `nW`: day_arg = n */
    CRON_DAY_DOM_LAST_WEEKDAY, /* `LW` */
    CRON_DAY_DOW,              /* day-of-week list: `dow` bits */
    CRON_DAY_DOW_LAST,         /* `nL`: day_arg = weekday 0..6 (0 = Sunday) */
    CRON_DAY_DOW_NTH,          /* `n#k`: day_arg = weekday 0..6, nth = k */
};

#define CRON_YEAR_WORDS ((CRON_YEAR_MAX - CRON_YEAR_MIN) / 64 + 1)

/* A parsed expression. Bit v of a set means value v matches. */
struct cron_expr {
    uint64_t seconds;  /* bits 0..59 */
    uint64_t minutes;  /* bits 0..59 */
    uint32_t hours;    /* bits 0..23 */
    uint32_t dom;      /* bits 1..31 (CRON_DAY_DOM) */
    uint16_t months;   /* bits 1..12 */
    uint8_t dow;       /* bits 0..6, 0 = Sunday (Quartz value minus one; CRON_DAY_DOW) */
    uint8_t day_mode;  /* enum cron_day_mode */
    uint8_t day_arg;   /* see enum cron_day_mode */
    uint8_t nth;       /* CRON_DAY_DOW_NTH: 1..5 */
    bool any_year;     /* year field absent, `*` or `?` */
    uint64_t years[CRON_YEAR_WORDS]; /* bit (y - CRON_YEAR_MIN) */
};

/* Parses `expr` into `*out`. On failure returns ERR_INVALID and e->msg names the field and
 * the bad token, e.g. `day-of-week field "8": value 8 out of range 1-7`. */
int cron_parse(const char *expr, struct cron_expr *out, struct err *e);

/* Same checks as cron_parse without keeping the result (for validators). */
int cron_validate(const char *expr, struct err *e);

/* The first fire time strictly after `after_ms` (epoch milliseconds, UTC), in epoch
 * milliseconds (always a whole second), or -1 when there is none up to the end of year
 * CRON_YEAR_MAX (a year field in the past, "30 2", L-30 in a year list without 31-day
 * months...). Instants before 1970 are searched from 1970-01-01T00:00:00Z. Cost is bounded
 * by the number of (year, month) pairs visited, never second-by-second. */
int64_t cron_next(const struct cron_expr *c, int64_t after_ms);

#endif
