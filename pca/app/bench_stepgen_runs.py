"""The loads and pulse-generator variants `pca bench stepgen` times, each giving its edges."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import pca._stepgen as _stepgen
from pca.controller.ports import StepRate
from pca.hw.motor import LINE_DIR, LINE_ENABLE, LINE_STEP, NativeMotor, PulseTiming, SafetyLimits

RATES_HZ = (258, 43, 1000)
LOADS = ("idle", "python-thread", "sqlite")
STEP_HIGH_NS = 2_500
DIR_SETUP_NS = 1_500
FULL_EDGES = 5_000
QUICK_SECONDS = 0.3
NATIVE_MAX_RATE_HZ = 2000
# t0 ahead of the commands, so the probe and the generator start together and neither is
# told after its first planned edge (under the python-thread load the main thread waits up to
# several 5 ms GIL switch intervals between two calls: with t0 20 ms ahead the first steps of
# a run were planned before the command arrived, and their catch-up filled the tail).
START_DELAY_NS = 250_000_000
Edge = tuple[int, int, int]
QUICK_NOTE = ("--quick: a few hundred edges per case; p99 and p99.9 from so few are NOT "
              "meaningful, and the tail targets are judged only on a full run")


# ---- loads -------------------------------------------------------------------------------
@contextmanager
def load(kind: str) -> Iterator[None]:
    """Run `kind` of background load in this process for the duration of the block."""
    stop = threading.Event()
    workers: list[threading.Thread] = []
    tmp = tempfile.TemporaryDirectory(prefix="pca-bench-")
    if kind == "python-thread":
        workers.append(threading.Thread(target=_python_burner, args=(stop,), daemon=True))
    elif kind == "sqlite":
        path = os.path.join(tmp.name, "load.db")
        workers.append(threading.Thread(target=_sqlite_writer, args=(stop, path), daemon=True))
    elif kind != "idle":
        raise ValueError(f"unknown load {kind!r}")
    for w in workers:
        w.start()
    try:
        time.sleep(0.05 if workers else 0)  # let the load get going
        yield
    finally:
        stop.set()
        for w in workers:
            w.join()
        tmp.cleanup()


def _python_burner(stop: threading.Event) -> None:
    # Pure Python work holds the GIL between the interpreter's switch intervals.
    while not stop.is_set():
        sum(i * i for i in range(2000))


def _sqlite_writer(stop: threading.Event, path: str) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS ev (id INTEGER PRIMARY KEY, body TEXT)")
    n = 0
    while not stop.is_set():
        db.execute("INSERT INTO ev (body) VALUES (?)", (f"event {n} " + "x" * 200,))
        db.commit()  # one fsync per event, like the event log
        n += 1
    db.close()


# ---- isolation ---------------------------------------------------------------------------
CPUSET_BALANCE = "/sys/fs/cgroup/cpuset/cpuset.sched_load_balance"


@contextmanager
def isolated(cpu: int) -> Iterator[str]:
    """What `isolcpus=<cpu>` gives a Pi, for the length of the block, as far as root can
    without a reboot: this process's other threads (the main thread, the loads) leave `cpu`,
    and with cgroup v1's cpuset the scheduler stops balancing load (so no CPU's tick kicks
    another). Yields what was done, for the header."""
    before = os.sched_getaffinity(0)
    others = before - {cpu}
    if not others:
        raise ValueError(f"--isolate needs a CPU besides {cpu}")
    os.sched_setaffinity(0, others)
    balance: str | None = None
    said = f"CPU {cpu} kept for the stepping thread, the rest of this process on " \
           f"{','.join(map(str, sorted(others)))}"
    try:
        with open(CPUSET_BALANCE, encoding="ascii") as f:
            balance = f.read().strip()
        with open(CPUSET_BALANCE, "w", encoding="ascii") as f:
            f.write("0")
        said += "; load balancing off (cpuset.sched_load_balance 0)"
    except OSError as err:
        said += f"; load balancing still on ({CPUSET_BALANCE}: {err.strerror})"
    try:
        yield said
    finally:
        if balance is not None:
            with open(CPUSET_BALANCE, "w", encoding="ascii") as f:
                f.write(balance)
        os.sched_setaffinity(0, before)


# ---- variants ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    edges: list[Edge]
    t0_ns: int
    steps: int
    cpu_ns: int
    wall_ns: int
    note: str = ""
    floor_ns: list[int] | None = None
    spin_ns: int | None = None
    wakeups: int | None = None
    tid: int | None = None


def _python_variant(busy: bool, on_cpu: int | None = None) -> Callable[[int, int], Run]:
    def go(rate_hz: int, steps: int) -> Run:
        out: dict[str, Any] = {}

        def stepper() -> None:
            if on_cpu is not None:  # where the native pulse thread would run
                os.sched_setaffinity(0, {on_cpu})
            edges: list[Edge] = []
            now = time.monotonic_ns
            cpu0 = time.thread_time_ns()
            t0 = now()
            edges.append((now(), LINE_ENABLE, 1))
            edges.append((now(), LINE_DIR, 1))
            for k in range(1, steps + 1):
                planned = _stepgen.step_time(t0, k, rate_hz, 1)
                if busy:
                    while now() < planned:
                        pass
                else:
                    while (left := planned - now()) > 0:
                        time.sleep(left / 1e9)
                t_high = now()
                edges.append((t_high, LINE_STEP, 1))
                while now() < t_high + STEP_HIGH_NS:
                    pass
                edges.append((now(), LINE_STEP, 0))
            edges.append((now(), LINE_ENABLE, 0))
            out.update(edges=edges, t0=t0, cpu=time.thread_time_ns() - cpu0, wall=now() - t0)

        thread = threading.Thread(target=stepper)
        thread.start()
        thread.join()
        return Run(out["edges"], out["t0"], steps, out["cpu"], out["wall"])

    return go


def context_switches(tid: int) -> int:
    """Voluntary + involuntary context switches of one thread of this process (0 if gone)."""
    try:
        with open(f"/proc/self/task/{tid}/status", encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return 0
    return int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])


def _native_variant(timing: PulseTiming, want_sched: str | None = None,
                    on_cpu: int | None = None) -> Callable[[int, int], Run]:
    """`on_cpu`: the pulse thread and its floor probe both run on that CPU only, so the floor
    is the wake-up latency of the CPU the edges are made on (on a VM each vCPU is preempted
    by the host on its own: a probe on the other vCPU measures a different machine)."""
    def go(rate_hz: int, steps: int) -> Run:
        limits = SafetyLimits(max_rate_hz=NATIVE_MAX_RATE_HZ, budget_steps=1 << 22,
                              budget_window_s=3600)
        floor: dict[str, Any] = {}
        pinned = timing if on_cpu is None else replace(timing, cpu=on_cpu)
        with NativeMotor(limits, steps_per_ml=Fraction(15480), timing=pinned,
                         ring_capacity=4 * steps + 64) as motor:
            status = motor.status()
            cpu0 = status["cpu_ns"]
            tid = int(status["tid"])
            t0 = time.monotonic_ns() + START_DELAY_NS

            def probe() -> None:
                if on_cpu is not None:  # the probe's C thread inherits this thread's CPUs
                    os.sched_setaffinity(0, {on_cpu})
                floor["lateness"], floor["sched"] = _stepgen.probe(
                    rate_hz, 1, steps, t0, phase_ns=500_000_000 // rate_hz,
                    rt_priority=timing.rt_priority, lock_memory=timing.lock_memory)

            switches0 = context_switches(tid)
            motor.run(StepRate(rate_hz), steps, t0)
            prober = threading.Thread(target=probe, name="pca-floor-probe")
            prober.start()
            issued_late_ns = time.monotonic_ns() - t0  # > 0: told after the first edge's time
            # The control loop's pattern: heartbeat and a count every 20 ms; the spin window
            # adapts as it goes, so the expectation uses its median over the run.
            spins: list[int] = []
            while motor.count(0) < steps and motor.fault() is None:
                motor.heartbeat(0)
                if motor.count(0) > 0:
                    spins.append(int(motor.status()["spin_ns"]))
                time.sleep(0.02)
            wall = time.monotonic_ns() - t0
            switches = context_switches(tid) - switches0
            end = motor.status()
            cpu = end["cpu_ns"] - cpu0
            time.sleep(0.03)  # the last pulse and the idle disable
            edges = motor.edges()
            fault = motor.fault()
            prober.join()
        note = status["sched"] + ("" if status["memory_locked"] else ", memory not locked")
        if on_cpu is not None:
            note += f", pulse+probe on CPU {on_cpu}"
        if want_sched and status["sched"] != want_sched:
            note += f" (wanted {want_sched})"
        if floor.get("sched") != status["sched"]:
            note += f"; probe {floor.get('sched')}"
        if fault:
            note += f"; FAULT {fault}"
        if issued_late_ns > 0:
            note += f"; commands issued {issued_late_ns / 1e6:.1f} ms after t0 (start in the tail)"
        return Run(edges, t0, steps, cpu, wall, note, floor_ns=floor.get("lateness"),
                   spin_ns=sorted(spins)[len(spins) // 2] if spins else int(end["spin_ns"]),
                   wakeups=switches, tid=tid)

    return go


def variants(cpu: int | None = None) -> dict[str, Callable[[int, int], Run]]:
    """Every variant by name; `cpu`: the stepping thread (and the native ones' probe) runs
    there only."""
    return {
        "python-sleep": _python_variant(busy=False, on_cpu=cpu),
        "python-busy": _python_variant(busy=True, on_cpu=cpu),
        "native": _native_variant(PulseTiming(), "SCHED_FIFO", on_cpu=cpu),
        "native-spin0": _native_variant(PulseTiming(spin_window_ns=0), "SCHED_FIFO", on_cpu=cpu),
        "native-nap1ms": _native_variant(PulseTiming(nap_ns=1_000_000), "SCHED_FIFO", on_cpu=cpu),
        "native-other": _native_variant(PulseTiming(rt_priority=0), on_cpu=cpu),
    }


DEFAULT_VARIANTS = ("native", "python-sleep")
