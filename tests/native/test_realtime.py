"""The pulse thread: asleep when nothing is due, never held up by Python; the floor probe."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from _native_helpers import EdgeLog, wait_for

from pca import _stepgen as native
from pca.controller.ports import StepRate
from pca.hw.motor import NativeMotor, PulseTiming

MakeMotor = Callable[..., NativeMotor]
MS = 1_000_000


def context_switches(tid: int) -> int:
    """Voluntary plus involuntary context switches of one thread of this process."""
    with open(f"/proc/self/task/{tid}/status", encoding="ascii") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])


def test_at_rest_the_pulse_thread_never_wakes(make_motor: MakeMotor) -> None:
    motor = make_motor()
    motor.run(StepRate(1000), 10, time.monotonic_ns())
    assert wait_for(lambda: motor.count(0) == 10 and not motor.enabled)
    tid = motor.status()["tid"]
    before = context_switches(tid)
    # What the control loop does every tick at rest: heartbeat, count, fault, status.
    for _ in range(40):
        motor.heartbeat(0)
        motor.count(0)
        motor.fault()
        time.sleep(0.01)
    assert context_switches(tid) == before
    motor.run(StepRate(1000), 12, time.monotonic_ns())  # and a command still wakes it
    assert wait_for(lambda: motor.count(0) == 12)
    assert context_switches(tid) > before


def test_a_python_thread_hammering_the_generator_changes_no_edge(make_motor: MakeMotor) -> None:
    # Status, count and heartbeat from a second thread as fast as the GIL allows while the
    # pulse thread steps: every edge on its schedule, the count exact.
    motor = make_motor()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            motor.status()
            motor.count(0)
            motor.heartbeat(0)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        t0 = time.monotonic_ns()
        motor.run(StepRate(1000), 200, t0)
        assert wait_for(lambda: motor.count(0) == 200)
    finally:
        stop.set()
        worker.join()
    rising = EdgeLog(motor.edges()).rising
    assert len(rising) == 200
    assert all(t >= native.step_time(t0, k, 1000, 1) for k, t in enumerate(rising, start=1))
    assert motor.fault() is None


def test_status_reports_the_measured_spin_window(make_motor: MakeMotor) -> None:
    motor = make_motor()
    motor.run(StepRate(500), 150, time.monotonic_ns())
    assert wait_for(lambda: motor.count(0) == 150)
    st = motor.status()
    assert st["wake_samples"] >= 100
    # 3.5 % of a 2 ms period caps it at 70 us; below that it is the p99.5 plus 10 us.
    assert st["spin_ns"] == min(st["wake_p995_ns"] + 10_000, 70_000)


def test_probe_wakes_every_time_and_never_early() -> None:
    t0 = time.monotonic_ns()
    lateness, sched = native.probe(1000, 1, 100, t0, phase_ns=500_000, rt_priority=0,
                                   lock_memory=False)
    assert len(lateness) == 100 and min(lateness) >= 0
    assert sched in ("SCHED_OTHER", "SCHED_OTHER+slack1ns")
    assert time.monotonic_ns() >= t0 + 100 * MS + 500_000


def test_probe_refuses_a_zero_rate_with_one_line() -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        native.probe(0, 1, 10, time.monotonic_ns())


def test_the_pulse_thread_runs_on_the_one_cpu_it_was_given(make_motor: MakeMotor) -> None:
    import os

    cpu = max(os.sched_getaffinity(0))
    motor = make_motor(PulseTiming(lock_memory=False, cpu=cpu))
    tid = motor.status()["tid"]
    assert os.sched_getaffinity(tid) == {cpu}
    motor.run(StepRate(1000), 20, time.monotonic_ns())
    assert wait_for(lambda: motor.count(0) == 20)
    unpinned = make_motor()  # and without a CPU, it may run on any the process may
    assert os.sched_getaffinity(unpinned.status()["tid"]) == os.sched_getaffinity(0)


def test_a_cpu_that_is_not_there_stops_the_pulse_generator_naming_it(
        make_motor: MakeMotor) -> None:
    with pytest.raises(ValueError, match="cannot start the pulse thread on CPU 1000"):
        make_motor(PulseTiming(lock_memory=False, cpu=1000))
    with pytest.raises(ValueError, match="cpu must be -1"):
        make_motor(PulseTiming(lock_memory=False, cpu=-2))
