/*
 * test_racks.c - rack-list resolution from `racks:` replies: the listed racks of the right
 * namespace only, nodes de-duplicated, a missing rack named in the error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "jobs/racks.h"

static const char reply[] =
    "ns=bar:rack_1=BB9000000000009:rack_2=BB9000000000008;"
    "ns=test:rack_1=BB9000000000001,BB9000000000002:rack_2=BB9000000000003:rack_10=BB9000000000002;";

static void test_one_rack(void **state)
{
    int64_t ids[] = {1};
    cfg_intlist racks = {.set = true, .n = 1, .v = ids};
    cfg_strlist nodes;
    struct err e = {0};
    assert_int_equal(racks_parse_nodes(reply, strlen(reply), "test", &racks, &nodes, &e), 0);
    assert_int_equal(nodes.n, 2);
    assert_string_equal(nodes.v[0], "BB9000000000001");
    assert_string_equal(nodes.v[1], "BB9000000000002");
    racks_nodes_free(&nodes);
}

static void test_several_racks_unique_nodes(void **state)
{
    int64_t ids[] = {10, 1, 2};
    cfg_intlist racks = {.set = true, .n = 3, .v = ids};
    cfg_strlist nodes;
    struct err e = {0};
    assert_int_equal(racks_parse_nodes(reply, strlen(reply), "test", &racks, &nodes, &e), 0);
    assert_int_equal(nodes.n, 3); /* BB..002 is in racks 1 and 10: listed once */
    assert_string_equal(nodes.v[2], "BB9000000000003");
    racks_nodes_free(&nodes);
}

static void test_other_namespace_not_mixed_in(void **state)
{
    int64_t ids[] = {2};
    cfg_intlist racks = {.set = true, .n = 1, .v = ids};
    cfg_strlist nodes;
    struct err e = {0};
    assert_int_equal(racks_parse_nodes(reply, strlen(reply), "bar", &racks, &nodes, &e), 0);
    assert_int_equal(nodes.n, 1);
    assert_string_equal(nodes.v[0], "BB9000000000008");
    racks_nodes_free(&nodes);
}

static void test_missing_rack(void **state)
{
    int64_t ids[] = {1, 7};
    cfg_intlist racks = {.set = true, .n = 2, .v = ids};
    cfg_strlist nodes;
    struct err e = {0};
    assert_int_equal(racks_parse_nodes(reply, strlen(reply), "test", &racks, &nodes, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "rack 7"));
    assert_non_null(strstr(e.msg, "test"));
    assert_int_equal(nodes.n, 0);
    assert_null(nodes.v);
    /* rack_10 must not match rack 1's prefix, nor an unknown namespace anything */
    assert_int_equal(racks_parse_nodes(reply, strlen(reply), "tes", &racks, &nodes, &e), ERR_INVALID);
    assert_int_equal(racks_parse_nodes("", 0, "test", &racks, &nodes, &e), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_rack),
        cmocka_unit_test(test_several_racks_unique_nodes),
        cmocka_unit_test(test_other_namespace_not_mixed_in),
        cmocka_unit_test(test_missing_rack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
