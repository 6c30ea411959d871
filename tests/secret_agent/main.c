/*
 * main.c - the `secret-agent` test program: a Secret Agent (sa_server.c) as a process for
 * the end-to-end tests.
 *
 *   secret-agent (--port N [--port-file F] | --unix PATH) [--tls-cert F --tls-key F]
 *                [--secrets FILE.json] [--secret RESOURCE:KEY=VALUE]... [--base64]
 *                [--fault none|wrong-magic|oversized|no-reply|error|close]
 *
 * TCP listens on 127.0.0.1 only (--port 0 picks a free port, written to --port-file). Runs
 * until SIGTERM/SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sa_server.h"

static volatile bool stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = true;
}

static int usage(void)
{
    fprintf(stderr, "usage: secret-agent (--port N [--port-file F] | --unix PATH) [--tls-cert F --tls-key F]\n"
                    "       [--secrets FILE.json] [--secret RESOURCE:KEY=VALUE]... [--base64]\n"
                    "       [--fault none|wrong-magic|oversized|no-reply|error|close]\n");
    return 2;
}

static int add_secret_arg(struct sa_config *c, const char *arg)
{
    const char *colon = strchr(arg, ':'), *eq = colon ? strchr(colon, '=') : NULL;
    if (!eq)
        return -1;
    char *res = strndup(arg, (size_t)(colon - arg)), *key = strndup(colon + 1, (size_t)(eq - colon - 1));
    int rc = res && key ? sa_add(c, res, key, eq + 1) : -1;
    free(res);
    free(key);
    return rc;
}

int main(int argc, char **argv)
{
    struct sa_config c = {.log = true};
    const char *port_file = NULL, *unix_path = NULL, *cert = NULL, *key = NULL;
    int port = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--base64") == 0) {
            c.base64 = true;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--port") == 0)
            port = atoi(v);
        else if (strcmp(a, "--port-file") == 0)
            port_file = v;
        else if (strcmp(a, "--unix") == 0)
            unix_path = v;
        else if (strcmp(a, "--tls-cert") == 0)
            cert = v;
        else if (strcmp(a, "--tls-key") == 0)
            key = v;
        else if (strcmp(a, "--secrets") == 0) {
            if (sa_load_json(&c, v))
                return 1;
        } else if (strcmp(a, "--secret") == 0) {
            if (add_secret_arg(&c, v))
                return usage();
        } else if (strcmp(a, "--fault") == 0) {
            int f = sa_fault_parse(v);
            if (f < 0)
                return usage();
            c.fault = (enum sa_fault)f;
        } else {
            return usage();
        }
    }
    if ((port < 0) == !unix_path || (!cert != !key) || (cert && unix_path))
        return usage();
    if (cert && !(c.tls = sa_tls_ctx(cert, key)))
        return 1;
    int bound = 0;
    int fd = unix_path ? sa_listen_unix(unix_path) : sa_listen_tcp("127.0.0.1", port, &bound);
    if (fd < 0) {
        perror("secret-agent: listen");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (!f)
            return 1;
        fprintf(f, "%d\n", bound);
        fclose(f);
    }
    fprintf(stderr, "secret-agent: listening on %s%s\n", unix_path ? unix_path : "127.0.0.1", cert ? " (TLS)" : "");
    sa_serve(fd, &c, &stop);
    close(fd);
    if (unix_path)
        unlink(unix_path);
    sa_config_free(&c);
    return 0;
}
