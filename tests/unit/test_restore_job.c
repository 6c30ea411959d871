/*
 * test_restore_job.c - the restore engine: the RestorePolicy decoder, the timestamp folder
 * selection on a fake layout, and live restores into the protocol emulator (started as a
 * child process on loopback; skipped when the binary is missing) from golden asbackup files
 * (plain, zstd+AES-256) with metadata.yaml: counters, indexes, UDFs, unique / replace /
 * generation policies, namespace remap, set filter, expired records, a corrupt file (file +
 * offset in the error) and cancellation.
 *
 * The emulator binary is found through $ABS_EMULATOR or at <test dir>/emulator/aerospike-emulator.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aerospike/as_cluster.h"
#include "aerospike/as_info.h"
#include "aerospike/as_write.h"
#include "jobs/backup_meta.h"
#include "jobs/restore_job.h"
#include "storage/storage.h"
#include "emu_launch.h"
#include "slurp.h"
#include "temp_storage.h"

#define ASB_DIR TEST_DATA_DIR "/asb"

/* ---- helpers ------------------------------------------------------------------------------- */

static char g_dir[64];
static struct stor *g_stor;

static int open_storage(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/rst-test-XXXXXX");
    return temp_storage_open(g_dir, &g_stor);
}

static void put_bytes(const char *key, const void *data, size_t len)
{
    struct err e;
    if (stor_put(g_stor, key, data, len, &e))
        fail_msg("put %s: %s", key, e.msg);
}

static void put_file(const char *key, const char *path)
{
    size_t len;
    void *d = slurp_file(path, &len);
    put_bytes(key, d, len);
    free(d);
}

static void put_meta(const char *folder, const char *ns, int64_t created, uint64_t records, const char *compression,
                     const char *encryption)
{
    struct backup_meta m = {.created_ms = created, .finished_ms = created + 1000, .from_ms = META_ZERO_TIME_MS,
                            .record_count = records, .file_count = 1};
    snprintf(m.namespace_, sizeof m.namespace_, "%s", ns);
    snprintf(m.compression, sizeof m.compression, "%s", compression);
    snprintf(m.encryption, sizeof m.encryption, "%s", encryption);
    char *text;
    struct err e;
    assert_int_equal(meta_render(&m, &text, &e), 0);
    char key[512];
    snprintf(key, sizeof key, "%s/metadata.yaml", folder);
    put_bytes(key, text, strlen(text));
    free(text);
}

/* ---- policy decoder ------------------------------------------------------------------------ */

static int decode(const char *json, bool ts, struct restore_policy *p, struct err *e)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    if (!j)
        fail_msg("bad test json %s: %s", json, je.text);
    int rc = restore_policy_from_json(j, ts, p, e);
    json_decref(j);
    return rc;
}

static void test_policy_defaults(void **state)
{
    (void)state;
    struct restore_policy p;
    struct err e;
    assert_int_equal(restore_policy_from_json(NULL, false, &p, &e), 0);
    assert_int_equal(p.parallel, 8);
    assert_int_equal(p.batch_size, 128);
    assert_int_equal(p.max_async_batches, 128);
    assert_int_equal(p.socket_timeout_ms, 600000);
    assert_int_equal(p.retry_base_ms, 2000);
    assert_int_equal(p.retry_max, 5);
    assert_false(p.replace || p.unique || p.no_generation || p.has_encryption || p.has_compression);
    assert_string_equal(p.encryption_mode, "NONE");
    restore_policy_free(&p);
    assert_int_equal(decode("{}", false, &p, &e), 0);
    restore_policy_free(&p);
}

static void test_policy_full(void **state)
{
    (void)state;
    struct restore_policy p;
    struct err e;
    int rc = decode("{\"parallel\":3,\"no-records\":false,\"no-indexes\":true,\"no-udfs\":true,"
                    "\"no-generation\":true,\"replace\":true,\"extra-ttl\":60,\"batch-size\":10,"
                    "\"max-async-batches\":4,\"disable-batch-writes\":true,\"tps\":100,\"bandwidth\":8,"
                    "\"namespace\":{\"source\":\"a\",\"destination\":\"b\"},\"set-list\":[\"s1\",\"s2\"],"
                    "\"bin-list\":[\"x\"],\"socket-timeout\":1000,\"total-timeout\":2000,"
                    "\"retry-policy\":{\"base-timeout\":10,\"max-retries\":2,\"multiplier\":1.5},"
                    "\"encryption\":{\"mode\":\"AES128\",\"key-file\":\"/k.pem\"},"
                    "\"compression\":{\"mode\":\"ZSTD\",\"level\":3},\"unique\":null}",
                    false, &p, &e);
    if (rc)
        fail_msg("%s", e.msg);
    assert_int_equal(p.parallel, 3);
    assert_true(p.no_indexes && p.no_udfs && p.no_generation && p.replace && p.disable_batch_writes);
    assert_int_equal(p.extra_ttl, 60);
    assert_int_equal(p.batch_size, 10);
    assert_int_equal(p.tps, 100);
    assert_string_equal(p.ns_source, "a");
    assert_string_equal(p.ns_destination, "b");
    assert_int_equal(p.n_set_list, 2);
    assert_string_equal(p.set_list[1], "s2");
    assert_int_equal(p.n_bin_list, 1);
    assert_int_equal(p.total_timeout_ms, 2000);
    assert_int_equal(p.retry_max, 2);
    assert_true(p.has_encryption && p.has_compression);
    assert_string_equal(p.encryption_mode, "AES128");
    assert_string_equal(p.key_file, "/k.pem");
    assert_string_equal(p.compression_mode, "ZSTD");
    restore_policy_free(&p);
}

