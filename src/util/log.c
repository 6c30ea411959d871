/*
 * log.c - the process-wide logger: level filtering, PLAIN/JSON line formatting, the stdout
 * writer and the file writer with lumberjack-style rotation (size limit, backups named
 * <name>-<UTC YYYY-MM-DDTHH-MM-SS.mmm><ext>, optional gzip, maxbackups/maxage pruning).
 * All mutable state lives in `g` and is guarded by one mutex; rotation runs synchronously
 * under that mutex.
 *
 * Under systemd, when stdout is the journal ($JOURNAL_STREAM names stdout's device:inode),
 * stdout lines carry no timestamp (the journal stamps each line) and start with the syslog
 * priority prefix <N>, which journald strips and turns into the entry's priority.
 */
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define DEFAULT_BYTES_PER_MB ((int64_t)1048576)
#define BACKUP_TS_LEN 23 /* "YYYY-MM-DDTHH-MM-SS.mmm" */
#define ERROR_REPORT_INTERVAL_S 10

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_level = LOG_INFO; /* read without the mutex by log_enabled() */

static struct {
    enum log_format format;
    bool to_stdout;
    bool stdout_journal;   /* stdout is connected to the systemd journal */
    bool to_stderr;        /* only after log_shutdown() */
    char *path;            /* NULL: no file writer */
    int fd;                /* -1 when closed (reopened on the next write) */
    bool regular;          /* rotation only applies to regular files */
    int64_t size;          /* bytes in the current file */
    int64_t max_size_mb, max_age_days, max_backups;
    bool compress;
    int64_t bytes_per_mb;
    int64_t last_backup_ms; /* newest backup timestamp handed out by backup_name() */
    time_t last_error_report;
} g = {
    .format = LOG_FORMAT_PLAIN,
    .to_stdout = true,
    .fd = -1,
    .bytes_per_mb = DEFAULT_BYTES_PER_MB,
};

static const char *const level_names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};

/* ---- parsing ------------------------------------------------------------------------ */

int log_level_parse(const char *s, enum log_level *out)
{
    if (!s)
        return ERR_INVALID;
    for (int i = LOG_TRACE; i <= LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            if (out)
                *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "WARNING") == 0) {
        if (out)
            *out = LOG_WARN;
        return 0;
    }
    return ERR_INVALID;
}

int log_format_parse(const char *s, enum log_format *out)
{
    if (!s)
        return ERR_INVALID;
    enum log_format f;
    if (strcasecmp(s, "PLAIN") == 0)
        f = LOG_FORMAT_PLAIN;
    else if (strcasecmp(s, "JSON") == 0)
        f = LOG_FORMAT_JSON;
    else
        return ERR_INVALID;
    if (out)
        *out = f;
    return 0;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level > (unsigned)LOG_ERROR)
        return "ERROR";
    return level_names[level];
}

/* ---- internal diagnostics ----------------------------------------------------------- */

/* Reports a problem of the logger itself to stderr, at most once per interval.
 * Called with g_mu held. */
__attribute__((format(printf, 1, 2))) static void internal_error(const char *fmt, ...)
{
    time_t now = time(NULL);
    if (g.last_error_report != 0 && now - g.last_error_report < ERROR_REPORT_INTERVAL_S)
        return;
    g.last_error_report = now;
    va_list ap;
    va_start(ap, fmt);
    fputs("log: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- growable line buffer ----------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool heap;
    bool failed;
};

static void sb_init(struct sbuf *b, char *stack, size_t cap)
{
    b->p = stack;
    b->len = 0;
    b->cap = cap;
    b->heap = false;
    b->failed = false;
}

static bool sb_reserve(struct sbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = b->cap * 2;
    while (cap < b->len + extra)
        cap *= 2;
    char *np = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!np) {
        b->failed = true;
        return false;
    }
    if (!b->heap)
        memcpy(np, b->p, b->len);
    b->p = np;
    b->cap = cap;
    b->heap = true;
    return true;
}

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_putc(struct sbuf *b, char c)
{
    sb_put(b, &c, 1);
}

static void sb_free(struct sbuf *b)
{
    if (b->heap)
        free(b->p);
}

