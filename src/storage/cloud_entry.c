/*
 * cloud_entry.c - the cloud module's entry point (see cloud_module.h): the table of what the
 * service calls in it, and remote configuration URLs fetched with libcurl.
 */
#include "storage/cloud_module.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "storage/cloud_http.h"
#include "version.h"

struct url_body {
    char *data;
    size_t len, max;
    bool too_big;
};

static size_t url_sink(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct url_body *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > b->max) {
        b->too_big = true;
        return 0;
    }
    char *nd = realloc(b->data, b->len + n + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, ptr, n);
    b->data = nd;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int fetch_url(const char *url, size_t max_bytes, long timeout_s, char **out, size_t *out_len,
                     struct err *e)
{
    cloud_http_global_init();
    CURL *h = curl_easy_init();
    if (!h)
        return err_set(e, ERR_NOMEM, "cannot initialise HTTP client");
    struct url_body b = {.max = max_bytes};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, url_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        free(b.data);
        return err_set(e, ERR_IO, "%s: %s", url, b.too_big ? "configuration too large" : curl_easy_strerror(rc));
    }
    *out = b.data ? b.data : strdup("");
    *out_len = b.len;
    return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

static const struct cloud_module MODULE = {
    .build = ABS_VERSION " " ABS_COMMIT,
    .s3_open = stor_s3_open,
    .azure_open = stor_azure_open,
    .gcs_open = stor_gcs_open,
    .fetch_url = fetch_url,
    .abort_retries = cloud_http_abort_retries,
    .global_cleanup = curl_global_cleanup,
};

const struct cloud_module *abs_cloud_module(void)
{
    return &MODULE;
}
