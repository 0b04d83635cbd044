/* stepgen.h: the one public header of the native step-pulse generator (schedule, RT thread, backends). */
#ifndef PCA_STEPGEN_H
#define PCA_STEPGEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Schedule arithmetic (shared by the real-time thread and virtual time) ----
 * Step k (k >= 1) of a segment that began at t0 at num/den steps per second is at
 *   t0 + floor(k * den * 1e9 / num) ns,
 * computed exactly in 128 bits (native/wide.h, also on 32-bit ARM), so no product a 72-hour
 * infusion can reach overflows.
 * Both return 0, or -EINVAL (num == 0 / den == 0 / k == 0) or -ERANGE (result does
 * not fit), and never wrap silently. */
int sg_step_time(int64_t t0_ns, uint64_t k, uint64_t num, uint64_t den, int64_t *out_ns);
/* How many steps of such a segment are made at or before t_ns (0 before t0 or at num == 0). */
int sg_steps_by(int64_t t0_ns, int64_t t_ns, uint64_t num, uint64_t den, uint64_t *out_steps);

/* ---- Lines ---- */
enum { SG_LINE_STEP = 0, SG_LINE_DIR = 1, SG_LINE_ENABLE = 2, SG_NUM_LINES = 3 };

/* One edge as the simulated backend saw it: logical values (ENABLE 1 = driver enabled). */
typedef struct sg_edge {
    int64_t t_ns; /* CLOCK_MONOTONIC */
    uint8_t line;
    uint8_t value;
} sg_edge;

typedef struct sg_backend sg_backend;

/* What a backend implements; the generator calls it from the pulse thread only. */
struct sg_backend {
    /* Drive the lines in `mask` (bit per SG_LINE_*) to `values`; *t_ns = when. 0 or -errno. */
    int (*set)(sg_backend *b, unsigned mask, unsigned values, int64_t *t_ns);
    /* Simulated backend only (else NULL): see sg_read_edges. */
    long (*read_edges)(sg_backend *b, sg_edge *out, size_t max, uint64_t *dropped);
    void (*close)(sg_backend *b);
    /* Give the pins back once the pulse thread has stopped (sg_stop), so another process can
     * claim them and the board's resistors hold them; NULL if there is nothing to give back. */
    void (*release)(sg_backend *b);
    /* set() may also be called from another thread (used only to force ENABLE off when
     * the pulse thread stops answering). */
    int concurrent_safe;
};

/* A backend that records every edge into a ring of `capacity` entries instead of driving pins. */
sg_backend *sg_backend_sim_open(size_t capacity, char *err, size_t errlen);
/* Linux GPIO character device (uapi v2). `labels` is a comma-separated list of chip labels
 * tried in order ("pinctrl-rp1,pinctrl-bcm2711,pinctrl-bcm2835"), or a path such as
 * /dev/gpiochip0; chips are looked for in `dev_dir` (NULL: /dev). `offsets` are the
 * STEP, DIR, ENABLE line offsets on that chip. NULL with a message in `err` on failure. */
sg_backend *sg_backend_chardev_open(const char *dev_dir, const char *labels,
                                    const uint32_t offsets[SG_NUM_LINES], int enable_active_low,
                                    char *err, size_t errlen);
/* Only for a backend never handed to sg_start (sg_start owns it afterwards). */
void sg_backend_close(sg_backend *b);

/* ---- The generator ---- */

/* The safety channel (SR-9). Copied at sg_start and never changeable afterwards. */
typedef struct sg_limits {
    uint32_t max_rate_hz;       /* no commanded rate and no catch-up spacing exceeds it */
    uint64_t budget_steps;      /* at most this many steps in any window of budget_window_ns */
    int64_t budget_window_ns;
    int64_t deadman_ns;         /* no heartbeat (or command) for this long while moving: stop */
    int64_t late_fault_ns;      /* a step later than this behind its schedule: fault (0: never) */
} sg_limits;

typedef struct sg_timing {
    int64_t step_high_ns;       /* STEP pulse width, >= 2000 (A4988, DRV8825, TMC2209) */
    int64_t dir_setup_ns;       /* DIR and ENABLE settled before a STEP rising edge, >= 1000 */
    int64_t spin_window_ns;     /* spin before an edge instead of sleeping: at most this long */
    /* 1: the spin is the p99.5 of the pulse thread's own measured wake-up latency (last 1024
     * timed wake-ups) plus a margin, at most spin_window_ns and at most spin_duty_permille
     * of the step period (the CPU it costs); 0: always spin_window_ns. */
    int spin_auto;
    int spin_duty_permille;
    int64_t nap_ns;             /* last stretch before the spin slept with clock_nanosleep */
    int rt_priority;            /* SCHED_FIFO priority to ask for; 0: do not ask */
    int lock_memory;            /* mlockall where permitted, else mlock of the thread's own memory */
    int cpu;                    /* -1: any CPU; else the pulse thread runs on this CPU only (one
                                 * kept out of the scheduler's balancing: isolcpus=, nohz_full=) */
} sg_timing;

