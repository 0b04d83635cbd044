"""Explain the pulse thread's late edges from an ftrace of the scheduler (root; a diagnostic).

    sudo .venv/bin/python native/trace_pulse.py --load python-thread --rate 258 --seconds 20

Runs the bench's native case (pca.app.bench_stepgen) with sched_switch, sched_waking,
sched_wakeup, futex and page-fault events recorded on CLOCK_MONOTONIC (the edges' clock),
and for every edge later than --threshold-us says which of these it was:
  timer late      the pulse thread's own timer fired late (on a busy vCPU with no other
                  event in between: the vCPU itself was not running)
  dispatch late   woken on time, but the CPU went on running another task
  futex           it waited on a futex between waking and the edge (a lock)
  page fault      it took a page fault between waking and the edge
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pca._stepgen as sg

from pca.app import bench_stepgen as bench
from pca.hw.motor import LINE_STEP

TRACEFS = Path("/sys/kernel/tracing")
EVENTS = ("sched/sched_switch", "sched/sched_waking", "sched/sched_wakeup",
          "syscalls/sys_enter_futex", "syscalls/sys_exit_futex",
          "exceptions/page_fault_user", "exceptions/page_fault_kernel",
          "irq_vectors/local_timer_entry")
LINE = re.compile(r"^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+([a-z_0-9]+)[:( ]\s*(.*)$")


def _write(name: str, value: str) -> None:
    fd = os.open(TRACEFS / name, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--load", choices=bench.LOADS, default="idle")
    ap.add_argument("--rate", type=int, default=258)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threshold-us", type=float, default=150.0)
    args = ap.parse_args()
    if not (TRACEFS / "trace").exists():
        print(f"trace_pulse: no tracefs at {TRACEFS} (mount -t tracefs nodev {TRACEFS}; root)")
        return 2
    _write("tracing_on", "0")
    _write("trace", "")
    _write("trace_clock", "mono")
    _write("buffer_size_kb", "32768")
    for ev in EVENTS:
        if (TRACEFS / "events" / ev).exists():
            _write(f"events/{ev}/enable", "1")
    steps = max(100, int(args.rate * args.seconds))
    _write("tracing_on", "1")
    try:
        with bench.load(args.load):
            run = bench.variants()["native"](args.rate, steps)
    finally:
        _write("tracing_on", "0")
        for ev in EVENTS:
            if (TRACEFS / "events" / ev).exists():
                _write(f"events/{ev}/enable", "0")
    events = []
    for line in (TRACEFS / "trace").read_text().splitlines():
        if m := LINE.match(line):
            events.append((round(float(m.group(4)) * 1e9), int(m.group(2)), int(m.group(3)),
                           m.group(5), m.group(6), m.group(1)))
    _write("trace", "")
    times = [e[0] for e in events]
    tid = run.tid if run.tid is not None else -1
    rising = [t for t, line, value in run.edges if line == LINE_STEP and value]
    spin = run.spin_ns or 0
    threshold = args.threshold_us * 1000
    verdicts: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    late_edges = 0
    for k, edge in enumerate(rising, start=1):
        planned = sg.step_time(run.t0_ns, k, args.rate, 1)
        if edge - planned <= threshold:
            continue
        late_edges += 1
        lo = bisect.bisect_left(times, planned - spin - 2 * int(threshold))
        hi = bisect.bisect_right(times, edge)
        window = events[lo:hi]
        mine = [e for e in window if e[1] == tid or f"pid={tid} " in e[4]]
        woke = [e for e in mine if e[3] == "sched_waking" and f"pid={tid} " in e[4]]
        ran = [e for e in mine if e[3] == "sched_switch" and f"next_pid={tid} " in e[4]]
        futexes = [e for e in mine if e[1] == tid and e[3] == "sys_futex"
                   and not e[4].startswith("->") and "op: 0x89" not in e[4]]
        faults = [e for e in mine if e[1] == tid and e[3].startswith("page_fault")]
        if faults:
            verdict = "page fault"
        elif futexes:
            verdict = "futex"
        elif woke and woke[-1][0] > planned - spin + threshold / 2:
            cpu = woke[-1][2]
            silent = not any(e[2] == cpu and planned - spin < e[0] < woke[-1][0] for e in window)
            verdict = "timer late" + (" (vCPU silent: host)" if silent else "")
        elif woke and ran and ran[-1][0] - woke[-1][0] > threshold / 2:
            prev = re.search(r"prev_comm=(\S+) prev_pid=(\d+) .*prev_state=(\S+)", ran[-1][4])
            verdict = "dispatch late"
            own = prev is not None and int(prev.group(2)) == os.getpid()
            examples.setdefault(verdict, "CPU kept running " + (
                f"{prev.group(1)}-{prev.group(2)}{' (this process)' if own else ''} "
                f"state {prev.group(3)}" if prev else "?"))
        else:
            verdict = "other"
        verdicts[verdict] += 1
        examples.setdefault(verdict, f"step {k}: {(edge - planned) / 1000:.0f} us late")
    print(f"trace_pulse: {args.load} {args.rate}/s, {len(rising)} edges, pulse tid {tid}, "
          f"spin {spin / 1000:.0f} us, {late_edges} edges later than {args.threshold_us:g} us")
    for verdict, n in verdicts.most_common():
        print(f"  {n:5d}  {verdict:<32} e.g. {examples.get(verdict, '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
