/*
 * cfg_model.h - the configuration model: one C struct per ABS dto, field for field.
 *
 * The structs keep exactly what the source said: an optional scalar carries a `set` flag,
 * an absent object is NULL, an absent string is NULL, and a list remembers whether it was
 * given (so `namespaces: []` differs from no `namespaces`). Saving therefore writes back what
 * was loaded, and defaults (abs-reference §2.8) are applied by the cfg_eff_* helpers below,
 * never stored.
 *
 * A struct cfg is immutable once published by the store and reference counted: a job holds
 * the snapshot it started with (cfg_retain / cfg_release). Decoding, encoding, validation
 * and freeing are generic, driven by the field tables in cfg_schema.c.
 */
#ifndef ABS_CONFIG_MODEL_H
#define ABS_CONFIG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct { bool set; int64_t v; } cfg_int;
typedef struct { bool set; bool v; } cfg_bool;
typedef struct { bool set; double v; } cfg_double;
typedef struct { bool set; size_t n; char **v; } cfg_strlist;
typedef struct { bool set; size_t n; int64_t *v; } cfg_intlist;
typedef struct { bool set; size_t n; void **v; } cfg_objlist;
/* Ordered name -> entity map (insertion order kept for stable output). */
typedef struct { size_t n; char **names; void **items; } cfg_map;

/* ---- service ---------------------------------------------------------------------- */
struct cfg_rate {
    cfg_int tps;
    cfg_int size;
    cfg_strlist white_list;
};

struct cfg_http {
    char *address;
    cfg_int port;
    char *context_path;
    cfg_int timeout;
    cfg_int read_timeout;
    cfg_int write_timeout;
    cfg_int idle_timeout;
    cfg_bool disabled;
    struct cfg_rate *rate;
};

struct cfg_file_writer {
    char *filename;
    cfg_int maxsize;    /* MB */
    cfg_int maxage;     /* days */
    cfg_int maxbackups;
    cfg_bool compress;
};

struct cfg_logger {
    char *level;
    char *format;
    cfg_bool stdout_writer;
    struct cfg_file_writer *file_writer;
};

struct cfg_service_backup {
    char *timestamp_format; /* ISO | US | EU */
};

struct cfg_service {
    struct cfg_http *http;
    struct cfg_logger *logger;
    struct cfg_service_backup *backup;
};

/* ---- secret agents ---------------------------------------------------------------- */
struct cfg_secret_agent {
    char *connection_type; /* tcp | unix */
    char *address;
    cfg_int port;
    cfg_int timeout;       /* ms */
    char *tls_ca_file;
    cfg_bool is_base64;
};

/* ---- aerospike-clusters ----------------------------------------------------------- */
struct cfg_seed_node {
    char *host_name;
    cfg_int port;
    char *tls_name;
};

struct cfg_credentials {
    char *user;
    char *password;        /* secret */
    char *password_path;
    char *auth_mode;       /* INTERNAL | EXTERNAL | PKI */
    struct cfg_secret_agent *secret_agent;
    char *secret_agent_name;
};

struct cfg_tls {
    char *ca_file;
    char *ca_path;
    char *cert_file;
    char *key_file;
    char *key_file_password; /* secret */
    char *name;
    char *protocols;
    char *cipher_suite;
};

struct cfg_cluster {
    cfg_objlist seed_nodes; /* struct cfg_seed_node * */
    struct cfg_credentials *credentials;
    cfg_int conn_timeout;
    cfg_bool use_services_alternate;
    cfg_int max_parallel_scans;
    char *label;
    cfg_intlist prefer_racks;
    struct cfg_tls *tls;
};

/* ---- storage ---------------------------------------------------------------------- */
struct cfg_storage_class {
    char *data;
    char *metadata;
};

struct cfg_local_storage {
    char *path;
};

struct cfg_s3_storage {
    char *bucket;
    char *s3_region;
    char *path;
    char *s3_profile;
    char *s3_endpoint_override;
    char *access_key_id;     /* secret */
    char *secret_access_key; /* secret */
    char *s3_log_level;
    cfg_int max_async_connections;
    cfg_int min_part_size;
    struct cfg_storage_class *storage_class;
    struct cfg_secret_agent *secret_agent;
    char *secret_agent_name;
};

