"""The clinician front panel: keypad flows and screens (20x4) on a 4x3 keypad, over the pump.

The panel decides nothing about doses. It is a menu state machine (one screen at
a time; keys move between screens) that turns keys into the same commands a
scenario sends (ClinicianCommand / PanelCommand, through `host.submit`), which
the pump authorises, checks and logs. Keys: digits, `*` back/cancel/delete,
`#` enter/next. The widgets are in widgets.py, the menus are data in menus.py,
each task is a flow in its own module, and every word shown is in text.py.

SR-6 here: the PIN is typed only into a masked entry (one `*` per digit), kept
in an object whose repr hides it, handed to the pump once and dropped; it is
never shown, stored or logged. Every screen times out: locked screens after
30 s without a key, unlocked ones with the session (30 s idle, 4 min inside an
edit), messages after a few seconds. No entry is ever pre-filled.

No stray sequence changes therapy: every change of therapy waits on a Confirm
screen that names it and its values, and only `#` confirms it. In an open
session a key that answers nothing on a guarded screen is a stray key: a digit
on a confirmation, on a page or a menu without that item; a `#` on a
confirmation or a menu after a digit that a message swallowed, or on an amount
entry after more digits than it holds (a PIN typed there). The panel then
says ALREADY UNLOCKED, swallows the rest of the digits and does nothing. So the
PIN typed again into the menu (`1234#`: 1 is Start) opens the Start
confirmation and then only says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pca.controller.alarms import PRIORITY
from pca.controller.auth import Role
from pca.controller.inputs import (
    ClinicianCommand,
    PanelCommand,
    PendingLibrary,
    PendingPrescription,
)
from pca.controller.panel import text as T
from pca.controller.panel.admin import LibraryFlow
from pca.controller.panel.alarms import AlarmsFlow
from pca.controller.panel.history import DoseHistory, HistoryFlow
from pca.controller.panel.host import PanelHost
from pca.controller.panel.menus import MENUS, MenuSpec
from pca.controller.panel.nav import DELIVERING, Flow, Heard
from pca.controller.panel.pin import PinFlow
from pca.controller.panel.program import ProgramFlow
from pca.controller.panel.syringe import SyringeFlow
from pca.controller.panel.therapy import TherapyFlow
from pca.controller.panel.unlock import Home, UnlockFlow
from pca.controller.panel.widgets import (
    ROWS,
    WIDTH,
    Action,
    Ignored,
    Menu,
    MenuItem,
    Message,
    Pages,
    Screen,
    fit,
    num,
    paginate,
    wrap,
)
from pca.controller.ports import NS_PER_S, Display

LOCKED_SCREEN_NS = 30 * NS_PER_S  # a half-typed PIN is dropped after this


class FrontPanel:
    """Keypad state machine: locked home and PIN entry; clinician and admin menus."""

    def __init__(self, host: PanelHost, display: Display | None = None, *,
                 menus: Mapping[Role, MenuSpec] = MENUS) -> None:
        self.host = host
        self.display = display
        self.history = DoseHistory()
        self.rx_pending: PendingPrescription | None = None
        self.library_pending: PendingLibrary | None = None
        self.unlocked = False
        self._last_key_ns = 0
        self._now = 0
        self._heard: Heard | None = None
        self._slipped = False  # a digit was swallowed since the last `#` or `*` (SR-6)
        self.render_error: str | None = None  # the last drawing fault, for the daemon to report
        self.menus = dict(menus)
        self.unlock_flow = UnlockFlow(self)
        flows: list[Flow] = [self.unlock_flow, TherapyFlow(self), ProgramFlow(self),
                             HistoryFlow(self, self.history), AlarmsFlow(self),
                             SyringeFlow(self), PinFlow(self), LibraryFlow(self)]
        self.actions: dict[str, Action] = {}
        for flow in flows:
            for name, action in flow.actions().items():
                if name in self.actions:
                    raise ValueError(f"two flows answer to the action {name!r}")
                self.actions[name] = action
        self.conditions: dict[str, Callable[[], bool]] = {
            "delivering": lambda: self.host.panel_view().state in DELIVERING,
            "rx_waiting": lambda: self.rx_pending is not None,
        }
        for spec in self.menus.values():
            for entry in spec.items:
                if entry.action not in self.actions:
                    raise ValueError(f"menu {spec.title} item {entry.digit}: no flow answers "
                                     f"to the action {entry.action!r}")
                if entry.alt_when and entry.alt_when not in self.conditions:
                    raise ValueError(f"menu {spec.title} item {entry.digit}: unknown "
                                     f"condition {entry.alt_when!r}")
        self.screen: Screen = self._home_screen()

    # ---- what the pump calls -------------------------------------------------------------
    def key(self, key: str, now_ns: int) -> None:
        self._now = now_ns
        self._expire(now_ns)
        self._last_key_ns = now_ns
        screen = self.screen
        if self._stray(key):
            self._ignore(key)
        else:
            screen.key(key)
            if not self.unlocked and isinstance(screen, Message) and key.isdigit() and \
                    isinstance(self.screen, Home):
                # Locked, a digit that ends a message ("Alarm silenced") is the PIN's first:
                # swallowing it would turn the clinician's PIN into a counted wrong one.
                self.screen.key(key)
        if not key.isdigit():
            self._slipped = False
        if self.unlocked and self.host.session_open():
            # The new screen decides the idle limit: 4 min from entering an edit.
            self.host.touch_session(editing=self.screen.editing)

    def tick(self, now_ns: int) -> None:
        """Screen timeouts and the display; called every control tick."""
        self._now = now_ns
        self._expire(now_ns)
        if self.display is None:
            return
        try:
            lines = self.render(now_ns)
        except Exception as err:  # drawing must never stop the control loop
            self.render_error = f"{type(err).__name__}: {err}"
            lines = list(T.DISPLAY_FAULT)
        self.display.show(lines, now_ns)

    def answer_press(self, granted: bool, reason: str | None, wait_ns: int | None,
                     now_ns: int) -> None:
        """The pump answered a press of the bolus button (and sounded the tone): say it on
        the home screen in the patient's words. `wait_ns`: until a dose is available."""
        self._now = now_ns
        self.unlock_flow.answer_press(granted, reason, wait_ns, now_ns)

    def pending(self, item: PendingPrescription | PendingLibrary, now_ns: int) -> None:
        """A pharmacy file arrived (the pump has logged it); the newest one waits here."""
        self._now = now_ns
        if isinstance(item, PendingPrescription):
            self.rx_pending = item
        else:
            self.library_pending = item

    def observe(self, type_: str, fields: Mapping[str, Any], pump_ns: int) -> None:
        """Every event the pump logs (and, at start-up, every event in the log)."""
        self.history.observe(type_, fields, pump_ns)
        if self._heard is not None:
            self._heard.append((type_, fields))

    def render(self, now_ns: int) -> list[str]:
        lines = [fit(line) for line in self.screen.render(now_ns)][:ROWS]
        lines += [""] * (ROWS - len(lines))
        if isinstance(self.screen, Menu):
            # A high-priority alarm that starts while a clinician is in the menu is named
            # on the screen they are looking at, not only on the home screen.
            alarms = self.host.panel_view().alarms
            if alarms and PRIORITY.get(alarms[0]) == "high":
                short = T.ALARM_SHORT.get(alarms[0], alarms[0].upper())
                lines[0] = fit(short if len(short) >= WIDTH else "!" + short)
        return lines

    def home_lines(self) -> list[str]:
        return self.unlock_flow.home_lines()

    def next_deadline_ns(self) -> int | None:
        """When the current screen gives up by itself (for a loop that sleeps until then)."""
        limit = self._own_timeout()
        return None if limit is None else self._last_key_ns + limit

    # ---- stray keys (SR-6) ----------------------------------------------------------------
    def _stray(self, key: str) -> bool:
        """A key that answers nothing on the guarded screen it hits, in an open session."""
        if not self.unlocked:
            return False
        screen = self.screen
        if key.isdigit():
            if screen.takes(key):
                return False
            if screen.guarded:
                return True
            self._slipped = True  # swallowed (a message any key dismisses): not an answer
            return False
        return key == "#" and ((self._slipped and screen.strict) or screen.overflowed())

    def _ignore(self, key: str) -> None:
        if key == "#":
            self._ignored()
        else:
            self.show(Ignored(done=self._ignored, back=self.main_menu))

    def _ignored(self) -> None:
        self.say(*T.STRAY_DONE)

    # ---- timeouts ------------------------------------------------------------------------
    def _own_timeout(self) -> int | None:
        if self.screen.timeout_ns is not None:
            return self.screen.timeout_ns
        if not self.unlocked and not isinstance(self.screen, Home):
            return LOCKED_SCREEN_NS
        return None

    def _expire(self, now_ns: int) -> None:
        if self.unlocked and not self.host.session_open():
            self.home()  # SR-6: the session relocked (idle, or locked elsewhere)
            return
        limit = self._own_timeout()
        if limit is not None and now_ns >= self._last_key_ns + limit:
            screen = self.screen
            self._last_key_ns = now_ns
            screen.timed_out()
            if self.screen is screen:
                self.home() if not self.unlocked else self.main_menu()

    # ---- what a flow may ask (nav.Nav) -----------------------------------------------------
    @property
    def now_ns(self) -> int:
        return self._now

    def show(self, screen: Screen) -> None:
        self.screen = screen
        self._last_key_ns = self._now

    def _home_screen(self) -> Home:
        return Home(self.unlock_flow, lambda: self.home_lines())

    def home(self) -> None:
        """Back to the locked home screen; whatever was half-typed is dropped."""
        self.unlocked = False
        self._slipped = False
        self.show(self._home_screen())

    def say(self, *lines: str, then: Action | None = None) -> None:
        self.show(Message(lines, then or (self.main_menu if self.unlocked else self.home)))

    def run(self, action: str) -> None:
        self.actions[action]()

    def submit(self, command: ClinicianCommand | PanelCommand) -> Heard:
        """Hand a command to the pump; returns the events it logged doing so."""
        self._heard = []
        try:
            self.host.submit(command)
            return self._heard
        finally:
            self._heard = None

    @staticmethod
    def _refusal(events: Sequence[tuple[str, Mapping[str, Any]]]) -> str | None:
        for type_, fields in events:
            if type_ == "auth" and fields.get("outcome") == "locked_out":
                return T.REFUSED_PIN_WAIT.format(s=num(float(fields.get("retry_in_s", 0)), 0))
            if type_ == "action_rejected":
                return str(fields.get("reason", T.REFUSED_UNKNOWN))
            if type_ == "prescription_rejected":
                errors = fields.get("errors") or [T.REFUSED_UNKNOWN]
                return str(errors[0])
        return None

    def report(self, events: Sequence[tuple[str, Mapping[str, Any]]], ok: str) -> None:
        refusal = self._refusal(events)
        if refusal is None:
            self.say(ok)
        else:
            self.show(Pages(paginate([T.REFUSED_HEAD, *wrap(refusal)]), back=self.main_menu))

    # ---- menus (menus.py) ----------------------------------------------------------------
    def main_menu(self) -> None:
        """The menu of the session's role (clinician or admin)."""
        if not self.unlocked:
            self.home()
            return
        self._menu(self.host.session_role)

    def admin_menu(self) -> None:
        self._menu("admin")

    def _menu(self, role: Role) -> None:
        spec = self.menus[role]
        self.show(Menu(spec.title, lambda: self._items(spec), back=self.lock))

    def _items(self, spec: MenuSpec) -> list[MenuItem]:
        """The items as they are now (labels follow the pump's state)."""
        items = []
        for entry in spec.items:
            if entry.role != self.host.session_role:
                continue  # never offered to a session of another role
            alt = bool(entry.alt_when) and self.conditions[entry.alt_when]()
            label = T.LABEL[entry.alt_label if alt else entry.label]
            items.append(MenuItem(entry.digit, label, self.actions[entry.action]))
        return items

    def lock(self) -> None:
        self.host.lock_session("clinician")
        self.home()
