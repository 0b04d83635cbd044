/* probe.c: the machine's wake-up latency floor, measured from a thread set up and sleeping as the pulse thread does. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "rt_internal.h"
#include "stepgen.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define PROBE_STACK_BYTES (4 * 1024 * 1024)
#else
#define PROBE_STACK_BYTES (128 * 1024)
#endif

typedef struct probe_job {
    int rt_priority;
    int64_t t0_ns, phase_ns;
    uint64_t num, den, n;
    int64_t *lateness;
    int sched;
    int rc;
    uint32_t never; /* a futex no one wakes: the sleep ends only at its deadline */
} probe_job;

static void *probe_main(void *arg)
{
    probe_job *job = arg;
    job->sched = sg__rt_setup(job->rt_priority);
    for (uint64_t k = 1; k <= job->n; k++) {
        int64_t at;
        if (sg_step_time(job->t0_ns, k, job->num, job->den, &at) != 0) {
            job->rc = -ERANGE;
            return NULL;
        }
        at += job->phase_ns;
        while (sg__futex_wait(&job->never, 0, at) != -ETIMEDOUT && sg_now_ns() < at)
            ;
        job->lateness[k - 1] = sg_now_ns() - at;
    }
    return NULL;
}

long sg_probe(int rt_priority, int64_t t0_ns, uint64_t num, uint64_t den, int64_t phase_ns,
              uint64_t n, int lock_memory, int64_t *out, int *sched, char *err, size_t errlen)
{
    if (num == 0 || den == 0 || n == 0 || n > ((uint64_t)1 << 24)) {
        snprintf(err, errlen, "probe: rate %llu/%llu and count %llu must be > 0 (count <= 2^24)",
                 (unsigned long long)num, (unsigned long long)den, (unsigned long long)n);
        return -EINVAL;
    }
    if (rt_priority < 0 || rt_priority > 99) {
        snprintf(err, errlen, "probe: rt_priority must be 0..99");
        return -EINVAL;
    }
    probe_job job = {.rt_priority = rt_priority, .t0_ns = t0_ns, .phase_ns = phase_ns,
                     .num = num, .den = den, .n = n};
    size_t bytes = n * sizeof(int64_t);
    job.lateness = sg__map(bytes, lock_memory, NULL);
    sg__stack stack;
    if (!job.lateness || sg__stack_alloc(&stack, PROBE_STACK_BYTES, lock_memory, NULL) != 0) {
        sg__unmap(job.lateness, bytes);
        snprintf(err, errlen, "probe: out of memory for %llu samples", (unsigned long long)n);
        return -ENOMEM;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, stack.usable, stack.usable_len);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int rc = pthread_create(&th, &attr, probe_main, &job);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        snprintf(err, errlen, "probe: cannot start its thread: %s", strerror(rc));
        sg__unmap(job.lateness, bytes);
        sg__stack_free(&stack);
        return -rc;
    }
    pthread_join(th, NULL);
    sg__stack_free(&stack);
    if (job.rc != 0) {
        snprintf(err, errlen, "probe: wake-up time out of range");
        sg__unmap(job.lateness, bytes);
        return job.rc;
    }
    memcpy(out, job.lateness, bytes);
    sg__unmap(job.lateness, bytes);
    if (sched)
        *sched = job.sched;
    return (long)n;
}