struct cfg_azure_storage {
    char *endpoint;
    char *container_name;
    char *path;
    char *account_name;
    char *account_key;   /* secret */
    char *tenant_id;     /* secret */
    char *client_id;     /* secret */
    char *client_secret; /* secret */
    cfg_int min_part_size;
    struct cfg_storage_class *storage_class;
    struct cfg_secret_agent *secret_agent;
    char *secret_agent_name;
};

struct cfg_gcp_storage {
    char *bucket_name;
    char *path;
    char *key;           /* secret */
    char *key_file_path;
    char *endpoint;
    cfg_int min_part_size;
    struct cfg_storage_class *storage_class;
    struct cfg_secret_agent *secret_agent;
    char *secret_agent_name;
};

/* Exactly one member is non-NULL in a valid storage. */
struct cfg_storage {
    struct cfg_local_storage *local;
    struct cfg_s3_storage *s3;
    struct cfg_azure_storage *azure;
    struct cfg_gcp_storage *gcp;
};

/* ---- backup-policies -------------------------------------------------------------- */
struct cfg_retry_policy {
    cfg_int base_timeout; /* ms */
    cfg_int max_retries;
    cfg_double multiplier;
};

struct cfg_retention {
    cfg_int full;
    cfg_int incremental;
};

struct cfg_encryption {
    char *mode; /* NONE | AES128 | AES256 */
    char *key_file;
    char *key_env;
    char *key_secret; /* secret */
};

struct cfg_compression {
    char *mode; /* NONE | ZSTD */
    cfg_int level;
};

struct cfg_policy {
    cfg_int parallel;
    cfg_int parallel_write;
    cfg_int socket_timeout;
    cfg_int total_timeout;
    struct cfg_retry_policy *retry_policy;
    struct cfg_retention *retention;
    cfg_bool no_records;
    cfg_bool no_indexes;
    cfg_bool no_udfs;
    cfg_int bandwidth;          /* MiB/s */
    cfg_int records_per_second;
    cfg_int file_limit;         /* MB */
    struct cfg_encryption *encryption;
    struct cfg_compression *compression;
    cfg_bool sealed;
    cfg_bool concurrent_incremental;
    cfg_bool with_cluster_configuration;
    cfg_bool compact;
    cfg_int max_concurrent_nodes;
    cfg_bool use_scan_compression;
};

/* ---- backup-routines -------------------------------------------------------------- */
struct cfg_routine {
    char *interval_cron;
    char *incr_interval_cron;
    char *source_cluster;
    char *storage;
    char *backup_policy;
    cfg_strlist namespaces;
    cfg_strlist set_list;
    cfg_strlist bin_list;
    cfg_intlist rack_list;
    char *partition_list;
    cfg_strlist node_list;
    char *secret_agent;
    cfg_bool disabled;
};

/* ---- the whole configuration ------------------------------------------------------ */
struct cfg {
    int refcount; /* managed with atomics by cfg_retain/cfg_release */
    struct cfg_service *service;
    cfg_map clusters;      /* struct cfg_cluster * */
    cfg_map storage;       /* struct cfg_storage * */
    cfg_map policies;      /* struct cfg_policy * */
    cfg_map routines;      /* struct cfg_routine * */
    cfg_map secret_agents; /* struct cfg_secret_agent * */
};

struct cfg *cfg_retain(struct cfg *c);
void cfg_release(struct cfg *c);

/* Lookup in a map; NULL when absent. */
void *cfg_map_get(const cfg_map *m, const char *name);

/* ---- effective values (defaults of abs-reference §2.8 applied) -------------------- */
struct cfg_http_eff {
    const char *address;      /* "0.0.0.0" */
    int port;                 /* 8080 */
    const char *context_path; /* "/" */
    int64_t timeout_ms;       /* 5000 */
    int64_t rate_tps;         /* 1024 */
    int64_t rate_size;        /* 1024 */
    const cfg_strlist *white_list; /* never NULL; may be empty */
};
void cfg_eff_http(const struct cfg *c, struct cfg_http_eff *out);

struct cfg_logger_eff {
    const char *level;  /* "INFO" */
    const char *format; /* "PLAIN" */
    bool stdout_writer; /* true */
    const char *file;   /* NULL when no file-writer */
    int64_t max_size_mb, max_age_days, max_backups;
    bool compress;
};
void cfg_eff_logger(const struct cfg *c, struct cfg_logger_eff *out);

#endif
