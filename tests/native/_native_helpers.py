"""Helpers shared by the native generator tests: limits, polling, and edge bookkeeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pca.hw.motor import LINE_DIR, LINE_ENABLE, LINE_STEP, SafetyLimits

REFERENCE_STEPS_PER_ML = Fraction(15480)
Edge = tuple[int, int, int]


def limits(**overrides: Any) -> SafetyLimits:
    base: dict[str, Any] = dict(max_rate_hz=2000, budget_steps=1_000_000, budget_window_s=3600)
    base.update(overrides)
    return SafetyLimits(**base)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll until `predicate` holds; the timeout is only a hang guard, never the assertion."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


@dataclass
class EdgeLog:
    """What the simulated backend recorded, split by line."""

    edges: list[Edge]

    def of(self, line: int, value: int | None = None) -> list[int]:
        return [t for t, ln, v in self.edges if ln == line and (value is None or v == value)]

    @property
    def rising(self) -> list[int]:
        return self.of(LINE_STEP, 1)

    def pulse_widths_ns(self) -> list[int]:
        widths, high = [], None
        for t, line, value in self.edges:
            if line != LINE_STEP:
                continue
            if value:
                high = t
            elif high is not None:
                widths.append(t - high)
                high = None
        return widths

    def setup_times_ns(self) -> list[int]:
        """For each STEP rising edge that follows a DIR or ENABLE change: how long after it."""
        setups, changed = [], None
        for t, line, _value in self.edges:
            if line in (LINE_DIR, LINE_ENABLE):
                changed = t
            elif line == LINE_STEP and _value and changed is not None:
                setups.append(t - changed)
                changed = None
        return setups
