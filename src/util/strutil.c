/* strutil.c - small string helpers (see strutil.h). */
#include "util/strutil.h"

#include <stdarg.h>
#include <stdio.h>

int str_printf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}
