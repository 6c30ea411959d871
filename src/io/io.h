/*
 * io.h - byte-stream stages for backup files: one small writer interface (write / close) and
 * one reader interface (read), stacked into chains.
 *
 *   writing: asb encoder -> [zstd] -> [AES-CTR] -> counter -> sink (fd, memory, callback)
 *   reading: source (fd, memory, callback) -> [AES-CTR] -> [zstd] -> asb decoder
 *
 * A stage built on top of another takes ownership of it: closing / freeing the top of a chain
 * closes / frees the whole chain. (On a failed constructor the `next` stage is left to the
 * caller.) io_writer_close() finishes the stream (zstd end of frame, flushes) and must be
 * called for the output to be complete; io_writer_free() alone discards.
 *
 * Framing (docs: abs-reference.md section 6): zstd = standard frames (one per file written,
 * any number read); AES = 16-byte block holding AES-ECB(key, IV - 1), then AES-CTR with the
 * initial counter block IV; key = SHA-256 of the RSA private key in PKCS#1 DER (AES-128 uses
 * its first 16 bytes).
 *
 * Stages are used by one thread at a time; io_counter fields may be read from other threads.
 */
#ifndef ABS_IO_IO_H
#define ABS_IO_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* ---- interfaces -------------------------------------------------------------------------- */

struct io_writer;
struct io_writer_ops {
    const char *name;
    /* Consumes all `len` bytes or fails. */
    int (*write)(struct io_writer *w, const void *data, size_t len, struct err *e);
    /* Finishes this stage only (flushing into next); io_writer_close then closes next.
     * May be NULL. */
    int (*close)(struct io_writer *w, struct err *e);
    /* Releases this stage only (io_writer_free walks the chain). */
    void (*destroy)(struct io_writer *w);
};
struct io_writer {
    const struct io_writer_ops *ops;
    struct io_writer *next; /* owned; NULL for a sink */
    bool closed;
};

struct io_reader;
struct io_reader_ops {
    const char *name;
    /* Up to cap bytes; *got = 0 only at end of stream. */
    int (*read)(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e);
    void (*destroy)(struct io_reader *r);
};
struct io_reader {
    const struct io_reader_ops *ops;
    struct io_reader *next; /* owned; NULL for a source */
};

int io_write(struct io_writer *w, const void *data, size_t len, struct err *e);
int io_writer_close(struct io_writer *w, struct err *e); /* idempotent */
void io_writer_free(struct io_writer *w);                /* whole chain; NULL ok */

int io_read(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e);
/* Reads until buf is full or the stream ends; *got < cap means end of stream. */
int io_read_full(struct io_reader *r, void *buf, size_t cap, size_t *got, struct err *e);
void io_reader_free(struct io_reader *r); /* whole chain; NULL ok */

/* Adapters with the callback signatures of the asb encoder / decoder (ctx = the stage). */
int io_write_cb(void *writer, const void *data, size_t len, struct err *e);
int io_read_cb(void *reader, void *buf, size_t cap, size_t *got, struct err *e);

/* ---- sinks and sources ------------------------------------------------------------------- */

/* File descriptor sink/source; own_fd closes it on close/free. The fd writer fsyncs on close
 * when `fsync_on_close`. */
struct io_writer *io_fd_writer_new(int fd, bool own_fd, bool fsync_on_close, struct err *e);
struct io_reader *io_fd_reader_new(int fd, bool own_fd, struct err *e);
/* Creates (O_EXCL unless `overwrite`) a file with mode 0600. */
struct io_writer *io_file_writer_create(const char *path, bool overwrite, bool fsync_on_close,
                                        struct err *e);
struct io_reader *io_file_reader_open(const char *path, struct err *e);

/* Growable memory sink; the bytes stay readable through io_mem_writer_data until freed. */
struct io_writer *io_mem_writer_new(struct err *e);
const uint8_t *io_mem_writer_data(const struct io_writer *w, size_t *len);
/* Reads `data` (not copied: must outlive the reader). */
struct io_reader *io_mem_reader_new(const void *data, size_t len, struct err *e);

/* Callback sink/source, e.g. a storage backend upload / download stream.
 * close_fn may be NULL. */
typedef int (*io_write_fn)(void *ctx, const void *data, size_t len, struct err *e);
typedef int (*io_close_fn)(void *ctx, struct err *e);
typedef int (*io_read_fn)(void *ctx, void *buf, size_t cap, size_t *got, struct err *e);
struct io_writer *io_cb_writer_new(io_write_fn write, io_close_fn close, void *ctx,
                                   struct err *e);
struct io_reader *io_cb_reader_new(io_read_fn read, void *ctx, struct err *e);

