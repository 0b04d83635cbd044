"""Hypothesis stateful test: random presses, time, signals, crashes, restarts and clock jumps
against the real controller, ledger, log and recovery; SR-1..SR-5 and SR-12 checked after every
step, for an IV PCA and for an epidural PIEB + PCEA whose boluses press on the dose limit."""

from __future__ import annotations

import shutil
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pca.app.scenario import TRACE_COLUMNS, Replay, Scenario, Step, VirtualClock, _Run
from pca.controller.alarms import PRIORITY
from pca.controller.profile import PumpProfile
from pca.store.eventlog import SqliteEventLog, export_rows
from pca.therapy.drugs import default_library
from pca.therapy.ledger import ml_to_steps
from pca.therapy.prescription import parse_request

NS = 1_000_000_000
LOCKOUT_S = 600
WINDOW_S = 3600
MAX_PER_H = 3
LIMIT_ML = Fraction(5, 2)
# The epidural variant: mL throughout; PIB 5 mL every 20 min against a 12 mL/h limit, so the
# schedule, the limit (cut, skip) and PCEA all meet.
PIEB_LIMIT_ML = Fraction(12)
PIB_INTERVAL_S = 20 * 60
PIB_FIRST_S = 5 * 60  # shorter than the interval: a stop/start must not pull a PIB in
COUNTED = ("basal", "pca", "loading", "intermittent")
HIGH = {name for name, p in PRIORITY.items() if p == "high"}


class Rows:
    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []

    def writerow(self, row: list[Any]) -> None:
        self.rows.append(dict(zip(TRACE_COLUMNS, (str(v) for v in row), strict=True)))


