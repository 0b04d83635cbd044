/* test_stepgen.c: C tests of the schedule, the safety channel and the backends (make test / asan). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt_internal.h"
#include "stepgen.h"
#include "wide.h"

#include <pthread.h>
#include <stdatomic.h>

static int failures;
static int checks;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Reference written the slow obvious way, for products that fit in 64 bits (the loop below). */
static int64_t ref_step_time(int64_t t0, uint64_t k, uint64_t num, uint64_t den)
{
    uint64_t p = k * den;
    CHECK(p <= UINT64_MAX / 1000000000u, "reference overflow k=%llu", (unsigned long long)k);
    return t0 + (int64_t)(p * 1000000000u / num);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A value with a random number of significant bits, so small and huge halves both occur. */
static uint64_t some_bits(uint64_t *s)
{
    unsigned bits = (unsigned)(xorshift(s) % 65);
    return bits == 0 ? 0 : xorshift(s) >> (64 - bits);
}

/* wide.h: on targets with __int128 against it; on every target against the definition of
 * a quotient, n = q*d + r with r < d, rebuilt with wide_mul_by. */
static void test_wide(void)
{
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 50000; i++) {
        uint64_t a = some_bits(&s), b = some_bits(&s), c = some_bits(&s), d = some_bits(&s);
        if (i < 4)
            a = b = UINT64_MAX; /* the largest product */
        if (d == 0)
            d = 1;
        wide ab = wide_mul(a, b);
        wide n;
        int fits = wide_mul_by(wide_of(a), b, &n) == 0;
        CHECK(fits && wide_cmp(n, ab) == 0, "mul_by(%llx, %llx)", (unsigned long long)a,
              (unsigned long long)b);
        wide q = wide_div(ab, d), qd = {0, 0}, back;
        uint64_t r = ab.lo - q.lo * d; /* n - q*d, exact modulo 2^64 and < d if q is right */
        CHECK(wide_mul_by(q, d, &qd) == 0, "q*d overflows");
        back = qd;
        back.lo += r;
        back.hi += back.lo < r;
        CHECK(r < d && wide_cmp(back, ab) == 0, "div(%llx*%llx, %llx)", (unsigned long long)a,
              (unsigned long long)b, (unsigned long long)d);
        wide abc = {0, 0};
        int ok = wide_mul_by(ab, c, &abc) == 0;
#ifdef __SIZEOF_INT128__
        unsigned __int128 n128 = (unsigned __int128)a * b, q128 = n128 / d;
        CHECK(ab.hi == (uint64_t)(n128 >> 64) && ab.lo == (uint64_t)n128, "mul vs int128");
        CHECK(q.hi == (uint64_t)(q128 >> 64) && q.lo == (uint64_t)q128, "div vs int128");
        int fits128 = c == 0 || n128 <= (~(unsigned __int128)0) / c;
        CHECK(ok == fits128, "overflow verdict %d vs %d", ok, fits128);
        if (ok && fits128) {
            unsigned __int128 p = n128 * c;
            CHECK(abc.hi == (uint64_t)(p >> 64) && abc.lo == (uint64_t)p, "mul_by vs int128");
        }
        CHECK(wide_cmp(ab, wide_of(d)) == (n128 < d ? -1 : n128 > d), "cmp vs int128");
#else
        (void)ok;
#endif
    }
    wide one = wide_of(1), top = {UINT64_MAX, UINT64_MAX};
    CHECK(wide_cmp(wide_dec((wide){1, 0}), wide_of(UINT64_MAX)) == 0, "dec borrows");
    CHECK(wide_mul_by(top, 2, &one) == -1, "overflow refused");
    CHECK(wide_div(top, 1).hi == UINT64_MAX, "div by 1");
    CHECK(wide_clamp((wide){1, 0}, 7) == 7 && wide_clamp(wide_of(5), 7) == 5, "clamp");
}

