/*
 * io_core.c - the stage plumbing of io.h: generic write/close/read/free over chains, the
 * basic sinks and sources (file descriptor, file, memory, callback), the counting stages,
 * the file-limit splitter and the chain builders. zstd lives in io_zstd.c, AES in io_aes.c.
 */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- generic ----------------------------------------------------------------------------- */

int io_write(struct io_writer *w, const void *data, size_t len, struct err *e)
{
    if (w->closed)
        return err_set(e, ERR_INTERNAL, "io: write to a closed %s stage", w->ops->name);
    if (len == 0)
        return 0;
    return w->ops->write(w, data, len, e);
}

int io_writer_close(struct io_writer *w, struct err *e)
{
    if (!w || w->closed)
        return 0;
    w->closed = true;
    int rc = w->ops->close ? w->ops->close(w, e) : 0;
    struct err tmp;
    int rc2 = io_writer_close(w->next, rc < 0 ? &tmp : e);
    return rc < 0 ? rc : rc2;
}

void io_writer_free(struct io_writer *w)
{
    while (w) {
        struct io_writer *next = w->next;
        w->ops->destroy(w);
        w = next;
    }
}

int io_read(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e)
{
    *got = 0;
    if (cap == 0)
        return 0;
    return r->ops->read(r, buf, cap, got, e);
}

int io_read_full(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e)
{
    size_t total = 0;
    while (total < cap) {
        size_t n = 0;
        int rc = io_read(r, (uint8_t *)buf + total, cap - total, &n, e);
        if (rc < 0) {
            *got = total;
            return rc;
        }
        if (n == 0)
            break;
        total += n;
    }
    *got = total;
    return 0;
}

void io_reader_free(struct io_reader *r)
{
    while (r) {
        struct io_reader *next = r->next;
        r->ops->destroy(r);
        r = next;
    }
}

int io_write_cb(void *writer, const void *data, size_t len, struct err *e)
{
    return io_write(writer, data, len, e);
}

int io_read_cb(void *reader, void *buf, size_t cap, size_t *got, struct err *e)
{
    return io_read(reader, buf, cap, got, e);
}

/* ---- file descriptors -------------------------------------------------------------------- */

struct fd_writer {
    struct io_writer base;
    int fd;
    bool own;
    bool fsync_on_close;
};

static int fdw_write(struct io_writer *w, const void *data, size_t len, struct err *e)
{
    struct fd_writer *f = (struct fd_writer *)w;
    const uint8_t *p = data;
    while (len) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return err_set(e, ERR_IO, "io: write failed: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fdw_close(struct io_writer *w, struct err *e)
{
    struct fd_writer *f = (struct fd_writer *)w;
    int rc = 0;
    if (f->fsync_on_close && fsync(f->fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = err_set(e, ERR_IO, "io: fsync failed: %s", strerror(errno));
    if (f->own) {
        if (close(f->fd) != 0 && rc == 0)
            rc = err_set(e, ERR_IO, "io: close failed: %s", strerror(errno));
        f->own = false;
    }
    return rc;
}

static void fdw_destroy(struct io_writer *w)
{
    struct fd_writer *f = (struct fd_writer *)w;
    if (f->own)
        close(f->fd);
    free(f);
}

static const struct io_writer_ops FD_WRITER_OPS = {"file", fdw_write, fdw_close, fdw_destroy};

struct io_writer *io_fd_writer_new(int fd, bool own_fd, bool fsync_on_close, struct err *e)
{
    struct fd_writer *f = calloc(1, sizeof *f);
    if (!f) {
        err_set(e, ERR_NOMEM, "io: out of memory");
        return NULL;
    }
    f->base.ops = &FD_WRITER_OPS;
    f->fd = fd;
    f->own = own_fd;
    f->fsync_on_close = fsync_on_close;
    return &f->base;
}

struct io_writer *io_file_writer_create(const char *path, bool overwrite, bool fsync_on_close,
                                        struct err *e)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, 0600);
    if (fd < 0) {
        err_set(e, ERR_IO, "io: cannot create %s: %s", path, strerror(errno));
        return NULL;
    }
    struct io_writer *w = io_fd_writer_new(fd, true, fsync_on_close, e);
    if (!w)
        close(fd);
    return w;
}

struct fd_reader {
    struct io_reader base;
    int fd;
    bool own;
};

static int fdr_read(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct fd_reader *f = (struct fd_reader *)r;
    for (;;) {
        ssize_t n = read(f->fd, buf, cap);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return err_set(e, ERR_IO, "io: read failed: %s", strerror(errno));
        }
        *got = (size_t)n;
        return 0;
    }
}

static void fdr_destroy(struct io_reader *r)
{
    struct fd_reader *f = (struct fd_reader *)r;
    if (f->own)
        close(f->fd);
    free(f);
}

static const struct io_reader_ops FD_READER_OPS = {"file", fdr_read, fdr_destroy};

struct io_reader *io_fd_reader_new(int fd, bool own_fd, struct err *e)
{
    struct fd_reader *f = calloc(1, sizeof *f);
    if (!f) {
        err_set(e, ERR_NOMEM, "io: out of memory");
        return NULL;
    }
    f->base.ops = &FD_READER_OPS;
    f->fd = fd;
    f->own = own_fd;
    return &f->base;
}

struct io_reader *io_file_reader_open(const char *path, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(e, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, "io: cannot open %s: %s", path,
                strerror(errno));
        return NULL;
    }
    struct io_reader *r = io_fd_reader_new(fd, true, e);
    if (!r)
        close(fd);
    return r;
}

