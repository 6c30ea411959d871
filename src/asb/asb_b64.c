/*
 * asb_b64.c - base64 as the .asb format uses it: standard alphabet, '=' padding, no line
 * breaks. Encoding: 12 bytes per step with SSSE3 where the CPU has it (bytes regrouped with a
 * shuffle, the four 6-bit fields isolated with two multiplies, characters from a 16-entry
 * offset table), else table driven (12 input bits -> 2 characters, 6 bytes per step);
 * decoding is strict (every character checked, padding only in the final quantum,
 * n % 4 == 0) because the decoder must reject corrupt files rather than guess.
 */
#include "asb/asb.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define B64_HAVE_X86 1
#endif

static const char B64_ALPHABET[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Character -> 6-bit value; 0xff = not in the alphabet ('=' included, handled apart). */
static const uint8_t B64_VALUE[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3e, 0xff, 0xff, 0xff, 0x3f,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
    0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

/* Pairs of output characters for every 12-bit input group: two table loads and two 16-bit
 * stores per 3 input bytes instead of four byte lookups. Built once (pthread_once). */
static uint16_t B64_PAIRS[4096];
static pthread_once_t b64_pairs_once = PTHREAD_ONCE_INIT;

static bool b64_simd;

static void b64_pairs_build(void)
{
    for (unsigned v = 0; v < 4096; v++) {
        uint8_t two[2] = {(uint8_t)B64_ALPHABET[v >> 6], (uint8_t)B64_ALPHABET[v & 63]};
        memcpy(&B64_PAIRS[v], two, 2);
    }
#ifdef B64_HAVE_X86
    __builtin_cpu_init();
    b64_simd = __builtin_cpu_supports("ssse3");
#endif
}

#ifdef B64_HAVE_X86
/* Encodes 12 bytes per step while 16 can be read; returns the input bytes consumed. */
__attribute__((target("ssse3"))) static size_t b64_encode_ssse3(const uint8_t *in, size_t n, char *out)
{
    /* each 32-bit lane gets the bytes b1 b0 b2 b1 of its 3-byte group */
    const __m128i regroup = _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1);
    const __m128i mask_a = _mm_set1_epi32(0x0fc0fc00), mul_a = _mm_set1_epi32(0x04000040);
    const __m128i mask_b = _mm_set1_epi32(0x003f03f0), mul_b = _mm_set1_epi32(0x01000010);
    /* index 0..25 -> 13, 26..51 -> 0, 52..61 -> 1..10, 62 -> 11, 63 -> 12: offsets to ASCII */
    const __m128i offsets = _mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                          '0' - 52, '0' - 52, '0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0);
    const __m128i c51 = _mm_set1_epi8(51), c26 = _mm_set1_epi8(26), c13 = _mm_set1_epi8(13);
    size_t i = 0;
    for (; i + 16 <= n; i += 12, out += 16) {
        __m128i v = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(in + i)), regroup);
        __m128i hi = _mm_mulhi_epu16(_mm_and_si128(v, mask_a), mul_a);
        __m128i lo = _mm_mullo_epi16(_mm_and_si128(v, mask_b), mul_b);
        __m128i idx = _mm_or_si128(hi, lo);
        __m128i sel = _mm_subs_epu8(idx, c51);
        sel = _mm_or_si128(sel, _mm_and_si128(_mm_cmpgt_epi8(c26, idx), c13));
        __m128i chars = _mm_add_epi8(idx, _mm_shuffle_epi8(offsets, sel));
        _mm_storeu_si128((__m128i *)(void *)out, chars);
    }
    return i;
}
#endif

static inline void put_pair(char *o, uint32_t v12)
{
    memcpy(o, &B64_PAIRS[v12], 2);
}

static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

size_t asb_b64_encode(const uint8_t *in, size_t n, char *out)
{
    pthread_once(&b64_pairs_once, b64_pairs_build);
    char *o = out;
    size_t i = 0;
#ifdef B64_HAVE_X86
    if (b64_simd && n >= 16) {
        i = b64_encode_ssse3(in, n, out);
        o += i / 3 * 4;
    }
#endif
    /* 6 input bytes -> 8 characters per step, reading 8 bytes (the 2 extra stay in bounds) */
    for (; i + 8 <= n; i += 6) {
        uint64_t v = load_be64(in + i);
        put_pair(o, (uint32_t)(v >> 52) & 0xfff);
        put_pair(o + 2, (uint32_t)(v >> 40) & 0xfff);
        put_pair(o + 4, (uint32_t)(v >> 28) & 0xfff);
        put_pair(o + 6, (uint32_t)(v >> 16) & 0xfff);
        o += 8;
    }
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        put_pair(o, v >> 12);
        put_pair(o + 2, v & 0xfff);
        o += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        o[0] = B64_ALPHABET[v >> 18];
        o[1] = B64_ALPHABET[(v >> 12) & 63];
        o[2] = i + 1 < n ? B64_ALPHABET[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    return (size_t)(o - out);
}

int asb_b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len)
{
    const uint8_t *s = (const uint8_t *)in;
    uint8_t *o = out;
    if (n % 4 != 0)
        return -1;
    size_t full = n == 0 ? 0 : n - 4; /* the last quantum may carry padding */
    for (size_t i = 0; i < full; i += 4) {
        uint8_t a = B64_VALUE[s[i]], b = B64_VALUE[s[i + 1]], c = B64_VALUE[s[i + 2]],
                d = B64_VALUE[s[i + 3]];
        if ((a | b | c | d) & 0x80)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        o[0] = (uint8_t)(v >> 16);
        o[1] = (uint8_t)(v >> 8);
        o[2] = (uint8_t)v;
        o += 3;
    }
    if (n > 0) {
        const uint8_t *q = s + full;
        uint8_t a = B64_VALUE[q[0]], b = B64_VALUE[q[1]];
        if ((a | b) & 0x80)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12;
        if (q[2] == '=') {
            if (q[3] != '=')
                return -1;
            *o++ = (uint8_t)(v >> 16);
        } else {
            uint8_t c = B64_VALUE[q[2]];
            if (c & 0x80)
                return -1;
            v |= (uint32_t)c << 6;
            if (q[3] == '=') {
                *o++ = (uint8_t)(v >> 16);
                *o++ = (uint8_t)(v >> 8);
            } else {
                uint8_t d = B64_VALUE[q[3]];
                if (d & 0x80)
                    return -1;
                v |= d;
                *o++ = (uint8_t)(v >> 16);
                *o++ = (uint8_t)(v >> 8);
                *o++ = (uint8_t)v;
            }
        }
    }
    *out_len = (size_t)(o - out);
    return 0;
}
