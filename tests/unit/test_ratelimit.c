/* test_ratelimit.c - token buckets per client: burst, refill, white-list, /64 keys, eviction. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/ratelimit.h"

#define SEC 1000000000LL

struct fake_clock {
    int64_t now;
};

static int64_t fake_now(void *ctx)
{
    return ((struct fake_clock *)ctx)->now;
}

static struct ratelimit *make(double tps, double size, const char *const *wl, size_t nwl,
                              size_t max_clients, struct fake_clock *clk)
{
    struct ratelimit_options o = {
        .tps = tps, .size = size, .white_list = wl, .white_list_len = nwl,
        .max_clients = max_clients, .clock = fake_now, .clock_ctx = clk,
    };
    struct ratelimit *rl = NULL;
    struct err e;
    assert_int_equal(ratelimit_new(&o, &rl, &e), 0);
    return rl;
}

static bool allow(struct ratelimit *rl, const char *ip)
{
    struct ratelimit_addr a;
    assert_int_equal(ratelimit_addr_parse(ip, &a), 0);
    return ratelimit_allow(rl, &a);
}

/* How many requests in a row pass right now (stops at `max`). */
static int burst(struct ratelimit *rl, const char *ip, int max)
{
    int n = 0;
    while (n < max && allow(rl, ip))
        n++;
    return n;
}

static void test_burst_then_limited(void **state)
{
    struct fake_clock clk = {1000 * SEC};
    struct ratelimit *rl = make(1, 3, NULL, 0, 0, &clk);
    assert_true(allow(rl, "192.0.2.1"));
    assert_true(allow(rl, "192.0.2.1"));
    assert_true(allow(rl, "192.0.2.1"));
    assert_false(allow(rl, "192.0.2.1"));
    assert_false(allow(rl, "192.0.2.1"));
    /* Another client has its own full bucket. */
    assert_int_equal(burst(rl, "192.0.2.2", 10), 3);
    assert_int_equal(ratelimit_clients(rl), 2);
    ratelimit_free(rl);
}

static void test_refill_over_time(void **state)
{
    struct fake_clock clk = {5 * SEC};
    struct ratelimit *rl = make(2, 4, NULL, 0, 0, &clk); /* 2 tokens/s, burst 4 */
    assert_int_equal(burst(rl, "198.51.100.7", 100), 4);
    clk.now += SEC / 4; /* +0.5 token */
    assert_false(allow(rl, "198.51.100.7"));
    clk.now += SEC / 4; /* +0.5 token → 1 whole token */
    assert_true(allow(rl, "198.51.100.7"));
    assert_false(allow(rl, "198.51.100.7"));
    clk.now += SEC; /* +2 */
    assert_int_equal(burst(rl, "198.51.100.7", 100), 2);
    clk.now += 3600 * SEC; /* long idle: capped at the bucket size */
    assert_int_equal(burst(rl, "198.51.100.7", 100), 4);
    ratelimit_free(rl);
}

static void test_zero_size_limits_everyone(void **state)
{
    struct fake_clock clk = {SEC};
    struct ratelimit *rl = make(1024, 0, NULL, 0, 0, &clk);
    assert_false(allow(rl, "127.0.0.1"));
    clk.now += 10 * SEC;
    assert_false(allow(rl, "127.0.0.1"));
    ratelimit_free(rl);
}

static void test_white_list_ipv4(void **state)
{
    struct fake_clock clk = {SEC};
    const char *wl[] = {"10.0.0.0/8", "192.168.1.5", "172.16.0.0/12"};
    struct ratelimit *rl = make(0, 1, wl, 3, 0, &clk);
    assert_int_equal(burst(rl, "10.200.3.4", 50), 50);
    assert_int_equal(burst(rl, "192.168.1.5", 50), 50);
    assert_int_equal(burst(rl, "172.31.255.255", 50), 50);
    /* Just outside each entry: limited (bucket of 1, no refill). */
    assert_int_equal(burst(rl, "11.0.0.1", 50), 1);
    assert_int_equal(burst(rl, "192.168.1.6", 50), 1);
    assert_int_equal(burst(rl, "172.32.0.0", 50), 1);
    /* IPv4-mapped IPv6 clients are IPv4 clients. */
    assert_int_equal(burst(rl, "::ffff:10.9.9.9", 50), 50);
    /* White-listed clients use no bucket. */
    assert_int_equal(ratelimit_clients(rl), 3);
    ratelimit_free(rl);
}

static void test_white_list_ipv6(void **state)
{
    struct fake_clock clk = {SEC};
    const char *wl[] = {"2001:db8::/32", "::1", "fd00:1:2:3::/64"};
    struct ratelimit *rl = make(0, 1, wl, 3, 0, &clk);
    assert_int_equal(burst(rl, "2001:db8:ffff::1", 20), 20);
    assert_int_equal(burst(rl, "::1", 20), 20);
    assert_int_equal(burst(rl, "fd00:1:2:3:aaaa::1", 20), 20);
    assert_int_equal(burst(rl, "2001:db9::1", 20), 1);
    assert_int_equal(burst(rl, "::2", 20), 1);
    assert_int_equal(burst(rl, "fd00:1:2:4::1", 20), 1);
    /* An IPv6 entry does not cover IPv4 clients and vice versa. */
    assert_int_equal(burst(rl, "127.0.0.1", 20), 1);
    ratelimit_free(rl);
}

