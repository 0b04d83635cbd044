"""Pump time (SR-5): the monotonic clock plus the offset recovered at boot; the motor in it."""

from __future__ import annotations

from pca.controller.ports import NS_PER_S, Clock, Motor, StepRate

CLOCK_JUMP_NS = NS_PER_S


class PumpTime:
    """Therapy time: monotonic, continuous across restarts. `now_ns` is the pump time the
    current pass of the control loop works at."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.offset_ns = 0  # pump time - monotonic
        self.wall_offset_ns = 0  # expected wall - monotonic
        self.now_ns = 0

    def pump_ns(self) -> int:
        return self.clock.monotonic_ns() + self.offset_ns

    def start(self, offset_ns: int, wall_offset_ns: int) -> None:
        """Set at boot: where pump time continues from (SR-5)."""
        self.offset_ns = offset_ns
        self.wall_offset_ns = wall_offset_ns
        self.now_ns = self.pump_ns()

    def wall_jump_ns(self) -> int | None:
        """A step of the wall clock against the monotonic one (someone set it), if any;
        the new wall offset is taken as expected from now on."""
        mono = self.clock.monotonic_ns()
        jump = self.clock.wall_ns() - mono - self.wall_offset_ns
        if abs(jump) < CLOCK_JUMP_NS:
            return None
        self.wall_offset_ns += jump
        return jump


class MotorInPumpTime:
    """The Motor port seen in pump time: the motor itself lives on the monotonic clock."""

    def __init__(self, motor: Motor, time: PumpTime) -> None:
        self.motor = motor
        self.time = time

    def run(self, rate: StepRate, limit: int, now_ns: int) -> None:
        self.motor.run(rate, limit, now_ns - self.time.offset_ns)

    def count(self, now_ns: int) -> int:
        return self.motor.count(now_ns - self.time.offset_ns)

    def time_of_count(self, count: int) -> int | None:
        when = self.motor.time_of_count(count)
        return None if when is None else when + self.time.offset_ns

    def halt(self, now_ns: int) -> int:
        return self.motor.halt(now_ns - self.time.offset_ns)

    def heartbeat(self, now_ns: int) -> None:
        self.motor.heartbeat(now_ns - self.time.offset_ns)

    def fault(self) -> str | None:
        return self.motor.fault()
