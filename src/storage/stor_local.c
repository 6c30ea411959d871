/*
 * stor_local.c - the local-directory storage backend (local-storage.path).
 *
 * A key "a/b/c" is the file <root>/a/b/c. Objects appear atomically: a writer streams into a
 * hidden temporary file in the target directory (".c.tmp-XXXXXX", mode 0600, created with
 * O_EXCL next to the target so the rename never crosses file systems), and commit flushes,
 * fsyncs the file, renames it over the key and fsyncs the directory. Directories are created on
 * demand with mode 0700 (their parents fsynced so the new entries survive a crash) and removed
 * again when an abort or a delete leaves them empty, so the tree mirrors the object store's
 * view: only prefixes that hold objects.
 *
 * Listing walks the tree in key order: within a directory, entries are sorted by name with '/'
 * appended to directory names, which makes a depth-first walk produce keys in bytewise order
 * (as S3 does; "a-b" sorts before "a/x"). Hidden entries (names starting with '.', i.e. temp
 * files) are never listed. The page token is the last key returned; the next page resumes
 * after it, skipping whole subtrees that sort before it, so deleting while paging is safe.
 *
 * No mutable state is shared between operations: everything works from the immutable root, so
 * any number of threads may use one handle. Concurrent writers in one directory race with the
 * empty-directory pruning of an abort or delete; opening a writer retries when its directory
 * vanishes between creation and use.
 */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/fsutil.h"

#define LOCAL_BUF_SIZE (128 * 1024) /* writer buffer: a few syscalls per MiB */
#define LOCAL_MAX_DEPTH 128         /* guards the walks against symlink loops */
#define LOCAL_OPEN_TRIES 16         /* writer open vs concurrent pruning of its directory */

struct local_stor {
    struct stor base; /* base.root = absolute root directory, no trailing '/' */
};

/* <root>/<rel> into buf (rel "" = the root itself; a trailing '/' of rel is dropped). */
static int local_path(const struct stor *s, const char *rel, char *buf, size_t cap,
                      struct err *e)
{
    size_t rl = strlen(rel);
    if (rl > 0 && rel[rl - 1] == '/')
        rl--;
    int n = rl ? snprintf(buf, cap, "%s/%.*s", s->root, (int)rl, rel)
               : snprintf(buf, cap, "%s", s->root);
    if (n < 0 || (size_t)n >= cap)
        return err_set(e, ERR_INVALID, "%s: path for '%s' too long", s->name, rel);
    return 0;
}

static int64_t mtime_ms_of(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

static void fsync_dir_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Creates <root>/<rel_dir> and its missing parents (0700), fsyncing each new entry's parent. */
static int make_dirs(const struct stor *s, const char *rel_dir, struct err *e)
{
    char path[PATH_MAX];
    int rc = local_path(s, rel_dir, path, sizeof path, e);
    if (rc)
        return rc;
    size_t root_len = strlen(s->root);
    if (mkdir(s->root, 0700) != 0 && errno != EEXIST)
        return err_set(e, ERR_IO, "%s: cannot create directory: %s", s->root, strerror(errno));
    size_t len = strlen(path);
    int restarts = 0;
    for (size_t i = root_len + 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) == 0) {
            chmod(path, 0700); /* exact mode whatever the umask */
            char *slash = strrchr(path, '/');
            *slash = '\0';
            fsync_dir_path(path);
            *slash = '/';
        } else if (errno == ENOENT && restarts++ < LOCAL_OPEN_TRIES) {
            /* A parent just made was pruned by a concurrent abort/delete: start over. */
            path[i] = saved;
            i = root_len;
            continue;
        } else if (errno != EEXIST) {
            return err_set(e, ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
        }
        path[i] = saved;
    }
    return 0;
}

/* Removes <root>/<rel_dir> and its parents while they are empty (never the root). */
static void prune_dirs(const struct stor *s, const char *rel_dir)
{
    char path[PATH_MAX];
    if (!*rel_dir || local_path(s, rel_dir, path, sizeof path, NULL) != 0)
        return;
    size_t root_len = strlen(s->root);
    while (strlen(path) > root_len) {
        if (rmdir(path) != 0)
            return;
        char *slash = strrchr(path, '/');
        if (!slash || (size_t)(slash - path) < root_len)
            return;
        *slash = '\0';
    }
}

