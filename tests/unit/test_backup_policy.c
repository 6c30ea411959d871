/*
 * test_backup_policy.c - backup policy values the engine derives: the zstd level (ABS's level 0
 * is the fastest class, not libzstd's default) and the retry-policy's defaults and delays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jobs/backup_job.h"

static void test_zstd_level(void **state)
{
    (void)state;
    struct cfg_compression c = {0};
    assert_int_equal(backup_zstd_level(NULL), 1);
    assert_int_equal(backup_zstd_level(&c), 1); /* unset: ABS's 0 */
    c.level.set = true;
    c.level.v = 0;
    assert_int_equal(backup_zstd_level(&c), 1);
    c.level.v = 3;
    assert_int_equal(backup_zstd_level(&c), 3);
    c.level.v = -1;
    assert_int_equal(backup_zstd_level(&c), -1);
    c.level.v = 22;
    assert_int_equal(backup_zstd_level(&c), 22);
}

static void test_retry_defaults_and_delays(void **state)
{
    (void)state;
    struct backup_retry r;
    backup_retry_of(NULL, &r); /* ABS: 60 s, 5 retries, x1.5 */
    assert_int_equal(r.base_ms, 60000);
    assert_int_equal(r.max_retries, 5);
    assert_true(r.multiplier > 1.49 && r.multiplier < 1.51);
    assert_int_equal(backup_retry_delay_ms(&r, 0), 60000);
    assert_int_equal(backup_retry_delay_ms(&r, 1), 90000);
    assert_int_equal(backup_retry_delay_ms(&r, 2), 135000);

    struct cfg_retry_policy rp = {.base_timeout = {true, 100}, .max_retries = {true, 0}};
    struct cfg_policy p = {.retry_policy = &rp};
    backup_retry_of(&p, &r);
    assert_int_equal(r.base_ms, 100);
    assert_int_equal(r.max_retries, 0);
    assert_true(r.multiplier > 1.49 && r.multiplier < 1.51); /* unset field: ABS default */
    r.multiplier = 1000;
    assert_int_equal(backup_retry_delay_ms(&r, 50), 24LL * 3600 * 1000); /* capped at a day */
}

static void test_retry_wait_cancel(void **state)
{
    (void)state;
    volatile bool cancel = false;
    assert_true(backup_retry_wait(20, &cancel));
    cancel = true;
    assert_false(backup_retry_wait(60000, &cancel)); /* returns at once */
    assert_true(backup_retry_wait(0, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zstd_level),
        cmocka_unit_test(test_retry_defaults_and_delays),
        cmocka_unit_test(test_retry_wait_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
