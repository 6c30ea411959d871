/*
 * stor_link.h - opens a configured storage with its secret references resolved: the credential
 * fields of a cloud storage may be `secrets:` references, fetched through the storage's secret
 * agent before the backend sees the configuration (abs-reference §2.3, §7).
 */
#ifndef ABS_JOBS_STOR_LINK_H
#define ABS_JOBS_STOR_LINK_H

#include "secret/secret_config.h"
#include "storage/storage.h"

/* stor_open on a resolved copy of `sc`; `name` names the storage in messages; `scope` may be
 * NULL (literal credentials only). */
int job_stor_open(const char *name, const struct cfg_storage *sc, const struct secret_scope *scope,
                  struct stor **out, struct err *e);

#endif
