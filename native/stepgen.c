/* stepgen.c: the real-time pulse thread and its safety channel (SR-9) over one GPIO backend.
 *
 * Nothing the pulse thread ever waits on can be held by another thread. Callers (serialised
 * among themselves by api_mu, which the pulse thread never takes) post commands into a
 * single-producer/single-consumer ring and ring a futex doorbell; the thread sleeps on that
 * doorbell with its own absolute CLOCK_MONOTONIC deadline, takes the commands when it wakes,
 * publishes its state through a seqlock only it writes, and acknowledges on a futex it only
 * wakes. The heartbeat is one atomic store. So a Python thread that is preempted, or waiting
 * for the GIL, in the middle of any call can delay nothing but itself.
 *
 * The thread wakes for a step, the deadman deadline, the idle disable or a command, and
 * blocks without a deadline when nothing is due: no wake-up at a fixed rate.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt_internal.h"
#include "stepgen.h"
#include "wide.h"

/* After the last step of a segment the coils stay energised this long so the rotor settles
 * on its final step before the driver lets go (saves the battery between doses). */
#define IDLE_DISABLE_NS (20 * 1000000LL)
/* A caller waits this long for the thread to take a command before declaring it unresponsive. */
#define ACK_TIMEOUT_NS (500 * 1000000LL)
#define BUDGET_MAX ((uint64_t)1 << 23)
#define STEP_BIT (1u << SG_LINE_STEP)
#define DIR_BIT (1u << SG_LINE_DIR)
#define ENABLE_BIT (1u << SG_LINE_ENABLE)
#define CMD_RING 64
/* glibc carves static TLS out of a stack we supply; the sanitizers' runtimes need far more. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define STACK_BYTES (4 * 1024 * 1024)
#else
#define STACK_BYTES (256 * 1024)
#endif
/* Wake-up latency window for the automatic spin: 1024 samples in 4 us buckets up to 4 ms. */
#define LAT_WINDOW 1024
#define LAT_BUCKET_NS 4000
#define LAT_BUCKETS 1024
#define LAT_MIN_SAMPLES 64
#define SPIN_MARGIN_NS 10000  /* planning, the seqlock and the backend call after waking */
#define TEXT_LEN 192

/* Tell the core we are spinning: saves power and frees a sibling hyperthread. */
#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

/* ---- a seqlock whose payload is all relaxed atomics (so it is race-free in C11 and TSan) ---- */
enum {
    P_COUNT, P_LIMIT, P_NUM, P_DEN, P_T0, P_BASE, P_MOVING, P_ENABLED, P_DIR, P_FAULT,
    P_FAULT_AT, P_SCHED, P_LOCKED, P_MAX_LATE, P_CAUGHT_UP, P_RUNNING, P_FINAL_CPU, P_SPIN,
    P_WAKE_P995, P_WAKE_SAMPLES, P_WAKEUPS, P_TID, P_NFIELDS
};
#define TEXT_WORDS (TEXT_LEN / 8)

typedef struct seqpub {
    _Atomic uint32_t seq;
    _Atomic uint64_t f[P_NFIELDS];
    _Atomic uint64_t text[TEXT_WORDS];
} seqpub;

typedef struct snapshot {
    uint64_t f[P_NFIELDS];
    char text[TEXT_LEN];
} snapshot;

/* One writer at a time (the pulse thread for `pub`, a caller holding api_mu for `api`). */
static void pub_write(seqpub *p, const snapshot *s)
{
    uint32_t seq = atomic_load_explicit(&p->seq, memory_order_relaxed);
    atomic_store_explicit(&p->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (int i = 0; i < P_NFIELDS; i++)
        atomic_store_explicit(&p->f[i], s->f[i], memory_order_relaxed);
    for (int i = 0; i < TEXT_WORDS; i++) {
        uint64_t w;
        memcpy(&w, s->text + 8 * i, 8);
        atomic_store_explicit(&p->text[i], w, memory_order_relaxed);
    }
    atomic_store_explicit(&p->seq, seq + 2, memory_order_release);
}

/* Readers retry; they never make the writer wait. */
static void pub_read(seqpub *p, snapshot *s)
{
    for (;;) {
        uint32_t a = atomic_load_explicit(&p->seq, memory_order_acquire);
        if (a & 1) {
            cpu_relax();
            continue;
        }
        for (int i = 0; i < P_NFIELDS; i++)
            s->f[i] = atomic_load_explicit(&p->f[i], memory_order_relaxed);
        for (int i = 0; i < TEXT_WORDS; i++) {
            uint64_t w = atomic_load_explicit(&p->text[i], memory_order_relaxed);
            memcpy(s->text + 8 * i, &w, 8);
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&p->seq, memory_order_relaxed) == a)
            break;
    }
    s->text[TEXT_LEN - 1] = '\0';
}

