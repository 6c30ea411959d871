/*
 * zip.c - minimal in-memory ZIP archive writer (local headers, central directory, end of
 * central directory record; PKWARE APPNOTE 6.3, no ZIP64, no encryption).
 */
#include "util/zip.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#define ZIP_MAX_ENTRIES 65535u
#define ZIP_MAX_32 0xffffffffu
#define ZIP_VERSION_NEEDED 20 /* 2.0: deflate */
#define ZIP_MADE_BY ((3 << 8) | 20) /* unix, 2.0 */
#define ZIP_FLAG_UTF8 0x0800
#define ZIP_METHOD_STORED 0
#define ZIP_METHOD_DEFLATE 8

struct zip_entry {
    char *name;
    size_t name_len;
    uint32_t crc;
    uint32_t csize;
    uint32_t usize;
    uint16_t method;
    uint32_t offset; /* of the local header */
};

struct zip {
    uint8_t *buf;
    size_t len, cap;
    struct zip_entry *ents;
    size_t n, ents_cap;
    uint16_t dos_time, dos_date;
    int finished;
};

static int grow(struct zip *z, size_t more)
{
    if (z->len + more <= z->cap)
        return 0;
    size_t cap = z->cap ? z->cap : 4096;
    while (cap < z->len + more)
        cap *= 2;
    uint8_t *b = realloc(z->buf, cap);
    if (!b)
        return -1;
    z->buf = b;
    z->cap = cap;
    return 0;
}

/* Callers reserve space with grow() first. */
static void put16(struct zip *z, uint16_t v)
{
    z->buf[z->len++] = (uint8_t)(v & 0xff);
    z->buf[z->len++] = (uint8_t)(v >> 8);
}

static void put32(struct zip *z, uint32_t v)
{
    put16(z, (uint16_t)(v & 0xffff));
    put16(z, (uint16_t)(v >> 16));
}

static void put_bytes(struct zip *z, const void *p, size_t n)
{
    if (n)
        memcpy(z->buf + z->len, p, n);
    z->len += n;
}

struct zip *zip_new(void)
{
    struct zip *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm) && tm.tm_year >= 80) {
        z->dos_time = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
        z->dos_date = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
    } else {
        z->dos_time = 0;
        z->dos_date = (uint16_t)((1 << 5) | 1); /* 1980-01-01 */
    }
    return z;
}

void zip_free(struct zip *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->n; i++)
        free(z->ents[i].name);
    free(z->ents);
    free(z->buf);
    free(z);
}

/* Raw deflate of data into a malloc'ed buffer; *out = NULL when it would not be smaller. */
static int deflate_raw(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len < 16 || len > ZIP_MAX_32)
        return 0;
    z_stream s;
    memset(&s, 0, sizeof s);
    if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    uLong bound = deflateBound(&s, (uLong)len);
    uint8_t *buf = malloc(bound);
    if (!buf) {
        deflateEnd(&s);
        return -1;
    }
    s.next_in = (Bytef *)(uintptr_t)data;
    s.avail_in = (uInt)len;
    s.next_out = buf;
    s.avail_out = (uInt)bound;
    int rc = deflate(&s, Z_FINISH);
    size_t produced = (size_t)s.total_out;
    deflateEnd(&s);
    if (rc != Z_STREAM_END || produced >= len) {
        free(buf);
        return rc == Z_STREAM_END ? 0 : -1;
    }
    *out = buf;
    *out_len = produced;
    return 0;
}

