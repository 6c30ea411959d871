/*
 * cfg_yaml.c - YAML <-> JSON conversion with libyaml (see cfg_yaml.h).
 *
 * Reading walks libyaml's event stream with an explicit recursion over nodes; each node becomes
 * a json_t. Writing walks a json_t and emits events with the block style.
 */
#include "config/cfg_yaml.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 64
#define YAML_MAX_ANCHORS 1024

struct yreader {
    yaml_parser_t parser;
    const char *origin;
    struct err *e;
    size_t n_anchors;
    char *anchor_names[YAML_MAX_ANCHORS];
    json_t *anchor_values[YAML_MAX_ANCHORS];
};

static int yr_fail(struct yreader *r, const yaml_mark_t *mark, const char *what)
{
    return err_set(r->e, ERR_INVALID, "%s: line %zu, column %zu: %s", r->origin, mark->line + 1,
                   mark->column + 1, what);
}

static int yr_next(struct yreader *r, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&r->parser, ev)) {
        const char *problem = r->parser.problem ? r->parser.problem : "YAML syntax error";
        return err_set(r->e, ERR_INVALID, "%s: line %zu, column %zu: %s", r->origin,
                       r->parser.problem_mark.line + 1, r->parser.problem_mark.column + 1, problem);
    }
    return 0;
}

static int remember_anchor(struct yreader *r, const yaml_char_t *anchor, json_t *value,
                           const yaml_mark_t *mark)
{
    if (!anchor)
        return 0;
    if (r->n_anchors == YAML_MAX_ANCHORS)
        return yr_fail(r, mark, "too many anchors");
    r->anchor_names[r->n_anchors] = strdup((const char *)anchor);
    r->anchor_values[r->n_anchors] = json_incref(value);
    r->n_anchors++;
    return 0;
}

static json_t *lookup_anchor(struct yreader *r, const char *name)
{
    for (size_t i = r->n_anchors; i > 0; i--)
        if (strcmp(r->anchor_names[i - 1], name) == 0)
            return r->anchor_values[i - 1];
    return NULL;
}

static bool str_in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static json_t *resolve_plain(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    if (str_in(s, nulls))
        return json_null();
    if (str_in(s, trues))
        return json_true();
    if (str_in(s, falses))
        return json_false();

    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p >= '0' && *p <= '9') {
        char *end;
        errno = 0;
        long long v;
        if (p[0] == '0' && p[1] == 'x' && p == s)
            v = strtoll(s + 2, &end, 16);
        else if (p[0] == '0' && p[1] == 'o' && p == s)
            v = strtoll(s + 2, &end, 8);
        else
            v = strtoll(s, &end, 10);
        if (*end == '\0' && errno == 0 && end != s)
            return json_integer(v);
        errno = 0;
        double d = strtod(s, &end);
        if (*end == '\0' && errno == 0 && strpbrk(s, ".eE") && !strpbrk(s, "xXnN"))
            return json_real(d);
    }
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    if (str_in(s, infs))
        return json_real(INFINITY);
    return json_string(s);
}

static json_t *scalar_value(const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag && strcmp(tag, YAML_STR_TAG) == 0)
        return json_stringn(text, ev->data.scalar.length);
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(text, ev->data.scalar.length);
    if (strlen(text) != ev->data.scalar.length) /* embedded NUL */
        return json_stringn(text, ev->data.scalar.length);
    return resolve_plain(text);
}

static int read_node(struct yreader *r, yaml_event_t *ev, int depth, json_t **out);

static int read_mapping(struct yreader *r, int depth, json_t *obj)
{
    for (;;) {
        yaml_event_t kev;
        if (yr_next(r, &kev))
            return -1;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return 0;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            int rc = yr_fail(r, &kev.start_mark, "mapping keys must be scalars");
            yaml_event_delete(&kev);
            return rc;
        }
        char *key = strndup((const char *)kev.data.scalar.value, kev.data.scalar.length);
        yaml_mark_t mark = kev.start_mark;
        yaml_event_delete(&kev);
        if (!key)
            return err_set(r->e, ERR_NOMEM, "out of memory");
        if (json_object_get(obj, key)) {
            char msg[300];
            snprintf(msg, sizeof msg, "duplicate key \"%.200s\"", key);
            free(key);
            return yr_fail(r, &mark, msg);
        }
        yaml_event_t vev;
        json_t *val = NULL;
        if (yr_next(r, &vev) || read_node(r, &vev, depth + 1, &val)) {
            free(key);
            return -1;
        }
        json_object_set_new(obj, key, val);
        free(key);
    }
}

