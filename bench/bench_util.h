/* bench_util.h - what the benchmark programs share: a monotonic clock in seconds and the
 * process's peak RSS. */
#ifndef ABS_BENCH_UTIL_H
#define ABS_BENCH_UTIL_H

#include <sys/resource.h>
#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

#endif
