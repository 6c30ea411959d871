/*
 * cfg_schema.c - field tables for every configuration struct (abs-reference §2) and the
 * generic decode / encode / free / secret-merge machinery that walks them.
 *
 * Adding a field to the configuration = adding it to cfg_model.h and one line here; the
 * decoder, the encoder (GET and save), redaction and freeing follow from the table.
 */
#include "config/cfg_schema.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/cfg_validate.h"
#include "util/strutil.h"

#define NO_MIN INT64_MIN
#define NO_MAX INT64_MAX
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define F_STR(T, k, m, fl, en) \
    {.key = k, .kind = CFK_STR, .offset = offsetof(T, m), .flags = (fl), .enums = (en)}
#define F_INT(T, k, m, fl, lo, hi) \
    {.key = k, .kind = CFK_INT, .offset = offsetof(T, m), .flags = (fl) | CFF_RANGE, .min = lo, .max = hi}
#define F_DBL(T, k, m, lo, hi) \
    {.key = k, .kind = CFK_DOUBLE, .offset = offsetof(T, m), .flags = CFF_RANGE, .min = lo, .max = hi}
#define F_BOOL(T, k, m) {.key = k, .kind = CFK_BOOL, .offset = offsetof(T, m)}
#define F_STRS(T, k, m, fl) {.key = k, .kind = CFK_STRLIST, .offset = offsetof(T, m), .flags = (fl)}
#define F_INTS(T, k, m, fl, lo, hi) \
    {.key = k, .kind = CFK_INTLIST, .offset = offsetof(T, m), .flags = (fl) | CFF_RANGE, .min = lo, .max = hi}
#define F_OBJ(T, k, m, fl, st) {.key = k, .kind = CFK_OBJ, .offset = offsetof(T, m), .flags = (fl), .sub = &(st)}
#define F_OBJS(T, k, m, fl, st) \
    {.key = k, .kind = CFK_OBJLIST, .offset = offsetof(T, m), .flags = (fl), .sub = &(st)}