static int read_sequence(struct yreader *r, int depth, json_t *arr)
{
    for (;;) {
        yaml_event_t ev;
        if (yr_next(r, &ev))
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        json_t *val = NULL;
        if (read_node(r, &ev, depth + 1, &val))
            return -1;
        json_array_append_new(arr, val);
    }
}

/* Consumes `ev` (already parsed) and the events of its subtree. */
static int read_node(struct yreader *r, yaml_event_t *ev, int depth, json_t **out)
{
    int rc = 0;
    if (depth > YAML_MAX_DEPTH) {
        rc = yr_fail(r, &ev->start_mark, "nesting too deep");
        yaml_event_delete(ev);
        return rc;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        *out = scalar_value(ev);
        if (!*out) /* jansson has no infinite numbers (.inf) */
            rc = yr_fail(r, &ev->start_mark, "number out of range (infinity is not supported)");
        else
            rc = remember_anchor(r, ev->data.scalar.anchor, *out, &ev->start_mark);
        break;
    case YAML_ALIAS_EVENT: {
        json_t *v = lookup_anchor(r, (const char *)ev->data.alias.anchor);
        if (!v)
            rc = yr_fail(r, &ev->start_mark, "unknown alias");
        else
            *out = json_deep_copy(v);
        break;
    }
    case YAML_MAPPING_START_EVENT: {
        yaml_char_t *anchor = ev->data.mapping_start.anchor;
        *out = json_object();
        rc = read_mapping(r, depth, *out);
        if (rc == 0)
            rc = remember_anchor(r, anchor, *out, &ev->start_mark);
        break;
    }
    case YAML_SEQUENCE_START_EVENT: {
        yaml_char_t *anchor = ev->data.sequence_start.anchor;
        *out = json_array();
        rc = read_sequence(r, depth, *out);
        if (rc == 0)
            rc = remember_anchor(r, anchor, *out, &ev->start_mark);
        break;
    }
    default:
        rc = yr_fail(r, &ev->start_mark, "unexpected YAML event");
        break;
    }
    yaml_event_delete(ev);
    if (rc && *out) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static int read_document(struct yreader *r, json_t **out)
{
    yaml_event_t ev;
    for (;;) {
        if (yr_next(r, &ev))
            return -1;
        yaml_event_type_t type = ev.type;
        if (type == YAML_STREAM_START_EVENT || type == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if (type == YAML_STREAM_END_EVENT) { /* empty file */
            yaml_event_delete(&ev);
            *out = json_object();
            return 0;
        }
        return read_node(r, &ev, 0, out);
    }
}

int cfg_yaml_to_json(const char *text, size_t len, const char *origin, json_t **out, struct err *e)
{
    struct yreader r = {.origin = origin ? origin : "<yaml>", .e = e};
    if (!yaml_parser_initialize(&r.parser))
        return err_set(e, ERR_NOMEM, "cannot initialise YAML parser");
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
    json_t *root = NULL;
    int rc = read_document(&r, &root);
    if (rc == 0 && json_is_null(root)) { /* document holding only "~" or comments */
        json_decref(root);
        root = json_object();
    }
    if (rc == 0) {
        /* Anything after the first document's end must be nothing but another stream end. */
        yaml_event_t ev;
        if (yr_next(&r, &ev) == 0) {
            if (ev.type == YAML_DOCUMENT_END_EVENT) {
                yaml_event_delete(&ev);
                if (yr_next(&r, &ev) == 0) {
                    if (ev.type != YAML_STREAM_END_EVENT)
                        rc = yr_fail(&r, &ev.start_mark, "only one YAML document is allowed");
                    yaml_event_delete(&ev);
                } else {
                    rc = -1;
                }
            } else {
                yaml_event_delete(&ev);
            }
        } else {
            rc = -1;
        }
    }
    for (size_t i = 0; i < r.n_anchors; i++) {
        free(r.anchor_names[i]);
        json_decref(r.anchor_values[i]);
    }
    yaml_parser_delete(&r.parser);
    if (rc) {
        json_decref(root);
        return rc ? rc : ERR_INVALID;
    }
    *out = root;
    return 0;
}

/* ---- emission ----------------------------------------------------------------------- */

struct ybuf {
    char *data;
    size_t len, cap;
};

static int ybuf_write(void *ctx, unsigned char *buffer, size_t size)
{
    struct ybuf *b = ctx;
    if (b->len + size + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + size + 1)
            cap *= 2;
        char *nd = realloc(b->data, cap);
        if (!nd)
            return 0;
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, buffer, size);
    b->len += size;
    b->data[b->len] = '\0';
    return 1;
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
    return yaml_emitter_emit(em, ev) ? 0 : -1;
}

static int emit_scalar(yaml_emitter_t *em, const char *text, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1, 1,
                                 style);
    return emit(em, &ev);
}

