/*
 * io_zstd.c - zstd compression and decompression stages (libzstd streaming API).
 *
 * Writer: one frame per stream, no content checksum (as asbackup writes them), ended by
 * io_writer_close. Reader: any number of concatenated frames (asbackup's files hold several);
 * an input that stops inside a frame, or that is not zstd at all, is an error naming the
 * compressed byte offset.
 */
#include "io/io.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

bool io_zstd_level_valid(int level)
{
    return level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel();
}

/* ---- writer ------------------------------------------------------------------------------ */

struct zstd_writer {
    struct io_writer base;
    ZSTD_CCtx *cctx;
    uint8_t *out;
    size_t out_cap;
};

static int zw_pump(struct zstd_writer *z, ZSTD_inBuffer *in, ZSTD_EndDirective mode,
                   struct err *e)
{
    for (;;) {
        ZSTD_outBuffer ob = {z->out, z->out_cap, 0};
        size_t rem = ZSTD_compressStream2(z->cctx, &ob, in, mode);
        if (ZSTD_isError(rem))
            return err_set(e, ERR_INTERNAL, "zstd: compression failed: %s",
                           ZSTD_getErrorName(rem));
        if (ob.pos) {
            int rc = io_write(z->base.next, z->out, ob.pos, e);
            if (rc < 0)
                return rc;
        }
        if (mode == ZSTD_e_end ? rem == 0 : in->pos == in->size)
            return 0;
    }
}

static int zw_write(struct io_writer *w, const void *data, size_t len, struct err *e)
{
    struct zstd_writer *z = (struct zstd_writer *)w;
    ZSTD_inBuffer in = {data, len, 0};
    return zw_pump(z, &in, ZSTD_e_continue, e);
}

static int zw_close(struct io_writer *w, struct err *e)
{
    struct zstd_writer *z = (struct zstd_writer *)w;
    ZSTD_inBuffer in = {NULL, 0, 0};
    return zw_pump(z, &in, ZSTD_e_end, e);
}

static void zw_destroy(struct io_writer *w)
{
    struct zstd_writer *z = (struct zstd_writer *)w;
    ZSTD_freeCCtx(z->cctx);
    free(z->out);
    free(z);
}

static const struct io_writer_ops ZSTD_WRITER_OPS = {"zstd", zw_write, zw_close, zw_destroy};

struct io_writer *io_zstd_writer_new(struct io_writer *next, int level, struct err *e)
{
    if (!io_zstd_level_valid(level)) {
        err_set(e, ERR_INVALID, "zstd: compression level %d out of range (%d..%d)", level,
                ZSTD_minCLevel(), ZSTD_maxCLevel());
        return NULL;
    }
    struct zstd_writer *z = calloc(1, sizeof *z);
    if (!z) {
        err_set(e, ERR_NOMEM, "zstd: out of memory");
        return NULL;
    }
    z->base.ops = &ZSTD_WRITER_OPS;
    z->cctx = ZSTD_createCCtx();
    z->out_cap = ZSTD_CStreamOutSize();
    z->out = malloc(z->out_cap);
    if (!z->cctx || !z->out) {
        zw_destroy(&z->base);
        err_set(e, ERR_NOMEM, "zstd: out of memory");
        return NULL;
    }
    size_t r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 0);
    if (ZSTD_isError(r)) {
        zw_destroy(&z->base);
        err_set(e, ERR_INVALID, "zstd: %s", ZSTD_getErrorName(r));
        return NULL;
    }
    z->base.next = next;
    return &z->base;
}

/* ---- reader ------------------------------------------------------------------------------ */

struct zstd_reader {
    struct io_reader base;
    ZSTD_DCtx *dctx;
    uint8_t *in;
    size_t in_cap;
    ZSTD_inBuffer ib;
    uint64_t in_base;  /* compressed offset of in[0] */
    bool in_eof;
    bool in_frame;     /* last call left a frame unfinished */
    bool flush;        /* last call filled the output: more may be pending */
    bool seen_input;
};

static int zr_read(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct zstd_reader *z = (struct zstd_reader *)r;
    *got = 0;
    for (;;) {
        if (z->ib.pos == z->ib.size && !z->in_eof && !z->flush) {
            size_t n = 0;
            int rc = io_read(r->next, z->in, z->in_cap, &n, e);
            if (rc < 0)
                return rc;
            z->in_base += z->ib.size;
            z->ib.size = n;
            z->ib.pos = 0;
            if (n == 0)
                z->in_eof = true;
            else
                z->seen_input = true;
        }
        if (z->ib.pos == z->ib.size && z->in_eof && !z->flush) {
            if (z->in_frame)
                return err_set(e, ERR_INVALID,
                               "zstd: compressed stream truncated (ends inside a frame at "
                               "offset %llu)",
                               (unsigned long long)(z->in_base + z->ib.pos));
            return 0;
        }
        ZSTD_outBuffer ob = {buf, cap, 0};
        uint64_t at = z->in_base + z->ib.pos;
        size_t ret = ZSTD_decompressStream(z->dctx, &ob, &z->ib);
        if (ZSTD_isError(ret)) {
            if (ZSTD_getErrorCode(ret) == ZSTD_error_prefix_unknown)
                return err_set(e, ERR_INVALID,
                               "zstd: not zstd data at compressed offset %llu (file not "
                               "compressed, or wrong encryption key?)",
                               (unsigned long long)at);
            return err_set(e, ERR_INVALID, "zstd: corrupt data near compressed offset %llu: %s",
                           (unsigned long long)at, ZSTD_getErrorName(ret));
        }
        z->in_frame = ret != 0;
        z->flush = ob.pos == ob.size;
        if (ob.pos) {
            *got = ob.pos;
            return 0;
        }
    }
}

static void zr_destroy(struct io_reader *r)
{
    struct zstd_reader *z = (struct zstd_reader *)r;
    ZSTD_freeDCtx(z->dctx);
    free(z->in);
    free(z);
}

static const struct io_reader_ops ZSTD_READER_OPS = {"zstd", zr_read, zr_destroy};

struct io_reader *io_zstd_reader_new(struct io_reader *next, struct err *e)
{
    struct zstd_reader *z = calloc(1, sizeof *z);
    if (!z) {
        err_set(e, ERR_NOMEM, "zstd: out of memory");
        return NULL;
    }
    z->base.ops = &ZSTD_READER_OPS;
    z->dctx = ZSTD_createDCtx();
    z->in_cap = ZSTD_DStreamInSize();
    z->in = malloc(z->in_cap);
    if (!z->dctx || !z->in) {
        zr_destroy(&z->base);
        err_set(e, ERR_NOMEM, "zstd: out of memory");
        return NULL;
    }
    z->ib.src = z->in;
    z->base.next = next;
    return &z->base;
}
