"""The small interfaces through which the controller reaches the world.

The controller never imports hardware, SQLite or a clock; the app wires
implementations of these protocols in (real ones on the Pi, simulated ones in
tests and `pca scenario`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, Protocol

Priority = Literal["high", "medium", "low"]
Actor = Literal["patient", "clinician", "system"]

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class StepRate:
    """A step rate of exactly `num / den` steps per second (integers, so no drift)."""

    num: int
    den: int = 1

    def __post_init__(self) -> None:
        if self.num < 0 or self.den <= 0:
            raise ValueError(f"step rate {self.num}/{self.den} must be >= 0 with den > 0")

    @classmethod
    def from_fraction(cls, steps_per_s: Fraction) -> StepRate:
        return cls(steps_per_s.numerator, steps_per_s.denominator)

    @property
    def per_s(self) -> Fraction:
        return Fraction(self.num, self.den)

    def step_time_ns(self, t0_ns: int, k: int) -> int:
        """Time of step k (k >= 1) of a segment that began at t0_ns."""
        return t0_ns + (k * self.den * NS_PER_S) // self.num

    def steps_by(self, t0_ns: int, t_ns: int) -> int:
        """How many steps of a segment begun at t0_ns are made at or before t_ns."""
        if self.num == 0 or t_ns < t0_ns:
            return 0
        return ((t_ns - t0_ns + 1) * self.num - 1) // (self.den * NS_PER_S)


class Motor(Protocol):
    """A stepper pushing the syringe.

    `count` is cumulative since the motor object was made and only grows.
    `run(rate, limit, now)` lets the motor step at `rate` until the count
    reaches `limit`: if it is already stepping at that rate and has not
    reached its old limit, the schedule goes on and only the limit moves;
    otherwise a new segment starts at `now` (first step one period later), so
    raising a limit never produces a burst. `limit` never goes below `count`.
    """

    def run(self, rate: StepRate, limit: int, now_ns: int) -> None: ...

    def count(self, now_ns: int) -> int: ...

    def time_of_count(self, count: int) -> int | None:
        """When the count will reach `count` on the current segment; None if never."""
        ...

    def halt(self, now_ns: int) -> int:
        """Stop at once (mid-move), disable the driver, return the count."""
        ...

    def heartbeat(self, now_ns: int) -> None: ...

    def fault(self) -> str | None:
        """A fault the motor found by itself (stall, deadman, budget), else None."""
        ...


class Annunciator(Protocol):
    """Buzzer and LEDs. Called every tick with the highest active priority."""

    def annunciate(self, priority: Priority | None, silenced: bool, now_ns: int) -> None: ...

    def tone(self, kind: Literal["granted", "denied"], now_ns: int) -> None: ...


class Display(Protocol):
    """A character display (20x4 on the pump); lines longer than the width are cut."""

    def show(self, lines: Sequence[str], now_ns: int) -> None: ...


class Clock(Protocol):
    """Monotonic time for therapy, wall time for timestamps only (SR-5)."""

    def monotonic_ns(self) -> int: ...

    def wall_ns(self) -> int: ...


@dataclass(frozen=True)
class Event:
    """One logged event: contract fields plus the type's own fields."""

    type: str
    actor: Actor
    t_s: float
    pump_ns: int
    wall_ns: int
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event: Event
    context: bool = False  # an older event replayed for the panel only (see store.resume)


class LogWriteError(RuntimeError):
    """The event log could not make an event durable."""


class EventLog(Protocol):
    """Append-only durable log. `append` buffers; `flush` makes durable or raises."""

    def append(self, event: Event) -> None: ...

    def flush(self) -> None: ...

    def replay(self) -> Iterable[StoredEvent]: ...


class Credentials(Protocol):
    """Where salted PIN hashes live (never the PIN itself)."""

    def get_pin_hash(self, role: str) -> str | None: ...

    def set_pin_hash(self, role: str, encoded: str) -> None: ...


# Respiratory monitor (SR-13): the values a monitor may report, in their units.
VITALS = ("spo2", "etco2_mmhg", "rr", "pulse")  # %, mmHg, breaths/min (0: no breath), /min


@dataclass(frozen=True)
class VitalsReading:
    """One reading of a respiratory monitor at monotonic `t_ns` (when it was measured).

    `values` holds what the monitor measured in this reading, keys from VITALS; a value
    it did not measure is absent. A sample the device itself flags as unusable (sensor
    off, no finger, artifact, out of track), one that fails its checksum or framing, and
    one outside the device's range is never a reading: it simply does not arrive, and
    the watcher counts the value as stale.
    """

    t_ns: int
    values: Mapping[str, int]


class RespiratoryMonitor(Protocol):
    """A pulse oximeter and/or capnograph on a serial line (or its simulated twin).

    `poll(now_ns)` returns the readings measured since the previous call, oldest first,
    with their own times (monotonic, never after `now_ns`). It never blocks: a reader
    thread owns the line. A monitor that is unplugged returns nothing.
    """

    def poll(self, now_ns: int) -> Sequence[VitalsReading]: ...


@dataclass(frozen=True)
class PowerReading:
    """One reading of the fuel gauge (the UPS board's INA219, or the simulated pack).

    `mains`: external power is present (the pack is charging or idle); `power_w`: what
    the pump draws from the pack now (0 on mains); `soc_pct`: state of charge 0..100;
    `remaining_wh`: energy left above the board's cut-off.
    """

    t_ns: int
    mains: bool
    voltage_v: float
    power_w: float
    soc_pct: float
    remaining_wh: float


class FuelGauge(Protocol):
    """The battery's state, read by the control loop (`read` never blocks for long: one
    I2C transaction). None when no reading could be taken."""

    def read(self, now_ns: int) -> PowerReading | None: ...
