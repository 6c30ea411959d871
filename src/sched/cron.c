/*
 * cron.c - parser and next-fire-time search for Quartz cron expressions (see cron.h for the
 * accepted grammar and the facts behind each choice).
 *
 * Parsing turns each field into a bit set (one bit per allowed value) and reduces the
 * day-of-month / day-of-week pair to a single "day rule". The search walks the calendar
 * from the most significant field down (year, month, day, hour, minute, second): at each
 * level it jumps to the next allowed value with a bit scan, and only the first candidate at
 * each level inherits the lower fields of the start instant. Because every set is non-empty,
 * a level below a skipped one always succeeds at once, so the cost is one step per
 * (year, month) visited plus the days of at most one month scan: no second-by-second loop.
 *
 * All calendar arithmetic is proleptic Gregorian in UTC on a day count since 1970-01-01,
 * independent of the C library's time zone functions.
 */
#include "sched/cron.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- calendar helpers ------------------------------------------------------------------ */

static bool cron_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int cron_days_in_month(int64_t y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && cron_is_leap(y) ? 29 : mdays[m - 1];
}

/* Days since 1970-01-01 of y-m-d (era-based civil calendar arithmetic, valid for y >= 0). */
static int64_t cron_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = y / 400;
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;  /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* Inverse of cron_days_from_civil for z >= 0. */
static void cron_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday ... 6 = Saturday; 1970-01-01 was a Thursday. */
static int cron_weekday(int64_t days)
{
    int w = (int)((days + 4) % 7);
    return w < 0 ? w + 7 : w;
}

/* Smallest set bit >= from in `set`, or -1. */
static int cron_next_bit(uint64_t set, int from)
{
    if (from < 0)
        from = 0;
    if (from > 63)
        return -1;
    uint64_t rest = set & (~UINT64_C(0) << from);
    return rest ? __builtin_ctzll(rest) : -1;
}

/* ---- parsing ---------------------------------------------------------------------------- */

struct cron_field_spec {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[i] is value lo + i; NULL when the field has no names */
};

static const char *const cron_month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                               "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const cron_dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW, F_YEAR, F_COUNT };

static const struct cron_field_spec cron_fields[F_COUNT] = {
    [F_SEC] = {"second", 0, 59, NULL},
    [F_MIN] = {"minute", 0, 59, NULL},
    [F_HOUR] = {"hour", 0, 23, NULL},
    [F_DOM] = {"day-of-month", 1, 31, NULL},
    [F_MONTH] = {"month", 1, 12, cron_month_names},
    [F_DOW] = {"day-of-week", 1, 7, cron_dow_names},
    [F_YEAR] = {"year", CRON_YEAR_MIN, CRON_YEAR_MAX, NULL},
};