#define F_MAP(T, k, m, st) {.key = k, .kind = CFK_MAP, .offset = offsetof(T, m), .sub = &(st)}
#define TYPE(var, T, fields, chk) \
    const struct cfg_type var = {#T, sizeof(T), fields, COUNT(fields), chk}

/* ---- enumerations ------------------------------------------------------------------- */
static const char *const log_levels[] = {"TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", NULL};
static const char *const log_formats[] = {"PLAIN", "JSON", NULL};
static const char *const ts_formats[] = {"ISO", "US", "EU", NULL};
static const char *const auth_modes[] = {"INTERNAL", "EXTERNAL", "PKI", NULL};
static const char *const conn_types[] = {"tcp", "unix", NULL};
static const char *const s3_log_levels[] = {"OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", NULL};
static const char *const enc_modes[] = {"NONE", "AES128", "AES256", NULL};
static const char *const comp_modes[] = {"NONE", "ZSTD", NULL};

/* ---- service -------------------------------------------------------------------------- */
static const struct cfg_field rate_fields[] = {
    F_INT(struct cfg_rate, "tps", tps, 0, 1, NO_MAX),
    F_INT(struct cfg_rate, "size", size, 0, 1, NO_MAX),
    F_STRS(struct cfg_rate, "white-list", white_list, CFF_UNIQUE),
};
static TYPE(type_rate, struct cfg_rate, rate_fields, cfg_check_rate);

static const struct cfg_field http_fields[] = {
    F_STR(struct cfg_http, "address", address, CFF_NONEMPTY, NULL),
    F_INT(struct cfg_http, "port", port, 0, 1, 65535),
    F_STR(struct cfg_http, "context-path", context_path, 0, NULL),
    F_INT(struct cfg_http, "timeout", timeout, 0, 0, NO_MAX),
    F_INT(struct cfg_http, "read-timeout", read_timeout, 0, 0, NO_MAX),
    F_INT(struct cfg_http, "write-timeout", write_timeout, 0, 0, NO_MAX),
    F_INT(struct cfg_http, "idle-timeout", idle_timeout, 0, 0, NO_MAX),
    F_BOOL(struct cfg_http, "disabled", disabled),
    F_OBJ(struct cfg_http, "rate", rate, 0, type_rate),
};
static TYPE(type_http, struct cfg_http, http_fields, cfg_check_http);

static const struct cfg_field file_writer_fields[] = {
    F_STR(struct cfg_file_writer, "filename", filename, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_INT(struct cfg_file_writer, "maxsize", maxsize, 0, 0, NO_MAX),
    F_INT(struct cfg_file_writer, "maxage", maxage, 0, 0, NO_MAX),
    F_INT(struct cfg_file_writer, "maxbackups", maxbackups, 0, 0, NO_MAX),
    F_BOOL(struct cfg_file_writer, "compress", compress),
};
static TYPE(type_file_writer, struct cfg_file_writer, file_writer_fields, NULL);

static const struct cfg_field logger_fields[] = {
    F_STR(struct cfg_logger, "level", level, CFF_ENUM_CI, log_levels),
    F_STR(struct cfg_logger, "format", format, CFF_ENUM_CI, log_formats),
    F_BOOL(struct cfg_logger, "stdout-writer", stdout_writer),
    F_OBJ(struct cfg_logger, "file-writer", file_writer, 0, type_file_writer),
};
static TYPE(type_logger, struct cfg_logger, logger_fields, NULL);

static const struct cfg_field service_backup_fields[] = {
    F_STR(struct cfg_service_backup, "timestamp-format", timestamp_format, CFF_ENUM_CI, ts_formats),
};
static TYPE(type_service_backup, struct cfg_service_backup, service_backup_fields, NULL);

static const struct cfg_field service_fields[] = {
    F_OBJ(struct cfg_service, "http", http, 0, type_http),
    F_OBJ(struct cfg_service, "logger", logger, 0, type_logger),
    F_OBJ(struct cfg_service, "backup", backup, 0, type_service_backup),
};
TYPE(cfg_type_service, struct cfg_service, service_fields, NULL);

/* ---- secret agents -------------------------------------------------------------------- */
static const struct cfg_field secret_agent_fields[] = {
    F_STR(struct cfg_secret_agent, "connection-type", connection_type, CFF_REQUIRED | CFF_ENUM_CI, conn_types),
    F_STR(struct cfg_secret_agent, "address", address, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_INT(struct cfg_secret_agent, "port", port, 0, 1, 65535),
    F_INT(struct cfg_secret_agent, "timeout", timeout, 0, 1, NO_MAX),
    F_STR(struct cfg_secret_agent, "tls-ca-file", tls_ca_file, CFF_NONEMPTY, NULL),
    F_BOOL(struct cfg_secret_agent, "is-base64", is_base64),
};
TYPE(cfg_type_secret_agent, struct cfg_secret_agent, secret_agent_fields, cfg_check_secret_agent);

/* ---- aerospike-clusters --------------------------------------------------------------- */
static const struct cfg_field seed_node_fields[] = {
    F_STR(struct cfg_seed_node, "host-name", host_name, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_INT(struct cfg_seed_node, "port", port, CFF_REQUIRED, 1, 65535),
    F_STR(struct cfg_seed_node, "tls-name", tls_name, 0, NULL),
};
static TYPE(type_seed_node, struct cfg_seed_node, seed_node_fields, NULL);

static const struct cfg_field credentials_fields[] = {
    F_STR(struct cfg_credentials, "user", user, 0, NULL),
    F_STR(struct cfg_credentials, "password", password, CFF_SECRET, NULL),
    F_STR(struct cfg_credentials, "password-path", password_path, CFF_NONEMPTY, NULL),
    F_STR(struct cfg_credentials, "auth-mode", auth_mode, CFF_ENUM_CI, auth_modes),
    F_OBJ(struct cfg_credentials, "secret-agent", secret_agent, 0, cfg_type_secret_agent),
    F_STR(struct cfg_credentials, "secret-agent-name", secret_agent_name, CFF_NONEMPTY, NULL),
};
static TYPE(type_credentials, struct cfg_credentials, credentials_fields, cfg_check_credentials);

static const struct cfg_field tls_fields[] = {
    F_STR(struct cfg_tls, "ca-file", ca_file, CFF_NONEMPTY, NULL),
    F_STR(struct cfg_tls, "ca-path", ca_path, CFF_NONEMPTY, NULL),
    F_STR(struct cfg_tls, "cert-file", cert_file, CFF_NONEMPTY, NULL),
    F_STR(struct cfg_tls, "key-file", key_file, CFF_NONEMPTY, NULL),
    F_STR(struct cfg_tls, "key-file-password", key_file_password, CFF_SECRET, NULL),
    F_STR(struct cfg_tls, "name", name, 0, NULL),
    F_STR(struct cfg_tls, "protocols", protocols, 0, NULL),
    F_STR(struct cfg_tls, "cipher-suite", cipher_suite, 0, NULL),
};
static TYPE(type_tls, struct cfg_tls, tls_fields, cfg_check_tls);

static const struct cfg_field cluster_fields[] = {
    F_OBJS(struct cfg_cluster, "seed-nodes", seed_nodes, CFF_REQUIRED | CFF_NONEMPTY, type_seed_node),
    F_OBJ(struct cfg_cluster, "credentials", credentials, 0, type_credentials),
    F_INT(struct cfg_cluster, "conn-timeout", conn_timeout, 0, 1, NO_MAX),
    F_BOOL(struct cfg_cluster, "use-services-alternate", use_services_alternate),
    F_INT(struct cfg_cluster, "max-parallel-scans", max_parallel_scans, 0, 1, NO_MAX),
    F_STR(struct cfg_cluster, "label", label, 0, NULL),
    F_INTS(struct cfg_cluster, "prefer-racks", prefer_racks, CFF_UNIQUE, 0, 1000000),
    F_OBJ(struct cfg_cluster, "tls", tls, 0, type_tls),
};
TYPE(cfg_type_cluster, struct cfg_cluster, cluster_fields, NULL);

/* ---- storage ---------------------------------------------------------------------------- */
static const char *const s3_classes_data[] = {"STANDARD", "GLACIER", "STANDARD_IA", "ONEZONE_IA",
    "INTELLIGENT_TIERING", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE", NULL};
static const char *const s3_classes_meta[] = {"STANDARD", "STANDARD_IA", "INTELLIGENT_TIERING",
    "EXPRESS_ONEZONE", "ONEZONE_IA", "OUTPOSTS", NULL};
static const char *const azure_classes_data[] = {"Hot", "Cool", "Cold", "Archive", NULL};
static const char *const azure_classes_meta[] = {"Hot", "Cool", "Cold", NULL};
static const char *const gcp_classes_data[] = {"STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE", NULL};

static const struct cfg_field s3_class_fields[] = {
    F_STR(struct cfg_storage_class, "data", data, 0, s3_classes_data),
    F_STR(struct cfg_storage_class, "metadata", metadata, 0, s3_classes_meta),
};
static TYPE(type_s3_class, struct cfg_storage_class, s3_class_fields, NULL);
static const struct cfg_field azure_class_fields[] = {
    F_STR(struct cfg_storage_class, "data", data, 0, azure_classes_data),
    F_STR(struct cfg_storage_class, "metadata", metadata, 0, azure_classes_meta),
};
static TYPE(type_azure_class, struct cfg_storage_class, azure_class_fields, NULL);
static const struct cfg_field gcp_class_fields[] = {
    F_STR(struct cfg_storage_class, "data", data, 0, gcp_classes_data),
    F_STR(struct cfg_storage_class, "metadata", metadata, 0, gcp_classes_data),
};
static TYPE(type_gcp_class, struct cfg_storage_class, gcp_class_fields, NULL);

static const struct cfg_field local_fields[] = {
    F_STR(struct cfg_local_storage, "path", path, CFF_REQUIRED | CFF_NONEMPTY, NULL),
};
static TYPE(type_local, struct cfg_local_storage, local_fields, NULL);

#define STORAGE_AGENT_FIELDS(T)                                                   \
    F_OBJ(T, "secret-agent", secret_agent, 0, cfg_type_secret_agent),            \
    F_STR(T, "secret-agent-name", secret_agent_name, CFF_NONEMPTY, NULL)

static const struct cfg_field s3_fields[] = {
    F_STR(struct cfg_s3_storage, "bucket", bucket, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_STR(struct cfg_s3_storage, "s3-region", s3_region, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_STR(struct cfg_s3_storage, "path", path, 0, NULL),
    F_STR(struct cfg_s3_storage, "s3-profile", s3_profile, 0, NULL),
    F_STR(struct cfg_s3_storage, "s3-endpoint-override", s3_endpoint_override, 0, NULL),
    F_STR(struct cfg_s3_storage, "access-key-id", access_key_id, CFF_SECRET, NULL),
    F_STR(struct cfg_s3_storage, "secret-access-key", secret_access_key, CFF_SECRET, NULL),
    F_STR(struct cfg_s3_storage, "s3-log-level", s3_log_level, CFF_ENUM_CI, s3_log_levels),
    F_INT(struct cfg_s3_storage, "max-async-connections", max_async_connections, 0, 1, NO_MAX),
    F_INT(struct cfg_s3_storage, "min-part-size", min_part_size, 0, 5 * 1024 * 1024, NO_MAX),
    F_OBJ(struct cfg_s3_storage, "storage-class", storage_class, 0, type_s3_class),
    STORAGE_AGENT_FIELDS(struct cfg_s3_storage),
};
static TYPE(type_s3, struct cfg_s3_storage, s3_fields, cfg_check_s3);

static const struct cfg_field azure_fields[] = {
    F_STR(struct cfg_azure_storage, "endpoint", endpoint, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_STR(struct cfg_azure_storage, "container-name", container_name, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_STR(struct cfg_azure_storage, "path", path, 0, NULL),
    F_STR(struct cfg_azure_storage, "account-name", account_name, 0, NULL),
    F_STR(struct cfg_azure_storage, "account-key", account_key, CFF_SECRET, NULL),
    F_STR(struct cfg_azure_storage, "tenant-id", tenant_id, CFF_SECRET, NULL),
    F_STR(struct cfg_azure_storage, "client-id", client_id, CFF_SECRET, NULL),
    F_STR(struct cfg_azure_storage, "client-secret", client_secret, CFF_SECRET, NULL),
    F_INT(struct cfg_azure_storage, "min-part-size", min_part_size, 0, 1024 * 1024, NO_MAX),
    F_OBJ(struct cfg_azure_storage, "storage-class", storage_class, 0, type_azure_class),
    STORAGE_AGENT_FIELDS(struct cfg_azure_storage),
};
static TYPE(type_azure, struct cfg_azure_storage, azure_fields, cfg_check_azure);

static const struct cfg_field gcp_fields[] = {
    F_STR(struct cfg_gcp_storage, "bucket-name", bucket_name, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_STR(struct cfg_gcp_storage, "path", path, 0, NULL),
    F_STR(struct cfg_gcp_storage, "key", key, CFF_SECRET, NULL),
    F_STR(struct cfg_gcp_storage, "key-file-path", key_file_path, CFF_NONEMPTY, NULL),
    F_STR(struct cfg_gcp_storage, "endpoint", endpoint, 0, NULL),
    F_INT(struct cfg_gcp_storage, "min-part-size", min_part_size, 0, 256 * 1024, NO_MAX),
    F_OBJ(struct cfg_gcp_storage, "storage-class", storage_class, 0, type_gcp_class),
    STORAGE_AGENT_FIELDS(struct cfg_gcp_storage),
};
static TYPE(type_gcp, struct cfg_gcp_storage, gcp_fields, cfg_check_gcp);

static const struct cfg_field storage_fields[] = {
    F_OBJ(struct cfg_storage, "local-storage", local, 0, type_local),
    F_OBJ(struct cfg_storage, "s3-storage", s3, 0, type_s3),
    F_OBJ(struct cfg_storage, "azure-storage", azure, 0, type_azure),
    F_OBJ(struct cfg_storage, "gcp-storage", gcp, 0, type_gcp),
};
TYPE(cfg_type_storage, struct cfg_storage, storage_fields, cfg_check_storage);

/* ---- backup-policies ------------------------------------------------------------------ */
static const struct cfg_field retry_fields[] = {
    F_INT(struct cfg_retry_policy, "base-timeout", base_timeout, 0, 1, NO_MAX),
    F_INT(struct cfg_retry_policy, "max-retries", max_retries, 0, 0, NO_MAX),
    F_DBL(struct cfg_retry_policy, "multiplier", multiplier, 1, NO_MAX),
};
static TYPE(type_retry, struct cfg_retry_policy, retry_fields, NULL);

static const struct cfg_field retention_fields[] = {
    F_INT(struct cfg_retention, "full", full, 0, 1, NO_MAX),
    F_INT(struct cfg_retention, "incremental", incremental, 0, 0, NO_MAX),
};
static TYPE(type_retention, struct cfg_retention, retention_fields, cfg_check_retention);

static const struct cfg_field encryption_fields[] = {
    F_STR(struct cfg_encryption, "mode", mode, CFF_ENUM_CI, enc_modes),
    F_STR(struct cfg_encryption, "key-file", key_file, CFF_NONEMPTY, NULL),
    F_STR(struct cfg_encryption, "key-env", key_env, CFF_NONEMPTY, NULL),
    F_STR(struct cfg_encryption, "key-secret", key_secret, CFF_SECRET | CFF_NONEMPTY, NULL),
};
static TYPE(type_encryption, struct cfg_encryption, encryption_fields, cfg_check_encryption);

static const struct cfg_field compression_fields[] = {
    F_STR(struct cfg_compression, "mode", mode, CFF_ENUM_CI, comp_modes),
    F_INT(struct cfg_compression, "level", level, 0, -1, 22),
};
static TYPE(type_compression, struct cfg_compression, compression_fields, NULL);

static const struct cfg_field policy_fields[] = {
    F_INT(struct cfg_policy, "parallel", parallel, 0, 1, NO_MAX),
    F_INT(struct cfg_policy, "parallel-write", parallel_write, 0, 1, NO_MAX),
    F_INT(struct cfg_policy, "socket-timeout", socket_timeout, 0, 0, NO_MAX),
    F_INT(struct cfg_policy, "total-timeout", total_timeout, 0, 0, NO_MAX),
    F_OBJ(struct cfg_policy, "retry-policy", retry_policy, 0, type_retry),
    F_OBJ(struct cfg_policy, "retention", retention, 0, type_retention),
    F_BOOL(struct cfg_policy, "no-records", no_records),
    F_BOOL(struct cfg_policy, "no-indexes", no_indexes),
    F_BOOL(struct cfg_policy, "no-udfs", no_udfs),
    F_INT(struct cfg_policy, "bandwidth", bandwidth, 0, 1, NO_MAX),
    F_INT(struct cfg_policy, "records-per-second", records_per_second, 0, 1, NO_MAX),
    F_INT(struct cfg_policy, "file-limit", file_limit, 0, 0, NO_MAX),
    F_OBJ(struct cfg_policy, "encryption", encryption, 0, type_encryption),
    F_OBJ(struct cfg_policy, "compression", compression, 0, type_compression),
    F_BOOL(struct cfg_policy, "sealed", sealed),
    F_BOOL(struct cfg_policy, "concurrent-incremental", concurrent_incremental),
    F_BOOL(struct cfg_policy, "with-cluster-configuration", with_cluster_configuration),
    F_BOOL(struct cfg_policy, "compact", compact),
    F_INT(struct cfg_policy, "max-concurrent-nodes", max_concurrent_nodes, 0, 0, NO_MAX),
    F_BOOL(struct cfg_policy, "use-scan-compression", use_scan_compression),
};
TYPE(cfg_type_policy, struct cfg_policy, policy_fields, NULL);

/* ---- backup-routines ------------------------------------------------------------------ */
static const struct cfg_field routine_fields[] = {
    F_STR(struct cfg_routine, "interval-cron", interval_cron, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_STR(struct cfg_routine, "incr-interval-cron", incr_interval_cron, 0, NULL),
    F_STR(struct cfg_routine, "source-cluster", source_cluster, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_STR(struct cfg_routine, "storage", storage, CFF_REQUIRED | CFF_NONEMPTY, NULL),
    F_STR(struct cfg_routine, "backup-policy", backup_policy, 0, NULL),
    F_STRS(struct cfg_routine, "namespaces", namespaces, CFF_REQUIRED | CFF_UNIQUE),
    F_STRS(struct cfg_routine, "set-list", set_list, CFF_UNIQUE),
    F_STRS(struct cfg_routine, "bin-list", bin_list, CFF_UNIQUE),
    F_INTS(struct cfg_routine, "rack-list", rack_list, CFF_UNIQUE, 0, 1000000),
    F_STR(struct cfg_routine, "partition-list", partition_list, 0, NULL),
    F_STRS(struct cfg_routine, "node-list", node_list, CFF_UNIQUE),
    F_STR(struct cfg_routine, "secret-agent", secret_agent, 0, NULL),
    F_BOOL(struct cfg_routine, "disabled", disabled),
};
TYPE(cfg_type_routine, struct cfg_routine, routine_fields, cfg_check_routine);

/* ---- the whole configuration ---------------------------------------------------------- */
static const struct cfg_field config_fields[] = {
    F_OBJ(struct cfg, "service", service, 0, cfg_type_service),
    F_MAP(struct cfg, "aerospike-clusters", clusters, cfg_type_cluster),
    F_MAP(struct cfg, "storage", storage, cfg_type_storage),
    F_MAP(struct cfg, "backup-policies", policies, cfg_type_policy),
    F_MAP(struct cfg, "backup-routines", routines, cfg_type_routine),
    F_MAP(struct cfg, "secret-agents", secret_agents, cfg_type_secret_agent),
};
TYPE(cfg_type_config, struct cfg, config_fields, NULL);

/* ======================================================================================= */
/* Generic machinery                                                                        */
/* ======================================================================================= */

#define FIELD_PTR(obj, f) ((void *)((char *)(obj) + (f)->offset))
#define FIELD_CPTR(obj, f) ((const void *)((const char *)(obj) + (f)->offset))

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static void join_path(char *buf, size_t cap, const char *path, const char *key)
{
    if (path && *path)
        str_printf(buf, cap, "%s.%s", path, key);
    else
        str_printf(buf, cap, "%s", key);
}

static int wrong_type(struct err *e, const char *path, const char *want, const json_t *got)
{
    return err_set(e, ERR_INVALID, "%s: must be %s, got %s", path, want, json_type_name(got));
}

static int decode_string(const json_t *v, const char *path, const struct cfg_decode_ctx *ctx,
                         char **out, struct err *e)
{
    char num[64];
    const char *s;
    if (json_is_string(v)) {
        s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
            return err_set(e, ERR_INVALID, "%s: must not contain NUL characters", path);
    } else if (ctx->lenient_strings && json_is_integer(v)) {
        str_printf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
    } else if (ctx->lenient_strings && json_is_real(v)) {
        str_printf(num, sizeof num, "%g", json_real_value(v));
        s = num;
    } else {
        return wrong_type(e, path, "a string", v);
    }
    *out = strdup(s);
    return *out ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}

static int check_enum(const struct cfg_field *f, const char *s, const char *path, struct err *e)
{
    if (!f->enums)
        return 0;
    for (const char *const *p = f->enums; *p; p++)
        if ((f->flags & CFF_ENUM_CI) ? strcasecmp(*p, s) == 0 : strcmp(*p, s) == 0)
            return 0;
    char allowed[256] = "";
    for (const char *const *p = f->enums; *p; p++) {
        strncat(allowed, *p, sizeof allowed - strlen(allowed) - 3);
        if (p[1])
            strncat(allowed, ", ", sizeof allowed - strlen(allowed) - 1);
    }
    return err_set(e, ERR_INVALID, "%s: invalid value \"%.100s\", must be one of: %s", path, s, allowed);
}

static int check_range(const struct cfg_field *f, int64_t v, const char *path, struct err *e)
{
    if (!(f->flags & CFF_RANGE))
        return 0;
    if (v < f->min)
        return err_set(e, ERR_INVALID, "%s: must be >= %" PRId64 ", got %" PRId64, path, f->min, v);
    if (v > f->max)
        return err_set(e, ERR_INVALID, "%s: must be <= %" PRId64 ", got %" PRId64, path, f->max, v);
    return 0;
}

static int decode_int(const struct cfg_field *f, const json_t *v, const char *path, int64_t *out,
                      struct err *e)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9.0e15) {
        *out = (int64_t)json_real_value(v); /* JSON clients may send 10.0 */
    } else {
        return wrong_type(e, path, "an integer", v);
    }
    return check_range(f, *out, path, e);
}

static int decode_strlist(const struct cfg_field *f, const json_t *v, const char *path,
                          const struct cfg_decode_ctx *ctx, cfg_strlist *out, struct err *e)
{
    if (!json_is_array(v))
        return wrong_type(e, path, "a list of strings", v);
    out->set = true;
    out->n = 0;
    out->v = calloc(json_array_size(v) + 1, sizeof(char *));
    if (!out->v)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t i;
    json_t *item;
    char ipath[512];
    json_array_foreach(v, i, item) {
        str_printf(ipath, sizeof ipath, "%s[%zu]", path, i);
        if (decode_string(item, ipath, ctx, &out->v[i], e))
            return ERR_INVALID;
        out->n = i + 1;
        if ((f->flags & CFF_UNIQUE) && out->v[i][0] == '\0')
            return err_set(e, ERR_INVALID, "%s: must not be empty", ipath);
        for (size_t j = 0; (f->flags & CFF_UNIQUE) && j < i; j++)
            if (strcmp(out->v[j], out->v[i]) == 0)
                return err_set(e, ERR_INVALID, "%s: duplicate value \"%.100s\"", ipath, out->v[i]);
    }
    if ((f->flags & CFF_NONEMPTY) && out->n == 0)
        return err_set(e, ERR_INVALID, "%s: must not be empty", path);
    return 0;
}

static int decode_intlist(const struct cfg_field *f, const json_t *v, const char *path,
                          cfg_intlist *out, struct err *e)
{
    if (!json_is_array(v))
        return wrong_type(e, path, "a list of integers", v);
    out->set = true;
    out->n = 0;
    out->v = calloc(json_array_size(v) + 1, sizeof(int64_t));
    if (!out->v)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t i;
    json_t *item;
    char ipath[512];
    json_array_foreach(v, i, item) {
        str_printf(ipath, sizeof ipath, "%s[%zu]", path, i);
        if (decode_int(f, item, ipath, &out->v[i], e))
            return ERR_INVALID;
        out->n = i + 1;
        for (size_t j = 0; (f->flags & CFF_UNIQUE) && j < i; j++)
            if (out->v[j] == out->v[i])
                return err_set(e, ERR_INVALID, "%s: duplicate value %" PRId64, ipath, out->v[i]);
    }
    if ((f->flags & CFF_NONEMPTY) && out->n == 0)
        return err_set(e, ERR_INVALID, "%s: must not be empty", path);
    return 0;
}

static int decode_objlist(const struct cfg_field *f, const json_t *v, const char *path,
                          const struct cfg_decode_ctx *ctx, cfg_objlist *out, struct err *e)
{
    if (!json_is_array(v))
        return wrong_type(e, path, "a list", v);
    out->set = true;
    out->n = 0;
    out->v = calloc(json_array_size(v) + 1, sizeof(void *));
    if (!out->v)
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t i;
    json_t *item;
    char ipath[512];
    json_array_foreach(v, i, item) {
        str_printf(ipath, sizeof ipath, "%s[%zu]", path, i);
        if (cfg_decode(f->sub, item, ipath, ctx, &out->v[i], e))
            return ERR_INVALID;
        out->n = i + 1;
    }
    if ((f->flags & CFF_NONEMPTY) && out->n == 0)
        return err_set(e, ERR_INVALID, "%s: must not be empty", path);
    return 0;
}

static int check_entity_name(const char *name, const char *path, struct err *e)
{
    if (name[0] == '\0')
        return err_set(e, ERR_INVALID, "%s: names must not be empty", path);
    if (strchr(name, '/'))
        return err_set(e, ERR_INVALID, "%s.%s: names must not contain '/'", path, name);
    return 0;
}

static int decode_map(const struct cfg_field *f, const json_t *v, const char *path,
                      const struct cfg_decode_ctx *ctx, cfg_map *out, struct err *e)
{
    if (!json_is_object(v))
        return wrong_type(e, path, "a map of names to objects", v);
    size_t n = json_object_size(v);
    out->names = calloc(n + 1, sizeof(char *));
    out->items = calloc(n + 1, sizeof(void *));
    if (!out->names || !out->items)
        return err_set(e, ERR_NOMEM, "out of memory");
    const char *name;
    json_t *item;
    char ipath[512];
    json_object_foreach((json_t *)v, name, item) {
        if (check_entity_name(name, path, e))
            return ERR_INVALID;
        join_path(ipath, sizeof ipath, path, name);
        out->names[out->n] = strdup(name);
        if (!out->names[out->n])
            return err_set(e, ERR_NOMEM, "out of memory");
        out->n++;
        if (cfg_decode(f->sub, item, ipath, ctx, &out->items[out->n - 1], e))
            return ERR_INVALID;
    }
    return 0;
}

static int decode_field(const struct cfg_field *f, const json_t *v, const char *path,
                        const struct cfg_decode_ctx *ctx, void *obj, struct err *e)
{
    void *slot = FIELD_PTR(obj, f);
    switch (f->kind) {
    case CFK_STR: {
        char **s = slot;
        if (decode_string(v, path, ctx, s, e) || check_enum(f, *s, path, e))
            return ERR_INVALID;
        if ((f->flags & CFF_NONEMPTY) && (*s)[0] == '\0')
            return err_set(e, ERR_INVALID, "%s: must not be empty", path);
        return 0;
    }
    case CFK_INT: {
        cfg_int *i = slot;
        i->set = true;
        return decode_int(f, v, path, &i->v, e);
    }
    case CFK_BOOL: {
        cfg_bool *b = slot;
        if (!json_is_boolean(v))
            return wrong_type(e, path, "a boolean", v);
        b->set = true;
        b->v = json_is_true(v);
        return 0;
    }
    case CFK_DOUBLE: {
        cfg_double *d = slot;
        if (!json_is_number(v))
            return wrong_type(e, path, "a number", v);
        d->set = true;
        d->v = json_number_value(v);
        if (!isfinite(d->v) || ((f->flags & CFF_RANGE) && (d->v < (double)f->min || d->v > (double)f->max)))
            return err_set(e, ERR_INVALID, "%s: must be >= %" PRId64 ", got %g", path, f->min, d->v);
        return 0;
    }
    case CFK_STRLIST: return decode_strlist(f, v, path, ctx, slot, e);
    case CFK_INTLIST: return decode_intlist(f, v, path, slot, e);
    case CFK_OBJ: return cfg_decode(f->sub, v, path, ctx, (void **)slot, e);
    case CFK_OBJLIST: return decode_objlist(f, v, path, ctx, slot, e);
    case CFK_MAP: return decode_map(f, v, path, ctx, slot, e);
    }
    return err_set(e, ERR_INTERNAL, "%s: unknown field kind", path);
}

static const struct cfg_field *find_field(const struct cfg_type *t, const char *key)
{
    for (size_t i = 0; i < t->n_fields; i++)
        if (strcmp(t->fields[i].key, key) == 0)
            return &t->fields[i];
    return NULL;
}

static bool field_present(const struct cfg_field *f, const void *obj)
{
    const void *slot = FIELD_CPTR(obj, f);
    switch (f->kind) {
    case CFK_STR: return *(char *const *)slot != NULL;
    case CFK_INT: return ((const cfg_int *)slot)->set;
    case CFK_BOOL: return ((const cfg_bool *)slot)->set;
    case CFK_DOUBLE: return ((const cfg_double *)slot)->set;
    case CFK_STRLIST: return ((const cfg_strlist *)slot)->set;
    case CFK_INTLIST: return ((const cfg_intlist *)slot)->set;
    case CFK_OBJ: return *(void *const *)slot != NULL;
    case CFK_OBJLIST: return ((const cfg_objlist *)slot)->set;
    case CFK_MAP: return ((const cfg_map *)slot)->n > 0;
    }
    return false;
}

int cfg_decode(const struct cfg_type *t, const json_t *json, const char *path,
               const struct cfg_decode_ctx *ctx, void **out, struct err *e)
{
    static const struct cfg_decode_ctx strict = {0};
    const char *where = (path && *path) ? path : "configuration";
    *out = NULL;
    if (!ctx)
        ctx = &strict;
    if (!json_is_object(json))
        return wrong_type(e, where, "an object", json);
    void *obj = calloc(1, t->size);
    if (!obj)
        return err_set(e, ERR_NOMEM, "out of memory");

    const char *key;
    json_t *value;
    char fpath[512];
    json_object_foreach((json_t *)json, key, value) {
        join_path(fpath, sizeof fpath, path, key);
        const struct cfg_field *f = find_field(t, key);
        if (!f) {
            err_set(e, ERR_INVALID, "%s: unknown field", fpath);
            goto fail;
        }
        if (json_is_null(value)) /* an empty YAML value means "not given" */
            continue;
        if (decode_field(f, value, fpath, ctx, obj, e))
            goto fail;
    }
    for (size_t i = 0; i < t->n_fields; i++) {
        const struct cfg_field *f = &t->fields[i];
        if ((f->flags & CFF_REQUIRED) && !field_present(f, obj)) {
            join_path(fpath, sizeof fpath, path, f->key);
            err_set(e, ERR_INVALID, "%s: required field is missing", fpath);
            goto fail;
        }
    }
    if (t->check && t->check(obj, where, e))
        goto fail;
    *out = obj;
    return 0;
fail:
    cfg_free_obj(t, obj);
    return ERR_INVALID;
}

bool cfg_is_secret_ref(const char *s)
{
    if (!s || strncmp(s, "secrets:", 8) != 0)
        return false;
    int colons = 0;
    for (const char *p = s; *p; p++)
        colons += *p == ':';
    return colons == 2;
}

static json_t *encode_field(const struct cfg_field *f, const void *obj, bool redact)
{
    const void *slot = FIELD_CPTR(obj, f);
    switch (f->kind) {
    case CFK_STR: {
        const char *s = *(char *const *)slot;
        if (redact && (f->flags & CFF_SECRET) && !cfg_is_secret_ref(s))
            return json_string(CFG_SECRET_PLACEHOLDER);
        return json_string(s);
    }
    case CFK_INT: return json_integer(((const cfg_int *)slot)->v);
    case CFK_BOOL: return json_boolean(((const cfg_bool *)slot)->v);
    case CFK_DOUBLE: {
        double d = ((const cfg_double *)slot)->v; /* integral values print as integers, as Go does */
        return (d == floor(d) && fabs(d) < 1e15) ? json_integer((json_int_t)d) : json_real(d);
    }
    case CFK_STRLIST: {
        const cfg_strlist *l = slot;
        json_t *a = json_array();
        for (size_t i = 0; i < l->n; i++)
            json_array_append_new(a, json_string(l->v[i]));
        return a;
    }
    case CFK_INTLIST: {
        const cfg_intlist *l = slot;
        json_t *a = json_array();
        for (size_t i = 0; i < l->n; i++)
            json_array_append_new(a, json_integer(l->v[i]));
        return a;
    }
    case CFK_OBJ: return cfg_encode(f->sub, *(void *const *)slot, redact);
    case CFK_OBJLIST: {
        const cfg_objlist *l = slot;
        json_t *a = json_array();
        for (size_t i = 0; i < l->n; i++)
            json_array_append_new(a, cfg_encode(f->sub, l->v[i], redact));
        return a;
    }
    case CFK_MAP: {
        const cfg_map *m = slot;
        json_t *o = json_object();
        for (size_t i = 0; i < m->n; i++)
            json_object_set_new(o, m->names[i], cfg_encode(f->sub, m->items[i], redact));
        return o;
    }
    }
    return json_null();
}

json_t *cfg_encode(const struct cfg_type *t, const void *obj, bool redact)
{
    json_t *o = json_object();
    if (!obj)
        return o;
    for (size_t i = 0; i < t->n_fields; i++) {
        const struct cfg_field *f = &t->fields[i];
        if (field_present(f, obj))
            json_object_set_new(o, f->key, encode_field(f, obj, redact));
    }
    return o;
}

static void free_field(const struct cfg_field *f, void *obj)
{
    void *slot = FIELD_PTR(obj, f);
    switch (f->kind) {
    case CFK_STR: free(*(char **)slot); break;
    case CFK_INT:
    case CFK_BOOL:
    case CFK_DOUBLE: break;
    case CFK_STRLIST: {
        cfg_strlist *l = slot;
        for (size_t i = 0; i < l->n; i++)
            free(l->v[i]);
        free(l->v);
        break;
    }
    case CFK_INTLIST: free(((cfg_intlist *)slot)->v); break;
    case CFK_OBJ: cfg_free_obj(f->sub, *(void **)slot); break;
    case CFK_OBJLIST: {
        cfg_objlist *l = slot;
        for (size_t i = 0; i < l->n; i++)
            cfg_free_obj(f->sub, l->v[i]);
        free(l->v);
        break;
    }
    case CFK_MAP: {
        cfg_map *m = slot;
        for (size_t i = 0; i < m->n; i++) {
            free(m->names[i]);
            cfg_free_obj(f->sub, m->items[i]);
        }
        free(m->names);
        free(m->items);
        break;
    }
    }
}

void cfg_free_obj(const struct cfg_type *t, void *obj)
{
    if (!obj)
        return;
    for (size_t i = 0; i < t->n_fields; i++)
        free_field(&t->fields[i], obj);
    free(obj);
}

static int merge_field(const struct cfg_field *f, json_t *in, const json_t *stored,
                       const char *path, struct err *e)
{
    switch (f->kind) {
    case CFK_STR:
        if (!(f->flags & CFF_SECRET) || !json_is_string(in) ||
            strcmp(json_string_value(in), CFG_SECRET_PLACEHOLDER) != 0)
            return 0;
        if (!json_is_string(stored))
            return err_set(e, ERR_INVALID, "%s: \"" CFG_SECRET_PLACEHOLDER
                           "\" keeps a stored secret, but none is stored here", path);
        return json_string_set(in, json_string_value(stored)) ? err_set(e, ERR_NOMEM, "out of memory") : 0;
    case CFK_OBJ:
        return cfg_merge_secrets(f->sub, in, stored, path, e);
    case CFK_OBJLIST: {
        size_t i;
        json_t *item;
        char ipath[512];
        if (!json_is_array(in))
            return 0;
        json_array_foreach(in, i, item) {
            str_printf(ipath, sizeof ipath, "%s[%zu]", path, i);
            if (cfg_merge_secrets(f->sub, item, json_array_get(stored, i), ipath, e))
                return ERR_INVALID;
        }
        return 0;
    }
    case CFK_MAP: {
        const char *name;
        json_t *item;
        char ipath[512];
        if (!json_is_object(in))
            return 0;
        json_object_foreach(in, name, item) {
            join_path(ipath, sizeof ipath, path, name);
            if (cfg_merge_secrets(f->sub, item, json_object_get(stored, name), ipath, e))
                return ERR_INVALID;
        }
        return 0;
    }
    default:
        return 0;
    }
}

int cfg_merge_secrets(const struct cfg_type *t, json_t *incoming, const json_t *stored,
                      const char *path, struct err *e)
{
    if (!json_is_object(incoming))
        return 0; /* the decoder reports the type error */
    const char *key;
    json_t *value;
    char fpath[512];
    json_object_foreach(incoming, key, value) {
        const struct cfg_field *f = find_field(t, key);
        if (!f)
            continue;
        join_path(fpath, sizeof fpath, path, key);
        if (merge_field(f, value, json_is_object(stored) ? json_object_get(stored, key) : NULL, fpath, e))
            return ERR_INVALID;
    }
    return 0;
}