int zip_add(struct zip *z, const char *name, const void *data, size_t len, struct err *e)
{
    if (!z || z->finished)
        return err_set(e, ERR_INVALID, "zip: archive already finished");
    size_t nl = name ? strlen(name) : 0;
    if (nl == 0 || nl > 0xffff || name[0] == '/')
        return err_set(e, ERR_INVALID, "zip: invalid entry name");
    if (len && !data)
        return err_set(e, ERR_INVALID, "zip: %s: no data", name);
    if (z->n >= ZIP_MAX_ENTRIES)
        return err_set(e, ERR_INVALID, "zip: too many entries");
    if (len > ZIP_MAX_32)
        return err_set(e, ERR_INVALID, "zip: %s: entry too large", name);

    uint8_t *packed;
    size_t packed_len;
    if (deflate_raw(data, len, &packed, &packed_len))
        return err_set(e, ERR_NOMEM, "zip: %s: deflate failed", name);
    const uint8_t *payload = packed ? packed : (const uint8_t *)data;
    size_t payload_len = packed ? packed_len : len;

    size_t need = 30 + nl + payload_len;
    if (z->len > ZIP_MAX_32 || z->len + need > ZIP_MAX_32) {
        free(packed);
        return err_set(e, ERR_INVALID, "zip: archive too large");
    }
    if (z->n == z->ents_cap) {
        size_t cap = z->ents_cap ? z->ents_cap * 2 : 8;
        struct zip_entry *ne = realloc(z->ents, cap * sizeof *ne);
        if (!ne) {
            free(packed);
            return err_set(e, ERR_NOMEM, "zip: out of memory");
        }
        z->ents = ne;
        z->ents_cap = cap;
    }
    char *nm = malloc(nl + 1);
    if (!nm || grow(z, need)) {
        free(nm);
        free(packed);
        return err_set(e, ERR_NOMEM, "zip: out of memory");
    }
    memcpy(nm, name, nl + 1);

    struct zip_entry *ent = &z->ents[z->n++];
    ent->name = nm;
    ent->name_len = nl;
    ent->crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), len ? (const Bytef *)data : Z_NULL,
                               (uInt)len);
    ent->csize = (uint32_t)payload_len;
    ent->usize = (uint32_t)len;
    ent->method = packed ? ZIP_METHOD_DEFLATE : ZIP_METHOD_STORED;
    ent->offset = (uint32_t)z->len;

    put32(z, 0x04034b50);
    put16(z, ZIP_VERSION_NEEDED);
    put16(z, ZIP_FLAG_UTF8);
    put16(z, ent->method);
    put16(z, z->dos_time);
    put16(z, z->dos_date);
    put32(z, ent->crc);
    put32(z, ent->csize);
    put32(z, ent->usize);
    put16(z, (uint16_t)nl);
    put16(z, 0); /* extra field length */
    put_bytes(z, name, nl);
    put_bytes(z, payload, payload_len);
    free(packed);
    return 0;
}

int zip_finish(struct zip *z, uint8_t **buf, size_t *len, struct err *e)
{
    *buf = NULL;
    *len = 0;
    if (!z || z->finished)
        return err_set(e, ERR_INVALID, "zip: archive already finished");
    size_t need = 22;
    for (size_t i = 0; i < z->n; i++)
        need += 46 + z->ents[i].name_len;
    if (z->len + need > ZIP_MAX_32)
        return err_set(e, ERR_INVALID, "zip: archive too large");
    if (grow(z, need))
        return err_set(e, ERR_NOMEM, "zip: out of memory");

    uint32_t cd_offset = (uint32_t)z->len;
    for (size_t i = 0; i < z->n; i++) {
        const struct zip_entry *ent = &z->ents[i];
        put32(z, 0x02014b50);
        put16(z, ZIP_MADE_BY);
        put16(z, ZIP_VERSION_NEEDED);
        put16(z, ZIP_FLAG_UTF8);
        put16(z, ent->method);
        put16(z, z->dos_time);
        put16(z, z->dos_date);
        put32(z, ent->crc);
        put32(z, ent->csize);
        put32(z, ent->usize);
        put16(z, (uint16_t)ent->name_len);
        put16(z, 0);                      /* extra field length */
        put16(z, 0);                      /* comment length */
        put16(z, 0);                      /* disk number start */
        put16(z, 0);                      /* internal attributes */
        put32(z, (uint32_t)0100644 << 16); /* external: regular file, rw-r--r-- */
        put32(z, ent->offset);
        put_bytes(z, ent->name, ent->name_len);
    }
    uint32_t cd_size = (uint32_t)(z->len - cd_offset);
    put32(z, 0x06054b50);
    put16(z, 0); /* this disk */
    put16(z, 0); /* disk with the central directory */
    put16(z, (uint16_t)z->n);
    put16(z, (uint16_t)z->n);
    put32(z, cd_size);
    put32(z, cd_offset);
    put16(z, 0); /* comment length */

    z->finished = 1;
    *buf = z->buf;
    *len = z->len;
    z->buf = NULL;
    z->len = z->cap = 0;
    return 0;
}
