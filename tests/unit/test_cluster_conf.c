/*
 * test_cluster_conf.c - aerospike.conf rendering of get-config replies (jobs/cluster_conf):
 * exact output of a small case (nesting, named stanzas, lists, seeds, dropped values,
 * logging), the real CE 8.1.2 replies of capture.decoded.txt, and refused input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jobs/cluster_conf.h"

/* Replies of a CE 8.1.2 node (/work/shared/wire/a-info-commands/capture.decoded.txt). */
static const char CAP_SERVICE[] =
    "advertise-ipv6=false;auto-pin=none;batch-index-threads=2;"
    "batch-max-buffers-per-queue=255;batch-max-requests=0;"
    "batch-max-unused-buffers=256;cgroup-mem-tracking=false;cluster-name=backup-test;"
    "debug-allocations=false;disable-udf-execution=false;"
    "enable-benchmarks-fabric=false;enable-health-check=false;enable-hist-info=false;"
    "enforce-best-practices=false;indent-allocations=false;info-max-ms=10000;"
    "info-threads=16;keep-caps-ssd-health=false;log-local-time=false;"
    "log-millis=false;microsecond-histograms=false;migrate-fill-delay=0;"
    "migrate-max-num-incoming=4;migrate-threads=1;min-cluster-size=1;"
    "node-id=BB9000000000001;node-id-interface=null;os-group-perms=false;"
    "pidfile=null;poison-allocations=false;proto-fd-idle-ms=0;proto-fd-max=2048;"
    "quarantine-allocations=0;query-max-done=100;query-threads-limit=128;"
    "run-as-daemon=false;secrets-address-port=null;secrets-tls-context=null;"
    "secrets-uds-path=null;service-threads=2;sindex-builder-threads=4;"
    "sindex-gc-period=10;stay-quiesced=false;ticker-interval=10;tls-refresh-period=0;"
    "transaction-max-ms=1000;transaction-retry-ms=1002;vault-ca=null;"
    "vault-namespace=null;vault-path=null;vault-token-file=null;vault-url=null;"
    "work-directory=/var/lib/aerospike-wire/node1/work";
static const char CAP_NETWORK[] =
    "service.port=3000;service.address=127.0.0.1;service.access-port=0;"
    "service.access-address=127.0.0.1;service.alternate-access-port=0;"
    "service.tls-port=0;service.tls-access-port=0;"
    "service.tls-alternate-access-port=0;service.tls-name=null;"
    "service.disable-localhost=false;admin.port=3003;admin.address=127.0.0.1;"
    "admin.tls-port=0;admin.tls-name=null;admin.disable-localhost=false;"
    "heartbeat.mode=mesh;heartbeat.address=127.0.0.1;heartbeat.port=3002;"
    "heartbeat.tls-port=0;heartbeat.tls-name=null;heartbeat.interval=150;"
    "heartbeat.timeout=10;heartbeat.connect-timeout-ms=500;heartbeat.mtu=65536;"
    "heartbeat.protocol=v3;fabric.address=127.0.0.1;fabric.tls-port=0;"
    "fabric.tls-name=null;fabric.channel-bulk-fds=2;"
    "fabric.channel-bulk-recv-threads=4;fabric.channel-ctrl-fds=1;"
    "fabric.channel-ctrl-recv-threads=4;fabric.channel-meta-fds=1;"
    "fabric.channel-meta-recv-threads=4;fabric.channel-rw-fds=8;"
    "fabric.channel-rw-recv-pools=1;fabric.channel-rw-recv-threads=16;"
    "fabric.keepalive-enabled=true;fabric.keepalive-intvl=1;"
    "fabric.keepalive-probes=10;fabric.keepalive-time=1;fabric.latency-max-ms=5;"
    "fabric.port=3001;fabric.recv-rearm-threshold=1024;fabric.send-threads=8";