/* Length of the valid UTF-8 sequence at p (2..4), or 0 if it is not valid UTF-8. */
static size_t utf8_seq_len(const unsigned char *p)
{
    unsigned c = p[0];
#define CONT(x) ((x) >= 0x80 && (x) <= 0xBF)
    if (c >= 0xC2 && c <= 0xDF)
        return CONT(p[1]) ? 2 : 0;
    if (c == 0xE0)
        return (p[1] >= 0xA0 && p[1] <= 0xBF && CONT(p[2])) ? 3 : 0;
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        return (CONT(p[1]) && CONT(p[2])) ? 3 : 0;
    if (c == 0xED) /* excludes UTF-16 surrogates */
        return (p[1] >= 0x80 && p[1] <= 0x9F && CONT(p[2])) ? 3 : 0;
    if (c == 0xF0)
        return (p[1] >= 0x90 && p[1] <= 0xBF && CONT(p[2]) && CONT(p[3])) ? 4 : 0;
    if (c >= 0xF1 && c <= 0xF3)
        return (CONT(p[1]) && CONT(p[2]) && CONT(p[3])) ? 4 : 0;
    if (c == 0xF4)
        return (p[1] >= 0x80 && p[1] <= 0x8F && CONT(p[2]) && CONT(p[3])) ? 4 : 0;
#undef CONT
    return 0;
}

/* Appends s as a JSON string literal; invalid UTF-8 bytes become U+FFFD. */
static void sb_json_string(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    sb_putc(b, '"');
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)c);
            p++;
        } else if (c < 0x20 || c == 0x7F) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
            sb_put(b, esc, sizeof esc);
            p++;
        } else if (c < 0x80) {
            sb_putc(b, (char)c);
            p++;
        } else {
            size_t n = utf8_seq_len(p);
            if (n) {
                sb_put(b, (const char *)p, n);
                p += n;
            } else {
                sb_puts(b, "\\ufffd");
                p++;
            }
        }
    }
    sb_putc(b, '"');
}

/* Control characters (newlines included) become spaces: one message, one line. */
static void sanitize(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7F)
            *p = ' ';
    }
}

/* ---- file writer -------------------------------------------------------------------- */

/* Creates the missing directories above path (mode 0700). */
static void make_parent_dirs(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        (void)mkdir(copy, 0700); /* EEXIST is normal; open() reports real failures */
        *p = '/';
    }
    free(copy);
}

/* Opens path for appending (created 0600); returns the fd or -1 with errno set. */
static int open_log_file(const char *path, int64_t *size, bool *regular)
{
    make_parent_dirs(path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    *size = S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
    *regular = S_ISREG(st.st_mode);
    return fd;
}

/* Splits path into the part before the extension and the extension (Go filepath.Ext:
 * from the last '.' of the last path element). Returns the length of the prefix. */
static size_t ext_split(const char *path, const char **ext)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot)
        dot = path + strlen(path);
    *ext = dot;
    return (size_t)(dot - path);
}

static void format_backup_ts(char out[64], int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char head[32];
    strftime(head, sizeof head, "%Y-%m-%dT%H-%M-%S", &tm);
    snprintf(out, 64, "%s.%03d", head, (int)(ms % 1000));
}

