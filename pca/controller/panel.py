"""The clinician front panel: keypad flows and screens (20x4) on a 4x3 keypad, over the pump.

The panel decides nothing about doses. It is a menu state machine (one screen at
a time; keys move between screens) that turns keys into the same commands a
scenario sends (ClinicianCommand / PanelCommand, through `host.submit`), which
the pump authorises, checks and logs. Keys: digits, `*` back/cancel/delete,
`#` enter/next.

SR-6 here: the PIN is typed only into a masked entry (one `*` per digit), kept
in an object whose repr hides it, handed to the pump once and dropped; it is
never shown, stored or logged. Every screen times out: locked screens after
30 s without a key, unlocked ones with the session (30 s idle, 4 min inside an
edit), messages after a few seconds. No entry is ever pre-filled.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

from pca.controller.alarms import PRIORITY, RANK
from pca.controller.auth import PIN_MAX_DIGITS, PIN_MIN_DIGITS, Role, SecretPin
from pca.controller.inputs import (
    ClinicianCommand,
    PanelCommand,
    PendingLibrary,
    PendingPrescription,
)
from pca.controller.ports import NS_PER_S, Display
from pca.therapy.drugs import DrugLibrary
from pca.therapy.prescription import Prescription, RxRequest
from pca.therapy.units import show

WIDTH = 20
ROWS = 4
LOCKED_SCREEN_NS = 30 * NS_PER_S  # a half-typed PIN is dropped after this
MESSAGE_NS = 4 * NS_PER_S
HOUR_NS = 3600 * NS_PER_S
HISTORY_MAX_H = 72
SYRINGE_MAX_ML = 100

STATE_LABEL = {
    "unprogrammed": "NO PROGRAM",
    "stopped": "STOPPED",
    "running": "RUNNING",
    "kvo": "KVO",
    "pca_dose": "PCA DOSE",
    "clinician_dose": "CLIN BOLUS",
    "loading_dose": "LOADING",
    "alarm": "ALARM STOP",
}
# Home screen: the alarm and what to do, in 20 characters.
ALARM_SHORT = {
    "occlusion": "OCCLUSION:check line",
    "air_in_line": "AIR IN LINE:re-prime",
    "reservoir_empty": "EMPTY: new syringe",
    "battery_depleted": "BATTERY FLAT:replace",
    "door_open": "DOOR OPEN: close it",
    "motor_fault": "MOTOR FAULT:service",
    "log_failure": "LOG FAULT: service",
    "self_test_failed": "SELF TEST: service",
    "reservoir_low": "RES LOW: get syringe",
    "battery_low": "BATTERY LOW:replace",
    "dose_limit_reached": "DOSE LIMIT: see Rx",
    "delivery_interrupted": "INTERRUPTED: restart",
    "button_stuck": "BUTTON STUCK:release",
}
# Alarms screen: the full instruction.
ALARM_HELP = {
    "occlusion": "Line blocked. Open clamps, remove kinks, then clear the alarm (2).",
    "air_in_line": "Air in the line. Remove it and re-prime, then clear the alarm (2).",
    "reservoir_empty": "Syringe empty. Load a new syringe (menu 7); delivery is stopped.",
    "battery_depleted": "Battery flat: delivery stopped. Replace the battery, then clear.",
    "door_open": "Syringe door open: delivery stopped. Close and lock it, then clear.",
    "motor_fault": "Motor fault: delivery stopped. Take the pump out of use; call service.",
    "log_failure": "Event log cannot be written: delivery stopped. Call service.",
    "self_test_failed": "Self test failed: the pump will not deliver. Call service.",
    "reservoir_low": "Syringe nearly empty. Prepare a new syringe.",
    "battery_low": "Battery low. Replace or charge it soon.",
    "dose_limit_reached": "Dose limit reached: KVO until the window has room. Review the "
                          "patient and the prescription.",
    "delivery_interrupted": "Delivery was interrupted (restart). Check the patient and the "
                            "line, then start again (menu 1).",
    "button_stuck": "Bolus button held down. Release it or check the cord.",
}


# ---- what the panel needs from the pump ---------------------------------------------------
@dataclass(frozen=True)
class PanelView:
    """What the home screen shows, read from the pump at one instant."""

    state: str
    rate_ml_h: float
    reservoir_ml: float
    alarms: tuple[str, ...]  # highest priority first
    silenced: bool
    rx: Prescription | None
    library: DrugLibrary


@dataclass(frozen=True)
class PinStatus:
    provisioned: bool  # a PIN exists for some role
    wait_s: float  # seconds until the next attempt is accepted (0: now)
    problem: str | None  # the stored PINs cannot be checked (pepper missing or changed)


@dataclass(frozen=True)
class RxReview:
    """A pharmacy prescription checked against the library, nothing activated."""

    request: RxRequest | None
    prescription: Prescription | None  # None: refused (see errors)
    errors: tuple[str, ...]
    soft: tuple[str, ...]  # soft-limit breaches: activation needs an override


class PanelHost(Protocol):
    """What the panel may ask of the pump (pump.py, section 'what the front panel may ask')."""

    session_role: Role

    def authenticate(self, pin: str, role: Role = "clinician") -> bool: ...

    def session_open(self) -> bool: ...

    def touch_session(self, editing: bool) -> None: ...

    def lock_session(self, reason: str) -> None: ...

    def submit(self, command: ClinicianCommand | PanelCommand) -> None: ...

    def panel_view(self) -> PanelView: ...

    def pin_status(self) -> PinStatus: ...

    def review_prescription(self, item: PendingPrescription) -> RxReview: ...

    def dismiss_prescription(self, item: PendingPrescription, reason: str) -> None: ...

    def change_pin(self, old_pin: str, new_pin: str) -> str | None: ...

    def reset_pin(self, role: Role, new_pin: str) -> str | None: ...

    def review_library(self, item: PendingLibrary) -> DrugLibrary | str: ...

    def install_library(self, item: PendingLibrary, pin: str) -> str | None: ...


# ---- text helpers ------------------------------------------------------------------------
def fit(text: str) -> str:
    return text[:WIDTH]


def num(value: Fraction | float, places: int = 3) -> str:
    """A short decimal: 1, 0.5, 0.05, 0.333."""
    text = f"{float(value):.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def wrap(text: str, width: int = WIDTH) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def paginate(lines: Sequence[str], per_page: int = ROWS - 1) -> list[list[str]]:
    lines = list(lines) or [""]
    return [lines[i:i + per_page] for i in range(0, len(lines), per_page)]


def row(label: str, a: str, b: str) -> str:
    """Side by side: the entered unit and the other one, so a 10x error is visible."""
    return f"{label:<8}{a:>6}{b:>6}"[:WIDTH]


def amount_pair(rx: Prescription, amount: Fraction, ml: Fraction) -> tuple[str, str]:
    """(amount in the drug unit, in mL) for display."""
    in_unit = ml * rx.request.concentration_per_ml
    return num(in_unit), num(ml)


def rx_pages(rx: Prescription, title: str, extra: Sequence[str] = ()) -> list[list[str]]:
    """The prescription as pages of three lines: drug unit and mL side by side."""
    req = rx.request
    unit = rx.drug_unit
    header = row("", unit, "mL")

    def pair(label: str, amount: Fraction, ml: Fraction) -> str:
        a, b = amount_pair(rx, amount, ml)
        return row(label, a, b)

    limit = "none" if rx.dose_limit_ml is None else ""
    pages = [
        [fit(title), fit(req.drug), fit(f"{num(req.concentration_per_ml)} {unit}/mL")],
        [header, pair("PCA dose", req.pca_dose, rx.pca_dose_ml),
         pair("Basal/h", req.basal_rate_per_h, rx.basal_ml_h)],
        [header,
         pair(f"Limit/{req.dose_limit_window_h}h", req.dose_limit or Fraction(0),
              rx.dose_limit_ml) if rx.dose_limit_ml is not None else f"Limit   {limit}",
         pair("Loading", req.loading_dose, rx.loading_dose_ml)],
        [header, pair("ClinMax", req.clinician_bolus_max, rx.clinician_bolus_max_ml),
         fit(f"Lockout {num(req.lockout_min)} min")],
        [fit("Max PCA/h " + ("no limit" if req.max_pca_per_h is None
                             else str(req.max_pca_per_h))),
         fit(f"Entered in {'mL' if req.dose_unit == 'ml' else req.dose_unit}"),
         fit(f"Overrides: {len(rx.overrides)}" if rx.overrides else "No overrides")],
    ]
    pages += paginate(list(extra))
    return pages


# ---- the history clinicians judge pain control by -----------------------------------------
@dataclass
class HistorySummary:
    hours: int
    given: int
    attempted: int
    per_hour: list[tuple[int, int]]  # (given, attempted) for each hour back, newest first
    ml: dict[str, float]  # by source
    amount: dict[str, float] | None  # by source in `unit`, None when concentrations differ
    unit: str


@dataclass
class DoseHistory:
    """PCA requests and deliveries in pump time, rebuilt from the log at start-up and fed
    every event after; cleared for a new patient."""

    requests: list[tuple[int, bool]] = field(default_factory=list)  # pump_ns, granted
    deliveries: list[tuple[int, str, float, float | None]] = field(default_factory=list)
    unit: str = ""
    _conc: float | None = None

    def observe(self, type_: str, fields: Mapping[str, Any], pump_ns: int) -> None:
        if type_ == "pca_request":
            self.requests.append((pump_ns, fields.get("outcome") == "granted"))
        elif type_ == "delivery":
            ml = float(fields.get("ml", 0.0))
            if ml > 0:
                amount = None if self._conc is None else ml * self._conc
                self.deliveries.append((pump_ns, str(fields.get("source")), ml, amount))
        elif type_ == "prescription_activated":
            self._conc = float(fields["concentration_per_ml"])
            self.unit = str(fields.get("drug_unit", ""))
        elif type_ == "new_patient":
            self.requests.clear()
            self.deliveries.clear()
            self._conc = None
        if len(self.requests) + len(self.deliveries) > 20_000:
            self._prune(pump_ns)

    def _prune(self, now_ns: int) -> None:
        horizon = now_ns - (HISTORY_MAX_H + 1) * HOUR_NS
        self.requests = [r for r in self.requests if r[0] > horizon]
        self.deliveries = [d for d in self.deliveries if d[0] > horizon]

    def summary(self, hours: int, now_ns: int) -> HistorySummary:
        since = now_ns - hours * HOUR_NS
        per_hour = []
        for k in range(hours):
            hi, lo = now_ns - k * HOUR_NS, now_ns - (k + 1) * HOUR_NS
            in_hour = [g for t, g in self.requests if lo < t <= hi]
            per_hour.append((sum(in_hour), len(in_hour)))
        ml: dict[str, float] = {}
        amount: dict[str, float] | None = {}
        for t, source, volume, in_unit in self.deliveries:
            if since < t <= now_ns:
                ml[source] = ml.get(source, 0.0) + volume
                if amount is not None:
                    if in_unit is None:
                        amount = None
                    else:
                        amount[source] = amount.get(source, 0.0) + in_unit
        given = sum(g for g, _ in per_hour)
        attempted = sum(a for _, a in per_hour)
        return HistorySummary(hours, given, attempted, per_hour, ml, amount, self.unit)


# ---- screens -----------------------------------------------------------------------------
Action = Callable[[], None]


class Screen:
    """One state of the panel: what it shows, what each key does, when it gives up."""

    editing = False  # inside an edit: the session stays open 4 min (SR-6)
    timeout_ns: int | None = None  # own timeout; None: the session's (or 30 s when locked)

    def render(self, now_ns: int) -> list[str]:
        raise NotImplementedError

    def key(self, key: str) -> None:
        raise NotImplementedError

    def timed_out(self) -> None:
        """Called when the screen's own timeout passes (default: the panel goes home)."""