static void test_schedule(void)
{
    int64_t t;
    uint64_t n;
    uint64_t rates[][2] = {{258, 1}, {43, 1}, {1000, 1}, {1, 3}, {43, 100}, {2580, 7}, {1, 1}};
    for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
        uint64_t num = rates[r][0], den = rates[r][1];
        for (uint64_t k = 1; k < 3000; k += 7) {
            CHECK(sg_step_time(123, k, num, den, &t) == 0, "k=%llu", (unsigned long long)k);
            CHECK(t == ref_step_time(123, k, num, den), "k=%llu", (unsigned long long)k);
            /* steps_by is the inverse: exactly k steps at t, k-1 one ns before. */
            CHECK(sg_steps_by(123, t, num, den, &n) == 0 && n == k, "n=%llu k=%llu",
                  (unsigned long long)n, (unsigned long long)k);
            CHECK(sg_steps_by(123, t - 1, num, den, &n) == 0 && n == k - 1, "n=%llu",
                  (unsigned long long)n);
        }
    }
    /* 72 hours at 258 steps/s: the last step lands on the nanosecond, no drift. */
    const int64_t h72 = 72LL * 3600 * 1000000000LL;
    const uint64_t steps72 = 258ULL * 72 * 3600;
    CHECK(sg_step_time(0, steps72, 258, 1, &t) == 0 && t == h72, "t=%lld", (long long)t);
    CHECK(sg_steps_by(0, h72, 258, 1, &n) == 0 && n == steps72, "n=%llu", (unsigned long long)n);
    CHECK(sg_steps_by(0, h72 - 1, 258, 1, &n) == 0 && n == steps72 - 1, "n=%llu",
          (unsigned long long)n);
    /* 0.1 mL/h on the reference mechanism is 43/100 steps/s. */
    CHECK(sg_steps_by(5, 5 + h72, 43, 100, &n) == 0 && n == 43ULL * 72 * 36, "n=%llu",
          (unsigned long long)n);
    /* Errors instead of silent wrap-around. */
    CHECK(sg_step_time(0, 1, 0, 1, &t) == -EINVAL, "num 0");
    CHECK(sg_step_time(0, 0, 1, 1, &t) == -EINVAL, "k 0");
    CHECK(sg_step_time(0, UINT64_MAX, 1, UINT64_MAX, &t) == -ERANGE, "huge product");
    CHECK(sg_step_time(INT64_MAX - 10, 1, 1, 1, &t) == -ERANGE, "past int64");
    CHECK(sg_steps_by(0, 10, 1, 0, &n) == -EINVAL, "den 0");
    CHECK(sg_steps_by(0, 10, 0, 1, &n) == 0 && n == 0, "rate 0");
    CHECK(sg_steps_by(10, 9, 5, 1, &n) == 0 && n == 0, "before t0");
    CHECK(sg_steps_by(INT64_MIN, INT64_MAX, UINT64_MAX, 1, &n) == -ERANGE, "count past u64");
}

static sg_gen *start_sim_timed(sg_limits *lim, size_t ring, const sg_timing *timing);

static sg_gen *start_sim(sg_limits *lim, size_t ring)
{
    sg_timing tim;
    sg_timing_default(&tim);
    tim.lock_memory = 0; /* keep the sanitizer build's shadow memory unlocked */
    return start_sim_timed(lim, ring, &tim);
}

static sg_gen *start_sim_timed(sg_limits *lim, size_t ring, const sg_timing *timing)
{
    char err[256] = "";
    sg_timing tim = *timing;
    sg_backend *b = sg_backend_sim_open(ring, err, sizeof(err));
    CHECK(b != NULL, "%s", err);
    sg_gen *g = sg_start(b, lim, &tim, err, sizeof(err));
    CHECK(g != NULL, "%s", err);
    return g;
}

static void wait_idle(sg_gen *g, long max_ms)
{
    sg_status st;
    for (long i = 0; i < max_ms; i++) {
        sg_get_status(g, &st);
        if (!st.moving)
            return;
        sg_heartbeat(g);
        sleep_ms(1);
    }
}

