/* stepgen.c: the real-time pulse thread and its safety channel (SR-9) over one GPIO backend. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "stepgen.h"

typedef unsigned __int128 u128;

#define NS_PER_S 1000000000LL
/* After the last step of a segment the coils stay energised this long so the rotor settles
 * on its final step before the driver lets go (saves the battery between doses). */
#define IDLE_DISABLE_NS (20 * 1000000LL)
/* sg_abort waits this long for the thread before declaring it unresponsive. */
#define ABORT_ACK_NS (500 * 1000000LL)
#define BUDGET_MAX ((uint64_t)1 << 23)
#define STEP_BIT (1u << SG_LINE_STEP)
#define DIR_BIT (1u << SG_LINE_DIR)
#define ENABLE_BIT (1u << SG_LINE_ENABLE)

/* Tell the core we are spinning: saves power and frees a sibling hyperthread. */
#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

struct sg_gen {
    sg_backend *bk;
    sg_limits lim;
    sg_timing tim;
    int64_t max_rate_spacing_ns; /* floor(1e9 / max_rate_hz): no two edges closer */

    pthread_t thread;
    int thread_started;
    int stopped;
    pthread_mutex_t mu;   /* priority inheritance: a preempted Python caller cannot stall an edge */
    pthread_cond_t wake;  /* commands -> thread (CLOCK_MONOTONIC) */
    pthread_cond_t ack;   /* thread -> waiting callers (CLOCK_MONOTONIC) */
    atomic_int poke;      /* lets a spinning thread notice a command without the mutex */

    /* Segment, under mu. */
    uint64_t num, den, base, limit;
    int64_t t0;
    int dir;
    uint64_t gen;         /* bumped by every command, so an edge planned before it is re-checked */
    int stop_req;
    uint64_t abort_req, abort_done;
    int64_t last_hb;
    int fault;
    char fault_text[192];

    /* Pulse-thread state; written by the thread under mu (except count, read lock-free). */
    _Atomic uint64_t count;
    unsigned values;      /* lines as last driven */
    int64_t last_edge_ns; /* last STEP rising edge */
    int64_t settled_ns;   /* DIR/ENABLE last changed at */
    int64_t max_late_ns;
    uint64_t caught_up;
    int sched, memory_locked, running;
    clockid_t cpu_clock;
    int64_t final_cpu_ns;

    int64_t *ring;        /* times of the last budget_steps steps (ring by count) */
};

int64_t sg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static struct timespec to_ts(int64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S)};
    return ts;
}

void sg_limits_default(sg_limits *l)
{
    memset(l, 0, sizeof(*l));
    l->max_rate_hz = 1000;
    l->budget_steps = 15480; /* 1 mL of the reference mechanism */
    l->budget_window_ns = 3600 * NS_PER_S;
    l->deadman_ns = NS_PER_S;
    l->late_fault_ns = 500 * 1000000LL;
}

void sg_timing_default(sg_timing *t)
{
    memset(t, 0, sizeof(*t));
    t->step_high_ns = 2500;
    t->dir_setup_ns = 1500;
    t->spin_window_ns = 100 * 1000;
    t->nap_ns = 0;
    t->rt_priority = 50;
    t->lock_memory = 1;
}

const char *sg_fault_name(int code)
{
    switch (code) {
    case SG_FAULT_NONE: return "none";
    case SG_FAULT_RATE_CAP: return "rate_cap";
    case SG_FAULT_BUDGET: return "budget";
    case SG_FAULT_DEADMAN: return "deadman";
    case SG_FAULT_LATE: return "late";
    case SG_FAULT_BACKEND: return "backend";
    case SG_FAULT_UNRESPONSIVE: return "unresponsive";
    default: return "unknown";
    }
}

/* ---- pulse-thread helpers (called by the thread with mu held) ---- */

static int drive(sg_gen *g, unsigned mask, unsigned values, int64_t *t_ns)
{
    int64_t t = 0;
    int rc = g->bk->set(g->bk, mask, values, &t);
    if (rc == 0) {
        if ((g->values ^ values) & mask & (DIR_BIT | ENABLE_BIT))
            g->settled_ns = t;
        g->values = (g->values & ~mask) | (values & mask);
    }
    if (t_ns)
        *t_ns = t;
    return rc;
}

/* STEP low, driver disabled; errors ignored because there is nothing safer left to try. */
static void drive_safe(sg_gen *g)
{
    (void)drive(g, STEP_BIT | ENABLE_BIT, 0, NULL);
}

