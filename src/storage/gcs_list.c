/*
 * gcs_list.c - listings of the gcp-storage backend (see stor_gcs.c): objects.list with prefix,
 * delimiter, maxResults, startOffset and pageToken. The page token handed to callers is
 * "L<n>:<last key returned><store's token>": entries up to the last key are never reported
 * again (startOffset is inclusive; the emulator ignores it and repeats every prefix on every
 * page), and a page cut to page_size resumes from the same store page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/gcs_internal.h"
#include "util/strutil.h"

/* Our page token: "L<n>:<last key returned><store's page token>". */
static char *token_encode(const char *last, const char *store_token)
{
    char *t = NULL;
    last = last ? last : "";
    if (asprintf(&t, "L%zu:%s%s", strlen(last), last, store_token) < 0)
        return NULL;
    return t;
}

/* Splits a token into a heap copy of the last key (NULL when none) and the store's token
 * (pointing into `token`). */
static int token_decode(const char *token, char **last, const char **store_token)
{
    *last = NULL;
    *store_token = NULL;
    if (!token)
        return 0;
    char *colon;
    unsigned long long n = token[0] == 'L' ? strtoull(token + 1, &colon, 10) : 0;
    if (token[0] != 'L' || *colon != ':' || n > strlen(colon + 1))
        return -1;
    if (n > 0 && !(*last = strndup(colon + 1, (size_t)n)))
        return -2;
    *store_token = colon + 1 + n;
    return 0;
}

struct cand {
    const char *key;
    bool is_prefix;
    uint64_t size;
    int64_t mtime;
};

static int cand_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cand *)a)->key, ((const struct cand *)b)->key);
}

/* Whether a listed key passes the start_after / already-returned filters. */
static bool key_wanted(const char *key, bool is_prefix, const char *start_after, const char *last)
{
    if (last && strcmp(key, last) <= 0)
        return false;
    if (!start_after)
        return true;
    if (!is_prefix)
        return strcmp(key, start_after) > 0;
    /* A prefix also covers keys after start_after when start_after lies inside it. */
    return strcmp(key, start_after) > 0 ||
           (strcmp(key, start_after) < 0 && strncmp(start_after, key, strlen(key)) == 0);
}

static bool listed_key_valid(const char *key, bool is_prefix)
{
    struct err ignored;
    size_t n = strlen(key);
    if (!is_prefix)
        return stor_key_valid(key, &ignored) == 0;
    if (n < 2 || key[n - 1] != '/')
        return false;
    char *copy = strndup(key, n - 1);
    bool ok = copy && stor_key_valid(copy, &ignored) == 0;
    free(copy);
    return ok;
}

/* GET of one listing page of raw object names under `full_prefix`. */
int gcs_list_request(struct gcs_stor *g, const char *full_prefix, bool delimiter,
                     const char *start_offset, const char *store_token, size_t max,
                     json_t **out, struct err *e)
{
    *out = NULL;
    char *url = NULL;
    size_t url_len = 0;
    FILE *f = open_memstream(&url, &url_len);
    if (!f)
        return gcs_nomem(e);
    char *p = cloud_url_encode(full_prefix, false);
    char *so = start_offset ? cloud_url_encode(start_offset, false) : NULL;
    char *pt = store_token && *store_token ? cloud_url_encode(store_token, false) : NULL;
    fprintf(f, "%s/storage/v1/b/%s/o?prefix=%s&maxResults=%zu", g->endpoint, g->bucket_enc,
            p ? p : "", max);
    if (delimiter)
        fputs("&delimiter=%2F", f);
    if (so)
        fprintf(f, "&startOffset=%s", so);
    if (pt)
        fprintf(f, "&pageToken=%s", pt);
    fputs("&fields=items%28name%2Csize%2Cupdated%29%2Cprefixes%2CnextPageToken", f);
    bool bad = !p || (start_offset && !so) || (store_token && *store_token && !pt);
    free(p);
    free(so);
    free(pt);
    if (fclose(f) != 0 || bad) {
        free(url);
        return gcs_nomem(e);
    }
    char what[GCS_WHAT_MAX];
    str_printf(what, sizeof what, "%s list '%s'", g->base.name, full_prefix);
    struct cloud_http_resp resp;
    int rc = gcs_do_url(g, "GET", url, GCS_LIST_REPLY_MAX, what, &resp, e);
    if (rc)
        return rc;
    if (resp.status != 200) {
        rc = gcs_status_error(g, &resp, "list", NULL, e);
    } else {
        *out = json_loads(resp.body ? resp.body : "", 0, NULL);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            rc = err_set(e, ERR_IO, "%s: list '%s': the reply is not a JSON object",
                         g->base.name, full_prefix);
        }
    }
    cloud_http_resp_free(&resp);
    return rc;
}

/* The listing prefix as an object-name prefix: "<root>/<prefix>". */
char *gcs_full_prefix(const struct stor *s, const char *prefix)
{
    char *out = NULL;
    if (!*s->root)
        return strdup(prefix);
    if (asprintf(&out, "%s/%s", s->root, prefix) < 0)
        return NULL;
    return out;
}

