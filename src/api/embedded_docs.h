/*
 * embedded_docs.h - the API documents compiled into the binary.
 *
 * The definitions live in embedded_docs.c, generated at build time by
 * cmake/embed_openapi.cmake from docs/openapi.yaml and docs/api-docs.html. Each array is
 * followed by a NUL byte that `*_len` does not count, so the data may also be used as a
 * C string.
 */
#ifndef ABS_API_EMBEDDED_DOCS_H
#define ABS_API_EMBEDDED_DOCS_H

#include <stddef.h>

extern const unsigned char abs_openapi_yaml[];
extern const size_t abs_openapi_yaml_len;
extern const unsigned char abs_api_docs_html[];
extern const size_t abs_api_docs_html_len;

#endif