static void test_pulses(void)
{
    sg_limits lim;
    sg_limits_default(&lim);
    sg_gen *g = start_sim(&lim, 4096);
    int64_t now = sg_now_ns();
    CHECK(sg_run(g, 1000, 1, 40, now, 1) == 0, "run");
    wait_idle(g, 2000);
    sg_status st;
    sg_get_status(g, &st);
    CHECK(st.count == 40, "count %llu", (unsigned long long)st.count);
    CHECK(st.fault == SG_FAULT_NONE, "fault %s", st.fault_text);

    sg_edge edges[4096];
    uint64_t dropped = 1;
    long n = sg_read_edges(g, edges, 4096, &dropped);
    CHECK(dropped == 0, "dropped %llu", (unsigned long long)dropped);
    int64_t high_at = -1, dir_at = -1, en_at = -1, min_pulse = INT64_MAX, min_setup = INT64_MAX;
    uint64_t rising = 0;
    for (long i = 0; i < n; i++) {
        sg_edge e = edges[i];
        if (e.line == SG_LINE_DIR)
            dir_at = e.t_ns;
        if (e.line == SG_LINE_ENABLE && e.value)
            en_at = e.t_ns;
        if (e.line != SG_LINE_STEP)
            continue;
        if (e.value) {
            rising++;
            int64_t planned;
            sg_step_time(now, rising, 1000, 1, &planned);
            CHECK(e.t_ns >= planned, "early edge %llu by %lld ns", (unsigned long long)rising,
                  (long long)(planned - e.t_ns));
            int64_t setup = e.t_ns - (dir_at > en_at ? dir_at : en_at);
            if (setup < min_setup)
                min_setup = setup;
            high_at = e.t_ns;
        } else if (high_at >= 0 && e.t_ns - high_at < min_pulse) {
            min_pulse = e.t_ns - high_at;
        }
    }
    CHECK(rising == 40, "rising %llu", (unsigned long long)rising);
    CHECK(min_pulse >= 2000, "min pulse %lld ns", (long long)min_pulse);
    CHECK(dir_at >= 0 && min_setup >= 1000, "min DIR setup %lld ns", (long long)min_setup);
    sg_free(g);
}

static void test_rate_cap(void)
{
    sg_limits lim;
    sg_limits_default(&lim);
    lim.max_rate_hz = 500;
    sg_gen *g = start_sim(&lim, 64);
    CHECK(sg_run(g, 501, 1, 100, sg_now_ns(), 0) == -EPERM, "over the cap accepted");
    CHECK(sg_run(g, 100, 1, 100, sg_now_ns(), 0) == -EPERM, "accepted while faulted");
    sg_status st;
    sg_get_status(g, &st);
    CHECK(st.fault == SG_FAULT_RATE_CAP && st.count == 0, "fault %d", st.fault);
    CHECK(strstr(st.fault_text, "rate_cap") != NULL, "%s", st.fault_text);
    sg_clear_fault(g);
    CHECK(sg_run(g, 1000, 2, 3, sg_now_ns(), 0) == 0, "exactly the cap refused");
    wait_idle(g, 2000);
    sg_get_status(g, &st);
    CHECK(st.count == 3, "count %llu", (unsigned long long)st.count);
    sg_free(g);
}

static void test_budget(void)
{
    sg_limits lim;
    sg_limits_default(&lim);
    lim.budget_steps = 10;
    lim.budget_window_ns = 60LL * 1000000000LL;
    sg_gen *g = start_sim(&lim, 256);
    CHECK(sg_run(g, 1000, 1, 25, sg_now_ns(), 0) == 0, "run");
    wait_idle(g, 2000);
    sleep_ms(5);
    sg_status st;
    sg_get_status(g, &st);
    CHECK(st.count == 10, "count %llu", (unsigned long long)st.count);
    CHECK(st.fault == SG_FAULT_BUDGET, "fault %d", st.fault);
    CHECK(!st.enabled, "driver left enabled");
    sg_free(g);
}

static void test_deadman(void)
{
    sg_limits lim;
    sg_limits_default(&lim);
    lim.deadman_ns = 100 * 1000000LL;
    sg_gen *g = start_sim(&lim, 8192);
    CHECK(sg_run(g, 1000, 1, 100000, sg_now_ns(), 0) == 0, "run");
    sleep_ms(400);
    sg_status st;
    sg_get_status(g, &st);
    CHECK(st.fault == SG_FAULT_DEADMAN, "fault %d %s", st.fault, st.fault_text);
    CHECK(!st.enabled && !st.moving, "still moving");
    /* About 100 steps at 1 kHz before the deadman; far fewer than 400. */
    CHECK(st.count >= 50 && st.count <= 250, "count %llu", (unsigned long long)st.count);
    sg_free(g);
}

