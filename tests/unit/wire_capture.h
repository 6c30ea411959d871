/*
 * wire_capture.h - loading the Aerospike wire captures under tests/data/wire/ (JSON lines:
 * conn, dir c2s/s2c, type, scenario, hex of the whole message incl. the proto header) into
 * memory for the protocol tests. Static inline helpers for the tests that include it after
 * cmocka.h and jansson.h.
 */
#ifndef ABS_TEST_WIRE_CAPTURE_H
#define ABS_TEST_WIRE_CAPTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

struct cap_msg {
    int conn;
    int c2s;
    int type;
    char scenario[64];
    uint8_t *bytes; /* whole message incl. proto header, exactly `len` bytes (ASan-exact) */
    size_t len;
};

struct capture {
    struct cap_msg *m;
    size_t n;
};

static inline int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static inline uint8_t *unhex(const char *s, size_t *len)
{
    size_t n = strlen(s) / 2;
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n;
    return b;
}

/* Loads TEST_DATA_DIR/wire/<name>; fails the test when it is missing, malformed or empty. */
static inline void capture_load(struct capture *c, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/wire/%s", TEST_DATA_DIR, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    c->m = NULL;
    c->n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        assert_non_null(j);
        c->m = realloc(c->m, (c->n + 1) * sizeof *c->m);
        assert_non_null(c->m);
        struct cap_msg *m = &c->m[c->n++];
        m->conn = (int)json_integer_value(json_object_get(j, "conn"));
        m->c2s = strcmp(json_string_value(json_object_get(j, "dir")), "c2s") == 0;
        m->type = (int)json_integer_value(json_object_get(j, "type"));
        const char *sc = json_string_value(json_object_get(j, "scenario"));
        snprintf(m->scenario, sizeof m->scenario, "%s", sc ? sc : "");
        m->bytes = unhex(json_string_value(json_object_get(j, "hex")), &m->len);
        json_decref(j);
    }
    free(line);
    fclose(f);
    assert_true(c->n > 0);
}

static inline void capture_free(struct capture *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->m[i].bytes);
    free(c->m);
}

#endif