static void expect_invalid(const char *json, bool ts, const char *msg)
{
    struct restore_policy p;
    struct err e = {0};
    int rc = decode(json, ts, &p, &e);
    if (rc != ERR_INVALID)
        fail_msg("%s: expected ERR_INVALID, got %d", json, rc);
    if (!strstr(e.msg, msg))
        fail_msg("%s: message \"%s\" lacks \"%s\"", json, e.msg, msg);
    assert_null(p.set_list);
    assert_null(p.ns_source);
}

static void test_policy_invalid(void **state)
{
    (void)state;
    expect_invalid("{\"batch-size\":0}", false, "policy.batch-size: must be >= 1");
    expect_invalid("{\"parallel\":0}", false, "policy.parallel: must be >= 1");
    expect_invalid("{\"parallel\":\"4\"}", false, "policy.parallel: must be an integer");
    expect_invalid("{\"parallel\":2.5}", false, "policy.parallel: must be an integer");
    expect_invalid("{\"tps\":-1}", false, "policy.tps: must be >= 0");
    expect_invalid("{\"replace\":1}", false, "policy.replace: must be a boolean");
    expect_invalid("{\"replace\":true,\"unique\":true}", false, "replace and unique");
    expect_invalid("{\"set-list\":[\"a\",\"b\"],\"wait-for-index\":true}", false, "policy.wait-for-index: unknown field");
    expect_invalid("{\"set-list\":[\"a\",1]}", false, "policy.set-list[1]: must be a string");
    expect_invalid("{\"bin-list\":\"a\"}", false, "policy.bin-list: must be an array");
    expect_invalid("{\"namespace\":{\"source\":\"a\"}}", false, "policy.namespace.destination: required");
    expect_invalid("{\"namespace\":{\"source\":\"a\",\"destination\":\"b\",\"x\":1}}", false,
                   "policy.namespace.x: unknown field");
    expect_invalid("{\"namespace\":{\"source\":\"\",\"destination\":\"b\"}}", false,
                   "policy.namespace.source: must not be empty");
    expect_invalid("{\"retry-policy\":{\"multiplier\":0.5}}", false, "policy.retry-policy.multiplier: must be >= 1");
    expect_invalid("{\"retry-policy\":{\"base-timeout\":0}}", false, "policy.retry-policy.base-timeout: must be >= 1");
    expect_invalid("{\"encryption\":{\"mode\":\"AES512\",\"key-file\":\"k\"}}", false,
                   "policy.encryption.mode: invalid value");
    expect_invalid("{\"encryption\":{\"mode\":\"AES256\"}}", false, "policy.encryption: mode AES256 needs");
    expect_invalid("{\"encryption\":{\"mode\":\"AES256\",\"key-file\":\"a\",\"key-env\":\"B\"}}", false,
                   "only one of");
    expect_invalid("{\"compression\":{\"mode\":\"LZ4\"}}", false, "policy.compression.mode: invalid value");
    expect_invalid("{\"compression\":{\"mode\":\"ZSTD\"}}", true, "policy.compression: unknown field");
    expect_invalid("[1]", false, "policy: must be an object");
}

/* ---- timestamp selection --------------------------------------------------------------------- */

