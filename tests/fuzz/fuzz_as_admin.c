/*
 * fuzz_as_admin.c - libFuzzer target for admin (security) reply decoding: a type-2 proto frame
 * (header + LOGIN/AUTHENTICATE reply body with its fields) as read from a socket.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aerospike/as_auth.h"
#include "aerospike/as_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err e;
    err_clear(&e);
    if (size < AS_PROTO_HEADER_SIZE)
        return 0;
    struct as_proto_header h;
    if (as_proto_header_decode(data, &h, &e) != 0)
        return 0;
    size_t body = size - AS_PROTO_HEADER_SIZE;
    if (h.size < body)
        body = (size_t)h.size;
    uint8_t *copy = malloc(body ? body : 1);
    if (!copy)
        return 0;
    memcpy(copy, data + AS_PROTO_HEADER_SIZE, body);
    struct as_session s = {0};
    int result = 0;
    uint32_t ttl = 0;
    if (as_auth_reply_decode(copy, body, &result, &s, &ttl, &e) == 0 && s.token && s.token_len) {
        volatile uint8_t sink = s.token[s.token_len - 1];
        (void)sink;
    }
    as_session_clear(&s);
    (void)as_auth_reply_decode(copy, body, &result, NULL, NULL, &e);
    free(copy);
    return 0;
}
