# _stepgen.pyx: Python binding of native/stepgen.h; it only marshals (no logic, no callbacks).
# cython: language_level=3, boundscheck=False, wraparound=False

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport strlen


cdef extern from "stepgen.h" nogil:
    enum:
        SG_LINE_STEP
        SG_LINE_DIR
        SG_LINE_ENABLE
        SG_NUM_LINES

    ctypedef struct sg_edge:
        int64_t t_ns
        uint8_t line
        uint8_t value

    ctypedef struct sg_backend:
        pass

    ctypedef struct sg_limits:
        uint32_t max_rate_hz
        uint64_t budget_steps
        int64_t budget_window_ns
        int64_t deadman_ns
        int64_t late_fault_ns

    ctypedef struct sg_timing:
        int64_t step_high_ns
        int64_t dir_setup_ns
        int64_t spin_window_ns
        int spin_auto
        int spin_duty_permille
        int64_t nap_ns
        int rt_priority
        int cpu
        int lock_memory

    ctypedef struct sg_status:
        uint64_t count
        uint64_t limit
        uint64_t rate_num
        uint64_t rate_den
        int64_t seg_t0_ns
        uint64_t seg_base
        int moving
        int enabled
        int dir
        int fault
        char fault_text[192]
        int sched
        int memory_locked
        int64_t max_late_ns
        uint64_t caught_up_steps
        int running
        int64_t cpu_ns
        int64_t spin_ns
        int64_t wake_p995_ns
        uint64_t wake_samples
        uint64_t wakeups
        int tid

    ctypedef struct sg_gen:
        pass

    int sg_step_time(int64_t t0_ns, uint64_t k, uint64_t num, uint64_t den,
                     int64_t *out_ns) noexcept nogil
    int sg_steps_by(int64_t t0_ns, int64_t t_ns, uint64_t num, uint64_t den,
                    uint64_t *out_steps) noexcept nogil
    sg_backend *sg_backend_sim_open(size_t capacity, char *err, size_t errlen) noexcept nogil
    sg_backend *sg_backend_chardev_open(const char *dev_dir, const char *labels,
                                        const uint32_t *offsets, int enable_active_low,
                                        char *err, size_t errlen) noexcept nogil
    void sg_limits_default(sg_limits *l) noexcept nogil
    void sg_timing_default(sg_timing *t) noexcept nogil
    const char *sg_fault_name(int code) noexcept nogil
    sg_gen *sg_start(sg_backend *backend, const sg_limits *limits, const sg_timing *timing,
                     char *err, size_t errlen) noexcept nogil
    void sg_stop(sg_gen *g) noexcept nogil
    void sg_free(sg_gen *g) noexcept nogil
    int sg_run(sg_gen *g, uint64_t num, uint64_t den, uint64_t limit, int64_t now_ns,
               int dir) noexcept nogil
    uint64_t sg_abort(sg_gen *g) noexcept nogil
    void sg_heartbeat(sg_gen *g) noexcept nogil
    uint64_t sg_count(sg_gen *g) noexcept nogil
    void sg_get_status(sg_gen *g, sg_status *st) noexcept nogil
    void sg_clear_fault(sg_gen *g) noexcept nogil
    long sg_read_edges(sg_gen *g, sg_edge *out, size_t max, uint64_t *dropped) noexcept nogil
    int64_t sg_now_ns() noexcept nogil
    long sg_probe(int rt_priority, int64_t t0_ns, uint64_t num, uint64_t den, int64_t phase_ns,
                  uint64_t n, int lock_memory, int64_t *out, int *sched, char *err,
                  size_t errlen) noexcept nogil


cdef extern from "<errno.h>":
    enum:
        EINVAL
        ERANGE
        EPERM
        EPIPE
        EDOM

LINE_STEP = SG_LINE_STEP
LINE_DIR = SG_LINE_DIR
LINE_ENABLE = SG_LINE_ENABLE
SCHED_NAMES = {1: "SCHED_FIFO", 2: "SCHED_OTHER+slack1ns", 3: "SCHED_OTHER"}
DEFAULT_CHIP_LABELS = "pinctrl-rp1,pinctrl-bcm2711,pinctrl-bcm2835"  # Pi 5, Pi 4, Pi 3