enum { CMD_RUN = 1, CMD_ABORT = 2, CMD_CLEAR = 3 };

typedef struct sg_cmd {
    uint32_t seq;
    int kind;
    uint64_t num, den, limit;
    int64_t t0;
    int dir;
} sg_cmd;

/* State only the pulse thread reads or writes. */
typedef struct rt_state {
    uint64_t num, den, base, limit, count;
    int64_t t0;
    int dir;
    unsigned values;      /* lines as last driven */
    int64_t last_edge_ns; /* last STEP rising edge */
    int64_t settled_ns;   /* DIR/ENABLE last changed at */
    int64_t max_late_ns;
    uint64_t caught_up;
    int fault;
    int64_t fault_at;
    char fault_text[TEXT_LEN];
    int sched;
    int tid;
    uint64_t wakeups;
    int64_t spin_used_ns;
    /* wake-up latency window */
    uint16_t lat_ring[LAT_WINDOW];
    uint32_t lat_hist[LAT_BUCKETS + 1];
    uint32_t lat_n, lat_i, lat_since;
    uint64_t lat_total;
    int64_t wake_p995_ns;
    snapshot scratch;
} rt_state;

struct sg_gen {
    /* Fixed at sg_start. */
    sg_backend *bk;
    sg_limits lim;
    sg_timing tim;
    int64_t max_rate_spacing_ns; /* floor(1e9 / max_rate_hz): no two edges closer */
    int64_t *ring;               /* times of the last budget_steps steps (ring by count) */
    size_t ring_bytes;
    sg__stack stack;
    pthread_t thread;
    int thread_started;
    clockid_t cpu_clock;
    int memory_locked;

    /* Callers' side: api_mu serialises them; the pulse thread never takes it. */
    alignas(64) pthread_mutex_t api_mu;
    int stopped;
    uint32_t posted;              /* seq of the last command posted */
    _Atomic int api_fault;        /* rate cap or unresponsive, latched by a caller */
    seqpub api_pub;               /* its time and text */

    /* The ring: callers produce (under api_mu), the pulse thread consumes. */
    alignas(64) sg_cmd cmds[CMD_RING];
    _Atomic uint64_t cmd_head;
    alignas(64) _Atomic uint64_t cmd_tail;
    alignas(64) _Atomic uint32_t doorbell; /* futex: bumped after every post and by stop */
    _Atomic int stop_req;
    _Atomic int64_t last_hb;
    alignas(64) _Atomic uint32_t done;     /* futex: seq of the last command taken */
    _Atomic int done_result;
    _Atomic uint32_t ack_waiters;
    _Atomic uint32_t alive;               /* futex: 1 while the pulse thread runs */
    alignas(64) _Atomic uint64_t count;   /* published on every step */
    _Atomic uint64_t wakeups;             /* published on every wake-up */
    seqpub pub;

    alignas(64) rt_state rt;
};

int64_t sg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
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
    t->spin_window_ns = 1000 * 1000; /* the duty cap binds first from 35 steps/s up */
    t->spin_auto = 1;
    t->spin_duty_permille = 35; /* 135 us at 258 steps/s: about 3.5 % of a core */
    t->nap_ns = 0;
    t->rt_priority = 50;
    t->lock_memory = 1;
    t->cpu = -1;
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

/* ---- pulse thread ---------------------------------------------------------------------- */

static int is_moving(const rt_state *r)
{
    return r->num > 0 && r->count < r->limit;
}

