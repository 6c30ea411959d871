/*
 * http.c - response building shared by all handlers, and the single place where error
 * categories become HTTP statuses.
 *
 * Shapes follow ABS (Go net/http): errors are `http.Error` style plain text (message plus a
 * newline, text/plain; charset=utf-8); success bodies are compact JSON.
 */
#include "api/api_internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int api_status_from_err(int code)
{
    switch (code) {
    case ERR_INVALID:
    case ERR_IN_USE:
        return 400;
    case ERR_NOT_FOUND:
        return 404;
    case ERR_CONFLICT:
        return 409;
    case ERR_UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

void api_response_clear(struct api_response *res)
{
    if (!res->body_static)
        free(res->body);
    free(res->location);
    memset(res, 0, sizeof *res);
}

/* Drops any previous body so helpers can be called more than once. */
static void api_reset_body(struct api_response *res)
{
    if (!res->body_static)
        free(res->body);
    res->body = NULL;
    res->len = 0;
    res->body_static = false;
    res->content_type = NULL;
}

void api_reply_empty(struct api_response *res, int status)
{
    api_reset_body(res);
    res->status = status;
}

void api_reply_owned(struct api_response *res, int status, const char *content_type, char *body,
                     size_t len)
{
    api_reset_body(res);
    res->status = status;
    res->content_type = content_type;
    res->body = body;
    res->len = len;
}

void api_reply_static(struct api_response *res, int status, const char *content_type,
                      const void *data, size_t len)
{
    api_reset_body(res);
    res->status = status;
    res->content_type = content_type;
    res->body = (char *)(uintptr_t)data;
    res->len = len;
    res->body_static = true;
}

void api_reply_text(struct api_response *res, int status, const char *text)
{
    char *copy = strdup(text);
    if (!copy) {
        api_reply_static(res, 500, API_CT_TEXT, "out of memory\n", 14);
        return;
    }
    api_reply_owned(res, status, API_CT_TEXT, copy, strlen(copy));
}

void api_reply_error(struct api_response *res, int status, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    char *line = NULL;
    if (n < 0 || asprintf(&line, "%s\n", msg) < 0) {
        free(msg);
        api_reply_static(res, status, API_CT_TEXT, "out of memory\n", 14);
        return;
    }
    free(msg);
    api_reply_owned(res, status, API_CT_TEXT, line, strlen(line));
}

void api_reply_err(struct api_response *res, const struct err *e)
{
    int status = api_status_from_err(e->code);
    api_reply_error(res, status, "%s", e->msg[0] ? e->msg : err_code_name(e->code));
}

void api_reply_json(struct api_response *res, int status, json_t *json)
{
    if (!json) {
        api_reply_error(res, 500, "internal error");
        return;
    }
    char *text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(json);
    if (!text) {
        api_reply_error(res, 500, "cannot encode response");
        return;
    }
    api_reply_owned(res, status, API_CT_JSON, text, strlen(text));
}

bool api_is_json_content_type(const char *ct)
{
    static const char want[] = "application/json";
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, sizeof want - 1) != 0)
        return false;
    ct += sizeof want - 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

int api_parse_json(const char *body, size_t len, json_t **out, struct err *e)
{
    if (!body || len == 0)
        return err_set(e, ERR_INVALID, "invalid JSON payload: empty body");
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (!j)
        return err_set(e, ERR_INVALID, "invalid JSON payload: %s (line %d, column %d)",
                       jerr.text, jerr.line, jerr.column);
    *out = j;
    return 0;
}

int api_check_name(const char *name, const char *noun, struct err *e)
{
    if (!name || !*name)
        return err_set(e, ERR_INVALID, "%s name is required", noun);
    if (strchr(name, '/'))
        return err_set(e, ERR_INVALID, "invalid %s name '%s': must not contain '/'", noun,
                       name);
    return 0;
}