def _range_error(int rc, str what):
    if rc == -ERANGE:
        return OverflowError(f"{what} does not fit the 64-bit schedule")
    return ValueError(f"{what}: invalid arguments")


def step_time(int64_t t0_ns, uint64_t k, uint64_t num, uint64_t den) -> int:
    """Time of step k (k >= 1) of a segment begun at t0_ns at num/den steps/s."""
    cdef int64_t out = 0
    cdef int rc = sg_step_time(t0_ns, k, num, den, &out)
    if rc != 0:
        raise _range_error(rc, f"step {k} at {num}/{den} steps/s from {t0_ns} ns")
    return out


def steps_by(int64_t t0_ns, int64_t t_ns, uint64_t num, uint64_t den) -> int:
    """Steps of a segment begun at t0_ns made at or before t_ns."""
    cdef uint64_t out = 0
    cdef int rc = sg_steps_by(t0_ns, t_ns, num, den, &out)
    if rc != 0:
        raise _range_error(rc, f"steps by {t_ns} ns at {num}/{den} steps/s from {t0_ns} ns")
    return out


def now_ns() -> int:
    """CLOCK_MONOTONIC as the pulse thread reads it (the same clock as time.monotonic_ns)."""
    return sg_now_ns()


def probe(uint64_t num, uint64_t den, uint64_t count, int64_t t0_ns, *, int64_t phase_ns=0,
          int rt_priority=50, bint lock_memory=True) -> tuple:
    """(lateness_ns list, sched name): the machine's wake-up floor at num/den wake-ups/s,
    from a thread set up and sleeping as the pulse thread does (see sg_probe). Blocks
    without the GIL, so another Python thread can run the generator meanwhile."""
    cdef size_t slots = count if count > 0 else 1
    cdef int64_t *buf = <int64_t *>malloc(slots * sizeof(int64_t))
    cdef char err[256]
    cdef int sched = 0
    cdef long n
    cdef long i
    if buf == NULL:
        raise MemoryError()
    err[0] = 0
    try:
        with nogil:
            n = sg_probe(rt_priority, t0_ns, num, den, phase_ns, count, lock_memory, buf,
                         &sched, err, sizeof(err))
        if n < 0:
            raise ValueError(err[:strlen(err)].decode(errors="replace"))
        return [buf[i] for i in range(n)], SCHED_NAMES.get(sched, "unknown")
    finally:
        free(buf)


