/*
 * sa_server.h - a Secret Agent for tests: speaks the Aerospike Secret Agent protocol
 * (abs-reference §7: 8-byte header, magic 0x51DEC1CC + big-endian length, JSON both ways) over
 * TCP, TCP+TLS or a Unix socket, answering from a resource/key table, with fault modes for
 * the client's error paths. Used in-process by the unit tests and by the secret-agent program
 * (main.c) for the end-to-end tests. Never linked into the service.
 */
#ifndef ABS_TESTS_SA_SERVER_H
#define ABS_TESTS_SA_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

enum sa_fault {
    SA_FAULT_NONE,
    SA_FAULT_WRONG_MAGIC, /* reply header carries another magic */
    SA_FAULT_OVERSIZED,   /* reply header announces (and sends) 2 MiB */
    SA_FAULT_NO_REPLY,    /* read the request, then stay silent until the client gives up */
    SA_FAULT_ERROR,       /* every request answered {"Error": "..."} */
    SA_FAULT_CLOSE,       /* close the connection right after reading the request */
};

struct sa_entry {
    char *resource, *key, *value;
};

struct sa_config {
    struct sa_entry *entries; /* unknown resource/key -> {"Error": "secret not found"} */
    size_t n_entries;
    enum sa_fault fault;
    bool base64;   /* send values base64-encoded (the agent's convert-to-base64) */
    SSL_CTX *tls;  /* NULL = plain */
    bool log;      /* one stderr line per request: resource and key (never the value) */
    /* filled by the server (one writer thread): the last request body and the count */
    char last_request[1024];
    unsigned requests;
};

/* Parses a fault name: none, wrong-magic, oversized, no-reply, error, close. -1 if unknown. */
int sa_fault_parse(const char *name);

/* Adds an entry (copies the strings). 0 or -1. */
int sa_add(struct sa_config *c, const char *resource, const char *key, const char *value);
/* Loads {"resource": {"key": "value", ...}, ...} from a JSON file. 0 or -1. */
int sa_load_json(struct sa_config *c, const char *path);
void sa_config_free(struct sa_config *c);

/* Listening sockets: TCP on a loopback ip:port (0 = any; *bound gets the port) or a Unix socket
 * path (replaced if present). -1 on failure. */
int sa_listen_tcp(const char *ip, int port, int *bound);
int sa_listen_unix(const char *path);

/* A TLS server context from PEM certificate (chain) and key files; NULL on failure. */
SSL_CTX *sa_tls_ctx(const char *cert_file, const char *key_file);

/* Accepts and answers connections one at a time until *stop becomes true (checked every
 * 50 ms). */
void sa_serve(int listen_fd, struct sa_config *c, const volatile bool *stop);

#endif
