/*
 * test_config.c - the configuration model: YAML and JSON round trips of every field, the
 * ABS-style example, redaction, and invalid configurations rejected with the field path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/cfg_schema.h"
#include "config/cfg_validate.h"
#include "config/cfg_yaml.h"
#include "config/config.h"
#include "util/fsutil.h"

static char *read_data(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config/%s", TEST_DATA_DIR, name);
    char *text;
    struct err e = {0};
    if (fs_read_file(path, 1 << 20, &text, NULL, &e))
        fail_msg("%s", e.msg);
    return text;
}

static struct cfg *load_data(const char *name)
{
    char *text = read_data(name);
    struct cfg *c = NULL;
    struct err e = {0};
    if (cfg_from_yaml(text, strlen(text), name, &c, &e))
        fail_msg("%s", e.msg);
    free(text);
    return c;
}

static void test_demo_config_loads(void **state)
{
    (void)state;
    char *text;
    struct err e = {0};
    assert_int_equal(fs_read_file(ABS_SOURCE_DIR "/config/demo.yml", 1 << 20, &text, NULL, &e), 0);
    struct cfg *c = NULL;
    if (cfg_from_yaml(text, strlen(text), "config/demo.yml", &c, &e))
        fail_msg("%s", e.msg);
    struct cfg_http_eff http;
    cfg_eff_http(c, &http);
    assert_string_equal(http.address, "127.0.0.1");
    assert_int_equal(http.port, 8080);
    cfg_release(c);
    free(text);
}

static void test_abs_example_loads(void **state)
{
    (void)state;
    struct cfg *c = load_data("abs-example.yml");
    assert_int_equal(c->clusters.n, 1);
    assert_int_equal(c->storage.n, 2);
    assert_int_equal(c->policies.n, 5);
    assert_int_equal(c->routines.n, 4);
    const struct cfg_routine *whole = cfg_map_get(&c->routines, "wholeCluster");
    assert_non_null(whole);
    assert_true(whole->namespaces.set);
    assert_int_equal(whole->namespaces.n, 0);
    assert_string_equal(whole->interval_cron, "0 */1 * * * *");
    const struct cfg_policy *basic = cfg_map_get(&c->policies, "basic");
    assert_true(basic->retry_policy->multiplier.set);
    assert_true(basic->retry_policy->multiplier.v == 1.0);
    const struct cfg_cluster *cl = cfg_map_get(&c->clusters, "mainCluster");
    assert_int_equal(((struct cfg_seed_node *)cl->seed_nodes.v[0])->port.v, 3000);
    assert_string_equal(c->service->backup->timestamp_format, "EU");
    cfg_release(c);
}

/* YAML text -> model -> YAML text gives the same tree as the original file. */
static void check_yaml_roundtrip(const char *name)
{
    char *text = read_data(name);
    struct err e = {0};
    json_t *original;
    assert_int_equal(cfg_yaml_to_json(text, strlen(text), name, &original, &e), 0);
    struct cfg *c = load_data(name);
    char *yaml;
    assert_int_equal(cfg_to_yaml(c, &yaml, &e), 0);
    json_t *again;
    if (cfg_yaml_to_json(yaml, strlen(yaml), "emitted", &again, &e))
        fail_msg("%s\n%s", e.msg, yaml);
    if (!json_equal(original, again)) {
        char *a = json_dumps(original, JSON_SORT_KEYS), *b = json_dumps(again, JSON_SORT_KEYS);
        fprintf(stderr, "%s\n%s\n", a, b);
        fail_msg("round trip of %s differs", name);
    }
    json_decref(original);
    json_decref(again);
    free(yaml);
    free(text);
    cfg_release(c);
}

static void test_full_yaml_roundtrip(void **state)
{
    (void)state;
    check_yaml_roundtrip("full.yml");
}

static void test_abs_example_yaml_roundtrip(void **state)
{
    (void)state;
    check_yaml_roundtrip("abs-example.yml");
}

static void test_full_json_roundtrip(void **state)
{
    (void)state;
    struct cfg *c = load_data("full.yml");
    json_t *j1 = cfg_to_json(c, false);
    char *text = json_dumps(j1, 0);
    json_error_t jerr;
    json_t *parsed = json_loads(text, 0, &jerr);
    struct cfg *c2;
    struct err e = {0};
    if (cfg_from_json(parsed, &c2, &e))
        fail_msg("%s", e.msg);
    json_t *j2 = cfg_to_json(c2, false);
    assert_true(json_equal(j1, j2));
    json_decref(j1);
    json_decref(j2);
    json_decref(parsed);
    free(text);
    cfg_release(c);
    cfg_release(c2);
}

