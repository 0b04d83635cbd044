"""SR-9: the pulse generator's own rate cap, step budget, deadman, lateness rule and abort."""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import pairwise

from _native_helpers import EdgeLog, wait_for

from pca import _stepgen as native
from pca.controller.ports import StepRate
from pca.hw.motor import LINE_ENABLE, LINE_STEP, NativeMotor

MakeMotor = Callable[..., NativeMotor]
MS = 1_000_000


def faulted(motor: NativeMotor, *, feed: bool = True) -> Callable[[], bool]:
    """A poll for a latched fault; feeds the deadman unless that is what is being tested."""

    def check() -> bool:
        if feed:
            motor.heartbeat(0)
        return motor.fault() is not None

    return check


def test_sr9_rate_cap_refuses_a_faster_command_and_makes_no_step(make_motor: MakeMotor) -> None:
    motor = make_motor(max_rate_hz=500)
    motor.run(StepRate(501), 1000, time.monotonic_ns())
    assert motor.fault_code() == "rate_cap"
    assert "above the cap of 500 steps/s" in (motor.fault() or "")
    # Latched: a slower command is refused too until the fault is cleared.
    motor.run(StepRate(100), 1000, time.monotonic_ns())
    time.sleep(0.05)
    assert motor.count(time.monotonic_ns()) == 0
    assert not motor.enabled
    assert EdgeLog(motor.edges()).of(LINE_STEP) == []


def test_sr9_rate_cap_allows_exactly_the_cap(make_motor: MakeMotor) -> None:
    motor = make_motor(max_rate_hz=500)
    motor.run(StepRate(1000, 2), 5, time.monotonic_ns())
    assert wait_for(lambda: motor.count(0) == 5)
    assert motor.fault() is None


def test_sr9_rate_cap_cannot_be_changed_after_start(make_motor: MakeMotor) -> None:
    motor = make_motor(max_rate_hz=500)
    gen = motor._gen
    for name in ("max_rate_hz", "budget_steps", "deadman_ns", "limits"):
        try:
            setattr(gen, name, 10**6)
        except AttributeError:
            continue
        raise AssertionError(f"{name} could be set on the native generator")
    motor.run(StepRate(501), 1000, time.monotonic_ns())
    assert motor.fault_code() == "rate_cap"


def test_sr9_budget_stops_at_exactly_the_budget(make_motor: MakeMotor) -> None:
    motor = make_motor(budget_steps=20, budget_window_s=60)
    motor.run(StepRate(1000), 100, time.monotonic_ns())
    assert wait_for(faulted(motor))
    assert motor.fault_code() == "budget"
    assert wait_for(lambda: not motor.enabled)
    time.sleep(0.02)
    assert motor.count(0) == 20
    log = EdgeLog(motor.edges())
    assert len(log.rising) == 20
    assert log.of(LINE_ENABLE, 0)[-1] > log.rising[-1]


def test_sr9_budget_is_a_rolling_window(make_motor: MakeMotor) -> None:
    # 4.5 steps/s against 5 steps per second: any second holds at most 5 steps (the 6th
    # comes 1.11 s after the 1st), so the budget binds exactly but never trips.
    motor = make_motor(budget_steps=5, budget_window_s=1)
    motor.run(StepRate(9, 2), 10, time.monotonic_ns())
    while motor.count(0) < 10 and motor.fault() is None:
        motor.heartbeat(0)
        time.sleep(0.05)
    assert motor.fault() is None
    assert motor.count(0) == 10


def test_sr9_budget_trips_when_a_window_would_hold_one_more(make_motor: MakeMotor) -> None:
    # 6 steps/s: the 6th step comes 0.83 s after the 1st, inside the same second.
    motor = make_motor(budget_steps=5, budget_window_s=1)
    motor.run(StepRate(6), 10, time.monotonic_ns())
    assert wait_for(faulted(motor))
    assert motor.fault_code() == "budget"
    assert motor.count(0) == 5


def test_sr9_budget_survives_a_cleared_fault(make_motor: MakeMotor) -> None:
    motor = make_motor(budget_steps=10, budget_window_s=60)
    motor.run(StepRate(1000), 50, time.monotonic_ns())
    assert wait_for(faulted(motor))
    motor.clear_fault()
    motor.run(StepRate(1000), 50, time.monotonic_ns())
    assert wait_for(faulted(motor))
    assert motor.fault_code() == "budget"
    assert motor.count(0) == 10


