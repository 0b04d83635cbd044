/* rt.c: futexes, real-time thread setup and pre-faulted memory for the pulse thread and the probe. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rt_internal.h"
#include "stepgen.h"

int sg__futex_wait(uint32_t *word, uint32_t expected, int64_t deadline_ns)
{
    struct timespec ts;
    struct timespec *tp = NULL;
    if (deadline_ns >= 0) {
        ts = sg__ts(deadline_ns);
        tp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time: the sleeper owns its hrtimer,
     * and a late wake-up never shortens the next sleep. */
    long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, tp,
                      NULL, FUTEX_BITSET_MATCH_ANY);
    if (rc == -1 && errno == ETIMEDOUT)
        return -ETIMEDOUT;
    return 0; /* woken, changed (EAGAIN) or interrupted: the caller re-checks either way */
}

void sg__futex_wake(uint32_t *word, int how_many)
{
    syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, how_many, NULL, NULL, 0);
}

int sg__rt_setup(int rt_priority)
{
    int sched = SG_SCHED_OTHER;
    if (rt_priority > 0) {
        struct sched_param sp = {.sched_priority = rt_priority};
        if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0)
            sched = SG_SCHED_FIFO;
    }
    /* Without SCHED_FIFO the kernel would round every wake-up by the default 50 us slack. */
    if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) == 0 && sched != SG_SCHED_FIFO)
        sched = SG_SCHED_OTHER_SLACK;
    /* The stack is pre-faulted when it is mapped; touch the frames below us once more in
     * case a sanitizer or a caller gave us a lazily mapped one. */
    volatile char probe[16 * 1024];
    memset((char *)probe, 0, sizeof(probe));
    return sched;
}

void *sg__map(size_t len, int lock, int *locked)
{
    if (locked)
        *locked = 0;
    if (len == 0)
        len = 1;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memset(p, 0, len); /* MAP_POPULATE is advisory: write every page ourselves */
    if (lock && mlock(p, len) == 0 && locked)
        *locked = 1;
    return p;
}

void sg__unmap(void *p, size_t len)
{
    if (p)
        munmap(p, len ? len : 1);
}

int sg__stack_alloc(sg__stack *s, size_t len, int lock, int *locked)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t)page : 4096;
    len = (len + pg - 1) / pg * pg;
    memset(s, 0, sizeof(*s));
    s->base = sg__map(len + pg, lock, locked);
    if (!s->base)
        return -ENOMEM;
    s->len = len + pg;
    mprotect(s->base, pg, PROT_NONE); /* stacks grow down: an overflow faults, not corrupts */
    s->usable = (char *)s->base + pg;
    s->usable_len = len;
    return 0;
}

void sg__stack_free(sg__stack *s)
{
    if (s->base)
        sg__unmap(s->base, s->len);
    memset(s, 0, sizeof(*s));
}
