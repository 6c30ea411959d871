/*
 * backup_meta.c - metadata.yaml rendering and parsing, folder names, BackupDetails JSON
 * (see backup_meta.h).
 */
#include "jobs/backup_meta.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config/cfg_yaml.h"

#define MS_PER_S 1000LL
/* Seconds from 0001-01-01 to 1970-01-01 (Go's zero time). */
#define GO_ZERO_UNIX_S (-62135596800LL)

static void split_ms(int64_t ms, time_t *secs, int *millis)
{
    int64_t s = ms / MS_PER_S, r = ms % MS_PER_S;
    if (r < 0) {
        r += MS_PER_S;
        s -= 1;
    }
    *secs = (time_t)s;
    *millis = (int)r;
}

void meta_format_time(int64_t ms, char *buf, size_t cap)
{
    if (ms == META_ZERO_TIME_MS) {
        snprintf(buf, cap, "0001-01-01T00:00:00Z");
        return;
    }
    time_t secs;
    int millis;
    split_ms(ms, &secs, &millis);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char frac[8] = "";
    if (millis) {
        snprintf(frac, sizeof frac, ".%03d", millis);
        for (size_t n = strlen(frac); n > 1 && frac[n - 1] == '0'; n--)
            frac[n - 1] = '\0';
    }
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

int meta_parse_time(const char *s, int64_t *ms_out)
{
    const char *p = s;
    int Y, M, D, h, m, sec;
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' || digits(&p, 2, &D) ||
        (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' || digits(&p, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    int millis = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                millis = millis * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0)
            return -1;
        for (; n < 3; n++)
            millis *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
            return -1;
        offset_s = sign * (oh * 3600LL + om * 60LL);
    } else {
        return -1;
    }
    if (*p)
        return -1;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec};
    int64_t secs = (int64_t)timegm(&tm) - offset_s;
    if (secs == GO_ZERO_UNIX_S && millis == 0) {
        *ms_out = META_ZERO_TIME_MS;
        return 0;
    }
    *ms_out = secs * MS_PER_S + millis;
    return 0;
}

int meta_render(const struct backup_meta *m, char **out, struct err *e)
{
    char created[40], finished[40], from[40];
    meta_format_time(m->created_ms, created, sizeof created);
    meta_format_time(m->finished_ms, finished, sizeof finished);
    meta_format_time(m->from_ms, from, sizeof from);
    /* The namespace goes through the YAML emitter's quoting rules via a JSON scalar. */
    json_t *ns = json_string(m->namespace_);
    char *ns_yaml = NULL;
    int rc = cfg_json_to_yaml(ns, &ns_yaml, e);
    json_decref(ns);
    if (rc)
        return rc;
    ns_yaml[strcspn(ns_yaml, "\n")] = '\0';
    const char *ns_text = strncmp(ns_yaml, "--- ", 4) == 0 ? ns_yaml + 4 : ns_yaml;
    int n = asprintf(out,
                     "created: %s\nfinished: %s\nfrom: %s\nnamespace: %s\nrecord-count: %" PRIu64
                     "\nbyte-count: %" PRIu64 "\nfile-count: %" PRIu64 "\nsecondary-index-count: %" PRIu64
                     "\nudf-count: %" PRIu64 "\ncompression: %s\nencryption: %s\n",
                     created, finished, from, ns_text, m->record_count, m->byte_count, m->file_count,
                     m->secondary_index_count, m->udf_count, m->compression, m->encryption);
    free(ns_yaml);
    if (n < 0)
        return err_set(e, ERR_NOMEM, "out of memory");
    return 0;
}

static int read_time(json_t *root, const char *key, bool required, int64_t *out, const char *origin,
                     struct err *e)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required)
            return err_set(e, ERR_INVALID, "%s: %s is missing", origin, key);
        *out = META_ZERO_TIME_MS;
        return 0;
    }
    if (!json_is_string(v) || meta_parse_time(json_string_value(v), out))
        return err_set(e, ERR_INVALID, "%s: %s is not an RFC 3339 time", origin, key);
    return 0;
}

