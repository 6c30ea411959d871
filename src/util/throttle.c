/*
 * throttle.c - shared rate limiter (see throttle.h). A virtual clock: every `units` pushes
 * next_ns forward by units/rate; a caller whose share lies in the future sleeps until then.
 * Allows a burst of up to one second when the limiter was idle.
 */
#include "util/throttle.h"

#include <time.h>

#define NS_PER_S 1000000000LL
#define SLEEP_SLICE_NS 100000000LL /* re-check cancel every 100 ms */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

void throttle_init(struct throttle *t, uint64_t rate_per_s)
{
    pthread_mutex_init(&t->lock, NULL);
    t->rate = rate_per_s;
    t->next_ns = 0;
}

void throttle_destroy(struct throttle *t)
{
    pthread_mutex_destroy(&t->lock);
}

void throttle_take(struct throttle *t, uint64_t units, const volatile bool *cancel)
{
    if (t->rate == 0 || units == 0)
        return;
    int64_t now = mono_ns();
    pthread_mutex_lock(&t->lock);
    if (t->next_ns < now - NS_PER_S)
        t->next_ns = now - NS_PER_S; /* idle credit: at most one second */
    t->next_ns += (int64_t)((double)units * NS_PER_S / (double)t->rate);
    int64_t wake = t->next_ns;
    pthread_mutex_unlock(&t->lock);
    while (!(cancel && *cancel)) {
        int64_t left = wake - mono_ns();
        if (left <= 0)
            break;
        if (left > SLEEP_SLICE_NS)
            left = SLEEP_SLICE_NS;
        struct timespec ts = {left / NS_PER_S, left % NS_PER_S};
        nanosleep(&ts, NULL);
    }
}