/* Ends the segment where it stands, as halt does: rate 0, limit = count. */
static void end_segment(sg_gen *g, int64_t now)
{
    uint64_t c = atomic_load(&g->count);
    g->num = 0;
    g->den = 1;
    g->base = c;
    g->limit = c;
    g->t0 = now;
    g->gen++;
}

static void latch_fault(sg_gen *g, int code, const char *text)
{
    if (g->fault != SG_FAULT_NONE)
        return; /* the first cause is the one worth reporting */
    g->fault = code;
    snprintf(g->fault_text, sizeof(g->fault_text), "%s", text);
}

static void trip(sg_gen *g, int code, const char *text)
{
    latch_fault(g, code, text);
    end_segment(g, sg_now_ns());
    drive_safe(g);
}

static int is_moving(const sg_gen *g)
{
    return g->num > 0 && atomic_load(&g->count) < g->limit;
}

static void wait_until(sg_gen *g, int64_t deadline_ns)
{
    struct timespec ts = to_ts(deadline_ns);
    pthread_cond_timedwait(&g->wake, &g->mu, &ts);
}

static void setup_thread(sg_gen *g)
{
    g->sched = SG_SCHED_OTHER;
    if (g->tim.rt_priority > 0) {
        struct sched_param sp = {.sched_priority = g->tim.rt_priority};
        if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0)
            g->sched = SG_SCHED_FIFO;
    }
    /* Without SCHED_FIFO the kernel would round every wake-up by the default 50 us slack. */
    if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) == 0 && g->sched != SG_SCHED_FIFO)
        g->sched = SG_SCHED_OTHER_SLACK;
    if (pthread_getcpuclockid(pthread_self(), &g->cpu_clock) != 0)
        g->cpu_clock = CLOCK_THREAD_CPUTIME_ID;
    /* Touch the stack now so a page fault never lands between two edges. */
    volatile char stack[32 * 1024];
    memset((char *)stack, 0, sizeof(stack));
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Makes one step at (about) `now`, if the safety channel allows it. mu held. */
static void make_step(sg_gen *g, int64_t planned, int64_t now)
{
    char text[192];
    int64_t late = now - planned;
    if (g->lim.late_fault_ns > 0 && late > g->lim.late_fault_ns) {
        snprintf(text, sizeof(text),
                 "late: step %lld us behind its schedule (limit %lld us); stopped, driver disabled",
                 (long long)(late / 1000), (long long)(g->lim.late_fault_ns / 1000));
        trip(g, SG_FAULT_LATE, text);
        return;
    }
    uint64_t c = atomic_load(&g->count);
    uint64_t slot = c % g->lim.budget_steps;
    /* The step made budget_steps ago must have left the window (now - W, now]. */
    if (c >= g->lim.budget_steps && now - g->ring[slot] < g->lim.budget_window_ns) {
        snprintf(text, sizeof(text),
                 "budget: %llu steps already made in the last %lld s; stopped, driver disabled",
                 (unsigned long long)g->lim.budget_steps,
                 (long long)(g->lim.budget_window_ns / NS_PER_S));
        trip(g, SG_FAULT_BUDGET, text);
        return;
    }
    int64_t t_high;
    int rc = drive(g, STEP_BIT, STEP_BIT, &t_high);
    if (rc != 0) {
        snprintf(text, sizeof(text), "backend: cannot drive STEP: %s; stopped, driver disabled",
                 strerror(-rc));
        trip(g, SG_FAULT_BACKEND, text);
        return;
    }
    g->ring[slot] = t_high;
    atomic_store(&g->count, c + 1);
    g->last_edge_ns = t_high;
    if (t_high - planned > g->max_late_ns)
        g->max_late_ns = t_high - planned;
    /* The pulse is a few microseconds: spinning is cheaper and exacter than any sleep. */
    while (sg_now_ns() < t_high + g->tim.step_high_ns)
        cpu_relax();
    rc = drive(g, STEP_BIT, 0, NULL);
    if (rc != 0) {
        snprintf(text, sizeof(text), "backend: cannot release STEP: %s; stopped", strerror(-rc));
        trip(g, SG_FAULT_BACKEND, text);
    }
}