cdef class Generator:
    """One pulse thread over one backend; the safety limits are fixed here, at construction."""

    cdef sg_gen *_g
    cdef readonly str backend

    def __cinit__(self, str backend="sim", *, unsigned int max_rate_hz,
                  uint64_t budget_steps, int64_t budget_window_ns,
                  int64_t deadman_ns=1_000_000_000, int64_t late_fault_ns=500_000_000,
                  int64_t step_high_ns=2_500, int64_t dir_setup_ns=1_500,
                  int64_t spin_window_ns=1_000_000, bint spin_auto=True,
                  int spin_duty_permille=35, int64_t nap_ns=0,
                  int rt_priority=50, bint lock_memory=True, int cpu=-1,
                  size_t ring_capacity=1 << 20,
                  str chip_labels=DEFAULT_CHIP_LABELS, str dev_dir="/dev",
                  tuple offsets=(0, 0, 0), bint enable_active_low=True):
        cdef sg_limits lim
        cdef sg_timing tim
        cdef char err[512]
        cdef sg_backend *bk = NULL
        cdef uint32_t offs[3]
        cdef bytes labels_b = chip_labels.encode()
        cdef bytes dir_b = dev_dir.encode()
        cdef const char *labels_c = labels_b
        cdef const char *dir_c = dir_b
        err[0] = 0
        sg_limits_default(&lim)
        sg_timing_default(&tim)
        lim.max_rate_hz = max_rate_hz
        lim.budget_steps = budget_steps
        lim.budget_window_ns = budget_window_ns
        lim.deadman_ns = deadman_ns
        lim.late_fault_ns = late_fault_ns
        tim.step_high_ns = step_high_ns
        tim.dir_setup_ns = dir_setup_ns
        tim.spin_window_ns = spin_window_ns
        tim.spin_auto = spin_auto
        tim.spin_duty_permille = spin_duty_permille
        tim.nap_ns = nap_ns
        tim.rt_priority = rt_priority
        tim.lock_memory = lock_memory
        tim.cpu = cpu
        self.backend = backend
        if backend == "sim":
            with nogil:
                bk = sg_backend_sim_open(ring_capacity, err, sizeof(err))
        elif backend == "chardev":
            if len(offsets) != 3:
                raise ValueError("offsets must be (STEP, DIR, ENABLE) line offsets")
            for i in range(3):
                offs[i] = offsets[i]
            with nogil:
                bk = sg_backend_chardev_open(dir_c, labels_c, offs, enable_active_low,
                                             err, sizeof(err))
        else:
            raise ValueError(f"backend {backend!r} must be 'sim' or 'chardev'")
        if bk == NULL:
            raise OSError(err[:strlen(err)].decode(errors="replace"))
        with nogil:
            self._g = sg_start(bk, &lim, &tim, err, sizeof(err))
        if self._g == NULL:
            raise ValueError(err[:strlen(err)].decode(errors="replace"))

    def __dealloc__(self):
        if self._g != NULL:
            with nogil:
                sg_free(self._g)
            self._g = NULL

    def close(self) -> None:
        """Stop and join the pulse thread; STEP low, ENABLE off. Status stays readable."""
        with nogil:
            sg_stop(self._g)

    def run(self, uint64_t num, uint64_t den, uint64_t limit, int64_t now_ns,
            bint dir=False) -> bool:
        """False when a latched fault refused the command (or this command tripped the rate cap)."""
        cdef int rc
        with nogil:
            rc = sg_run(self._g, num, den, limit, now_ns, dir)
        if rc == 0:
            return True
        if rc == -EPERM:
            return False
        if rc == -EDOM:
            raise ValueError(f"now_ns {now_ns} is not CLOCK_MONOTONIC (time.monotonic_ns()) "
                             "within the deadman period")
        if rc == -EPIPE:
            raise RuntimeError("the pulse generator is closed")
        raise ValueError(f"limit {limit} is below the steps already made")

    def abort(self) -> int:
        cdef uint64_t count
        with nogil:
            count = sg_abort(self._g)
        return count

    def heartbeat(self) -> None:
        with nogil:
            sg_heartbeat(self._g)

    def clear_fault(self) -> None:
        with nogil:
            sg_clear_fault(self._g)

    def count(self) -> int:
        return sg_count(self._g)

    def status(self) -> dict:
        cdef sg_status st
        with nogil:
            sg_get_status(self._g, &st)
        return {
            "count": st.count, "limit": st.limit, "rate_num": st.rate_num,
            "rate_den": st.rate_den, "seg_t0_ns": st.seg_t0_ns, "seg_base": st.seg_base,
            "moving": bool(st.moving), "enabled": bool(st.enabled), "dir": st.dir,
            "fault": st.fault, "fault_name": sg_fault_name(st.fault).decode(),
            "fault_text": st.fault_text[:strlen(st.fault_text)].decode(errors="replace"),
            "sched": SCHED_NAMES.get(st.sched, "unknown"),
            "memory_locked": bool(st.memory_locked), "max_late_ns": st.max_late_ns,
            "caught_up_steps": st.caught_up_steps, "running": bool(st.running),
            "cpu_ns": st.cpu_ns, "spin_ns": st.spin_ns, "wake_p995_ns": st.wake_p995_ns,
            "wake_samples": st.wake_samples, "wakeups": st.wakeups, "tid": st.tid,
        }

    def edges(self, size_t max_edges=1 << 22) -> tuple:
        """(edges, dropped): recorded (t_ns, line, value) since the last call (sim backend)."""
        cdef size_t chunk = 65536
        cdef sg_edge *buf = <sg_edge *>malloc(chunk * sizeof(sg_edge))
        cdef long n = 0
        cdef long i
        cdef uint64_t dropped = 0
        cdef size_t want
        cdef size_t got = 0
        cdef list out = []
        if buf == NULL:
            raise MemoryError()
        try:
            while got < max_edges:
                want = min(chunk, max_edges - got)
                with nogil:
                    n = sg_read_edges(self._g, buf, want, &dropped)
                if n < 0:
                    raise ValueError("only the simulated backend records edges")
                for i in range(n):
                    out.append((buf[i].t_ns, buf[i].line, buf[i].value))
                got += <size_t>n
                if <size_t>n < want:
                    break
        finally:
            free(buf)
        return out, dropped