/* The directory part of a key ("" for a top-level key), heap. */
static char *key_dir(const char *key)
{
    const char *slash = strrchr(key, '/');
    return strndup(key, slash ? (size_t)(slash - key) : 0);
}

/* ---- writer ------------------------------------------------------------------------------- */

struct local_writer {
    struct stor_writer base;
    int dirfd, fd;
    bool renamed;
    char *dir_rel;        /* directory of the key, relative to the root */
    char *path;           /* final path, for messages */
    const char *name;     /* final file name (inside path) */
    char tmp[NAME_MAX + 1];
    unsigned char *buf;
    size_t blen;
    off_t written, kicked; /* bytes written / handed to writeback (see kick_writeback) */
};

static void tmp_name(char *out, size_t cap, const char *name)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
        static unsigned counter;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec ^
                               ((unsigned long long)getpid() << 20) ^
                               ((unsigned long long)__atomic_add_fetch(&counter, 1,
                                                                       __ATOMIC_RELAXED)
                                << 40);
        for (size_t i = 0; i < sizeof rnd; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            rnd[i] = (unsigned char)(x >> 56);
        }
    }
    char sfx[7];
    for (size_t i = 0; i < 6; i++)
        sfx[i] = chars[rnd[i] % (sizeof chars - 1)];
    sfx[6] = '\0';
    /* Keep the name recognisable but within NAME_MAX. */
    snprintf(out, cap, ".%.200s.tmp-%s", name, sfx);
}

/* Starts asynchronous writeback of every full 8 MiB written so far, so that the fsync of
 * commit finds little left to write instead of the whole file (disk writes overlap the
 * producer; nothing waits here). */
#define LOCAL_WRITEBACK_STEP ((off_t)8 << 20)
static void kick_writeback(struct local_writer *w, size_t just_written)
{
    w->written += (off_t)just_written;
    if (w->written - w->kicked >= LOCAL_WRITEBACK_STEP) {
        (void)sync_file_range(w->fd, w->kicked, w->written - w->kicked, SYNC_FILE_RANGE_WRITE);
        w->kicked = w->written;
    }
}

static int lw_flush(struct local_writer *w, struct err *e)
{
    if (w->blen == 0)
        return 0;
    if (fs_write_all(w->fd, w->buf, w->blen) != 0)
        return err_set(e, ERR_IO, "%s: cannot write: %s", w->path, strerror(errno));
    kick_writeback(w, w->blen);
    w->blen = 0;
    return 0;
}

static int lw_write(struct stor_writer *base, const void *data, size_t len, struct err *e)
{
    struct local_writer *w = (struct local_writer *)base;
    const unsigned char *p = data;
    if (w->blen + len <= LOCAL_BUF_SIZE) {
        memcpy(w->buf + w->blen, p, len);
        w->blen += len;
        return 0;
    }
    int rc = lw_flush(w, e);
    if (rc)
        return rc;
    if (len >= LOCAL_BUF_SIZE) {
        if (fs_write_all(w->fd, p, len) != 0)
            return err_set(e, ERR_IO, "%s: cannot write: %s", w->path, strerror(errno));
        kick_writeback(w, len);
        return 0;
    }
    memcpy(w->buf, p, len);
    w->blen = len;
    return 0;
}

static int lw_commit(struct stor_writer *base, struct err *e)
{
    struct local_writer *w = (struct local_writer *)base;
    int rc = lw_flush(w, e);
    if (rc)
        return rc;
    if (fsync(w->fd) != 0)
        return err_set(e, ERR_IO, "%s: cannot sync: %s", w->path, strerror(errno));
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0)
        return err_set(e, ERR_IO, "%s: cannot close: %s", w->path, strerror(errno));
    if (renameat(w->dirfd, w->tmp, w->dirfd, w->name) != 0)
        return err_set(e, ERR_IO, "%s: cannot rename into place: %s", w->path, strerror(errno));
    w->renamed = true;
    if (fsync(w->dirfd) != 0)
        return err_set(e, ERR_IO, "%s: cannot sync directory: %s", w->path, strerror(errno));
    w->renamed = false; /* committed: abort must not touch it */
    return 0;
}

static void lw_abort(struct stor_writer *base)
{
    struct local_writer *w = (struct local_writer *)base;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->dirfd >= 0) {
        unlinkat(w->dirfd, w->tmp, 0);
        if (w->renamed)
            unlinkat(w->dirfd, w->name, 0);
    }
    prune_dirs(w->base.stor, w->dir_rel);
}

