/*
 * test_config_store.c - the configuration store: entity create/update/delete with ABS's error
 * categories, "[secret]" placeholders, atomic saves that keep the file mode and header
 * comments, rejected changes that leave memory and file untouched, apply and remote mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"
#include "util/fsutil.h"

static const char *const initial_yaml =
    "# yaml-language-server: $schema=https://example.invalid/config.schema.json\n"
    "aerospike-clusters:\n"
    "  c:\n"
    "    seed-nodes: [{host-name: 127.0.0.1, port: 3000}]\n"
    "    credentials: {user: admin, password: topsecret}\n"
    "storage:\n"
    "  s: {local-storage: {path: /tmp/backups}}\n"
    "backup-policies:\n"
    "  p: {parallel: 2}\n"
    "backup-routines:\n"
    "  r: {interval-cron: '@daily', source-cluster: c, storage: s, backup-policy: p, namespaces: [test]}\n";

struct fixture {
    char dir[64];
    char path[128];
    struct cfg_store *store;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/abs-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/config.yml", f->dir);
    struct err e = {0};
    assert_int_equal(fs_write_atomic(f->path, initial_yaml, strlen(initial_yaml), 0640, &e), 0);
    if (cfg_store_open(f->path, false, &f->store, &e))
        fail_msg("%s", e.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    cfg_store_free(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static char *file_text(const char *path)
{
    char *text;
    struct err e = {0};
    if (fs_read_file(path, 1 << 20, &text, NULL, &e))
        fail_msg("%s", e.msg);
    return text;
}

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("bad test JSON: %s", je.text);
    return j;
}

static void test_create_update_delete(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    json_t *pol = parse("{\"parallel\": 4, \"retention\": {\"full\": 3}}");
    assert_int_equal(cfg_store_create(f->store, CFG_KIND_POLICY, "p2", pol, &e), 0);
    assert_int_equal(cfg_store_create(f->store, CFG_KIND_POLICY, "p2", pol, &e), ERR_CONFLICT);
    json_t *got = cfg_store_get_entity(f->store, CFG_KIND_POLICY, "p2", &e);
    assert_true(json_equal(got, pol));
    json_decref(got);

    json_t *upd = parse("{\"parallel\": 6}");
    assert_int_equal(cfg_store_update(f->store, CFG_KIND_POLICY, "p2", upd, &e), 0);
    assert_int_equal(cfg_store_update(f->store, CFG_KIND_POLICY, "nope", upd, &e), ERR_NOT_FOUND);
    assert_string_equal(e.msg, "policy nope not found");

    /* persisted: a fresh store sees the change */
    struct cfg_store *again;
    assert_int_equal(cfg_store_open(f->path, false, &again, &e), 0);
    got = cfg_store_get_entity(again, CFG_KIND_POLICY, "p2", &e);
    assert_int_equal(json_integer_value(json_object_get(got, "parallel")), 6);
    json_decref(got);
    cfg_store_free(again);

    assert_int_equal(cfg_store_delete(f->store, CFG_KIND_POLICY, "p2", &e), 0);
    assert_int_equal(cfg_store_delete(f->store, CFG_KIND_POLICY, "p2", &e), ERR_NOT_FOUND);
    assert_null(cfg_store_get_entity(f->store, CFG_KIND_POLICY, "p2", &e));
    assert_int_equal(e.code, ERR_NOT_FOUND);
    json_decref(pol);
    json_decref(upd);
}

static void test_delete_in_use(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    assert_int_equal(cfg_store_delete(f->store, CFG_KIND_CLUSTER, "c", &e), ERR_IN_USE);
    assert_non_null(strstr(e.msg, "routine \"r\""));
    assert_int_equal(cfg_store_delete(f->store, CFG_KIND_STORAGE, "s", &e), ERR_IN_USE);
    assert_int_equal(cfg_store_delete(f->store, CFG_KIND_POLICY, "p", &e), ERR_IN_USE);
    assert_int_equal(cfg_store_delete(f->store, CFG_KIND_ROUTINE, "r", &e), 0);
    assert_int_equal(cfg_store_delete(f->store, CFG_KIND_CLUSTER, "c", &e), 0);
}

static void test_invalid_change_changes_nothing(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char *before = file_text(f->path);
    struct cfg *snap_before = cfg_store_snapshot(f->store);

    json_t *bad = parse("{\"interval-cron\": \"@daily\", \"source-cluster\": \"missing\", \"storage\": \"s\","
                        " \"namespaces\": []}");
    assert_int_equal(cfg_store_create(f->store, CFG_KIND_ROUTINE, "r2", bad, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "backup-routines.r2.source-cluster"));
    json_t *bad_type = parse("{\"parallel\": \"four\"}");
    assert_int_equal(cfg_store_update(f->store, CFG_KIND_POLICY, "p", bad_type, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "backup-policies.p.parallel: must be an integer"));
    json_t *not_obj = parse("[1]");
    assert_int_equal(cfg_store_update(f->store, CFG_KIND_POLICY, "p", not_obj, &e), ERR_INVALID);
    assert_int_equal(cfg_store_create(f->store, CFG_KIND_POLICY, "a/b", bad_type, &e), ERR_INVALID);

    char *after = file_text(f->path);
    assert_string_equal(before, after);
    struct cfg *snap_after = cfg_store_snapshot(f->store);
    assert_ptr_equal(snap_before, snap_after);
    cfg_release(snap_before);
    cfg_release(snap_after);
    free(before);
    free(after);
    json_decref(bad);
    json_decref(bad_type);
    json_decref(not_obj);
}

