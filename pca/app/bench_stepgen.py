"""`pca bench stepgen`: native pulse timing against Python and against the floor, under load.

Every variant steps the same schedule (step k at t0 + floor(k * 1e9 / rate) ns) and
leaves edges in the same form, (CLOCK_MONOTONIC ns, line, value): the native one on its
simulated backend, the Python ones by timestamping their own "edges". Lateness is each
STEP rising edge minus its planned time.

The floor is measured in the same run and at the same time: while a native variant
steps, a C probe thread (native sg_probe: SCHED_FIFO at the pulse thread's priority, set
up and sleeping exactly as the pulse thread does) wakes at the same rate, half a period out
of phase, and records how late each wake-up is. A thread that wakes `spin` early and spins
is then expected to be late by max(0, floor - spin): that is the native rows' "exp"
column. (cyclictest from rt-tests, `make -C native rt-tests`, adds sequential reference
rows with --cyclictest; they are not from the same moment.) Full runs make at least
5,000 edges per case so a p99.9 means something; --quick runs do not and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict

from pca.app.bench_stepgen_figures import (
    Result,
    analyse,
    cyclictest,
    floor_row,
    rest_wakeups,
)
from pca.app.bench_stepgen_figures import expected_lateness as expected_lateness  # re-exported
from pca.app.bench_stepgen_runs import (
    DEFAULT_VARIANTS,
    FULL_EDGES,
    LOADS,
    QUICK_NOTE,
    QUICK_SECONDS,
    RATES_HZ,
    Run,
    isolated,
    load,
    variants,
)
from pca.hw.motor import PulseTiming


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
    head = (f"{'variant':<13} {'load':<13} {'rate':>4} {'edges':>5} {'p50us':>7} {'p99us':>7} "
            f"{'p99.9us':>8} {'maxus':>8} {'early':>5} {'err':>3} {'pulse':>5} {'dirset':>8} "
            f"{'cpu%':>5} {'spin':>5} {'exp99':>6} {'vs exp':>6} {'wake/s':>6}  note")
    print(head)
    print("-" * len(head))
    for r in results:
        vs = None if r.expect_p99_us is None else r.p99_us - r.expect_p99_us
        print(f"{r.variant:<13} {r.load:<13} {r.rate_hz:>4} {r.edges:>5} {r.p50_us:>7.1f} "
              f"{r.p99_us:>7.1f} {r.p999_us:>8.1f} {r.max_us:>8.1f} {r.early_edges:>5} "
              f"{r.step_error:>3} {_fmt(r.min_pulse_us):>5} {_fmt(r.min_dir_setup_us):>8} "
              f"{r.cpu_pct:>5.2f} {_fmt(r.spin_us):>5} {_fmt(r.expect_p99_us):>6} "
              f"{'-' if vs is None else f'{vs:+.1f}':>6} {_fmt(r.wakeups_per_s):>6}  {r.note}",
              flush=True)


def _pick_cpu(parser: argparse.ArgumentParser, text: str) -> int | None:
    allowed = sorted(os.sched_getaffinity(0))
    if text == "any":
        return None
    if text == "last":
        return allowed[-1] if len(allowed) > 1 else None
    if not text.isdigit() or int(text) not in allowed:
        parser.error(f"--cpu must be last, any or one of {', '.join(map(str, allowed))}")
    return int(text)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pca bench stepgen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SECONDS:g} s per case (CI); tails not meaningful")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--edges", type=int, default=FULL_EDGES,
                        help=f"at least this many edges per case (default {FULL_EDGES})")
    parser.add_argument("--seconds", type=float,
                        help="instead of --edges: this long per case (tails not meaningful "
                             f"below {FULL_EDGES} edges)")
    parser.add_argument("--variant", action="append",
                        help=f"only these variants (repeatable; default "
                             f"{', '.join(DEFAULT_VARIANTS)}; all: "
                             f"{', '.join(variants())})")
    parser.add_argument("--load", action="append", choices=LOADS,
                        help="only these loads (repeatable; default all)")
    parser.add_argument("--rate", action="append", type=int, choices=RATES_HZ,
                        help="only these rates (repeatable; default all)")
    parser.add_argument("--cyclictest", action="store_true",
                        help="also cyclictest reference rows (rt-tests: make -C native rt-tests)")
    parser.add_argument("--cpu", default="any", metavar="N|last|any",
                        help="the one CPU each stepping thread (and the native floor probe) "
                             "runs on (default any: not pinned; see --isolate)")
    parser.add_argument("--isolate", action="store_true",
                        help="root: as isolcpus= would, keep that CPU (--cpu, default the "
                             "last) for the stepping thread and turn load balancing off for "
                             "the run")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a target below is missed")
    args = parser.parse_args(argv)
    cpu = _pick_cpu(parser, "last" if args.isolate and args.cpu == "any" else args.cpu)
    if args.isolate and cpu is None:
        parser.error("--isolate needs two CPUs or more")
    chosen = variants(cpu)
    if args.variant:
        unknown = set(args.variant) - set(chosen)
        if unknown:
            parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(chosen)}")
        chosen = {k: v for k, v in chosen.items() if k in args.variant}
    else:
        chosen = {k: v for k, v in chosen.items() if k in DEFAULT_VARIANTS}
    if args.edges < 1:
        parser.error("--edges must be at least 1")
    seconds = QUICK_SECONDS if args.quick and args.seconds is None else args.seconds

    def steps_for(rate_hz: int) -> int:
        return max(10, int(rate_hz * seconds)) if seconds is not None else args.edges

    loads = tuple(args.load or LOADS)
    rates = tuple(args.rate or RATES_HZ)
    full = all(steps_for(r) >= FULL_EDGES for r in rates)
    sizing = (f"{seconds:g} s per case" if seconds is not None
              else f"{args.edges} edges per case")
    with ExitStack() as stack:
        pinned = "not pinned" if cpu is None else f"stepping thread and probe on CPU {cpu}"
        if args.isolate and cpu is not None:
            pinned = stack.enter_context(isolated(cpu))
        print(f"pca bench stepgen: {sizing}, lateness of STEP rising edges against the planned "
              f"schedule; {os.cpu_count()} CPUs ({pinned}), {_loadavg()}", flush=True)
        if not full:
            print(QUICK_NOTE if args.quick else
                  f"fewer than {FULL_EDGES} edges per case: tails not meaningful, targets not "
                  "judged", flush=True)
        results = _run_cases(chosen, loads, rates, steps_for, args.cyclictest)
    print_table(results)
    print(f"after the runs: {_loadavg()} (the bench itself adds about 1)")
    if args.cyclictest and shutil.which("cyclictest") is None:
        print("(cyclictest not installed: make -C native rt-tests; the probe rows are the floor)")
    rest = rest_wakeups(0.5 if not full else 5.0)
    print("pulse thread wake-ups (context switches from /proc/self/task/<tid>/status):")
    for case, per_s, steps_per_s in rest:
        print(f"  {case:<18} {per_s:7.1f} wake-ups/s  ({steps_per_s:.1f} steps/s)")
    missed = check_targets(results, judge_tails=full)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"edges_per_case": {str(r): steps_for(r) for r in rates},
                       "tails_meaningful": full, "runs": [asdict(r) for r in results],
                       "rest_wakeups": [{"case": c, "wakeups_per_s": w, "steps_per_s": st}
                                        for c, w, st in rest],
                       "missed_targets": missed}, f, indent=2)
    return 1 if args.check and missed else 0


def _run_cases(chosen: dict[str, Callable[[int, int], Run]], loads: tuple[str, ...],
               rates: tuple[int, ...], steps_for: Callable[[int], int],
               with_cyclictest: bool) -> list[Result]:
    results: list[Result] = []
    for load_name in loads:
        for rate_hz in rates:
            steps = steps_for(rate_hz)
            floor_done = False
            for name, variant in chosen.items():
                with load(load_name):
                    outcome = variant(rate_hz, steps)
                row = analyse(name, load_name, rate_hz, outcome)
                results.append(row)
                if outcome.floor_ns is not None and not floor_done:
                    results.append(floor_row(row, outcome))
                    floor_done = True
            if with_cyclictest:
                ref = cyclictest(load_name, rate_hz, steps, PulseTiming().rt_priority)
                if ref is not None:
                    results.append(ref)
    return results


def check_targets(results: list[Result], *, judge_tails: bool = True) -> list[str]:
    """Print the issue's targets against this run; return the ones missed."""
    missed: list[str] = []

    def verdict(ok: bool, text: str, tail: bool = False) -> None:
        if tail and not judge_tails:
            print(f"  [--] {text} (not judged: too few edges)")
            return
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
        if not ok:
            missed.append(text)

    print("targets:")
    stepped = [r for r in results if r.variant not in ("floor", "cyclictest")]
    by_key = {(r.variant, r.load, r.rate_hz): r for r in stepped}
    native = [r for r in stepped if r.variant == "native"]
    for r in native:
        if r.expect_p99_us is None or r.floor_p999_us is None:
            continue
        verdict(r.p99_us <= r.expect_p99_us + 20,
                f"{r.load} {r.rate_hz}/s: native p99 {r.p99_us:.1f} us within 20 us of the "
                f"floor-derived {r.expect_p99_us:.1f} us (floor p99 {r.floor_p99_us:.1f}, "
                f"spin {r.spin_us:.0f})", tail=True)
        verdict(r.p999_us <= r.floor_p999_us,
                f"{r.load} {r.rate_hz}/s: native p99.9 {r.p999_us:.1f} us <= floor p99.9 "
                f"{r.floor_p999_us:.1f} us (floor-derived {r.expect_p999_us:.1f})", tail=True)
    for rate_hz in RATES_HZ:
        slow = by_key.get(("python-sleep", "python-thread", rate_hz))
        fast = by_key.get(("native", "python-thread", rate_hz))
        if slow and fast:
            ratio = slow.p99_us / max(fast.p99_us, 0.001)
            verdict(ratio >= 20, f"native p99 {fast.p99_us:.1f} us vs python-sleep "
                    f"{slow.p99_us:.1f} us under python-thread at {rate_hz}/s: "
                    f"{ratio:.0f}x (>= 20x)", tail=True)
    if native:
        worst = max(r.p50_us for r in native)
        verdict(worst < 5, f"native p50 under 5 us everywhere (worst {worst:.1f} us)")
        cpu = [r.cpu_pct for r in native if r.rate_hz == 258]
        if cpu:
            verdict(max(cpu) < 5, f"native CPU under 5% of a core at 258/s (worst {max(cpu):.2f}%)")
    verdict(all(r.early_edges == 0 for r in results if r.variant != "cyclictest"),
            "zero early edges in every run (and no early probe wake-up)")
    verdict(all(r.step_error == 0 for r in stepped), "step_error 0 in every run")
    pulses = [r.min_pulse_us for r in stepped if r.min_pulse_us is not None]
    setups = [r.min_dir_setup_us for r in stepped if r.min_dir_setup_us is not None]
    verdict(bool(pulses) and min(pulses) >= 2, "STEP high >= 2 us in every run")
    verdict(bool(setups) and min(setups) >= 1, "DIR/ENABLE set >= 1 us before STEP in every run")
    return missed
