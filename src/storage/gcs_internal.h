/*
 * gcs_internal.h - what the files of the gcp-storage backend share (stor_gcs.c: handle,
 * requests, errors, metadata, deletes; gcs_writer.c: uploads; gcs_reader.c: ranged reads;
 * gcs_list.c: listings). Not for use outside src/storage/.
 */
#ifndef ABS_STORAGE_GCS_INTERNAL_H
#define ABS_STORAGE_GCS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "storage/cloud_http.h"
#include "storage/gcs_auth.h"
#include "storage/stor_gcs.h"

#define GCS_META_REPLY_MAX (1024 * 1024)
#define GCS_LIST_REPLY_MAX (64u << 20)
#define GCS_WHAT_MAX (STOR_KEY_MAX + 160) /* request descriptions for messages */

struct gcs_stor {
    struct stor base;
    struct cloud_http *http;
    struct gcs_auth *auth;  /* NULL = anonymous */
    char *endpoint;         /* API root, no trailing '/' */
    char *bucket;
    char *bucket_enc;
    char *class_data;       /* storageClass for data objects; NULL = bucket default */
    char *class_meta;
    size_t read_chunk;
};

static inline struct gcs_stor *gcs_of(struct stor *s) { return (struct gcs_stor *)s; }

/* ---- stor_gcs.c ---------------------------------------------------------------------------- */

/* One exchange with the store: signed when there is a key; a 401 drops the cached token and
 * tries once more with a fresh one. */
int gcs_do(struct gcs_stor *g, struct cloud_http_req *req, struct cloud_http_resp *resp,
           struct err *e);
/* gcs_do of a body-less request to `url` (taken and freed; NULL = out of memory). */
int gcs_do_url(struct gcs_stor *g, const char *method, char *url, size_t max_body,
               const char *what, struct cloud_http_resp *resp, struct err *e);
/* Whether a reply is GCS's "bucket does not exist". */
bool gcs_bucket_missing(const struct cloud_http_resp *r);
/* Maps a failed reply to an error: ERR_NOT_FOUND for a missing object (`key` given), ERR_IO
 * naming a missing bucket, access denied, or the status and the store's message. */
int gcs_status_error(struct gcs_stor *g, const struct cloud_http_resp *r, const char *op,
                     const char *key, struct err *e);
/* "{endpoint}/storage/v1/b/{bucket}/o/{object}{query}"; heap, NULL on no memory. */
char *gcs_object_url(struct gcs_stor *g, const char *object, const char *query);
/* "{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType={type}&name={object}". */
char *gcs_upload_url(struct gcs_stor *g, const char *type, const char *object);
struct curl_slist *gcs_headers(const char *a, const char *b);
int gcs_nomem(struct err *e);
/* A JSON API number (a string, or an integer); -1 when neither. */
int64_t gcs_json_u64(json_t *v);
/* An object resource's "updated" in ms since the epoch; 0 when absent. */
int64_t gcs_json_mtime(json_t *obj);

struct gcs_obj_meta {
    uint64_t size;
    int64_t mtime_ms;
    char generation[32]; /* "" when the store did not say */
};
int gcs_meta_get(struct gcs_stor *g, const char *key, struct gcs_obj_meta *m, struct err *e);

/* ---- gcs_writer.c / gcs_reader.c / gcs_list.c: the stor_ops members ---------------------- */

int gcs_writer_open(struct stor *s, const char *key, const struct stor_write_opts *o,
                    struct stor_writer **out, struct err *e);
int gcs_reader_open(struct stor *s, const char *key, uint64_t offset, int64_t length,
                    struct stor_reader **out, struct err *e);
int gcs_list_page(struct stor *s, const struct stor_list_opts *o, const char *token,
                  struct stor_page *out, struct err *e);
/* GET of one listing page of raw object names under `full_prefix` (a JSON object). */
int gcs_list_request(struct gcs_stor *g, const char *full_prefix, bool delimiter,
                     const char *start_offset, const char *store_token, size_t max,
                     json_t **out, struct err *e);
/* The listing prefix as an object-name prefix: "<root>/<prefix>". */
char *gcs_full_prefix(const struct stor *s, const char *prefix);
/* nextPageToken of a listing reply, NULL when absent or empty. */
const char *gcs_reply_next(json_t *reply);

#endif
