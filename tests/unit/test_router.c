/*
 * test_router.c - route matching (parameters, decoding, 404 vs 405, trailing slash,
 * specificity, HEAD), mounting under a context path, and the request/response helpers of
 * http.c that every route relies on (status mapping, content type, JSON errors, names).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_internal.h"
#include "api/router.h"

static int tags[16]; /* route data: &tags[i] identifies route i */

static struct router *new_router(void)
{
    struct router *r = NULL;
    struct err e;
    assert_int_equal(router_new(&r, &e), 0);
    return r;
}

static void add(struct router *r, const char *method, const char *pattern, unsigned flags,
                int tag)
{
    struct err e;
    assert_int_equal(router_add(r, method, pattern, flags, &tags[tag], &e), 0);
}

/* Matches and returns the status; *tag gets the route's tag (or -1). */
static enum router_status match(struct router *r, const char *method, const char *path,
                                struct router_match *m, int *tag)
{
    enum router_status st = router_match(r, method, path, m);
    *tag = st == ROUTER_FOUND ? (int)((int *)m->data - tags) : -1;
    return st;
}

static struct router *config_router(void)
{
    struct router *r = new_router();
    add(r, "GET", "/v1/config/clusters", 0, 0);
    add(r, "GET", "/v1/config/clusters/{name}", 0, 1);
    add(r, "POST", "/v1/config/clusters/{name}", 0, 2);
    add(r, "PUT", "/v1/config/clusters/{name}", 0, 3);
    add(r, "DELETE", "/v1/config/clusters/{name}", 0, 4);
    add(r, "PUT", "/v1/config/routines/{name}/enable", ROUTER_TRAILING_SLASH, 5);
    add(r, "GET", "/v1/restore/status/{jobId}", 0, 6);
    add(r, "GET", "/v1/retrieve/configuration/{name}/{timestamp}", 0, 7);
    add(r, "GET", "/health", 0, 8);
    add(r, "GET", "/", 0, 9);
    return r;
}

