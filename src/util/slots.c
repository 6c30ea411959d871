/* slots.c - counting semaphore with cancellation (see slots.h). */
#include "util/slots.h"

#include <time.h>

#define CANCEL_CHECK_NS 100000000L

void slots_init(struct slots *s, int capacity)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    s->capacity = capacity;
    s->used = 0;
}

void slots_destroy(struct slots *s)
{
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->lock);
}

bool slots_acquire(struct slots *s, const volatile bool *cancel)
{
    pthread_mutex_lock(&s->lock);
    while (s->capacity > 0 && s->used >= s->capacity && !(cancel && *cancel)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += CANCEL_CHECK_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->freed, &s->lock, &ts);
    }
    bool ok = !(cancel && *cancel);
    if (ok)
        s->used++;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void slots_release(struct slots *s)
{
    pthread_mutex_lock(&s->lock);
    s->used--;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}
