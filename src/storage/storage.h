/*
 * storage.h - the storage interface: one handle type (`struct stor`) over a flat namespace of
 * objects addressed by '/'-separated keys, with one backend per storage kind (local directory,
 * S3, Azure Blob, GCS), each a table of operations in the manner of curl's protocol handlers
 * and libgit2's odb backends. The backup and restore engines use only the functions in the
 * first half of this file; backends implement `struct stor_ops` (second half).
 *
 * The model is the object store's, not the file system's:
 *   - keys are relative to the storage root (local-storage.path, or the bucket/container plus
 *     its `path` prefix); they are validated by stor_key_valid() for every backend: non-empty,
 *     at most STOR_KEY_MAX bytes, not absolute, no empty / "." / ".." segments, no segment
 *     starting with '.' (reserved for temporary files), no control characters;
 *   - an object becomes visible atomically when its writer commits (local: temporary file,
 *     fsync, rename, fsync of the directory; S3: complete multipart upload; Azure: put block
 *     list; GCS: last chunk of a resumable upload) and replaces any object with the same key;
 *     an aborted or failed writer leaves nothing visible;
 *   - "directories" exist only as common prefixes of keys: listing with a delimiter reports a
 *     prefix only when at least one committed object lies under it (an empty local directory
 *     left behind is never reported);
 *   - listings come sorted by key (bytewise), in pages, resumed with an opaque token.
 *
 * Local-only limits (the file system's): a key cannot be both an object and a prefix ("a" and
 * "a/b"); writing one under the other fails with ERR_IO.
 *
 * Errors follow util/err.h: ERR_INVALID for bad keys / arguments, ERR_NOT_FOUND for a missing
 * object (stat, reader, get), ERR_IO for storage failures; messages name the path or key and the
 * storage, and never carry credentials.
 *
 * Threads: a `struct stor` may be used by any number of threads at once; each writer, reader
 * and list iteration belongs to one thread at a time.
 *
 * Ownership: stor_open returns a handle freed by stor_close (after every writer and reader
 * opened from it has ended). stor_writer_commit and stor_writer_abort both end and free the
 * writer; stor_reader_close frees the reader. Listing pages are freed by stor_page_free.
 */
#ifndef ABS_STORAGE_STORAGE_H
#define ABS_STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg_model.h"
#include "util/err.h"

#define STOR_KEY_MAX 1024          /* bytes in a key (S3's limit for the whole object name) */
#define STOR_PAGE_DEFAULT 1000     /* list page size when the caller gives 0 */

struct stor;
struct stor_writer;
struct stor_reader;

enum stor_kind { STOR_LOCAL, STOR_S3, STOR_AZURE, STOR_GCS };

/* ---- handle ------------------------------------------------------------------------------ */

/* Opens the storage described by `cfg` (exactly one member set). Local: creates the root
 * directory (0700, parents too) when missing, resolves it against the current directory once,
 * and fails with ERR_IO when it cannot be created or is not a directory. */
int stor_open(const struct cfg_storage *cfg, struct stor **out, struct err *e);
void stor_close(struct stor *s); /* NULL ok */

enum stor_kind stor_get_kind(const struct stor *s);
/* Human name for messages and logs, e.g. "local storage /var/backups" or "s3://bucket/prefix". */
const char *stor_name(const struct stor *s);
/* Local: the absolute root directory; cloud: the key prefix inside the bucket ("" = none). */
const char *stor_root(const struct stor *s);
/* Part size a writer uses when given no hint (cloud: min-part-size; local: 0 = not used). */
size_t stor_part_size(const struct stor *s);

/* 0 when `key` is a valid object key, else ERR_INVALID naming it. */
int stor_key_valid(const char *key, struct err *e);

/* ---- streamed writes --------------------------------------------------------------------- */

/*
 * Starts writing object `key` (invisible until commit). part_size_hint: bytes buffered per
 * upload part for cloud backends (0 = stor_part_size(); clamped to the backend's limits, e.g.
 * S3 >= 5 MiB, GCS a multiple of 256 KiB); objects smaller than one part go up in a single
 * request. Memory per writer is bounded by about one part. Local ignores the hint (it buffers
 * 128 KiB). Data objects get the storage's `storage-class.data`.
 */
int stor_writer_open(struct stor *s, const char *key, size_t part_size_hint,
                     struct stor_writer **out, struct err *e);
/* Appends all `len` bytes or fails; after a failure the writer only accepts abort (commit
 * fails and discards). */
int stor_writer_write(struct stor_writer *w, const void *data, size_t len, struct err *e);
/* Makes the object visible (durable first: local fsyncs data, renames, fsyncs the directory)
 * and frees the writer. On failure nothing is visible and the writer is freed all the same. */
