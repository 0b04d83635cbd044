"""The simulator's world: the real pump on mock pins in virtual time, advanced on demand.

Everything a person does reaches the pump through the hardware layer: a key or
the bolus button moves a MockFactory pin, `Hardware.poll(now_ns)` debounces it
and puts the input on the pump's queue, and the pump's 50 ms tick handles it,
exactly as in `pca run`. Only the clock (VirtualClock) and the motor
(VirtualMotor, the native schedule arithmetic) are simulated. Time moves only
when `run_until()` is called, so the Textual front panel drives it from a timer
(real elapsed time x speed) and the tests drive it explicitly.

Between things that happen, ticks and polls that would do nothing are skipped
(as `pca scenario` does): the pump is ticked on its 50 ms grid only when it has
input, when `next_wakeup_ns()` says it must act, and once at the end of every
advance (so the display, lamps and buzzer are current); the mock pins are
polled on the 10 ms grid while a line settles after a change and at the end of
each debounce hold, which is every instant a debouncer can change its mind.
"""


from __future__ import annotations

import heapq
import itertools
import sqlite3
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from pca.app.config import Config
from pca.app.power import PI_ZERO_2W_IDLE_W, STEPPER_RUN_W
from pca.app.scenario import VirtualClock
from pca.app.sim_observe import AlarmRow, ObservedLog, Tally, _Sink
from pca.app.sim_observe import View as View  # re-exported: the TUI imports it from here
from pca.controller.alarms import RANK
from pca.controller.auth import verify_pin
from pca.controller.inputs import ClinicianCommand, Input, PendingPrescription
from pca.controller.ports import NS_PER_S
from pca.controller.profile import PumpProfile
from pca.controller.pump import Pump
from pca.hw.display_sim import SimDisplay
from pca.hw.fuel_gauge import SimulatedGauge
from pca.hw.hardware import Hardware, build_simulated
from pca.hw.keypad import LAYOUT
from pca.hw.mock_panel import MockPanel
from pca.hw.pinmap import REPO_PINOUT, load_pinmap
from pca.hw.sensors import DEFAULT_HOLD_NS
from pca.hw.sim_monitor import SimulatedMonitor
from pca.hw.sim_motor import VirtualMotor
from pca.store.eventlog import SqliteEventLog, database_exists
from pca.therapy.drugs import default_library
from pca.therapy.ledger import SOURCES

MS = 1_000_000
TICK_NS = Config().tick_ms * MS  # the control loop's period, as `pca run` ticks it
POLL_NS = 10 * MS  # the input thread's period (pca.hw.hardware.Hardware's default)
SETTLE_NS = 100 * MS  # poll every POLL_NS this long after a line changes (debounce is 30 ms)
KEY_DOWN_NS = 80 * MS  # a simulated finger holds each keypad key this long ...
KEY_GAP_NS = 80 * MS  # ... and lifts it this long before the next key
BUTTON_DOWN_NS = 200 * MS  # one press of the cord button (as a scenario's `press`)
BUTTON_GAP_NS = 100 * MS

# No PIN exists in the product until one is provisioned (SR-6): this one is put on a
# fresh simulator log only, and the screen says so.
DEMO_PIN = "1234"
DEMO_SCENARIO = "postop_morphine.toml"  # its [prescription] is the demo prescription
DEMO_RX_SOURCE = "usb/demo-morphine.pca-rx.toml"
KEYPAD_KEYS = frozenset(k for row in LAYOUT for k in row)
# Every line a switch of the simulator can open or close, in the order shown.
LINES = ("occlusion", "air_in_line", "door_open", "end_of_travel", "battery_low",
         "battery_depleted")


# The simulated patient's breathing monitor (SR-13): normal values at start, and what the
# demo prescription watches.
NORMAL_VITALS = {"spo2": 97, "etco2_mmhg": 38, "rr": 14, "pulse": 72}
DEMO_MONITOR = {"spo2_min": 90, "etco2_max_mmhg": 50, "rr_min": 8, "delay_s": 30,
                "stale_s": 30, "required": True}
SPO2_STEP = 3  # one press of "lower SpO2"


def demo_prescription() -> dict[str, Any]:
    """The [prescription] table of the bundled demo scenario (post-op morphine PCA)."""
    text = resources.files("pca.examples").joinpath(DEMO_SCENARIO).read_text("utf-8")
    table = dict(tomllib.loads(text)["prescription"])
    table["monitor"] = dict(DEMO_MONITOR)
    return table