class Message(Screen):
    """A short message; any key, or a few seconds, moves on."""

    timeout_ns = MESSAGE_NS

    def __init__(self, lines: Sequence[str], then: Action) -> None:
        self.lines = [fit(line) for line in lines]
        self.then = then

    def render(self, now_ns: int) -> list[str]:
        return self.lines

    def key(self, key: str) -> None:
        self.then()

    def timed_out(self) -> None:
        self.then()


class Pages(Screen):
    """Read-only pages of three lines; `#` next (and on the last page: enter), `*` back."""

    def __init__(self, pages: Sequence[Sequence[str]], *, back: Action,
                 enter: Action | None = None, enter_label: str = "ok",
                 back_label: str = "back", digits: Mapping[str, Action] | None = None,
                 digit_hint: str = "") -> None:
        self.pages = [list(p) for p in pages] or [[""]]
        self.back = back
        self.enter = enter
        self.enter_label = enter_label
        self.back_label = back_label
        self.digits = dict(digits or {})
        self.digit_hint = digit_hint
        self.page = 0

    def render(self, now_ns: int) -> list[str]:
        lines = [fit(line) for line in self.pages[self.page]][:ROWS - 1]
        lines += [""] * (ROWS - 1 - len(lines))
        last = self.page == len(self.pages) - 1
        if last and self.enter is None:
            foot = f"*={self.back_label}"
        elif last:
            foot = f"#={self.enter_label} *={self.back_label}"
        else:
            foot = f"#=next *={self.back_label}"
        if self.digit_hint:
            foot = f"{self.digit_hint} {foot}"
        return [*lines, fit(foot)]

    def key(self, key: str) -> None:
        if key == "*":
            self.back()
        elif key == "#":
            if self.page < len(self.pages) - 1:
                self.page += 1
            elif self.enter is not None:
                self.enter()
            else:
                self.page = 0
        elif key in self.digits:
            self.digits[key]()