static void lw_destroy(struct stor_writer *base)
{
    struct local_writer *w = (struct local_writer *)base;
    if (w->fd >= 0)
        close(w->fd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    free(w->dir_rel);
    free(w->path);
    free(w->buf);
    free(w);
}

static const struct stor_writer_ops LOCAL_WRITER_OPS = {lw_write, lw_commit, lw_abort,
                                                        lw_destroy};

static int local_writer_open(struct stor *s, const char *key, const struct stor_write_opts *o,
                             struct stor_writer **out, struct err *e)
{
    (void)o; /* no parts, no storage classes on a local disk */
    struct local_writer *w = calloc(1, sizeof *w);
    if (!w)
        return err_set(e, ERR_NOMEM, "storage: out of memory");
    w->base.ops = &LOCAL_WRITER_OPS;
    w->base.stor = s;
    w->dirfd = w->fd = -1;
    w->dir_rel = key_dir(key);
    w->buf = malloc(LOCAL_BUF_SIZE);
    char path[PATH_MAX], dir[PATH_MAX];
    int rc = 0;
    if (!w->dir_rel || !w->buf) {
        rc = err_set(e, ERR_NOMEM, "storage: out of memory");
        goto fail;
    }
    if ((rc = local_path(s, key, path, sizeof path, e)) != 0 ||
        (rc = local_path(s, w->dir_rel, dir, sizeof dir, e)) != 0)
        goto fail;
    if (!(w->path = strdup(path))) {
        rc = err_set(e, ERR_NOMEM, "storage: out of memory");
        goto fail;
    }
    w->name = strrchr(w->path, '/') + 1;
    if (strlen(w->name) > NAME_MAX) {
        rc = err_set(e, ERR_INVALID, "%s: file name too long", w->path);
        goto fail;
    }

    for (int tries = 0;; tries++) {
        if (tries == LOCAL_OPEN_TRIES) {
            rc = err_set(e, ERR_IO, "%s: directory keeps disappearing", dir);
            goto fail;
        }
        if (w->dirfd < 0) {
            w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (w->dirfd < 0 && errno == ENOENT) {
                if ((rc = make_dirs(s, w->dir_rel, e)) != 0)
                    goto fail;
                continue;
            }
            if (w->dirfd < 0) {
                rc = err_set(e, ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
                goto fail;
            }
        }
        tmp_name(w->tmp, sizeof w->tmp, w->name);
        w->fd = openat(w->dirfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (w->fd >= 0)
            break;
        if (errno == EEXIST)
            continue;
        if (errno == ENOENT) { /* the directory was pruned under us: start over */
            close(w->dirfd);
            w->dirfd = -1;
            continue;
        }
        rc = err_set(e, ERR_IO, "%s: cannot create temporary file: %s", path, strerror(errno));
        goto fail;
    }
    if (fchmod(w->fd, 0600) != 0) {
        rc = err_set(e, ERR_IO, "%s: cannot set mode: %s", path, strerror(errno));
        goto fail;
    }
    *out = &w->base;
    return 0;

fail:
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
        unlinkat(w->dirfd, w->tmp, 0);
    }
    if (w->dir_rel)
        prune_dirs(s, w->dir_rel);
    lw_destroy(&w->base);
    return rc;
}

/* ---- reader ------------------------------------------------------------------------------- */

struct local_reader {
    struct stor_reader base;
    int fd;
    uint64_t pos, end;
    char *path;
};

static int lr_read(struct stor_reader *base, void *buf, size_t cap, size_t *got, struct err *e)
{
    struct local_reader *r = (struct local_reader *)base;
    uint64_t left = r->end - r->pos;
    size_t want = left < cap ? (size_t)left : cap;
    *got = 0;
    if (want == 0)
        return 0;
    ssize_t n;
    do
        n = pread(r->fd, buf, want, (off_t)r->pos);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return err_set(e, ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
    if (n == 0) /* the file shrank: end of data */
        r->end = r->pos;
    r->pos += (uint64_t)n;
    *got = (size_t)n;
    return 0;
}

static void lr_destroy(struct stor_reader *base)
{
    struct local_reader *r = (struct local_reader *)base;
    if (r->fd >= 0)
        close(r->fd);
    free(r->path);
    free(r);
}

static const struct stor_reader_ops LOCAL_READER_OPS = {lr_read, lr_destroy};

static int local_reader_open(struct stor *s, const char *key, uint64_t offset, int64_t length,
                             struct stor_reader **out, struct err *e)
{
    char path[PATH_MAX];
    int rc = local_path(s, key, path, sizeof path, e);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return err_set(e, ERR_NOT_FOUND, "%s: not found", path);
        return err_set(e, ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = err_set(e, ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, ERR_NOT_FOUND, "%s: not found (not a file)", path);
    }
    struct local_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        close(fd);
        return err_set(e, ERR_NOMEM, "storage: out of memory");
    }
    uint64_t size = (uint64_t)st.st_size;
    r->base.ops = &LOCAL_READER_OPS;
    r->base.stor = s;
    r->base.size = size;
    r->fd = fd;
    r->pos = offset < size ? offset : size;
    r->end = (length < 0 || (uint64_t)length > size - r->pos) ? size : r->pos + (uint64_t)length;
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, (off_t)r->pos, (off_t)(r->end - r->pos), POSIX_FADV_SEQUENTIAL);
#endif
    *out = &r->base;
    return 0;
}

/* ---- stat, delete ------------------------------------------------------------------------- */

static int local_stat(struct stor *s, const char *key, uint64_t *size, int64_t *mtime_ms,
                      struct err *e)
{
    char path[PATH_MAX];
    int rc = local_path(s, key, path, sizeof path, e);
    if (rc)
        return rc;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return err_set(e, ERR_NOT_FOUND, "%s: not found", path);
        return err_set(e, ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return err_set(e, ERR_NOT_FOUND, "%s: not found (not a file)", path);
    *size = (uint64_t)st.st_size;
    *mtime_ms = mtime_ms_of(&st);
    return 0;
}

static int local_del(struct stor *s, const char *key, struct err *e)
{
    char path[PATH_MAX];
    int rc = local_path(s, key, path, sizeof path, e);
    if (rc)
        return rc;
    if (unlink(path) != 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
            return 0; /* no such object (a directory is not an object) */
        return err_set(e, ERR_IO, "%s: cannot delete: %s", path, strerror(errno));
    }
    char *dir = key_dir(key);
    if (dir) {
        prune_dirs(s, dir);
        free(dir);
    }
    return 0;
}

/* Removes the tree at `path` (every entry, hidden ones too; symlinks are not followed). */
static int rm_tree(const char *path, int depth, struct err *e)
{
    if (depth > LOCAL_MAX_DEPTH)
        return err_set(e, ERR_IO, "%s: directory tree too deep", path);
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return err_set(e, ERR_IO, "%s: cannot open directory: %s", path, strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    char child[PATH_MAX];
    for (;;) {
        errno = 0;
        if (!(de = readdir(d))) {
            if (errno)
                rc = err_set(e, ERR_IO, "%s: cannot read directory: %s", path, strerror(errno));
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= (int)sizeof child) {
            rc = err_set(e, ERR_IO, "%s/%s: path too long", path, de->d_name);
            break;
        }
        bool is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            if (lstat(child, &st) != 0)
                continue;
            is_dir = S_ISDIR(st.st_mode);
        }
        if (is_dir) {
            if ((rc = rm_tree(child, depth + 1, e)) != 0)
                break;
        } else if (unlink(child) != 0 && errno != ENOENT) {
            rc = err_set(e, ERR_IO, "%s: cannot delete: %s", child, strerror(errno));
            break;
        }
    }
    closedir(d);
    if (rc)
        return rc;
    if (rmdir(path) != 0 && errno != ENOENT)
        return err_set(e, ERR_IO, "%s: cannot remove directory: %s", path, strerror(errno));
    return 0;
}

static int local_delete_prefix(struct stor *s, const char *prefix, struct err *e)
{
    char path[PATH_MAX];
    int rc = local_path(s, prefix, path, sizeof path, e);
    if (rc)
        return rc;
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0; /* nothing under that prefix */
    if ((rc = rm_tree(path, 0, e)) != 0)
        return rc;
    /* The prefix's parent directories, if that left them empty. */
    char *parent = strndup(prefix, strlen(prefix) - 1);
    if (parent) {
        char *slash = strrchr(parent, '/');
        if (slash) {
            *slash = '\0';
            prune_dirs(s, parent);
        }
        free(parent);
    }
    return 0;
}

/* ---- listing ------------------------------------------------------------------------------ */

struct dent {
    char *sort; /* name, with '/' appended for directories */
    bool dir;
    uint64_t size;
    int64_t mtime;
};

static int dent_cmp(const void *a, const void *b)
{
    return strcmp(((const struct dent *)a)->sort, ((const struct dent *)b)->sort);
}

static void dents_free(struct dent *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].sort);
    free(v);
}

