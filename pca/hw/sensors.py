"""Safety sensor lines (occlusion, air-in-line, end of travel, door) as debounced Sensor inputs."""

from __future__ import annotations

import logging
import threading
from typing import Any

from pca.controller.inputs import SENSORS, Sensor
from pca.hw.debounce import Debouncer
from pca.hw.lines import MS, PolledInput, S
from pca.hw.sink import Sink

log = logging.getLogger(__name__)

# (assert_ns, clear_ns): a line must read active this long to be reported, and
# inactive this long to be cleared. Asserting is fast because these stop delivery
# (SR-4, SR-10); clearing is slow so a chattering contact cannot flood the log.
DEFAULT_HOLD_NS: dict[str, tuple[int, int]] = {
    "occlusion": (50 * MS, 1 * S),
    "air_in_line": (20 * MS, 1 * S),
    "end_of_travel": (50 * MS, 1 * S),
    "door_open": (100 * MS, 1 * S),
    # Motor current surges can dip a UPS board's outputs for a moment.
    "battery_low": (1 * S, 30 * S),
    "battery_depleted": (250 * MS, 30 * S),
}


class SensorInput(PolledInput):
    """One hardware line reported as Sensor(name, active) on the sink.

    The reported state starts inactive (what the controller assumes), so a line
    already active at start is reported once it has held for `assert_ns`. With
    `latch_pulses` (the TMC2209 DIAG stall output, whose pulses can be shorter
    than a poll period) an active edge is remembered between polls and asserts
    at the next poll.
    """

    def __init__(self, name: str, pin: int, sink: Sink, *, active_high: bool, pull: str = "up",
                 assert_ns: int | None = None, clear_ns: int | None = None,
                 latch_pulses: bool = False, pin_factory: Any) -> None:
        if name not in SENSORS:
            raise ValueError(f"unknown sensor {name!r}; expected one of {', '.join(SENSORS)}")
        default_assert_ns, default_clear_ns = DEFAULT_HOLD_NS[name]
        assert_ns = default_assert_ns if assert_ns is None else assert_ns
        clear_ns = default_clear_ns if clear_ns is None else clear_ns
        if latch_pulses:
            assert_ns = 0  # a latched pulse is one sample; waiting for a second would lose it
        self.name = name
        self._sink = sink
        self._debounce: Debouncer[bool] = Debouncer({True: assert_ns, False: clear_ns},
                                                    initial=False)
        self._latch_lock = threading.Lock()
        self._latched = False
        self._active_high = active_high
        super().__init__(pin, active_high=active_high, pull=pull, pin_factory=pin_factory)
        if latch_pulses:
            try:
                self.pin.edges = "rising" if active_high else "falling"
                self.pin.when_changed = self._edge
            except Exception:
                self.close()
                raise

    @property
    def active(self) -> bool:
        """The reported (debounced) state."""
        return bool(self._debounce.state)

    @property
    def at_rest(self) -> bool:
        """No level is waiting for its hold time and no latched pulse is unread."""
        return self._debounce.settled and not self._latched

    def _edge(self, ticks: Any, state: Any) -> None:
        # Runs on gpiozero's callback thread; poll() picks it up.
        if bool(state) == self._active_high:
            with self._latch_lock:
                self._latched = True

    def poll(self, now_ns: int) -> None:
        level = self.is_active
        with self._latch_lock:
            level, self._latched = level or self._latched, False
        if self._debounce.update(level, now_ns):
            log.info("%s %s", self.name, "active" if self.active else "cleared")
            self._sink.put(Sensor(self.name, self.active))