/* ---- memory ------------------------------------------------------------------------------ */

struct mem_writer {
    struct io_writer base;
    uint8_t *data;
    size_t len, cap;
};

static int memw_write(struct io_writer *w, const void *data, size_t len, struct err *e)
{
    struct mem_writer *m = (struct mem_writer *)w;
    if (m->cap - m->len < len) {
        size_t ncap = m->cap ? m->cap : 4096;
        while (ncap - m->len < len) {
            if (ncap > SIZE_MAX / 2)
                return err_set(e, ERR_NOMEM, "io: memory sink too large");
            ncap *= 2;
        }
        uint8_t *nd = realloc(m->data, ncap);
        if (!nd)
            return err_set(e, ERR_NOMEM, "io: out of memory (%zu-byte memory sink)", ncap);
        m->data = nd;
        m->cap = ncap;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    return 0;
}

static void memw_destroy(struct io_writer *w)
{
    struct mem_writer *m = (struct mem_writer *)w;
    free(m->data);
    free(m);
}

static const struct io_writer_ops MEM_WRITER_OPS = {"memory", memw_write, NULL, memw_destroy};

struct io_writer *io_mem_writer_new(struct err *e)
{
    struct mem_writer *m = calloc(1, sizeof *m);
    if (!m) {
        err_set(e, ERR_NOMEM, "io: out of memory");
        return NULL;
    }
    m->base.ops = &MEM_WRITER_OPS;
    return &m->base;
}

const uint8_t *io_mem_writer_data(const struct io_writer *w, size_t *len)
{
    const struct mem_writer *m = (const struct mem_writer *)w;
    *len = m->len;
    return m->data;
}

struct mem_reader {
    struct io_reader base;
    const uint8_t *data;
    size_t len, pos;
};

static int memr_read(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct mem_reader *m = (struct mem_reader *)r;
    (void)e;
    size_t n = m->len - m->pos;
    if (n > cap)
        n = cap;
    if (n)
        memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    *got = n;
    return 0;
}

static void memr_destroy(struct io_reader *r) { free(r); }

static const struct io_reader_ops MEM_READER_OPS = {"memory", memr_read, memr_destroy};

struct io_reader *io_mem_reader_new(const void *data, size_t len, struct err *e)
{
    struct mem_reader *m = calloc(1, sizeof *m);
    if (!m) {
        err_set(e, ERR_NOMEM, "io: out of memory");
        return NULL;
    }
    m->base.ops = &MEM_READER_OPS;
    m->data = data;
    m->len = len;
    return &m->base;
}

/* ---- callbacks --------------------------------------------------------------------------- */

struct cb_writer {
    struct io_writer base;
    io_write_fn write;
    io_close_fn close;
    void *ctx;
};

static int cbw_write(struct io_writer *w, const void *data, size_t len, struct err *e)
{
    struct cb_writer *c = (struct cb_writer *)w;
    return c->write(c->ctx, data, len, e);
}

static int cbw_close(struct io_writer *w, struct err *e)
{
    struct cb_writer *c = (struct cb_writer *)w;
    return c->close ? c->close(c->ctx, e) : 0;
}

static void cbw_destroy(struct io_writer *w) { free(w); }

static const struct io_writer_ops CB_WRITER_OPS = {"callback", cbw_write, cbw_close,
                                                   cbw_destroy};

struct io_writer *io_cb_writer_new(io_write_fn write, io_close_fn close_fn, void *ctx,
                                   struct err *e)
{
    struct cb_writer *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, ERR_NOMEM, "io: out of memory");
        return NULL;
    }
    c->base.ops = &CB_WRITER_OPS;
    c->write = write;
    c->close = close_fn;
    c->ctx = ctx;
    return &c->base;
}

struct cb_reader {
    struct io_reader base;
    io_read_fn read;
    void *ctx;
};

static int cbr_read(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct cb_reader *c = (struct cb_reader *)r;
    int rc = c->read(c->ctx, buf, cap, got, e);
    if (rc == 0 && *got > cap)
        return err_set(e, ERR_INTERNAL, "io: read callback returned too many bytes");
    return rc;
}