/* Marks every (type, field) the JSON tree sets, so the test knows full.yml covers the model. */
#define MAX_SEEN 512
struct seen_set {
    const struct cfg_field *fields[MAX_SEEN];
    size_t n;
};

static void mark(struct seen_set *s, const struct cfg_field *f)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->fields[i] == f)
            return;
    assert_true(s->n < MAX_SEEN);
    s->fields[s->n++] = f;
}

static void walk(const struct cfg_type *t, const json_t *obj, struct seen_set *s)
{
    for (size_t i = 0; i < t->n_fields; i++) {
        const struct cfg_field *f = &t->fields[i];
        const json_t *v = json_object_get(obj, f->key);
        if (!v)
            continue;
        if (f->kind != CFK_MAP)
            mark(s, f);
        if (f->kind == CFK_OBJ) {
            walk(f->sub, v, s);
        } else if (f->kind == CFK_OBJLIST) {
            size_t k;
            json_t *item;
            json_array_foreach(v, k, item) walk(f->sub, item, s);
        } else if (f->kind == CFK_MAP) {
            const char *name;
            json_t *item;
            mark(s, f);
            json_object_foreach((json_t *)v, name, item) walk(f->sub, item, s);
        }
    }
}

static void expect_all(const struct cfg_type *t, struct seen_set *s, int depth)
{
    assert_true(depth < 10);
    for (size_t i = 0; i < t->n_fields; i++) {
        const struct cfg_field *f = &t->fields[i];
        bool found = false;
        for (size_t k = 0; k < s->n; k++)
            found = found || s->fields[k] == f;
        if (!found)
            fail_msg("full.yml does not set %s.%s", t->name, f->key);
        if (f->sub)
            expect_all(f->sub, s, depth + 1);
    }
}

static void test_full_sets_every_field(void **state)
{
    (void)state;
    struct cfg *c = load_data("full.yml");
    json_t *j = cfg_to_json(c, false);
    struct seen_set *s = calloc(1, sizeof *s);
    walk(&cfg_type_config, j, s);
    expect_all(&cfg_type_config, s, 0);
    free(s);
    json_decref(j);
    cfg_release(c);
}

static void test_redaction(void **state)
{
    (void)state;
    struct cfg *c = load_data("full.yml");
    json_t *j = cfg_to_json(c, true);
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, "\"pw\""));
    assert_null(strstr(text, "SECRET"));
    assert_null(strstr(text, "AKIA"));
    assert_null(strstr(text, "csecret"));
    assert_null(strstr(text, "service_account"));
    json_t *pw = json_object_get(json_object_get(json_object_get(json_object_get(j, "aerospike-clusters"), "c1"),
                                                 "credentials"), "password");
    assert_string_equal(json_string_value(pw), "[secret]");
    assert_non_null(strstr(text, "secrets:azure:tenant"));
    assert_non_null(strstr(text, "secrets:keys:backup"));
    /* non-secret fields are shown */
    assert_non_null(strstr(text, "/pw"));
    free(text);
    json_decref(j);
    cfg_release(c);
}

/* ---- invalid configurations ------------------------------------------------------------ */

static const char *const base_yaml =
    "aerospike-clusters: {c: {seed-nodes: [{host-name: h, port: 3000}]}}\n"
    "storage: {s: {local-storage: {path: /tmp/x}}}\n"
    "backup-policies: {p: {}}\n"
    "backup-routines: {r: {interval-cron: '@daily', source-cluster: c, storage: s, backup-policy: p,"
    " namespaces: [test]}}\n";

/* Recursive merge; the string "DELETE" removes a key. */
static void merge(json_t *dst, json_t *patch)
{
    const char *key;
    json_t *v;
    json_object_foreach(patch, key, v) {
        json_t *cur = json_object_get(dst, key);
        if (json_is_string(v) && strcmp(json_string_value(v), "DELETE") == 0)
            json_object_del(dst, key);
        else if (json_is_object(v) && json_is_object(cur))
            merge(cur, v);
        else
            json_object_set(dst, key, v);
    }
}