/* A string must be quoted when a plain scalar with that text would resolve to another type. */
static yaml_scalar_style_t string_style(const char *s)
{
    json_t *probe = resolve_plain(s);
    bool ambiguous = !json_is_string(probe);
    json_decref(probe);
    return ambiguous ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;
}

static int emit_value(yaml_emitter_t *em, const json_t *v)
{
    char num[64];
    yaml_event_t ev;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        if (emit(em, &ev))
            return -1;
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child) {
            if (emit_scalar(em, key, string_style(key)) || emit_value(em, child))
                return -1;
        }
        yaml_mapping_end_event_initialize(&ev);
        return emit(em, &ev);
    }
    case JSON_ARRAY: {
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                             json_array_size(v) ? YAML_BLOCK_SEQUENCE_STYLE
                                                                : YAML_FLOW_SEQUENCE_STYLE);
        if (emit(em, &ev))
            return -1;
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) {
            if (emit_value(em, child))
                return -1;
        }
        yaml_sequence_end_event_initialize(&ev);
        return emit(em, &ev);
    }
    case JSON_STRING:
        return emit_scalar(em, json_string_value(v), string_style(json_string_value(v)));
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(em, num, YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        if (!strpbrk(num, ".eEn"))
            strcat(num, ".0");
        return emit_scalar(em, num, YAML_PLAIN_SCALAR_STYLE);
    case JSON_TRUE:
        return emit_scalar(em, "true", YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE:
        return emit_scalar(em, "false", YAML_PLAIN_SCALAR_STYLE);
    default:
        return emit_scalar(em, "null", YAML_PLAIN_SCALAR_STYLE);
    }
}

int cfg_json_to_yaml(const json_t *root, char **out, struct err *e)
{
    yaml_emitter_t em;
    struct ybuf buf = {0};
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&em))
        return err_set(e, ERR_NOMEM, "cannot initialise YAML emitter");
    yaml_emitter_set_output(&em, ybuf_write, &buf);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_indent(&em, 2);
    yaml_emitter_set_width(&em, -1);

    int rc = 0;
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    rc = rc ? rc : emit(&em, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    rc = rc ? rc : emit(&em, &ev);
    rc = rc ? rc : emit_value(&em, root);
    yaml_document_end_event_initialize(&ev, 1);
    rc = rc ? rc : emit(&em, &ev);
    yaml_stream_end_event_initialize(&ev);
    rc = rc ? rc : emit(&em, &ev);
    if (rc == 0 && !yaml_emitter_flush(&em))
        rc = -1;
    if (rc) {
        const char *problem = em.problem ? em.problem : "YAML emitter failed";
        err_set(e, ERR_INTERNAL, "cannot emit YAML: %s", problem);
        yaml_emitter_delete(&em);
        free(buf.data);
        return ERR_INTERNAL;
    }
    yaml_emitter_delete(&em);
    *out = buf.data ? buf.data : strdup("{}\n");
    return 0;
}