/* One pass of the pulse loop with mu held; returns when there is something to re-check. */
static void pulse_once(sg_gen *g)
{
    int64_t now = sg_now_ns();
    if (g->abort_req != g->abort_done) {
        drive_safe(g);
        g->abort_done = g->abort_req;
        pthread_cond_broadcast(&g->ack);
        return;
    }
    if (!is_moving(g)) {
        if (!(g->values & ENABLE_BIT) && !(g->values & STEP_BIT)) {
            pthread_cond_wait(&g->wake, &g->mu);
            return;
        }
        int64_t off_at = g->last_edge_ns + IDLE_DISABLE_NS;
        if (now >= off_at)
            drive_safe(g);
        else
            wait_until(g, off_at);
        return;
    }

    int64_t deadman_at = g->last_hb + g->lim.deadman_ns;
    if (now > deadman_at) {
        char text[192];
        snprintf(text, sizeof(text),
                 "deadman: no heartbeat from the controller for %lld ms; stopped, driver disabled",
                 (long long)((now - g->last_hb) / 1000000));
        trip(g, SG_FAULT_DEADMAN, text);
        return;
    }
    unsigned want = ENABLE_BIT | (g->dir ? DIR_BIT : 0);
    if ((g->values & (ENABLE_BIT | DIR_BIT)) != want) {
        int rc = drive(g, ENABLE_BIT | DIR_BIT, want, NULL);
        if (rc != 0) {
            char text[192];
            snprintf(text, sizeof(text), "backend: cannot drive DIR/ENABLE: %s; stopped",
                     strerror(-rc));
            trip(g, SG_FAULT_BACKEND, text);
        }
        return;
    }

    uint64_t c = atomic_load(&g->count);
    int64_t planned;
    if (sg_step_time(g->t0, c - g->base + 1, g->num, g->den, &planned) != 0) {
        trip(g, SG_FAULT_BACKEND, "schedule: step time out of range; stopped");
        return;
    }
    /* Never a burst: after falling behind, steps come at most at twice the rate (and never
     * above the rate cap) until the schedule is met again. */
    u128 half = (u128)g->den * (u128)NS_PER_S / ((u128)g->num * 2);
    int64_t spacing = half > (u128)INT64_MAX ? INT64_MAX : (int64_t)half;
    if (spacing < g->max_rate_spacing_ns)
        spacing = g->max_rate_spacing_ns;
    int64_t edge = planned;
    if (g->last_edge_ns > 0 && g->last_edge_ns + spacing > edge)
        edge = g->last_edge_ns + spacing;
    if (g->settled_ns + g->tim.dir_setup_ns > edge)
        edge = g->settled_ns + g->tim.dir_setup_ns;

    if (deadman_at < edge && now < deadman_at) {
        wait_until(g, deadman_at + 1);
        return;
    }
    int64_t approach = edge - g->tim.spin_window_ns - g->tim.nap_ns;
    if (now < approach) {
        wait_until(g, approach);
        return;
    }

    /* Final approach with the mutex released, so the edge never waits on a command. */
    uint64_t gen = g->gen;
    atomic_store(&g->poke, 0);
    pthread_mutex_unlock(&g->mu);
    int64_t spin_from = edge - g->tim.spin_window_ns;
    if (now < spin_from) {
        struct timespec ts = to_ts(spin_from);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
    while ((now = sg_now_ns()) < edge && !atomic_load_explicit(&g->poke, memory_order_relaxed))
        cpu_relax();
    pthread_mutex_lock(&g->mu);
    if (g->gen != gen || g->stop_req || g->abort_req != g->abort_done || now < edge)
        return; /* a command came in: plan again */
    if (edge > planned)
        g->caught_up++;
    make_step(g, planned, now);
}

static void *pulse_main(void *arg)
{
    sg_gen *g = arg;
    setup_thread(g);
    pthread_mutex_lock(&g->mu);
    g->running = 1;
    pthread_cond_broadcast(&g->ack);
    while (!g->stop_req)
        pulse_once(g);
    drive_safe(g);
    end_segment(g, sg_now_ns());
    g->abort_done = g->abort_req;
    g->final_cpu_ns = thread_cpu_ns();
    g->running = 0;
    pthread_cond_broadcast(&g->ack);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* ---- public API ---- */

static int init_sync(sg_gen *g)
{
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
    int rc = pthread_mutex_init(&g->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    if (rc != 0)
        return rc;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->wake, &ca);
    pthread_cond_init(&g->ack, &ca);
    pthread_condattr_destroy(&ca);
    return 0;
}

static const char *check_config(const sg_limits *l, const sg_timing *t)
{
    if (l->max_rate_hz == 0)
        return "max_rate_hz must be > 0";
    if (l->budget_steps == 0 || l->budget_steps > BUDGET_MAX)
        return "budget_steps must be 1..8388608";
    if (l->budget_window_ns <= 0)
        return "budget_window_ns must be > 0";
    if (l->deadman_ns <= 0 || l->deadman_ns > 10 * NS_PER_S)
        return "deadman_ns must be in (0, 10 s]";
    if (l->late_fault_ns < 0)
        return "late_fault_ns must be >= 0";
    if (t->step_high_ns < 2000 || t->step_high_ns > 1000000)
        return "step_high_ns must be 2000..1000000 (drivers need >= 2 us)";
    if (t->dir_setup_ns < 1000 || t->dir_setup_ns > 1000000)
        return "dir_setup_ns must be 1000..1000000 (drivers need >= 1 us)";
    if (t->spin_window_ns < 0 || t->spin_window_ns > 10000000)
        return "spin_window_ns must be 0..10 ms";
    if (t->nap_ns < 0 || t->nap_ns > 10000000)
        return "nap_ns must be 0..10 ms";
    if (t->rt_priority < 0 || t->rt_priority > 99)
        return "rt_priority must be 0..99";
    /* Steps must fit between pulses at the cap: high time plus a low time as long. */
    if ((int64_t)l->max_rate_hz * 2 * t->step_high_ns > NS_PER_S)
        return "max_rate_hz too high for step_high_ns";
    return NULL;
}

sg_gen *sg_start(sg_backend *backend, const sg_limits *limits, const sg_timing *timing,
                 char *err, size_t errlen)
{
    if (!backend) {
        snprintf(err, errlen, "no backend");
        return NULL;
    }
    const char *bad = check_config(limits, timing);
    if (bad) {
        snprintf(err, errlen, "%s", bad);
        sg_backend_close(backend);
        return NULL;
    }
    sg_gen *g = calloc(1, sizeof(*g));
    int64_t *ring = calloc(limits->budget_steps, sizeof(int64_t));
    if (!g || !ring || init_sync(g) != 0) {
        snprintf(err, errlen, "out of memory for a budget of %llu steps",
                 (unsigned long long)limits->budget_steps);
        free(g);
        free(ring);
        sg_backend_close(backend);
        return NULL;
    }
    g->bk = backend;
    g->lim = *limits;
    g->tim = *timing;
    g->ring = ring;
    g->max_rate_spacing_ns = NS_PER_S / limits->max_rate_hz;
    g->den = 1;
    g->last_hb = sg_now_ns();
    atomic_init(&g->count, 0);
    atomic_init(&g->poke, 0);

    if (timing->lock_memory) {
        /* MCL_FUTURE under a small RLIMIT_MEMLOCK would make later Python allocations fail,
         * so lock future pages only when the limit cannot bite. */
        struct rlimit rl;
        int unlimited = geteuid() == 0 ||
                        (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY);
        g->memory_locked = mlockall(unlimited ? (MCL_CURRENT | MCL_FUTURE) : MCL_CURRENT) == 0;
    }

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* The thread starts with every signal blocked: no handler can run between two edges,
     * and Python's handlers run on the main thread anyway. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&g->thread, &attr, pulse_main, g);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the pulse thread: %s", strerror(rc));
        g->stopped = 1;
        sg_free(g);
        return NULL;
    }
    g->thread_started = 1;
    pthread_mutex_lock(&g->mu);
    while (!g->running)
        pthread_cond_wait(&g->ack, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return g;
}

void sg_stop(sg_gen *g)
{
    pthread_mutex_lock(&g->mu);
    if (g->stopped) {
        pthread_mutex_unlock(&g->mu);
        return;
    }
    g->stopped = 1;
    g->stop_req = 1;
    atomic_store(&g->poke, 1);
    pthread_cond_broadcast(&g->wake);
    pthread_mutex_unlock(&g->mu);
    if (g->thread_started)
        pthread_join(g->thread, NULL);
}

void sg_free(sg_gen *g)
{
    if (!g)
        return;
    sg_stop(g);
    sg_backend_close(g->bk);
    pthread_cond_destroy(&g->wake);
    pthread_cond_destroy(&g->ack);
    pthread_mutex_destroy(&g->mu);
    free(g->ring);
    free(g);
}

int sg_run(sg_gen *g, uint64_t num, uint64_t den, uint64_t limit, int64_t now_ns, int dir)
{
    if (den == 0)
        return -EINVAL;
    int64_t real_now = sg_now_ns();
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    uint64_t cur = atomic_load(&g->count);
    if (g->stopped) {
        rc = -EPIPE;
    } else if (g->fault != SG_FAULT_NONE) {
        rc = -EPERM;
    } else if (limit < cur) {
        rc = -EINVAL;
    } else if (now_ns > real_now + g->lim.deadman_ns || now_ns < real_now - g->lim.deadman_ns) {
        rc = -EDOM; /* not CLOCK_MONOTONIC, or stale by more than the deadman */
    } else if ((u128)num > (u128)g->lim.max_rate_hz * den) {
        char text[192];
        snprintf(text, sizeof(text),
                 "rate_cap: commanded %llu/%llu steps/s is above the cap of %u steps/s; "
                 "stopped, driver disabled",
                 (unsigned long long)num, (unsigned long long)den, g->lim.max_rate_hz);
        latch_fault(g, SG_FAULT_RATE_CAP, text);
        end_segment(g, real_now);
        g->abort_req++; /* the thread drives the lines safe */
        rc = -EPERM;
    } else {
        g->last_hb = real_now;
        int moving = is_moving(g);
        if (!(moving && num == g->num && den == g->den && (dir != 0) == g->dir)) {
            g->num = num;
            g->den = den;
            g->base = cur;
            g->t0 = now_ns;
            g->dir = dir != 0;
        }
        g->limit = limit;
        g->gen++;
    }
    atomic_store(&g->poke, 1);
    pthread_cond_broadcast(&g->wake);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

uint64_t sg_abort(sg_gen *g)
{
    pthread_mutex_lock(&g->mu);
    end_segment(g, sg_now_ns());
    if (g->running) {
        uint64_t req = ++g->abort_req;
        atomic_store(&g->poke, 1);
        pthread_cond_broadcast(&g->wake);
        struct timespec deadline = to_ts(sg_now_ns() + ABORT_ACK_NS);
        int rc = 0;
        while (g->running && g->abort_done < req && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&g->ack, &g->mu, &deadline);
        if (g->running && g->abort_done < req) {
            latch_fault(g, SG_FAULT_UNRESPONSIVE,
                        "unresponsive: the pulse thread did not stop within 500 ms");
            if (g->bk->concurrent_safe) {
                int64_t t;
                (void)g->bk->set(g->bk, STEP_BIT | ENABLE_BIT, 0, &t);
            }
        }
    }
    uint64_t c = atomic_load(&g->count);
    pthread_mutex_unlock(&g->mu);
    return c;
}

void sg_heartbeat(sg_gen *g)
{
    int64_t now = sg_now_ns();
    pthread_mutex_lock(&g->mu);
    g->last_hb = now;
    pthread_mutex_unlock(&g->mu);
}

void sg_clear_fault(sg_gen *g)
{
    pthread_mutex_lock(&g->mu);
    g->fault = SG_FAULT_NONE;
    g->fault_text[0] = '\0';
    pthread_mutex_unlock(&g->mu);
}

void sg_get_status(sg_gen *g, sg_status *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&g->mu);
    st->count = atomic_load(&g->count);
    st->limit = g->limit;
    st->rate_num = g->num;
    st->rate_den = g->den;
    st->seg_t0_ns = g->t0;
    st->seg_base = g->base;
    st->moving = is_moving(g);
    st->enabled = (g->values & ENABLE_BIT) != 0;
    st->dir = g->dir;
    st->fault = g->fault;
    snprintf(st->fault_text, sizeof(st->fault_text), "%s", g->fault_text);
    st->sched = g->sched;
    st->memory_locked = g->memory_locked;
    st->max_late_ns = g->max_late_ns;
    st->caught_up_steps = g->caught_up;
    st->running = g->running;
    st->cpu_ns = g->final_cpu_ns;
    if (g->running) {
        struct timespec ts;
        if (clock_gettime(g->cpu_clock, &ts) == 0)
            st->cpu_ns = (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
    }
    pthread_mutex_unlock(&g->mu);
}

long sg_read_edges(sg_gen *g, sg_edge *out, size_t max, uint64_t *dropped)
{
    if (!g->bk->read_edges)
        return -ENOTSUP;
    return g->bk->read_edges(g->bk, out, max, dropped);
}