static int load_patched(const char *patch_yaml, struct err *e)
{
    json_t *base, *patch;
    struct err pe = {0};
    assert_int_equal(cfg_yaml_to_json(base_yaml, strlen(base_yaml), "base", &base, &pe), 0);
    if (cfg_yaml_to_json(patch_yaml, strlen(patch_yaml), "patch", &patch, &pe))
        fail_msg("bad test patch %s: %s", patch_yaml, pe.msg);
    merge(base, patch);
    char *yaml;
    assert_int_equal(cfg_json_to_yaml(base, &yaml, &pe), 0);
    struct cfg *c = NULL;
    int rc = cfg_from_yaml(yaml, strlen(yaml), "test.yml", &c, e);
    /* the JSON path (API) must agree with the YAML path (files) */
    struct cfg *c2 = NULL;
    struct err je = {0};
    int rc2 = cfg_from_json(base, &c2, &je);
    if ((rc == 0) != (rc2 == 0))
        fail_msg("YAML and JSON disagree on %s: '%s' vs '%s'", patch_yaml, e->msg, je.msg);
    cfg_release(c);
    cfg_release(c2);
    free(yaml);
    json_decref(base);
    json_decref(patch);
    return rc;
}

struct bad_case {
    const char *patch;
    const char *expect; /* substring of the error message: the field path and reason */
};

