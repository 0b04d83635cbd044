"""The clinician front panel: keypad flows on a 4x3 keypad, over the pump's public actions.

The panel decides nothing about doses: it turns keys into the same commands a
scenario sends (ClinicianCommand / PanelCommand), which the pump authorises
and checks. It never stores or shows a PIN.
"""

from __future__ import annotations

from typing import Protocol

from pca.controller.inputs import ClinicianCommand, PanelCommand
from pca.controller.ports import Display


class PanelHost(Protocol):
    """What the panel may ask of the pump."""

    def authenticate(self, pin: str) -> bool: ...

    def session_open(self) -> bool: ...

    def touch_session(self, editing: bool) -> None: ...

    def lock_session(self, reason: str) -> None: ...

    def submit(self, command: ClinicianCommand | PanelCommand) -> None: ...


class FrontPanel:
    """Keypad state: PIN entry until a session is open (the menus build on this)."""

    def __init__(self, host: PanelHost, display: Display | None = None) -> None:
        self.host = host
        self.display = display
        self._entry = ""

    def key(self, key: str, now_ns: int) -> None:
        if self.host.session_open():
            self.host.touch_session(editing=False)
            return
        if key == "*":
            self._entry = ""
        elif key == "#":
            pin, self._entry = self._entry, ""
            self.host.authenticate(pin)
        elif key.isdigit() and len(self._entry) < 8:
            self._entry += key

    def tick(self, now_ns: int) -> None:
        """Screen timeouts; called every control tick."""
