/*
 * slurp.h - reading a whole test data file into memory (NUL-terminated one byte past its
 * length). A static inline helper for the tests that include it after cmocka.h.
 */
#ifndef ABS_TEST_SLURP_H
#define ABS_TEST_SLURP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The file's bytes and *len (caller frees); fails the test when it cannot be read. */
static inline void *slurp_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    p[n] = 0;
    *len = (size_t)n;
    return p;
}

#endif