static const struct bad_case bad_cases[] = {
    {"service: {http: {port: 70000}}", "service.http.port: must be <= 65535"},
    {"service: {http: {port: 'x'}}", "service.http.port: must be an integer"},
    {"service: {http: {context-path: abs}}", "service.http.context-path: must start with '/'"},
    {"service: {http: {rate: {white-list: [notanip]}}}", "service.http.rate.white-list[0]"},
    {"service: {http: {rate: {tps: 0}}}", "service.http.rate.tps: must be >= 1"},
    {"service: {http: {timeout: -5}}", "service.http.timeout: must be >= 0"},
    {"service: {logger: {level: LOUD}}", "service.logger.level: invalid value"},
    {"service: {logger: {format: XML}}", "service.logger.format: invalid value"},
    {"service: {logger: {file-writer: {filename: x, maxsize: -1}}}", "service.logger.file-writer.maxsize"},
    {"service: {logger: {file-writer: {maxsize: 1}}}", "service.logger.file-writer.filename: required"},
    {"service: {logger: {stdout-writer: 'yes'}}", "service.logger.stdout-writer: must be a boolean"},
    {"service: {backup: {timestamp-format: UNIX}}", "service.backup.timestamp-format: invalid value"},
    {"service: {unknown: 1}", "service.unknown: unknown field"},
    {"extra: 1", "extra: unknown field"},
    {"aerospike-clusters: {c: {seed-nodes: []}}", "aerospike-clusters.c.seed-nodes: must not be empty"},
    {"aerospike-clusters: {c: {seed-nodes: [{host-name: h}]}}", "aerospike-clusters.c.seed-nodes[0].port: required"},
    {"aerospike-clusters: {c: {seed-nodes: [{host-name: h, port: 0}]}}", "seed-nodes[0].port: must be >= 1"},
    {"aerospike-clusters: {c: {seed-nodes: {host-name: h}}}", "aerospike-clusters.c.seed-nodes: must be a list"},
    {"aerospike-clusters: {c: {credentials: {user: u, password: p, password-path: /f}}}",
     "aerospike-clusters.c.credentials: password and password-path are mutually exclusive"},
    {"aerospike-clusters: {c: {credentials: {user: u, password: p, secret-agent-name: a,"
     " secret-agent: {connection-type: unix, address: /s}}}}",
     "credentials: secret-agent and secret-agent-name are mutually exclusive"},
    {"aerospike-clusters: {c: {credentials: {user: u, password: p, auth-mode: LDAP}}}", "credentials.auth-mode: invalid value"},
    {"aerospike-clusters: {c: {credentials: {password: p}}}", "aerospike-clusters.c.credentials.user: required"},
    {"aerospike-clusters: {c: {tls: {cert-file: /c}}}", "aerospike-clusters.c.tls.key-file: required"},
    {"aerospike-clusters: {c: {tls: {protocols: TLSv9}}}", "aerospike-clusters.c.tls.protocols: unknown protocol"},
    {"aerospike-clusters: {c: {conn-timeout: 0}}", "aerospike-clusters.c.conn-timeout: must be >= 1"},
    {"aerospike-clusters: {c: {max-parallel-scans: -1}}", "aerospike-clusters.c.max-parallel-scans"},
    {"aerospike-clusters: {c: {prefer-racks: [1, 1]}}", "aerospike-clusters.c.prefer-racks[1]: duplicate"},
    {"aerospike-clusters: {c: {credentials: {user: u, password: p, secret-agent-name: nope}}}",
     "aerospike-clusters.c.credentials.secret-agent-name: secret agent \"nope\" is not defined"},
    {"storage: {s: {s3-storage: {bucket: b, s3-region: r}}}", "storage.s: exactly one of"},
    {"storage: {s: {local-storage: DELETE}}", "storage.s: exactly one of"},
    {"storage: {s: {local-storage: DELETE, s3-storage: {bucket: b}}}", "storage.s.s3-storage.s3-region: required"},
    {"storage: {s: {local-storage: DELETE, s3-storage: {bucket: b, s3-region: r, path: 's3://x'}}}",
     "storage.s.s3-storage.path"},
    {"storage: {s: {local-storage: DELETE, s3-storage: {bucket: b, s3-region: r, min-part-size: 1000}}}",
     "storage.s.s3-storage.min-part-size: must be >= 5242880"},
    {"storage: {s: {local-storage: DELETE, s3-storage: {bucket: b, s3-region: r, storage-class: {data: BOGUS}}}}",
     "storage.s.s3-storage.storage-class.data: invalid value"},
    {"storage: {s: {local-storage: DELETE, s3-storage: {bucket: b, s3-region: r, access-key-id: k}}}",
     "access-key-id and secret-access-key must be given together"},
    {"storage: {s: {local-storage: DELETE, azure-storage: {endpoint: e, container-name: c, account-name: a,"
     " account-key: k, tenant-id: t, client-id: i, client-secret: s}}}", "storage.s.azure-storage: ambiguous"},
    {"storage: {s: {local-storage: DELETE, gcp-storage: {bucket-name: b, key: k, key-file-path: /f}}}",
     "storage.s.gcp-storage: key and key-file-path are mutually exclusive"},
    {"storage: {s: {local-storage: {path: ''}}}", "storage.s.local-storage.path: must not be empty"},
    {"backup-policies: {p: {parallel: 0}}", "backup-policies.p.parallel: must be >= 1"},
    {"backup-policies: {p: {retention: {full: 0}}}", "backup-policies.p.retention.full: must be >= 1"},
    {"backup-policies: {p: {retention: {full: 2, incremental: 5}}}", "backup-policies.p.retention.incremental: must not exceed full"},
    {"backup-policies: {p: {encryption: {mode: AES128}}}", "backup-policies.p.encryption: mode AES128 needs one of"},
    {"backup-policies: {p: {encryption: {mode: AES128, key-file: /k, key-env: K}}}", "backup-policies.p.encryption: only one of"},
    {"backup-policies: {p: {encryption: {mode: AES512}}}", "backup-policies.p.encryption.mode: invalid value"},
    {"backup-policies: {p: {compression: {mode: ZSTD, level: 23}}}", "backup-policies.p.compression.level: must be <= 22"},
    {"backup-policies: {p: {compression: {mode: GZIP}}}", "backup-policies.p.compression.mode: invalid value"},
    {"backup-policies: {p: {retry-policy: {multiplier: 0.5}}}", "backup-policies.p.retry-policy.multiplier: must be >= 1"},
    {"backup-policies: {p: {file-limit: -1}}", "backup-policies.p.file-limit: must be >= 0"},
    {"backup-policies: {p: {sealed: 1}}", "backup-policies.p.sealed: must be a boolean"},
    {"backup-policies: {'a/b': {}}", "backup-policies.a/b: names must not contain '/'"},
    {"backup-routines: {r: {interval-cron: DELETE}}", "backup-routines.r.interval-cron: required"},
    {"backup-routines: {r: {interval-cron: '* * *'}}", "backup-routines.r.interval-cron: cron expression"},
    {"backup-routines: {r: {interval-cron: '@sometimes'}}", "backup-routines.r.interval-cron: unknown cron descriptor"},
    {"backup-routines: {r: {incr-interval-cron: '* * * * * $'}}", "backup-routines.r.incr-interval-cron: day-of-week field"},
    {"backup-routines: {r: {source-cluster: x}}", "backup-routines.r.source-cluster: cluster \"x\" is not defined"},
    {"backup-routines: {r: {storage: x}}", "backup-routines.r.storage: storage \"x\" is not defined"},
    {"backup-routines: {r: {backup-policy: x}}", "backup-routines.r.backup-policy: backup policy \"x\" is not defined"},
    {"backup-routines: {r: {secret-agent: x}}", "backup-routines.r.secret-agent: secret agent \"x\" is not defined"},
    {"backup-routines: {r: {namespaces: DELETE}}", "backup-routines.r.namespaces: required"},
    {"backup-routines: {r: {namespaces: [a, a]}}", "backup-routines.r.namespaces[1]: duplicate"},
    {"backup-routines: {r: {namespaces: ['']}}", "backup-routines.r.namespaces[0]: must not be empty"},
    {"backup-routines: {r: {partition-list: '1', node-list: ['h:3000']}}",
     "backup-routines.r: partition-list and node-list are mutually exclusive"},
    {"backup-routines: {r: {rack-list: [1], node-list: ['h:3000']}}", "node-list and rack-list are mutually exclusive"},
    {"backup-routines: {r: {partition-list: '4096'}}", "backup-routines.r.partition-list: partition 4096 out of range"},
    {"backup-routines: {r: {partition-list: '10-0'}}", "backup-routines.r.partition-list: range \"10-0\": count must be >= 1"},
    {"backup-routines: {r: {partition-list: '4000-200'}}", "backup-routines.r.partition-list: range \"4000-200\" goes past"},
    {"backup-routines: {r: {partition-list: '1,abc'}}", "backup-routines.r.partition-list: \"abc\" is not a partition"},
    {"backup-routines: {r: {partition-list: '0-10,5'}}", "backup-routines.r.partition-list: partition 5 is listed twice"},
    {"backup-routines: {r: {node-list: ['host:99999']}}", "backup-routines.r.node-list[0]"},
    {"backup-routines: {r: {rack-list: [1000001]}}", "backup-routines.r.rack-list[0]: must be <= 1000000"},
    {"aerospike-clusters: {c: {prefer-racks: [1]}}\nbackup-routines: {r: {rack-list: [1]}}", "prefer-racks"},
    {"backup-routines: {r: {disabled: 'true'}}", "backup-routines.r.disabled: must be a boolean"},
    {"secret-agents: {a: {connection-type: udp, address: x}}", "secret-agents.a.connection-type: invalid value"},
    {"secret-agents: {a: {connection-type: tcp, address: x}}", "secret-agents.a.port: required"},
    {"secret-agents: {a: {connection-type: unix}}", "secret-agents.a.address: required"},
    {"storage: {s: {local-storage: DELETE, s3-storage: {bucket: b, s3-region: r, min-part-size: 5242880}}}\n"
     "backup-policies: {p: {file-limit: 100000}}", "backup-routines.r: file-limit 100000 MB needs"},
    {"backup-routines: {r: [1]}", "backup-routines.r: must be an object"},
    {"backup-routines: {r: {set-list: s1}}", "backup-routines.r.set-list: must be a list of strings"},
};

