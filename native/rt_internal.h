/* rt_internal.h: what the pulse thread and the floor probe share (futexes, thread setup, memory). */
#ifndef PCA_RT_INTERNAL_H
#define PCA_RT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define NS_PER_S 1000000000LL

static inline struct timespec sg__ts(int64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S)};
    return ts;
}

/* Sleep while *word == expected, until woken or until the absolute CLOCK_MONOTONIC
 * deadline_ns (< 0: no deadline). 0 when woken or the word had changed, -ETIMEDOUT. */
int sg__futex_wait(uint32_t *word, uint32_t expected, int64_t deadline_ns);
void sg__futex_wake(uint32_t *word, int how_many);

/* For the calling thread: SCHED_FIFO at rt_priority (0: do not ask), timer slack 1 ns,
 * a pre-faulted stretch of stack. Returns enum sg_sched. */
int sg__rt_setup(int rt_priority);

/* Anonymous memory, zeroed and pre-faulted (every page written, so no fault comes later);
 * with `lock`, also mlocked (*locked says whether that worked). NULL on failure. */
void *sg__map(size_t len, int lock, int *locked);
void sg__unmap(void *p, size_t len);

/* A stack for a thread created with pthread_attr_setstack: pre-faulted, locked if asked,
 * with a guard page below it. */
typedef struct sg__stack {
    void *base; /* the mapping, guard page included */
    size_t len;
    void *usable;
    size_t usable_len;
} sg__stack;
int sg__stack_alloc(sg__stack *s, size_t len, int lock, int *locked);
void sg__stack_free(sg__stack *s);

/* Tests only: take (1) or release (0) the lock that serialises callers, as a caller that is
 * preempted or waiting for the GIL inside a call would hold it. */
struct sg_gen;
void sg__hold_callers_lock(struct sg_gen *g, int hold);

#endif
