/*
 * main.c - the aerospike-backup-service process: command-line flags (same as ABS), start-up
 * (configuration, logger, metrics, HTTP API), signal handling (SIGTERM/SIGINT graceful stop,
 * SIGHUP re-reads the configuration like POST /v1/config/apply), shutdown, and the systemd
 * notifications around them (READY=1 once the HTTP server listens, RELOADING=1, STOPPING=1).
 *
 * Signals are blocked in every thread and taken synchronously by the main thread with
 * sigwait(), so no work happens in signal context.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "config/config.h"
#include "jobs/history.h"
#include "jobs/jobs.h"
#include "jobs/restores.h"
#include "metrics/metrics.h"
#include "sched/scheduler.h"
#include "storage/cloud_module.h"
#include "util/log.h"
#include "util/sdnotify.h"
#include "version.h"

#define DEFAULT_CONFIG "/etc/aerospike-backup-service/aerospike-backup-service.yml"

struct options {
    const char *config_path;
    bool remote;
};

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: aerospike-backup-service [flags]\n"
            "\n"
            "Aerospike Backup Service: scheduled full and incremental backups of Aerospike\n"
            "clusters, restores, and a REST API to manage them.\n"
            "\n"
            "Flags:\n"
            "  -c, --config PATH|URL  configuration file (default %s)\n"
            "  -r, --remote           the -c file describes where the real configuration lives\n"
            "  -h, --help             show this help and exit\n"
            "  -v, --version          show version, commit and build time and exit\n",
            DEFAULT_CONFIG);
}

/* Returns -1 to continue, or an exit code. */
static int parse_flags(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"remote", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    o->config_path = DEFAULT_CONFIG;
    o->remote = false;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":c:rhv", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': o->config_path = optarg; break;
        case 'r': o->remote = true; break;
        case 'h': print_usage(stdout); return 0;
        case 'v':
            printf("aerospike-backup-service version %s (commit %s, built %s)\n", ABS_VERSION,
                   ABS_COMMIT, ABS_BUILD_TIME);
            return 0;
        case ':':
            fprintf(stderr, "aerospike-backup-service: flag %s needs a value\n", argv[optind - 1]);
            print_usage(stderr);
            return 1;
        default:
            fprintf(stderr, "aerospike-backup-service: unknown flag %s\n", argv[optind - 1]);
            print_usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "aerospike-backup-service: unexpected argument %s\n", argv[optind]);
        print_usage(stderr);
        return 1;
    }
    return -1;
}

static int configure_logger(const struct cfg *c, struct err *e)
{
    struct cfg_logger_eff eff;
    cfg_eff_logger(c, &eff);
    struct log_options lo = {
        .to_stdout = eff.stdout_writer,
        .file = eff.file,
        .max_size_mb = eff.max_size_mb,
        .max_age_days = eff.max_age_days,
        .max_backups = eff.max_backups,
        .compress = eff.compress,
    };
    if (log_level_parse(eff.level, &lo.level) || log_format_parse(eff.format, &lo.format))
        return err_set(e, ERR_INVALID, "service.logger: invalid level or format");
    return log_configure(&lo, e);
}

/* The long-lived parts of the service, wired together by run(). */
struct service {
    struct cfg_store *store;
    struct metrics *metrics;
    struct history_cache *history;
    struct jobs *jobs;
    struct sched *sched;
    struct restores *restores;
};

/* Config change listener: logger settings and schedules apply at once, the backup history is
 * re-read for the routines of the new snapshot; HTTP settings need a restart. */
static void on_config_change(void *ctx, struct cfg *snapshot)
{
    struct service *svc = ctx;
    struct err e = {0};
    if (configure_logger(snapshot, &e))
        LOG_W("main", "logger settings not applied: %s", e.msg);
    history_cache_retain(svc->history, (const char *const *)snapshot->routines.names, snapshot->routines.n);
    jobs_refresh_history(svc->jobs, snapshot);
    sched_update(svc->sched, snapshot);
}

/* How long start-up waits for the backup history before serving without it (see
 * jobs_load_history): local storage takes milliseconds, an unreachable store hours of retries. */
#define HISTORY_WAIT_MS 3000