static void test_invalid_configs(void **state)
{
    (void)state;
    size_t n = sizeof bad_cases / sizeof bad_cases[0];
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        struct err e = {0};
        if (load_patched(bad_cases[i].patch, &e) == 0)
            fail_msg("case %zu accepted: %s", i, bad_cases[i].patch);
        if (!strstr(e.msg, bad_cases[i].expect))
            fail_msg("case %zu: message '%s' lacks '%s'", i, e.msg, bad_cases[i].expect);
        if (strncmp(e.msg, "test.yml: ", 10) != 0)
            fail_msg("case %zu: message '%s' does not name the file", i, e.msg);
    }
}

static void test_base_config_is_valid(void **state)
{
    (void)state;
    struct err e = {0};
    if (load_patched("{}", &e))
        fail_msg("%s", e.msg);
}

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    struct cfg *c;
    struct err e = {0};
    const char *dup = "storage: {}\nstorage: {}\n";
    assert_int_not_equal(cfg_from_yaml(dup, strlen(dup), "dup.yml", &c, &e), 0);
    assert_non_null(strstr(e.msg, "dup.yml: line 2"));
    assert_non_null(strstr(e.msg, "duplicate key \"storage\""));
    const char *broken = "storage:\n  s: [unclosed\n";
    assert_int_not_equal(cfg_from_yaml(broken, strlen(broken), "broken.yml", &c, &e), 0);
    assert_non_null(strstr(e.msg, "broken.yml: line"));
    const char *list = "- a\n- b\n";
    assert_int_not_equal(cfg_from_yaml(list, strlen(list), "list.yml", &c, &e), 0);
    assert_non_null(strstr(e.msg, "configuration: must be an object"));
    const char *two = "storage: {}\n---\nstorage: {}\n";
    assert_int_not_equal(cfg_from_yaml(two, strlen(two), "two.yml", &c, &e), 0);
    assert_non_null(strstr(e.msg, "only one YAML document"));
}