/* Visible entries of directory <root>/<rel> whose names start with `partial`, sorted. A
 * missing directory (or a file where a directory was expected) reads as empty. */
static int read_dir_sorted(const struct stor *s, const char *rel, const char *partial,
                           struct dent **out, size_t *out_n, struct err *e)
{
    *out = NULL;
    *out_n = 0;
    char path[PATH_MAX];
    int rc = local_path(s, rel, path, sizeof path, e);
    if (rc)
        return rc;
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return err_set(e, ERR_IO, "%s: cannot list: %s", path, strerror(errno));
    }
    size_t plen = partial ? strlen(partial) : 0, n = 0, cap = 0;
    struct dent *v = NULL;
    struct dirent *de;
    for (;;) {
        errno = 0;
        if (!(de = readdir(d))) {
            if (errno)
                rc = err_set(e, ERR_IO, "%s: cannot list: %s", path, strerror(errno));
            break;
        }
        if (de->d_name[0] == '.') /* ".", "..", temporary files, anything hidden */
            continue;
        if (plen && strncmp(de->d_name, partial, plen) != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) != 0) {
            if (errno == ENOENT) /* deleted meanwhile, or a dangling symlink */
                continue;
            rc = err_set(e, ERR_IO, "%s/%s: cannot stat: %s", path, de->d_name,
                         strerror(errno));
            break;
        }
        bool dir = S_ISDIR(st.st_mode);
        if (!dir && !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            struct dent *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = err_set(e, ERR_NOMEM, "storage: out of memory");
                break;
            }
            v = nv;
            cap = ncap;
        }
        size_t nl = strlen(de->d_name);
        char *sort = malloc(nl + 2);
        if (!sort) {
            rc = err_set(e, ERR_NOMEM, "storage: out of memory");
            break;
        }
        memcpy(sort, de->d_name, nl);
        sort[nl] = dir ? '/' : '\0';
        sort[nl + 1] = '\0';
        v[n++] = (struct dent){sort, dir, (uint64_t)st.st_size, mtime_ms_of(&st)};
    }
    closedir(d);
    if (rc) {
        dents_free(v, n);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, dent_cmp);
    *out = v;
    *out_n = n;
    return 0;
}

