"""NativeMotor against the Motor port's semantics (pca.controller.ports.Motor)."""

from __future__ import annotations

import time
from collections.abc import Callable
from fractions import Fraction

import pytest
from _native_helpers import EdgeLog, wait_for

from pca import _stepgen as native
from pca.controller.ports import Motor, StepRate
from pca.controller.profile import PumpProfile
from pca.hw.motor import NativeMotor, SafetyLimits

MakeMotor = Callable[..., NativeMotor]
MS = 1_000_000


def test_it_is_a_motor(make_motor: MakeMotor) -> None:
    motor: Motor = make_motor()
    assert motor.count(time.monotonic_ns()) == 0
    assert motor.fault() is None
    assert motor.time_of_count(1) is None


def test_run_steps_exactly_to_the_absolute_limit(make_motor: MakeMotor) -> None:
    motor = make_motor()
    motor.run(StepRate(1000), 25, time.monotonic_ns())
    assert wait_for(lambda: motor.count(0) == 25)
    time.sleep(0.03)
    assert motor.count(0) == 25
    motor.run(StepRate(1000), 30, time.monotonic_ns())  # absolute, not 30 more
    assert wait_for(lambda: motor.count(0) == 30)
    time.sleep(0.02)
    assert motor.count(0) == 30


def test_raising_the_limit_at_the_same_rate_continues_the_schedule(make_motor: MakeMotor) -> None:
    motor = make_motor()
    t0 = time.monotonic_ns()
    motor.run(StepRate(200), 40, t0)
    assert wait_for(lambda: motor.count(0) >= 10)
    motor.run(StepRate(200), 60, time.monotonic_ns())
    status = motor.status()
    assert status["seg_t0_ns"] == t0 and status["seg_base"] == 0
    assert motor.time_of_count(60) == native.step_time(t0, 60, 200, 1)
    assert wait_for(lambda: motor.count(0) == 60)
    rising = EdgeLog(motor.edges()).rising
    # Every step sits on the one schedule begun at t0: none early, none restarted.
    assert all(t >= native.step_time(t0, k, 200, 1) for k, t in enumerate(rising, start=1))
    assert len(rising) == 60


def test_another_rate_starts_a_new_segment_one_period_after_now(make_motor: MakeMotor) -> None:
    motor = make_motor()
    motor.run(StepRate(200), 1000, time.monotonic_ns())
    assert wait_for(lambda: motor.count(0) >= 5)
    now = time.monotonic_ns()
    motor.run(StepRate(100), 1000, now)
    status = motor.status()
    base = status["seg_base"]
    assert status["seg_t0_ns"] == now and status["rate_num"] == 100
    assert motor.time_of_count(base + 1) == now + 10 * MS
    assert wait_for(lambda: motor.count(0) >= base + 3)
    first_new = [t for t in EdgeLog(motor.edges()).rising if t > now]
    assert first_new[0] >= now + 10 * MS
    motor.halt(time.monotonic_ns())


def test_a_finished_segment_restarts_rather_than_bursting(make_motor: MakeMotor) -> None:
    motor = make_motor()
    motor.run(StepRate(500), 5, time.monotonic_ns())
    assert wait_for(lambda: motor.count(0) == 5)
    time.sleep(0.05)
    now = time.monotonic_ns()
    motor.run(StepRate(500), 10, now)
    assert motor.status()["seg_t0_ns"] == now
    assert wait_for(lambda: motor.count(0) == 10)
    rising = EdgeLog(motor.edges()).rising
    assert rising[5] >= now + 2 * MS


def test_limit_below_count_is_refused(make_motor: MakeMotor) -> None:
    motor = make_motor()
    motor.run(StepRate(1000), 10, time.monotonic_ns())
    assert wait_for(lambda: motor.count(0) == 10)
    with pytest.raises(ValueError, match="below the steps already made"):
        motor.run(StepRate(1000), 9, time.monotonic_ns())


def test_now_must_be_the_monotonic_clock(make_motor: MakeMotor) -> None:
    motor = make_motor()
    with pytest.raises(ValueError, match="CLOCK_MONOTONIC"):
        motor.run(StepRate(100), 10, 0)


def test_time_offset_translates_the_callers_clock(make_motor: MakeMotor) -> None:
    motor = make_motor()
    motor.time_offset_ns = offset = 10**15  # e.g. pump time carried across a restart
    now = time.monotonic_ns() + offset
    motor.run(StepRate(100), 3, now)
    assert motor.time_of_count(1) == now + 10 * MS
    assert wait_for(lambda: motor.count(0) == 3)


def test_halt_stops_mid_move_disables_and_returns_the_count(make_motor: MakeMotor) -> None:
    motor = make_motor()
    motor.run(StepRate(500), 10_000, time.monotonic_ns())
    assert wait_for(lambda: motor.count(0) >= 5)
    count = motor.halt(time.monotonic_ns())
    assert not motor.enabled
    assert motor.time_of_count(count + 1) is None
    time.sleep(0.02)
    assert motor.count(0) == count
    assert motor.fault() is None
    motor.run(StepRate(500), count + 3, time.monotonic_ns())  # a halt is not a fault
    assert wait_for(lambda: motor.count(0) == count + 3)


def test_time_of_count_follows_the_virtual_motor_rules(make_motor: MakeMotor) -> None:
    motor = make_motor()
    now = time.monotonic_ns()
    motor.run(StepRate(258), 100, now)
    assert motor.time_of_count(0) == now
    assert motor.time_of_count(100) == native.step_time(now, 100, 258, 1)
    assert motor.time_of_count(101) is None
    motor.halt(time.monotonic_ns())


def test_volume_conversion_uses_the_syringe_calibration() -> None:
    motor = NativeMotor.from_profile(PumpProfile(), budget_ml=Fraction(10), budget_window_s=3600)
    try:
        assert motor.ml_to_steps(Fraction(1)) == 15480
        assert motor.steps_to_ml(15480) == 1
        assert motor.rate_for(Fraction(60)) == StepRate(258)  # 1 mL/min
        assert motor.limits == SafetyLimits(max_rate_hz=258, budget_steps=154800,
                                            budget_window_s=3600)
    finally:
        motor.close()


def test_safety_limits_round_to_the_safe_side() -> None:
    limits = SafetyLimits.from_volume(steps_per_ml=Fraction(1000), max_rate_ml_h=Fraction(10),
                                      budget_ml=Fraction(1, 3), budget_window_s=60)
    assert limits.max_rate_hz == 3  # 2.78 steps/s: the cap never binds below the rate
    assert limits.budget_steps == 333  # never more than the volume


def test_closed_motor_refuses_commands(make_motor: MakeMotor) -> None:
    motor = make_motor()
    motor.close()
    motor.close()
    with pytest.raises(RuntimeError, match="closed"):
        motor.run(StepRate(10), 1, time.monotonic_ns())
    assert motor.status()["running"] is False
