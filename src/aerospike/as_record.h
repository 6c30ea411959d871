/*
 * as_record.h - the record *view* shared by scans (records handed to a callback) and writes
 * (records to store): namespace, set, digest, user key, generation, void-time and bins.
 *
 * Every string and byte value is a pointer + length into memory somebody else owns (the
 * scan's receive buffer, or the caller's record); nothing is NUL-terminated. The layout of
 * as_value / as_bin / as_record is member-for-member the one of asb_value / asb_bin /
 * asb_record in src/asb/asb.h, so a job can hand a scanned record to the .asb encoder (or a
 * decoded .asb record to a write) without copying values; nothing here depends on asb.
 *
 * Value members by particle type: INTEGER -> i, FLOAT -> d, BOOL -> b, NULL -> none, every
 * other type -> data/len (LIST/MAP/HLL are the raw particle bytes as the server sent them;
 * GEOJSON is the JSON text: the server's cell header is skipped on reads and a zero header
 * is added on writes).
 */
#ifndef ABS_AEROSPIKE_AS_RECORD_H
#define ABS_AEROSPIKE_AS_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "aerospike/as_proto.h"

struct as_value {
    uint8_t type; /* enum as_particle_type; NULL (0) also means "no user key" */
    bool b;
    uint32_t len;
    int64_t i;
    double d;
    const uint8_t *data;
};

struct as_bin {
    const char *name;
    uint32_t name_len;
    struct as_value v;
};

struct as_record {
    const char *ns;
    uint32_t ns_len;
    const char *set;  /* set_len 0 = no set */
    uint32_t set_len;
    uint8_t digest[AS_DIGEST_SIZE];
    struct as_value key; /* type NULL: no stored key */
    uint16_t generation;
    uint32_t void_time;  /* citrusleaf seconds; 0 = never expires */
    uint32_t n_bins;
    const struct as_bin *bins;
};

/* Relative TTL for a write from a void-time (citrusleaf seconds, 0 = never expires) at
 * `now_unix` (seconds since 1970): 0 -> AS_TTL_NEVER_EXPIRE; false when already expired. */
static inline bool as_ttl_from_void_time(uint32_t void_time, int64_t now_unix, uint32_t *ttl)
{
    if (void_time == 0) {
        *ttl = AS_TTL_NEVER_EXPIRE;
        return true;
    }
    int64_t left = (int64_t)void_time - (now_unix - (int64_t)AS_CITRUSLEAF_EPOCH);
    if (left <= 0)
        return false;
    *ttl = left > (int64_t)UINT32_MAX - 3 ? UINT32_MAX - 3 : (uint32_t)left;
    return true;
}

#endif