static void publish(sg_gen *g)
{
    rt_state *r = &g->rt;
    snapshot *s = &r->scratch;
    s->f[P_COUNT] = r->count;
    s->f[P_LIMIT] = r->limit;
    s->f[P_NUM] = r->num;
    s->f[P_DEN] = r->den;
    s->f[P_T0] = (uint64_t)r->t0;
    s->f[P_BASE] = r->base;
    s->f[P_MOVING] = (uint64_t)is_moving(r);
    s->f[P_ENABLED] = (r->values & ENABLE_BIT) != 0;
    s->f[P_DIR] = (uint64_t)r->dir;
    s->f[P_FAULT] = (uint64_t)r->fault;
    s->f[P_FAULT_AT] = (uint64_t)r->fault_at;
    s->f[P_SCHED] = (uint64_t)r->sched;
    s->f[P_LOCKED] = (uint64_t)g->memory_locked;
    s->f[P_MAX_LATE] = (uint64_t)r->max_late_ns;
    s->f[P_CAUGHT_UP] = r->caught_up;
    s->f[P_SPIN] = (uint64_t)r->spin_used_ns;
    s->f[P_WAKE_P995] = (uint64_t)r->wake_p995_ns;
    s->f[P_WAKE_SAMPLES] = r->lat_total;
    s->f[P_WAKEUPS] = r->wakeups;
    s->f[P_TID] = (uint64_t)r->tid;
    /* P_RUNNING and P_FINAL_CPU are set by the thread's entry and exit. */
    memcpy(s->text, r->fault_text, TEXT_LEN);
    pub_write(&g->pub, s);
}

