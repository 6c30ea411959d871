/* test_throttle.c - job pacing helpers: the shared rate limiter (rate kept, unlimited is free,
 * cancel wakes) and the scan slots of max-parallel-scans (capacity kept, cancel gives up). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include <cmocka.h>

#include "util/slots.h"
#include "util/throttle.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_rate_is_kept(void **state)
{
    (void)state;
    struct throttle t;
    throttle_init(&t, 1000); /* 1000 units/s, up to 1 s of idle credit */
    double t0 = now_s();
    for (int i = 0; i < 150; i++)
        throttle_take(&t, 10, NULL); /* 1500 units: 1 s of credit + 0.5 s of waiting */
    double took = now_s() - t0;
    assert_true(took >= 0.4);
    assert_true(took < 1.5);
    throttle_destroy(&t);
}

static void test_unlimited_and_cancel(void **state)
{
    (void)state;
    struct throttle t;
    throttle_init(&t, 0);
    double t0 = now_s();
    for (int i = 0; i < 100000; i++)
        throttle_take(&t, 1000000, NULL);
    assert_true(now_s() - t0 < 0.5);
    throttle_destroy(&t);
    throttle_init(&t, 1);
    volatile bool cancel = true;
    t0 = now_s();
    throttle_take(&t, 1000, &cancel); /* would wait 1000 s */
    assert_true(now_s() - t0 < 0.5);
    throttle_destroy(&t);
}

static void test_slots(void **state)
{
    (void)state;
    struct slots s;
    slots_init(&s, 2);
    assert_true(slots_acquire(&s, NULL));
    assert_true(slots_acquire(&s, NULL));
    assert_int_equal(s.used, 2);
    volatile bool cancel = true;
    double t0 = now_s();
    assert_false(slots_acquire(&s, &cancel)); /* full: gives up on cancel */
    assert_true(now_s() - t0 < 0.5);
    slots_release(&s);
    cancel = false;
    assert_true(slots_acquire(&s, &cancel));
    assert_int_equal(s.used, 2);
    slots_release(&s);
    slots_release(&s);
    slots_destroy(&s);
    slots_init(&s, 0); /* unlimited */
    for (int i = 0; i < 100; i++)
        assert_true(slots_acquire(&s, NULL));
    slots_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_is_kept),
        cmocka_unit_test(test_unlimited_and_cancel),
        cmocka_unit_test(test_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