static void cbr_destroy(struct io_reader *r) { free(r); }

static const struct io_reader_ops CB_READER_OPS = {"callback", cbr_read, cbr_destroy};

struct io_reader *io_cb_reader_new(io_read_fn read, void *ctx, struct err *e)
{
    struct cb_reader *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, ERR_NOMEM, "io: out of memory");
        return NULL;
    }
    c->base.ops = &CB_READER_OPS;
    c->read = read;
    c->ctx = ctx;
    return &c->base;
}

/* ---- counting ---------------------------------------------------------------------------- */

struct count_writer {
    struct io_writer base;
    struct io_counter *counter;
};

static int cntw_write(struct io_writer *w, const void *data, size_t len, struct err *e)
{
    struct count_writer *c = (struct count_writer *)w;
    int rc = io_write(w->next, data, len, e);
    if (rc == 0)
        io_counter_add_bytes(c->counter, len);
    return rc;
}

static void cntw_destroy(struct io_writer *w) { free(w); }

static const struct io_writer_ops COUNT_WRITER_OPS = {"counter", cntw_write, NULL,
                                                      cntw_destroy};

struct io_writer *io_count_writer_new(struct io_writer *next, struct io_counter *counter,
                                      struct err *e)
{
    struct count_writer *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, ERR_NOMEM, "io: out of memory");
        return NULL;
    }
    c->base.ops = &COUNT_WRITER_OPS;
    c->base.next = next;
    c->counter = counter;
    return &c->base;
}

struct count_reader {
    struct io_reader base;
    struct io_counter *counter;
};

static int cntr_read(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct count_reader *c = (struct count_reader *)r;
    int rc = io_read(r->next, buf, cap, got, e);
    if (rc == 0)
        io_counter_add_bytes(c->counter, *got);
    return rc;
}

static void cntr_destroy(struct io_reader *r) { free(r); }

static const struct io_reader_ops COUNT_READER_OPS = {"counter", cntr_read, cntr_destroy};

struct io_reader *io_count_reader_new(struct io_reader *next, struct io_counter *counter,
                                      struct err *e)
{
    struct count_reader *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, ERR_NOMEM, "io: out of memory");
        return NULL;
    }
    c->base.ops = &COUNT_READER_OPS;
    c->base.next = next;
    c->counter = counter;
    return &c->base;
}

/* ---- file-limit splitter ----------------------------------------------------------------- */

void io_split_init(struct io_split *s, uint64_t limit_bytes, uint64_t counter_now)
{
    s->limit = limit_bytes;
    s->file_start = counter_now;
}

bool io_split_due(const struct io_split *s, uint64_t counter_now)
{
    return s->limit > 0 && counter_now - s->file_start >= s->limit;
}

void io_split_next_file(struct io_split *s, uint64_t counter_now) { s->file_start = counter_now; }

/* ---- chains ------------------------------------------------------------------------------ */

/* Frees the stages stacked above `bottom`, leaving `bottom` itself alone. */
static void free_above_writer(struct io_writer *top, struct io_writer *bottom)
{
    struct io_writer *w = top;
    while (w && w != bottom) {
        struct io_writer *next = w->next;
        w->ops->destroy(w);
        w = next;
    }
}

static void free_above_reader(struct io_reader *top, struct io_reader *bottom)
{
    struct io_reader *r = top;
    while (r && r != bottom) {
        struct io_reader *next = r->next;
        r->ops->destroy(r);
        r = next;
    }
}

struct io_writer *io_writer_chain(struct io_writer *sink, const struct io_chain_opts *o,
                                  struct err *e)
{
    struct io_writer *top = sink, *w;
    if (o->counter) {
        if (!(w = io_count_writer_new(top, o->counter, e)))
            goto fail;
        top = w;
    }
    if (o->aes) {
        if (!(w = io_aes_writer_new(top, o->aes, NULL, e)))
            goto fail;
        top = w;
    }
    if (o->zstd) {
        if (!(w = io_zstd_writer_new(top, o->zstd_level, e)))
            goto fail;
        top = w;
    }
    return top;
fail:
    free_above_writer(top, sink);
    return NULL;
}

struct io_reader *io_reader_chain(struct io_reader *src, const struct io_chain_opts *o,
                                  struct err *e)
{
    struct io_reader *top = src, *r;
    if (o->counter) {
        if (!(r = io_count_reader_new(top, o->counter, e)))
            goto fail;
        top = r;
    }
    if (o->aes) {
        if (!(r = io_aes_reader_new(top, o->aes, e)))
            goto fail;
        top = r;
    }
    if (o->zstd) {
        if (!(r = io_zstd_reader_new(top, e)))
            goto fail;
        top = r;
    }
    return top;
fail:
    free_above_reader(top, src);
    return NULL;
}