int stor_writer_commit(struct stor_writer *w, struct err *e);
/* Discards everything written and frees the writer (NULL ok). Nothing stays visible. */
void stor_writer_abort(struct stor_writer *w);
/* Bytes accepted so far. */
uint64_t stor_writer_bytes(const struct stor_writer *w);
const char *stor_writer_key(const struct stor_writer *w);

/* ---- ranged reads ------------------------------------------------------------------------ */

/* Opens `key` for reading `length` bytes from `offset` (length -1 = to the end). A range past
 * the end reads as empty; one that runs past the end is cut at the end. ERR_NOT_FOUND when the
 * object does not exist. */
int stor_reader_open(struct stor *s, const char *key, uint64_t offset, int64_t length,
                     struct stor_reader **out, struct err *e);
/* Reads up to `cap` bytes; *got = 0 only at the end of the range. */
int stor_reader_read(struct stor_reader *r, void *buf, size_t cap, size_t *got, struct err *e);
/* Size of the whole object (not of the range). */
uint64_t stor_reader_size(const struct stor_reader *r);
void stor_reader_close(struct stor_reader *r); /* NULL ok */

/* Callback adapters with the io_write_fn / io_read_fn signatures of io/io.h, so a storage
 * writer / reader can sit under an io chain (io_cb_writer_new(stor_io_write, NULL, w, e)).
 * Commit the storage writer after io_writer_close() of the chain. */
int stor_io_write(void *writer, const void *data, size_t len, struct err *e);
int stor_io_read(void *reader, void *buf, size_t cap, size_t *got, struct err *e);

/* ---- metadata, small objects ------------------------------------------------------------- */

/* ERR_NOT_FOUND when absent. Outputs may be NULL. mtime in ms since the epoch. */
int stor_stat(struct stor *s, const char *key, uint64_t *size, int64_t *mtime_ms, struct err *e);

/* Writes a whole small object atomically (readers see the old or the new content, never a
 * part), durably, with `storage-class.metadata`: metadata.yaml, remote configuration. */
int stor_put(struct stor *s, const char *key, const void *data, size_t len, struct err *e);
/* Reads a whole object of at most `max` bytes into a NUL-terminated heap buffer (free()).
 * ERR_NOT_FOUND when absent, ERR_INVALID when larger than max. len may be NULL. */
int stor_get(struct stor *s, const char *key, size_t max, char **data, size_t *len,
             struct err *e);

/* ---- listing ----------------------------------------------------------------------------- */

struct stor_list_opts {
    /* Keys starting with this string ("" or NULL = all). A plain string prefix as in S3:
     * "r/backup/17" matches "r/backup/1704.../..."; its part before the last '/' must be made
     * of valid key segments. */
    const char *prefix;
    /* true: group keys at the first '/' after the prefix into one "directory" entry (S3
     * CommonPrefixes with delimiter "/"); false: every object under the prefix, recursively. */
    bool delimiter;
    /* Only keys sorting strictly after this one (S3 StartAfter); NULL = from the start. */
    const char *start_after;
    /* Entries per page; 0 = STOR_PAGE_DEFAULT. Backends may return fewer. */
    size_t page_size;
};

struct stor_entry {
    char *key;          /* relative to the root; a directory entry ends with '/' */
    bool is_prefix;     /* directory entry (delimiter listings only) */
    uint64_t size;      /* objects only */
    int64_t mtime_ms;   /* objects only; 0 when the backend does not say */
};

struct stor_page {
    struct stor_entry *entries; /* sorted by key */
    size_t n, cap;
    char *next_token;           /* NULL on the last page; else pass to the next call */
};

/* One page of the listing; `token` NULL for the first page, then the previous next_token.
 * `out` is initialised here (free it with stor_page_free even on failure). */
int stor_list_page(struct stor *s, const struct stor_list_opts *o, const char *token,
                   struct stor_page *out, struct err *e);
void stor_page_free(struct stor_page *p);

/* Calls fn for every entry, page after page. fn returns 0 to go on, > 0 to stop (stor_list
 * then returns 0), < 0 to fail (returned as is; fn sets e). */
typedef int (*stor_list_fn)(void *ctx, const struct stor_entry *ent, struct err *e);
int stor_list(struct stor *s, const struct stor_list_opts *o, stor_list_fn fn, void *ctx,
              struct err *e);

/* ---- deleting ---------------------------------------------------------------------------- */

/* Deletes one object; an absent key is not an error (as in S3). Local also removes the
 * directories left empty up to the root. */
int stor_delete(struct stor *s, const char *key, struct err *e);
/* Deletes every object under `prefix`, which must be a directory prefix ending with '/'
 * ("r/backup/1704110400000/"); nothing there is fine. Local also removes leftover temporary
 * files and the emptied directories, the prefix's own included. */
int stor_delete_prefix(struct stor *s, const char *prefix, struct err *e);