static void test_yaml_scalars_and_aliases(void **state)
{
    (void)state;
    const char *text = "a: &x {p: 1}\nb: *x\nc: '123'\nd: 0x10\ne: ~\nf: 1.5\ng: 'true'\nh: True\n";
    json_t *j;
    struct err e = {0};
    assert_int_equal(cfg_yaml_to_json(text, strlen(text), "t", &j, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "b"), "p")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "c")), "123");
    assert_int_equal(json_integer_value(json_object_get(j, "d")), 16);
    assert_true(json_is_null(json_object_get(j, "e")));
    assert_true(json_real_value(json_object_get(j, "f")) == 1.5);
    assert_true(json_is_string(json_object_get(j, "g")));
    assert_true(json_is_true(json_object_get(j, "h")));
    /* emission quotes strings that would read back as other types */
    char *yaml;
    assert_int_equal(cfg_json_to_yaml(j, &yaml, &e), 0);
    json_t *back;
    assert_int_equal(cfg_yaml_to_json(yaml, strlen(yaml), "t2", &back, &e), 0);
    assert_true(json_equal(j, back));
    free(yaml);
    json_decref(j);
    json_decref(back);
}

static void test_yaml_numbers_as_strings(void **state)
{
    (void)state;
    /* Go's YAML decoder accepts a plain number for a string field; so do we (files only). */
    const char *text = "aerospike-clusters: {c: {seed-nodes: [{host-name: h, port: 3000}],"
                       " credentials: {user: 1000, password: 12345}}}\n";
    struct cfg *c;
    struct err e = {0};
    if (cfg_from_yaml(text, strlen(text), "t", &c, &e))
        fail_msg("%s", e.msg);
    const struct cfg_cluster *cl = cfg_map_get(&c->clusters, "c");
    assert_string_equal(cl->credentials->password, "12345");
    cfg_release(c);
}

static void test_partition_list(void **state)
{
    (void)state;
    struct cfg_partition_range r[8];
    size_t n = 0;
    struct err e = {0};
    assert_int_equal(cfg_parse_partition_list("0-100,200,4095", r, 8, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].begin, 0);
    assert_int_equal(r[0].count, 100);
    assert_int_equal(r[1].begin, 200);
    assert_int_equal(r[1].count, 1);
    assert_int_equal(r[2].begin, 4095);
    assert_int_equal(cfg_parse_partition_list("0-4096", r, 8, &n, &e), 0);
    assert_int_not_equal(cfg_parse_partition_list("", r, 8, &n, &e), 0);
    assert_int_not_equal(cfg_parse_partition_list("1,", r, 8, &n, &e), 0);
    assert_int_not_equal(cfg_parse_partition_list("-5", r, 8, &n, &e), 0);
    assert_int_not_equal(cfg_parse_partition_list("1 ,2", r, 8, &n, &e), 0);
}

static void test_cron_syntax(void **state)
{
    (void)state;
    struct err e = {0};
    assert_int_equal(cfg_check_cron("0 0 * * * *", &e), 0);
    assert_int_equal(cfg_check_cron("0 0 12 ? * MON-FRI", &e), 0);
    assert_int_equal(cfg_check_cron("@daily", &e), 0);
    assert_int_not_equal(cfg_check_cron("*/10 * * * *", &e), 0); /* ABS needs the seconds field */
    assert_int_not_equal(cfg_check_cron("* * * *", &e), 0);
    assert_int_not_equal(cfg_check_cron("* * * * * * * *", &e), 0);
    assert_int_not_equal(cfg_check_cron("* * * * * ;", &e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_config_loads),
        cmocka_unit_test(test_abs_example_loads),
        cmocka_unit_test(test_full_yaml_roundtrip),
        cmocka_unit_test(test_abs_example_yaml_roundtrip),
        cmocka_unit_test(test_full_json_roundtrip),
        cmocka_unit_test(test_full_sets_every_field),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_base_config_is_valid),
        cmocka_unit_test(test_invalid_configs),
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_yaml_scalars_and_aliases),
        cmocka_unit_test(test_yaml_numbers_as_strings),
        cmocka_unit_test(test_partition_list),
        cmocka_unit_test(test_cron_syntax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
