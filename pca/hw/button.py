"""The patient's bolus button on its cord: debounced presses and releases, stuck detection."""

from __future__ import annotations

import logging
from typing import Any

from pca.controller.inputs import BolusButton, Sensor
from pca.hw.debounce import Debouncer
from pca.hw.lines import MS, PolledInput, S
from pca.hw.sink import Sink

log = logging.getLogger(__name__)

BUTTON_STUCK = "button_stuck"


class CordButton(PolledInput):
    """Turns the button's level into BolusButton(pressed) and button_stuck inputs.

    It decides nothing about doses: every debounced press reaches the sink and
    the controller grants or denies (and logs) it. Rules kept here:
    - one press is one BolusButton(True) whatever the bounce, and holding never
      repeats it;
    - held for more than `stuck_ns` (10 s): Sensor("button_stuck", True), and
      Sensor("button_stuck", False) once released;
    - already closed when first read (at boot): reported as button_stuck at
      once and never counted as a press, not even on its release.
    """

    def __init__(self, pin: int, sink: Sink, *, active_high: bool = False, pull: str = "up",
                 debounce_ns: int = 30 * MS, stuck_ns: int = 10 * S, pin_factory: Any) -> None:
        self._sink = sink
        self._debounce: Debouncer[bool] = Debouncer(debounce_ns)
        self._stuck_ns = stuck_ns
        self._pressed_since_ns = 0
        self._stuck = False
        self._closed_at_boot = False
        super().__init__(pin, active_high=active_high, pull=pull, pin_factory=pin_factory)

    @property
    def pressed(self) -> bool | None:
        """Debounced state; None until the first reading has settled."""
        return self._debounce.state

    @property
    def at_rest(self) -> bool:
        """Released and settled: the next change arrives as an edge (held, the stuck timer
        needs sampling)."""
        return self._debounce.settled and not self._debounce.state

    @property
    def stuck(self) -> bool:
        return self._stuck

    def poll(self, now_ns: int) -> None:
        before = self._debounce.state
        if self._debounce.update(self.is_active, now_ns):
            self._changed(before, now_ns)
        elif (self._debounce.state and not self._stuck
              and now_ns - self._pressed_since_ns > self._stuck_ns):
            self._stuck = True
            log.warning("bolus button held for more than %d s: reporting it stuck",
                        self._stuck_ns // S)
            self._sink.put(Sensor(BUTTON_STUCK, True))

    def _changed(self, before: bool | None, now_ns: int) -> None:
        pressed = bool(self._debounce.state)
        if before is None:
            if pressed:
                # A button closed before we ever saw it open is a fault, not a request.
                self._stuck = self._closed_at_boot = True
                log.warning("bolus button closed at start: reporting it stuck, not as a press")
                self._sink.put(Sensor(BUTTON_STUCK, True))
            return
        if pressed:
            self._pressed_since_ns = self._debounce.sample_since_ns
            self._sink.put(BolusButton(True))
            return
        if self._closed_at_boot:
            self._closed_at_boot = False  # its press was never sent, so neither is its release
        else:
            self._sink.put(BolusButton(False))
        if self._stuck:
            self._stuck = False
            log.info("bolus button released: no longer stuck")
            self._sink.put(Sensor(BUTTON_STUCK, False))
