/* cloud_part.c - see cloud_part.h: the one-part write buffer of the cloud writers. */
#include "storage/cloud_part.h"

#include <stdlib.h>
#include <string.h>

static int reserve(unsigned char **buf, size_t *cap, size_t need, size_t part, struct err *e)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64 * 1024;
    while (nc < need)
        nc *= 2;
    if (nc > part)
        nc = part;
    unsigned char *nb = realloc(*buf, nc);
    if (!nb)
        return err_set(e, ERR_NOMEM, "out of memory for a %zu-byte upload part", nc);
    *buf = nb;
    *cap = nc;
    return 0;
}

int cloud_part_append(unsigned char **buf, size_t *len, size_t *cap, size_t part,
                      const void *data, size_t n, cloud_part_flush_fn flush, void *ctx,
                      struct err *e)
{
    const unsigned char *p = data;
    while (n > 0) {
        if (*len >= part) { /* full, and more is coming: it is not the last part */
            int rc = flush(ctx, e);
            if (rc)
                return rc;
        }
        size_t take = part - *len < n ? part - *len : n;
        if (reserve(buf, cap, *len + take, part, e))
            return e->code;
        memcpy(*buf + *len, p, take);
        *len += take;
        p += take;
        n -= take;
    }
    return 0;
}
