/*
 * test_zip.c - the in-memory ZIP writer (util/zip): archive structure parsed back here
 * (local headers, central directory, end record, CRC-32, stored and deflated payloads),
 * and, when the `unzip` command exists, `unzip -l` / `unzip -p` over a written archive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <zlib.h>

#include "util/zip.h"

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

struct parsed {
    char name[64];
    uint16_t method;
    uint8_t *data; /* uncompressed, malloc'ed */
    size_t len;
};

/* Parses an archive through its central directory, verifying each local header and CRC. */
static size_t parse_archive(const uint8_t *buf, size_t len, struct parsed *out, size_t max)
{
    assert_true(len >= 22);
    const uint8_t *eocd = buf + len - 22; /* no archive comment */
    assert_int_equal(rd32(eocd), 0x06054b50);
    uint16_t n = rd16(eocd + 10);
    assert_int_equal(rd16(eocd + 8), n);
    uint32_t cd_size = rd32(eocd + 12), cd_off = rd32(eocd + 16);
    assert_int_equal((size_t)cd_off + cd_size, len - 22);
    assert_true(n <= max);

    const uint8_t *p = buf + cd_off;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rd32(p), 0x02014b50);
        uint16_t method = rd16(p + 10);
        uint32_t crc = rd32(p + 16), csize = rd32(p + 20), usize = rd32(p + 24);
        uint16_t nl = rd16(p + 28), xl = rd16(p + 30), cl = rd16(p + 32);
        uint32_t loff = rd32(p + 42);
        assert_true(nl < sizeof out[i].name);
        memcpy(out[i].name, p + 46, nl);
        out[i].name[nl] = '\0';
        out[i].method = method;

        const uint8_t *l = buf + loff;
        assert_int_equal(rd32(l), 0x04034b50);
        assert_int_equal(rd16(l + 8), method);
        assert_int_equal(rd32(l + 14), crc);
        assert_int_equal(rd32(l + 18), csize);
        assert_int_equal(rd32(l + 22), usize);
        assert_int_equal(rd16(l + 26), nl);
        assert_memory_equal(l + 30, out[i].name, nl);
        const uint8_t *payload = l + 30 + nl + rd16(l + 28);
        assert_true(payload + csize <= buf + cd_off);

        out[i].len = usize;
        out[i].data = malloc(usize + 1);
        assert_non_null(out[i].data);
        if (method == 0) {
            assert_int_equal(csize, usize);
            memcpy(out[i].data, payload, usize);
        } else {
            assert_int_equal(method, 8);
            z_stream s;
            memset(&s, 0, sizeof s);
            assert_int_equal(inflateInit2(&s, -15), Z_OK);
            s.next_in = (Bytef *)(uintptr_t)payload;
            s.avail_in = csize;
            s.next_out = out[i].data;
            s.avail_out = usize + 1;
            assert_int_equal(inflate(&s, Z_FINISH), Z_STREAM_END);
            assert_int_equal(s.total_out, usize);
            inflateEnd(&s);
        }
        assert_int_equal((uint32_t)crc32(0L, out[i].data, usize), crc);
        p += 46 + nl + xl + cl;
    }
    assert_ptr_equal(p, buf + cd_off + cd_size);
    return n;
}

static const char *const SMALL = "service {\n    cluster-name a\n}\n";

static char *big_text(size_t *len)
{
    /* Compressible: deflate is chosen. */
    size_t cap = 20000;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t n = 0;
    for (int i = 0; n + 64 < cap; i++)
        n += (size_t)sprintf(s + n, "    key-%d value-%d\n", i % 50, i % 7);
    *len = n;
    return s;
}

static void build_two(uint8_t **buf, size_t *len, char **big, size_t *big_len)
{
    struct err e = {0};
    struct zip *z = zip_new();
    assert_non_null(z);
    *big = big_text(big_len);
    assert_int_equal(zip_add(z, "aerospike_0.conf", SMALL, strlen(SMALL), &e), 0);
    assert_int_equal(zip_add(z, "aerospike_1.conf", *big, *big_len, &e), 0);
    assert_int_equal(zip_finish(z, buf, len, &e), 0);
    /* finished: no more entries */
    assert_int_equal(zip_add(z, "x", "y", 1, &e), ERR_INVALID);
    zip_free(z);
}