/* Parses "YYYY-MM-DDTHH-MM-SS.mmm" (exactly BACKUP_TS_LEN chars) into ms since epoch. */
static bool parse_backup_ts(const char *s, int64_t *ms)
{
    static const char pattern[] = "dddd-dd-ddTdd-dd-dd.ddd";
    for (size_t i = 0; i < BACKUP_TS_LEN; i++) {
        if (pattern[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pattern[i])
            return false;
    }
#define NUM2(i) ((s[i] - '0') * 10 + (s[(i) + 1] - '0'))
    struct tm tm = {0};
    tm.tm_year = NUM2(0) * 100 + NUM2(2) - 1900;
    tm.tm_mon = NUM2(5) - 1;
    tm.tm_mday = NUM2(8);
    tm.tm_hour = NUM2(11);
    tm.tm_min = NUM2(14);
    tm.tm_sec = NUM2(17);
#undef NUM2
    int millis = (s[20] - '0') * 100 + (s[21] - '0') * 10 + (s[22] - '0');
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *ms = (int64_t)t * 1000 + millis;
    return true;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Builds a backup name for g.path that is not taken yet (neither plain nor .gz): the
 * rotation time, but always later than the previous backup's (several rotations can fall
 * in one millisecond) and advanced by 1 ms per collision, so names stay unique and sort
 * in rotation order; otherwise pruning could drop the newest backup. */
static char *backup_name(void)
{
    const char *ext;
    size_t prefix_len = ext_split(g.path, &ext);
    size_t cap = strlen(g.path) + 1 + 64 + 4;
    char *name = malloc(cap);
    if (!name)
        return NULL;
    int64_t ms = now_ms();
    if (ms <= g.last_backup_ms)
        ms = g.last_backup_ms + 1;
    for (int attempt = 0; attempt < 100000; attempt++, ms++) {
        char ts[64];
        format_backup_ts(ts, ms);
        snprintf(name, cap, "%.*s-%s%s", (int)prefix_len, g.path, ts, ext);
        size_t n = strlen(name);
        struct stat st;
        if (lstat(name, &st) == 0)
            continue;
        memcpy(name + n, ".gz", 4);
        bool gz_taken = lstat(name, &st) == 0;
        name[n] = '\0';
        if (!gz_taken) {
            g.last_backup_ms = ms;
            return name;
        }
    }
    free(name);
    errno = EEXIST;
    return NULL;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* gzips src to src.gz (0600, src's mtime kept) and removes src. */
static int gzip_file(const char *src)
{
    size_t n = strlen(src);
    char *dst = malloc(n + 4);
    if (!dst)
        return ERR_NOMEM;
    memcpy(dst, src, n);
    memcpy(dst + n, ".gz", 4);

    int rc = ERR_IO;
    gzFile gz = NULL;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        goto out;
    struct stat st;
    if (fstat(in, &st) != 0)
        goto out;
    int outfd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (outfd < 0)
        goto out;
    gz = gzdopen(outfd, "wb");
    if (!gz) {
        close(outfd);
        unlink(dst);
        goto out;
    }
    char buf[65536];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (r == 0) {
            rc = 0;
            break;
        }
        if (gzwrite(gz, buf, (unsigned)r) != (int)r)
            break;
    }
    if (gzclose(gz) != Z_OK)
        rc = ERR_IO;
    gz = NULL;
    if (rc != 0) {
        unlink(dst);
        goto out;
    }
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    utimensat(AT_FDCWD, dst, times, 0);
    if (unlink(src) != 0)
        rc = ERR_IO;
out:
    if (rc != 0)
        internal_error("cannot compress %s: %s", src, strerror(errno));
    if (in >= 0)
        close(in);
    free(dst);
    return rc;
}

struct backup {
    int64_t ts_ms;
    time_t mtime;   /* newest of the plain and .gz file */
    bool plain, gz; /* which of name and name.gz exist */
    char *name;     /* full path without ".gz" */
};

static int backup_cmp_newest_first(const void *a, const void *b)
{
    const struct backup *x = a, *y = b;
    if (x->ts_ms != y->ts_ms)
        return x->ts_ms > y->ts_ms ? -1 : 1;
    return strcmp(y->name, x->name);
}

static void remove_backup(const struct backup *bk)
{
    if (bk->plain && unlink(bk->name) != 0 && errno != ENOENT)
        internal_error("cannot remove %s: %s", bk->name, strerror(errno));
    if (bk->gz) {
        size_t n = strlen(bk->name);
        char gzname[PATH_MAX];
        if (n + 4 <= sizeof gzname) {
            memcpy(gzname, bk->name, n);
            memcpy(gzname + n, ".gz", 4);
            if (unlink(gzname) != 0 && errno != ENOENT)
                internal_error("cannot remove %s: %s", gzname, strerror(errno));
        }
    }
}

/* Applies compress, maxbackups and maxage to the rotated files of g.path. */
static void mill(void)
{
    if (!g.compress && g.max_backups <= 0 && g.max_age_days <= 0)
        return;

    const char *ext;
    size_t prefix_len = ext_split(g.path, &ext);
    const char *slash = strrchr(g.path, '/');
    char *dir = slash ? strndup(g.path, (size_t)(slash - g.path) + (slash == g.path)) : strdup(".");
    if (!dir)
        return;
    /* file-name prefix: "<base-without-ext>-" */
    const char *base = slash ? slash + 1 : g.path;
    size_t base_prefix_len = prefix_len - (size_t)(base - g.path);
    size_t ext_len = strlen(ext);

    struct backup *list = NULL;
    size_t count = 0, cap = 0;
    DIR *d = opendir(dir);
    if (!d) {
        internal_error("cannot list %s: %s", dir, strerror(errno));
        free(dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        if (len < base_prefix_len + 1 + BACKUP_TS_LEN + ext_len)
            continue;
        if (strncmp(nm, base, base_prefix_len) != 0 || nm[base_prefix_len] != '-')
            continue;
        const char *rest = nm + base_prefix_len + 1 + BACKUP_TS_LEN;
        bool is_gz;
        if (strcmp(rest, ext) == 0)
            is_gz = false;
        else if (strncmp(rest, ext, ext_len) == 0 && strcmp(rest + ext_len, ".gz") == 0)
            is_gz = true;
        else
            continue;
        int64_t ts;
        if (!parse_backup_ts(nm + base_prefix_len + 1, &ts))
            continue;
        size_t plain_len = len - (is_gz ? 3 : 0);
        char *full = NULL;
        if (asprintf(&full, "%s/%.*s", dir, (int)plain_len, nm) < 0)
            continue;
        struct stat st;
        char *statname = NULL;
        if (asprintf(&statname, "%s/%s", dir, nm) < 0 || lstat(statname, &st) != 0 ||
            !S_ISREG(st.st_mode)) {
            free(statname);
            free(full);
            continue;
        }
        free(statname);
        struct backup *bk = NULL;
        for (size_t i = 0; i < count; i++) {
            if (strcmp(list[i].name, full) == 0) {
                bk = &list[i];
                break;
            }
        }
        if (bk) {
            free(full);
        } else {
            if (count == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                struct backup *nl = realloc(list, ncap * sizeof *nl);
                if (!nl) {
                    free(full);
                    break;
                }
                list = nl;
                cap = ncap;
            }
            bk = &list[count++];
            *bk = (struct backup){.ts_ms = ts, .name = full};
        }
        if (is_gz)
            bk->gz = true;
        else
            bk->plain = true;
        if (st.st_mtime > bk->mtime)
            bk->mtime = st.st_mtime;
    }
    closedir(d);

    if (count > 1)
        qsort(list, count, sizeof *list, backup_cmp_newest_first);
    time_t cutoff = time(NULL) - (time_t)(g.max_age_days > 0 ? g.max_age_days * 86400 : 0);
    for (size_t i = 0; i < count; i++) {
        struct backup *bk = &list[i];
        bool too_many = g.max_backups > 0 && (int64_t)i >= g.max_backups;
        bool too_old = g.max_age_days > 0 && bk->mtime < cutoff;
        if (too_many || too_old)
            remove_backup(bk);
        else if (g.compress && bk->plain)
            gzip_file(bk->name); /* also redoes a .gz left half-written by a crash */
        free(bk->name);
    }
    free(list);
    free(dir);
}

/* Moves the current file aside, opens a fresh one, then compresses and prunes backups. */
static void rotate(void)
{
    char *backup = backup_name();
    if (!backup) {
        internal_error("cannot name a backup of %s: %s", g.path, strerror(errno));
        return;
    }
    if (rename(g.path, backup) != 0) {
        internal_error("cannot rotate %s: %s", g.path, strerror(errno));
        free(backup);
        return;
    }
    close(g.fd);
    g.fd = open_log_file(g.path, &g.size, &g.regular);
    if (g.fd < 0)
        internal_error("cannot open log file %s: %s", g.path, strerror(errno));
    if (g.compress)
        gzip_file(backup);
    free(backup);
    mill();
}

static int64_t max_file_bytes(void)
{
    if (g.max_size_mb <= 0)
        return 0;
    if (g.max_size_mb > INT64_MAX / g.bytes_per_mb)
        return 0; /* effectively unlimited */
    return g.max_size_mb * g.bytes_per_mb;
}

/* Appends one line to the file writer, rotating first when it would overflow. */
static void file_write(const char *line, size_t len)
{
    if (g.fd < 0) {
        g.fd = open_log_file(g.path, &g.size, &g.regular);
        if (g.fd < 0) {
            internal_error("cannot open log file %s: %s", g.path, strerror(errno));
            fwrite(line, 1, len, stderr);
            return;
        }
    }
    int64_t max = max_file_bytes();
    if (max > 0 && g.regular && g.size > 0 && g.size + (int64_t)len > max)
        rotate();
    if (g.fd < 0) {
        fwrite(line, 1, len, stderr);
        return;
    }
    if (!write_all(g.fd, line, len)) {
        internal_error("cannot write log file %s: %s", g.path, strerror(errno));
        fwrite(line, 1, len, stderr);
        return;
    }
    g.size += (int64_t)len;
}

/* ---- configuration ------------------------------------------------------------------ */

/* True when $JOURNAL_STREAM ("<device>:<inode>", set by systemd) names what stdout is. */
static bool stdout_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    if (!v || !v[0])
        return false;
    unsigned long long dev, ino;
    char extra;
    if (sscanf(v, "%llu:%llu%c", &dev, &ino, &extra) != 2)
        return false;
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int log_configure(const struct log_options *opts, struct err *e)
{
    if (!opts)
        return err_set(e, ERR_INVALID, "log: no options");
    if ((unsigned)opts->level > (unsigned)LOG_ERROR)
        return err_set(e, ERR_INVALID, "log: invalid level %d", (int)opts->level);
    if (opts->format != LOG_FORMAT_PLAIN && opts->format != LOG_FORMAT_JSON)
        return err_set(e, ERR_INVALID, "log: invalid format %d", (int)opts->format);
    if (opts->max_size_mb < 0 || opts->max_age_days < 0 || opts->max_backups < 0)
        return err_set(e, ERR_INVALID, "log: file-writer limits must not be negative");

    char *path = NULL;
    int fd = -1;
    int64_t size = 0;
    bool regular = false;
    if (opts->file && opts->file[0]) {
        path = strdup(opts->file);
        if (!path)
            return err_set(e, ERR_NOMEM, "log: out of memory");
        fd = open_log_file(path, &size, &regular);
        if (fd < 0) {
            int saved = errno;
            free(path);
            return err_set(e, ERR_IO, "cannot open log file %s: %s", opts->file, strerror(saved));
        }
    }

    pthread_mutex_lock(&g_mu);
    if (g.fd >= 0)
        close(g.fd);
    free(g.path);
    g.path = path;
    g.fd = fd;
    g.size = size;
    g.regular = regular;
    g.format = opts->format;
    g.to_stdout = opts->to_stdout;
    g.stdout_journal = opts->to_stdout && stdout_is_journal();
    g.to_stderr = false;
    g.max_size_mb = opts->max_size_mb;
    g.max_age_days = opts->max_age_days;
    g.max_backups = opts->max_backups;
    g.compress = opts->compress;
    atomic_store(&g_level, (int)opts->level);
    pthread_mutex_unlock(&g_mu);
    return 0;
}

void log_shutdown(void)
{
    pthread_mutex_lock(&g_mu);
    if (g.fd >= 0)
        close(g.fd);
    g.fd = -1;
    free(g.path);
    g.path = NULL;
    if (g.to_stdout)
        fflush(stdout);
    g.to_stdout = false;
    g.to_stderr = true;
    pthread_mutex_unlock(&g_mu);
}

void log_set_rotation_unit_for_tests(int64_t bytes_per_mb)
{
    pthread_mutex_lock(&g_mu);
    g.bytes_per_mb = bytes_per_mb > 0 ? bytes_per_mb : DEFAULT_BYTES_PER_MB;
    pthread_mutex_unlock(&g_mu);
}

/* ---- writing ------------------------------------------------------------------------ */

bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load_explicit(&g_level, memory_order_relaxed);
}

/* syslog priorities for the journal's <N> prefix: debug 7, info 6, warning 4, err 3. */
static char journal_priority(enum log_level level)
{
    switch (level) {
    case LOG_TRACE:
    case LOG_DEBUG: return '7';
    case LOG_INFO: return '6';
    case LOG_WARN: return '4';
    default: return '3';
    }
}

/* One log line; for the journal it starts with <N> and PLAIN lines carry no timestamp. */
static void format_line(struct sbuf *b, enum log_level level, const char *module, const char *msg,
                        bool journal)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char date[32], stamp[40];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp, sizeof stamp, "%s.%03dZ", date, (int)(ts.tv_nsec / 1000000));
    const char *lvl = log_level_name(level);
    bool has_module = module && module[0];
    if (journal) {
        char prefix[3] = {'<', journal_priority(level), '>'};
        sb_put(b, prefix, sizeof prefix);
    }

    if (g.format == LOG_FORMAT_JSON) {
        sb_puts(b, "{\"time\":\"");
        sb_puts(b, stamp);
        sb_puts(b, "\",\"level\":\"");
        sb_puts(b, lvl);
        sb_putc(b, '"');
        if (has_module) {
            sb_puts(b, ",\"module\":");
            sb_json_string(b, module);
        }
        sb_puts(b, ",\"msg\":");
        sb_json_string(b, msg);
        sb_puts(b, "}\n");
    } else {
        if (!journal) {
            sb_puts(b, stamp);
            sb_putc(b, ' ');
        }
        sb_puts(b, lvl);
        sb_putc(b, ' ');
        if (has_module) {
            sb_putc(b, '[');
            sb_puts(b, module);
            sb_puts(b, "] ");
        }
        sb_puts(b, msg);
        sb_putc(b, '\n');
    }
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    if ((int)level < LOG_TRACE)
        level = LOG_TRACE;
    if ((int)level > LOG_ERROR)
        level = LOG_ERROR;
    if (!log_enabled(level))
        return;
    int saved_errno = errno;

    char msgbuf[1024];
    char *msg = msgbuf;
    va_list ap;
    int n = 0;
    msgbuf[0] = '\0';
    if (fmt) {
        va_start(ap, fmt);
        n = vsnprintf(msgbuf, sizeof msgbuf, fmt, ap);
        va_end(ap);
    }
    if (n < 0) {
        snprintf(msgbuf, sizeof msgbuf, "(unformattable log message)");
    } else if ((size_t)n >= sizeof msgbuf) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            va_start(ap, fmt);
            vsnprintf(big, (size_t)n + 1, fmt, ap);
            va_end(ap);
            msg = big;
        } /* else: keep the truncated message */
    }
    sanitize(msg);

    char modbuf[64];
    char *mod = NULL;
    if (module && module[0]) {
        snprintf(modbuf, sizeof modbuf, "%s", module);
        sanitize(modbuf);
        mod = modbuf;
    }

    char linebuf[1280], journalbuf[1280];
    struct sbuf line, journal_line;
    sb_init(&line, linebuf, sizeof linebuf);
    sb_init(&journal_line, journalbuf, sizeof journalbuf);

    pthread_mutex_lock(&g_mu);
    format_line(&line, level, mod, msg, false);
    bool stdout_journal = g.to_stdout && g.stdout_journal;
    if (stdout_journal)
        format_line(&journal_line, level, mod, msg, true);
    if (!line.failed) {
        if (g.to_stderr)
            fwrite(line.p, 1, line.len, stderr);
        if (g.to_stdout && !stdout_journal) {
            fwrite(line.p, 1, line.len, stdout);
            fflush(stdout);
        }
        if (g.path)
            file_write(line.p, line.len);
    }
    if (stdout_journal && !journal_line.failed) {
        fwrite(journal_line.p, 1, journal_line.len, stdout);
        fflush(stdout);
    }
    pthread_mutex_unlock(&g_mu);

    sb_free(&line);
    sb_free(&journal_line);
    if (msg != msgbuf)
        free(msg);
    errno = saved_errno;
}
