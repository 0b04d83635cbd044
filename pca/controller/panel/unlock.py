"""The locked side: the home screen anyone walking up sees, and unlocking with a PIN (SR-6).

The home screen also answers the patient's bolus button: for a few seconds after a
press it says "dose starting" or "not now" (with the time until a dose is
available where the pump knows it), in plain words, never the clinician's
reason codes; the pump sounds the information tone and blinks the green lamp.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pca.controller.auth import Role, SecretPin
from pca.controller.panel import text as T
from pca.controller.panel.nav import Flow
from pca.controller.panel.widgets import MESSAGE_NS, WIDTH, PinEntry, Screen, fit, num
from pca.controller.ports import NS_PER_S

PRESS_ANSWER_NS = MESSAGE_NS + NS_PER_S  # how long the answer to a press stays on the screen


def press_lines(granted: bool, reason: str | None, wait_ns: int | None) -> tuple[str, str]:
    """The patient's answer to a press, in two lines of plain words."""
    if granted:
        return T.PRESS_GRANTED
    if reason == "in_progress":
        return T.PRESS_NOT_NOW, T.PRESS_RUNNING
    if wait_ns is not None:
        minutes = math.ceil(wait_ns / (60 * NS_PER_S))
        return T.PRESS_NOT_NOW, (T.PRESS_WAIT_MIN.format(min=minutes) if wait_ns >= 60 * NS_PER_S
                                 else T.PRESS_WAIT_SOON)
    return T.PRESS_NOT_NOW, T.PRESS_ASK


class Home(Screen):
    """The locked home screen: state, drug and concentration, rate, reservoir, alarm."""

    def __init__(self, flow: UnlockFlow, lines: Callable[[], list[str]]) -> None:
        self.flow = flow
        self.lines = lines

    def render(self, now_ns: int) -> list[str]:
        return self.lines()

    def key(self, key: str) -> None:
        if key.isdigit():
            self.flow.unlock_screen(first=key)
        elif key == "*":
            self.flow.nav.run("silence")
        elif key == "#":
            self.flow.unlock_screen(first="", role="admin")


class UnlockFlow(Flow):
    _answer: tuple[tuple[str, str], int] | None = None  # the last press: lines, shown until

    def actions(self) -> dict[str, Callable[[], None]]:
        return {}

    def answer_press(self, granted: bool, reason: str | None, wait_ns: int | None,
                     now_ns: int) -> None:
        self._answer = (press_lines(granted, reason, wait_ns), now_ns + PRESS_ANSWER_NS)

    def home_lines(self) -> list[str]:
        nav = self.nav
        view = self.host.panel_view()
        label = T.STATE_LABEL.get(view.state, view.state.upper())
        rate = T.HOME_RATE.format(rate=num(view.rate_ml_h, 2)) if view.rate_ml_h > 0 else ""
        first = f"{label:<{WIDTH - len(rate)}}{rate}" if rate else label
        if view.rx is None:
            second = T.HOME_NO_RX
        else:
            conc = T.HOME_CONCENTRATION.format(conc=num(view.rx.request.concentration_per_ml),
                                               unit=view.rx.drug_unit)
            route = view.rx.request.route
            if route != "iv":
                conc += " " + T.ROUTE_SHORT.get(route, route.upper())
            second = view.rx.request.drug[:WIDTH - len(conc)] + conc
        res = T.HOME_RESERVOIR.format(ml=view.reservoir_ml)
        flag = ""
        if view.silenced:
            flag = T.HOME_SILENCED
        elif len(view.alarms) > 1:
            flag = T.HOME_MORE_ALARMS.format(n=len(view.alarms) - 1)
        elif view.next_pib_s is not None:
            flag = T.HOME_NEXT_PIB.format(min=max(0, math.ceil(view.next_pib_s / 60)))
        if not flag and view.battery and len(res) + 1 + len(view.battery) <= WIDTH:
            flag = view.battery
        third = f"{res:<{WIDTH - len(flag)}}{flag}" if flag else res
        if view.alarms:
            name = view.alarms[0]
            fourth = T.ALARM_SHORT.get(name, name.upper().replace("_", " "))
        elif nav.rx_pending is not None:
            fourth = T.HOME_RX_WAITING
        elif nav.library_pending is not None:
            fourth = T.HOME_LIBRARY_WAITING
        else:
            fourth = T.HOME_LOCKED
        if self._answer is not None and nav.now_ns < self._answer[1]:
            (third, answer), _ = self._answer
            if answer and not view.alarms:  # an alarm keeps its line
                fourth = answer
        return [fit(first), fit(second), fit(third), fit(fourth)]

    def _pin_note(self, role: Role = "clinician") -> str:
        status = self.host.pin_status()
        if status.problem is not None:
            return T.PIN_NOTE_STORE
        if not status.provisioned:
            return T.PIN_NOTE_NONE
        if status.wait_s > 0:
            return T.PIN_NOTE_WAIT.format(s=num(status.wait_s, 0))
        return T.UNLOCK_ADMIN_NOTE if role == "admin" else ""

    def unlock_screen(self, first: str, role: Role = "clinician") -> None:
        """Digits on the home screen start the clinician PIN; `#` first, the admin PIN."""
        nav = self.nav
        entry = PinEntry(T.UNLOCK_TITLE if role == "clinician" else T.UNLOCK_ADMIN_TITLE,
                         lambda pin: self._unlock(pin, role), nav.home,
                         note=lambda: self._pin_note(role), editing=False)
        if first:
            entry.key(first)
        nav.show(entry)

    def _unlock(self, pin: SecretPin, role: Role) -> None:
        nav = self.nav
        entry = nav.screen
        if not self.host.authenticate(pin, role):
            if isinstance(entry, PinEntry):
                status = self.host.pin_status()
                entry.message = T.WRONG_PIN if status.wait_s <= 0 else \
                    T.WRONG_PIN_WAIT.format(s=num(status.wait_s, 0))
                if status.problem is not None or not status.provisioned:
                    entry.message = ""
            return
        nav.unlocked = True
        if self.host.session_role == "admin":
            nav.admin_menu()
        elif nav.rx_pending is not None:
            nav.run("review_rx")
        else:
            nav.main_menu()