@dataclass(frozen=True)
class MenuItem:
    digit: str
    label: str
    action: Action


class Menu(Screen):
    """Numbered items, two per line; a digit chooses, `#` pages, `*` leaves."""

    PER_PAGE = 6

    def __init__(self, title: str, items: Sequence[MenuItem], back: Action) -> None:
        self.title = title
        self.items = list(items)
        self.back = back
        self.page = 0

    def pages(self) -> int:
        return max(1, -(-len(self.items) // self.PER_PAGE))

    def render(self, now_ns: int) -> list[str]:
        many = self.pages() > 1
        head = f"{self.title} {self.page + 1}/{self.pages()}" if many else self.title
        tail = "#more *lock" if many else "*=lock"
        lines = [fit(f"{head:<{WIDTH - len(tail)}}{tail}")]
        shown = self.items[self.page * self.PER_PAGE:(self.page + 1) * self.PER_PAGE]
        for i in range(0, len(shown), 2):
            cells = [f"{it.digit} {it.label}"[:10] for it in shown[i:i + 2]]
            lines.append(fit("".join(f"{c:<10}" for c in cells).rstrip()))
        return lines

    def key(self, key: str) -> None:
        if key == "*":
            self.back()
        elif key == "#":
            self.page = (self.page + 1) % self.pages()
        else:
            for item in self.items:
                if item.digit == key:
                    item.action()
                    return


class _Digits:
    """Typed digits of a PIN; never shows them (repr, str in an f-string of a crash)."""

    __slots__ = ("_chars",)

    def __init__(self) -> None:
        self._chars: list[str] = []

    def __repr__(self) -> str:
        return "<PIN entry " + "*" * len(self._chars) + ">"

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self._chars)

    def add(self, digit: str) -> None:
        self._chars.append(digit)

    def clear(self) -> None:
        self._chars.clear()

    def take(self) -> SecretPin:
        pin = SecretPin("".join(self._chars))
        self._chars.clear()
        return pin


class PinEntry(Screen):
    """A masked PIN entry: one `*` per digit; `#` enters, `*` clears (then goes back)."""

    def __init__(self, title: str, on_enter: Callable[[SecretPin], None], back: Action, *,
                 note: Callable[[], str] | None = None, editing: bool = True) -> None:
        self.title = title
        self.on_enter = on_enter
        self.back = back
        self.note = note
        self.editing = editing
        self.digits = _Digits()
        self.message = ""

    def render(self, now_ns: int) -> list[str]:
        note = self.message or (self.note() if self.note else "")
        return [fit(self.title), fit("PIN: " + "*" * len(self.digits)), fit(note),
                "#=enter *=clear"]

    def key(self, key: str) -> None:
        if key == "*":
            if len(self.digits):
                self.digits.clear()
                self.message = ""
            else:
                self.back()
        elif key == "#":
            if not PIN_MIN_DIGITS <= len(self.digits) <= PIN_MAX_DIGITS:
                self.digits.clear()
                self.message = f"PIN is {PIN_MIN_DIGITS}-{PIN_MAX_DIGITS} digits"
                return
            self.message = ""
            self.on_enter(self.digits.take())
        elif key.isdigit() and len(self.digits) < PIN_MAX_DIGITS:
            self.digits.add(key)
            self.message = ""


class NumberEntry(Screen):
    """A decimal typed without a decimal key: digits shift in from the right
    (1, 5, 0 with 2 places is 1.50); `*` deletes a digit, then goes back; `#` enters.
    Always starts empty: nothing is carried over from a previous entry or patient."""

    editing = True

    def __init__(self, title: str, unit: str, *, places: int, on_enter: Callable[[Fraction],
                 None], back: Action, hint: str = "", max_digits: int = 5) -> None:
        self.title = title
        self.unit = unit
        self.places = places
        self.on_enter = on_enter
        self.back = back
        self.hint = hint
        self.max_digits = max_digits
        self.typed = ""
        self.message = ""

    @property
    def value(self) -> Fraction:
        return Fraction(int(self.typed or "0"), 10 ** self.places)

    def render(self, now_ns: int) -> list[str]:
        shown = f"{float(self.value):.{self.places}f}" if self.typed else "_"
        return [fit(self.title), fit(f"{shown} {self.unit}"), fit(self.message or self.hint),
                "#=ok *=del/back"]

    def key(self, key: str) -> None:
        if key == "*":
            if self.typed:
                self.typed = self.typed[:-1]
                self.message = ""
            else:
                self.back()
        elif key == "#":
            if not self.typed:
                self.message = "type an amount"
                return
            self.on_enter(self.value)
        elif key.isdigit() and len(self.typed) < self.max_digits:
            if self.typed or key != "0":
                self.typed += key
            self.message = ""

    def refuse(self, message: str) -> None:
        self.typed = ""
        self.message = message


class Home(Screen):
    """The locked home screen: state, drug and concentration, rate, reservoir, alarm."""

    def __init__(self, panel: FrontPanel) -> None:
        self.panel = panel

    def render(self, now_ns: int) -> list[str]:
        return self.panel.home_lines()

    def key(self, key: str) -> None:
        if key.isdigit():
            self.panel.unlock_screen(first=key)
        elif key == "*":
            self.panel.silence()
        elif key == "#":
            self.panel.unlock_screen(first="", role="admin")


class AlarmsScreen(Screen):
    """Active alarms, one per page with what to do; 1 silences, 2 clears (with PIN session)."""

    def __init__(self, panel: FrontPanel) -> None:
        self.panel = panel
        self.page = 0

    def render(self, now_ns: int) -> list[str]:
        alarms = self.panel.host.panel_view().alarms
        if not alarms:
            return ["NO ACTIVE ALARMS", "", "", "*=back"]
        self.page %= len(alarms)
        name = alarms[self.page]
        prio = PRIORITY.get(name, "low").upper()
        head = fit(f"{self.page + 1}/{len(alarms)} {name.upper().replace('_', ' ')}")
        text = wrap(f"{prio}: " + ALARM_HELP.get(name, "See the manual."))
        return [head, *[fit(t) for t in text[:2]], "1=silnc 2=clr #=next"[:WIDTH]]

    def key(self, key: str) -> None:
        if key == "*":
            self.panel.main_menu()
        elif key == "#":
            self.page += 1
        elif key == "1":
            self.panel.silence(then=self.panel.main_menu)
        elif key == "2":
            self.panel.clear_alarms()


# ---- the panel -----------------------------------------------------------------------------
class FrontPanel:
    """Keypad state machine: locked home and PIN entry; clinician and admin menus."""

    def __init__(self, host: PanelHost, display: Display | None = None) -> None:
        self.host = host
        self.display = display
        self.history = DoseHistory()
        self.rx_pending: PendingPrescription | None = None
        self.library_pending: PendingLibrary | None = None
        self.unlocked = False
        self.screen: Screen = Home(self)
        self._last_key_ns = 0
        self._now = 0
        self._heard: list[tuple[str, Mapping[str, Any]]] | None = None
        self.render_error: str | None = None  # the last drawing fault, for the daemon to report

    # ---- what the pump calls -------------------------------------------------------------
    def key(self, key: str, now_ns: int) -> None:
        self._now = now_ns
        self._expire(now_ns)
        self._last_key_ns = now_ns
        self.screen.key(key)
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
            lines = ["DISPLAY FAULT", "Delivery is not", "affected. Call", "service."]
        self.display.show(lines, now_ns)

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
                short = ALARM_SHORT.get(alarms[0], alarms[0].upper())
                lines[0] = fit(short if len(short) >= WIDTH else "!" + short)
        return lines

    def next_deadline_ns(self) -> int | None:
        """When the current screen gives up by itself (for a loop that sleeps until then)."""
        limit = self._own_timeout()
        return None if limit is None else self._last_key_ns + limit

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

    # ---- navigation ----------------------------------------------------------------------
    def show(self, screen: Screen) -> None:
        self.screen = screen
        self._last_key_ns = self._now

    def home(self) -> None:
        """Back to the locked home screen; whatever was half-typed is dropped."""
        self.unlocked = False
        self.show(Home(self))

    def say(self, *lines: str, then: Action | None = None) -> None:
        self.show(Message(lines, then or (self.main_menu if self.unlocked else self.home)))

    def _submit(self, command: ClinicianCommand | PanelCommand) -> list[tuple[str,
                                                                              Mapping[str, Any]]]:
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
                return f"PIN locked: wait {num(float(fields.get('retry_in_s', 0)), 0)} s"
            if type_ == "action_rejected":
                return str(fields.get("reason", "refused"))
            if type_ == "prescription_rejected":
                errors = fields.get("errors") or ["refused"]
                return str(errors[0])
        return None

    def _report(self, events: Sequence[tuple[str, Mapping[str, Any]]], ok: str) -> None:
        refusal = self._refusal(events)
        if refusal is None:
            self.say(ok)
        else:
            self.show(Pages(paginate(["REFUSED:", *wrap(refusal)]), back=self.main_menu))

    # ---- locked side ---------------------------------------------------------------------
    def home_lines(self) -> list[str]:
        view = self.host.panel_view()
        label = STATE_LABEL.get(view.state, view.state.upper())
        rate = f"{num(view.rate_ml_h, 2)} mL/h" if view.rate_ml_h > 0 else ""
        first = f"{label:<{WIDTH - len(rate)}}{rate}" if rate else label
        if view.rx is None:
            second = "No prescription"
        else:
            conc = f" {num(view.rx.request.concentration_per_ml)} {view.rx.drug_unit}/mL"
            second = view.rx.request.drug[:WIDTH - len(conc)] + conc
        res = f"Res {view.reservoir_ml:.1f} mL"
        flag = ""
        if view.silenced:
            flag = "SILENCED"
        elif len(view.alarms) > 1:
            flag = f"+{len(view.alarms) - 1} alarm"
        third = f"{res:<{WIDTH - len(flag)}}{flag}" if flag else res
        if view.alarms:
            name = view.alarms[0]
            fourth = ALARM_SHORT.get(name, name.upper().replace("_", " "))
        elif self.rx_pending is not None:
            fourth = "New Rx: PIN then #"
        elif self.library_pending is not None:
            fourth = "New library: admin"
        else:
            fourth = "Locked: PIN then #"
        return [fit(first), fit(second), fit(third), fit(fourth)]

    def _pin_note(self) -> str:
        status = self.host.pin_status()
        if status.problem is not None:
            return "PIN store: see log"
        if not status.provisioned:
            return "No PIN set yet"
        if status.wait_s > 0:
            return f"Wait {num(status.wait_s, 0)} s"
        return ""

    def unlock_screen(self, first: str, role: Role = "clinician") -> None:
        """Digits on the home screen start the clinician PIN; `#` first, the admin PIN."""
        entry = PinEntry("ENTER PIN" if role == "clinician" else "ADMIN PIN",
                         lambda pin: self._unlock(pin, role), self.home, note=self._pin_note,
                         editing=False)
        if first:
            entry.key(first)
        self.show(entry)

    def _unlock(self, pin: SecretPin, role: Role) -> None:
        entry = self.screen
        if not self.host.authenticate(pin, role):
            if isinstance(entry, PinEntry):
                status = self.host.pin_status()
                entry.message = "Wrong PIN" if status.wait_s <= 0 else \
                    f"Wrong PIN: wait {num(status.wait_s, 0)}s"
                if status.problem is not None or not status.provisioned:
                    entry.message = ""
            return
        self.unlocked = True
        if self.host.session_role == "admin":
            self.admin_menu()
        elif self.rx_pending is not None:
            self.review_rx()
        else:
            self.main_menu()

    def silence(self, then: Action | None = None) -> None:
        if not self.host.panel_view().alarms:
            if then is not None:
                self.say("No alarm to silence", then=then)
            return
        self._submit(PanelCommand("silence"))
        self.say("Alarm silenced", "for 2 minutes", "(not cleared)", then=then)

    # ---- clinician menu ------------------------------------------------------------------
    def main_menu(self) -> None:
        if not self.unlocked:
            self.home()
            return
        if self.host.session_role == "admin":
            self.admin_menu()
            return
        view = self.host.panel_view()
        delivering = view.state in ("running", "kvo", "pca_dose", "clinician_dose",
                                    "loading_dose")
        items = [
            MenuItem("1", "Stop" if delivering else "Start", self.start_stop),
            MenuItem("2", "Bolus", self.clinician_bolus),
            MenuItem("3", "Loading", self.loading_dose),
            MenuItem("4", "View Rx", self.view_rx),
            MenuItem("5", "History", self.history_screen),
            MenuItem("6", "Alarms", lambda: self.show(AlarmsScreen(self))),
            MenuItem("7", "Syringe", self.new_syringe),
            MenuItem("8", "New pt", self.new_patient),
            MenuItem("9", "Chg PIN", self.change_pin),
            MenuItem("0", "New Rx!" if self.rx_pending else "New Rx", self.review_rx),
        ]
        self.show(Menu("MENU", items, back=self.lock))

    def lock(self) -> None:
        self.host.lock_session("clinician")
        self.home()

    def start_stop(self) -> None:
        view = self.host.panel_view()
        if view.state == "stopped":
            rx = view.rx
            assert rx is not None
            basal = f"Basal {num(rx.basal_ml_h, 2)} mL/h"
            self.show(Pages([["START DELIVERY?", fit(rx.request.drug), fit(basal)]],
                            back=self.main_menu, enter=self._start, enter_label="start"))
        elif view.state == "unprogrammed":
            self.say("No prescription:", "load one (menu 0)")
        elif view.state == "alarm":
            self.say("Alarm: clear it", "first (menu 6)")
        else:
            self.show(Pages([["STOP DELIVERY?", "Basal and PCA stop", ""]],
                            back=self.main_menu, enter=self._stop, enter_label="stop"))

    def _start(self) -> None:
        self._report(self._submit(PanelCommand("start")), "Delivery started")

    def _stop(self) -> None:
        self._report(self._submit(PanelCommand("stop")), "Delivery stopped")

    def clinician_bolus(self) -> None:
        view = self.host.panel_view()
        rx = view.rx
        if rx is None or view.state not in ("running", "kvo"):
            self.say("A clinician bolus", "needs the pump", "running")
            return
        cap = rx.request.clinician_bolus_max
        unit = "mL" if rx.request.dose_unit == "ml" else rx.request.dose_unit
        if cap <= 0:
            self.say("This Rx allows no", "clinician bolus")
            return
        entry = NumberEntry("CLINICIAN BOLUS", unit, places=2, back=self.main_menu,
                            hint=f"max {show(cap)} {unit}", on_enter=lambda v: None)

        def entered(amount: Fraction) -> None:
            if amount > cap:
                entry.refuse(f"above max {show(cap)} {unit}")
                return
            self._confirm_bolus(rx, amount)

        entry.on_enter = entered
        self.show(entry)

    def _confirm_bolus(self, rx: Prescription, amount: Fraction) -> None:
        ml = rx.to_ml(amount)
        given, volume = amount_pair(rx, amount, ml)
        lines = ["GIVE BOLUS?", fit(f"{given} {rx.drug_unit} = {volume} mL"),
                 fit(f"{rx.request.drug} {num(rx.request.concentration_per_ml)}"
                     f"{rx.drug_unit}/mL")]

        def give() -> None:
            events = self._submit(ClinicianCommand("clinician_bolus", None, {"amount": amount}))
            self._report(events, "Bolus started")

        self.show(Pages([lines], back=self.main_menu, enter=give, enter_label="give"))

    def loading_dose(self) -> None:
        view = self.host.panel_view()
        rx = view.rx
        if rx is None or view.state not in ("running", "kvo"):
            self.say("A loading dose", "needs the pump", "running")
            return
        if rx.loading_dose_ml <= 0:
            self.say("This Rx has no", "loading dose")
            return
        given, volume = amount_pair(rx, rx.request.loading_dose, rx.loading_dose_ml)
        lines = ["GIVE LOADING DOSE?", fit(f"{given} {rx.drug_unit} = {volume} mL"),
                 fit(rx.request.drug)]

        def give() -> None:
            self._report(self._submit(ClinicianCommand("loading_dose")), "Loading dose started")

        self.show(Pages([lines], back=self.main_menu, enter=give, enter_label="give"))

    def view_rx(self) -> None:
        view = self.host.panel_view()
        if view.rx is None:
            self.say("No prescription", "is active")
            return
        extra = ["Overrides:", *[w for o in view.rx.overrides for w in wrap(o)]] \
            if view.rx.overrides else []
        extra += [f"Lib {view.library.version}"[:WIDTH]]
        self.show(Pages(rx_pages(view.rx, "ACTIVE PRESCRIPTION", extra), back=self.main_menu))

    def history_screen(self) -> None:
        self.show(NumberEntry("HISTORY: LAST HOURS", "h", places=0, back=self.main_menu,
                              hint=f"1 to {HISTORY_MAX_H} h", max_digits=2,
                              on_enter=self._history_for))

    def _history_for(self, hours_value: Fraction) -> None:
        hours = int(hours_value)
        if not 1 <= hours <= HISTORY_MAX_H:
            entry = self.screen
            if isinstance(entry, NumberEntry):
                entry.refuse(f"1 to {HISTORY_MAX_H} h")
            return
        s = self.history.summary(hours, self._now)
        pages = [[fit(f"LAST {hours} H"), fit(f"PCA given   {s.given}"),
                  fit(f"PCA tried   {s.attempted}")]]
        rows_ = [f"{'h ago':<8}{'given':>6}{'tried':>6}"]
        rows_ += [row(f"{k}-{k + 1}", str(g), str(a)) for k, (g, a) in enumerate(s.per_hour)]
        for i in range(0, len(rows_) - 1, 2):
            pages.append([rows_[0], *rows_[1 + i:3 + i]])
        total_ml = sum(s.ml.values())
        unit = s.unit or "mg"
        totals = [row("", unit if s.amount is not None else "", "mL")]
        for source in ("pca", "basal", "clinician", "loading", "kvo"):
            if source in s.ml:
                amount = "" if s.amount is None else num(s.amount.get(source, 0.0), 2)
                totals.append(row(source.capitalize()[:8], amount, num(s.ml[source], 2)))
        totals.append(row("Total", "" if s.amount is None else num(sum(s.amount.values()), 2),
                          num(total_ml, 2)))
        for i in range(0, len(totals) - 1, 2):
            pages.append([totals[0], *totals[1 + i:3 + i]])
        self.show(Pages(pages, back=self.main_menu))

    def clear_alarms(self) -> None:
        if not self.host.panel_view().alarms:
            self.say("No alarm to clear")
            return
        self._report(self._submit(ClinicianCommand("clear_alarm")), "Alarms cleared")

    def new_syringe(self) -> None:
        view = self.host.panel_view()
        if view.state in ("running", "kvo", "pca_dose", "clinician_dose", "loading_dose"):
            self.say("Stop the pump", "before changing", "the syringe (1)")
            return

        def entered(volume: Fraction) -> None:
            if not 0 < volume <= SYRINGE_MAX_ML:
                entry.refuse(f"0.1 to {SYRINGE_MAX_ML} mL")
                return

            def load() -> None:
                events = self._submit(ClinicianCommand("new_syringe", None,
                                                       {"syringe_ml": volume}))
                self._report(events, f"Syringe {num(volume, 1)} mL")

            self.show(Pages([["LOAD NEW SYRINGE?", fit(f"Volume {num(volume, 1)} mL"),
                              "Reservoir resets"]], back=self.main_menu, enter=load,
                            enter_label="load"))

        entry = NumberEntry("NEW SYRINGE VOLUME", "mL", places=1, back=self.main_menu,
                            hint=f"max {SYRINGE_MAX_ML} mL", max_digits=4, on_enter=entered)
        self.show(entry)

    def new_patient(self) -> None:
        view = self.host.panel_view()
        if view.state not in ("unprogrammed", "stopped"):
            self.say("Stop the pump and", "clear alarms before", "a new patient")
            return

        def confirmed() -> None:
            self.rx_pending = None  # a file prepared before this point is not for them
            self._report(self._submit(ClinicianCommand("new_patient")), "New patient: no Rx")

        self.show(Pages([["NEW PATIENT?", "Clears Rx, history,", "lockout and limits"]],
                        back=self.main_menu, enter=confirmed, enter_label="yes"))

    def change_pin(self) -> None:
        own: Role = self.host.session_role
        back = self.main_menu

        def got_old(old: SecretPin) -> None:
            def got_new(new: SecretPin) -> None:
                def got_again(again: SecretPin) -> None:
                    if again != new:
                        self.say("PINs differ:", "nothing changed", then=back)
                        return
                    error = self.host.change_pin(old, new)
                    if error is None:
                        self.say(f"{own.capitalize()} PIN", "changed", then=back)
                    else:
                        self.show(Pages(paginate(["NOT CHANGED:", *wrap(error)]), back=back))

                self.show(PinEntry("REPEAT NEW PIN", got_again, back))

            self.show(PinEntry(f"NEW PIN {PIN_MIN_DIGITS}-{PIN_MAX_DIGITS} DIGITS", got_new,
                               back))

        self.show(PinEntry("CURRENT PIN", got_old, back))

    # ---- programming from a pharmacy file (SR-8) -------------------------------------------
    def review_rx(self) -> None:
        item = self.rx_pending
        if item is None:
            self.say("No Rx file waiting", "(pca rx load, or", "a USB stick)")
            return
        review = self.host.review_prescription(item)
        title = f"NEW RX {item.rx_id}".strip()

        def reject() -> None:
            self.host.dismiss_prescription(item, "rejected on the keypad")
            if self.rx_pending is item:
                self.rx_pending = None
            self.say("Prescription", "rejected: nothing", "changed")

        rx = review.prescription
        if rx is None:
            lines = ["RX REFUSED", *wrap(item.source.rsplit("/", 1)[-1]),
                     *[w for e in review.errors for w in wrap(e)]]
            self.show(Pages(paginate(lines), back=reject, enter=reject, enter_label="dismiss",
                            back_label="dismiss"))
            return
        later = self.main_menu
        pages = rx_pages(rx, title, [f"File {item.source.rsplit('/', 1)[-1]}"[:WIDTH]])

        def after_review() -> None:
            if review.soft:
                self._override(review, item, reject)
            else:
                self._activate(review, item, confirm_soft=False)

        pages.append(["ACTIVATE THIS RX?", "(then your PIN)", ""])
        self.show(Pages(pages, back=later, enter=after_review, enter_label="yes",
                        back_label="later", digits={"0": reject}, digit_hint="0=rej"))

    def _override(self, review: RxReview, item: PendingPrescription, reject: Action) -> None:
        lines = [f"SOFT LIMITS: {len(review.soft)}"]
        for breach in review.soft:
            lines += wrap(breach)
        pages = paginate(lines)
        pages.append(["OVERRIDE SOFT", "LIMITS? (logged)", ""])
        self.show(Pages(pages, back=reject, enter=lambda: self._activate(
            review, item, confirm_soft=True), enter_label="override", back_label="no"))

    def _activate(self, review: RxReview, item: PendingPrescription, *,
                  confirm_soft: bool) -> None:
        def with_pin(pin: SecretPin) -> None:
            events = self._submit(ClinicianCommand("program", pin, {
                "prescription": review.request, "confirm_soft": confirm_soft}))
            if any(t == "prescription_activated" for t, _ in events):
                if self.rx_pending is item:
                    self.rx_pending = None
                self.say("Prescription", "ACTIVE", "Start: menu 1")
            elif any(t == "auth" and f.get("outcome") == "failed" for t, f in events):
                self.say("Wrong PIN:", "not activated")
            else:
                self._report(events, "")

        self.show(PinEntry("PIN TO ACTIVATE RX", with_pin, self.main_menu))

    # ---- admin menu ----------------------------------------------------------------------
    def admin_menu(self) -> None:
        items = [
            MenuItem("1", "Clin PIN", self.reset_clinician_pin),
            MenuItem("2", "Adm PIN", self.change_pin),
            MenuItem("3", "Library", self.library_screen),
        ]
        self.show(Menu("ADMIN", items, back=self.lock))

    def reset_clinician_pin(self) -> None:
        back = self.admin_menu

        def got_new(new: SecretPin) -> None:
            def got_again(again: SecretPin) -> None:
                if again != new:
                    self.say("PINs differ:", "nothing changed", then=back)
                    return
                error = self.host.reset_pin("clinician", new)
                if error is None:
                    self.say("Clinician PIN set", then=back)
                else:
                    self.show(Pages(paginate(["NOT SET:", *wrap(error)]), back=back))

            self.show(PinEntry("REPEAT CLINICIAN PIN", got_again, back))

        self.show(PinEntry("NEW CLINICIAN PIN", got_new, back))

    def library_screen(self) -> None:
        view = self.host.panel_view()
        current = view.library
        item = self.library_pending
        pages = [["DRUG LIBRARY", fit(f"v {current.version}"),
                  fit(current.checksum[:WIDTH] or "no checksum")],
                 paginate(wrap(", ".join(sorted(current.drugs))))[0]]
        if item is None:
            pages.append(["No new library", "waiting", ""])
            self.show(Pages(pages, back=self.admin_menu))
            return
        checked = self.host.review_library(item)

        def drop() -> None:
            if self.library_pending is item:
                self.library_pending = None
            self.say("New library", "dismissed", then=self.admin_menu)

        if isinstance(checked, str):
            lines = ["NEW LIBRARY REFUSED", *wrap(checked), "Current one stays."]
            self.show(Pages(paginate(lines), back=drop, enter=drop, enter_label="dismiss",
                            back_label="dismiss"))
            return
        new_pages = [["NEW LIBRARY", fit(f"v {checked.version}"), "checksum OK"],
                     *paginate(wrap(", ".join(sorted(checked.drugs)))),
                     ["INSTALL IT?", fit(f"replaces v {current.version}"), "(then admin PIN)"]]

        def with_pin(pin: SecretPin) -> None:
            error = self.host.install_library(item, pin)
            if error is None:
                if self.library_pending is item:
                    self.library_pending = None
                self.say("Library installed", fit(f"v {checked.version}"),
                         then=self.admin_menu)
            else:
                self.show(Pages(paginate(["NOT INSTALLED:", *wrap(error)]),
                                back=self.admin_menu))

        self.show(Pages(new_pages, back=drop, enter=lambda: self.show(PinEntry(
            "ADMIN PIN TO INSTALL", with_pin, self.admin_menu)), enter_label="install",
            back_label="no"))


def highest_first(names: Sequence[str], present: Collection[str] = ()) -> tuple[str, ...]:
    """Alarm names by priority (high first); within one, those whose condition is still
    present before latched ones already resolved; then by name."""
    return tuple(sorted(names, key=lambda n: (-RANK[PRIORITY.get(n, "low")], n not in present,
                                              n)))
