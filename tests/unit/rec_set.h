/*
 * rec_set.h - the records of a .asb stream as an order-independent set for the codec tests:
 * each record kept as (digest, FNV-1a hash of its non-compact encoding), sorted, so that two
 * streams with the same records in another order or encoding compare equal. Static inline
 * helpers for the tests that include it after cmocka.h.
 */
#ifndef ABS_TEST_REC_SET_H
#define ABS_TEST_REC_SET_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "asb/asb.h"

struct rec_id {
    uint8_t digest[20];
    uint64_t hash;
};

struct rec_set {
    struct rec_id *ids; /* owned by the caller after rec_set_finish */
    size_t n;
    size_t cap;
    uint8_t *buf; /* encoding scratch */
    size_t bcap;
};

static inline uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static inline int rec_id_cmp(const void *a, const void *b)
{
    const struct rec_id *x = a, *y = b;
    int c = memcmp(x->digest, y->digest, 20);
    if (c)
        return c;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

static inline void rec_set_add(struct rec_set *s, const struct asb_record *rec)
{
    size_t need = asb_record_max_size(rec, false), w = 0;
    if (need > s->bcap) {
        s->bcap = need * 2;
        s->buf = realloc(s->buf, s->bcap);
    }
    struct err e;
    assert_int_equal(asb_encode_record(rec, false, s->buf, s->bcap, &w, &e), 0);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
        assert_non_null(s->ids);
    }
    memset(&s->ids[s->n], 0, sizeof s->ids[s->n]);
    memcpy(s->ids[s->n].digest, rec->digest, 20);
    s->ids[s->n].hash = fnv1a(s->buf, w);
    s->n++;
}

/* Sorts the set and frees the scratch buffer; s->ids stays the caller's to free. */
static inline void rec_set_finish(struct rec_set *s)
{
    if (s->n)
        qsort(s->ids, s->n, sizeof *s->ids, rec_id_cmp);
    free(s->buf);
    s->buf = NULL;
    s->bcap = 0;
}

/* The two sorted sets hold the same records. */
static inline void assert_same_rec_ids(const struct rec_id *a, size_t na, const struct rec_id *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_memory_equal(a[i].digest, b[i].digest, 20);
        assert_true(a[i].hash == b[i].hash);
    }
}

#endif
