"""A motor in virtual time: steps on the exact integer schedule, never sleeps.

`pca scenario` and the tests use it; its count at any instant is a pure
function of the commands it got, so replays are deterministic. The schedule
arithmetic is the native one (native/schedule.c) that the real-time pulse
thread uses, so virtual and real time cannot disagree on a step.
"""

from __future__ import annotations

import pca._stepgen as _stepgen
from pca.controller.ports import StepRate


class VirtualMotor:
    """Implements the Motor port (see pca.controller.ports.Motor) in virtual time."""

    def __init__(self) -> None:
        self._base = 0  # count when the current segment began
        self._t0_ns = 0
        self._rate = StepRate(0)
        self._limit = 0
        self._fault: str | None = None
        self.enabled = False

    def _segment_count(self, now_ns: int) -> int:
        rate = self._rate
        made = _stepgen.steps_by(self._t0_ns, now_ns, rate.num, rate.den)
        return min(self._limit, self._base + int(made))

    def count(self, now_ns: int) -> int:
        return self._segment_count(now_ns)

    def run(self, rate: StepRate, limit: int, now_ns: int) -> None:
        current = self._segment_count(now_ns)
        if limit < current:
            raise ValueError(f"limit {limit} is below the steps already made ({current})")
        if self._fault is not None:
            return
        moving = self._rate.num > 0 and current < self._limit
        if not (moving and rate == self._rate):
            self._base, self._t0_ns, self._rate = current, now_ns, rate
        self._limit = limit
        self.enabled = rate.num > 0 and limit > current

    def time_of_count(self, count: int) -> int | None:
        if count > self._limit or self._rate.num == 0:
            return None
        if count <= self._base:
            return self._t0_ns
        rate = self._rate
        try:
            return int(_stepgen.step_time(self._t0_ns, count - self._base, rate.num, rate.den))
        except OverflowError:
            return None  # after the 64-bit clock ends: never (the therapy checks refuse it)

    def halt(self, now_ns: int) -> int:
        made = self._segment_count(now_ns)
        self._base, self._t0_ns, self._rate, self._limit = made, now_ns, StepRate(0), made
        self.enabled = False
        return made

    def heartbeat(self, now_ns: int) -> None:
        pass

    def fault(self) -> str | None:
        return self._fault

    def inject_fault(self, reason: str, now_ns: int) -> None:
        """Simulate a fault the motor detects itself (stall, driver error)."""
        self.halt(now_ns)
        self._fault = reason