static int drive(sg_gen *g, unsigned mask, unsigned values, int64_t *t_ns)
{
    rt_state *r = &g->rt;
    int64_t t = 0;
    int rc = g->bk->set(g->bk, mask, values, &t);
    if (rc == 0) {
        if ((r->values ^ values) & mask & (DIR_BIT | ENABLE_BIT))
            r->settled_ns = t;
        r->values = (r->values & ~mask) | (values & mask);
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
static void end_segment(rt_state *r, int64_t now)
{
    r->num = 0;
    r->den = 1;
    r->base = r->count;
    r->limit = r->count;
    r->t0 = now;
}

static void trip(sg_gen *g, int code, const char *text)
{
    rt_state *r = &g->rt;
    int64_t now = sg_now_ns();
    if (r->fault == SG_FAULT_NONE) { /* the first cause is the one worth reporting */
        r->fault = code;
        r->fault_at = now;
        snprintf(r->fault_text, sizeof(r->fault_text), "%s", text);
    }
    end_segment(r, now);
    drive_safe(g);
}

/* A timed wake-up came `late_ns` after its deadline: one sample of the machine's floor. */
static void record_wake_latency(sg_gen *g, int64_t late_ns)
{
    rt_state *r = &g->rt;
    int64_t b = late_ns < 0 ? 0 : late_ns / LAT_BUCKET_NS;
    uint16_t bucket = (uint16_t)(b > LAT_BUCKETS ? LAT_BUCKETS : b);
    if (r->lat_n == LAT_WINDOW)
        r->lat_hist[r->lat_ring[r->lat_i]]--;
    else
        r->lat_n++;
    r->lat_ring[r->lat_i] = bucket;
    r->lat_hist[bucket]++;
    r->lat_i = (r->lat_i + 1) % LAT_WINDOW;
    r->lat_total++;
    /* Recomputed when the window first has enough samples, then every 16. */
    if (r->lat_n < LAT_MIN_SAMPLES || (r->wake_p995_ns > 0 && ++r->lat_since < 16))
        return;
    r->lat_since = 0;
    /* p99.5: the upper edge of the bucket where more than 0.5 % of the window lies above
     * (0.5 % rather than 1 % so the estimate's own noise rarely leaves the p99 uncovered). */
    uint32_t above = 0, allowed = r->lat_n / 200;
    for (int i = LAT_BUCKETS; i >= 0; i--) {
        above += r->lat_hist[i];
        if (above > allowed) {
            r->wake_p995_ns = (int64_t)(i + 1) * LAT_BUCKET_NS;
            break;
        }
    }
}

/* How long to spin before an edge at num/den steps/s. */
static int64_t spin_for(const sg_gen *g)
{
    const rt_state *r = &g->rt;
    int64_t spin = g->tim.spin_window_ns;
    if (!g->tim.spin_auto)
        return spin;
    if (r->wake_p995_ns > 0 && r->wake_p995_ns + SPIN_MARGIN_NS < spin)
        spin = r->wake_p995_ns + SPIN_MARGIN_NS;
    /* den * 1e9 * permille / (num * 1000): the period's share, divided in two steps. */
    wide per = wide_mul(r->den, NS_PER_S), scaled;
    if (wide_mul_by(per, (uint64_t)g->tim.spin_duty_permille, &scaled) != 0)
        return spin;
    uint64_t duty = wide_clamp(wide_div(wide_div(scaled, 1000u), r->num), (uint64_t)INT64_MAX);
    if (duty < (uint64_t)spin)
        spin = (int64_t)duty;
    return spin;
}

/* Sleeps on the doorbell until `deadline` (< 0: until a command). */
static void rt_sleep(sg_gen *g, uint32_t bell, int64_t deadline)
{
    int rc = sg__futex_wait((uint32_t *)&g->doorbell, bell, deadline);
    int64_t now = sg_now_ns();
    g->rt.wakeups++;
    atomic_store_explicit(&g->wakeups, g->rt.wakeups, memory_order_relaxed);
    if (rc == -ETIMEDOUT)
        record_wake_latency(g, now - deadline);
}

/* Makes one step at (about) `now`, if the safety channel allows it. */
static void make_step(sg_gen *g, int64_t planned, int64_t now)
{
    rt_state *r = &g->rt;
    char text[TEXT_LEN];
    int64_t late = now - planned;
    if (g->lim.late_fault_ns > 0 && late > g->lim.late_fault_ns) {
        snprintf(text, sizeof(text),
                 "late: step %lld us behind its schedule (limit %lld us); stopped, driver disabled",
                 (long long)(late / 1000), (long long)(g->lim.late_fault_ns / 1000));
        trip(g, SG_FAULT_LATE, text);
        return;
    }
    uint64_t c = r->count;
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
    r->count = c + 1;
    atomic_store_explicit(&g->count, c + 1, memory_order_release);
    r->last_edge_ns = t_high;
    if (t_high - planned > r->max_late_ns)
        r->max_late_ns = t_high - planned;
    /* The pulse is a few microseconds: spinning is cheaper and exacter than any sleep. */
    while (sg_now_ns() < t_high + g->tim.step_high_ns)
        cpu_relax();
    rc = drive(g, STEP_BIT, 0, NULL);
    if (rc != 0) {
        snprintf(text, sizeof(text), "backend: cannot release STEP: %s; stopped", strerror(-rc));
        trip(g, SG_FAULT_BACKEND, text);
    }
}

static int apply(sg_gen *g, const sg_cmd *c, int64_t now)
{
    rt_state *r = &g->rt;
    switch (c->kind) {
    case CMD_RUN:
        if (r->fault != SG_FAULT_NONE || atomic_load(&g->api_fault) != SG_FAULT_NONE)
            return -EPERM;
        if (c->limit < r->count)
            return -EINVAL;
        if (!(is_moving(r) && c->num == r->num && c->den == r->den && (c->dir != 0) == r->dir)) {
            r->num = c->num;
            r->den = c->den;
            r->base = r->count;
            r->t0 = c->t0;
            r->dir = c->dir != 0;
        }
        r->limit = c->limit;
        return 0;
    case CMD_ABORT:
        end_segment(r, now);
        drive_safe(g);
        return 0;
    case CMD_CLEAR:
        r->fault = SG_FAULT_NONE;
        r->fault_at = 0;
        r->fault_text[0] = '\0';
        return 0;
    default:
        return -EINVAL;
    }
}

/* Takes every posted command, publishes, then acknowledges the last one. */
static void take_commands(sg_gen *g)
{
    uint64_t tail = atomic_load_explicit(&g->cmd_tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&g->cmd_head, memory_order_acquire);
    if (tail == head)
        return;
    int64_t now = sg_now_ns();
    uint32_t seq = 0;
    int result = 0;
    while (tail != head) {
        const sg_cmd *c = &g->cmds[tail % CMD_RING];
        result = apply(g, c, now);
        seq = c->seq;
        tail++;
    }
    atomic_store_explicit(&g->cmd_tail, tail, memory_order_release);
    publish(g);
    atomic_store(&g->done_result, result);
    atomic_store(&g->done, seq);
    if (atomic_load(&g->ack_waiters))
        sg__futex_wake((uint32_t *)&g->done, 1 << 30);
}

/* Does whatever is due now; returns the next deadline, -1 to sleep until a command, or 0
 * to look again at once. */
static int64_t plan(sg_gen *g, uint32_t bell, int64_t now)
{
    rt_state *r = &g->rt;
    if (atomic_load_explicit(&g->api_fault, memory_order_relaxed) != SG_FAULT_NONE &&
        (is_moving(r) || (r->values & (ENABLE_BIT | STEP_BIT)))) {
        end_segment(r, now);
        drive_safe(g);
        publish(g);
        return 0;
    }
    if (!is_moving(r)) {
        if (!(r->values & (ENABLE_BIT | STEP_BIT)))
            return -1; /* nothing due: block until a command */
        int64_t off_at = r->last_edge_ns + IDLE_DISABLE_NS;
        if (now < off_at)
            return off_at;
        drive_safe(g);
        publish(g);
        return 0;
    }

    int64_t last_hb = atomic_load_explicit(&g->last_hb, memory_order_relaxed);
    int64_t deadman_at = last_hb + g->lim.deadman_ns;
    if (now > deadman_at) {
        char text[TEXT_LEN];
        snprintf(text, sizeof(text),
                 "deadman: no heartbeat from the controller for %lld ms; stopped, driver disabled",
                 (long long)((now - last_hb) / 1000000));
        trip(g, SG_FAULT_DEADMAN, text);
        publish(g);
        return 0;
    }
    unsigned want = ENABLE_BIT | (r->dir ? DIR_BIT : 0);
    if ((r->values & (ENABLE_BIT | DIR_BIT)) != want) {
        int rc = drive(g, ENABLE_BIT | DIR_BIT, want, NULL);
        if (rc != 0) {
            char text[TEXT_LEN];
            snprintf(text, sizeof(text), "backend: cannot drive DIR/ENABLE: %s; stopped",
                     strerror(-rc));
            trip(g, SG_FAULT_BACKEND, text);
        }
        publish(g);
        return 0;
    }

    int64_t planned;
    if (sg_step_time(r->t0, r->count - r->base + 1, r->num, r->den, &planned) != 0) {
        trip(g, SG_FAULT_BACKEND, "schedule: step time out of range; stopped");
        publish(g);
        return 0;
    }
    /* Never a burst: after falling behind, steps come at most at twice the rate (and never
     * above the rate cap) until the schedule is met again. */
    wide half = wide_div(wide_div(wide_mul(r->den, NS_PER_S), r->num), 2);
    int64_t spacing = (int64_t)wide_clamp(half, (uint64_t)INT64_MAX);
    if (spacing < g->max_rate_spacing_ns)
        spacing = g->max_rate_spacing_ns;
    int64_t edge = planned;
    if (r->last_edge_ns > 0 && r->last_edge_ns + spacing > edge)
        edge = r->last_edge_ns + spacing;
    if (r->settled_ns + g->tim.dir_setup_ns > edge)
        edge = r->settled_ns + g->tim.dir_setup_ns;

    if (deadman_at < edge)
        return deadman_at + 1; /* look at the heartbeat again then */
    int64_t spin = spin_for(g);
    r->spin_used_ns = spin;
    int64_t spin_from = edge - spin;
    if (now < spin_from - g->tim.nap_ns)
        return spin_from - g->tim.nap_ns;

    /* Final approach: a nap that no command interrupts (if configured), then the spin,
     * which any command or stop request ends so the edge is planned again. */
    if (now < spin_from) {
        struct timespec ts = sg__ts(spin_from);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
    while ((now = sg_now_ns()) < edge) {
        if (atomic_load_explicit(&g->doorbell, memory_order_relaxed) != bell)
            return 0;
        cpu_relax();
    }
    if (edge > planned)
        r->caught_up++;
    make_step(g, planned, now);
    publish(g);
    return 0;
}

static void set_running(sg_gen *g, int running, int64_t final_cpu_ns)
{
    snapshot *s = &g->rt.scratch;
    s->f[P_RUNNING] = (uint64_t)running;
    s->f[P_FINAL_CPU] = (uint64_t)final_cpu_ns;
    publish(g);
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void *pulse_main(void *arg)
{
    sg_gen *g = arg;
    rt_state *r = &g->rt;
    r->sched = sg__rt_setup(g->tim.rt_priority);
    r->tid = (int)syscall(SYS_gettid);
    r->spin_used_ns = g->tim.spin_window_ns;
    set_running(g, 1, 0);
    atomic_store(&g->alive, 1);
    sg__futex_wake((uint32_t *)&g->alive, 1 << 30);
    for (;;) {
        /* Read the doorbell before looking for work: a post after this read changes it, and
         * the futex then refuses to sleep. */
        uint32_t bell = atomic_load(&g->doorbell);
        if (atomic_load(&g->stop_req))
            break;
        take_commands(g);
        int64_t deadline = plan(g, bell, sg_now_ns());
        if (deadline != 0)
            rt_sleep(g, bell, deadline);
    }
    drive_safe(g);
    end_segment(r, sg_now_ns());
    set_running(g, 0, thread_cpu_ns());
    atomic_store(&g->alive, 0);
    return NULL;
}

/* ---- callers' side ------------------------------------------------------------------------ */

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
    if (t->spin_duty_permille < 0 || t->spin_duty_permille > 1000)
        return "spin_duty_permille must be 0..1000";
    if (t->nap_ns < 0 || t->nap_ns > 10000000)
        return "nap_ns must be 0..10 ms";
    if (t->rt_priority < 0 || t->rt_priority > 99)
        return "rt_priority must be 0..99";
    if (t->cpu < -1 || t->cpu >= CPU_SETSIZE)
        return "cpu must be -1 (any) or a CPU number below 1024";
    /* Steps must fit between pulses at the cap: high time plus a low time as long. */
    if ((int64_t)l->max_rate_hz * 2 * t->step_high_ns > NS_PER_S)
        return "max_rate_hz too high for step_high_ns";
    return NULL;
}

static void ring_doorbell(sg_gen *g)
{
    atomic_fetch_add(&g->doorbell, 1);
    sg__futex_wake((uint32_t *)&g->doorbell, 1);
}

/* api_mu held. Posts and waits (bounded) until the pulse thread has taken it. 0 and the
 * command's own result in *result; -ETIMEDOUT or -EBUSY (ring full) when it does not answer. */
static int post_and_wait(sg_gen *g, sg_cmd *c, int *result)
{
    uint64_t head = atomic_load_explicit(&g->cmd_head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&g->cmd_tail, memory_order_acquire);
    if (head - tail >= CMD_RING)
        return -EBUSY;
    c->seq = ++g->posted;
    g->cmds[head % CMD_RING] = *c;
    atomic_store_explicit(&g->cmd_head, head + 1, memory_order_release);
    int64_t deadline = sg_now_ns() + ACK_TIMEOUT_NS;
    atomic_fetch_add(&g->ack_waiters, 1);
    ring_doorbell(g);
    int rc = -ETIMEDOUT;
    for (;;) {
        uint32_t done = atomic_load(&g->done);
        if ((int32_t)(done - c->seq) >= 0) {
            *result = atomic_load(&g->done_result);
            rc = 0;
            break;
        }
        if (sg_now_ns() >= deadline)
            break;
        (void)sg__futex_wait((uint32_t *)&g->done, done, deadline);
    }
    atomic_fetch_sub(&g->ack_waiters, 1);
    return rc;
}

/* api_mu held. Latches a caller-side fault (the pulse thread stops on seeing it). */
static void api_latch(sg_gen *g, int code, const char *text)
{
    if (atomic_load(&g->api_fault) != SG_FAULT_NONE)
        return;
    snapshot s;
    memset(&s, 0, sizeof(s));
    s.f[P_FAULT] = (uint64_t)code;
    s.f[P_FAULT_AT] = (uint64_t)sg_now_ns();
    snprintf(s.text, sizeof(s.text), "%s", text);
    pub_write(&g->api_pub, &s);
    atomic_store(&g->api_fault, code);
    ring_doorbell(g);
}

/* api_mu held. The thread did not answer: latch it, and force the lines safe ourselves
 * where the backend allows another thread to drive them. */
static void api_unresponsive(sg_gen *g)
{
    api_latch(g, SG_FAULT_UNRESPONSIVE,
              "unresponsive: the pulse thread did not answer within 500 ms; driver disabled");
    if (g->bk->concurrent_safe) {
        int64_t t;
        (void)g->bk->set(g->bk, STEP_BIT | ENABLE_BIT, 0, &t);
    }
}

static void release(sg_gen *g)
{
    sg_backend_close(g->bk);
    pthread_mutex_destroy(&g->api_mu);
    sg__unmap(g->ring, g->ring_bytes);
    sg__stack_free(&g->stack);
    sg__unmap(g, sizeof(*g));
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
    /* Everything the pulse thread touches is mapped here, zeroed and pre-faulted, so no
     * page fault can land between two edges; locked when asked and permitted. */
    int lock = timing->lock_memory, g_locked = 0, ring_locked = 0, stack_locked = 0;
    sg_gen *g = sg__map(sizeof(*g), lock, &g_locked);
    if (!g) {
        snprintf(err, errlen, "out of memory for the pulse generator");
        sg_backend_close(backend);
        return NULL;
    }
    g->bk = backend;
    g->lim = *limits;
    g->tim = *timing;
    g->max_rate_spacing_ns = NS_PER_S / limits->max_rate_hz;
    g->ring_bytes = limits->budget_steps * sizeof(int64_t);
    g->ring = sg__map(g->ring_bytes, lock, &ring_locked);
    int stack_rc = sg__stack_alloc(&g->stack, STACK_BYTES, lock, &stack_locked);
    pthread_mutex_init(&g->api_mu, NULL);
    g->rt.den = 1;
    atomic_init(&g->last_hb, sg_now_ns());
    if (!g->ring || stack_rc != 0) {
        snprintf(err, errlen, "out of memory for a budget of %llu steps",
                 (unsigned long long)limits->budget_steps);
        release(g);
        return NULL;
    }
    if (lock) {
        /* Also the code and libraries the thread runs. MCL_FUTURE under a small
         * RLIMIT_MEMLOCK would make later Python allocations fail, so lock future pages
         * only when the limit cannot bite. */
        struct rlimit rl;
        int unlimited = geteuid() == 0 ||
                        (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY);
        int all = mlockall(unlimited ? (MCL_CURRENT | MCL_FUTURE) : MCL_CURRENT) == 0;
        g->memory_locked = all || (g_locked && ring_locked && stack_locked);
    }

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, g->stack.usable, g->stack.usable_len);
    if (g->tim.cpu >= 0) {
        /* Set before the thread exists, so it never runs anywhere else. */
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET((size_t)g->tim.cpu, &one);
        pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
    }
    /* The thread starts with every signal blocked: no handler can run between two edges,
     * and Python's handlers run on the main thread anyway. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&g->thread, &attr, pulse_main, g);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        if (g->tim.cpu >= 0)
            snprintf(err, errlen, "cannot start the pulse thread on CPU %d: %s (is that CPU "
                     "online and allowed to this process? /sys/devices/system/cpu/online)",
                     g->tim.cpu, strerror(rc));
        else
            snprintf(err, errlen, "cannot start the pulse thread: %s", strerror(rc));
        release(g);
        return NULL;
    }
    g->thread_started = 1;
    if (pthread_getcpuclockid(g->thread, &g->cpu_clock) != 0)
        g->cpu_clock = (clockid_t)-1;
    while (!atomic_load(&g->alive))
        (void)sg__futex_wait((uint32_t *)&g->alive, 0, -1);
    return g;
}

void sg_stop(sg_gen *g)
{
    pthread_mutex_lock(&g->api_mu);
    if (g->stopped) {
        pthread_mutex_unlock(&g->api_mu);
        return;
    }
    g->stopped = 1;
    atomic_store(&g->stop_req, 1);
    ring_doorbell(g);
    pthread_mutex_unlock(&g->api_mu);
    if (g->thread_started)
        pthread_join(g->thread, NULL);
    /* The thread left STEP low and ENABLE off. Under api_mu: no caller drives the lines
     * (api_unresponsive) while the backend gives them back. */
    pthread_mutex_lock(&g->api_mu);
    if (g->bk->release)
        g->bk->release(g->bk);
    pthread_mutex_unlock(&g->api_mu);
}

void sg_free(sg_gen *g)
{
    if (!g)
        return;
    sg_stop(g);
    release(g);
}

int sg_run(sg_gen *g, uint64_t num, uint64_t den, uint64_t limit, int64_t now_ns, int dir)
{
    if (den == 0)
        return -EINVAL;
    int64_t real_now = sg_now_ns();
    int rc = 0;
    pthread_mutex_lock(&g->api_mu);
    if (g->stopped) {
        rc = -EPIPE;
    } else if (atomic_load(&g->api_fault) != SG_FAULT_NONE) {
        rc = -EPERM;
    } else if (now_ns > real_now + g->lim.deadman_ns || now_ns < real_now - g->lim.deadman_ns) {
        rc = -EDOM; /* not CLOCK_MONOTONIC, or stale by more than the deadman */
    } else if (wide_cmp(wide_of(num), wide_mul(g->lim.max_rate_hz, den)) > 0) {
        char text[TEXT_LEN];
        snprintf(text, sizeof(text),
                 "rate_cap: commanded %llu/%llu steps/s is above the cap of %u steps/s; "
                 "stopped, driver disabled",
                 (unsigned long long)num, (unsigned long long)den, g->lim.max_rate_hz);
        api_latch(g, SG_FAULT_RATE_CAP, text);
        sg_cmd c = {.kind = CMD_ABORT};
        int ignored;
        if (post_and_wait(g, &c, &ignored) != 0)
            api_unresponsive(g);
        rc = -EPERM;
    } else {
        atomic_store(&g->last_hb, real_now);
        sg_cmd c = {.kind = CMD_RUN, .num = num, .den = den, .limit = limit, .t0 = now_ns,
                    .dir = dir != 0};
        if (post_and_wait(g, &c, &rc) != 0) {
            api_unresponsive(g);
            rc = -EPERM;
        }
    }
    pthread_mutex_unlock(&g->api_mu);
    return rc;
}

uint64_t sg_abort(sg_gen *g)
{
    pthread_mutex_lock(&g->api_mu);
    if (!g->stopped) {
        sg_cmd c = {.kind = CMD_ABORT};
        int ignored;
        if (post_and_wait(g, &c, &ignored) != 0)
            api_unresponsive(g);
    }
    uint64_t count = atomic_load(&g->count);
    pthread_mutex_unlock(&g->api_mu);
    return count;
}

void sg_heartbeat(sg_gen *g)
{
    atomic_store_explicit(&g->last_hb, sg_now_ns(), memory_order_relaxed);
}

uint64_t sg_count(sg_gen *g)
{
    return atomic_load_explicit(&g->count, memory_order_acquire);
}

void sg_clear_fault(sg_gen *g)
{
    pthread_mutex_lock(&g->api_mu);
    if (atomic_load(&g->api_fault) != SG_FAULT_NONE) {
        snapshot s;
        memset(&s, 0, sizeof(s));
        pub_write(&g->api_pub, &s);
        atomic_store(&g->api_fault, SG_FAULT_NONE);
    }
    if (!g->stopped) {
        sg_cmd c = {.kind = CMD_CLEAR};
        int ignored;
        (void)post_and_wait(g, &c, &ignored); /* an unresponsive thread stays latched anyway */
    }
    pthread_mutex_unlock(&g->api_mu);
}

void sg_get_status(sg_gen *g, sg_status *st)
{
    snapshot s, a;
    memset(st, 0, sizeof(*st));
    pub_read(&g->pub, &s);
    pub_read(&g->api_pub, &a);
    st->count = s.f[P_COUNT];
    st->limit = s.f[P_LIMIT];
    st->rate_num = s.f[P_NUM];
    st->rate_den = s.f[P_DEN];
    st->seg_t0_ns = (int64_t)s.f[P_T0];
    st->seg_base = s.f[P_BASE];
    st->moving = (int)s.f[P_MOVING];
    st->enabled = (int)s.f[P_ENABLED];
    st->dir = (int)s.f[P_DIR];
    /* Of a fault the thread latched and one a caller latched, the first is reported. */
    int rt_fault = (int)s.f[P_FAULT], api_fault = (int)a.f[P_FAULT];
    int use_api = api_fault != SG_FAULT_NONE &&
                  (rt_fault == SG_FAULT_NONE || (int64_t)a.f[P_FAULT_AT] < (int64_t)s.f[P_FAULT_AT]);
    st->fault = use_api ? api_fault : rt_fault;
    snprintf(st->fault_text, sizeof(st->fault_text), "%s", use_api ? a.text : s.text);
    st->sched = (int)s.f[P_SCHED];
    st->memory_locked = (int)s.f[P_LOCKED];
    st->max_late_ns = (int64_t)s.f[P_MAX_LATE];
    st->caught_up_steps = s.f[P_CAUGHT_UP];
    st->running = (int)s.f[P_RUNNING];
    st->cpu_ns = (int64_t)s.f[P_FINAL_CPU];
    st->spin_ns = (int64_t)s.f[P_SPIN];
    st->wake_p995_ns = (int64_t)s.f[P_WAKE_P995];
    st->wake_samples = s.f[P_WAKE_SAMPLES];
    st->wakeups = atomic_load_explicit(&g->wakeups, memory_order_relaxed);
    st->tid = (int)s.f[P_TID];
    /* The thread's CPU clock is valid only while it lives: read it between two checks. */
    struct timespec ts;
    if (st->running && g->cpu_clock != (clockid_t)-1 && atomic_load(&g->alive) &&
        clock_gettime(g->cpu_clock, &ts) == 0 && atomic_load(&g->alive))
        st->cpu_ns = (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

long sg_read_edges(sg_gen *g, sg_edge *out, size_t max, uint64_t *dropped)
{
    if (!g->bk->read_edges)
        return -ENOTSUP;
    return g->bk->read_edges(g->bk, out, max, dropped);
}

void sg__hold_callers_lock(sg_gen *g, int hold)
{
    if (hold)
        pthread_mutex_lock(&g->api_mu);
    else
        pthread_mutex_unlock(&g->api_mu);
}