static const struct {
    const char *name;
    const char *expr;
} cron_descriptors[] = {
    {"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
    {"@weekly", "0 0 0 * * 1"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
    {"@hourly", "0 0 * * * *"},
};

/* Reports a problem with one field: `<field> field "<token>": <reason>`. */
static int cron_field_err(struct err *e, const struct cron_field_spec *f, const char *tok,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int cron_field_err(struct err *e, const struct cron_field_spec *f, const char *tok,
                          const char *fmt, ...)
{
    char reason[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return err_set(e, ERR_INVALID, "%s field \"%.64s\": %s", f->name, tok, reason);
}

static bool cron_is_any(const char *tok)
{
    return strcmp(tok, "*") == 0 || strcmp(tok, "?") == 0;
}

static bool cron_all_digits(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Parses s[0..len) as a decimal number or (for month / day-of-week) a name, range-checked. */
static int cron_value(const struct cron_field_spec *f, const char *tok, const char *s, size_t len,
                      int *out, struct err *e)
{
    if (cron_all_digits(s, len)) {
        int v = 0;
        for (size_t i = 0; i < len; i++) {
            v = v * 10 + (s[i] - '0');
            if (v > 99999) {
                v = 99999; /* only to report "out of range" without overflowing */
                break;
            }
        }
        if (v < f->lo || v > f->hi)
            return cron_field_err(e, f, tok, "value %d out of range %d-%d", v, f->lo, f->hi);
        *out = v;
        return 0;
    }
    if (f->names)
        for (int i = 0; f->names[i]; i++)
            if (len == strlen(f->names[i]) && strncasecmp(s, f->names[i], len) == 0) {
                *out = f->lo + i;
                return 0;
            }
    if (len == 0)
        return cron_field_err(e, f, tok, "empty value");
    return cron_field_err(e, f, tok, "unknown value \"%.*s\"%s", (int)(len > 32 ? 32 : len), s,
                          f->names ? f->names == cron_month_names ? " (use 1-12 or JAN-DEC)"
                                                                  : " (use 1-7 or SUN-SAT)"
                                   : "");
}

static void cron_set_bits(uint64_t *words, int base, int from, int to, int step)
{
    for (int v = from; v <= to; v += step)
        words[(v - base) / 64] |= UINT64_C(1) << ((v - base) % 64);
}

/* Parses one list element: `*`, `v`, `a-b`, each optionally followed by `/step`. */
static int cron_element(const struct cron_field_spec *f, const char *tok, const char *s, size_t len,
                        uint64_t *words, int base, struct err *e)
{
    const char *slash = memchr(s, '/', len);
    size_t blen = slash ? (size_t)(slash - s) : len;
    int from, to, step = 1;
    if (slash) {
        const char *st = slash + 1;
        size_t slen = len - blen - 1;
        if (memchr(st, '/', slen))
            return cron_field_err(e, f, tok, "more than one \"/\" in \"%.*s\"", (int)len, s);
        if (!cron_all_digits(st, slen))
            return cron_field_err(e, f, tok, "step \"%.*s\" is not a number", (int)slen, st);
        step = 0;
        for (size_t i = 0; i < slen && step <= f->hi; i++)
            step = step * 10 + (st[i] - '0');
        if (step < 1 || step > f->hi)
            return cron_field_err(e, f, tok, "step %.*s out of range 1-%d", (int)slen, st, f->hi);
    }
    if (blen == 1 && s[0] == '*') {
        from = f->lo;
        to = f->hi;
    } else {
        const char *dash = memchr(s, '-', blen);
        if (dash) {
            size_t alen = (size_t)(dash - s);
            if (memchr(dash + 1, '-', blen - alen - 1))
                return cron_field_err(e, f, tok, "range \"%.*s\" has more than one \"-\"", (int)blen, s);
            if (cron_value(f, tok, s, alen, &from, e) ||
                cron_value(f, tok, dash + 1, blen - alen - 1, &to, e))
                return ERR_INVALID;
            if (from > to)
                return cron_field_err(e, f, tok, "range %.*s starts after it ends", (int)blen, s);
        } else {
            if (cron_value(f, tok, s, blen, &from, e))
                return ERR_INVALID;
            to = slash ? f->hi : from; /* "a/n" means a..max every n */
        }
    }
    cron_set_bits(words, base, from, to, step);
    return 0;
}

/* Parses a list field (no L/W/# forms) into bits (value v -> bit v - base). */
static int cron_list(const struct cron_field_spec *f, const char *tok, uint64_t *words, int base,
                     struct err *e)
{
    if (cron_is_any(tok)) {
        cron_set_bits(words, base, f->lo, f->hi, 1);
        return 0;
    }
    const char *p = tok;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0)
            return cron_field_err(e, f, tok, "empty list element");
        if (len == 1 && p[0] == '?')
            return cron_field_err(e, f, tok, "\"?\" cannot be part of a list");
        if (len == 1 && p[0] == '*' && (comma || p != tok))
            return cron_field_err(e, f, tok, "\"*\" cannot be part of a list");
        if (cron_element(f, tok, p, len, words, base, e))
            return ERR_INVALID;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int cron_parse_dom(const char *tok, struct cron_expr *c, struct err *e)
{
    const struct cron_field_spec *f = &cron_fields[F_DOM];
    size_t len = strlen(tok);
    if (strcmp(tok, "L") == 0) {
        c->day_mode = CRON_DAY_DOM_LAST;
        c->day_arg = 0;
        return 0;
    }
    if (strcmp(tok, "LW") == 0) {
        c->day_mode = CRON_DAY_DOM_LAST_WEEKDAY;
        return 0;
    }
    if (strncmp(tok, "L-", 2) == 0) {
        int n;
        if (!cron_all_digits(tok + 2, len - 2))
            return cron_field_err(e, f, tok, "\"L-n\" needs a number n in 1-31");
        if (cron_value(f, tok, tok + 2, len - 2, &n, e))
            return ERR_INVALID;
        c->day_mode = CRON_DAY_DOM_LAST;
        c->day_arg = (uint8_t)n;
        return 0;
    }
    if (len >= 2 && tok[len - 1] == 'W' && cron_all_digits(tok, len - 1)) {
        int n;
        if (cron_value(f, tok, tok, len - 1, &n, e))
            return ERR_INVALID;
        c->day_mode = CRON_DAY_DOM_NEAREST;
        c->day_arg = (uint8_t)n;
        return 0;
    }
    if (strchr(tok, 'L') || strchr(tok, 'W'))
        return cron_field_err(e, f, tok, "L and W are only allowed as L, L-n, nW or LW "
                                         "(n 1-31), alone in the field");
    uint64_t bits = 0;
    if (cron_list(f, tok, &bits, 0, e))
        return ERR_INVALID;
    c->day_mode = CRON_DAY_DOM;
    c->dom = (uint32_t)bits;
    return 0;
}

static int cron_parse_dow(const char *tok, struct cron_expr *c, struct err *e)
{
    const struct cron_field_spec *f = &cron_fields[F_DOW];
    size_t len = strlen(tok);
    const char *hash = strchr(tok, '#');
    int v;
    if (strcmp(tok, "L") == 0) { /* go-quartz: "L" alone is "7L", the last Saturday */
        c->day_mode = CRON_DAY_DOW_LAST;
        c->day_arg = 6;
        return 0;
    }
    if (len >= 2 && tok[len - 1] == 'L' && !strpbrk(tok, ",-/#*?")) {
        if (cron_value(f, tok, tok, len - 1, &v, e))
            return ERR_INVALID;
        c->day_mode = CRON_DAY_DOW_LAST;
        c->day_arg = (uint8_t)(v - 1);
        return 0;
    }
    if (hash) {
        size_t dlen = (size_t)(hash - tok);
        const char *k = hash + 1;
        size_t klen = len - dlen - 1;
        if (dlen == 0 || strpbrk(tok, ",-/*?L") || strchr(k, '#'))
            return cron_field_err(e, f, tok, "\"#\" is only allowed as day#k (e.g. 6#3 or FRI#3), "
                                             "alone in the field");
        if (cron_value(f, tok, tok, dlen, &v, e))
            return ERR_INVALID;
        if (!cron_all_digits(k, klen) || klen > 1 || k[0] < '1' || k[0] > '5')
            return cron_field_err(e, f, tok, "occurrence \"%s\" after \"#\" must be 1-5", k);
        c->day_mode = CRON_DAY_DOW_NTH;
        c->day_arg = (uint8_t)(v - 1);
        c->nth = (uint8_t)(k[0] - '0');
        return 0;
    }
    if (strchr(tok, 'L'))
        return cron_field_err(e, f, tok, "L is only allowed as L or dayL (e.g. 6L or FRIL), "
                                         "alone in the field");
    uint64_t bits = 0;
    if (cron_list(f, tok, &bits, 0, e))
        return ERR_INVALID;
    c->day_mode = CRON_DAY_DOW;
    c->dow = (uint8_t)(bits >> 1); /* Quartz 1..7 -> 0..6 (Sunday = 0) */
    return 0;
}

static int cron_parse_fields(char **tok, int ntok, struct cron_expr *c, struct err *e)
{
    uint64_t bits;
    memset(c, 0, sizeof *c);

    bits = 0;
    if (cron_list(&cron_fields[F_SEC], tok[F_SEC], &bits, 0, e))
        return ERR_INVALID;
    c->seconds = bits;
    bits = 0;
    if (cron_list(&cron_fields[F_MIN], tok[F_MIN], &bits, 0, e))
        return ERR_INVALID;
    c->minutes = bits;
    bits = 0;
    if (cron_list(&cron_fields[F_HOUR], tok[F_HOUR], &bits, 0, e))
        return ERR_INVALID;
    c->hours = (uint32_t)bits;
    bits = 0;
    if (cron_list(&cron_fields[F_MONTH], tok[F_MONTH], &bits, 0, e))
        return ERR_INVALID;
    c->months = (uint16_t)bits;

    bool dom_set = !cron_is_any(tok[F_DOM]), dow_set = !cron_is_any(tok[F_DOW]);
    if (dom_set && dow_set)
        return err_set(e, ERR_INVALID,
                       "day-of-month \"%.32s\" and day-of-week \"%.32s\" both set: one of them "
                       "must be \"?\" (or \"*\")", tok[F_DOM], tok[F_DOW]);
    c->day_mode = CRON_DAY_ANY;
    if (dom_set && cron_parse_dom(tok[F_DOM], c, e))
        return ERR_INVALID;
    if (dow_set && cron_parse_dow(tok[F_DOW], c, e))
        return ERR_INVALID;

    c->any_year = ntok < 7 || cron_is_any(tok[F_YEAR]);
    if (!c->any_year && cron_list(&cron_fields[F_YEAR], tok[F_YEAR], c->years, CRON_YEAR_MIN, e))
        return ERR_INVALID;
    return 0;
}

int cron_parse(const char *expr, struct cron_expr *out, struct err *e)
{
    if (!expr)
        return err_set(e, ERR_INVALID, "empty cron expression");
    size_t len = strlen(expr);
    if (len > CRON_EXPR_MAX)
        return err_set(e, ERR_INVALID, "cron expression longer than %d bytes", CRON_EXPR_MAX);
    char buf[CRON_EXPR_MAX + 1];
    memcpy(buf, expr, len + 1);

    char *tok[F_COUNT];
    int ntok = 0;
    for (char *p = buf;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (ntok < F_COUNT)
            tok[ntok] = p;
        ntok++;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (*p)
            *p++ = '\0';
    }
    if (ntok == 0)
        return err_set(e, ERR_INVALID, "empty cron expression");

    if (ntok == 1 && tok[0][0] == '@') {
        for (size_t i = 0; i < sizeof cron_descriptors / sizeof cron_descriptors[0]; i++)
            if (strcmp(tok[0], cron_descriptors[i].name) == 0)
                return cron_parse(cron_descriptors[i].expr, out, e);
        return err_set(e, ERR_INVALID, "unknown cron descriptor \"%.32s\" (known: @yearly, "
                       "@annually, @monthly, @weekly, @daily, @midnight, @hourly)", tok[0]);
    }
    if (ntok < 6 || ntok > 7)
        return err_set(e, ERR_INVALID,
                       "cron expression has %d field%s, expected 6 or 7: second minute hour "
                       "day-of-month month day-of-week [year]%s",
                       ntok, ntok == 1 ? "" : "s",
                       ntok == 5 ? " (the 5-field crontab form is not accepted: prepend a seconds "
                                   "field, e.g. \"0 \" + expression)"
                                 : "");

    struct cron_expr tmp;
    if (cron_parse_fields(tok, ntok, &tmp, e))
        return ERR_INVALID;
    *out = tmp;
    return 0;
}

int cron_validate(const char *expr, struct err *e)
{
    struct cron_expr tmp;
    return cron_parse(expr, &tmp, e);
}

/* ---- next fire time --------------------------------------------------------------------- */

static bool cron_year_ok(const struct cron_expr *c, int64_t y)
{
    if (c->any_year)
        return true;
    if (y < CRON_YEAR_MIN || y > CRON_YEAR_MAX)
        return false;
    int64_t i = y - CRON_YEAR_MIN;
    return (c->years[i / 64] >> (i % 64)) & 1;
}

/* Weekday nearest to day t (1..md) of a month whose day 1 is weekday wd1, not leaving it. */
static int cron_nearest_weekday(int t, int md, int wd1)
{
    int wd = (wd1 + t - 1) % 7;
    if (wd == 6) /* Saturday: the Friday before, or Monday the 3rd when t is the 1st */
        return t > 1 ? t - 1 : t + 2;
    if (wd == 0) /* Sunday: the Monday after, or the Friday before when t is the last day */
        return t < md ? t + 1 : t - 2;
    return t;
}

/* Days of month m of year y the expression allows: bit d for day d (1..31). */
static uint32_t cron_day_mask(const struct cron_expr *c, int64_t y, int m)
{
    int md = cron_days_in_month(y, m);
    uint32_t all = (uint32_t)((UINT64_C(1) << (md + 1)) - 2);
    int wd1 = cron_weekday(cron_days_from_civil(y, m, 1));
    int d;
    uint32_t mask = 0;

    switch ((enum cron_day_mode)c->day_mode) {
    case CRON_DAY_ANY:
        return all;
    case CRON_DAY_DOM:
        return c->dom & all;
    case CRON_DAY_DOM_LAST:
        d = md - c->day_arg;
        return d >= 1 ? UINT32_C(1) << d : 0;
    case CRON_DAY_DOM_NEAREST:
        d = c->day_arg > md ? md : c->day_arg;
        return UINT32_C(1) << cron_nearest_weekday(d, md, wd1);
    case CRON_DAY_DOM_LAST_WEEKDAY:
        return UINT32_C(1) << cron_nearest_weekday(md, md, wd1);
    case CRON_DAY_DOW:
        for (d = 1; d <= md; d++)
            if ((c->dow >> ((wd1 + d - 1) % 7)) & 1)
                mask |= UINT32_C(1) << d;
        return mask;
    case CRON_DAY_DOW_LAST:
        d = md - ((wd1 + md - 1) % 7 - c->day_arg + 7) % 7;
        return UINT32_C(1) << d;
    case CRON_DAY_DOW_NTH:
        d = 1 + (c->day_arg - wd1 + 7) % 7 + 7 * (c->nth - 1);
        return d <= md ? UINT32_C(1) << d : 0;
    }
    return 0;
}

int64_t cron_next(const struct cron_expr *c, int64_t after_ms)
{
    /* Whole seconds strictly after after_ms: floor(after_ms / 1000) + 1, from 1970 on. */
    int64_t start = after_ms < 0 ? 0 : after_ms / 1000 + 1;
    int64_t end = cron_days_from_civil(CRON_YEAR_MAX + 1, 1, 1) * 86400;
    if (start >= end)
        return -1;

    int64_t days = start / 86400, sod = start % 86400, Y;
    int M, D;
    cron_civil_from_days(days, &Y, &M, &D);
    int H = (int)(sod / 3600), Mi = (int)(sod / 60 % 60), S = (int)(sod % 60);

    for (int64_t y = Y; y <= CRON_YEAR_MAX; y++) {
        if (!cron_year_ok(c, y))
            continue;
        bool fy = y == Y; /* still on the start instant's year: lower fields start from it */
        for (int mo = cron_next_bit(c->months, fy ? M : 1); mo > 0 && mo <= 12;
             mo = cron_next_bit(c->months, mo + 1)) {
            bool fm = fy && mo == M;
            uint32_t dmask = cron_day_mask(c, y, mo);
            for (int d = cron_next_bit(dmask, fm ? D : 1); d > 0; d = cron_next_bit(dmask, d + 1)) {
                bool fd = fm && d == D;
                for (int h = cron_next_bit(c->hours, fd ? H : 0); h >= 0;
                     h = cron_next_bit(c->hours, h + 1)) {
                    bool fh = fd && h == H;
                    for (int mi = cron_next_bit(c->minutes, fh ? Mi : 0); mi >= 0;
                         mi = cron_next_bit(c->minutes, mi + 1)) {
                        bool fmi = fh && mi == Mi;
                        int s = cron_next_bit(c->seconds, fmi ? S : 0);
                        if (s >= 0)
                            return ((cron_days_from_civil(y, mo, d) * 24 + h) * 3600 +
                                    (int64_t)mi * 60 + s) * 1000;
                    }
                }
            }
        }
    }
    return -1;
}