struct walk {
    struct stor *s;
    const struct stor_list_opts *o;
    const char *after;       /* exclusive lower bound, NULL = none */
    struct stor_page *page;
    bool more;               /* an entry beyond the page exists */
    bool probe;              /* has_objects mode: stop at the first object */
    bool found;
};

/* Whether every key under directory prefix `full` (ending in '/') sorts at or before after. */
static bool subtree_before(const char *full, const char *after)
{
    return after && strcmp(full, after) < 0 && strncmp(after, full, strlen(full)) != 0;
}

static int walk_dir(struct walk *w, const char *rel, const char *partial, int depth,
                    struct err *e);

/* Whether a committed object lies under directory prefix `full` (sorting after w->after). */
static int has_objects(struct walk *w, const char *full, int depth, struct err *e)
{
    struct walk probe = {w->s, w->o, w->after, NULL, false, true, false};
    int rc = walk_dir(&probe, full, NULL, depth, e);
    if (rc < 0)
        return rc;
    return probe.found;
}

/* 0 = go on, 1 = stop (page full or object found), < 0 = error. */
static int emit(struct walk *w, const char *key, bool is_prefix, const struct dent *d,
                struct err *e)
{
    if (w->probe) {
        w->found = true;
        return 1;
    }
    if (w->page->n >= w->o->page_size) {
        w->more = true;
        return 1;
    }
    int rc = stor_page_add(w->page, key, is_prefix, is_prefix ? 0 : d->size,
                           is_prefix ? 0 : d->mtime, e);
    return rc < 0 ? rc : 0;
}