static void test_save_keeps_mode_and_header(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    assert_int_equal(cfg_store_set_routine_disabled(f->store, "r", true, &e), 0);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    char *text = file_text(f->path);
    assert_true(strncmp(text, "# yaml-language-server:", 23) == 0);
    assert_non_null(strstr(text, "disabled: true"));
    assert_non_null(strstr(text, "topsecret")); /* the file keeps the real secret */
    free(text);
    struct cfg *c = cfg_store_snapshot(f->store);
    const struct cfg_routine *r = cfg_map_get(&c->routines, "r");
    assert_true(r->disabled.set && r->disabled.v);
    cfg_release(c);
    assert_int_equal(cfg_store_set_routine_disabled(f->store, "r", false, &e), 0);
    assert_int_equal(cfg_store_set_routine_disabled(f->store, "zz", false, &e), ERR_NOT_FOUND);
    /* no temporary files are left behind */
    char cmd[200];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", f->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_secret_placeholder(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    json_t *got = cfg_store_get_entity(f->store, CFG_KIND_CLUSTER, "c", &e);
    json_t *cred = json_object_get(got, "credentials");
    assert_string_equal(json_string_value(json_object_get(cred, "password")), "[secret]");
    /* sending back what GET returned keeps the stored password */
    json_object_set_new(got, "label", json_string("prod"));
    assert_int_equal(cfg_store_update(f->store, CFG_KIND_CLUSTER, "c", got, &e), 0);
    struct cfg *c = cfg_store_snapshot(f->store);
    const struct cfg_cluster *cl = cfg_map_get(&c->clusters, "c");
    assert_string_equal(cl->credentials->password, "topsecret");
    assert_string_equal(cl->label, "prod");
    cfg_release(c);
    /* a brand-new entity cannot use the placeholder */
    assert_int_equal(cfg_store_create(f->store, CFG_KIND_CLUSTER, "c2", got, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "aerospike-clusters.c2.credentials.password"));
    json_decref(got);
}

static void test_replace_whole_config(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    json_t *all = cfg_store_get_json(f->store);
    json_object_del(json_object_get(all, "backup-routines"), "r");
    json_object_set_new(json_object_get(all, "backup-policies"), "p9", json_object());
    assert_int_equal(cfg_store_replace_json(f->store, all, &e), 0);
    struct cfg *c = cfg_store_snapshot(f->store);
    assert_int_equal(c->routines.n, 0);
    assert_non_null(cfg_map_get(&c->policies, "p9"));
    assert_string_equal(((struct cfg_cluster *)cfg_map_get(&c->clusters, "c"))->credentials->password, "topsecret");
    cfg_release(c);

    json_t *svc = parse("{\"service\": {\"http\": {\"port\": 9999}}}");
    assert_int_equal(cfg_store_replace_json(f->store, svc, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "service"));
    json_decref(svc);
    json_decref(all);
}

static void test_apply_rereads_file(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    const char *next = "storage: {only: {local-storage: {path: /x}}}\n";
    assert_int_equal(fs_write_atomic(f->path, next, strlen(next), 0600, &e), 0);
    assert_int_equal(cfg_store_apply(f->store, &e), 0);
    struct cfg *c = cfg_store_snapshot(f->store);
    assert_int_equal(c->storage.n, 1);
    assert_int_equal(c->routines.n, 0);
    cfg_release(c);
    const char *broken = "storage: {only: {}}\n";
    assert_int_equal(fs_write_atomic(f->path, broken, strlen(broken), 0600, &e), 0);
    assert_int_equal(cfg_store_apply(f->store, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "storage.only: exactly one"));
    c = cfg_store_snapshot(f->store);
    assert_non_null(cfg_map_get(&c->storage, "only")); /* previous snapshot kept */
    cfg_release(c);
}

static void test_remote_mode(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char remote[160], text[300];
    snprintf(remote, sizeof remote, "%s/remote.yml", f->dir);
    snprintf(text, sizeof text, "local-storage:\n  path: %s\n", f->path);
    assert_int_equal(fs_write_atomic(remote, text, strlen(text), 0600, &e), 0);
    struct cfg_store *s;
    if (cfg_store_open(remote, true, &s, &e))
        fail_msg("%s", e.msg);
    struct cfg *c = cfg_store_snapshot(s);
    assert_non_null(cfg_map_get(&c->routines, "r"));
    cfg_release(c);
    cfg_store_free(s);
    const char *s3 = "s3-storage: {bucket: b, s3-region: r}\n";
    assert_int_equal(fs_write_atomic(remote, s3, strlen(s3), 0600, &e), 0);
    assert_int_equal(cfg_store_open(remote, true, &s, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "path (the configuration file in the storage) is required"));
}

static void test_open_errors(void **state)
{
    (void)state;
    struct cfg_store *s;
    struct err e = {0};
    assert_int_equal(cfg_store_open("/nonexistent/abs.yml", false, &s, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent/abs.yml"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_update_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_change_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_keeps_mode_and_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_placeholder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_whole_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_rereads_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_mode, setup, teardown),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