static void test_abort(void)
{
    sg_limits lim;
    sg_limits_default(&lim);
    sg_gen *g = start_sim(&lim, 8192);
    CHECK(sg_run(g, 1000, 1, 100000, sg_now_ns(), 0) == 0, "run");
    sleep_ms(30);
    uint64_t at_abort = sg_abort(g);
    sleep_ms(20);
    sg_status st;
    sg_get_status(g, &st);
    CHECK(st.count == at_abort, "stepped after abort: %llu vs %llu",
          (unsigned long long)st.count, (unsigned long long)at_abort);
    CHECK(!st.enabled && !st.moving && st.fault == SG_FAULT_NONE, "state after abort");
    CHECK(at_abort > 5, "count %llu", (unsigned long long)at_abort);
    sg_stop(g);
    sg_get_status(g, &st);
    CHECK(!st.running, "thread still running after stop");
    sg_free(g);
}


/* Every STEP rising edge in `edges` at or after its planned time at num/den from t0. */
static uint64_t check_edges(const sg_edge *edges, long n, int64_t t0, uint64_t num, uint64_t den)
{
    uint64_t rising = 0;
    for (long i = 0; i < n; i++) {
        if (edges[i].line != SG_LINE_STEP || !edges[i].value)
            continue;
        rising++;
        int64_t planned;
        sg_step_time(t0, rising, num, den, &planned);
        CHECK(edges[i].t_ns >= planned, "early edge %llu by %lld ns", (unsigned long long)rising,
              (long long)(planned - edges[i].t_ns));
    }
    return rising;
}

/* A caller that holds the callers' lock indefinitely (preempted, or waiting for the GIL,
 * inside a call) delays no edge and does not silence the deadman: the pulse thread never
 * takes that lock, and the heartbeat, the count and the status never need it. */
static void test_sr9_caller_holding_the_lock_stalls_no_edge_and_no_deadman(void)
{
    sg_limits lim;
    sg_limits_default(&lim);
    lim.deadman_ns = 150 * 1000000LL;
    static sg_edge edges[8192];
    sg_gen *g = start_sim(&lim, 8192);
    int64_t t0 = sg_now_ns();
    CHECK(sg_run(g, 1000, 1, 300, t0, 0) == 0, "run");
    sg__hold_callers_lock(g, 1);
    for (int i = 0; i < 3000 && sg_count(g) < 300; i++) {
        sg_heartbeat(g);
        sleep_ms(1);
    }
    sg_status st;
    sg_get_status(g, &st);
    CHECK(st.count == 300 && st.fault == SG_FAULT_NONE, "count %llu fault %s while the lock was held",
          (unsigned long long)st.count, st.fault_text);
    sg__hold_callers_lock(g, 0);
    long n = sg_read_edges(g, edges, 8192, NULL);
    CHECK(check_edges(edges, n, t0, 1000, 1) == 300, "rising edges");

    /* Now no heartbeat while the lock is held: the deadman still stops and disables. */
    CHECK(sg_run(g, 1000, 1, 100000, sg_now_ns(), 0) == 0, "run 2");
    sg__hold_callers_lock(g, 1);
    for (int i = 0; i < 3000; i++) {
        sg_get_status(g, &st);
        if (st.fault != SG_FAULT_NONE && !st.enabled)
            break;
        sleep_ms(1);
    }
    CHECK(st.fault == SG_FAULT_DEADMAN && !st.enabled && !st.moving, "fault %d enabled %d",
          st.fault, st.enabled);
    sg__hold_callers_lock(g, 0);
    sg_free(g);
}

/* With nothing due the thread blocks: no wake-up at all while callers heartbeat and read
 * the status, and one command wakes it. */
static void test_blocks_when_nothing_is_due(void)
{
    sg_limits lim;
    sg_limits_default(&lim);
    sg_gen *g = start_sim(&lim, 4096);
    CHECK(sg_run(g, 1000, 1, 20, sg_now_ns(), 0) == 0, "run");
    wait_idle(g, 2000);
    sg_status st;
    for (int i = 0; i < 2000; i++) { /* the idle disable comes 20 ms after the last step */
        sg_get_status(g, &st);
        if (!st.enabled)
            break;
        sleep_ms(1);
    }
    sleep_ms(5);
    sg_get_status(g, &st);
    uint64_t before = st.wakeups;
    for (int i = 0; i < 30; i++) {
        sg_heartbeat(g);
        (void)sg_count(g);
        sg_get_status(g, &st);
        sleep_ms(10);
    }
    sg_get_status(g, &st);
    CHECK(!st.enabled && st.wakeups == before, "woke %llu times at rest",
          (unsigned long long)(st.wakeups - before));
    CHECK(sg_run(g, 1000, 1, 25, sg_now_ns(), 0) == 0, "run again");
    wait_idle(g, 2000);
    sg_get_status(g, &st);
    CHECK(st.count == 25 && st.wakeups > before, "count %llu", (unsigned long long)st.count);
    sg_free(g);
}

