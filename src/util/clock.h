/* clock.h - wall-clock time in epoch milliseconds (UTC), the unit of backup timestamps. */
#ifndef ABS_UTIL_CLOCK_H
#define ABS_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
