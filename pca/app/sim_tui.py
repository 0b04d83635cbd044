"""`pca sim` on screen: a Textual front panel over the real pump on mock pins (SimWorld)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from pca.app.sim_world import LINES, SimWorld, View
from pca.controller.ports import NS_PER_S, Event
from pca.controller.respiratory import describe_values
from pca.hw.alarm_patterns import BURSTS, LAMPS

SPEEDS = (1, 10, 60, 600)  # virtual seconds per real second; `t` cycles through them
FRAME_S = 0.05  # how often the screen advances virtual time and redraws
MAX_FRAME_NS = NS_PER_S // 4  # a stalled terminal does not make virtual time jump
SWITCH_KEYS = {"o": "occlusion", "a": "air_in_line", "d": "door_open", "e": "end_of_travel",
               "l": "battery_low", "x": "battery_depleted"}
LINE_LABEL = {"occlusion": "occlusion", "air_in_line": "air", "door_open": "door open",
              "end_of_travel": "end travel", "battery_low": "batt low",
              "battery_depleted": "batt flat"}
PRIORITY_STYLE = {"high": "bold white on red", "medium": "bold black on yellow",
                  "low": "black on cyan"}
SOURCE_ORDER = ("basal", "pca", "loading", "clinician", "kvo")
DENIAL_LABEL = {"lockout": "lockout", "dose_limit": "dose limit", "max_per_hour": "max/hour",
                "in_progress": "dose running", "alarm": "alarm", "not_running": "not running",
                "monitor": "breathing monitor"}
BAR_CELLS = 20
QUIET_EVENTS = frozenset({"delivery"})  # the motor journal: every grant; too busy to show
NOTE_NS = 10 * NS_PER_S  # a note about something that happened stays this long (virtual)


@dataclass
class Note:
    """What the simulator itself says on the status line, shown only while it is true:
    `holds` says whether it still is; a note about a past action also goes after NOTE_NS."""

    text: str
    holds: Callable[[], bool] = lambda: True
    until_ns: int | None = None

    def shown(self, now_ns: int) -> str:
        if self.until_ns is not None and now_ns >= self.until_ns:
            return ""
        return self.text if self.holds() else ""

KEYPAD_BINDINGS = [Binding(k, f"keypad('{k}')", show=False) for k in "0123456789"] + [
    Binding("asterisk,backspace", "keypad('*')", show=False),
    Binding("number_sign,enter", "keypad('#')", show=False),
]


class PumpSimApp(App[int]):
    """The pump on screen. With `realtime` a timer advances virtual time by real elapsed
    time x speed; without it (tests) time moves only through `advance_s()`."""

    TITLE = "pca sim"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 2; background: $boost; padding: 0 1; }
    #body { height: 1fr; }
    .col { width: 1fr; height: 100%; }
    .box { border: round $secondary; padding: 0 1; height: auto; }
    #display { width: 26; border: heavy $success; background: #0b2a12; color: #a8ff60;
               padding: 0 1; }
    #events { height: 1fr; }
    #help { height: 2; color: $text-muted; padding: 0 1; }
    #status, #events, #help, #lines { text-wrap: nowrap; text-overflow: ellipsis; }
    """
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("space,b", "bolus", "bolus button"),
        *KEYPAD_BINDINGS,
        *[Binding(key, f"switch('{line}')", show=False) for key, line in SWITCH_KEYS.items()],
        Binding("s", "lower_spo2", "lower SpO2", show=False),
        Binding("n", "no_breath", "stop breathing", show=False),
        Binding("v", "breathe", "breathe normally", show=False),
        Binding("m", "monitor_cable", "unplug/plug the monitor", show=False),
        Binding("a", "mains", "pull/plug the mains", show=False),
        Binding("t", "speed", "time speed"),
        Binding("r", "rx_file", "demo Rx file"),
        Binding("p", "program_demo", "program demo Rx (sim shortcut)"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, world: SimWorld, *, realtime: bool = True, speed: int = 1,
                 real_clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        super().__init__()
        self.world = world
        self.realtime = realtime
        self.real_clock_ns = real_clock_ns
        self.speed = speed if speed in SPEEDS else SPEEDS[0]
        self.note = Note("")  # the last thing the simulator itself says (not the pump)
        self._last_real_ns = 0
        self._shown: dict[str, Text | str] = {}  # redraw a panel only when it changed

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal(id="body"):
            with Vertical(classes="col"):
                yield Static(id="display")
                yield Static(id="lamps", classes="box")
                yield Static(id="syringe", classes="box")
                yield Static(id="lines", classes="box")
            with Vertical(classes="col"):
                yield Static(id="therapy", classes="box")
                yield Static(id="alarms", classes="box")
                yield Static(id="events", classes="box")
        yield Static(_help(), id="help")

    def on_mount(self) -> None:
        titles = {"display": "display 20x4", "lamps": "lamps and buzzer",
                  "syringe": "syringe", "lines": "sensor and battery lines",
                  "therapy": "delivery", "alarms": "alarms", "events": "event log (newest last)"}
        for name, title in titles.items():
            self.query_one(f"#{name}", Static).border_title = title
        self.refresh_view()
        if self.realtime:
            self._last_real_ns = self.real_clock_ns()
            self.set_interval(FRAME_S, self._frame)

    # ---- time ----------------------------------------------------------------------------
    def _frame(self) -> None:
        """One timer frame: virtual time moves by the real time since the last one x speed."""
        real_ns = self.real_clock_ns()
        elapsed_ns = min(real_ns - self._last_real_ns, MAX_FRAME_NS)
        self._last_real_ns = real_ns
        self.world.advance(elapsed_ns * self.speed)
        self.refresh_view()

    def advance_s(self, virtual_s: float) -> None:
        """Move virtual time on by `virtual_s` and redraw (what the timer does each frame)."""
        self.world.advance_s(virtual_s)
        self.refresh_view()

    # ---- keys ----------------------------------------------------------------------------
    def action_bolus(self) -> None:
        self.world.press_bolus()

    def action_keypad(self, key: str) -> None:
        self.world.press_keys(key)

    def action_switch(self, line: str) -> None:
        active = self.world.toggle_line(line)
        self.note = Note(f"{LINE_LABEL[line]} line {'ACTIVE' if active else 'back to normal'}",
                         holds=lambda: self.world.lines[line] == active,
                         until_ns=None if active else self.world.now_ns + NOTE_NS)
        self.refresh_view()

    def action_lower_spo2(self) -> None:
        self.note = self._past(f"patient's SpO2 falls to {self.world.lower_spo2()} %")
        self.refresh_view()

    def action_no_breath(self) -> None:
        self.world.stop_breathing()
        self.note = self._past("patient stops breathing (RR 0, no exhaled CO2)")
        self.refresh_view()

    def action_breathe(self) -> None:
        self.world.breathe_normally()
        self.note = self._past("patient breathes normally again")
        self.refresh_view()

    def action_monitor_cable(self) -> None:
        plugged = self.world.toggle_monitor()
        self.note = self._past("monitor plugged in again") if plugged else Note(
            "monitor cable UNPLUGGED", holds=lambda: not self.world.monitor.plugged)
        self.refresh_view()

    def action_mains(self) -> None:
        on_mains = self.world.toggle_mains()
        self.note = self._past("on mains again") if on_mains else Note(
            "mains UNPLUGGED: on battery", holds=lambda: not self.world.gauge.mains)
        self.refresh_view()

    def _past(self, text: str) -> Note:
        """A note about something that just happened: shown for NOTE_NS of virtual time."""
        return Note(text, until_ns=self.world.now_ns + NOTE_NS)

    def action_speed(self) -> None:
        self.speed = SPEEDS[(SPEEDS.index(self.speed) + 1) % len(SPEEDS)]
        self.refresh_view()

    def action_rx_file(self) -> None:
        self.world.deliver_demo_rx_file()
        # True while that file waits on the keypad: gone once it is activated or rejected.
        self.note = Note("demo Rx file arrived (USB): review it on the keypad (PIN, then #)",
                         holds=self.world.demo_rx_file_waiting)
        self.refresh_view()

    def action_program_demo(self) -> None:
        until = self.world.now_ns + NOTE_NS
        if self.world.program_demo_rx():
            self.note = Note("SIM SHORTCUT: demo Rx sent as a clinician command with the demo "
                             "PIN", until_ns=until)
        else:
            self.note = Note("the demo PIN does not open this log: program it on the keypad",
                             until_ns=until)
        self.refresh_view()

    # ---- drawing -------------------------------------------------------------------------
    def refresh_view(self) -> None:
        view = self.world.view()
        parts: dict[str, Text | str] = {
            "status": self._status(view), "display": "\n".join(view.display),
            "lamps": _lamps(view), "syringe": _syringe(view), "lines": _lines(view),
            "therapy": _therapy(view), "alarms": _alarms(view),
            "events": _events(view.recent, self._event_rows())}
        for name, content in parts.items():
            if self._shown.get(name) != content:
                self._shown[name] = content
                self.query_one(f"#{name}", Static).update(content)

    def _event_rows(self) -> int:
        return max(1, self.query_one("#events", Static).content_size.height)

    def _status(self, view: View) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("PCA SIMULATOR - not for clinical use", style="bold")
        clock = time.strftime("%H:%M:%S", time.localtime(view.wall_ns / NS_PER_S))
        text.append(f"  {clock} (+{_hms(view.t_ns // NS_PER_S)})  speed {self.speed}x (t)\n")
        if view.demo_pin is not None:
            text.append(f"demo PIN {view.demo_pin} — simulation only",
                        style="bold black on yellow")
            text.append("  ")
        text.append(self.note.shown(view.t_ns), style="italic")
        return text


# ---- panels (pure functions of a View, so tests can read them too) ---------------------------
def _lamp(text: Text, name: str, lit: bool, style: str) -> None:
    text.append("● " if lit else "○ ", style=style if lit else "dim")
    text.append(f"{name}  ", style=style if lit else "dim")


def _lamps(view: View) -> Text:
    text = Text()
    _lamp(text, "red", view.red, "bold red")
    _lamp(text, "yellow", view.yellow, "bold yellow")
    _lamp(text, "green", view.green, "bold green")
    if view.buzzer_hz is not None:
        text.append(f"♪ {view.buzzer_hz:.0f} Hz", style="bold magenta")
    else:
        text.append("♪ quiet", style="dim")
    prio = view.sounding
    if view.silenced:
        left = int(view.silence_left_s + 0.999)
        text.append(f"\nSILENCED {left // 60}:{left % 60:02d} left; the lamp still flashes",
                    style="bold yellow")
    elif prio is None:
        text.append("\nno alarm: green lamp steady (a blink answers a press)")
    else:
        burst, lamp = BURSTS[prio], LAMPS[prio]
        period = burst.period_ns or burst.burst_ns
        flash = "steady" if lamp.period_ns is None else \
            f"flashing {NS_PER_S / lamp.period_ns:g} Hz"
        style = PRIORITY_STYLE[prio]
        plural = "s" if burst.pulses > 1 else ""
        text.append(f"\n{prio.upper()}: {burst.pulses} pulse{plural} {burst.pitch_hz} Hz "
                    f"every {period / NS_PER_S:g} s,", style=style)
        text.append(f"\n{lamp.colour} {flash}", style=style)
    return text


def _syringe(view: View) -> Text:
    full = view.syringe_ml if view.syringe_ml > 0 else 1.0
    share = max(0.0, min(1.0, view.reservoir_ml / full))
    cells = round(share * BAR_CELLS)
    style = "green" if share > 0.1 else ("yellow" if view.reservoir_ml > 0 else "red")
    text = Text()
    text.append("█" * cells, style=style)
    text.append("░" * (BAR_CELLS - cells), style="dim")
    text.append(f" {view.reservoir_ml:.2f}/{view.syringe_ml:g} mL")
    return text


def _lines(view: View) -> Text:
    text = Text(no_wrap=True)
    keys = {line: key for key, line in SWITCH_KEYS.items()}
    for i, line in enumerate(LINES):
        active = view.lines[line]
        text.append("\n" if i % 2 == 0 and i else ("  " if i % 2 else ""))
        text.append(f"{keys[line]} ", style="bold")
        text.append(f"{LINE_LABEL[line]:<10} ")
        text.append("ON " if active else "off", style="bold white on red" if active else "green")
    text.append("\nmonitor ", style="bold")
    if not view.monitor_plugged:
        text.append("UNPLUGGED (m)", style="bold white on red")
    else:
        text.append(describe_values(view.vitals) or "no values")
        text.append("  (m unplug)", style="dim")
    return text


def _therapy(view: View) -> Text:
    text = Text()
    text.append(f"{view.state.replace('_', ' ').upper()}", style="bold")
    if view.rate_ml_h > 0:
        text.append(f"  {view.rate_ml_h:g} mL/h")
    text.append(f"\n{view.drug or 'no prescription'}")
    text.append(f"\ngiven {view.delivered_total_ml:.3f} mL:", style="bold")
    text.append("".join(f" {source} {view.delivered_ml.get(source, 0.0):.3f}"
                        for source in SOURCE_ORDER
                        if view.delivered_ml.get(source, 0.0) > 0 or source in ("basal", "pca")))
    denied = sum(view.pca_denied.values())
    text.append(f"\nPCA given {view.pca_granted}, denied {denied}")
    if denied:
        text.append(" (" + ", ".join(f"{DENIAL_LABEL.get(reason, reason)} {n}"
                                     for reason, n in sorted(view.pca_denied.items())) + ")")
    text.append("\nlockout ")
    if view.lockout_min is None:
        text.append("-")
    elif view.lockout_left_s > 0:
        text.append(f"{view.lockout_min:g} min: "
                    f"{_hms(int(view.lockout_left_s + 0.999))} left", style="bold yellow")
    else:
        text.append(f"{view.lockout_min:g} min: over", style="green")
    return text


def _alarms(view: View) -> Text:
    if not view.alarms:
        return Text("none", style="green")
    text = Text()
    for i, alarm in enumerate(view.alarms):
        if i:
            text.append("\n")
        text.append(f" {alarm.priority.upper():<6} ", style=PRIORITY_STYLE[alarm.priority])
        text.append(f" {alarm.name}")
        if not alarm.present:
            text.append("  (gone: a clinician clears it)", style="dim")
    return text


def _describe(event: Event) -> str:
    fields = event.fields
    if event.type == "pca_request":
        return f"PCA request {fields.get('outcome')}" + (
            f" ({fields['reason']})" if "reason" in fields else "")
    if event.type == "state_changed":
        return f"state {fields.get('from')} -> {fields.get('to')}"
    if event.type in ("alarm_raised", "alarm_cleared", "alarm_silenced"):
        return f"{event.type.replace('_', ' ')}: {fields.get('alarm')} ({fields.get('priority')})"
    if event.type == "auth":
        return f"PIN {fields.get('outcome')} ({fields.get('role', 'clinician')})"
    shown = ", ".join(f"{k}={v}" for k, v in fields.items()
                      if isinstance(v, str | int | float) and len(str(v)) <= 24)
    return f"{event.type.replace('_', ' ')}" + (f": {shown}" if shown else "")


def _events(events: Iterable[Event], count: int) -> Text:
    shown = [e for e in events if e.type not in QUIET_EVENTS][-count:]
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, event in enumerate(shown):
        if i:
            text.append("\n")
        text.append(time.strftime("%H:%M:%S ", time.localtime(event.wall_ns / NS_PER_S)),
                    style="dim")
        text.append(_describe(event), style=_event_style(event))
    return text


def _event_style(event: Event) -> str:
    if event.type == "alarm_raised":
        return PRIORITY_STYLE.get(str(event.fields.get("priority")), "")
    if event.type == "pca_request":
        return "green" if event.fields.get("outcome") == "granted" else "yellow"
    return ""


def _help() -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("space", style="bold")
    text.append(" bolus  ")
    text.append("0-9 * #", style="bold")
    text.append(" keypad (PIN # unlocks)  ")
    text.append("o a d e l x", style="bold")
    text.append(" lines  ")
    text.append("s n v m", style="bold")
    text.append(" SpO2 down, no breath, breathe, monitor cable\n")
    text.append("t", style="bold")
    text.append(" speed  ")
    text.append("r", style="bold")
    text.append(" Rx file (USB)  ")
    text.append("p", style="bold")
    text.append(" SIM SHORTCUT: program demo Rx (demo PIN)  ")
    text.append("q", style="bold")
    text.append(" quit")
    return text


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
