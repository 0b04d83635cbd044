"""Edges on the simulated backend: pulse widths, DIR setup, never early, exact counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
from _native_helpers import EdgeLog, limits, wait_for

from pca import _stepgen as native
from pca.controller.ports import StepRate
from pca.hw.motor import LINE_DIR, LINE_ENABLE, GpioLines, NativeMotor, PulseTiming

MakeMotor = Callable[..., NativeMotor]


def run_to_limit(motor: NativeMotor, rate: StepRate, limit: int, now: int,
                 reverse: bool = False) -> None:
    motor.run(rate, limit, now, reverse=reverse)

    def done() -> bool:
        motor.heartbeat(0)
        return motor.count(0) >= limit or motor.fault() is not None

    assert wait_for(done)
    assert motor.fault() is None


def test_edges_are_never_early_and_the_count_is_exact(make_motor: MakeMotor) -> None:
    motor = make_motor()
    t0 = time.monotonic_ns()
    run_to_limit(motor, StepRate(1000), 60, t0)
    time.sleep(0.005)
    log = EdgeLog(motor.edges())
    assert len(log.rising) == 60 == motor.count(time.monotonic_ns())
    for k, t in enumerate(log.rising, start=1):
        assert t >= native.step_time(t0, k, 1000, 1), f"step {k} early"


def test_pulse_width_and_dir_setup_meet_the_driver_minimums(make_motor: MakeMotor) -> None:
    motor = make_motor(PulseTiming(step_high_ns=2_000, dir_setup_ns=1_000, lock_memory=False))
    now = time.monotonic_ns()
    run_to_limit(motor, StepRate(500), 20, now)
    # Reverse, with a segment start already in the past so the first step is due at once:
    # the only case where DIR setup is tight.
    run_to_limit(motor, StepRate(500), 40, time.monotonic_ns() - 50_000_000, reverse=True)
    log = EdgeLog(motor.edges())
    assert len(log.rising) == 40
    assert log.of(LINE_DIR), "DIR never changed"
    assert min(log.pulse_widths_ns()) >= 2_000
    assert len(log.setup_times_ns()) >= 2
    assert min(log.setup_times_ns()) >= 1_000


def test_driver_is_enabled_before_the_first_step_and_off_after_the_last(
        make_motor: MakeMotor) -> None:
    motor = make_motor()
    run_to_limit(motor, StepRate(1000), 5, time.monotonic_ns())
    assert wait_for(lambda: not motor.enabled)
    log = EdgeLog(motor.edges())
    on, off = log.of(LINE_ENABLE, 1), log.of(LINE_ENABLE, 0)
    assert len(on) == 1 and len(off) == 1
    assert on[0] < log.rising[0] and off[0] > log.rising[-1]


def test_the_pulse_thread_reports_its_scheduling(make_motor: MakeMotor) -> None:
    # (mlockall is checked in a subprocess: it would lock this whole pytest process.)
    status = make_motor().status()
    assert status["sched"] in ("SCHED_FIFO", "SCHED_OTHER+slack1ns")
    assert status["running"] is True
    assert status["memory_locked"] is False


def test_no_spin_window_still_never_early(make_motor: MakeMotor) -> None:
    motor = make_motor(PulseTiming(spin_window_ns=0, lock_memory=False))
    t0 = time.monotonic_ns()
    run_to_limit(motor, StepRate(400), 30, t0)
    rising = EdgeLog(motor.edges()).rising
    assert all(t >= native.step_time(t0, k, 400, 1) for k, t in enumerate(rising, start=1))


def test_chardev_backend_fails_cleanly_without_a_chip(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="no GPIO chip labelled pinctrl-rp1"):
        native.Generator("chardev", max_rate_hz=1000, budget_steps=10,
                         budget_window_ns=10**9, dev_dir=str(tmp_path), offsets=(18, 23, 24))
    with pytest.raises(OSError, match="cannot open GPIO chip /nonexistent/gpiochip0"):
        native.Generator("chardev", max_rate_hz=1000, budget_steps=10, budget_window_ns=10**9,
                         chip_labels="/nonexistent/gpiochip0", offsets=(18, 23, 24))


def test_chardev_motor_names_the_missing_chip() -> None:
    with pytest.raises(OSError, match="no GPIO chip labelled"):
        NativeMotor(limits(), steps_per_ml=Fraction(15480),
                    gpio=GpioLines(step=18, dir=23, enable=24, dev_dir="/proc/self"))


def test_bad_timing_is_refused() -> None:
    with pytest.raises(ValueError, match="step_high_ns"):
        native.Generator("sim", max_rate_hz=1000, budget_steps=10, budget_window_ns=10**9,
                         step_high_ns=1_000, lock_memory=False)
    with pytest.raises(ValueError, match="dir_setup_ns"):
        native.Generator("sim", max_rate_hz=1000, budget_steps=10, budget_window_ns=10**9,
                         dir_setup_ns=500, lock_memory=False)
