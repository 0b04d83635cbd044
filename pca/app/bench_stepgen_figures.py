"""The figures of `pca bench stepgen`: lateness percentiles, the floor, cyclictest, rest."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pca._stepgen as _stepgen
from pca.app.bench_stepgen_runs import (
    NATIVE_MAX_RATE_HZ,
    Run,
    context_switches,
    load,
)
from pca.controller.ports import StepRate
from pca.hw.motor import LINE_DIR, LINE_ENABLE, NativeMotor, SafetyLimits


@dataclass(frozen=True)
class Result:
    variant: str
    load: str
    rate_hz: int
    edges: int
    p50_us: float
    p99_us: float
    p999_us: float
    max_us: float
    early_edges: int
    step_error: int
    min_pulse_us: float | None
    min_dir_setup_us: float | None
    cpu_pct: float
    spin_us: float | None = None          # native: median spin window over the run
    expect_p99_us: float | None = None    # native: what the floor predicts (expected_lateness)
    expect_p999_us: float | None = None
    floor_p99_us: float | None = None     # native: the same-time probe's p99 and p99.9
    floor_p999_us: float | None = None
    wakeups_per_s: float | None = None    # native: the pulse thread's context switches / s
    note: str = ""


# ---- analysis ----------------------------------------------------------------------------
def _percentile(sorted_values: list[int], q: float) -> int:
    if not sorted_values:
        return 0
    i = min(len(sorted_values) - 1, max(0, int(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


def _us(ns: float) -> float:
    return ns / 1000


def expected_lateness(floor_ns: list[int], spin_ns: int, rate_hz: int,
                      max_rate_hz: int = NATIVE_MAX_RATE_HZ) -> list[int]:
    """What the floor predicts for the generator: each wake-up `spin_ns` early, so an edge is
    late by max(0, floor - spin); and after falling behind, the safety channel's no-burst
    rule (SR-9: at most twice the rate, never above the cap) spaces the catch-up steps."""
    spacing = max(1_000_000_000 // (2 * rate_hz), 1_000_000_000 // max_rate_hz)
    out: list[int] = []
    prev_edge: int | None = None
    for k, wake_late in enumerate(floor_ns, start=1):
        planned = _stepgen.step_time(0, k, rate_hz, 1)
        edge = planned + max(0, wake_late - spin_ns)
        if prev_edge is not None and prev_edge + spacing > edge:
            edge = prev_edge + spacing
        out.append(edge - planned)
        prev_edge = edge
    return out


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
    extra: dict[str, Any] = {}
    if run.floor_ns is not None and run.spin_ns is not None:
        floor = sorted(run.floor_ns)
        expect = sorted(expected_lateness(run.floor_ns, run.spin_ns, rate_hz))
        extra = dict(spin_us=_us(run.spin_ns), expect_p99_us=_us(_percentile(expect, 0.99)),
                     expect_p999_us=_us(_percentile(expect, 0.999)),
                     floor_p99_us=_us(_percentile(floor, 0.99)),
                     floor_p999_us=_us(_percentile(floor, 0.999)))
    if run.wakeups is not None and run.wall_ns:
        extra["wakeups_per_s"] = run.wakeups * 1e9 / run.wall_ns
    return Result(
        variant=variant, load=load_name, rate_hz=rate_hz, edges=len(rising),
        p50_us=_us(_percentile(late, 0.50)), p99_us=_us(_percentile(late, 0.99)),
        p999_us=_us(_percentile(late, 0.999)), max_us=_us(late[-1] if late else 0),
        early_edges=sum(1 for x in late if x < 0), step_error=len(rising) - run.steps,
        min_pulse_us=_us(min(pulses)) if pulses else None,
        min_dir_setup_us=_us(min(setups)) if setups else None,
        cpu_pct=100 * run.cpu_ns / run.wall_ns if run.wall_ns else 0.0, note=run.note, **extra)


def floor_row(native: Result, run: Run) -> Result:
    """The same-time probe of a native run as a row of its own."""
    floor = sorted(run.floor_ns or [])
    return Result("floor", native.load, native.rate_hz, len(floor),
                  _us(_percentile(floor, 0.5)), _us(_percentile(floor, 0.99)),
                  _us(_percentile(floor, 0.999)), _us(floor[-1] if floor else 0),
                  sum(1 for x in floor if x < 0), 0, None, None, 0.0,
                  note="C probe: wake-up latency, same priority, same time, half a period "
                       "out of phase")


# ---- cyclictest (a sequential reference; the probe is the same-time floor) ---------------
def cyclictest(load_name: str, rate_hz: int, loops: int, priority: int) -> Result | None:
    exe = shutil.which("cyclictest")
    if exe is None:
        return None
    period_us = max(1, round(1e6 / rate_hz))
    cmd = [exe, "-m", "-p", str(priority), "-i", str(period_us), "-l", str(loops), "-q",
           "-t", "1", "-h", "20000"]
    with load(load_name):
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=loops / rate_hz * 3 + 30)
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
    return Result("cyclictest", load_name, rate_hz, len(hist), _us(_percentile(hist, 0.5)),
                  _us(_percentile(hist, 0.99)), _us(_percentile(hist, 0.999)), float(max_us),
                  0, 0, None, None, 0.0,
                  note=f"reference: wake-up latency, SCHED_FIFO {priority}, run afterwards")


# ---- the pulse thread at rest ------------------------------------------------------------
def rest_wakeups(seconds: float) -> list[tuple[str, float, float]]:
    """(case, pulse-thread wake-ups/s, steps/s) at rest and at a basal rate, with the
    control loop's 50 ms pattern of heartbeat, count and fault meanwhile."""
    limits = SafetyLimits(max_rate_hz=2000, budget_steps=1 << 20, budget_window_s=3600)
    out: list[tuple[str, float, float]] = []
    # 1 mL/h on the reference mechanism (15480 steps/mL) is 4.3 steps/s.
    for case, rate in (("at rest (halted)", None), ("basal 1 mL/h", StepRate(43, 10))):
        with NativeMotor(limits, steps_per_ml=Fraction(15480)) as motor:
            tid = int(motor.status()["tid"])
            if rate is not None:
                motor.run(rate, 1 << 20, time.monotonic_ns())
                time.sleep(0.3)
            steps0, switches0, t0 = motor.count(0), context_switches(tid), time.monotonic_ns()
            while time.monotonic_ns() - t0 < seconds * 1e9:
                motor.heartbeat(0)
                motor.count(0)
                motor.fault()
                time.sleep(0.05)
            wall_s = (time.monotonic_ns() - t0) / 1e9
            out.append((case, (context_switches(tid) - switches0) / wall_s,
                        (motor.count(0) - steps0) / wall_s))
    return out