static const char CAP_NS_TEST[] =
    "active-rack=0;allow-ttl-without-nsup=false;apply-ttl-reductions=true;"
    "auto-revive=false;background-query-max-rps=10000;"
    "conflict-resolution-policy=generation;conflict-resolve-writes=false;"
    "default-read-touch-ttl-pct=0;default-ttl=0;disable-cold-start-eviction=false;"
    "disable-mrt-writes=false;disable-write-dup-res=false;disallow-expunge=false;"
    "disallow-null-setname=false;enable-benchmarks-batch-sub=false;"
    "enable-benchmarks-ops-sub=false;enable-benchmarks-read=false;"
    "enable-benchmarks-udf=false;enable-benchmarks-udf-sub=false;"
    "enable-benchmarks-write=false;enable-hist-proxy=false;evict-hist-buckets=10000;"
    "evict-indexes-memory-pct=0;evict-tenths-pct=5;force-long-queries=false;"
    "ignore-migrate-fill-delay=false;index-stage-size=1073741824;"
    "indexes-memory-budget=0;inline-short-queries=false;max-record-size=1048576;"
    "migrate-order=5;migrate-retransmit-ms=5000;migrate-skip-unreadable=false;"
    "migrate-sleep=1;mrt-duration=0;nsup-hist-period=3600;nsup-period=10;"
    "nsup-threads=1;partition-tree-sprigs=256;prefer-uniform-balance=false;rack-id=0;"
    "read-consistency-level-override=off;reject-non-xdr-writes=false;"
    "reject-xdr-writes=false;replication-factor=1;sindex-stage-size=1073741824;"
    "single-query-threads=4;stop-writes-sys-memory-pct=90;strong-consistency=false;"
    "strong-consistency-allow-expunge=false;tomb-raider-eligible-age=86400;"
    "tomb-raider-period=86400;tomb-raider-unmark-threads=0;"
    "transaction-pending-limit=20;truncate-threads=4;write-commit-level-override=off;"
    "xdr-bin-tombstone-ttl=86400;xdr-tomb-raider-period=120;"
    "xdr-tomb-raider-threads=1;geo2dsphere-within.strict=true;"
    "geo2dsphere-within.min-level=1;geo2dsphere-within.max-level=20;"
    "geo2dsphere-within.max-cells=12;geo2dsphere-within.level-mod=1;"
    "geo2dsphere-within.earth-radius-meters=6371000;index-type=mem;sindex-type=mem;"
    "storage-engine=memory;storage-engine.stripe[0]=stripe-0;"
    "storage-engine.stripe[1]=stripe-1;storage-engine.stripe[2]=stripe-2;"
    "storage-engine.stripe[3]=stripe-3;storage-engine.stripe[4]=stripe-4;"
    "storage-engine.stripe[5]=stripe-5;storage-engine.stripe[6]=stripe-6;"
    "storage-engine.stripe[7]=stripe-7;storage-engine.commit-to-device=false;"
    "storage-engine.compression=none;storage-engine.compression-acceleration=0;"
    "storage-engine.compression-level=0;storage-engine.data-size=1073741824;"
    "storage-engine.defrag-lwm-pct=50;storage-engine.defrag-queue-min=0;"
    "storage-engine.defrag-sleep=1000;storage-engine.defrag-startup-minimum=0;"
    "storage-engine.direct-files=false;storage-engine.disable-odsync=false;"
    "storage-engine.enable-benchmarks-storage=false;"
    "storage-engine.encryption-key-file=null;"
    "storage-engine.encryption-old-key-file=null;storage-engine.evict-used-pct=0;"
    "storage-engine.filesize=0;storage-engine.flush-max-ms=1000;"
    "storage-engine.max-write-cache=67108864;storage-engine.stop-writes-avail-pct=5;"
    "storage-engine.stop-writes-used-pct=70;storage-engine.tomb-raider-sleep=1000";

