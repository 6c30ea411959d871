/*
 * fuzz_as_info.c - libFuzzer target for info reply parsing: the body of a type-1 reply is split
 * into "command\tvalue" lines, and every value goes through the error-form recogniser and every
 * typed parser of as_info.h (namespace stats, sets, sindex-list, udf-list, udf-get, peers,
 * services, replicas) plus the key=value and list helpers. Values are exact-size heap copies so
 * that an over-read is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aerospike/as_info.h"
#include "aerospike/as_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replicas_cb(void *ctx, const char *ns, uint32_t regime, unsigned column,
                       unsigned n_columns, const uint8_t bitmap[AS_PARTITIONS / 8])
{
    volatile uint8_t *sink = ctx;
    *sink ^= (uint8_t)(bitmap[0] ^ bitmap[AS_PARTITIONS / 8 - 1] ^ (uint8_t)ns[0] ^ regime ^ column ^
                       n_columns);
    return 0;
}

static void parse_value(const char *v, size_t len)
{
    struct err e;
    err_clear(&e);
    int code;
    const char *msg;
    size_t msg_len;
    (void)as_info_value_error(v, len, &code, &msg, &msg_len);
    (void)as_info_check("node", "cmd", v, len, &code, &e);

    int64_t i64;
    uint64_t u64;
    (void)as_info_parse_i64(v, len, &i64);
    (void)as_info_parse_u64(v, len, &u64);
    (void)as_info_kv_u64(v, len, ';', "objects", &u64);
    const char *kv;
    size_t kv_len;
    (void)as_info_kv(v, len, ':', "set", &kv, &kv_len);

    struct as_strv sv = {0};
    if (as_strv_split(v, len, ';', &sv, &e) == 0)
        as_strv_free(&sv);

    struct as_ns_info ns;
    (void)as_info_parse_namespace(v, len, &ns, &e);

    struct as_set_info *sets = NULL;
    size_t n = 0;
    if (as_info_parse_sets(v, len, &sets, &n, &e) == 0)
        free(sets);

    struct as_sindex_info *sindexes = NULL;
    if (as_info_parse_sindex_list(v, len, &sindexes, &n, &e) == 0) {
        char cmd[2048];
        for (size_t k = 0; k < n; k++)
            (void)as_info_sindex_create_cmd(&sindexes[k], cmd, sizeof cmd, &e);
        as_sindex_list_free(sindexes, n);
    }

    struct as_udf_info *udfs = NULL;
    if (as_info_parse_udf_list(v, len, &udfs, &n, &e) == 0)
        free(udfs);
    uint8_t *content = NULL;
    size_t content_len;
    if (as_info_parse_udf_get(v, len, &content, &content_len, &e) == 0)
        free(content);

    struct as_peer *peers = NULL;
    int64_t gen;
    if (as_info_parse_peers(v, len, &gen, &peers, &n, &e) == 0)
        free(peers);
    peers = NULL;
    if (as_info_parse_services(v, len, &peers, &n, &e) == 0)
        free(peers);

    volatile uint8_t sink = 0;
    (void)as_info_parse_replicas(v, len, replicas_cb, (void *)&sink, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    const char *cur = body, *end = body + size;
    struct as_info_line line;
    struct err e;
    err_clear(&e);
    while (cur < end && as_info_next_line(&cur, end, &line, &e) == 1) {
        const char *name, *params;
        size_t name_len, params_len;
        as_info_cmd_split(line.name, line.name_len, &name, &name_len, &params, &params_len);
        char *value = malloc(line.value_len ? line.value_len : 1);
        if (!value)
            break;
        memcpy(value, line.value, line.value_len);
        parse_value(value, line.value_len);
        free(value);
    }
    struct as_info_line found;
    (void)as_info_find(body, size, "namespaces", &found);
    free(body);
    return 0;
}