static int read_count(json_t *root, const char *key, uint64_t *out, const char *origin, struct err *e)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return err_set(e, ERR_INVALID, "%s: %s must be a non-negative integer", origin, key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int read_word(json_t *root, const char *key, char *buf, size_t cap, const char *dflt,
                     const char *origin, struct err *e)
{
    json_t *v = json_object_get(root, key);
    const char *s = v && json_is_string(v) ? json_string_value(v) : dflt;
    if (v && !json_is_null(v) && !json_is_string(v))
        return err_set(e, ERR_INVALID, "%s: %s must be a string", origin, key);
    if (strlen(s) >= cap)
        return err_set(e, ERR_INVALID, "%s: %s is too long", origin, key);
    strcpy(buf, s);
    return 0;
}

int meta_parse(const char *text, size_t len, const char *origin, struct backup_meta *out, struct err *e)
{
    json_t *root;
    if (len == 0)
        return err_set(e, ERR_INVALID, "%s: empty metadata file", origin);
    if (cfg_yaml_to_json(text, len, origin, &root, e))
        return ERR_INVALID;
    memset(out, 0, sizeof *out);
    int rc = 0;
    if (!json_is_object(root))
        rc = err_set(e, ERR_INVALID, "%s: not a YAML mapping", origin);
    if (!rc && !json_is_string(json_object_get(root, "namespace")))
        rc = err_set(e, ERR_INVALID, "%s: namespace is missing", origin);
    rc = rc ? rc : read_time(root, "created", true, &out->created_ms, origin, e);
    rc = rc ? rc : read_time(root, "finished", true, &out->finished_ms, origin, e);
    rc = rc ? rc : read_time(root, "from", false, &out->from_ms, origin, e);
    rc = rc ? rc : read_word(root, "namespace", out->namespace_, sizeof out->namespace_, "", origin, e);
    rc = rc ? rc : read_count(root, "record-count", &out->record_count, origin, e);
    rc = rc ? rc : read_count(root, "byte-count", &out->byte_count, origin, e);
    rc = rc ? rc : read_count(root, "file-count", &out->file_count, origin, e);
    rc = rc ? rc : read_count(root, "secondary-index-count", &out->secondary_index_count, origin, e);
    rc = rc ? rc : read_count(root, "udf-count", &out->udf_count, origin, e);
    rc = rc ? rc : read_word(root, "compression", out->compression, sizeof out->compression, "NONE", origin, e);
    rc = rc ? rc : read_word(root, "encryption", out->encryption, sizeof out->encryption, "NONE", origin, e);
    json_decref(root);
    return rc;
}

int meta_folder_name(int64_t ms, const char *timestamp_format, char *buf, size_t cap, struct err *e)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (!timestamp_format) {
        snprintf(buf, cap, "%" PRId64, ms);
        return 0;
    }
    time_t secs;
    int millis;
    split_ms(ms, &secs, &millis);
    struct tm t;
    gmtime_r(&secs, &t);
    int Y = t.tm_year + 1900;
    if (strcasecmp(timestamp_format, "ISO") == 0)
        snprintf(buf, cap, "%" PRId64 "_%04d-%02d-%02dT%02d-%02d-%02d", ms, Y, t.tm_mon + 1, t.tm_mday,
                 t.tm_hour, t.tm_min, t.tm_sec);
    else if (strcasecmp(timestamp_format, "US") == 0)
        snprintf(buf, cap, "%" PRId64 "_%s-%02d-%04d-%02d-%02d-%02d", ms, months[t.tm_mon], t.tm_mday, Y,
                 t.tm_hour, t.tm_min, t.tm_sec);
    else if (strcasecmp(timestamp_format, "EU") == 0)
        snprintf(buf, cap, "%" PRId64 "_%02d-%s-%04d-%02d-%02d-%02d", ms, t.tm_mday, months[t.tm_mon], Y,
                 t.tm_hour, t.tm_min, t.tm_sec);
    else
        return err_set(e, ERR_INVALID, "unknown timestamp-format \"%s\"", timestamp_format);
    return 0;
}

int meta_folder_timestamp(const char *folder, int64_t *ms_out)
{
    int64_t v = 0;
    int n = 0;
    for (; isdigit((unsigned char)folder[n]); n++)
        v = v * 10 + (folder[n] - '0');
    if (n != 13 || (folder[n] != '\0' && folder[n] != '_'))
        return -1;
    *ms_out = v;
    return 0;
}

json_t *meta_details_json(const struct backup_meta *m, const char *key, json_t *storage)
{
    char created[40], finished[40], from[40];
    meta_format_time(m->created_ms, created, sizeof created);
    meta_format_time(m->finished_ms, finished, sizeof finished);
    json_t *o = json_object();
    json_object_set_new(o, "created", json_string(created));
    json_object_set_new(o, "finished", json_string(finished));
    json_object_set_new(o, "duration", json_integer((m->finished_ms - m->created_ms) / MS_PER_S));
    if (m->from_ms != META_ZERO_TIME_MS) {
        meta_format_time(m->from_ms, from, sizeof from);
        json_object_set_new(o, "from", json_string(from));
    }
    json_object_set_new(o, "timestamp", json_integer(m->created_ms));
    json_object_set_new(o, "namespace", json_string(m->namespace_));
    json_object_set_new(o, "record-count", json_integer((json_int_t)m->record_count));
    json_object_set_new(o, "byte-count", json_integer((json_int_t)m->byte_count));
    json_object_set_new(o, "file-count", json_integer((json_int_t)m->file_count));
    json_object_set_new(o, "secondary-index-count", json_integer((json_int_t)m->secondary_index_count));
    json_object_set_new(o, "udf-count", json_integer((json_int_t)m->udf_count));
    json_object_set_new(o, "compression", json_string(m->compression));
    json_object_set_new(o, "encryption", json_string(m->encryption));
    json_object_set_new(o, "key", json_string(key));
    if (storage)
        json_object_set(o, "storage", storage);
    return o;
}