static int start_backups(struct service *svc, struct err *e)
{
    if (history_cache_new(&svc->history, e) || jobs_new(svc->history, svc->metrics, &svc->jobs, e) ||
        restores_new(svc->store, &svc->restores, e))
        return e->code;
    struct sched_runner runner = jobs_runner(svc->jobs);
    struct sched_history history = jobs_history(svc->jobs);
    if (sched_new(&runner, &history, NULL, NULL, &svc->sched, e))
        return e->code;
    jobs_set_scheduler(svc->jobs, svc->sched);
    jobs_set_restores(svc->jobs, svc->restores);
    struct cfg *snapshot = cfg_store_snapshot(svc->store);
    int rc = jobs_load_history(svc->jobs, snapshot, HISTORY_WAIT_MS, e);
    if (rc == 0)
        sched_update(svc->sched, snapshot);
    cfg_release(snapshot);
    return rc ? rc : sched_start(svc->sched, e);
}

static void stop_backups(struct service *svc)
{
    if (svc->sched)
        sched_stop(svc->sched);
    jobs_free(svc->jobs); /* cancels running jobs and waits for them */
    restores_free(svc->restores);
    sched_free(svc->sched);
    history_cache_free(svc->history);
}

static int run(struct cfg_store *store)
{
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file over RLIMIT_FSIZE: the write fails (EFBIG), the job with it */

    struct err e = {0};
    struct service svc = {.store = store, .metrics = metrics_new()};
    if (start_backups(&svc, &e)) {
        fprintf(stderr, "aerospike-backup-service: cannot start the scheduler: %s\n", e.msg);
        stop_backups(&svc);
        metrics_free(svc.metrics);
        return 1;
    }
    struct api_deps deps = {.store = store, .metrics = svc.metrics, .sched = svc.sched, .jobs = svc.jobs,
                            .history = svc.history, .restores = svc.restores};
    struct api_server *server = NULL;
    if (api_start(&deps, &server, &e)) {
        LOG_E("main", "cannot start HTTP server: %s", e.msg);
        fprintf(stderr, "aerospike-backup-service: cannot start HTTP server: %s\n", e.msg);
        stop_backups(&svc);
        metrics_free(svc.metrics);
        return 1;
    }
    cfg_store_set_listener(store, on_config_change, &svc);
    LOG_I("main", "aerospike-backup-service %s started, configuration %s", ABS_VERSION,
          cfg_store_source(store));
    if (sdnotify_ready(&e))
        LOG_W("main", "%s", e.msg);

    for (;;) {
        int sig = 0;
        if (sigwait(&signals, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            LOG_I("main", "SIGHUP: re-reading configuration");
            struct err ne = {0};
            if (sdnotify_reloading(&ne))
                LOG_W("main", "%s", ne.msg);
            if (cfg_store_apply(store, &e))
                LOG_E("main", "configuration not applied: %s", e.msg);
            if (sdnotify_ready(&ne))
                LOG_W("main", "%s", ne.msg);
            continue;
        }
        LOG_I("main", "%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    if (sdnotify_stopping(&e))
        LOG_W("main", "%s", e.msg);
    cloud_module_abort_retries(); /* jobs waiting on an unreachable store end now */
    api_stop(server);
    cfg_store_set_listener(store, NULL, NULL);
    stop_backups(&svc);
    metrics_free(svc.metrics);
    LOG_I("main", "stopped");
    return 0;
}

/* A configuration with cloud storage needs the cloud module: without it (a broken install) the
 * service would run but fail every job, so it stops here and says what is missing. */
static int check_cloud_support(const struct cfg *c, struct err *e)
{
    for (size_t i = 0; i < c->storage.n; i++) {
        const struct cfg_storage *s = c->storage.items[i];
        const struct cloud_module *cloud;
        if (!s->local && cloud_module_get(&cloud, e))
            return err_prefix(e, "storage.%s", c->storage.names[i]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse_flags(argc, argv, &o);
    if (rc >= 0)
        return rc;

    struct err e = {0};
    struct cfg_store *store = NULL;
    if (cfg_store_open(o.config_path, o.remote, &store, &e)) {
        fprintf(stderr, "aerospike-backup-service: invalid configuration: %s\n", e.msg);
        cloud_module_shutdown();
        return 1;
    }
    struct cfg *snapshot = cfg_store_snapshot(store);
    rc = configure_logger(snapshot, &e);
    if (rc)
        err_prefix(&e, "service.logger");
    else
        rc = check_cloud_support(snapshot, &e);
    cfg_release(snapshot);
    if (rc) {
        fprintf(stderr, "aerospike-backup-service: %s: %s\n", o.config_path, e.msg);
        cfg_store_free(store);
        cloud_module_shutdown();
        return 1;
    }
    rc = run(store);
    cfg_store_free(store);
    log_shutdown();
    cloud_module_shutdown();
    return rc;
}