void sg_limits_default(sg_limits *l);
void sg_timing_default(sg_timing *t);

enum sg_fault_code {
    SG_FAULT_NONE = 0,
    SG_FAULT_RATE_CAP = 1,
    SG_FAULT_BUDGET = 2,
    SG_FAULT_DEADMAN = 3,
    SG_FAULT_LATE = 4,
    SG_FAULT_BACKEND = 5,
    SG_FAULT_UNRESPONSIVE = 6,
};
const char *sg_fault_name(int code);

enum sg_sched { SG_SCHED_FIFO = 1, SG_SCHED_OTHER_SLACK = 2, SG_SCHED_OTHER = 3 };

typedef struct sg_status {
    uint64_t count;             /* steps made since start, only grows */
    uint64_t limit;             /* absolute count the current segment stops at */
    uint64_t rate_num, rate_den;
    int64_t seg_t0_ns;
    uint64_t seg_base;          /* count when the segment began */
    int moving;                 /* rate > 0 and count < limit */
    int enabled;                /* ENABLE line as last driven */
    int dir;
    int fault;                  /* enum sg_fault_code, latched */
    char fault_text[192];
    int sched;                  /* enum sg_sched obtained by the pulse thread */
    int memory_locked;
    int64_t max_late_ns;        /* worst lateness of any edge so far */
    uint64_t caught_up_steps;   /* steps made on a catch-up spacing after falling behind */
    int running;                /* the pulse thread is alive */
    int64_t cpu_ns;             /* CPU time the pulse thread used */
    int64_t spin_ns;            /* spin window used for the last planned edge */
    int64_t wake_p995_ns;       /* p99.5 of the measured wake-up latency (0: too few samples) */
    uint64_t wake_samples;      /* timed wake-ups measured so far */
    uint64_t wakeups;           /* times the pulse thread returned from a sleep */
    int tid;                    /* kernel thread id of the pulse thread (for /proc) */
} sg_status;

typedef struct sg_gen sg_gen;

/* Takes ownership of `backend` (also on failure). Starts the pulse thread. */
sg_gen *sg_start(sg_backend *backend, const sg_limits *limits, const sg_timing *timing,
                 char *err, size_t errlen);
/* Stops and joins the pulse thread and leaves STEP low and ENABLE off; idempotent.
 * Status and recorded edges stay readable until sg_free. */
void sg_stop(sg_gen *g);
void sg_free(sg_gen *g); /* sg_stop, then release everything */

/* The pulse thread takes no lock a caller can hold: commands go through a ring it polls,
 * a futex doorbell wakes it, and it answers on a futex it only wakes. Callers are
 * serialised among themselves; every call below is safe from any thread.
 *
 * Step at num/den steps/s until the cumulative count reaches `limit`; see the Motor port.
 * Same rate on a moving segment: only the limit moves; else a new segment from now_ns.
 * Returns once the pulse thread has taken the command: 0; -EINVAL for a limit below the
 * count; -EDOM for a now_ns far from CLOCK_MONOTONIC; -EPIPE after sg_stop; -EPERM when a
 * fault is latched (nothing changes), this command tripped the rate cap, or the thread did
 * not answer within 500 ms (latched as unresponsive). */
int sg_run(sg_gen *g, uint64_t num, uint64_t den, uint64_t limit, int64_t now_ns, int dir);
/* Stop now, mid-move, ENABLE off; waits for the thread (bounded); returns the count. */
uint64_t sg_abort(sg_gen *g);
void sg_heartbeat(sg_gen *g);           /* one atomic store: never waits */
uint64_t sg_count(sg_gen *g);           /* steps made so far: one atomic load */
void sg_get_status(sg_gen *g, sg_status *st); /* a consistent snapshot; never blocks the thread */
/* Clear a latched fault (the driver stays disabled; the budget history is kept). */
void sg_clear_fault(sg_gen *g);
/* Copy up to `max` recorded edges out of a simulated backend's ring (oldest first);
 * returns how many, or -ENOTSUP for another backend. *dropped: edges lost to a full ring. */
long sg_read_edges(sg_gen *g, sg_edge *out, size_t max, uint64_t *dropped);

int64_t sg_now_ns(void);

/* ---- The machine's floor ----
 * Wakes `n` times at t0_ns + phase_ns + floor(k * den * 1e9 / num) (k = 1..n) from a thread
 * set up as the pulse thread is (SCHED_FIFO rt_priority, timer slack 1 ns, signals blocked,
 * stack and output pre-faulted, memory locked if asked), sleeping as it sleeps (an absolute
 * CLOCK_MONOTONIC futex timeout), and writes each wake-up's lateness to out[k-1]. Blocks
 * the caller until done. Returns n, or -errno with a message in err. *sched: enum sg_sched. */
long sg_probe(int rt_priority, int64_t t0_ns, uint64_t num, uint64_t den, int64_t phase_ns,
              uint64_t n, int lock_memory, int64_t *out, int *sched, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