/* Collects the wanted entries of a reply, sorted by key, into a heap array. */
static int reply_entries(struct stor *s, json_t *reply, const char *start_after,
                         const char *last, struct cand **out, size_t *n_out, struct err *e)
{
    json_t *items = json_object_get(reply, "items"), *prefixes = json_object_get(reply, "prefixes");
    size_t cap = json_array_size(items) + json_array_size(prefixes), n = 0;
    struct cand *v = calloc(cap ? cap : 1, sizeof *v);
    if (!v)
        return gcs_nomem(e);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        json_t *name = json_object_get(it, "name");
        const char *key = json_is_string(name) ? stor_key_of_object(s, json_string_value(name))
                                               : NULL;
        if (!key || !listed_key_valid(key, false) || !key_wanted(key, false, start_after, last))
            continue;
        int64_t size = gcs_json_u64(json_object_get(it, "size"));
        v[n++] = (struct cand){key, false, size > 0 ? (uint64_t)size : 0, gcs_json_mtime(it)};
    }
    json_array_foreach(prefixes, i, it) {
        const char *key = json_is_string(it) ? stor_key_of_object(s, json_string_value(it)) : NULL;
        if (!key || !listed_key_valid(key, true) || !key_wanted(key, true, start_after, last))
            continue;
        v[n++] = (struct cand){key, true, 0, 0};
    }
    qsort(v, n, sizeof *v, cand_cmp);
    *out = v;
    *n_out = n;
    return 0;
}

const char *gcs_reply_next(json_t *reply)
{
    json_t *next = json_object_get(reply, "nextPageToken");
    return json_is_string(next) && *json_string_value(next) ? json_string_value(next) : NULL;
}

/* Whether an object with a key after `after` lies under the directory prefix `dir` (a prefix
 * the store reported because `after` lies inside it): 1 yes, 0 no, < 0 error. */
static int objects_after(struct stor *s, const char *dir, const char *after, struct err *e)
{
    char *full = gcs_full_prefix(s, dir), *offset = stor_object_name(s, after), *token = NULL;
    int rc = full && offset ? 0 : gcs_nomem(e), found = 0;
    while (rc == 0 && !found) {
        json_t *reply;
        rc = gcs_list_request(gcs_of(s), full, false, offset, token, STOR_PAGE_DEFAULT, &reply, e);
        free(token);
        token = NULL;
        if (rc)
            break;
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(reply, "items"), i, it) {
            json_t *name = json_object_get(it, "name");
            const char *key = json_is_string(name)
                                  ? stor_key_of_object(s, json_string_value(name)) : NULL;
            if (key && strcmp(key, after) > 0 && listed_key_valid(key, false))
                found = 1;
        }
        const char *next = gcs_reply_next(reply);
        if (!found && next && !(token = strdup(next)))
            rc = gcs_nomem(e);
        json_decref(reply);
        if (!token)
            break;
    }
    free(token);
    free(full);
    free(offset);
    return rc ? rc : found;
}

/* Drops the entries that must not be reported: prefixes reported only because start_after
 * lies inside them with nothing after it there, and - from a store that does not count
 * prefixes in a page (the emulator repeats every prefix on every page) - prefixes beyond the
 * page's last object, which a later page reports again in order. */
static int entries_prune(struct stor *s, json_t *reply, const char *start_after, bool more,
                         size_t page_size, struct cand *v, size_t *n, struct err *e)
{
    json_t *items = json_object_get(reply, "items");
    size_t n_items = json_array_size(items);
    size_t n_raw = n_items + json_array_size(json_object_get(reply, "prefixes"));
    json_t *last_name = json_object_get(json_array_get(items, n_items - 1), "name");
    const char *last_item = n_items && json_is_string(last_name)
                                ? stor_key_of_object(s, json_string_value(last_name)) : NULL;
    bool cut = more && n_raw > page_size && last_item;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if (v[i].is_prefix && cut && strcmp(v[i].key, last_item) > 0)
            continue;
        if (v[i].is_prefix && start_after && strcmp(v[i].key, start_after) < 0) {
            int rc = objects_after(s, v[i].key, start_after, e);
            if (rc < 0)
                return rc;
            if (rc == 0)
                continue;
        }
        v[k++] = v[i];
    }
    *n = k;
    return 0;
}

int gcs_list_page(struct stor *s, const struct stor_list_opts *o, const char *token,
                  struct stor_page *out, struct err *e)
{
    struct gcs_stor *g = gcs_of(s);
    char *last = NULL;
    const char *store_token = NULL;
    int drc = token_decode(token, &last, &store_token);
    if (drc)
        return drc == -2 ? gcs_nomem(e) : err_set(e, ERR_INVALID, "%s: bad listing token",
                                              s->name);
    char *full = gcs_full_prefix(s, o->prefix);
    char *offset = o->start_after ? stor_object_name(s, o->start_after) : NULL;
    json_t *reply = NULL;
    struct cand *v = NULL;
    size_t n = 0;
    int rc = 0;
    if (!full || (o->start_after && !offset)) {
        rc = gcs_nomem(e);
        goto out;
    }
    rc = gcs_list_request(g, full, o->delimiter, offset, store_token, o->page_size, &reply, e);
    if (rc == 0)
        rc = reply_entries(s, reply, o->start_after, last, &v, &n, e);
    const char *next = reply ? gcs_reply_next(reply) : NULL;
    if (rc == 0)
        rc = entries_prune(s, reply, o->start_after, next != NULL, o->page_size, v, &n, e);
    if (rc)
        goto out;
    bool truncated = n > o->page_size;
    if (truncated)
        n = o->page_size; /* the rest comes again from the same store page */
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = stor_page_add(out, v[i].key, v[i].is_prefix, v[i].size, v[i].mtime, e);
    if (rc == 0 && (truncated || next)) {
        if (!truncated && store_token && strcmp(next, store_token) == 0) {
            rc = err_set(e, ERR_IO, "%s: list '%s': the listing does not advance", s->name,
                         o->prefix);
            goto out;
        }
        out->next_token = token_encode(n ? v[n - 1].key : last,
                                       truncated ? (store_token ? store_token : "") : next);
        if (!out->next_token)
            rc = gcs_nomem(e);
    }
out:
    free(v);
    json_decref(reply);
    free(full);
    free(offset);
    free(last);
    return rc;
}