# ---- the world -----------------------------------------------------------------------------
class SimWorld:
    """Log, mock hardware, motor, display and the real pump, in virtual time."""

    def __init__(self, db: Path, *, pinout: Path | None = None,
                 start_wall_ns: int | None = None, profile: PumpProfile | None = None) -> None:
        self.db = Path(db)
        fresh = not database_exists(self.db)
        self.profile = profile or PumpProfile()
        self.tally = Tally()
        self.sqlite = SqliteEventLog(self.db, provision_keys=True)
        problem = None if fresh else _verify_problem(self.db, self.sqlite.problems)
        self._closers: list[Callable[[], None]] = [self.sqlite.close]
        try:
            # Virtual time may have run far ahead of real time (600x): a restart continues
            # from the log's last wall time, so the log's clock never runs backwards.
            start = time.time_ns() if start_wall_ns is None else start_wall_ns
            self.clock = VirtualClock(max(start, _last_wall_ns(self.sqlite)))
            self.sink = _Sink()
            self.hardware: Hardware
            self.panel: MockPanel
            self.hardware, self.panel = build_simulated(load_pinmap(pinout or REPO_PINOUT),
                                                        self.sink)
            self._closers.append(self.hardware.close)
            self.motor = VirtualMotor()
            self.display = SimDisplay()
            self.monitor = SimulatedMonitor()
            self.monitor.set(self.clock.now_ns, NORMAL_VITALS)
            # A 10 Wh pack on mains (a pump on the desk); `a` in pca sim pulls the plug.
            self.gauge = SimulatedGauge(10.0, 100.0, mains=True, load_w=self._load_w)
            self.pump = Pump.boot(motor=self.motor, annunciator=self.hardware.annunciator,
                                  log=ObservedLog(self.sqlite, self.tally), clock=self.clock,
                                  library=default_library(), profile=self.profile,
                                  credentials=self.sqlite, display=self.display,
                                  monitor=self.monitor, gauge=self.gauge)
        except Exception:
            self.close()
            raise
        # What the pump gave before this start: the live part comes from its snapshot.
        self._base_steps = dict(self.tally.delivered_steps)
        self._patients = self.tally.counts["new_patient"]
        if problem is not None:
            self.pump.log_unusable(problem)
        if fresh:
            self.pump.provision_pin(DEMO_PIN, allow_weak=True)  # logged as weak: a demo
        stored = self.sqlite.get_pin_hash("clinician")
        self.demo_pin = DEMO_PIN if stored is not None and verify_pin(DEMO_PIN, stored) \
            else None
        self.sink.pump = self.pump
        for item in self.sink.early:
            self.pump.put(item)
        self.lines: dict[str, bool] = dict.fromkeys(LINES, False)
        self._seq = itertools.count()
        self._actions: list[tuple[int, int, Callable[[], None]]] = []
        self._polls: list[int] = []
        self._keypad_free_ns = 0
        self._button_free_ns = 0
        self._last_tick_ns = 0
        self.pump.tick()
        # The keypad and button ignore whatever is held at their first reading: let them
        # see their lines idle first, as the input thread has by the time anyone can type.
        self._poll_densely(0)
        self.run_until(SETTLE_NS)

    # ---- time ------------------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        return self.clock.now_ns

    def advance(self, dt_ns: int) -> None:
        self.run_until(self.clock.now_ns + max(0, dt_ns))

    def advance_s(self, dt_s: float) -> None:
        self.advance(int(Fraction(str(dt_s)) * NS_PER_S))

    def run_until(self, target_ns: int) -> None:
        """Let the hardware and the pump act by themselves until `target_ns`."""
        while True:
            now = self.clock.now_ns
            t_tick = self._next_tick_ns(now, target_ns)
            due = [t for t in (self._actions[0][0] if self._actions else None,
                               self._polls[0] if self._polls else None, t_tick)
                   if t is not None and t <= target_ns]
            if not due:
                self.clock.now_ns = max(now, target_ns)
                return
            t = self.clock.now_ns = max(now, min(due))
            while self._actions and self._actions[0][0] <= t:
                heapq.heappop(self._actions)[2]()
            if self._polls and self._polls[0] <= t:
                while self._polls and self._polls[0] <= t:
                    heapq.heappop(self._polls)
                self.hardware.poll(t)  # inputs reach the queue; the next tick takes them
            if t_tick is not None and t >= t_tick:
                self._tick(t)

    def _next_tick_ns(self, now: int, target_ns: int) -> int | None:
        after = self._last_tick_ns + TICK_NS  # never twice in one period
        times = []
        if self.sink.pending:
            times.append(max(after, _grid_ceil(now, TICK_NS)))
        wake = self.pump.next_wakeup_ns()
        if wake is not None:
            times.append(max(after, _grid_ceil(wake, TICK_NS)))
        last_of_advance = target_ns - target_ns % TICK_NS
        if last_of_advance >= after:
            times.append(last_of_advance)
        return min(times) if times else None

    def _tick(self, t: int) -> None:
        self.sink.pending = False
        self._last_tick_ns = t
        self.pump.tick()
        if self.tally.counts["new_patient"] != self._patients:
            self._patients = self.tally.counts["new_patient"]
            self._base_steps = dict.fromkeys(SOURCES, 0)

    def _load_w(self) -> float:
        """The simulated pack's load: the Pi at rest, plus the stepper while it runs."""
        running = getattr(self, "pump", None) is not None and self.pump.seg is not None
        return PI_ZERO_2W_IDLE_W + (STEPPER_RUN_W if running else 0.0)

    def toggle_mains(self) -> bool:
        """Plug the pump into mains or pull the plug; returns whether it is on mains now."""
        self.gauge.set(self.clock.now_ns, mains=not self.gauge.mains)
        self.pump.tick()
        return self.gauge.mains

    # ---- what a person does ------------------------------------------------------------
    def press_bolus(self) -> None:
        """One press of the patient's cord button (the pump grants or denies it)."""
        t = max(self.clock.now_ns, self._button_free_ns)
        self._at(t, self.panel.press_button, _dense())
        self._at(t + BUTTON_DOWN_NS, self.panel.release_button, _dense())
        self._button_free_ns = t + BUTTON_DOWN_NS + BUTTON_GAP_NS

    def press_keys(self, keys: str) -> None:
        """Type on the keypad, one key after another as a finger would."""
        unknown = sorted(set(keys) - KEYPAD_KEYS)
        if unknown:
            raise ValueError(f"no key {unknown[0]!r} on the keypad (0-9, * and #)")
        for key in keys:
            t = max(self.clock.now_ns, self._keypad_free_ns)
            self._at(t, partial(self.panel.press_key, key), _dense())
            self._at(t + KEY_DOWN_NS, partial(self.panel.release_key, key), _dense())
            self._keypad_free_ns = t + KEY_DOWN_NS + KEY_GAP_NS

    def set_line(self, name: str, active: bool) -> None:
        """Open or close a sensor or battery line (a switch on the simulated pump)."""
        if name not in self.lines:
            raise ValueError(f"unknown line {name!r}; expected one of {', '.join(LINES)}")
        self.lines[name] = active
        holds = [t for hold in DEFAULT_HOLD_NS[name] for t in (hold, hold + POLL_NS)]
        self._at(self.clock.now_ns, partial(self.panel.set_input, name, active),
                 [*_dense(), *holds])

    def toggle_line(self, name: str) -> bool:
        self.set_line(name, not self.lines[name])
        return self.lines[name]

    # ---- the patient's breathing (the respiratory monitor, SR-13) -------------------------
    def lower_spo2(self, by: int = SPO2_STEP) -> int:
        """The patient's SpO2 falls (each press: a few %); returns the new value."""
        spo2 = max(50, self.monitor.values.get("spo2", NORMAL_VITALS["spo2"]) - by)
        self.set_vitals({"spo2": spo2})
        return spo2

    def stop_breathing(self) -> None:
        """Apnoea: no breath (RR 0), so no exhaled CO2 either."""
        self.set_vitals({"rr": 0, "etco2_mmhg": 0})

    def breathe_normally(self) -> None:
        self.set_vitals(NORMAL_VITALS)

    def set_vitals(self, values: Mapping[str, int]) -> None:
        self.monitor.set(self.clock.now_ns, values)
        self.sink.pending = True  # the next tick reads it

    def toggle_monitor(self) -> bool:
        """Unplug the monitor's cable, or plug it in again; returns whether it is plugged."""
        self.monitor.plug(self.clock.now_ns, not self.monitor.plugged)
        self.sink.pending = True
        return self.monitor.plugged

    def deliver_demo_rx_file(self) -> None:
        """A pharmacy file with the demo prescription arrives (a USB stick: no GPIO device
        exists for it, so it goes on the queue, as the daemon's file watcher puts it). It
        changes nothing until a clinician reviews it on the keypad and confirms with a PIN."""
        self._put(PendingPrescription(demo_prescription(), DEMO_RX_SOURCE, rx_id="DEMO"))

    def program_demo_rx(self) -> bool:
        """Simulator shortcut: program the demo prescription by the clinician path (a
        ClinicianCommand carrying the demo PIN, checked and logged by the pump). Only
        while the demo PIN opens this log; returns whether it was sent."""
        if self.demo_pin is None:
            return False
        self._put(ClinicianCommand("program", self.demo_pin,
                                   {"prescription": demo_prescription()}))
        return True

    def demo_rx_file_waiting(self) -> bool:
        """The demo pharmacy file still waits on the keypad (not activated nor rejected)."""
        waiting = self.pump.panel.rx_pending
        return waiting is not None and waiting.source == DEMO_RX_SOURCE

    def _put(self, item: Input) -> None:
        self.sink.put(item)

    def _at(self, t_ns: int, change: Callable[[], None], polls: Iterable[int]) -> None:
        offsets = tuple(polls)

        def apply() -> None:
            change()
            for offset in offsets:
                heapq.heappush(self._polls, t_ns + offset)

        heapq.heappush(self._actions, (t_ns, next(self._seq), apply))

    def _poll_densely(self, t_ns: int) -> None:
        for offset in _dense():
            heapq.heappush(self._polls, t_ns + offset)

    @property
    def busy(self) -> bool:
        """A key, press or line change is still on its way to the pump."""
        return bool(self._actions or self._polls or self.sink.pending)

    # ---- looking -----------------------------------------------------------------------
    def view(self) -> View:
        pump = self.pump
        snap = pump.snapshot()
        per_ml = float(self.profile.steps_per_ml)
        live: dict[str, float] = {
            s: (self._base_steps.get(s, 0) + snap.delivered_steps[s]) / per_ml for s in SOURCES}
        alarms = tuple(sorted(
            (AlarmRow(a.name, a.priority, a.condition) for a in pump.alarms.active.values()),
            key=lambda r: (-RANK[r.priority], r.name)))
        sounding = pump.alarms.highest()
        syringe_ml = self.tally.syringe_ml
        if syringe_ml is None:
            syringe_ml = float(self.profile.syringe_ml)
        rx = pump.rx
        return View(
            t_ns=self.clock.now_ns, wall_ns=self.clock.wall_ns(), state=snap.state,
            rate_ml_h=snap.rate_ml_h, display=self.display.lines,
            display_box=self.display.text(),
            red=self.panel.output_on("led_red"), yellow=self.panel.output_on("led_yellow"),
            green=self.panel.output_on("led_green"), buzzer_hz=self.panel.buzzer_hz(),
            sounding=None if snap.silenced else sounding, silenced=snap.silenced,
            silence_left_s=max(0, (pump.alarms.silenced_until_ns or 0) - pump.pump_ns())
            / NS_PER_S if snap.silenced else 0.0,
            alarms=alarms,
            reservoir_ml=max(0.0, snap.reservoir_steps / per_ml),
            syringe_ml=syringe_ml, delivered_ml=live, pca_granted=self.tally.granted,
            pca_denied=dict(self.tally.denied),
            lockout_min=None if rx is None else float(rx.request.lockout_min),
            lockout_left_s=snap.lockout_left_s,
            drug=None if rx is None else
            f"{rx.request.drug} {float(rx.request.concentration_per_ml):g} {rx.drug_unit}/mL",
            lines=dict(self.lines), vitals=dict(self.monitor.values),
            monitor_plugged=self.monitor.plugged, demo_pin=self.demo_pin,
            recent=tuple(self.tally.recent))

    def close(self) -> None:
        """Orderly stop: the motor halts and the log records a clean shutdown."""
        if not self._closers:
            return  # closed already
        if hasattr(self, "pump"):
            self.pump.shutdown()
        while self._closers:
            self._closers.pop()()


def _last_wall_ns(log: SqliteEventLog) -> int:
    """The latest wall time in the log (0 if none can be read: boot reports why)."""
    last = 0
    try:
        for stored in log.replay():
            last = max(last, stored.event.wall_ns)
    except (sqlite3.Error, ValueError, TypeError):
        pass
    return last


def _dense() -> range:
    return range(0, SETTLE_NS + 1, POLL_NS)


def _grid_ceil(t_ns: int, period_ns: int) -> int:
    return -(-t_ns // period_ns) * period_ns


def _verify_problem(db: Path, problems: list[str]) -> str | None:
    """The same start-up check as `pca run`: a log that fails it refuses delivery."""
    if not problems:
        return None
    return (f"event log {db} fails verification at {problems[0]}: keep the file for review, "
            "or start the simulator on a new file")