class PumpMachine(RuleBasedStateMachine):
    @initialize(basal=st.sampled_from([0.0, 0.5, 1.0]), rtc=st.booleans(),
                therapy=st.sampled_from(["iv", "pieb"]))
    def setup(self, basal: float, rtc: bool, therapy: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pca-stateful-"))
        common = {"basal_rate_per_h": basal, "lockout_min": LOCKOUT_S // 60,
                  "max_pca_per_h": MAX_PER_H, "dose_limit_window_h": 1}
        self.pieb = therapy == "pieb"
        if self.pieb:
            self.limit_ml = PIEB_LIMIT_ML
            rx = parse_request({**common, "drug": "bupivacaine_fentanyl", "route": "epidural",
                                "concentration_per_ml": 0.625, "dose_unit": "ml",
                                "pca_dose": 5.0, "dose_limit": float(PIEB_LIMIT_ML),
                                "loading_dose": 5.0, "clinician_bolus_max": 5.0,
                                "pib_dose": 5.0, "pib_interval_min": PIB_INTERVAL_S // 60,
                                "pib_first_min": PIB_FIRST_S // 60})
        else:
            self.limit_ml = LIMIT_ML
            rx = parse_request({**common, "drug": "morphine", "concentration_per_ml": 1.0,
                                "dose_unit": "mg", "pca_dose": 1.0,
                                "dose_limit": float(LIMIT_ML), "loading_dose": 1.0,
                                "clinician_bolus_max": 1.0})
        self.profile = PumpProfile(rtc=rtc, syringe_ml=Fraction(50))
        sc = Scenario("stateful", 1_770_000_000 * NS, "482916", 0, self.profile, rx,
                      default_library(), [])
        self.log = SqliteEventLog(self.dir / "events.db")
        self.trace = Rows()
        self.run = _Run(sc, self.log, VirtualClock(sc.start_wall_ns))
        self.run.power_on(first=True)
        self.replay = Replay(self.run, self.trace, 5 * NS)
        self.t_ns = 0
        self.seen = 0
        self.do("program", confirm_soft=True)
        self.do("start")
        assert self.run.pump is not None and self.run.pump.rx is not None

    def teardown(self) -> None:
        if hasattr(self, "log"):
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def do(self, action: str, **fields: Any) -> None:
        self.replay.step(Step(self.t_ns, action, fields, 0))

    # ---- rules ----------------------------------------------------------------------------
    @rule(seconds=st.integers(1, 1500))
    def wait(self, seconds: int) -> None:
        self.t_ns += seconds * NS
        self.replay.advance(self.t_ns)

    @rule(wait_s=st.one_of(st.just(0), st.integers(1, 120),
                           st.sampled_from([LOCKOUT_S - 60, LOCKOUT_S - 1, LOCKOUT_S,
                                            WINDOW_S // MAX_PER_H]),
                           st.integers(LOCKOUT_S - 180, LOCKOUT_S + 60)))
    def press(self, wait_s: int) -> None:
        if wait_s:
            self.t_ns += wait_s * NS
            self.replay.advance(self.t_ns)
        self.do("press", hold_s=0.2)

    @rule(name=st.sampled_from(["occlusion", "air_in_line", "battery_low", "door_open"]),
          value=st.booleans())
    def signal(self, name: str, value: bool) -> None:
        self.do("signal", name=name, value=value)

    @rule()
    def clear_and_start(self) -> None:
        self.do("clear_alarm")
        self.do("start")

    @rule()
    def reprogram(self) -> None:
        self.do("stop")
        self.do("program", confirm_soft=True)
        self.do("start")

    @rule(kind=st.sampled_from(["clinician_bolus", "loading_dose", "stop", "silence"]))
    def clinician(self, kind: str) -> None:
        self.do(kind, **({"amount": 1.0} if kind == "clinician_bolus" else {}))

    @precondition(lambda self: self.run.pump is not None)
    @rule(gap_s=st.integers(0, 3600))
    def crash_and_restart(self, gap_s: int) -> None:
        self.do("crash")
        self.t_ns += gap_s * NS
        self.replay.advance(self.t_ns)
        self.do("restart")

    @rule(seconds=st.sampled_from([-7200, -30, 45, 3600, 86400]))
    def clock_jump(self, seconds: int) -> None:
        self.do("clock_step", seconds=seconds)

    # ---- the rules, on what the pump logged and what the motor did -----------------------
    @invariant()
    def rules_hold(self) -> None:
        events = list(export_rows(self.dir / "events.db"))
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(seqs) + 1))
        spm = self.profile.steps_per_ml
        limit_steps = ml_to_steps(self.limit_ml, spm)
        starts: list[float] = []
        pibs: list[float] = []
        started_at: float | None = None  # the last start of delivery (stopped -> running)
        granted: list[float] = []
        counted: list[tuple[float, int]] = []
        open_dose = False
        for i, e in enumerate(events):
            t = e["t_s"]
            if e["type"] == "pca_request" and e["outcome"] == "granted":
                # SR-1: lockout since any dose start, never during a dose.
                assert not open_dose, f"PCA granted during a dose at {t}"
                assert not starts or t - starts[-1] >= LOCKOUT_S - 1e-9, (t, starts[-1])
                # SR-3: at most MAX_PER_H granted starts in any rolling hour.
                granted.append(t)
                assert sum(1 for g in granted if t - WINDOW_S < g <= t) <= MAX_PER_H
            elif e["type"] == "state_changed" and (e["from"], e["to"]) == ("stopped", "running"):
                started_at = t
            elif e["type"] == "dose_started" and e["source"] == "intermittent":
                # SR-12: never two PIB starts closer than the interval (across stop/start,
                # crash/restart, reprogramming), the first never sooner than first_min after
                # the start of delivery, never during another dose.
                assert not open_dose
                assert not pibs or t - pibs[-1] >= PIB_INTERVAL_S - 1e-9, (t, pibs[-1])
                assert started_at is not None and t - started_at >= PIB_FIRST_S - 1e-9
                pibs.append(t)
                starts.append(t)
                open_dose = True
            elif e["type"] == "dose_started":
                assert not open_dose
                if e["source"] == "pca":  # SR-5: nothing starts by itself after a restart
                    cause = [x for x in events[:i] if x["type"] in ("pca_request", "dose_ended",
                                                                     "restarted")][-1]
                    assert cause["type"] == "pca_request" and cause["outcome"] == "granted"
                    assert cause["t_s"] == t
                starts.append(t)
                open_dose = True
            elif e["type"] == "dose_ended":
                assert open_dose
                open_dose = False
            elif e["type"] == "delivery" and e["source"] in COUNTED:
                counted.append((t, e["steps"]))
                # SR-2 on the motor journal: every window ending at a record is within limit.
                assert sum(s for tt, s in counted if t - WINDOW_S < tt <= t) <= limit_steps
        # SR-2 and SR-4 on the trace (what the motor actually stepped).
        rows = [(float(r["t_s"]), sum(float(r[f"{c}_ml"]) for c in COUNTED),
                 float(r["delivered_ml"]), set(r["alarms"].split(";")))
                for r in self.trace.rows]
        slack = 5 * 60 / 3600  # one sample interval at the 60 mL/h bolus rate
        for k, (t, cum, total, alarms) in enumerate(rows):
            base = [c for s, c, _, _ in rows if s <= t - WINDOW_S]
            assert cum - (base[-1] if base else 0.0) <= float(self.limit_ml) + slack + 1e-6
            if k and (alarms & HIGH) and (rows[k - 1][3] & HIGH):
                assert total == rows[k - 1][2], f"delivery under a high alarm at {t}"
            if k:
                assert total >= rows[k - 1][2]


PumpMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestPumpRules = PumpMachine.TestCase
