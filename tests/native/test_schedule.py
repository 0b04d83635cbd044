"""The exact step schedule: C and Python agree, 72 hours carry no drift, overflow is an error."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pca import _stepgen as native
from pca.controller.ports import NS_PER_S, StepRate
from pca.hw.sim_motor import VirtualMotor

HOUR_NS = 3600 * NS_PER_S
rates = st.one_of(
    st.builds(StepRate, st.integers(1, 10**7), st.integers(1, 10**6)),
    st.builds(StepRate, st.integers(1, 2**40), st.integers(1, 2**40)),  # stresses __int128
)
times = st.integers(-(2**50), 2**50)


INT64 = range(-(2**63), 2**63)


@given(rate=rates, t0=times, k=st.integers(1, 10**9))
def test_step_time_matches_the_python_formula(rate: StepRate, t0: int, k: int) -> None:
    expected = rate.step_time_ns(t0, k)
    if expected in INT64:
        assert native.step_time(t0, k, rate.num, rate.den) == expected
    else:  # beyond 292 years of CLOCK_MONOTONIC: an error, never a wrapped time
        with pytest.raises(OverflowError):
            native.step_time(t0, k, rate.num, rate.den)


@given(rate=rates, t0=times, dt=st.integers(-(10**12), 10**15))
def test_steps_by_matches_the_python_formula(rate: StepRate, t0: int, dt: int) -> None:
    assert native.steps_by(t0, t0 + dt, rate.num, rate.den) == rate.steps_by(t0, t0 + dt)


@given(rate=st.builds(StepRate, st.integers(1, 10**7), st.integers(1, 1000)), t0=times,
       k=st.integers(1, 10**6))
def test_steps_by_is_the_inverse_of_step_time(rate: StepRate, t0: int, k: int) -> None:
    t = native.step_time(t0, k, rate.num, rate.den)  # at most 1e9 s: always in range
    assert native.steps_by(t0, t, rate.num, rate.den) == k
    assert native.steps_by(t0, t - 1, rate.num, rate.den) == k - 1


@pytest.mark.parametrize("rate", [StepRate(258), StepRate(43, 100), StepRate(1000),
                                  StepRate(774, 5)])
def test_72_hours_in_virtual_time_count_exactly(rate: StepRate) -> None:
    motor = VirtualMotor()
    expected = rate.per_s * 72 * 3600
    assert expected.denominator == 1
    # The controller grants in chunks: raise the limit every minute on the moving segment.
    granted = 0
    for minute in range(72 * 60):
        now = minute * 60 * NS_PER_S
        granted = motor.count(now) + int(rate.per_s * 120) + 1
        motor.run(rate, granted, now)
    assert motor.count(72 * HOUR_NS) == expected
    assert motor.count(72 * HOUR_NS - 1) == expected - 1
    assert motor.time_of_count(int(expected)) == 72 * HOUR_NS


def test_virtual_time_uses_the_native_arithmetic() -> None:
    motor = VirtualMotor()
    motor.run(StepRate(258), 10**9, 0)
    k = 258 * 3600 * 72
    assert motor.time_of_count(k) == native.step_time(0, k, 258, 1)
    assert motor.count(5 * NS_PER_S + 7) == native.steps_by(0, 5 * NS_PER_S + 7, 258, 1)


def test_reference_mechanism_rate() -> None:
    # 15480 steps/mL: 1 mL/min is 258 steps/s; 0.1 mL/h is 43/100 steps/s.
    assert StepRate.from_fraction(Fraction(60) * 15480 / 3600) == StepRate(258)
    assert StepRate.from_fraction(Fraction(1, 10) * 15480 / 3600) == StepRate(43, 100)


def test_out_of_range_is_an_error_not_a_wrap() -> None:
    with pytest.raises(OverflowError):
        native.step_time(2**63 - 10, 1, 1, 1)
    with pytest.raises(OverflowError):
        native.step_time(0, 2**64 - 1, 1, 2**64 - 1)
    with pytest.raises(OverflowError):  # does not even fit the C argument
        native.steps_by(0, 10, 2**64, 1)
    with pytest.raises(ValueError):
        native.step_time(0, 1, 0, 1)
    assert native.steps_by(0, 10**18, 0, 1) == 0
