/* stor_azure.c - placeholder until the azure-storage backend lands (see storage.h). */
#include "storage/storage.h"

int stor_azure_open(const struct cfg_azure_storage *cfg, struct stor **out, struct err *e)
{
    (void)cfg;
    *out = NULL;
    return err_set(e, ERR_INVALID, "storage: azure-storage is not supported yet");
}