static void test_white_list_everything(void **state)
{
    struct fake_clock clk = {SEC};
    const char *wl[] = {"0.0.0.0/0", "::/0"};
    struct ratelimit *rl = make(0, 0, wl, 2, 0, &clk);
    assert_true(allow(rl, "203.0.113.9"));
    assert_true(allow(rl, "2001:db8::9"));
    ratelimit_free(rl);
}

static void test_invalid_white_list(void **state)
{
    const char *bad[][1] = {{"10.0.0.0/33"}, {"not-an-ip"}, {"::/129"}, {"1.2.3.4/"},
                            {"1.2.3.4/x"}, {""}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ratelimit_options o = {.tps = 1, .size = 1, .white_list = bad[i],
                                      .white_list_len = 1};
        struct ratelimit *rl = NULL;
        struct err e;
        assert_int_equal(ratelimit_new(&o, &rl, &e), ERR_INVALID);
        assert_null(rl);
        assert_non_null(strstr(e.msg, "white-list"));
    }
}

static void test_ipv6_grouped_by_64(void **state)
{
    struct fake_clock clk = {SEC};
    struct ratelimit *rl = make(0, 3, NULL, 0, 0, &clk);
    /* Same /64: one shared bucket of 3. */
    assert_true(allow(rl, "2001:db8:1:2::1"));
    assert_true(allow(rl, "2001:db8:1:2:ffff:ffff:ffff:ffff"));
    assert_true(allow(rl, "2001:db8:1:2:1234::5"));
    assert_false(allow(rl, "2001:db8:1:2::9"));
    /* Next /64: separate bucket. */
    assert_int_equal(burst(rl, "2001:db8:1:3::1", 10), 3);
    assert_int_equal(ratelimit_clients(rl), 2);
    /* IPv4 addresses are never grouped. */
    assert_int_equal(burst(rl, "203.0.113.1", 10), 3);
    assert_int_equal(burst(rl, "203.0.113.2", 10), 3);
    ratelimit_free(rl);
}

static void test_eviction_bound(void **state)
{
    struct fake_clock clk = {SEC};
    struct ratelimit *rl = make(0, 2, NULL, 0, 4, &clk);
    char ip[32];
    for (int i = 0; i < 100; i++) {
        snprintf(ip, sizeof ip, "100.64.0.%d", i);
        assert_true(allow(rl, ip));
        assert_true(ratelimit_clients(rl) <= 4);
    }
    assert_int_equal(ratelimit_clients(rl), 4);
    /* Keep A recently used while 3 others arrive: A survives, B (least recent) is evicted. */
    assert_int_equal(burst(rl, "198.18.0.1", 5), 2); /* A: drained */
    assert_int_equal(burst(rl, "198.18.0.2", 5), 2); /* B: drained */
    assert_false(allow(rl, "198.18.0.1"));           /* touch A: most recent */
    assert_true(allow(rl, "198.18.0.3"));
    assert_true(allow(rl, "198.18.0.4"));
    assert_true(allow(rl, "198.18.0.5")); /* evicts B, the least recently used */
    assert_int_equal(ratelimit_clients(rl), 4);
    assert_false(allow(rl, "198.18.0.1")); /* A kept its drained bucket */
    assert_true(allow(rl, "198.18.0.2"));  /* B comes back with a fresh bucket */
    ratelimit_free(rl);
}

static void test_sockaddr_conversion(void **state)
{
    struct ratelimit_addr a, b;
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.33", &in4.sin_addr);
    assert_int_equal(ratelimit_addr_from_sockaddr((struct sockaddr *)&in4, &a), 0);
    assert_int_equal(ratelimit_addr_parse("192.0.2.33", &b), 0);
    assert_memory_equal(&a, &b, sizeof a);

    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:192.0.2.33", &in6.sin6_addr);
    assert_int_equal(ratelimit_addr_from_sockaddr((struct sockaddr *)&in6, &a), 0);
    assert_int_equal(a.family, 4);
    assert_memory_equal(&a, &b, sizeof a);

    inet_pton(AF_INET6, "2001:db8::7", &in6.sin6_addr);
    assert_int_equal(ratelimit_addr_from_sockaddr((struct sockaddr *)&in6, &a), 0);
    assert_int_equal(a.family, 6);

    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(ratelimit_addr_from_sockaddr(&un, &a), ERR_INVALID);
    assert_int_equal(ratelimit_addr_parse("300.1.1.1", &a), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_limited),
        cmocka_unit_test(test_refill_over_time),
        cmocka_unit_test(test_zero_size_limits_everyone),
        cmocka_unit_test(test_white_list_ipv4),
        cmocka_unit_test(test_white_list_ipv6),
        cmocka_unit_test(test_white_list_everything),
        cmocka_unit_test(test_invalid_white_list),
        cmocka_unit_test(test_ipv6_grouped_by_64),
        cmocka_unit_test(test_eviction_bound),
        cmocka_unit_test(test_sockaddr_conversion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
