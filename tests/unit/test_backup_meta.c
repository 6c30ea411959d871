/*
 * test_backup_meta.c - metadata.yaml rendering/parsing as ABS writes it, RFC 3339 times,
 * folder names with timestamp formats, BackupDetails JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jobs/backup_meta.h"

static void test_render_exact(void **state)
{
    (void)state;
    struct backup_meta m = {
        .created_ms = 1777716000000LL, /* 2026-05-02T10:00:00Z */
        .finished_ms = 1777716221512LL,
        .from_ms = 1777708800000LL,
        .record_count = 1532, .byte_count = 204811, .file_count = 1,
        .compression = "ZSTD", .encryption = "NONE", .namespace_ = "test",
    };
    char *text;
    struct err e = {0};
    assert_int_equal(meta_render(&m, &text, &e), 0);
    assert_string_equal(text,
                        "created: 2026-05-02T10:00:00Z\n"
                        "finished: 2026-05-02T10:03:41.512Z\n"
                        "from: 2026-05-02T08:00:00Z\n"
                        "namespace: test\n"
                        "record-count: 1532\n"
                        "byte-count: 204811\n"
                        "file-count: 1\n"
                        "secondary-index-count: 0\n"
                        "udf-count: 0\n"
                        "compression: ZSTD\n"
                        "encryption: NONE\n");
    struct backup_meta back;
    assert_int_equal(meta_parse(text, strlen(text), "m.yaml", &back, &e), 0);
    assert_memory_equal(&m, &back, sizeof m);
    free(text);
}

static void test_full_backup_zero_from_and_odd_namespace(void **state)
{
    (void)state;
    struct backup_meta m = {.created_ms = 1000, .finished_ms = 2500, .from_ms = META_ZERO_TIME_MS,
                            .compression = "NONE", .encryption = "AES256", .namespace_ = "true"};
    char *text;
    struct err e = {0};
    assert_int_equal(meta_render(&m, &text, &e), 0);
    assert_non_null(strstr(text, "from: 0001-01-01T00:00:00Z\n"));
    assert_non_null(strstr(text, "namespace: 'true'\n"));
    struct backup_meta back;
    assert_int_equal(meta_parse(text, strlen(text), "m.yaml", &back, &e), 0);
    assert_string_equal(back.namespace_, "true");
    assert_true(back.from_ms == META_ZERO_TIME_MS);
    assert_true(back.finished_ms == 2500);
    free(text);
}

static void test_parse_go_forms_and_errors(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(meta_parse_time("2024-01-01T12:00:00.123456789+02:00", &ms), 0);
    assert_true(ms == 1704103200123LL);
    assert_int_equal(meta_parse_time("2024-01-01T12:00:00Z", &ms), 0);
    assert_true(ms == 1704110400000LL);
    assert_int_not_equal(meta_parse_time("2024-01-01 12:00", &ms), 0);
    assert_int_not_equal(meta_parse_time("2024-13-01T12:00:00Z", &ms), 0);

    struct backup_meta m;
    struct err e = {0};
    assert_int_not_equal(meta_parse("", 0, "x/metadata.yaml", &m, &e), 0);
    assert_non_null(strstr(e.msg, "x/metadata.yaml: empty"));
    const char *no_ns = "created: 2024-01-01T12:00:00Z\nfinished: 2024-01-01T12:00:00Z\n";
    assert_int_not_equal(meta_parse(no_ns, strlen(no_ns), "y", &m, &e), 0);
    assert_non_null(strstr(e.msg, "namespace is missing"));
    const char *bad = "created: yesterday\nfinished: 2024-01-01T12:00:00Z\nnamespace: t\n";
    assert_int_not_equal(meta_parse(bad, strlen(bad), "z", &m, &e), 0);
    assert_non_null(strstr(e.msg, "created is not an RFC 3339 time"));
}

static void test_folder_names(void **state)
{
    (void)state;
    char buf[64];
    struct err e = {0};
    int64_t ms = 1704110400000LL; /* 2024-01-01T12:00:00Z */
    assert_int_equal(meta_folder_name(ms, NULL, buf, sizeof buf, &e), 0);
    assert_string_equal(buf, "1704110400000");
    assert_int_equal(meta_folder_name(ms, "ISO", buf, sizeof buf, &e), 0);
    assert_string_equal(buf, "1704110400000_2024-01-01T12-00-00");
    assert_int_equal(meta_folder_name(ms, "us", buf, sizeof buf, &e), 0);
    assert_string_equal(buf, "1704110400000_Jan-01-2024-12-00-00");
    assert_int_equal(meta_folder_name(ms, "EU", buf, sizeof buf, &e), 0);
    assert_string_equal(buf, "1704110400000_01-Jan-2024-12-00-00");
    assert_int_not_equal(meta_folder_name(ms, "XX", buf, sizeof buf, &e), 0);
    int64_t back;
    assert_int_equal(meta_folder_timestamp("1704110400000_01-Jan-2024-12-00-00", &back), 0);
    assert_true(back == ms);
    assert_int_equal(meta_folder_timestamp("1704110400000", &back), 0);
    assert_int_not_equal(meta_folder_timestamp("170411040000", &back), 0);
    assert_int_not_equal(meta_folder_timestamp("1704110400000x", &back), 0);
}

static void test_details_json(void **state)
{
    (void)state;
    struct backup_meta m = {.created_ms = 1704110400000LL, .finished_ms = 1704110465000LL,
                            .from_ms = META_ZERO_TIME_MS, .record_count = 7,
                            .compression = "NONE", .encryption = "NONE", .namespace_ = "test"};
    json_t *storage = json_pack("{s:{s:s}}", "local-storage", "path", "/b");
    json_t *j = meta_details_json(&m, "daily/backup/1704110400000/data/test", storage);
    assert_string_equal(json_string_value(json_object_get(j, "created")), "2024-01-01T12:00:00Z");
    assert_int_equal(json_integer_value(json_object_get(j, "duration")), 65);
    assert_int_equal(json_integer_value(json_object_get(j, "timestamp")), 1704110400000LL);
    assert_null(json_object_get(j, "from"));
    assert_string_equal(json_string_value(json_object_get(j, "key")), "daily/backup/1704110400000/data/test");
    assert_non_null(json_object_get(json_object_get(j, "storage"), "local-storage"));
    json_decref(j);
    json_decref(storage);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact),
        cmocka_unit_test(test_full_backup_zero_from_and_odd_namespace),
        cmocka_unit_test(test_parse_go_forms_and_errors),
        cmocka_unit_test(test_folder_names),
        cmocka_unit_test(test_details_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
