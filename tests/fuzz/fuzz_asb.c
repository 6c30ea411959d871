/*
 * fuzz_asb.c - libFuzzer target for the streaming .asb decoder. The first input byte chooses
 * how many bytes each read callback hands out (1..256), so that tokens, numbers and values are
 * split across reads at every position; the rest is the file. Values are limited to 1 MiB so
 * that a claimed huge length is refused rather than allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "asb/asb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem_src {
    const uint8_t *p;
    size_t left;
    size_t chunk;
};

static int mem_read(void *ctx, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct mem_src *m = ctx;
    size_t n = m->left < cap ? m->left : cap;
    if (n > m->chunk)
        n = m->chunk;
    memcpy(buf, m->p, n);
    m->p += n;
    m->left -= n;
    *got = n;
    return 0;
}

static void touch_item(const struct asb_item *it)
{
    volatile uint8_t sink = 0;
    if (it->kind == ASB_ITEM_RECORD) {
        const struct asb_record *r = &it->u.rec;
        if (r->ns_len)
            sink ^= (uint8_t)r->ns[r->ns_len - 1];
        if (r->set_len)
            sink ^= (uint8_t)r->set[r->set_len - 1];
        for (uint32_t i = 0; i < r->n_bins; i++) {
            const struct asb_bin *b = &r->bins[i];
            if (b->name_len)
                sink ^= (uint8_t)b->name[b->name_len - 1];
            if (b->v.data && b->v.len)
                sink ^= b->v.data[b->v.len - 1];
        }
        /* a decoded record must encode again */
        size_t cap = asb_record_max_size(r, false);
        uint8_t *out = malloc(cap ? cap : 1);
        if (out) {
            size_t written;
            struct err e;
            err_clear(&e);
            (void)asb_encode_record(r, false, out, cap, &written, &e);
            free(out);
        }
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct mem_src src = {data + 1, size - 1, (size_t)data[0] + 1};
    struct asb_dec_opts opts = {.buf_size = 16 * 1024, .max_value_len = 1024 * 1024};
    struct asb_dec *d = asb_dec_new(mem_read, &src, &opts);
    if (!d)
        return 0;
    struct err e;
    err_clear(&e);
    struct asb_item item;
    for (int i = 0; i < 100000; i++) {
        if (asb_dec_next(d, &item, &e) != 0 || item.kind == ASB_ITEM_EOF)
            break;
        touch_item(&item);
    }
    (void)asb_dec_version(d);
    (void)asb_dec_namespace(d);
    asb_dec_free(d);
    (void)asb_sniff(data, size);
    return 0;
}
