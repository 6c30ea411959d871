/* stor_gcs.c - placeholder until the gcp-storage backend lands (see storage.h). */
#include "storage/storage.h"

int stor_gcs_open(const struct cfg_gcp_storage *cfg, struct stor **out, struct err *e)
{
    (void)cfg;
    *out = NULL;
    return err_set(e, ERR_INVALID, "storage: gcp-storage is not supported yet");
}
