"""What a front-panel flow may ask of the panel it runs in (navigation, messages, commands)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from pca.controller.inputs import (
    ClinicianCommand,
    PanelCommand,
    PendingLibrary,
    PendingPrescription,
)
from pca.controller.panel.host import PanelHost
from pca.controller.panel.widgets import Action, Screen
from pca.controller.recovery import DELIVERING_STATES

Heard = list[tuple[str, Mapping[str, Any]]]  # events the pump logged while handling a command

DELIVERING = DELIVERING_STATES  # the pump's own set (pca.controller.recovery)


class Nav(Protocol):
    """The panel as its flows see it; FrontPanel implements it."""

    host: PanelHost
    rx_pending: PendingPrescription | None
    library_pending: PendingLibrary | None
    unlocked: bool

    @property
    def screen(self) -> Screen: ...

    @property
    def now_ns(self) -> int: ...

    def show(self, screen: Screen) -> None: ...

    def say(self, *lines: str, then: Action | None = None) -> None: ...

    def submit(self, command: ClinicianCommand | PanelCommand) -> Heard: ...

    def report(self, events: Sequence[tuple[str, Mapping[str, Any]]], ok: str) -> None: ...

    def home(self) -> None: ...

    def main_menu(self) -> None: ...

    def admin_menu(self) -> None: ...

    def run(self, action: str) -> None:
        """Another flow's action, by the name the menus use."""


class Flow:
    """One task on the keypad; `actions` are the names the menus (menus.py) call it by."""

    def __init__(self, nav: Nav) -> None:
        self.nav = nav
        self.host = nav.host

    def actions(self) -> dict[str, Callable[[], None]]:
        raise NotImplementedError
