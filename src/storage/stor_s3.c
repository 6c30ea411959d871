/* stor_s3.c - placeholder until the s3-storage backend lands (see storage.h). */
#include "storage/storage.h"

int stor_s3_open(const struct cfg_s3_storage *cfg, struct stor **out, struct err *e)
{
    (void)cfg;
    *out = NULL;
    return err_set(e, ERR_INVALID, "storage: s3-storage is not supported yet");
}
