"""`pca scenario`: replay a scripted session on simulated hardware in virtual time.

The contract is ../shared/SCENARIOS.md. The real controller, ledger, event log,
recovery and PIN checks run; only the clock, the motor and the hardware lines
are simulated. Virtual time jumps from one thing that happens to the next
(a step, a motor grant, a dose end), so 72 hours replay in seconds, and the
same file always gives the same events.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from pca.app import sim_power
from pca.controller.inputs import (
    SENSORS,
    BolusButton,
    ClinicianCommand,
    Input,
    Key,
    PanelCommand,
    Sensor,
)
from pca.controller.ports import NS_PER_S, Priority
from pca.controller.profile import PumpProfile
from pca.controller.pump import Pump
from pca.hw.sim_monitor import SimulatedMonitor
from pca.hw.sim_motor import VirtualMotor
from pca.store.eventlog import SqliteEventLog, database_exists, export_rows, parse_wall_ns
from pca.therapy import bounds
from pca.therapy.drugs import DrugLibrary, LibraryError, default_library, parse_library
from pca.therapy.ledger import SOURCES
from pca.therapy.prescription import PrescriptionFormatError, RxRequest, parse_request
from pca.therapy.strict import Table, key, parse_toml, shown

TRACE_COLUMNS = ["t_s", "state", "rate_ml_h", "delivered_ml", "basal_ml", "pca_ml",
                 "loading_ml", "clinician_ml", "kvo_ml", "reservoir_ml", "alarms",
                 "intermittent_ml"]  # version 2: last, after alarms
# The per-source trace columns before reservoir_ml, in order; intermittent_ml comes last.
TRACE_SOURCES = ("basal", "pca", "loading", "clinician", "kvo")
DENIAL_REASONS = ["lockout", "dose_limit", "max_per_hour", "in_progress", "alarm",
                  "not_running"]
# action -> (required fields, optional fields)
ACTIONS: dict[str, tuple[set[str], set[str]]] = {
    "program": (set(), {"pin", "confirm_soft"}),
    "start": (set(), set()),
    "stop": (set(), set()),
    "press": (set(), {"hold_s"}),
    "keys": ({"keys"}, set()),
    "clinician_bolus": ({"amount"}, {"pin"}),
    "loading_dose": (set(), {"pin"}),
    "signal": ({"name", "value"}, set()),
    "silence": (set(), set()),
    "clear_alarm": (set(), {"pin"}),
    "new_syringe": ({"syringe_ml"}, {"pin"}),
    "new_patient": (set(), {"pin"}),
    "crash": (set(), set()),
    "restart": (set(), set()),
    "clock_step": ({"seconds"}, set()),
    "vitals": (set(), {"spo2", "etco2_mmhg", "rr", "pulse"}),
    "power": (set(), sim_power.FIELDS),  # the pack and mains (pca.app.sim_power)
}
# What a `vitals` step may say, in whole units (SR-13): %, mmHg, breaths/min, beats/min.
VITAL_RANGES = {"spo2": (0, 100), "etco2_mmhg": (0, 150), "rr": (0, 150), "pulse": (0, 350)}
SIGNALS = (*SENSORS, "monitor")  # monitor: the respiratory monitor is plugged in or not
# While the pump is off these still happen: the hardware (the lines, the respiratory
# monitor) and the wall clock change whether or not the pump is there to see it.
OFF_ACTIONS = {"signal", "clock_step", "restart", "vitals", "power"}
MAX_DURATION_NS = 366 * 86400 * NS_PER_S
MAX_CLOCK_STEP_S = 366 * 86400
WALL_MIN_NS = 946_684_800 * NS_PER_S  # 2000-01-01T00:00:00Z
WALL_MAX_NS = 4_102_444_800 * NS_PER_S  # 2100-01-01T00:00:00Z
DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


class ScenarioError(ValueError):
    """The file is not a valid scenario; the message names file, field and value."""


def parse_duration(text: object, where: str) -> int:
    """'90s', '10m', '2h', '1h30m', '0s' -> ns (at most MAX_DURATION_NS)."""
    if not isinstance(text, str) or not text or len(text) > 32 \
            or not (match := DURATION.match(text.strip())):
        raise ScenarioError(f"{where}: {shown(text)} is not a time like '90s', '10m', '2h', "
                            "'1h30m'")
    h, m, s = (Fraction(g) if g else Fraction(0) for g in match.groups())
    ns = int((h * 3600 + m * 60 + s) * NS_PER_S)
    if ns > MAX_DURATION_NS:
        raise ScenarioError(f"{where}: {shown(text)} is longer than a scenario may run "
                            f"({MAX_DURATION_NS // NS_PER_S // 86400} days)")
    return ns


@dataclass(frozen=True)
class Step:
    at_ns: int
    do: str
    fields: Mapping[str, Any]
    index: int


@dataclass
class Scenario:
    name: str
    start_wall_ns: int
    pin: str | None
    end_ns: int
    profile: PumpProfile
    rx: RxRequest | None
    library: DrugLibrary
    steps: list[Step]


def _wall_ns(text: object, where: str) -> int:
    try:
        ns = parse_wall_ns(text)
    except (ValueError, OverflowError):
        raise ScenarioError(f"{where}: {shown(text)} is not an ISO 8601 time") from None
    if not WALL_MIN_NS <= ns <= WALL_MAX_NS:
        raise ScenarioError(f"{where}: {shown(text)} must lie in the years 2000 to 2099")
    return ns


def _check_step(raw: object, src: str, index: int) -> Step:
    where = f"{src}: step[{index}]"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a table")
    do = raw.get("do")
    if do not in ACTIONS:
        known = ", ".join(ACTIONS)
        raise ScenarioError(f"{where}.do: unknown action {shown(do)} (known: {known})")
    if "at" not in raw:
        raise ScenarioError(f"{where}: missing field 'at'")
    at_ns = parse_duration(raw["at"], f"{where}.at")
    required, optional = ACTIONS[do]
    fields = {k: v for k, v in raw.items() if k not in ("at", "do")}
    missing = sorted(required - set(fields))
    if missing:
        raise ScenarioError(f"{where} ({do}): missing field {', '.join(missing)}")
    unknown = sorted(set(fields) - required - optional)
    if unknown:
        raise ScenarioError(f"{where} ({do}): unknown field {', '.join(map(key, unknown))}")
    _check_fields(do, Table(fields, f"{where} ({do})", ScenarioError))
    return Step(at_ns, do, fields, index)


def _check_fields(do: str, t: Table) -> None:
    """Every field of an action with its type and bounds (ScenarioError names it)."""
    if t.has("pin"):
        pin = t.text("pin", max_chars=16)
        if not pin.isascii():
            t.fail("pin", pin, "a string of digits")
    if do == "press":
        t.number("hold_s", 0, 3600, unit="s", default=Fraction(0))
    elif do == "keys":
        keys = t.text("keys", max_chars=1000)
        if any(k not in "0123456789*#" for k in keys):
            raise ScenarioError(f"{t.where}: keys = {shown(keys)} must be keypad keys 0-9, "
                                "* and #")
    elif do == "signal":
        name = t.text("name", max_chars=40)
        if name not in SIGNALS:
            raise ScenarioError(f"{t.where}: name = {shown(name)}: unknown signal "
                                f"(known: {', '.join(SIGNALS)})")
        t.flag("value")
    elif do == "clinician_bolus":
        t.number("amount", 0, bounds.AMOUNT_MAX, unit="in the prescription's dose_unit")
    elif do == "new_syringe":
        t.number("syringe_ml", 0, bounds.SYRINGE_ML_MAX, unit="mL")
    elif do == "clock_step":
        t.number("seconds", -MAX_CLOCK_STEP_S, MAX_CLOCK_STEP_S, unit="s")
    elif do == "vitals":
        if not t.raw:
            raise ScenarioError(f"{t.where}: give at least one of {', '.join(VITAL_RANGES)}")
        for name, (low, high) in VITAL_RANGES.items():
            t.maybe_integer(name, low, high)
    elif do == "power":
        sim_power.check_fields(t)
    elif do == "program" and t.has("confirm_soft"):
        t.flag("confirm_soft")


def load_scenario(path: str | Path) -> Scenario:
    src = str(path)
    try:
        raw_bytes = Path(path).read_bytes()
    except OSError as err:
        raise ScenarioError(f"{src}: cannot read: {err.strerror or err}") from None
    data = parse_toml(raw_bytes, src, max_bytes=bounds.SCENARIO_BYTES_MAX, error=ScenarioError)
    known = {"name", "start", "clinician_pin", "end", "pump", "prescription", "step", "drug",
             "monitor"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(f"{src}: unknown top-level field {', '.join(map(key, unknown))}")
    top = Table(data, src, ScenarioError)
    name = top.text("name", default=Path(path).stem, allow_empty=True)
    start = _wall_ns(data["start"], f"{src}: start") if "start" in data else \
        _wall_ns("2026-01-01T00:00:00Z", "default start")
    pin = data.get("clinician_pin")
    if pin is not None and not (isinstance(pin, str) and pin.isascii() and pin.isdigit()
                                and 4 <= len(pin) <= 8):
        raise ScenarioError(f"{src}: clinician_pin must be a string of 4-8 digits")
    pump = top.table("pump", required=False)
    try:
        profile = PumpProfile.from_table(pump.raw if pump else {}, f"{src}: [pump]")
    except ValueError as err:
        raise ScenarioError(str(err)) from None
    rx = None
    if "monitor" in data and "prescription" not in data:
        raise ScenarioError(f"{src}: [monitor] comes with a [prescription] (program activates "
                            "both)")
    if "prescription" in data:
        if not isinstance(data["prescription"], dict):
            raise ScenarioError(f"{src}: [prescription] must be a table")
        table = dict(data["prescription"])
        if "monitor" in table:
            raise ScenarioError(f"{src}: [prescription]: monitor settings go in their own "
                                "[monitor] table")
        if "monitor" in data:
            table["monitor"] = data["monitor"]
        try:
            rx = parse_request(table, f"{src}: [prescription]")
        except PrescriptionFormatError as err:
            raise ScenarioError(str(err)) from None
    library = default_library()
    if "drug" in data:
        tables = top.array("drug", max_items=bounds.DRUGS_MAX, min_items=1)
        try:
            library = parse_library(tables, f"{src}: [[drug]]")
        except LibraryError as err:
            raise ScenarioError(str(err)) from None
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list):
        raise ScenarioError(f"{src}: step must be an array of tables ([[step]])")
    if len(raw_steps) > bounds.SCENARIO_STEPS_MAX:
        raise ScenarioError(f"{src}: {len(raw_steps)} steps; a scenario has at most "
                            f"{bounds.SCENARIO_STEPS_MAX}")
    steps = [_check_step(raw, src, i) for i, raw in enumerate(raw_steps)]
    for before, after in itertools.pairwise(steps):
        if after.at_ns < before.at_ns:
            raise ScenarioError(f"{src}: step[{after.index}].at = "
                                f"{shown(raw_steps[after.index]['at'])}"
                                f" is before the step above it (times are non-decreasing)")
    if rx is None and any(s.do == "program" for s in steps):
        raise ScenarioError(f"{src}: a 'program' step needs a [prescription] table")
    last = steps[-1].at_ns if steps else 0
    end = parse_duration(data["end"], f"{src}: end") if "end" in data else last + 60 * NS_PER_S
    if end < last:
        raise ScenarioError(f"{src}: end = {shown(data['end'])} is before the last step")
    return Scenario(name, start, pin, end, profile, rx, library, steps)


# ---- simulated world ---------------------------------------------------------------------
class VirtualClock:
    """Monotonic = virtual time since t=0; the wall clock can be stepped (clock_step)."""

    def __init__(self, start_wall_ns: int) -> None:
        self.now_ns = 0
        self.start_wall_ns = start_wall_ns
        self.wall_shift_ns = 0

    def monotonic_ns(self) -> int:
        return self.now_ns

    def wall_ns(self) -> int:
        return self.start_wall_ns + self.now_ns + self.wall_shift_ns


class QuietAnnunciator:
    """Remembers what it was asked to sound; the scenario has no speaker."""

    def __init__(self) -> None:
        self.priority: Priority | None = None
        self.tones: list[str] = []

    def annunciate(self, priority: Priority | None, silenced: bool, now_ns: int) -> None:
        self.priority = None if silenced else priority

    def tone(self, kind: str, now_ns: int) -> None:
        self.tones.append(kind)


@dataclass
class Result:
    summary: dict[str, Any]
    db_path: Path


@dataclass
class _Run:
    sc: Scenario
    log: SqliteEventLog
    clock: VirtualClock
    pump: Pump | None = None
    motor: VirtualMotor | None = None
    lines: dict[str, bool] = field(default_factory=dict)
    monitor: SimulatedMonitor = field(default_factory=SimulatedMonitor)
    base_steps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    power: sim_power.PowerWorld | None = None  # from the first `power` step on

    def power_on(self, first: bool) -> None:
        self.motor = VirtualMotor()
        self.pump = Pump.boot(motor=self.motor, annunciator=QuietAnnunciator(), log=self.log,
                              clock=self.clock, library=self.sc.library, profile=self.sc.profile,
                              credentials=self.log, monitor=self.monitor,
                              gauge=None if self.power is None else self.power.gauge)
        if first and self.sc.pin is not None:
            # A scenario is test input: a weak clinician_pin still runs (the contract), and
            # its pin_changed event says why the pump's own paths would refuse it.
            self.pump.provision_pin(self.sc.pin, allow_weak=True)
        for name, active in sorted(self.lines.items()):
            if active:
                self.pump.put(Sensor(name, True))
        self.pump.tick()

    def crash(self) -> None:
        if self.pump is None:
            return
        snap = self.pump.snapshot()
        for source in SOURCES:
            self.base_steps[source] += snap.delivered_steps[source]
        self.pump = None  # no flush, no shutdown: the process is gone
        self.motor = None

    def apply(self, step: Step) -> list[tuple[int, Input]]:
        """Run one step; returns inputs to deliver later (button releases)."""
        f = step.fields
        if self.pump is None and step.do not in OFF_ACTIONS:
            return []
        if step.do == "power":
            self._power(step)
            return []
        if step.do == "signal" and f["name"] == "monitor":
            self.monitor.plug(self.clock.now_ns, bool(f["value"]))
            self._tick()
        elif step.do == "vitals":
            self.monitor.set(self.clock.now_ns, f)
            self._tick()
        elif step.do == "signal":
            self.lines[f["name"]] = bool(f["value"])
            self._put(Sensor(f["name"], bool(f["value"])))
        elif step.do == "clock_step":
            self.clock.wall_shift_ns += int(Fraction(str(f["seconds"])) * NS_PER_S)
            self._tick()
        elif step.do == "restart":
            self.crash()
            self.power_on(first=False)
        elif step.do == "crash":
            self.crash()
        elif step.do == "press":
            self._put(BolusButton(True))
            hold_ns = int(Fraction(str(f.get("hold_s", 0.2))) * NS_PER_S)
            return [(step.at_ns + hold_ns, BolusButton(False))]
        elif step.do == "keys":
            for key in f["keys"]:
                self._put(Key(key), tick=False)
            self._tick()
        elif step.do in ("start", "stop", "silence"):
            self._put(PanelCommand(step.do))  # type: ignore[arg-type]
        else:
            self._put(self._clinician(step))
        return []

    def _clinician(self, step: Step) -> ClinicianCommand:
        f = step.fields
        pin = f.get("pin", self.sc.pin)
        args: dict[str, Any] = {}
        if step.do == "program":
            args = {"prescription": self.sc.rx, "confirm_soft": f.get("confirm_soft", False)}
        elif step.do == "clinician_bolus":
            args = {"amount": f["amount"]}
        elif step.do == "new_syringe":
            args = {"syringe_ml": f["syringe_ml"]}
        return ClinicianCommand(step.do, pin, args)  # type: ignore[arg-type]

    def _put(self, item: Input, tick: bool = True) -> None:
        if self.pump is not None:
            self.pump.put(item)
            if tick:
                self._tick()

    def _power(self, step: Step) -> None:
        now = self.clock.now_ns
        if self.power is None:
            self.power = sim_power.PowerWorld(dict(step.fields), now)
            if self.pump is not None:
                self.pump.battery.gauge = self.power.gauge
        else:
            self.power.apply(dict(step.fields), now)
        if self.pump is None and self.power.powered_down and self.power.gauge.mains:
            self.power.powered_down = False
            self.power_on(first=False)  # mains is back: boot from the log
        self._tick()

    def _tick(self) -> None:
        if self.pump is not None:
            self.pump.tick()
            if self.power is not None:
                self.power.after_tick(self)

    def trace_row(self) -> list[Any]:
        t_s = self.clock.now_ns / NS_PER_S
        per_ml = 1 / float(self.sc.profile.steps_per_ml)  # display only: 6 decimals
        if self.pump is None:
            steps = self.base_steps
            state, rate, alarms = "off", 0.0, ""
            reservoir: float | str = ""
        else:
            snap = self.pump.snapshot()
            steps = {s: self.base_steps[s] + snap.delivered_steps[s] for s in SOURCES}
            state, rate = snap.state, round(snap.rate_ml_h, 6)
            reservoir = round(snap.reservoir_steps * per_ml, 6)
            alarms = ";".join(snap.alarms)
        ml = [round(steps[s] * per_ml, 6) for s in TRACE_SOURCES]
        return [f"{t_s:g}", state, rate, round(sum(steps.values()) * per_ml, 6), *ml,
                reservoir, alarms, round(steps["intermittent"] * per_ml, 6)]

    def delivered_steps(self) -> dict[str, int]:
        if self.pump is None:
            return dict(self.base_steps)
        snap = self.pump.snapshot()
        return {s: self.base_steps[s] + snap.delivered_steps[s] for s in SOURCES}


class Replay:
    """Advances virtual time from one thing that happens to the next."""

    def __init__(self, run: _Run, trace: Any | None = None,
                 trace_interval_ns: int = NS_PER_S) -> None:
        self.run = run
        self.trace = trace
        self.trace_interval_ns = trace_interval_ns
        self.next_sample_ns = 0
        self.later: list[tuple[int, Input]] = []

    def advance(self, until_ns: int) -> None:
        """Let the pump act by itself until `until_ns` (not past it)."""
        run, clock = self.run, self.run.clock
        while True:
            t_next = until_ns
            if self.later:
                t_next = min(t_next, min(t for t, _ in self.later))
            if run.pump is not None:
                wake = run.pump.next_wakeup_ns()
                if wake is not None and wake > clock.now_ns:
                    t_next = min(t_next, wake)
                power_due = None if run.power is None else run.power.due_ns(clock.now_ns)
                if power_due is not None:
                    t_next = min(t_next, power_due)
            self._sample_before(t_next)
            clock.now_ns = max(clock.now_ns, t_next)
            due = [x for x in self.later if x[0] <= t_next]
            for item in due:
                self.later.remove(item)
                run._put(item[1])
            if not due and t_next < until_ns:
                run._tick()
            if t_next >= until_ns:
                return

    def step(self, step: Step) -> None:
        self.advance(step.at_ns)
        self.later.extend(self.run.apply(step))

    def finish(self, end_ns: int) -> None:
        self.advance(end_ns)
        self.run._tick()
        if self.run.pump is not None:
            # The observation ends here: journal the steps made since the last record, so
            # the log (and every report or export of it) holds what the summary counts.
            self.run.pump.journal_progress()
        self._sample_before(end_ns + 1)

    def _sample_before(self, t_ns: int) -> None:
        while self.trace is not None and self.next_sample_ns < t_ns:
            saved = self.run.clock.now_ns
            self.run.clock.now_ns = max(saved, self.next_sample_ns)
            self.trace.writerow(self.run.trace_row())
            self.run.clock.now_ns = saved
            self.next_sample_ns += self.trace_interval_ns


def run_scenario(scenario: Scenario, *, db: Path | None = None, events: IO[str] | None = None,
                 trace: IO[str] | None = None, trace_interval_s: float = 1.0) -> Result:
    with ExitStack() as stack:
        if db is None:
            db = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "events.db"
        elif database_exists(db):
            raise ScenarioError(f"--db {db}: the file already exists; a scenario writes a new "
                                "log (choose another path)")
        log = SqliteEventLog(db)
        stack.callback(log.close)
        clock = VirtualClock(scenario.start_wall_ns)
        run = _Run(scenario, log, clock)
        run.power_on(first=True)
        writer = None
        if trace is not None:
            writer = csv.writer(trace, lineterminator="\n")
            writer.writerow(TRACE_COLUMNS)
        if trace_interval_s <= 0:
            raise ScenarioError(f"--trace-interval {trace_interval_s} must be > 0")
        replay = Replay(run, writer, int(Fraction(str(trace_interval_s)) * NS_PER_S))
        for step in scenario.steps:
            replay.step(step)
        replay.finish(scenario.end_ns)
        summary = summarise(export_rows(db), run, scenario)
        if events is not None:
            for row in export_rows(db):
                events.write(json.dumps(row, separators=(",", ":")) + "\n")
        return Result(summary, db)


def summarise(rows: Iterator[dict[str, Any]], run: _Run, scenario: Scenario) -> dict[str, Any]:
    requests = granted = pib_given = pib_skipped = 0
    denied = dict.fromkeys(DENIAL_REASONS, 0)
    alarms: list[str] = []
    for row in rows:
        if row["type"] == "dose_started" and row["source"] == "intermittent":
            pib_given += 1
        elif row["type"] == "pib_skipped":
            pib_skipped += 1
        elif row["type"] == "pca_request":
            requests += 1
            if row["outcome"] == "granted":
                granted += 1
            else:
                denied[row["reason"]] = denied.get(row["reason"], 0) + 1
        elif row["type"] == "alarm_raised" and row["alarm"] not in alarms:
            alarms.append(row["alarm"])
    spm = scenario.profile.steps_per_ml
    steps = run.delivered_steps()
    ml = {s: round(float(Fraction(steps[s]) / spm), 6) for s in SOURCES}
    return {
        "name": scenario.name,
        "pca_requests": requests,
        "pca_granted": granted,
        "pca_denied": denied,
        "delivered_ml": {"total": round(sum(ml.values()), 6), **ml},
        "alarms": alarms,
        "final_state": run.pump.state if run.pump is not None else "off",
        "pib_given": pib_given,
        "pib_skipped": pib_skipped,
    }


def main(args: Any) -> int:
    try:
        scenario = load_scenario(args.file)
        with ExitStack() as stack:
            events = stack.enter_context(open(args.events, "w", encoding="utf-8")) \
                if args.events else None
            trace = stack.enter_context(open(args.trace, "w", encoding="utf-8", newline="")) \
                if args.trace else None
            result = run_scenario(scenario, db=Path(args.db) if args.db else None,
                                  events=events, trace=trace,
                                  trace_interval_s=args.trace_interval)
    except ScenarioError as err:
        print(f"pca scenario: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result.summary))
    return 0