static int walk_dir(struct walk *w, const char *rel, const char *partial, int depth,
                    struct err *e)
{
    if (depth > LOCAL_MAX_DEPTH)
        return err_set(e, ERR_IO, "%s: '%s': directory tree too deep", w->s->name, rel);
    struct dent *v;
    size_t n;
    int rc = read_dir_sorted(w->s, rel, partial, &v, &n, e);
    if (rc)
        return rc;
    size_t rl = strlen(rel);
    char *full = NULL;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t sl = strlen(v[i].sort);
        char *nf = realloc(full, rl + sl + 1);
        if (!nf) {
            rc = err_set(e, ERR_NOMEM, "storage: out of memory");
            break;
        }
        full = nf;
        memcpy(full, rel, rl);
        memcpy(full + rl, v[i].sort, sl + 1);
        if (rl + sl > STOR_KEY_MAX)
            continue; /* not addressable as a key */
        if (!v[i].dir) {
            if (w->after && strcmp(full, w->after) <= 0)
                continue;
            rc = emit(w, full, false, &v[i], e);
        } else if (w->o->delimiter && !w->probe) {
            if (subtree_before(full, w->after) || (w->after && !strcmp(full, w->after)))
                continue;
            rc = has_objects(w, full, depth + 1, e);
            if (rc > 0)
                rc = emit(w, full, true, &v[i], e);
        } else {
            if (subtree_before(full, w->after))
                continue;
            rc = walk_dir(w, full, NULL, depth + 1, e);
        }
    }
    free(full);
    dents_free(v, n);
    return rc;
}

static int local_list_page(struct stor *s, const struct stor_list_opts *o, const char *token,
                           struct stor_page *out, struct err *e)
{
    const char *after = o->start_after;
    if (token && (!after || strcmp(token, after) > 0))
        after = token;
    /* Directory part of the prefix ("a/b/" of "a/b/c") and the partial last segment. */
    const char *slash = strrchr(o->prefix, '/');
    size_t dl = slash ? (size_t)(slash - o->prefix) + 1 : 0;
    char *rel = strndup(o->prefix, dl);
    if (!rel)
        return err_set(e, ERR_NOMEM, "storage: out of memory");
    struct walk w = {s, o, after, out, false, false, false};
    int rc = walk_dir(&w, rel, o->prefix + dl, 0, e);
    free(rel);
    if (rc < 0)
        return rc;
    if (w.more && out->n > 0) {
        out->next_token = strdup(out->entries[out->n - 1].key);
        if (!out->next_token)
            return err_set(e, ERR_NOMEM, "storage: out of memory");
    }
    return 0;
}

/* ---- handle ------------------------------------------------------------------------------- */

static void local_close(struct stor *s) { free(s); }

static const struct stor_ops LOCAL_OPS = {
    .scheme = "local",
    .close = local_close,
    .writer_open = local_writer_open,
    .reader_open = local_reader_open,
    .stat = local_stat,
    .list_page = local_list_page,
    .del = local_del,
    .delete_prefix = local_delete_prefix,
    .put = NULL, /* the generic writer path is already temp + fsync + rename */
};

int stor_local_open(const struct cfg_local_storage *cfg, struct stor **out, struct err *e)
{
    *out = NULL;
    if (!cfg || !cfg->path || !*cfg->path)
        return err_set(e, ERR_INVALID, "local-storage: path is required");
    if (fs_mkdirs(cfg->path, 0700, e) != 0)
        return err_prefix(e, "local storage %s", cfg->path);
    char abs[PATH_MAX];
    if (!realpath(cfg->path, abs))
        return err_set(e, ERR_IO, "local storage %s: cannot resolve: %s", cfg->path,
                       strerror(errno));
    struct stat st;
    if (stat(abs, &st) != 0)
        return err_set(e, ERR_IO, "local storage %s: cannot stat: %s", abs, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return err_set(e, ERR_IO, "local storage %s: not a directory", abs);
    if (strlen(abs) + 1 + STOR_KEY_MAX + 16 >= PATH_MAX)
        return err_set(e, ERR_INVALID, "local storage %s: path too long", abs);
    struct local_stor *ls = calloc(1, sizeof *ls);
    if (!ls)
        return err_set(e, ERR_NOMEM, "storage: out of memory");
    char name[PATH_MAX + 32];
    snprintf(name, sizeof name, "local storage %s", abs);
    int rc = stor_base_init(&ls->base, &LOCAL_OPS, STOR_LOCAL, abs, name, 0, e);
    if (rc) {
        free(ls);
        return rc;
    }
    *out = &ls->base;
    return 0;
}
