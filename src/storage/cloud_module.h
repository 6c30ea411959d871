/*
 * cloud_module.h - the cloud half of the service, built as a module loaded on first use.
 *
 * S3, Azure Blob and GCS storage and remote configuration URLs need libcurl and libxml2, whose
 * dozens of dependent libraries cost a service on local storage ~4 MiB of memory just by being
 * mapped. So that code (the stor_s3/azure/gcs backends, cloud_http and their helpers) lives in
 * aerospike-backup-service-cloud.so, which the service loads the first time it opens a cloud
 * storage or fetches a URL; the module calls back into the service's own exported functions.
 * The service binary carries the module inside it (abs_cloud_module_image: its pages are never
 * read until used), so replacing just the binary keeps cloud storage working: it is loaded from
 * a memfd copy. Where that is refused (vm.memfd_noexec=2) the module file is looked for next to
 * the binary (build tree), then in ../lib/aerospike-backup-service/ relative to it (installed).
 * Programs that link the cloud objects statically (tests, benchmarks) use them directly.
 */
#ifndef ABS_STORAGE_CLOUD_MODULE_H
#define ABS_STORAGE_CLOUD_MODULE_H

#include <stddef.h>

#include "storage/storage.h"

#define CLOUD_MODULE_FILE "aerospike-backup-service-cloud.so"

struct cloud_module {
    const char *build; /* version + commit: the module only works with the binary it was built with */
    int (*s3_open)(const struct cfg_s3_storage *cfg, struct stor **out, struct err *e);
    int (*azure_open)(const struct cfg_azure_storage *cfg, struct stor **out, struct err *e);
    int (*gcs_open)(const struct cfg_gcp_storage *cfg, struct stor **out, struct err *e);
    /* GET url (redirects followed, HTTP errors are errors) into a NUL-terminated *out */
    int (*fetch_url)(const char *url, size_t max_bytes, long timeout_s, char **out, size_t *out_len,
                     struct err *e);
    void (*abort_retries)(void); /* cloud_http_abort_retries */
    void (*global_cleanup)(void);
};

/* The module's one entry point (defined by cloud_entry.c). */
const struct cloud_module *abs_cloud_module(void);

/* The module file embedded in the service binary (generated cloud_image.c): *len bytes. */
const unsigned char *abs_cloud_module_image(size_t *len);

/* The cloud module, loaded on the first call (thread-safe); an error names what is missing. */
int cloud_module_get(const struct cloud_module **out, struct err *e);

/* If the module was loaded: no more retries of cloud requests (the service is stopping). */
void cloud_module_abort_retries(void);

/* Releases libcurl's global state if the module was loaded (at exit). */
void cloud_module_shutdown(void);

#endif
