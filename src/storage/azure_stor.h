/*
 * azure_stor.h - the azure-storage backend's extra entry points: opening with a given HTTP
 * retry policy / trust anchor / Azure AD authority (tests and tools; stor_open uses the ABS
 * defaults), and the counters tests look at.
 */
#ifndef ABS_STORAGE_AZURE_STOR_H
#define ABS_STORAGE_AZURE_STOR_H

#include "storage/cloud_http.h"
#include "storage/storage.h"

struct azure_open_opts {
    const struct cloud_retry *retry; /* NULL = the ABS storage retry policy */
    const char *ca_file;             /* NULL = system trust store */
    const char *authority_host;      /* Azure AD; NULL = $AZURE_AUTHORITY_HOST or public */
};

int stor_azure_open_opts(const struct cfg_azure_storage *cfg, const struct azure_open_opts *o,
                         struct stor **out, struct err *e);

/* Token requests made by an Azure AD storage so far; -1 for other auth modes. */
int stor_azure_token_requests(const struct stor *s);

#endif