/* =========================================================================================
 * Backend interface (for src/storage/ only). A backend allocates its handle / writer / reader
 * with the base struct as first member and fills the base fields through the helpers below.
 * ========================================================================================= */

enum stor_class { STOR_CLASS_DATA, STOR_CLASS_METADATA };

struct stor_write_opts {
    size_t part_size;      /* resolved: hint or stor_part_size(); backends clamp */
    enum stor_class cls;   /* storage class to apply */
};

struct stor_ops {
    const char *scheme; /* "local", "s3", "azure", "gcs" */
    /* Frees the backend's handle (the base fields are freed by stor_close afterwards). */
    void (*close)(struct stor *s);
    /* Keys and prefixes reaching these are already validated. */
    int (*writer_open)(struct stor *s, const char *key, const struct stor_write_opts *o,
                       struct stor_writer **out, struct err *e);
    int (*reader_open)(struct stor *s, const char *key, uint64_t offset, int64_t length,
                       struct stor_reader **out, struct err *e);
    int (*stat)(struct stor *s, const char *key, uint64_t *size, int64_t *mtime_ms,
                struct err *e);
    /* `out` comes zeroed; add entries with stor_page_add, set next_token (malloc'd) when more
     * may follow. `token` is NULL or a next_token this backend returned. */
    int (*list_page)(struct stor *s, const struct stor_list_opts *o, const char *token,
                     struct stor_page *out, struct err *e);
    int (*del)(struct stor *s, const char *key, struct err *e);
    /* Optional: NULL = list recursively and delete one by one. */
    int (*delete_prefix)(struct stor *s, const char *prefix, struct err *e);
    /* Optional: NULL = writer with STOR_CLASS_METADATA + write + commit. */
    int (*put)(struct stor *s, const char *key, const void *data, size_t len, struct err *e);
};

struct stor {
    const struct stor_ops *ops;
    enum stor_kind kind;
    char *root;       /* see stor_root() */
    char *name;       /* see stor_name() */
    size_t part_size; /* see stor_part_size() */
};

struct stor_writer_ops {
    int (*write)(struct stor_writer *w, const void *data, size_t len, struct err *e);
    /* Makes the object visible; on failure may leave cleanup to abort (called next). */
    int (*commit)(struct stor_writer *w, struct err *e);
    /* Discards whatever is not committed (after a failed write or commit too). */
    void (*abort)(struct stor_writer *w);
    /* Frees the backend's writer (after commit or abort). */
    void (*destroy)(struct stor_writer *w);
};

struct stor_writer {
    const struct stor_writer_ops *ops;
    struct stor *stor;
    char *key;       /* set by the common code */
    uint64_t bytes;  /* maintained by the common code */
    int failed;      /* error code of the first failed write, 0 if none */
};

struct stor_reader_ops {
    int (*read)(struct stor_reader *r, void *buf, size_t cap, size_t *got, struct err *e);
    void (*destroy)(struct stor_reader *r);
};

struct stor_reader {
    const struct stor_reader_ops *ops;
    struct stor *stor;
    char *key;      /* set by the common code */
    uint64_t size;  /* whole object size, set by the backend */
};

/* Fills the base of a freshly allocated handle (copies root and name). */
int stor_base_init(struct stor *s, const struct stor_ops *ops, enum stor_kind kind,
                   const char *root, const char *name, size_t part_size, struct err *e);

/* "a" + "b" -> "a/b" with exactly one '/' between them; either side may be empty. NULL when
 * out of memory. */
char *stor_path_join(const char *a, const char *b);
/* Cloud prefix from a config `path`: leading/trailing '/' removed, NULL -> "". */
char *stor_prefix_normalize(const char *path);
/* Object name in the bucket for `key` (root prefix + '/' + key), heap; NULL = no memory. */
char *stor_object_name(const struct stor *s, const char *key);
/* The key of a full object name, or NULL when the name is not under the root prefix. */
const char *stor_key_of_object(const struct stor *s, const char *object_name);
/* Whether a listing prefix is acceptable (see stor_list_opts.prefix); ERR_INVALID if not. */
int stor_prefix_valid(const char *prefix, struct err *e);

/* Appends an entry (key copied) to a page. */
int stor_page_add(struct stor_page *p, const char *key, bool is_prefix, uint64_t size,
                  int64_t mtime_ms, struct err *e);

/* Backend constructors. */
int stor_local_open(const struct cfg_local_storage *cfg, struct stor **out, struct err *e);
int stor_s3_open(const struct cfg_s3_storage *cfg, struct stor **out, struct err *e);
int stor_azure_open(const struct cfg_azure_storage *cfg, struct stor **out, struct err *e);
int stor_gcs_open(const struct cfg_gcp_storage *cfg, struct stor **out, struct err *e);

#endif
