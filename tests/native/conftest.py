"""Fixtures for the native pulse generator tests: simulated-backend motors that always close."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _native_helpers import REFERENCE_STEPS_PER_ML, limits

from pca.hw.motor import NativeMotor, PulseTiming


@pytest.fixture
def make_motor() -> Iterator[Callable[..., NativeMotor]]:
    made: list[NativeMotor] = []

    def make(timing: PulseTiming | None = None, **limit_overrides: Any) -> NativeMotor:
        # mlockall is process-wide and slow on a big pytest process; one test checks it.
        motor = NativeMotor(limits(**limit_overrides), steps_per_ml=REFERENCE_STEPS_PER_ML,
                            timing=timing or PulseTiming(lock_memory=False))
        made.append(motor)
        return motor

    yield make
    for motor in made:
        motor.close()
