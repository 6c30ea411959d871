/*
 * fuzz_as_msg.c - libFuzzer target for the AS_MSG reply path of our Aerospike client: the proto
 * header, then every message of the body (as_msg_parse), its fields and ops, the scan record
 * decoder and the particle readers. The input is one or more proto frames as read from a
 * socket (a frame whose body runs past the end of the input is cut there).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aerospike/as_proto.h"
#include "aerospike/as_record.h"
#include "aerospike/as_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_particle(const struct as_op *op)
{
    int64_t i;
    double d;
    bool b;
    const uint8_t *json;
    uint32_t json_len;
    switch (op->particle_type) {
    case AS_PARTICLE_INTEGER:
        (void)as_particle_int(op->value, op->value_len, &i);
        break;
    case AS_PARTICLE_FLOAT:
        (void)as_particle_double(op->value, op->value_len, &d);
        break;
    case AS_PARTICLE_BOOL:
        (void)as_particle_bool(op->value, op->value_len, &b);
        break;
    case AS_PARTICLE_GEOJSON:
        if (as_particle_geojson_text(op->value, op->value_len, &json, &json_len) == 0 && json_len)
            (void)json[json_len - 1]; /* the span must lie inside the value */
        break;
    default:
        break;
    }
}

static void walk_message(const struct as_msg_view *v)
{
    struct as_iter it;
    struct as_field f;
    struct as_op op;
    volatile uint8_t sink = 0;
    as_msg_fields(v, &it);
    while (as_field_next(&it, &f))
        if (f.len)
            sink ^= f.data[f.len - 1];
    as_msg_ops(v, &it);
    while (as_op_next(&it, &op)) {
        if (op.name_len)
            sink ^= op.name[op.name_len - 1];
        if (op.value_len)
            sink ^= op.value[op.value_len - 1];
        read_particle(&op);
    }
    (void)as_msg_find_field(v, AS_FIELD_DIGEST, &f);
    struct as_bin *bins = calloc(v->h.n_ops ? v->h.n_ops : 1, sizeof *bins);
    if (!bins)
        return;
    struct as_record r;
    struct err e;
    err_clear(&e);
    (void)as_scan_decode_record(v, &r, bins, &e);
    free(bins);
    (void)sink;
}

static void walk_body(const uint8_t *p, size_t len)
{
    while (len > 0) {
        struct as_msg_view v;
        struct err e;
        err_clear(&e);
        if (as_msg_parse(p, len, &v, &e) != 0 || v.size == 0 || v.size > len)
            return;
        walk_message(&v);
        p += v.size;
        len -= v.size;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    while (size >= AS_PROTO_HEADER_SIZE) {
        struct as_proto_header h;
        struct err e;
        err_clear(&e);
        if (as_proto_header_decode(data, &h, &e) != 0)
            return 0;
        data += AS_PROTO_HEADER_SIZE;
        size -= AS_PROTO_HEADER_SIZE;
        size_t body = h.size < size ? (size_t)h.size : size;
        /* an exact-size copy, so that any over-read past the body is caught */
        uint8_t *copy = malloc(body ? body : 1);
        if (!copy)
            return 0;
        memcpy(copy, data, body);
        if (h.type == AS_PROTO_MSG)
            walk_body(copy, body);
        free(copy);
        data += body;
        size -= body;
    }
    return 0;
}