def test_sr9_deadman_stops_and_disables_without_heartbeats(make_motor: MakeMotor) -> None:
    motor = make_motor(deadman_ms=200)
    started = time.monotonic_ns()
    motor.run(StepRate(1000), 100_000, started)
    assert wait_for(faulted(motor, feed=False))
    assert motor.fault_code() == "deadman"
    assert "no heartbeat" in (motor.fault() or "")
    assert wait_for(lambda: not motor.enabled)
    log = EdgeLog(motor.edges())
    # Nothing is stepped past the deadman (generous slack for a loaded machine).
    assert log.rising[-1] <= started + 200 * MS + 50 * MS
    assert log.of(LINE_ENABLE, 0)[-1] >= log.rising[-1]


def test_sr9_heartbeats_keep_the_deadman_quiet(make_motor: MakeMotor) -> None:
    motor = make_motor(deadman_ms=300)
    motor.run(StepRate(500), 400, time.monotonic_ns())
    while motor.count(0) < 400 and motor.fault() is None:
        motor.heartbeat(0)
        time.sleep(0.02)
    assert motor.fault() is None
    assert motor.count(0) == 400


def test_sr9_falling_behind_never_bursts(make_motor: MakeMotor) -> None:
    # A segment that began 300 ms ago at 100 steps/s has 30 steps due at once: they must
    # come at no more than twice the rate (5 ms apart), not as a burst.
    motor = make_motor(late_fault_ms=0)
    rate = StepRate(100)
    motor.run(rate, 40, time.monotonic_ns() - 300 * MS)
    assert wait_for(lambda: motor.count(0) == 40)
    rising = EdgeLog(motor.edges()).rising
    gaps = [b - a for a, b in pairwise(rising)]
    assert min(gaps) >= 5 * MS
    assert motor.status()["caught_up_steps"] > 0
    assert motor.fault() is None


def test_sr9_catching_up_never_exceeds_the_rate_cap(make_motor: MakeMotor) -> None:
    motor = make_motor(max_rate_hz=120, late_fault_ms=0)
    motor.run(StepRate(100), 20, time.monotonic_ns() - 100 * MS)
    assert wait_for(lambda: motor.count(0) == 20)
    rising = EdgeLog(motor.edges()).rising
    gaps = [b - a for a, b in pairwise(rising)]
    assert min(gaps) >= 1_000_000_000 // 120


def test_sr9_too_late_is_a_fault_not_a_burst(make_motor: MakeMotor) -> None:
    motor = make_motor(late_fault_ms=50)
    motor.run(StepRate(100), 40, time.monotonic_ns() - 300 * MS)
    assert wait_for(faulted(motor))
    assert motor.fault_code() == "late"
    assert motor.count(0) == 0
    assert wait_for(lambda: not motor.enabled)


def test_sr9_abort_stops_within_one_step_period_and_leaves_enable_off(
        make_motor: MakeMotor) -> None:
    motor = make_motor()
    period_ns = 100 * MS  # 10 steps/s: a generous period for a noisy machine
    motor.run(StepRate(10), 1000, time.monotonic_ns())
    assert wait_for(lambda: motor.count(0) >= 3)
    asked = time.monotonic_ns()
    count = motor.halt(asked)
    log = EdgeLog(motor.edges())
    assert not motor.enabled
    assert count == len(log.rising)
    off = log.of(LINE_ENABLE, 0)
    assert off and asked <= off[-1] <= asked + period_ns
    assert all(t < off[-1] for t in log.rising)
    time.sleep(0.25)  # longer than two periods: nothing more happens
    assert motor.count(0) == count
    assert EdgeLog(motor.edges()).of(LINE_STEP, 1) == []
    assert motor.fault() is None


def test_sr9_abort_during_the_final_approach_makes_no_edge(make_motor: MakeMotor) -> None:
    # A long spin window puts the thread in its final approach most of the time.
    from pca.hw.motor import PulseTiming

    motor = make_motor(PulseTiming(spin_window_ns=5 * MS, spin_auto=False, nap_ns=2 * MS,
                                   lock_memory=False))
    for _ in range(5):
        motor.run(StepRate(100), motor.count(0) + 1000, time.monotonic_ns())
        time.sleep(0.0237)
        count = motor.halt(time.monotonic_ns())
        time.sleep(0.02)
        assert motor.count(0) == count
        assert not motor.enabled


def test_sr9_fault_text_is_readable_from_python(make_motor: MakeMotor) -> None:
    motor = make_motor(budget_steps=1, budget_window_s=10)
    motor.run(StepRate(1000), 5, time.monotonic_ns())
    assert wait_for(faulted(motor))
    status = motor.status()
    assert status["fault_name"] == "budget"
    assert status["fault_text"].startswith("budget:")
    assert native.Generator is not None
