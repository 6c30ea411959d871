/*
 * emu_launch.h - the protocol emulator (tests/emulator) as a child process of a unit test:
 * finding its binary ($ABS_EMULATOR, else <build>/tests/emulator/aerospike-emulator next to
 * the test), starting it on loopback with --port 0 and a port file (stdout to /dev/null, killed
 * with the test), waiting for the ports it listens on, a cluster seeded from one of them, and
 * stopping it. Static inline helpers (unused ones draw no warning) for the tests that include it
 * after cmocka.h.
 */
#ifndef ABS_TEST_EMU_LAUNCH_H
#define ABS_TEST_EMU_LAUNCH_H

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aerospike/as_cluster.h"

#define EMU_MAX_PORTS 4
#define EMU_MAX_ARGS 48

struct emu_proc {
    pid_t pid;                  /* -1 when not running */
    int ports[EMU_MAX_PORTS];   /* from the port file: clear ports, then TLS ports */
    int exit_status;            /* when the emulator exited during start-up */
    char port_file[PATH_MAX];
};

/* The emulator binary into `out`; false when it is not there. */
static inline bool emu_find(char *out, size_t cap)
{
    const char *env = getenv("ABS_EMULATOR");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return access(out, X_OK) == 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return false;
    self[n] = 0;
    snprintf(out, cap, "%s/emulator/aerospike-emulator", dirname(self));
    return access(out, X_OK) == 0;
}

static inline pid_t emu_spawn(const char *bin, const char *port_file, const char *const *args)
{
    const char *argv[EMU_MAX_ARGS + 6];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    for (int i = 0; args && args[i] && i < EMU_MAX_ARGS; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits up to 5 s until the port file lists `want_ports` ports; 0, or -1 when the emulator
 * exited (pid -1, exit_status set) or did not write them in time (still running). */
static inline int emu_wait_ports(struct emu_proc *p, int want_ports)
{
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(p->port_file, "r");
        if (f) {
            int k = fscanf(f, "%d %d %d %d", &p->ports[0], &p->ports[1], &p->ports[2], &p->ports[3]);
            fclose(f);
            if (k == want_ports)
                return 0;
        }
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = -1;
            p->exit_status = WEXITSTATUS(st);
            return -1;
        }
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Starts the emulator with `--port 0 --port-file <port_file>` and the NULL-terminated extra
 * arguments, and waits for `want_ports` ports in the port file. 0, or -1 when the binary is
 * missing, the fork failed, it exited or it did not start in time (emu_proc_stop cleans up). */
static inline int emu_proc_start(struct emu_proc *p, const char *port_file, int want_ports, const char *const *args)
{
    memset(p, 0, sizeof *p);
    p->pid = -1;
    snprintf(p->port_file, sizeof p->port_file, "%s", port_file);
    char bin[PATH_MAX];
    if (!emu_find(bin, sizeof bin))
        return -1;
    unlink(p->port_file);
    p->pid = emu_spawn(bin, p->port_file, args);
    if (p->pid < 0)
        return -1;
    return emu_wait_ports(p, want_ports);
}

/* Stops the emulator (if running) and removes its port file. */
static inline void emu_proc_stop(struct emu_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        int st;
        waitpid(p->pid, &st, 0);
        p->pid = -1;
    }
    if (p->port_file[0])
        unlink(p->port_file);
}

/* A cluster seeded with 127.0.0.1:port (tend every 200 ms); 0 or -1 (message on stderr). */
static inline int emu_cluster_new(int port, struct as_cluster **out)
{
    struct as_host h = { .name = "127.0.0.1", .port = (uint16_t)port };
    struct as_cluster_config cfg = { .seeds = &h, .n_seeds = 1, .tend_interval_ms = 200,
                                     .connect_timeout_ms = 2000 };
    struct err e;
    if (as_cluster_new(&cfg, out, &e) != 0) {
        fprintf(stderr, "cluster: %s\n", e.msg);
        return -1;
    }
    return 0;
}

/* Runs info `cmd` on a random node; the raw reply into `out` (NULL: dropped); fails the test
 * on an error. */
static inline void emu_cluster_info(struct as_cluster *c, const char *cmd, char *out, size_t cap)
{
    struct as_node *n = as_cluster_random_node(c);
    assert_non_null(n);
    struct as_buf reply;
    as_buf_init(&reply);
    struct err e;
    int rc = as_node_info(n, cmd, &reply, &e);
    as_node_release(n);
    if (rc == 0 && out)
        snprintf(out, cap, "%.*s", (int)reply.len, (const char *)reply.data);
    as_buf_free(&reply);
    if (rc)
        fail_msg("%s: %s", cmd, e.msg);
}

/* Frees the cluster (NULL after) and stops the emulator. */
static inline void emu_cluster_close(struct as_cluster **cluster, struct emu_proc *p)
{
    as_cluster_free(*cluster);
    *cluster = NULL;
    emu_proc_stop(p);
}

/* Skips the current test when there is no cluster (the emulator is not built). */
#define EMU_SKIP_WITHOUT(cluster)                                       \
    do {                                                                \
        if (!(cluster)) {                                               \
            fprintf(stderr, "aerospike-emulator not built: skipped\n"); \
            skip();                                                     \
        }                                                               \
    } while (0)

#endif