/* The spin window follows the measured wake-up latency, within its maximum and duty cap. */
static void test_spin_window_from_measured_latency(void)
{
    sg_limits lim;
    sg_limits_default(&lim);
    sg_timing tim;
    sg_timing_default(&tim);
    tim.lock_memory = 0;
    tim.spin_window_ns = 300000;
    tim.spin_duty_permille = 100; /* at 500 steps/s: at most 200 us */
    sg_gen *g = start_sim_timed(&lim, 8192, &tim);
    CHECK(sg_run(g, 500, 1, 200, sg_now_ns(), 0) == 0, "run");
    wait_idle(g, 5000);
    sg_status st;
    sg_get_status(g, &st);
    CHECK(st.wake_samples >= 100, "samples %llu", (unsigned long long)st.wake_samples);
    int64_t want = st.wake_p995_ns + 10000;
    if (want > 200000)
        want = 200000;
    CHECK(st.wake_p995_ns > 0 && st.spin_ns == want, "spin %lld, p99 %lld", (long long)st.spin_ns,
          (long long)st.wake_p995_ns);
    sg_free(g);

    tim.spin_auto = 0;
    tim.spin_window_ns = 123000;
    g = start_sim_timed(&lim, 8192, &tim);
    CHECK(sg_run(g, 500, 1, 20, sg_now_ns(), 0) == 0, "run fixed");
    wait_idle(g, 5000);
    sg_get_status(g, &st);
    CHECK(st.spin_ns == 123000, "fixed spin %lld", (long long)st.spin_ns);
    sg_free(g);
}

/* A backend that can be made to hang inside set(), as a wedged GPIO driver would. */
typedef struct hang_backend {
    sg_backend base;
    sg_backend *inner;
    atomic_int hang;
    atomic_int stuck;
    pthread_t stuck_thread;
    atomic_int forced_safe;
} hang_backend;

static int hang_set(sg_backend *b, unsigned mask, unsigned values, int64_t *t_ns)
{
    hang_backend *h = (hang_backend *)b;
    if (atomic_load(&h->hang)) {
        if (!atomic_load(&h->stuck)) { /* the first caller while hanging: the pulse thread */
            h->stuck_thread = pthread_self();
            atomic_store(&h->stuck, 1);
            while (atomic_load(&h->hang))
                sleep_ms(1);
        } else if (!pthread_equal(pthread_self(), h->stuck_thread)) {
            /* a caller forcing the lines while the thread hangs */
            if ((mask & (1u << SG_LINE_ENABLE)) && !(values & (1u << SG_LINE_ENABLE)))
                atomic_store(&h->forced_safe, 1);
            *t_ns = sg_now_ns();
            return 0;
        }
    }
    return h->inner->set(h->inner, mask, values, t_ns);
}

static long hang_read(sg_backend *b, sg_edge *out, size_t max, uint64_t *dropped)
{
    hang_backend *h = (hang_backend *)b;
    return h->inner->read_edges(h->inner, out, max, dropped);
}

static void hang_close(sg_backend *b)
{
    hang_backend *h = (hang_backend *)b;
    sg_backend_close(h->inner);
    free(h);
}

/* A pulse thread that does not answer within 500 ms is latched unresponsive, the caller
 * drives ENABLE off itself where the backend allows it, and nothing it missed runs later. */
