/*
 * temp_storage.h - local storage in fresh temporary directories for the unit tests: opening
 * and closing it, a cmocka fixture holding one (struct temp_fx), and removing a directory
 * tree. Static inline helpers for the tests that include it after cmocka.h.
 */
#ifndef ABS_TEST_TEMP_STORAGE_H
#define ABS_TEST_TEMP_STORAGE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "config/config.h"
#include "storage/storage.h"

static inline int rm_tree_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Removes `dir` and everything below it (errors ignored). */
static inline void rm_tree(const char *dir)
{
    nftw(dir, rm_tree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Local storage rooted at `path`; 0, or -1 with the error on stderr. */
static inline int open_local_storage(const char *path, struct stor **out)
{
    struct cfg_local_storage l = {.path = (char *)path};
    struct cfg_storage c = {.local = &l};
    struct err e = {0};
    if (stor_open(&c, out, &e) != 0) {
        fprintf(stderr, "open: %s\n", e.msg);
        return -1;
    }
    return 0;
}

/* mkdtemp(`dir`, a "...XXXXXX" template) and local storage rooted there; 0 or -1. */
static inline int temp_storage_open(char *dir, struct stor **out)
{
    if (!mkdtemp(dir))
        return -1;
    return open_local_storage(dir, out);
}

/* Closes the storage (NULL after) and removes its temporary directory. */
static inline void temp_storage_close(struct stor **s, const char *dir)
{
    stor_close(*s);
    *s = NULL;
    rm_tree(dir);
}

/* A test's temporary directory with local storage rooted at <dir>/root. */
struct temp_fx {
    char dir[64];
    char root[128];
    struct stor *s;
};

/* For a cmocka setup: *state gets a struct temp_fx made from the mkdtemp template `tmpl`. */
static inline int temp_fx_setup(void **state, const char *tmpl)
{
    struct temp_fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", tmpl);
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->root, sizeof f->root, "%s/root", f->dir);
    if (open_local_storage(f->root, &f->s) != 0)
        return -1;
    *state = f;
    return 0;
}

static inline int temp_fx_teardown(void **state)
{
    struct temp_fx *f = *state;
    stor_close(f->s);
    rm_tree(f->dir);
    free(f);
    return 0;
}

#endif