static void test_params(void **state)
{
    struct router *r = config_router();
    struct router_match m;
    int tag;
    assert_int_equal(match(r, "GET", "/v1/config/clusters/abs-cluster", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 1);
    assert_string_equal(m.pattern, "/v1/config/clusters/{name}");
    assert_int_equal(m.nparams, 1);
    assert_string_equal(router_param(&m, "name"), "abs-cluster");
    assert_null(router_param(&m, "other"));
    router_match_clear(&m);

    assert_int_equal(match(r, "GET", "/v1/retrieve/configuration/daily/1700000000000", &m, &tag),
                     ROUTER_FOUND);
    assert_int_equal(tag, 7);
    assert_string_equal(router_param(&m, "name"), "daily");
    assert_string_equal(router_param(&m, "timestamp"), "1700000000000");
    router_match_clear(&m);

    /* Same pattern, method picks the route. */
    assert_int_equal(match(r, "DELETE", "/v1/config/clusters/x", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 4);
    assert_string_equal(m.method, "DELETE");
    router_match_clear(&m);
    router_free(r);
}

static void test_param_decoding(void **state)
{
    struct router *r = config_router();
    struct router_match m;
    int tag;
    assert_int_equal(match(r, "GET", "/v1/config/clusters/my%20cluster", &m, &tag), ROUTER_FOUND);
    assert_string_equal(router_param(&m, "name"), "my cluster");
    router_match_clear(&m);
    /* An encoded slash stays inside the parameter (the handler rejects it with 400). */
    assert_int_equal(match(r, "GET", "/v1/config/clusters/a%2Fb", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 1);
    assert_string_equal(router_param(&m, "name"), "a/b");
    router_match_clear(&m);
    /* A raw slash is a separator: no 4-segment GET route → 404. */
    assert_int_equal(match(r, "GET", "/v1/config/clusters/a/b", &m, &tag), ROUTER_NOT_FOUND);
    router_match_clear(&m);
    /* Literal segments are compared decoded; malformed escapes and %00 stay as text. */
    assert_int_equal(match(r, "GET", "/v1/config/%63lusters", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 0);
    router_match_clear(&m);
    assert_int_equal(match(r, "GET", "/v1/config/clusters/x%zz%00%4", &m, &tag), ROUTER_FOUND);
    assert_string_equal(router_param(&m, "name"), "x%zz%00%4");
    router_match_clear(&m);
    /* "/v1/config/clusters/" has an empty name: found, the handler answers 400. */
    assert_int_equal(match(r, "GET", "/v1/config/clusters/", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 1);
    assert_string_equal(router_param(&m, "name"), "");
    router_match_clear(&m);
    router_free(r);
}

static void test_not_found_vs_method_not_allowed(void **state)
{
    struct router *r = config_router();
    struct router_match m;
    int tag;
    assert_int_equal(match(r, "GET", "/v1/nope", &m, &tag), ROUTER_NOT_FOUND);
    router_match_clear(&m);
    assert_int_equal(match(r, "GET", "/v1/config/clusters/a/extra", &m, &tag), ROUTER_NOT_FOUND);
    router_match_clear(&m);
    assert_int_equal(match(r, "GET", "relative", &m, &tag), ROUTER_NOT_FOUND);
    router_match_clear(&m);

    assert_int_equal(match(r, "PATCH", "/v1/config/clusters/a", &m, &tag),
                     ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "DELETE, GET, HEAD, POST, PUT");
    router_match_clear(&m);
    assert_int_equal(match(r, "POST", "/v1/config/clusters", &m, &tag), ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "GET, HEAD");
    router_match_clear(&m);
    assert_int_equal(match(r, "GET", "/v1/config/routines/x/enable", &m, &tag),
                     ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "PUT");
    router_match_clear(&m);
    /* HEAD is served by GET routes. */
    assert_int_equal(match(r, "HEAD", "/health", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 8);
    router_match_clear(&m);
    router_free(r);
}

static void test_trailing_slash(void **state)
{
    struct router *r = config_router();
    struct router_match m;
    int tag;
    assert_int_equal(match(r, "PUT", "/v1/config/routines/daily/enable", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 5);
    router_match_clear(&m);
    assert_int_equal(match(r, "PUT", "/v1/config/routines/daily/enable/", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 5);
    assert_string_equal(router_param(&m, "name"), "daily");
    router_match_clear(&m);
    /* Only one trailing slash is tolerated, and only where the route says so. */
    assert_int_equal(match(r, "PUT", "/v1/config/routines/daily/enable//", &m, &tag),
                     ROUTER_NOT_FOUND);
    router_match_clear(&m);
    assert_int_equal(match(r, "GET", "/health/", &m, &tag), ROUTER_NOT_FOUND);
    router_match_clear(&m);
    assert_int_equal(match(r, "GET", "/", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 9);
    router_match_clear(&m);
    router_free(r);
}

static void test_specificity(void **state)
{
    struct router *r = new_router();
    add(r, "GET", "/v1/backups/{kind}/{name}", 0, 0);
    add(r, "GET", "/v1/backups/full/{name}", 0, 1);
    add(r, "GET", "/v1/backups/{kind}/latest", 0, 2);
    struct router_match m;
    int tag;
    assert_int_equal(match(r, "GET", "/v1/backups/full/x", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 1);
    router_match_clear(&m);
    /* The first differing segment decides: literal "full" beats {kind}. */
    assert_int_equal(match(r, "GET", "/v1/backups/full/latest", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 1);
    router_match_clear(&m);
    assert_int_equal(match(r, "GET", "/v1/backups/incremental/latest", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 2);
    router_match_clear(&m);
    assert_int_equal(match(r, "GET", "/v1/backups/incremental/x", &m, &tag), ROUTER_FOUND);
    assert_int_equal(tag, 0);
    assert_string_equal(router_param(&m, "kind"), "incremental");
    router_match_clear(&m);
    router_free(r);
}

static void test_bad_patterns(void **state)
{
    struct router *r = new_router();
    struct err e;
    assert_int_equal(router_add(r, "GET", "no-slash", 0, NULL, &e), ERR_INVALID);
    assert_int_equal(router_add(r, "get", "/x", 0, NULL, &e), ERR_INVALID);
    assert_int_equal(router_add(r, "GET", "/x/{a}/{a}", 0, NULL, &e), ERR_INVALID);
    assert_int_equal(router_add(r, "GET", "/x/pre{a}", 0, NULL, &e), ERR_INVALID);
    assert_int_equal(router_add(r, "GET", "/{a}/{b}/{c}/{d}/{e}", 0, NULL, &e), ERR_INVALID);
    assert_int_equal(router_add(r, "GET", "/x/{a}", 0, NULL, &e), 0);
    assert_int_equal(router_add(r, "GET", "/x/{a}", 0, NULL, &e), ERR_CONFLICT);
    assert_int_equal(router_add(r, "PUT", "/x/{a}", 0, NULL, &e), 0);
    router_free(r);
}

static char *mount(const char *ctx, enum router_mount_point mp, const char *rel,
                   unsigned *flags)
{
    char *p = NULL;
    struct err e;
    *flags = 0;
    assert_int_equal(router_mount(ctx, mp, rel, &p, flags, &e), 0);
    return p;
}

static void expect_mount(const char *ctx, enum router_mount_point mp, const char *rel,
                         const char *want, unsigned want_flags)
{
    unsigned flags;
    char *p = mount(ctx, mp, rel, &flags);
    assert_string_equal(p, want);
    assert_int_equal(flags, want_flags);
    free(p);
}

static void test_mount(void **state)
{
    expect_mount("/", ROUTER_MOUNT_SYSTEM, "health", "/health", 0);
    expect_mount("/", ROUTER_MOUNT_SYSTEM, "", "/", 0);
    expect_mount(NULL, ROUTER_MOUNT_API, "config", "/v1/config", 0);
    expect_mount("/", ROUTER_MOUNT_API, "config/clusters/{name}", "/v1/config/clusters/{name}", 0);
    expect_mount("/abs", ROUTER_MOUNT_SYSTEM, "health", "/abs/health", 0);
    expect_mount("/abs/", ROUTER_MOUNT_SYSTEM, "health", "/abs/health", 0);
    expect_mount("/abs", ROUTER_MOUNT_API, "config", "/abs/v1/config", 0);
    expect_mount("/abs/x/", ROUTER_MOUNT_API, "config", "/abs/x/v1/config", 0);
    expect_mount("/abs", ROUTER_MOUNT_SYSTEM, "", "/abs", ROUTER_TRAILING_SLASH);
    expect_mount("/abs", ROUTER_MOUNT_SYSTEM, "api-docs/", "/abs/api-docs/", 0);
}

/* A router built like the server builds it, under context path "/abs". */
static void test_context_path_routing(void **state)
{
    static const struct {
        const char *method;
        enum router_mount_point mp;
        const char *rel;
    } defs[] = {
        {"GET", ROUTER_MOUNT_SYSTEM, ""},       {"GET", ROUTER_MOUNT_SYSTEM, "health"},
        {"GET", ROUTER_MOUNT_API, "config"},    {"PUT", ROUTER_MOUNT_API, "config"},
        {"GET", ROUTER_MOUNT_SYSTEM, "api-docs/"},
    };
    struct router *r = new_router();
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        unsigned flags;
        char *p = mount("/abs", defs[i].mp, defs[i].rel, &flags);
        add(r, defs[i].method, p, flags, (int)i);
        free(p);
    }
    struct router_match m;
    int tag;
    const struct {
        const char *method, *path;
        enum router_status st;
        int tag;
    } cases[] = {
        {"GET", "/abs/health", ROUTER_FOUND, 1},
        {"GET", "/abs/v1/config", ROUTER_FOUND, 2},
        {"PUT", "/abs/v1/config", ROUTER_FOUND, 3},
        {"GET", "/abs", ROUTER_FOUND, 0},
        {"GET", "/abs/", ROUTER_FOUND, 0},
        {"GET", "/abs/api-docs/", ROUTER_FOUND, 4},
        {"GET", "/health", ROUTER_NOT_FOUND, -1},
        {"GET", "/v1/config", ROUTER_NOT_FOUND, -1},
        {"GET", "/", ROUTER_NOT_FOUND, -1},
        {"GET", "/abs/unknown", ROUTER_NOT_FOUND, -1},
        {"DELETE", "/abs/v1/config", ROUTER_METHOD_NOT_ALLOWED, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(match(r, cases[i].method, cases[i].path, &m, &tag), cases[i].st);
        assert_int_equal(tag, cases[i].tag);
        router_match_clear(&m);
    }
    assert_int_equal(match(r, "GET", "/abs/v1/config", &m, &tag), ROUTER_FOUND);
    assert_string_equal(m.pattern, "/abs/v1/config"); /* the metrics route label */
    router_match_clear(&m);
    router_free(r);
}

/* ---- http.c helpers ------------------------------------------------------------------ */

static void test_status_from_err(void **state)
{
    assert_int_equal(api_status_from_err(ERR_INVALID), 400);
    assert_int_equal(api_status_from_err(ERR_IN_USE), 400);
    assert_int_equal(api_status_from_err(ERR_NOT_FOUND), 404);
    assert_int_equal(api_status_from_err(ERR_CONFLICT), 409);
    assert_int_equal(api_status_from_err(ERR_UNAVAILABLE), 503);
    assert_int_equal(api_status_from_err(ERR_IO), 500);
    assert_int_equal(api_status_from_err(ERR_NOMEM), 500);
    assert_int_equal(api_status_from_err(ERR_INTERNAL), 500);
    assert_int_equal(api_status_from_err(-99), 500);
}

static void test_error_reply_shape(void **state)
{
    struct api_response res = {0};
    struct err e;
    err_set(&e, ERR_CONFLICT, "routine %s already exists", "daily");
    api_reply_err(&res, &e);
    assert_int_equal(res.status, 409);
    assert_string_equal(res.content_type, "text/plain; charset=utf-8");
    assert_int_equal(res.len, strlen("routine daily already exists\n"));
    assert_memory_equal(res.body, "routine daily already exists\n", res.len);
    api_reply_json(&res, 200, json_pack("{s:i}", "a", 1)); /* replaces the previous body */
    assert_string_equal(res.content_type, "application/json");
    assert_memory_equal(res.body, "{\"a\":1}", res.len);
    api_response_clear(&res);
    api_reply_json(&res, 200, NULL);
    assert_int_equal(res.status, 500);
    api_response_clear(&res);
}

static void test_json_content_type(void **state)
{
    assert_true(api_is_json_content_type("application/json"));
    assert_true(api_is_json_content_type("Application/JSON; charset=utf-8"));
    assert_true(api_is_json_content_type(" application/json ;charset=UTF-8"));
    assert_false(api_is_json_content_type(NULL));
    assert_false(api_is_json_content_type("text/plain"));
    assert_false(api_is_json_content_type("application/jsonx"));
    assert_false(api_is_json_content_type("application/x-www-form-urlencoded"));
}

static void test_parse_json_errors(void **state)
{
    json_t *j = NULL;
    struct err e;
    assert_int_equal(api_parse_json("{\"a\": [1, 2]}", 13, &j, &e), 0);
    assert_true(json_is_object(j));
    json_decref(j);
    assert_int_equal(api_parse_json("\"str\"", 5, &j, &e), 0); /* any JSON value */
    json_decref(j);
    const char *bad = "{\n  \"a\": 1,\n  oops\n}";
    assert_int_equal(api_parse_json(bad, strlen(bad), &j, &e), ERR_INVALID);
    assert_true(strncmp(e.msg, "invalid JSON payload: ", 22) == 0);
    assert_non_null(strstr(e.msg, "line 3"));
    assert_non_null(strstr(e.msg, "column"));
    assert_int_equal(api_parse_json("{} {}", 5, &j, &e), ERR_INVALID); /* trailing data */
    assert_int_equal(api_parse_json("", 0, &j, &e), ERR_INVALID);
    assert_string_equal(e.msg, "invalid JSON payload: empty body");
}

static void test_check_name(void **state)
{
    struct err e;
    assert_int_equal(api_check_name("daily", "routine", &e), 0);
    assert_int_equal(api_check_name("", "routine", &e), ERR_INVALID);
    assert_int_equal(api_check_name(NULL, "routine", &e), ERR_INVALID);
    assert_int_equal(api_check_name("a/b", "storage", &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "storage"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_param_decoding),
        cmocka_unit_test(test_not_found_vs_method_not_allowed),
        cmocka_unit_test(test_trailing_slash),
        cmocka_unit_test(test_specificity),
        cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_mount),
        cmocka_unit_test(test_context_path_routing),
        cmocka_unit_test(test_status_from_err),
        cmocka_unit_test(test_error_reply_shape),
        cmocka_unit_test(test_json_content_type),
        cmocka_unit_test(test_parse_json_errors),
        cmocka_unit_test(test_check_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
