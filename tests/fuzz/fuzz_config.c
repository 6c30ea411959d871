/*
 * fuzz_config.c - libFuzzer target for the configuration decoders: the first input byte picks
 * YAML (even) or JSON (odd); the rest is the document. YAML goes through cfg_yaml_to_json and
 * then the strict model decoder and validator (cfg_from_json), JSON (the REST API's input)
 * straight into cfg_from_json; an accepted configuration is emitted as YAML and read back.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_yaml.h"
#include "config/cfg_model.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_tree(json_t *root)
{
    struct err e;
    err_clear(&e);
    struct cfg *c = NULL;
    if (cfg_from_json(root, &c, &e) != 0)
        return;
    char *yaml = NULL;
    if (cfg_to_yaml(c, &yaml, &e) == 0) {
        struct cfg *again = NULL;
        if (cfg_from_yaml(yaml, strlen(yaml), "fuzz", &again, &e) == 0)
            cfg_release(again);
        free(yaml);
    }
    json_t *j = cfg_to_json(c, true);
    json_decref(j);
    cfg_release(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    json_t *root = NULL;
    struct err e;
    err_clear(&e);
    if (data[0] & 1) {
        json_error_t je;
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    } else if (cfg_yaml_to_json(text, len, "fuzz", &root, &e) == 0) {
        char *back = NULL;
        if (cfg_json_to_yaml(root, &back, &e) == 0)
            free(back);
    }
    if (root) {
        decode_tree(root);
        json_decref(root);
    }
    return 0;
}
