"""`pca bench power`: what the daemon costs at rest and at work, event-driven against fixed tick.

Each case runs the daemon's own wiring (`pca run --sim`: the real controller, SQLite event
log, native pulse thread on its simulated backend, gpiozero inputs on a MockFactory) for
the same wall-clock period, in two variants measured in the same run:

- event-driven: `SleepingLoop` and the input thread that sleeps at rest (production);
- fixed-tick: `daemon.ControlLoop` every 50 ms and the input thread every 10 ms (the
  loop as it was, kept for exactly this comparison).

Cases: idle (programmed, stopped), basal_1 (1 mL/h), basal_10 (10 mL/h), bolus (PCA-only
prescription, the patient presses the cord button every few seconds; each dose runs at
the bolus rate). Figures: CPU of the daemon's threads (schedstat run time, the bench's
own thread excluded) as % of one core and CPU seconds per hour; wake-ups per second per
thread (voluntary + nonvoluntary context switches in /proc/self/task/*/status); and, in
the bolus case, the latency from the button's edge (the mock pin driven active) to the
first STEP edge the simulated backend records. Nothing is asserted: printed figures, with
the same-run baseline beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from pca.app.config import Config
from pca.app.daemon import ControlLoop, wire
from pca.app.notify import Notifier
from pca.app.sleeploop import SleepingLoop
from pca.controller import auth
from pca.controller.inputs import ClinicianCommand, PanelCommand
from pca.controller.profile import PumpProfile
from pca.hw.motor import LINE_STEP
from pca.store.eventlog import SqliteEventLog
from pca.therapy.drugs import parse_library

CASES = ("idle", "basal_1", "basal_10", "bolus")
VARIANTS = ("event-driven", "fixed-tick")
PIN = "482916"
LIBRARY = [{
    "name": "benchmorphine", "unit": "mg", "concentrations_per_ml": [1.0],
    "dose_limit_required": True,
    "limits": {
        "basal_rate_per_h": [0.0, 0.0, 20.0, 20.0],
        "pca_dose": [0.01, 0.01, 2.0, 2.0],
        "lockout_min": [0.05, 0.05, 60, 60],
        "dose_limit_window_h": [1, 1, 12, 12],
        "max_pca_per_h": [1, 1, 60, 60],
        "dose_limit": [0.1, 0.1, 100.0, 100.0],
        "loading_dose": [0.0, 0.0, 1.0, 1.0],
        "clinician_bolus_max": [0.0, 0.0, 1.0, 1.0],
    }}]
PROFILE = PumpProfile(bolus_rate_ml_h=Fraction(60), syringe_ml=Fraction(100), rtc=True)
PRESS_EVERY_S = 3.3  # just past the 3 s lockout, so every press is granted
# Implied runtime on a Raspberry Pi Zero 2 W from a 10 Wh pack. Idle 0.60 W: 120 mA at 5 V,
# measured with an Otii Arc on Raspberry Pi OS Bullseye (CNX Software, "A deep dive into
# Raspberry Pi Zero 2 W's power consumption", 2021-12-09). ASSUMED, to be measured on the
# pump: a busy Cortex-A53 core adds 0.48 W (about 2.5 W with all four loaded), and one of
# its cores does the work of this machine's core in 5x the time. The stepper's own draw is
# the same in both variants and is left out; so is the deeper idle that fewer wake-ups buy.
PACK_WH = 10.0
ZERO2W_IDLE_W = 0.60
ZERO2W_CORE_W = 0.48
ZERO2W_SLOWER = 5.0


def runtime_h(cpu_pct: float) -> float:
    """Hours a PACK_WH pack lasts a Pi Zero 2 W running this load (model above)."""
    return PACK_WH / (ZERO2W_IDLE_W + ZERO2W_CORE_W * min(4.0, ZERO2W_SLOWER * cpu_pct / 100))


def _rx(basal_ml_h: float) -> dict[str, Any]:
    return {"drug": "benchmorphine", "concentration_per_ml": 1.0, "dose_unit": "mg",
            "basal_rate_per_h": basal_ml_h, "pca_dose": 0.02, "lockout_min": 0.05,
            "max_pca_per_h": 60, "dose_limit": 100.0, "dose_limit_window_h": 1}


def _tasks() -> dict[int, tuple[int, int]]:
    """tid -> (context switches, ns on CPU) for every thread of this process."""
    out: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc/self/task"):
        try:
            status = Path(f"/proc/self/task/{name}/status").read_text()
            run_ns = int(Path(f"/proc/self/task/{name}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
        switches = 0
        for line in status.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                switches += int(line.split()[1])
        out[int(name)] = (switches, run_ns)
    return out


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class CaseResult:
    case: str
    variant: str
    seconds: float
    cpu_pct: float
    wakeups_per_s: float
    threads: dict[str, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    thread_cpu: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        p50 = _percentile(self.latencies_ms, 0.5)
        p99 = _percentile(self.latencies_ms, 0.99)
        return {"case": self.case, "variant": self.variant, "cpu_pct": round(self.cpu_pct, 3),
                "cpu_s_per_h": round(self.cpu_pct * 36, 2),
                "wakeups_per_s": round(self.wakeups_per_s, 2),
                "wakeups_per_s_by_thread": {k: round(v, 2) for k, v in self.threads.items()},
                "cpu_pct_by_thread": {k: round(v, 3) for k, v in self.thread_cpu.items()},
                "press_to_step_p50_ms": None if p50 is None else round(p50, 2),
                "press_to_step_p99_ms": None if p99 is None else round(p99, 2),
                "presses": len(self.latencies_ms),
                "pi_zero_2w_10wh_runtime_h": round(runtime_h(self.cpu_pct), 2)}


def run_case(case: str, variant: str, seconds: float, workdir: Path,
             rng: random.Random) -> CaseResult:
    db = workdir / f"{case}-{variant}.db"
    log = SqliteEventLog(db)
    log.set_pin_hash("clinician", auth.hash_pin(PIN))
    log.close()
    library = parse_library(LIBRARY, "bench library")
    wiring = wire(Config(profile=PROFILE), sim=True, db=db, library=library)
    if wiring.problems:
        raise RuntimeError(f"self test: {wiring.problems}")
    pump, panel, motor = wiring.pump, wiring.panel, wiring.motor
    fixed = variant == "fixed-tick"
    notifier = Notifier(address="")
    loop: ControlLoop | SleepingLoop = (ControlLoop(wiring, 50, notifier) if fixed
                                        else SleepingLoop(wiring, 50, notifier))
    basal = {"idle": 1.0, "basal_1": 1.0, "basal_10": 10.0, "bolus": 0.0}[case]
    pump.put(ClinicianCommand("program", PIN, {"prescription": _rx(basal)}))
    if case != "idle":
        pump.put(PanelCommand("start"))
    with wiring.stack:
        poller = wiring.hardware.start(sleep_at_rest=not fixed)
        thread = threading.Thread(target=loop.run, name="pca-loop", daemon=True)
        thread.start()
        time.sleep(1.5)  # program, start, settle
        names = {thread.native_id: "control loop", poller._thread.native_id: "inputs"}
        me = threading.get_native_id()
        motor.edges()
        before, t0 = _tasks(), time.monotonic_ns()
        latencies: list[float] = []
        end = t0 + int(seconds * 1e9)
        next_press = t0 + int(rng.uniform(0.2, 1.0) * 1e9)
        while True:
            now = time.monotonic_ns()
            if now >= end:
                break
            if case != "bolus" or next_press > end:
                time.sleep((end - now) / 1e9)
                continue
            time.sleep(max(0, next_press - now) / 1e9)
            pressed_ns = time.monotonic_ns()
            panel.press_button()
            time.sleep(0.2)
            panel.release_button()
            time.sleep(0.5)
            steps = [t for t, line, value in motor.edges()
                     if line == LINE_STEP and value == 1 and t >= pressed_ns]
            if steps:
                latencies.append((steps[0] - pressed_ns) / 1e6)
            next_press = pressed_ns + int((PRESS_EVERY_S + rng.uniform(0, 0.3)) * 1e9)
        after, t1 = _tasks(), time.monotonic_ns()
        loop.stop.set()
        thread.join(5)
        wiring.pump.shutdown()
        wiring.hardware.stop()
    span_s = (t1 - t0) / 1e9
    threads: dict[str, float] = {}
    thread_cpu: dict[str, float] = {}
    cpu_ns = switches = 0
    for tid, (sw, run_ns) in after.items():
        if tid == me:
            continue  # the bench's own thread (presses, sleeps) is not the daemon
        sw0, run0 = before.get(tid, (0, 0))
        name = names.get(tid, "pulse+other")  # the native pulse thread (and any other)
        threads[name] = threads.get(name, 0.0) + (sw - sw0) / span_s
        thread_cpu[name] = thread_cpu.get(name, 0.0) + 100 * (run_ns - run0) / (t1 - t0)
        switches += sw - sw0
        cpu_ns += run_ns - run0
    return CaseResult(case, variant, span_s, 100 * cpu_ns / (t1 - t0), switches / span_s,
                      threads, latencies, thread_cpu)


def bench_power(seconds: float, cases: tuple[str, ...] = CASES,
                seed: int = 1) -> list[CaseResult]:
    auth.SCRYPT_N = 2**10  # PIN hashing cost is not what is measured here
    rng = random.Random(seed)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            for variant in VARIANTS:
                results.append(run_case(case, variant, seconds, Path(tmp), rng))
    return results


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


def run(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="pca bench power", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0,
                    help="wall-clock period of each case and variant (default 20)")
    ap.add_argument("--case", action="append", choices=CASES,
                    help="run only this case (repeatable)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.seconds < 2:
        ap.error("--seconds must be at least 2")
    results = bench_power(args.seconds, tuple(args.case or CASES))
    rows = [r.row() for r in results]
    print(f"pca bench power: {args.seconds:g} s per case and variant, "
          "daemon threads only (bench thread excluded)")
    print(f"{'case':9} {'variant':13} {'cpu %':>7} {'cpu s/h':>8} {'wake/s':>7} "
          f"{'p50 ms':>7} {'p99 ms':>7}  by thread: wake-ups/s, cpu %")
    for r in rows:
        by = ", ".join(f"{k} {v:g}/s {r['cpu_pct_by_thread'].get(k, 0):.3f}%"
                       for k, v in sorted(r["wakeups_per_s_by_thread"].items()))
        print(f"{r['case']:9} {r['variant']:13} {r['cpu_pct']:7.3f} {r['cpu_s_per_h']:8.2f} "
              f"{r['wakeups_per_s']:7.2f} {_fmt(r['press_to_step_p50_ms']):>7} "
              f"{_fmt(r['press_to_step_p99_ms']):>7}  {by}")
    print(f"implied runtime, Pi Zero 2 W on a {PACK_WH:g} Wh pack (idle {ZERO2W_IDLE_W} W "
          f"measured by CNX Software; +{ZERO2W_CORE_W} W per busy core and {ZERO2W_SLOWER:g}x "
          "slower cores assumed; stepper excluded):")
    for r in rows:
        print(f"  {r['case']:9} {r['variant']:13} {r['pi_zero_2w_10wh_runtime_h']:6.2f} h")
    if args.json:
        try:
            Path(args.json).write_text(json.dumps({"seconds": args.seconds, "cases": rows},
                                                  indent=1) + "\n")
        except OSError as err:
            print(f"pca bench power: cannot write {args.json}: {err}")
            return 2
    return 0
