"""`pca bench stepgen`: step timing of the native pulse generator against Python, under load.

Every variant steps the same schedule (step k at t0 + floor(k * 1e9 / rate) ns) and
leaves edges in the same form, (CLOCK_MONOTONIC ns, line, value): the native one on its
simulated backend, the Python ones by timestamping their own "edges". Lateness is each
STEP rising edge minus its planned time. If cyclictest (Debian rt-tests) is installed,
its figures under the same loads are the machine's floor.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import pca._stepgen as _stepgen
from pca.controller.ports import StepRate
from pca.hw.motor import LINE_DIR, LINE_ENABLE, LINE_STEP, NativeMotor, PulseTiming, SafetyLimits

RATES_HZ = (258, 43, 1000)
LOADS = ("idle", "python-thread", "sqlite")
STEP_HIGH_NS = 2_500
DIR_SETUP_NS = 1_500
Edge = tuple[int, int, int]


@dataclass(frozen=True)
class Result:
    variant: str
    load: str
    rate_hz: int
    p50_us: float
    p99_us: float
    p999_us: float
    max_us: float
    early_edges: int
    step_error: int
    min_pulse_us: float | None
    min_dir_setup_us: float | None
    cpu_pct: float
    note: str = ""


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


# ---- variants ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    edges: list[Edge]
    t0_ns: int
    steps: int
    cpu_ns: int
    wall_ns: int
    note: str = ""


def _python_variant(busy: bool) -> Callable[[int, int], Run]:
    def go(rate_hz: int, steps: int) -> Run:
        out: dict[str, Any] = {}

        def stepper() -> None:
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


def _native_variant(timing: PulseTiming,
                    want_sched: str | None = None) -> Callable[[int, int], Run]:
    def go(rate_hz: int, steps: int) -> Run:
        limits = SafetyLimits(max_rate_hz=2000, budget_steps=1 << 22, budget_window_s=3600)
        with NativeMotor(limits, steps_per_ml=Fraction(15480), timing=timing,
                         ring_capacity=4 * steps + 64) as motor:
            status = motor.status()
            cpu0 = status["cpu_ns"]
            t0 = time.monotonic_ns()
            motor.run(StepRate(rate_hz), steps, t0)
            while motor.count(0) < steps and motor.fault() is None:
                motor.heartbeat(0)
                time.sleep(0.02)
            wall = time.monotonic_ns() - t0
            cpu = motor.status()["cpu_ns"] - cpu0
            time.sleep(0.03)  # the last pulse and the idle disable
            edges = motor.edges()
            fault = motor.fault()
        note = status["sched"] + ("" if status["memory_locked"] else ", memory not locked")
        if want_sched and status["sched"] != want_sched:
            note += f" (wanted {want_sched})"
        if fault:
            note += f"; FAULT {fault}"
        return Run(edges, t0, steps, cpu, wall, note)

    return go


def variants() -> dict[str, Callable[[int, int], Run]]:
    return {
        "python-sleep": _python_variant(busy=False),
        "python-busy": _python_variant(busy=True),
        "native": _native_variant(PulseTiming(), "SCHED_FIFO"),
        "native-spin0": _native_variant(PulseTiming(spin_window_ns=0), "SCHED_FIFO"),
        "native-nap1ms": _native_variant(PulseTiming(nap_ns=1_000_000), "SCHED_FIFO"),
        "native-other": _native_variant(PulseTiming(rt_priority=0)),
    }


# ---- analysis ----------------------------------------------------------------------------
def _percentile(sorted_values: list[int], q: float) -> int:
    if not sorted_values:
        return 0
    i = min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


def analyse(variant: str, load_name: str, rate_hz: int, run: Run) -> Result:
    rising: list[int] = []
    pulses: list[int] = []
    setups: list[int] = []
    high_at: int | None = None
    changed_at: int | None = None
    for t, line, value in run.edges:
        if line in (LINE_DIR, LINE_ENABLE):
            changed_at = t
        elif value:
            rising.append(t)
            high_at = t
            if changed_at is not None:
                setups.append(t - changed_at)
                changed_at = None
        elif high_at is not None:
            pulses.append(t - high_at)
            high_at = None
    late = sorted(t - _stepgen.step_time(run.t0_ns, k, rate_hz, 1)
                  for k, t in enumerate(rising, start=1))
    return Result(
        variant=variant, load=load_name, rate_hz=rate_hz,
        p50_us=_percentile(late, 0.50) / 1000, p99_us=_percentile(late, 0.99) / 1000,
        p999_us=_percentile(late, 0.999) / 1000, max_us=(late[-1] if late else 0) / 1000,
        early_edges=sum(1 for x in late if x < 0), step_error=len(rising) - run.steps,
        min_pulse_us=min(pulses) / 1000 if pulses else None,
        min_dir_setup_us=min(setups) / 1000 if setups else None,
        cpu_pct=100 * run.cpu_ns / run.wall_ns if run.wall_ns else 0.0, note=run.note)


# ---- cyclictest (the machine's floor) ----------------------------------------------------
def cyclictest(load_name: str, seconds: float) -> Result | None:
    exe = shutil.which("cyclictest")
    if exe is None:
        return None
    loops = max(100, int(seconds * 1000))
    cmd = [exe, "-m", "-p", "90", "-i", "1000", "-l", str(loops), "-q", "-t", "1", "-h", "20000"]
    with load(load_name):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 3 + 30)
    hist: list[int] = []
    max_us = 0
    for line in proc.stdout.splitlines():
        if m := re.match(r"^(\d+)\s+(\d+)$", line.strip()):
            hist.extend([int(m.group(1)) * 1000] * int(m.group(2)))
        elif m := re.match(r"# Max Latencies:\s+(\d+)", line):
            max_us = int(m.group(1))
    if not hist:
        return None
    hist.sort()
    return Result("cyclictest", load_name, 1000, _percentile(hist, 0.5) / 1000,
                  _percentile(hist, 0.99) / 1000, _percentile(hist, 0.999) / 1000,
                  float(max_us), 0, 0, None, None, 0.0, "floor: wake-up latency, SCHED_FIFO 90")


# ---- driver ----------------------------------------------------------------------------
def _loadavg() -> str:
    # Other work on a shared machine shows up in every row; say how busy it was.
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return "load average " + " ".join(f.read().split()[:3])
    except OSError:
        return "load average unknown"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_table(results: list[Result]) -> None:
    head = (f"{'variant':<14} {'load':<13} {'rate':>5} {'p50us':>8} {'p99us':>8} {'p99.9us':>8} "
            f"{'maxus':>8} {'early':>5} {'err':>4} {'pulse':>6} {'dirset':>8} {'cpu%':>6}  note")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r.variant:<14} {r.load:<13} {r.rate_hz:>5} {r.p50_us:>8.1f} {r.p99_us:>8.1f} "
              f"{r.p999_us:>8.1f} {r.max_us:>8.1f} {r.early_edges:>5} {r.step_error:>4} "
              f"{_fmt(r.min_pulse_us):>6} {_fmt(r.min_dir_setup_us):>8} {r.cpu_pct:>6.2f}  "
              f"{r.note}", flush=True)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pca bench stepgen", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (CI): well under 1 min")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--seconds", type=float, help="length of each run (default 4, quick 0.3)")
    parser.add_argument("--variant", action="append", help="only these variants (repeatable)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a target below is missed (for a quiet machine)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (0.3 if args.quick else 4.0)
    chosen = variants()
    if args.variant:
        unknown = set(args.variant) - set(chosen)
        if unknown:
            parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(chosen)}")
        chosen = {k: v for k, v in chosen.items() if k in args.variant}

    results: list[Result] = []
    print(f"pca bench stepgen: {seconds:g} s per run, lateness of STEP rising edges "
          f"against the planned schedule; {os.cpu_count()} CPUs, {_loadavg()}", flush=True)
    for load_name in LOADS:
        for rate_hz in RATES_HZ:
            # At least a few steps even at 43/s in a quick run.
            steps = max(10, int(rate_hz * seconds))
            for name, variant in chosen.items():
                with load(load_name):
                    outcome = variant(rate_hz, steps)
                results.append(analyse(name, load_name, rate_hz, outcome))
    for load_name in LOADS:
        floor = cyclictest(load_name, seconds)
        if floor is not None:
            results.append(floor)
    print_table(results)
    print(f"after the runs: {_loadavg()} (the bench itself adds about 1)")
    if shutil.which("cyclictest") is None:
        print("(cyclictest not installed: apt-get install rt-tests for the machine's floor)")
    missed = check_targets(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"seconds_per_run": seconds, "runs": [asdict(r) for r in results],
                       "missed_targets": missed}, f, indent=2)
    return 1 if args.check and missed else 0


def check_targets(results: list[Result]) -> list[str]:
    """Print the issue's targets against this run; return the ones missed."""
    missed: list[str] = []

    def verdict(ok: bool, text: str) -> None:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
        if not ok:
            missed.append(text)

    print("targets:")
    stepped = [r for r in results if r.variant != "cyclictest"]
    by_key = {(r.variant, r.load, r.rate_hz): r for r in stepped}
    for rate_hz in RATES_HZ:
        slow = by_key.get(("python-sleep", "python-thread", rate_hz))
        fast = by_key.get(("native", "python-thread", rate_hz))
        if slow and fast:
            ratio = slow.p99_us / max(fast.p99_us, 0.001)
            verdict(ratio >= 20, f"native p99 {fast.p99_us:.1f} us vs python-sleep "
                    f"{slow.p99_us:.1f} us under python-thread at {rate_hz}/s: "
                    f"{ratio:.0f}x (>= 20x)")
    native = [r for r in stepped if r.variant == "native"]
    if native:
        worst = max(r.p50_us for r in native)
        verdict(worst < 5, f"native p50 under 5 us everywhere (worst {worst:.1f} us)")
        cpu = [r.cpu_pct for r in native if r.rate_hz == 258]
        if cpu:
            verdict(max(cpu) < 5, f"native CPU under 5% of a core at 258/s (worst {max(cpu):.2f}%)")
    verdict(all(r.early_edges == 0 for r in stepped), "zero early edges in every run")
    verdict(all(r.step_error == 0 for r in stepped), "step_error 0 in every run")
    pulses = [r.min_pulse_us for r in stepped if r.min_pulse_us is not None]
    setups = [r.min_dir_setup_us for r in stepped if r.min_dir_setup_us is not None]
    verdict(bool(pulses) and min(pulses) >= 2, "STEP high >= 2 us in every run")
    verdict(bool(setups) and min(setups) >= 1, "DIR/ENABLE set >= 1 us before STEP in every run")
    return missed
