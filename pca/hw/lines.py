"""Base of every polled GPIO input: a gpiozero input sampled at an injected now_ns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpiozero import InputDevice

MS = 1_000_000
S = 1_000_000_000


class PolledInput(InputDevice):  # type: ignore[misc]  # gpiozero is untyped
    """A gpiozero InputDevice with explicit polarity and pull.

    gpiozero ties polarity to the pull (pull-up means active-low), but a
    fail-safe normally-closed switch is active-high *with* a pull-up, so the
    device is opened floating with the wanted polarity and the pull is set after.
    Subclasses sample `is_active` in `poll(now_ns)`: gpiozero's own bounce_time
    runs on the real clock, which virtual-time tests cannot drive.
    """

    def __init__(self, pin: int, *, active_high: bool, pull: str = "up",
                 pin_factory: Any) -> None:
        if pull not in ("up", "down", "none"):
            raise ValueError(f"pull must be 'up', 'down' or 'none', got {pull!r}")
        self._edge_hook: Callable[[Any, Any], None] | None = None
        super().__init__(pin, pull_up=None, active_state=active_high, pin_factory=pin_factory)
        try:
            if pull != "none":
                self.pin.pull = pull
        except Exception:
            self.close()
            raise

    def watch_edges(self, kick: Callable[[], None]) -> None:
        """Call `kick` (from gpiozero's callback thread) on every edge of this line, so an
        input thread that sleeps while everything is at rest samples again at once."""
        previous = self.pin.when_changed
        self.pin.edges = "both"

        def on_edge(ticks: Any, state: Any) -> None:
            if previous is not None:
                previous(ticks, state)
            kick()

        self._edge_hook = on_edge  # gpiozero may keep only a weak reference
        self.pin.when_changed = on_edge

    @property
    def at_rest(self) -> bool:
        """Nothing is pending that needs the next sample soon (subclasses refine it)."""
        return True

    @property
    def gpio(self) -> int:
        """The BCM number, for messages."""
        return int(self.pin.info.name.removeprefix("GPIO"))

    def poll(self, now_ns: int) -> None:
        raise NotImplementedError