/* ---- counting ---------------------------------------------------------------------------- */

/* Progress counters, updated with relaxed atomics (safe to read from other threads). */
struct io_counter {
    uint64_t bytes;
    uint64_t records;
};
static inline uint64_t io_counter_bytes(const struct io_counter *c)
{
    return __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);
}
static inline uint64_t io_counter_records(const struct io_counter *c)
{
    return __atomic_load_n(&c->records, __ATOMIC_RELAXED);
}
static inline void io_counter_add_records(struct io_counter *c, uint64_t n)
{
    __atomic_fetch_add(&c->records, n, __ATOMIC_RELAXED);
}
static inline void io_counter_add_bytes(struct io_counter *c, uint64_t n)
{
    __atomic_fetch_add(&c->bytes, n, __ATOMIC_RELAXED);
}

/* Pass-through stages adding every byte to *counter (which outlives the stage; several stages
 * may share one counter, e.g. across the files of one job). */
struct io_writer *io_count_writer_new(struct io_writer *next, struct io_counter *counter,
                                      struct err *e);
struct io_reader *io_count_reader_new(struct io_reader *next, struct io_counter *counter,
                                      struct err *e);

/* ---- file-limit splitting ---------------------------------------------------------------- */

/* Tells when the current file reached `file-limit`. Feed it the output byte count (after
 * compression and encryption, e.g. from the counter under the sink) at record boundaries. */
struct io_split {
    uint64_t limit;      /* bytes per file; 0 = unlimited */
    uint64_t file_start; /* counter value when the current file began */
};
/* ABS `file-limit` is in MiB; 0 or negative = no limit. */
static inline uint64_t io_split_limit_from_mb(int64_t mb)
{
    return mb > 0 ? (uint64_t)mb * 1024 * 1024 : 0;
}
void io_split_init(struct io_split *s, uint64_t limit_bytes, uint64_t counter_now);
bool io_split_due(const struct io_split *s, uint64_t counter_now);
/* Call after opening the next file. */
void io_split_next_file(struct io_split *s, uint64_t counter_now);

/* ---- zstd -------------------------------------------------------------------------------- */

/* One zstd frame per stream (no checksum, like asbackup). level: any libzstd level
 * (ZSTD_minCLevel()..ZSTD_maxCLevel(); 0 = libzstd default 3), else ERR_INVALID. */
struct io_writer *io_zstd_writer_new(struct io_writer *next, int level, struct err *e);
/* Any number of concatenated frames; a stream that ends inside a frame is an error. */
struct io_reader *io_zstd_reader_new(struct io_reader *next, struct err *e);
bool io_zstd_level_valid(int level);

/* ---- AES-CTR ----------------------------------------------------------------------------- */

#define IO_AES_KEY_MAX 32
struct io_aes_key {
    int bits; /* 128 or 256 */
    uint8_t key[IO_AES_KEY_MAX];
};

/* Key derivation from an RSA private key: PEM (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE
 * KEY", header/footer lines tolerated without newlines), base64 of such a PEM, base64 of DER,
 * or base64 of base64 of DER. Non-RSA keys are rejected. bits = 128 or 256. */
int io_aes_key_from_pem(const void *text, size_t len, int bits, struct io_aes_key *out,
                        struct err *e);
int io_aes_key_from_file(const char *path, int bits, struct io_aes_key *out, struct err *e);
/* Raw key bytes (tests). */
int io_aes_key_from_bytes(const void *key, int bits, struct io_aes_key *out, struct err *e);

/* iv: 16 bytes, NULL = random (RAND_bytes). Writes the 16-byte IV block first. */
struct io_writer *io_aes_writer_new(struct io_writer *next, const struct io_aes_key *key,
                                    const uint8_t *iv, struct err *e);
struct io_reader *io_aes_reader_new(struct io_reader *next, const struct io_aes_key *key,
                                    struct err *e);

/* ---- chains ------------------------------------------------------------------------------ */

struct io_chain_opts {
    bool zstd;
    int zstd_level;              /* writers only */
    const struct io_aes_key *aes; /* NULL = no encryption */
    struct io_counter *counter;  /* NULL = none; counts bytes at the sink/source side */
};
/* sink -> [counter] -> [AES] -> [zstd] = returned top. On failure sink is left to the caller. */
struct io_writer *io_writer_chain(struct io_writer *sink, const struct io_chain_opts *o,
                                  struct err *e);
/* source -> [counter] -> [AES] -> [zstd] = returned top. */
struct io_reader *io_reader_chain(struct io_reader *src, const struct io_chain_opts *o,
                                  struct err *e);

#endif
