"""`pca scenario`: replay a scripted session on simulated hardware in virtual time.

The contract is docs/scenarios.md. The real controller, ledger, event log,
recovery and PIN checks run; only the clock, the motor and the hardware lines
are simulated. Virtual time jumps from one thing that happens to the next
(a step, a motor grant, a dose end), so 72 hours replay in seconds, and the
same file always gives the same events.
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from pca.app import sim_power
from pca.app.scenario_file import OFF_ACTIONS
from pca.app.scenario_file import Scenario as Scenario  # re-exported, with the four below:
from pca.app.scenario_file import ScenarioError as ScenarioError  # callers load scenario
from pca.app.scenario_file import Step as Step  # files through this module, as before
from pca.app.scenario_file import load_scenario as load_scenario
from pca.app.scenario_file import parse_duration as parse_duration
from pca.controller.inputs import (
    BolusButton,
    ClinicianCommand,
    Input,
    Key,
    PanelCommand,
    Sensor,
)
from pca.controller.ports import NS_PER_S, Priority
from pca.controller.pump import Pump
from pca.hw.sim_monitor import SimulatedMonitor
from pca.hw.sim_motor import VirtualMotor
from pca.store.eventlog import SqliteEventLog, database_exists, export_rows
from pca.therapy.ledger import SOURCES

TRACE_COLUMNS = ["t_s", "state", "rate_ml_h", "delivered_ml", "basal_ml", "pca_ml",
                 "loading_ml", "clinician_ml", "kvo_ml", "reservoir_ml", "alarms",
                 "intermittent_ml"]  # version 2: last, after alarms
# The per-source trace columns before reservoir_ml, in order; intermittent_ml comes last.
TRACE_SOURCES = ("basal", "pca", "loading", "clinician", "kvo")
DENIAL_REASONS = ["lockout", "dose_limit", "max_per_hour", "in_progress", "alarm",
                  "not_running"]


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
        log = SqliteEventLog(db, provision_keys=True)
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