static void test_sr9_unresponsive_thread_is_latched_and_enable_forced_off(void)
{
    char err[256] = "";
    hang_backend *h = calloc(1, sizeof(*h));
    h->inner = sg_backend_sim_open(4096, err, sizeof(err));
    h->base.set = hang_set;
    h->base.read_edges = hang_read;
    h->base.close = hang_close;
    h->base.concurrent_safe = 1;
    sg_limits lim;
    sg_limits_default(&lim);
    sg_timing tim;
    sg_timing_default(&tim);
    tim.lock_memory = 0;
    sg_gen *g = sg_start(&h->base, &lim, &tim, err, sizeof(err));
    CHECK(g != NULL, "%s", err);
    CHECK(sg_run(g, 1000, 1, 100000, sg_now_ns(), 0) == 0, "run");
    sleep_ms(20);
    atomic_store(&h->hang, 1);
    for (int i = 0; i < 2000 && !atomic_load(&h->stuck); i++) {
        sg_heartbeat(g);
        sleep_ms(1);
    }
    CHECK(atomic_load(&h->stuck), "the thread never reached the backend");
    int64_t asked = sg_now_ns();
    uint64_t c = sg_abort(g);
    int64_t took = sg_now_ns() - asked;
    sg_status st;
    sg_get_status(g, &st);
    CHECK(st.fault == SG_FAULT_UNRESPONSIVE, "fault %d %s", st.fault, st.fault_text);
    CHECK(atomic_load(&h->forced_safe) == 1, "ENABLE not forced off by the caller");
    CHECK(took >= 400 * 1000000LL, "abort returned after %lld ms", (long long)(took / 1000000));
    CHECK(sg_run(g, 1000, 1, 200000, sg_now_ns(), 0) == -EPERM, "run accepted while unresponsive");
    atomic_store(&h->hang, 0); /* the thread comes back: it takes the abort, not a new run */
    sleep_ms(50);
    sg_get_status(g, &st);
    CHECK(!st.moving && st.count <= c + 1, "moving %d count %llu after %llu", st.moving,
          (unsigned long long)st.count, (unsigned long long)c);
    sg_free(g);
}

/* The floor probe wakes n times, never before its time, and refuses bad arguments. */
static void test_probe(void)
{
    static int64_t lat[200];
    char err[256] = "";
    int sched = 0;
    int64_t t0 = sg_now_ns();
    long n = sg_probe(0, t0, 1000, 1, 250000, 200, 0, lat, &sched, err, sizeof(err));
    CHECK(n == 200, "probe returned %ld: %s", n, err);
    int64_t min = INT64_MAX;
    for (long i = 0; i < n; i++)
        if (lat[i] < min)
            min = lat[i];
    CHECK(min >= 0, "a wake-up came %lld ns early", (long long)-min);
    CHECK(sched == SG_SCHED_OTHER_SLACK || sched == SG_SCHED_OTHER, "sched %d", sched);
    CHECK(sg_now_ns() >= t0 + 200 * 1000000LL + 250000, "returned before the last wake-up");
    CHECK(sg_probe(0, t0, 0, 1, 0, 10, 0, lat, NULL, err, sizeof(err)) == -EINVAL &&
              strstr(err, "must be > 0") != NULL, "%s", err);
    CHECK(sg_probe(100, t0, 1, 1, 0, 10, 0, lat, NULL, err, sizeof(err)) == -EINVAL, "prio");
}

static void test_chardev_absent(void)
{
    char dir[] = "/tmp/sg-nochip-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char err[512] = "";
    uint32_t offsets[SG_NUM_LINES] = {17, 27, 22};
    sg_backend *b = sg_backend_chardev_open(dir, "pinctrl-bcm2711,pinctrl-rp1", offsets, 1, err,
                                            sizeof(err));
    CHECK(b == NULL, "opened a chip in an empty directory");
    CHECK(strstr(err, "no GPIO chip labelled pinctrl-bcm2711,pinctrl-rp1") != NULL, "%s", err);
    rmdir(dir);
    b = sg_backend_chardev_open(NULL, "/dev/gpiochip-nonexistent", offsets, 1, err, sizeof(err));
    CHECK(b == NULL && strstr(err, "cannot open GPIO chip") != NULL, "%s", err);
}

int main(void)
{
    test_wide();
    test_schedule();
    test_pulses();
    test_rate_cap();
    test_budget();
    test_deadman();
    test_abort();
    test_sr9_caller_holding_the_lock_stalls_no_edge_and_no_deadman();
    test_blocks_when_nothing_is_due();
    test_spin_window_from_measured_latency();
    test_sr9_unresponsive_thread_is_latched_and_enable_forced_off();
    test_probe();
    test_chardev_absent();
    printf("stepgen: %d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
