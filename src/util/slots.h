/*
 * slots.h - a counting semaphore with cancellation, used for a cluster's max-parallel-scans:
 * every scan worker of every job on that cluster holds one slot while it scans.
 */
#ifndef ABS_UTIL_SLOTS_H
#define ABS_UTIL_SLOTS_H

#include <pthread.h>
#include <stdbool.h>

struct slots {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int capacity; /* 0 = unlimited */
    int used;
};

void slots_init(struct slots *s, int capacity);
void slots_destroy(struct slots *s);
/* Waits for a free slot; false when `cancel` became true first (no slot taken). */
bool slots_acquire(struct slots *s, const volatile bool *cancel);
void slots_release(struct slots *s);

#endif