static void test_parse_back(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len, big_len;
    char *big;
    build_two(&buf, &len, &big, &big_len);

    struct parsed ents[4];
    size_t n = parse_archive(buf, len, ents, 4);
    assert_int_equal(n, 2);
    assert_string_equal(ents[0].name, "aerospike_0.conf");
    assert_int_equal(ents[0].method, 0); /* too small to gain from deflate */
    assert_int_equal(ents[0].len, strlen(SMALL));
    assert_memory_equal(ents[0].data, SMALL, strlen(SMALL));
    assert_string_equal(ents[1].name, "aerospike_1.conf");
    assert_int_equal(ents[1].method, 8);
    assert_int_equal(ents[1].len, big_len);
    assert_memory_equal(ents[1].data, big, big_len);
    assert_true(len < big_len); /* it really was compressed */
    for (size_t i = 0; i < n; i++)
        free(ents[i].data);
    free(big);
    free(buf);
}

static void test_empty_and_errors(void **state)
{
    (void)state;
    struct err e = {0};
    struct zip *z = zip_new();
    assert_non_null(z);
    assert_int_equal(zip_add(z, "", "a", 1, &e), ERR_INVALID);
    assert_int_equal(zip_add(z, "/abs", "a", 1, &e), ERR_INVALID);
    assert_int_equal(zip_add(z, NULL, "a", 1, &e), ERR_INVALID);
    assert_int_equal(zip_add(z, "empty.txt", NULL, 0, &e), 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(zip_finish(z, &buf, &len, &e), 0);
    uint8_t *again;
    size_t again_len;
    assert_int_equal(zip_finish(z, &again, &again_len, &e), ERR_INVALID);
    assert_null(again);
    zip_free(z);
    zip_free(NULL);
    assert_int_equal(zip_finish(NULL, &again, &again_len, &e), ERR_INVALID);

    struct parsed ents[2];
    uint8_t *b2;
    size_t l2;
    struct zip *z2 = zip_new();
    assert_int_equal(zip_add(z2, "empty.txt", NULL, 0, &e), 0);
    assert_int_equal(zip_finish(z2, &b2, &l2, &e), 0);
    zip_free(z2);
    assert_int_equal(parse_archive(b2, l2, ents, 2), 1);
    assert_string_equal(ents[0].name, "empty.txt");
    assert_int_equal(ents[0].len, 0);
    free(ents[0].data);
    free(b2);

    /* An archive with no entries is just the end record. */
    struct zip *z3 = zip_new();
    assert_int_equal(zip_finish(z3, &b2, &l2, &e), 0);
    zip_free(z3);
    assert_int_equal(l2, 22);
    assert_int_equal(parse_archive(b2, l2, ents, 2), 0);
    free(b2);
    free(buf);
}

static int have_unzip(void)
{
    return system("command -v unzip >/dev/null 2>&1") == 0;
}

static char *run(const char *cmd, size_t *len)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 65536, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t r;
    while ((r = fread(out + n, 1, cap - 1 - n, p)) > 0) {
        n += r;
        if (n + 1 == cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
    }
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    *len = n;
    return out;
}

static void test_unzip_tool(void **state)
{
    (void)state;
    if (!have_unzip()) {
        print_message("unzip not installed: skipping the external check\n");
        skip();
    }
    uint8_t *buf;
    size_t len, big_len;
    char *big;
    build_two(&buf, &len, &big, &big_len);

    char path[] = "/tmp/test_zip_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);

    char cmd[256];
    size_t n;
    snprintf(cmd, sizeof cmd, "unzip -tq %s", path);
    char *out = run(cmd, &n);
    assert_non_null(strstr(out, "No errors detected"));
    free(out);

    snprintf(cmd, sizeof cmd, "unzip -l %s", path);
    out = run(cmd, &n);
    assert_non_null(strstr(out, "aerospike_0.conf"));
    assert_non_null(strstr(out, "aerospike_1.conf"));
    assert_non_null(strstr(out, "2 files"));
    free(out);

    snprintf(cmd, sizeof cmd, "unzip -p %s aerospike_0.conf", path);
    out = run(cmd, &n);
    assert_int_equal(n, strlen(SMALL));
    assert_memory_equal(out, SMALL, n);
    free(out);

    snprintf(cmd, sizeof cmd, "unzip -p %s aerospike_1.conf", path);
    out = run(cmd, &n);
    assert_int_equal(n, big_len);
    assert_memory_equal(out, big, n);
    free(out);

    unlink(path);
    free(big);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_back),
        cmocka_unit_test(test_empty_and_errors),
        cmocka_unit_test(test_unzip_tool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
