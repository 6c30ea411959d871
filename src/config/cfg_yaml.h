/*
 * cfg_yaml.h - YAML text <-> JSON tree (jansson), so that files and the REST API feed one
 * decoder. Plain scalars are resolved as YAML 1.2 core (null, bool, int, float, string);
 * quoted scalars are strings. Aliases are expanded, duplicate keys and non-scalar keys are
 * errors, only the first document is read. Emission quotes every string that would read back
 * as another type, so a save reads back identically.
 */
#ifndef ABS_CONFIG_YAML_H
#define ABS_CONFIG_YAML_H

#include <jansson.h>
#include <stddef.h>

#include "util/err.h"

/* `origin` names the text in messages ("config.yml: line 3, column 5: ..."). */
int cfg_yaml_to_json(const char *text, size_t len, const char *origin, json_t **out, struct err *e);

/* Emits `root` as a block-style YAML document (heap string, caller frees). */
int cfg_json_to_yaml(const json_t *root, char **out, struct err *e);

#endif