static char *render_ok(const struct cluster_conf_input *in)
{
    char *out = NULL;
    struct err e = {0};
    int rc = cluster_conf_render(in, &out, &e);
    if (rc)
        print_message("render: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_non_null(out);
    return out;
}

static void test_small_exact(void **state)
{
    (void)state;
    const struct cluster_conf_log_sink sinks[] = {
        {"stderr", "misc:CRITICAL;alloc:CRITICAL;info:INFO;namespace:INFO;migrate:INFO"},
        {"/var/log/aerospike/aerospike.log", "misc:INFO;alloc:INFO"},
    };
    const struct cluster_conf_ns nss[] = {
        {"test", "replication-factor=2;default-ttl=0;geo2dsphere-within.strict=true;"
                 "geo2dsphere-within.max-cells=12;index-type=mem;storage-engine=device;"
                 "storage-engine.file[0]=/opt/aerospike/a.dat;"
                 "storage-engine.file[1]=/opt/aerospike/b.dat;storage-engine.filesize=4294967296;"
                 "storage-engine.stripe[0]=stripe-0;storage-engine.encryption-key-file=null"},
        {"bar", "replication-factor=1;storage-engine=memory;storage-engine.data-size=1073741824"},
    };
    const struct cluster_conf_input in = {
        .service = "cluster-name=backup-test;node-id=BB9000000000001;pidfile=null;"
                   "proto-fd-max=2048",
        .network = "service.port=3000;service.address=10.0.0.5,10.0.1.5;service.access-port=0;"
                   "service.tls-name=null;admin.port=3003;heartbeat.mode=mesh;"
                   "heartbeat.port=3002;heartbeat.mesh-seed-address-port[0]=10.0.0.1:3002;"
                   "heartbeat.mesh-seed-address-port[1]=::1:3002;heartbeat.interval=150;"
                   "fabric.port=3001;fabric.tls-port=0",
        .logging = sinks,
        .n_logging = 2,
        .namespaces = nss,
        .n_namespaces = 2,
    };
    char *out = render_ok(&in);
    assert_string_equal(out,
                        "service {\n"
                        "    cluster-name backup-test\n"
                        "    node-id BB9000000000001\n"
                        "    proto-fd-max 2048\n"
                        "}\n"
                        "\n"
                        "logging {\n"
                        "    console {\n"
                        "        context any info\n"
                        "        context misc critical\n"
                        "        context alloc critical\n"
                        "    }\n"
                        "    file /var/log/aerospike/aerospike.log {\n"
                        "        context any info\n"
                        "    }\n"
                        "}\n"
                        "\n"
                        "network {\n"
                        "    service {\n"
                        "        port 3000\n"
                        "        address 10.0.0.5\n"
                        "        address 10.0.1.5\n"
                        "    }\n"
                        "    admin {\n"
                        "        port 3003\n"
                        "    }\n"
                        "    heartbeat {\n"
                        "        mode mesh\n"
                        "        port 3002\n"
                        "        mesh-seed-address-port 10.0.0.1 3002\n"
                        "        mesh-seed-address-port ::1 3002\n"
                        "        interval 150\n"
                        "    }\n"
                        "    fabric {\n"
                        "        port 3001\n"
                        "    }\n"
                        "}\n"
                        "\n"
                        "namespace test {\n"
                        "    replication-factor 2\n"
                        "    default-ttl 0\n"
                        "    geo2dsphere-within {\n"
                        "        strict true\n"
                        "        max-cells 12\n"
                        "    }\n"
                        "    index-type mem\n"
                        "    storage-engine device {\n"
                        "        file /opt/aerospike/a.dat\n"
                        "        file /opt/aerospike/b.dat\n"
                        "        filesize 4294967296\n"
                        "    }\n"
                        "}\n"
                        "\n"
                        "namespace bar {\n"
                        "    replication-factor 1\n"
                        "    storage-engine memory {\n"
                        "        data-size 1073741824\n"
                        "    }\n"
                        "}\n");
    free(out);
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static void assert_contains(const char *hay, const char *needle)
{
    int found = contains(hay, needle);
    if (!found)
        print_message("missing:\n%s\n--- in:\n%s\n", needle, hay);
    assert_true(found);
}

static void test_capture(void **state)
{
    (void)state;
    const struct cluster_conf_ns nss[] = {{"test", CAP_NS_TEST}};
    const struct cluster_conf_input in = {
        .service = CAP_SERVICE,
        .network = CAP_NETWORK,
        .namespaces = nss,
        .n_namespaces = 1,
    };
    char *out = render_ok(&in);

    assert_true(strncmp(out, "service {\n    advertise-ipv6 false\n    auto-pin none\n", 52) == 0);
    assert_contains(out, "    cluster-name backup-test\n");
    assert_contains(out, "    work-directory /var/lib/aerospike-wire/node1/work\n}\n\nnetwork {\n");
    assert_contains(out, "network {\n"
                         "    service {\n"
                         "        port 3000\n"
                         "        address 127.0.0.1\n"
                         "        access-address 127.0.0.1\n"
                         "        disable-localhost false\n"
                         "    }\n"
                         "    admin {\n"
                         "        port 3003\n"
                         "        address 127.0.0.1\n"
                         "        disable-localhost false\n"
                         "    }\n"
                         "    heartbeat {\n"
                         "        mode mesh\n"
                         "        address 127.0.0.1\n"
                         "        port 3002\n"
                         "        interval 150\n");
    assert_contains(out, "        protocol v3\n    }\n    fabric {\n        address 127.0.0.1\n");
    assert_contains(out, "        send-threads 8\n    }\n}\n\nnamespace test {\n"
                         "    active-rack 0\n");
    assert_contains(out, "    geo2dsphere-within {\n"
                         "        strict true\n"
                         "        min-level 1\n"
                         "        max-level 20\n"
                         "        max-cells 12\n"
                         "        level-mod 1\n"
                         "        earth-radius-meters 6371000\n"
                         "    }\n"
                         "    index-type mem\n"
                         "    sindex-type mem\n"
                         "    storage-engine memory {\n"
                         "        commit-to-device false\n"
                         "        compression none\n");
    assert_contains(out, "        tomb-raider-sleep 1000\n    }\n}\n");
    assert_true(strcmp(out + strlen(out) - 20, "-sleep 1000\n    }\n}\n") == 0);

    /* dropped: unset values, unused ports, stripe names */
    assert_false(contains(out, " null\n"));
    assert_contains(out, "    disallow-null-setname false\n");
    assert_false(contains(out, "tls-port"));
    assert_false(contains(out, "access-port"));
    assert_false(contains(out, "stripe"));
    assert_false(contains(out, "="));

    /* balanced braces, 4-space indentation steps */
    int depth = 0;
    for (const char *line = out; *line;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        size_t sp = strspn(line, " ");
        if (nl > line && nl[-1] == '}')
            depth--;
        if (nl > line)
            assert_int_equal(sp, (size_t)depth * 4);
        if (nl > line && nl[-1] == '{')
            depth++;
        assert_true(depth >= 0 && depth <= 3);
        line = nl + 1;
    }
    assert_int_equal(depth, 0);
    free(out);
}

static void test_partial_and_empty(void **state)
{
    (void)state;
    const struct cluster_conf_ns nss[] = {{"empty", ""}};
    const struct cluster_conf_input in = {.namespaces = nss, .n_namespaces = 1};
    char *out = render_ok(&in);
    assert_string_equal(out, "namespace empty {\n}\n");
    free(out);

    const struct cluster_conf_input none = {0};
    out = render_ok(&none);
    assert_string_equal(out, "");
    free(out);

    /* trailing ';' and repeated plain keys */
    const struct cluster_conf_input rep = {.service = "a=1;a=2;b.c=3;"};
    out = render_ok(&rep);
    assert_string_equal(out, "service {\n    a 1\n    a 2\n    b {\n        c 3\n    }\n}\n");
    free(out);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad_service[] = {
        "cluster-name=two words", "a.=1", ".a=1", "x{=1", "novalue", "a=b}", "a[x]=1", "=1",
        "a=#1",
    };
    for (size_t i = 0; i < sizeof bad_service / sizeof bad_service[0]; i++) {
        const struct cluster_conf_input in = {.service = bad_service[i]};
        char *out = (char *)1;
        struct err e = {0};
        assert_int_equal(cluster_conf_render(&in, &out, &e), ERR_INVALID);
        assert_null(out);
        assert_true(e.msg[0] != '\0');
    }
    const struct cluster_conf_ns badns[] = {{"bad name", "a=1"}};
    const struct cluster_conf_input in = {.namespaces = badns, .n_namespaces = 1};
    char *out;
    struct err e = {0};
    assert_int_equal(cluster_conf_render(&in, &out, &e), ERR_INVALID);

    const struct cluster_conf_ns nsbad[] = {{"test", "storage-engine.file[0]=/a b"}};
    const struct cluster_conf_input in2 = {.namespaces = nsbad, .n_namespaces = 1};
    assert_int_equal(cluster_conf_render(&in2, &out, &e), ERR_INVALID);
    assert_true(contains(e.msg, "namespace test"));

    const struct cluster_conf_log_sink sinks[] = {{"stderr", "misc"}};
    const struct cluster_conf_input in3 = {.logging = sinks, .n_logging = 1};
    assert_int_equal(cluster_conf_render(&in3, &out, &e), ERR_INVALID);

    const struct cluster_conf_input in4 = {.network = "heartbeat.mesh-seed-address-port[0]=host"};
    assert_int_equal(cluster_conf_render(&in4, &out, &e), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_exact),
        cmocka_unit_test(test_capture),
        cmocka_unit_test(test_partial_and_empty),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