static void test_timestamp_selection(void **state)
{
    (void)state;
    assert_int_equal(open_storage(), 0);
    /* namespace test: fulls at 1000 and 3000, incrementals 2000 (belongs to 1000), 4000, 5000, 7000 */
    put_meta("r/backup/1000/data/test", "test", 1000, 10, "NONE", "NONE");
    put_meta("r/backup/3000/data/test", "test", 3000, 30, "ZSTD", "AES256");
    put_meta("r/incremental/2000/data/test", "test", 2000, 2, "NONE", "NONE");
    put_meta("r/incremental/4000/data/test", "test", 4000, 4, "ZSTD", "NONE");
    put_meta("r/incremental/5000/data/test", "test", 5000, 5, "NONE", "NONE");
    put_meta("r/incremental/7000/data/test", "test", 7000, 7, "NONE", "NONE");
    /* namespace bar: full only after the time; namespace aaa: full at 1000 */
    put_meta("r/backup/6000/data/bar", "bar", 6000, 1, "NONE", "NONE");
    put_meta("r/backup/1000/data/aaa", "aaa", 1000, 1, "NONE", "NONE");
    put_bytes("r/backup/8000/data/test/0_test_1.asb", "x", 1); /* no metadata.yaml: not a backup */
    put_bytes("other/backup/1000/data/test/metadata.yaml", "garbage", 7);

    struct restore_chain *c;
    size_t n;
    struct err e;
    if (restore_folders_for_timestamp(g_stor, "r", 5000, &c, &n, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].ns, "aaa");
    assert_int_equal(c[0].n_folders, 1);
    assert_string_equal(c[1].ns, "test");
    assert_int_equal(c[1].n_folders, 3);
    assert_string_equal(c[1].folders[0].path, "r/backup/3000/data/test");
    assert_false(c[1].folders[0].incremental);
    assert_true(c[1].folders[0].zstd);
    assert_int_equal(c[1].folders[0].aes_bits, 256);
    assert_int_equal(c[1].folders[0].records, 30);
    assert_string_equal(c[1].folders[1].path, "r/incremental/4000/data/test");
    assert_true(c[1].folders[1].incremental && c[1].folders[1].zstd);
    assert_string_equal(c[1].folders[2].path, "r/incremental/5000/data/test");
    restore_chains_free(c, n);

    /* between the two fulls: the older full and its incremental */
    assert_int_equal(restore_folders_for_timestamp(g_stor, "r", 2500, &c, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(c[1].n_folders, 2);
    assert_string_equal(c[1].folders[0].path, "r/backup/1000/data/test");
    assert_string_equal(c[1].folders[1].path, "r/incremental/2000/data/test");
    restore_chains_free(c, n);

    /* late: bar joins, test gets every later incremental */
    assert_int_equal(restore_folders_for_timestamp(g_stor, "r", 9000, &c, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_string_equal(c[1].ns, "bar");
    assert_int_equal(c[2].n_folders, 4);
    restore_chains_free(c, n);

    assert_int_equal(restore_folders_for_timestamp(g_stor, "r", 999, &c, &n, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "no full backup"));
    assert_int_equal(restore_folders_for_timestamp(g_stor, "nope", 5000, &c, &n, &e), ERR_NOT_FOUND);
    assert_int_equal(restore_folders_for_timestamp(g_stor, "other", 5000, &c, &n, &e), ERR_NOT_FOUND);
    assert_int_equal(restore_folders_for_timestamp(g_stor, "..", 5000, &c, &n, &e), ERR_INVALID);

    /* folder load: compression from the metadata unless the policy says; bad paths refused */
    struct restore_folder f;
    assert_int_equal(restore_folder_load(g_stor, "r/backup/3000/data/test/", NULL, &f, &e), 0);
    assert_string_equal(f.path, "r/backup/3000/data/test");
    assert_true(f.zstd);
    assert_int_equal(f.aes_bits, 256);
    assert_int_equal(f.records, 30);
    restore_folder_free(&f);
    struct restore_policy p;
    assert_int_equal(decode("{\"compression\":{\"mode\":\"NONE\"}}", false, &p, &e), 0);
    assert_int_equal(restore_folder_load(g_stor, "r/backup/3000/data/test", &p, &f, &e), 0);
    assert_false(f.zstd);
    restore_folder_free(&f);
    restore_policy_free(&p);
    assert_int_equal(restore_folder_load(g_stor, "r/backup/8000/data/test", NULL, &f, &e), 0); /* no yaml: ok */
    assert_int_equal(f.records, 0);
    restore_folder_free(&f);
    assert_int_equal(restore_folder_load(g_stor, "../etc", NULL, &f, &e), ERR_INVALID);
    assert_int_equal(restore_folder_load(g_stor, "/abs/path", NULL, &f, &e), ERR_INVALID);
    assert_int_equal(restore_folder_load(g_stor, "other/backup/1000/data/test", NULL, &f, &e), ERR_INVALID);

    temp_storage_close(&g_stor, g_dir);
}

/* ---- emulator -------------------------------------------------------------------------------- */

static struct emu_proc g_emu = { .pid = -1 };
static struct as_cluster *g_cluster;

static int start_emulator(void)
{
    char port_file[128];
    snprintf(port_file, sizeof port_file, "/tmp/rst-live-%d.ports", (int)getpid());
    const char *args[] = { "--namespace", "test", "--namespace", "bar", "--namespace", "baz",
                           "--namespace", "qux", "--namespace", "ts", "--namespace", "ts2",
                           "--namespace", "par1", "--namespace", "par2", NULL };
    return emu_proc_start(&g_emu, port_file, 1, args);
}

static int live_setup(void **state)
{
    (void)state;
    if (open_storage() != 0)
        return -1;
    if (start_emulator() != 0)
        return 0; /* live tests skip */
    return emu_cluster_new(g_emu.ports[0], &g_cluster);
}

static int live_teardown(void **state)
{
    (void)state;
    emu_cluster_close(&g_cluster, &g_emu);
    temp_storage_close(&g_stor, g_dir);
    return 0;
}

#define NEED_EMULATOR() EMU_SKIP_WITHOUT(g_cluster)

static uint64_t ns_objects(const char *ns)
{
    struct as_node *n = as_cluster_random_node(g_cluster);
    assert_non_null(n);
    struct as_ns_info info;
    struct err e;
    int rc = as_info_namespace(n, ns, &info, &e);
    as_node_release(n);
    if (rc)
        fail_msg("namespace/%s: %s", ns, e.msg);
    return info.objects;
}

static size_t sindex_count(const char *ns)
{
    struct as_node *n = as_cluster_random_node(g_cluster);
    assert_non_null(n);
    struct as_sindex_info *v;
    size_t cnt;
    struct err e;
    int rc = as_info_sindex_list(n, ns, &v, &cnt, &e);
    as_node_release(n);
    if (rc)
        fail_msg("sindex-list: %s", e.msg);
    size_t in_ns = 0;
    for (size_t i = 0; i < cnt; i++)
        in_ns += strcmp(v[i].ns, ns) == 0;
    as_sindex_list_free(v, cnt);
    return in_ns;
}

static int run_folder(const char *path, const char *policy_json, struct restore_progress *p, struct err *e)
{
    struct restore_policy pol;
    if (decode(policy_json ? policy_json : "{}", false, &pol, e))
        fail_msg("policy: %s", e->msg);
    struct restore_folder f;
    if (restore_folder_load(g_stor, path, &pol, &f, e))
        fail_msg("folder: %s", e->msg);
    memset(p, 0, sizeof *p);
    struct restore_spec spec = {.folders = &f, .n_folders = 1, .policy = &pol};
    int rc = restore_run(&spec, g_cluster, g_stor, p, NULL, e);
    restore_folder_free(&f);
    restore_policy_free(&pol);
    return rc;
}

static void check_sum(const struct restore_progress *p)
{
    assert_int_equal(p->read_records, p->inserted_records + p->fresher_records + p->existed_records +
                                          p->ignored_records + p->skipped_records + p->expired_records);
}

static void test_live_plain(void **state)
{
    (void)state;
    NEED_EMULATOR();
    put_file("r/backup/1000/data/test/0_test_1.asb", ASB_DIR "/b-backup-full-p1/test_00000.asb");
    put_meta("r/backup/1000/data/test", "test", 1000, 2000, "NONE", "NONE");
    struct restore_progress p;
    struct err e;
    if (run_folder("r/backup/1000/data/test", "{\"parallel\":2}", &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.records_estimate, 2000);
    assert_int_equal(p.read_records, 2000);
    assert_int_equal(p.inserted_records, 2000);
    assert_int_equal(p.ignored_records, 0);
    assert_int_equal(p.errors_in_doubt, 0);
    assert_int_equal(p.udf_count, 1);
    assert_int_equal(p.index_count, 6);
    size_t len;
    free(slurp_file(ASB_DIR "/b-backup-full-p1/test_00000.asb", &len));
    assert_int_equal(p.total_bytes, len);
    check_sum(&p);
    assert_int_equal(ns_objects("test"), 2000);
    assert_int_equal(sindex_count("test"), 6);

    /* the same again with single writes and no generation check: everything rewritten, the
     * identical indexes are fine */
    if (run_folder("r/backup/1000/data/test", "{\"disable-batch-writes\":true,\"no-generation\":true}", &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.inserted_records, 2000);
    assert_int_equal(p.index_count, 6);
    assert_int_equal(p.index_conflicts, 0);
    assert_int_equal(ns_objects("test"), 2000);
}

static void test_live_policies(void **state)
{
    (void)state;
    NEED_EMULATOR();
    /* the hand-made dataset (generations 1..65535; 1025 records with generation 1) into bar */
    put_file("d/backup/1000/data/test/0_test_1.asb", ASB_DIR "/dataset.asb");
    const char *remap = "\"namespace\":{\"source\":\"test\",\"destination\":\"bar\"}";
    char pol[256];
    struct restore_progress p;
    struct err e;
    snprintf(pol, sizeof pol, "{%s,\"no-indexes\":true,\"batch-size\":50}", remap);
    if (run_folder("d/backup/1000/data/test", pol, &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.inserted_records, 2000);
    assert_int_equal(p.index_count, 0);
    assert_int_equal(p.udf_count, 1);
    assert_int_equal(ns_objects("bar"), 2000);
    assert_int_equal(sindex_count("bar"), 0);

    snprintf(pol, sizeof pol, "{%s,\"unique\":true}", remap);
    if (run_folder("d/backup/1000/data/test", pol, &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.existed_records, 2000);
    assert_int_equal(p.inserted_records, 0);
    assert_int_equal(p.index_count, 6);
    assert_int_equal(sindex_count("bar"), 6);
    check_sum(&p);

    /* replace keeps the generation condition: stored generation 1 beats backup generation 1 */
    snprintf(pol, sizeof pol, "{%s,\"replace\":true,\"no-indexes\":true,\"no-udfs\":true}", remap);
    if (run_folder("d/backup/1000/data/test", pol, &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.fresher_records, 1025);
    assert_int_equal(p.inserted_records, 975);
    assert_int_equal(p.udf_count, 0);
    check_sum(&p);

    snprintf(pol, sizeof pol, "{%s,\"no-generation\":true,\"disable-batch-writes\":true,\"no-indexes\":true}", remap);
    if (run_folder("d/backup/1000/data/test", pol, &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.inserted_records, 2000);
    check_sum(&p);

    /* no-records: only UDFs and indexes */
    snprintf(pol, sizeof pol, "{%s,\"no-records\":true}", remap);
    if (run_folder("d/backup/1000/data/test", pol, &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.read_records, 0);
    assert_int_equal(p.udf_count, 1);
    assert_int_equal(p.index_count, 6);

    /* indexes into a namespace the cluster does not have: the error names index and namespace */
    if (run_folder("d/backup/1000/data/test",
                   "{\"namespace\":{\"source\":\"test\",\"destination\":\"nope\"},\"no-records\":true,"
                   "\"no-udfs\":true}", &p, &e) == 0)
        fail_msg("restored indexes into a missing namespace");
    if (!strstr(e.msg, "of namespace nope"))
        fail_msg("%s", e.msg);
}

static void test_live_encrypted_filtered(void **state)
{
    (void)state;
    NEED_EMULATOR();
    put_file("e/backup/1000/data/test/0_test_1.asb", ASB_DIR "/e-backup-zstd-aes256/test_00000.asb");
    put_meta("e/backup/1000/data/test", "test", 1000, 2000, "ZSTD", "AES256");
    char pol[512];
    snprintf(pol, sizeof pol,
             "{\"namespace\":{\"source\":\"test\",\"destination\":\"baz\"},"
             "\"encryption\":{\"mode\":\"AES256\",\"key-file\":\"%s\"}}",
             ASB_DIR "/e-backup-zstd-aes256/key.pem");
    struct restore_progress p;
    struct err e;
    if (run_folder("e/backup/1000/data/test", pol, &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.inserted_records, 2000);
    assert_int_equal(ns_objects("baz"), 2000);

    /* without the key: a clear error */
    int rc = run_folder("e/backup/1000/data/test", "{\"namespace\":{\"source\":\"test\",\"destination\":\"baz\"}}",
                        &p, &e);
    assert_int_equal(rc, ERR_INVALID);
    assert_non_null(strstr(e.msg, "encrypted"));

    /* set filter into qux: users only */
    snprintf(pol, sizeof pol,
             "{\"namespace\":{\"source\":\"test\",\"destination\":\"qux\"},\"set-list\":[\"users\"],"
             "\"no-indexes\":true,\"encryption\":{\"mode\":\"AES256\",\"key-file\":\"%s\"}}",
             ASB_DIR "/e-backup-zstd-aes256/key.pem");
    if (run_folder("e/backup/1000/data/test", pol, &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.inserted_records, 900);
    assert_int_equal(p.skipped_records, 1100);
    check_sum(&p);
    assert_int_equal(ns_objects("qux"), 900);

    /* AES-128 with the key from the environment, into qux as well: the 1100 other records join */
    put_file("a/backup/1000/data/test/0_test_1.asb", ASB_DIR "/e-backup-aes128/test_00000.asb");
    put_meta("a/backup/1000/data/test", "test", 1000, 2000, "NONE", "AES128");
    size_t klen;
    char *pem = slurp_file(ASB_DIR "/e-backup-aes128/key.pem", &klen);
    pem[klen] = 0;
    setenv("RST_TEST_KEY", pem, 1);
    free(pem);
    if (run_folder("a/backup/1000/data/test",
                   "{\"namespace\":{\"source\":\"test\",\"destination\":\"qux\"},\"no-generation\":true,"
                   "\"no-indexes\":true,\"encryption\":{\"mode\":\"AES128\",\"key-env\":\"RST_TEST_KEY\"}}",
                   &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.inserted_records, 2000);
    assert_int_equal(ns_objects("qux"), 2000);
    unsetenv("RST_TEST_KEY");

    /* a destination namespace the cluster does not have */
    rc = run_folder("a/backup/1000/data/test",
                    "{\"namespace\":{\"source\":\"test\",\"destination\":\"nope\"},\"no-indexes\":true,"
                    "\"no-udfs\":true,\"encryption\":{\"mode\":\"AES128\",\"key-file\":\"" ASB_DIR
                    "/e-backup-aes128/key.pem\"}}",
                    &p, &e);
    assert_int_not_equal(rc, 0);
    if (!strstr(e.msg, "namespace nope not found"))
        fail_msg("%s", e.msg);
}

static const char SMALL_HEAD[] = "Version 3.1\n# namespace test\n";
static const char REC_EXPIRED[] = "+ n test\n+ d AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 100\n+ b 1\n- I a 1\n";
static const char REC_OK[] = "+ n test\n+ d AQAAAAAAAAAAAAAAAAAAAAAAAAA=\n+ g 1\n+ t 0\n+ b 1\n- I a 2\n";

static void test_live_expired_and_corrupt(void **state)
{
    (void)state;
    NEED_EMULATOR();
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s%s", SMALL_HEAD, REC_EXPIRED, REC_OK);
    put_bytes("x/backup/1000/data/test/0_test_1.asb", buf, strlen(buf));
    struct restore_progress p;
    struct err e;
    if (run_folder("x/backup/1000/data/test", NULL, &p, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.read_records, 2);
    assert_int_equal(p.expired_records, 1);
    assert_int_equal(p.inserted_records, 1);

    /* a bad line: the error names the object and the offset */
    int n = snprintf(buf, sizeof buf, "%s%s", SMALL_HEAD, REC_OK);
    size_t bad_at = (size_t)n;
    snprintf(buf + n, sizeof buf - (size_t)n, "+ q what\n");
    put_bytes("y/backup/1000/data/test/0_test_1.asb", buf, strlen(buf));
    int rc = run_folder("y/backup/1000/data/test", NULL, &p, &e);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e.msg, "y/backup/1000/data/test/0_test_1.asb"));
    char off[64];
    snprintf(off, sizeof off, "offset %zu", bad_at + 2); /* the 'q' after "+ " */
    if (!strstr(e.msg, off))
        fail_msg("\"%s\" lacks \"%s\"", e.msg, off);

    /* a compressed file read as plain */
    put_file("z/backup/1000/data/test/0_test_1.asb", ASB_DIR "/e-backup-zstd/test_00000.asb");
    rc = run_folder("z/backup/1000/data/test", "{\"compression\":{\"mode\":\"NONE\"}}", &p, &e);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(e.msg, "z/backup/1000/data/test/0_test_1.asb"));

    /* an empty folder */
    rc = run_folder("none/backup/1/data/test", NULL, &p, &e);
    assert_int_equal(rc, ERR_NOT_FOUND);
}

struct bg {
    struct restore_spec spec;
    struct restore_progress p;
    volatile bool cancel;
    int rc;
    struct err e;
};

static void *bg_main(void *arg)
{
    struct bg *b = arg;
    b->rc = restore_run(&b->spec, g_cluster, g_stor, &b->p, &b->cancel, &b->e);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_live_tps_and_cancel(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct restore_policy pol;
    struct err e;
    assert_int_equal(decode("{\"tps\":200,\"no-generation\":true,\"parallel\":2}", false, &pol, &e), 0);
    struct restore_folder f;
    assert_int_equal(restore_folder_load(g_stor, "r/backup/1000/data/test", &pol, &f, &e), 0);
    struct bg b = {.spec = {.folders = &f, .n_folders = 1, .policy = &pol}};
    pthread_t t;
    double t0 = now_s();
    assert_int_equal(pthread_create(&t, NULL, bg_main, &b), 0);
    struct timespec ts = {0, 500 * 1000000L};
    nanosleep(&ts, NULL);
    uint64_t read = __atomic_load_n(&b.p.read_records, __ATOMIC_RELAXED);
    b.cancel = true;
    pthread_join(t, NULL);
    double took = now_s() - t0;
    assert_int_equal(b.rc, ERR_UNAVAILABLE);
    assert_non_null(strstr(b.e.msg, "cancel"));
    assert_true(took < 2.0);
    /* 200 records/s for 0.5 s (plus the first batch's worth of slack) */
    if (read > 300)
        fail_msg("tps not applied: %llu records read in 0.5 s", (unsigned long long)read);
    assert_true(b.p.read_records < 2000);
    restore_folder_free(&f);
    restore_policy_free(&pol);
}

/* point in time: a full backup then an incremental (400 changed records: 300 new, 100 updated
 * with generations 2 and 4), chosen by restore_folders_for_timestamp and applied in order */
static void test_live_timestamp_chain(void **state)
{
    (void)state;
    NEED_EMULATOR();
    put_file("t/backup/1000/data/test/0_test_1.asb", ASB_DIR "/b-backup-full-p1/test_00000.asb");
    put_meta("t/backup/1000/data/test", "test", 1000, 2000, "NONE", "NONE");
    put_file("t/incremental/2000/data/test/0_test_2.asb", ASB_DIR "/c-backup-modified-after/test_00000.asb");
    put_meta("t/incremental/2000/data/test", "test", 2000, 400, "NONE", "NONE");
    put_file("t/incremental/9000/data/test/0_test_3.asb", ASB_DIR "/dataset.asb"); /* after the time */
    put_meta("t/incremental/9000/data/test", "test", 9000, 2000, "NONE", "NONE");
    struct restore_chain *c;
    size_t n;
    struct err e;
    if (restore_folders_for_timestamp(g_stor, "t", 3000, &c, &n, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].n_folders, 2);
    struct restore_policy pol;
    assert_int_equal(decode("{\"namespace\":{\"source\":\"test\",\"destination\":\"ts\"},\"no-indexes\":true}",
                            true, &pol, &e), 0);
    struct restore_spec spec = {.folders = c[0].folders, .n_folders = c[0].n_folders, .policy = &pol};
    struct restore_progress p = {0};
    if (restore_run(&spec, g_cluster, g_stor, &p, NULL, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.records_estimate, 2400);
    assert_int_equal(p.read_records, 2400);
    assert_int_equal(p.inserted_records + p.expired_records, 2400); /* 250 new events expire on 2026-12-25 */
    assert_int_equal(p.files_done, 2);
    check_sum(&p);
    assert_int_equal(ns_objects("ts"), 2300 - p.expired_records);
    restore_policy_free(&pol);

    /* reordered into an empty namespace: newest first, create-only; the 100 older versions of
     * the updated users are not written */
    bool empty = false;
    assert_int_equal(restore_namespace_empty(g_cluster, "ts", &empty, &e), 0);
    assert_false(empty);
    assert_int_equal(restore_namespace_empty(g_cluster, "ts2", &empty, &e), 0);
    assert_true(empty);
    assert_int_not_equal(restore_namespace_empty(g_cluster, "nope", &empty, &e), 0);
    assert_int_equal(decode("{\"namespace\":{\"source\":\"test\",\"destination\":\"ts2\"}}", true, &pol, &e), 0);
    spec.reorder = true;
    memset(&p, 0, sizeof p);
    if (restore_run(&spec, g_cluster, g_stor, &p, NULL, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.read_records, 2400);
    assert_int_equal(p.existed_records, 100);
    assert_int_equal(p.inserted_records + p.expired_records, 2300);
    assert_int_equal(p.index_count, 12); /* asbackup's incremental file carries the index lines too */
    assert_int_equal(sindex_count("ts2"), 6);
    check_sum(&p);
    assert_int_equal(ns_objects("ts2"), 2300 - p.expired_records);
    restore_policy_free(&pol);
    restore_chains_free(c, n);
}

/* retry n waits base x multiplier^(n-1) (ABS retry-policy), capped at 10 minutes */
static void test_retry_delay(void **state)
{
    (void)state;
    struct as_write_policy p = {.retry_sleep_ms = 100, .retry_multiplier = 1.5};
    assert_int_equal(as_write_retry_delay_ms(&p, 1), 100);
    assert_int_equal(as_write_retry_delay_ms(&p, 2), 150);
    assert_int_equal(as_write_retry_delay_ms(&p, 3), 225);
    p.retry_multiplier = 1.0;
    assert_int_equal(as_write_retry_delay_ms(&p, 5), 100);
    p.retry_multiplier = 0; /* unset: doubling */
    assert_int_equal(as_write_retry_delay_ms(&p, 4), 800);
    p.retry_sleep_ms = 2000;
    p.retry_multiplier = 10;
    assert_int_equal(as_write_retry_delay_ms(&p, 9), AS_WRITE_MAX_RETRY_DELAY_MS);
    struct restore_policy rp;
    struct err e;
    assert_int_equal(decode("{\"retry-policy\":{\"base-timeout\":10,\"multiplier\":3.5,\"max-retries\":0}}", false,
                            &rp, &e), 0);
    assert_true(rp.retry_multiplier == 3.5);
    assert_int_equal(rp.retry_max, 0);
    restore_policy_free(&rp);
}

static void make_record(struct as_record *r, struct as_bin *bin, char *key, size_t cap, int i)
{
    int kl = snprintf(key, cap, "pipe-%d", i);
    *bin = (struct as_bin){.name = "v", .name_len = 1, .v = {.type = AS_PARTICLE_INTEGER, .i = i}};
    *r = (struct as_record){.ns = "baz", .ns_len = 3, .n_bins = 1, .bins = bin,
                            .key = {.type = AS_PARTICLE_STRING, .data = (const uint8_t *)key, .len = (uint32_t)kl}};
    struct err e;
    assert_int_equal(as_digest_str(NULL, key, r->digest, &e), 0);
}

/* max-async-batches: the write pipe keeps several batches out at once (each on its own
 * connection) and hands them back oldest first, every row answered (new keys pipe-<i> into baz) */
static void test_live_write_pipe(void **state)
{
    (void)state;
    NEED_EMULATOR();
    enum { BATCHES = 4, ROWS = 20 };
    static struct as_record recs[BATCHES * ROWS];
    static struct as_bin bins[BATCHES * ROWS];
    static char keys[BATCHES * ROWS][16];
    static struct as_write_item items[BATCHES * ROWS];
    for (int i = 0; i < BATCHES * ROWS; i++) {
        make_record(&recs[i], &bins[i], keys[i], sizeof keys[i], i);
        items[i] = (struct as_write_item){.rec = &recs[i], .ttl = AS_TTL_NEVER_EXPIRE};
    }
    struct as_write_policy p = {.exists = AS_EXISTS_CREATE_OR_REPLACE, .send_key = true};
    struct as_write_pipe *pp;
    struct err e;
    uint64_t before = ns_objects("baz");
    assert_int_equal(as_write_pipe_new(&pp, BATCHES, &e), 0);
    emu_cluster_info(g_cluster, "emulator-fault:delay-ms=150\n", NULL, 0);
    double t0 = now_s();
    for (int b = 0; b < BATCHES; b++)
        assert_int_equal(as_write_pipe_submit(pp, g_cluster, &p, &items[b * ROWS], ROWS, false, &items[b * ROWS], &e), 0);
    assert_int_equal(as_write_pipe_in_flight(pp), BATCHES); /* all out before any answer */
    for (int b = 0; b < BATCHES; b++) {
        void *tag;
        int wrc;
        assert_int_equal(as_write_pipe_next(pp, g_cluster, &p, &tag, &wrc, &e), 0);
        assert_int_equal(wrc, 0);
        assert_ptr_equal(tag, &items[b * ROWS]);
    }
    double took = now_s() - t0;
    emu_cluster_info(g_cluster, "emulator-fault:delay-ms=0\n", NULL, 0);
    void *tag;
    int wrc;
    assert_int_equal(as_write_pipe_next(pp, g_cluster, &p, &tag, &wrc, &e), 1);
    for (int i = 0; i < BATCHES * ROWS; i++)
        assert_int_equal(items[i].result, 0);
    assert_true(took >= 0.15);
    as_write_pipe_free(pp);
    assert_int_equal(ns_objects("baz"), before + BATCHES * ROWS);

    /* single writes through the pipe too */
    assert_int_equal(as_write_pipe_new(&pp, 3, &e), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(as_write_pipe_submit(pp, g_cluster, &p, &items[i], 1, true, &items[i], &e), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(as_write_pipe_next(pp, g_cluster, &p, &tag, &wrc, &e), 0);
        assert_int_equal(wrc, 0);
        assert_ptr_equal(tag, &items[i]);
        assert_int_equal(items[i].result, 0);
    }
    as_write_pipe_free(pp);
}

/* the retry policy's multiplier: every attempt times out (replies delayed beyond the socket
 * timeout), retries wait 100 ms then 100 x 6 ms: at least 0.7 s in all, where a doubling
 * backoff would take 0.3 s plus the timeouts */
static void test_live_retry_multiplier(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct as_record rec;
    struct as_bin bin;
    char key[16];
    make_record(&rec, &bin, key, sizeof key, 1000);
    struct as_write_item it = {.rec = &rec, .ttl = AS_TTL_NEVER_EXPIRE};
    struct as_write_policy p = {.exists = AS_EXISTS_CREATE_OR_REPLACE, .send_key = true, .socket_timeout_ms = 40,
                                .total_timeout_ms = 40, .max_retries = 2, .max_retries_set = true,
                                .retry_sleep_ms = 100, .retry_multiplier = 6.0};
    struct as_writer *w;
    struct err e;
    assert_int_equal(as_writer_new(&w, &e), 0);
    emu_cluster_info(g_cluster, "emulator-fault:delay-ms=400\n", NULL, 0);
    double t0 = now_s();
    int rc = as_write_put(w, g_cluster, &p, &it, &e);
    double took = now_s() - t0;
    emu_cluster_info(g_cluster, "emulator-fault:delay-ms=0\n", NULL, 0);
    assert_int_not_equal(rc, 0);
    assert_int_equal(it.attempts, 3);
    if (took < 0.7)
        fail_msg("retries took %.3f s: the multiplier was not applied", took);
    /* max-retries 0: one attempt only */
    p.max_retries = 0;
    emu_cluster_info(g_cluster, "emulator-fault:delay-ms=400\n", NULL, 0);
    rc = as_write_put(w, g_cluster, &p, &it, &e);
    emu_cluster_info(g_cluster, "emulator-fault:delay-ms=0\n", NULL, 0);
    assert_int_not_equal(rc, 0);
    assert_int_equal(it.attempts, 1);
    as_writer_free(w);
    struct timespec ts = {0, 500 * 1000000L}; /* let the delayed replies drain */
    nanosleep(&ts, NULL);
}

/* namespaces in parallel: two chains at once into two namespaces; a failing one (unknown
 * destination namespace) stops the other and its error is the one reported */
static void test_live_namespaces_parallel(void **state)
{
    (void)state;
    NEED_EMULATOR();
    struct restore_policy p1, p2;
    struct err e;
    assert_int_equal(decode("{\"namespace\":{\"source\":\"test\",\"destination\":\"par1\"},\"no-indexes\":true,"
                            "\"max-async-batches\":4,\"batch-size\":32}", false, &p1, &e), 0);
    assert_int_equal(decode("{\"namespace\":{\"source\":\"test\",\"destination\":\"par2\"},\"no-indexes\":true,"
                            "\"disable-batch-writes\":true,\"max-async-batches\":16}", false, &p2, &e), 0);
    struct restore_folder f;
    assert_int_equal(restore_folder_load(g_stor, "r/backup/1000/data/test", NULL, &f, &e), 0);
    struct restore_spec specs[2] = {{.folders = &f, .n_folders = 1, .policy = &p1},
                                    {.folders = &f, .n_folders = 1, .policy = &p2}};
    struct restore_progress p = {0};
    if (restore_run_parallel(specs, 2, g_cluster, g_stor, &p, NULL, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(p.read_records, 4000);
    assert_int_equal(p.records_estimate, 4000);
    check_sum(&p);
    assert_int_equal(ns_objects("par1"), 2000);
    assert_int_equal(ns_objects("par2"), 2000);
    restore_policy_free(&p2);
    assert_int_equal(decode("{\"namespace\":{\"source\":\"test\",\"destination\":\"nope\"},\"no-indexes\":true}",
                            false, &p2, &e), 0);
    memset(&p, 0, sizeof p);
    assert_int_not_equal(restore_run_parallel(specs, 2, g_cluster, g_stor, &p, NULL, &e), 0);
    if (!strstr(e.msg, "nope"))
        fail_msg("error: %s", e.msg);
    restore_policy_free(&p1);
    restore_policy_free(&p2);
    restore_folder_free(&f);
}

int main(void)
{
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(test_policy_defaults),
        cmocka_unit_test(test_policy_full),
        cmocka_unit_test(test_policy_invalid),
        cmocka_unit_test(test_timestamp_selection),
        cmocka_unit_test(test_retry_delay),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_live_plain),
        cmocka_unit_test(test_live_policies),
        cmocka_unit_test(test_live_encrypted_filtered),
        cmocka_unit_test(test_live_expired_and_corrupt),
        cmocka_unit_test(test_live_timestamp_chain),
        cmocka_unit_test(test_live_tps_and_cancel),
        cmocka_unit_test(test_live_write_pipe),
        cmocka_unit_test(test_live_retry_multiplier),
        cmocka_unit_test(test_live_namespaces_parallel),
    };
    int rc = cmocka_run_group_tests_name("restore_offline", offline, NULL, NULL);
    rc |= cmocka_run_group_tests_name("restore_live", live, live_setup, live_teardown);
    return rc;
}
