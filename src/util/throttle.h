/*
 * throttle.h - a shared rate limiter for job workers (bytes/s or records/s): each worker asks
 * for the units it is about to use and sleeps until the budget allows them. Thread-safe.
 * A rate of 0 means unlimited (throttle_take returns at once).
 */
#ifndef ABS_UTIL_THROTTLE_H
#define ABS_UTIL_THROTTLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct throttle {
    pthread_mutex_t lock;
    uint64_t rate;       /* units per second; 0 = unlimited */
    int64_t next_ns;     /* monotonic time when the budget is back at zero */
};

void throttle_init(struct throttle *t, uint64_t rate_per_s);
void throttle_destroy(struct throttle *t);
/* Accounts `units`; sleeps (in slices, watching `cancel`) while the rate is exceeded. */
void throttle_take(struct throttle *t, uint64_t units, const volatile bool *cancel);

#endif
