"""The pump: one state machine that coordinates the services, one control loop.

All inputs arrive on one queue; `tick()` drains it and services the motor.
The controller never sleeps and reads time only through the Clock port, so the
same code runs in real time (the daemon) and in virtual time (`pca scenario`).
What each part does lives in its own module: the delivery engine (`delivery`),
alarm conditions (`conditions`), keypad sessions and PINs (`sessions`), the
pharmacy intake (`intake`), the clinician commands (`commands`), the patient's
button and no-PIN keys (`patient`), the panel's port (`desk`), what the outside
sees (`view`), the log writer (`journal`), pump time (`pumptime`), boot
(`resume`) and stopping (`stopping`); `diagram` draws this module's table into
docs/state-machine.md.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from transitions import EventData, Machine

from pca.controller import commands, intermittent, patient, stopping, view
from pca.controller.alarms import AlarmSet
from pca.controller.auth import PinService, Role
from pca.controller.battery import BatteryWatch
from pca.controller.conditions import Conditions
from pca.controller.delivery import DeliveryEngine, Segment
from pca.controller.desk import Desk
from pca.controller.inputs import (
    BolusButton,
    Input,
    Key,
    PanelCommand,
    PendingLibrary,
    PendingPrescription,
    Sensor,
)
from pca.controller.intake import Intake
from pca.controller.journal import Journal, from_to
from pca.controller.panel import FrontPanel, PanelView
from pca.controller.ports import (
    NS_PER_S,
    Actor,
    Annunciator,
    Clock,
    Credentials,
    Display,
    EventLog,
    FuelGauge,
    Motor,
    RespiratoryMonitor,
)
from pca.controller.profile import PumpProfile
from pca.controller.pumptime import MotorInPumpTime, PumpTime
from pca.controller.recovery import DOSE_STATES as DOSE_STATE_NAMES
from pca.controller.recovery import recover
from pca.controller.respiratory import RespiratoryInterlock
from pca.controller.resume import resume
from pca.controller.sessions import Sessions
from pca.controller.view import Snapshot
from pca.therapy.drugs import DrugLibrary
from pca.therapy.ledger import DoseLedger, DoseSource, ml_to_steps
from pca.therapy.prescription import Prescription

# ---- the machine, as one table --------------------------------------------------------
DOSE_STATES = list(DOSE_STATE_NAMES)
DELIVERING = ["running", "kvo", *DOSE_STATES]
STATES = ["unprogrammed", "stopped", *DELIVERING, "alarm"]

TRANSITIONS: list[dict[str, Any]] = [
    # trigger            source                          dest            guard
    {"trigger": "program", "source": ["unprogrammed", "stopped"], "dest": "stopped"},
    {"trigger": "start", "source": "stopped", "dest": "running", "unless": "has_high_alarm"},
    {"trigger": "stop", "source": DELIVERING, "dest": "stopped"},
    {"trigger": "begin_pca", "source": ["running", "kvo"], "dest": "pca_dose"},
    {"trigger": "begin_clinician", "source": ["running", "kvo"], "dest": "clinician_dose"},
    {"trigger": "begin_loading", "source": ["running", "kvo"], "dest": "loading_dose"},
    {"trigger": "begin_pib", "source": ["running", "kvo"], "dest": "intermittent_dose"},
    {"trigger": "dose_done", "source": DOSE_STATES, "dest": "kvo", "conditions": "limit_reached"},
    {"trigger": "dose_done", "source": DOSE_STATES, "dest": "running"},
    {"trigger": "limit_hit", "source": "running", "dest": "kvo"},
    {"trigger": "room_again", "source": "kvo", "dest": "running"},
    {"trigger": "fault", "source": ["stopped", *DELIVERING], "dest": "alarm"},
    {"trigger": "clear", "source": "alarm", "dest": "stopped", "unless": "has_high_alarm"},
    {"trigger": "new_patient", "source": ["unprogrammed", "stopped"], "dest": "unprogrammed"},
]

DOSE_OF_STATE: dict[str, DoseSource] = {
    "pca_dose": "pca", "clinician_dose": "clinician", "loading_dose": "loading",
    "intermittent_dose": "intermittent"}


class Pump:
    """The controller. Build it with `Pump.boot(...)`; feed `put()`; call `tick()`."""

    state: str
    trigger: Callable[..., bool]

    def __init__(self, *, motor: Motor, annunciator: Annunciator, log: EventLog, clock: Clock,
                 library: DrugLibrary, profile: PumpProfile, credentials: Credentials,
                 display: Display | None = None, pepper: bytes | None = None,
                 monitor: RespiratoryMonitor | None = None,
                 gauge: FuelGauge | None = None) -> None:
        self.annunciator = annunciator
        self.log = log
        self.clock = clock
        self.profile = profile
        self.time = PumpTime(clock)
        self.journal = Journal(log, self.time)
        self.motor = MotorInPumpTime(motor, self.time)
        self.delivery = DeliveryEngine(self.motor, self.time, self.journal, profile)
        self.alarms = AlarmSet()
        low_steps = ml_to_steps(profile.low_reservoir_ml, profile.steps_per_ml)
        self.conditions = Conditions(self.alarms, self.journal, self.delivery, low_steps,
                                     self._fault_now)
        # SR-13: the respiratory monitor's readings become vitals events and alarms.
        self.respiratory = RespiratoryInterlock(monitor, self.alarms, self.journal.emit,
                                                self.conditions.condition)
        # The fuel gauge: state of charge, time remaining, the end-of-syringe warning.
        self.battery = BatteryWatch(gauge, self.journal.emit, self.conditions.condition,
                                    self._syringe_lasts_s)
        self.sessions = Sessions(credentials, pepper, self.time, self.journal)
        self.intake = Intake(library, profile, self.journal, self.sessions)
        self.pib = intermittent.PibService(profile.steps_per_ml)
        self.desk = Desk(self.sessions, self.intake, self._handle, self.panel_view)
        self.panel = FrontPanel(self.desk, display)
        self.journal.observers += [self.sessions.observe, self.panel.observe,
                                   self.intake.observe, self.pib.observe]
        self.journal.on_failed = self._log_failed
        self.journal.on_restored = self.conditions.log_restored
        self.inputs: queue.SimpleQueue[Input] = queue.SimpleQueue()
        self.on_input: Callable[[], None] | None = None  # wakes a sleeping control loop
        self.rx: Prescription | None = None
        states = [{"name": name, "on_enter": "_on_enter", "on_exit": "_on_exit"}
                  for name in STATES]
        self.machine = Machine(model=self, states=states, transitions=TRANSITIONS,
                               initial="unprogrammed", auto_transitions=False, queued=True,
                               send_event=True)

    @classmethod
    def boot(cls, **ports: Any) -> Pump:
        """Start from the event log alone: fresh, or after a crash or power loss (SR-5)."""
        pump = cls(**ports)
        base, stored = pump.journal.replay_from_checkpoint()
        rec = recover(stored, base)
        pump.intake.restore()
        resume(pump, rec)
        pump.journal.flush()
        return pump

    # ---- the control loop -------------------------------------------------------------
    def put(self, item: Input) -> None:
        """Thread-safe: any thread may hand the pump an input."""
        self.inputs.put(item)
        if self.on_input is not None:
            self.on_input()

    def tick(self) -> None:
        """One pass of the control loop: inputs, motor, conditions, annunciation, log."""
        now = self.time.now_ns = self.time.pump_ns()
        jump = self.time.wall_jump_ns()
        if jump is not None:
            self.journal.emit("clock_changed", "system", delta_s=jump / NS_PER_S)
        self._service_motor(now)  # a dose that has just ended is over before inputs
        # Readings before inputs: a clinician's clear in this tick sees the latest values.
        self.respiratory.tick(now, self.time.offset_ns)
        self.battery.tick(now - self.time.offset_ns)
        while True:
            try:
                item = self.inputs.get_nowait()
            except queue.Empty:
                break
            self._handle(item)
        self._service_motor(now)
        self._check_conditions(now)
        intermittent.service(self, now)
        self.panel.tick(now)
        self.motor.heartbeat(now)
        self.annunciator.annunciate(self.alarms.highest(), self.alarms.silenced(now), now)
        self.journal.flush()

    def next_wakeup_ns(self) -> int | None:
        """Monotonic time of the next thing the loop must act on by itself (virtual time
        skips the ticks in between, which would do nothing)."""
        now = self.time.now_ns
        times = self.delivery.wakeups(now)
        if self.state == "kvo":
            room = self.ledger.room_at_ns(now, self.delivery.resume_steps(self.rx))
            if room is not None:
                times.append(room)
        if self.sessions.until_ns is not None:
            times.append(self.sessions.until_ns)
        due = self.pib.next_due_ns()
        if due is not None:
            times.append(due)
        if self.alarms.silenced_until_ns is not None and self.alarms.silenced(now):
            times.append(self.alarms.silenced_until_ns)
        monitor_due = self.respiratory.next_wakeup_ns(now)
        if monitor_due is not None:
            times.append(monitor_due)
        future = [t for t in times if t > now]
        return min(future) - self.time.offset_ns if future else None

    def _service_motor(self, now: int) -> None:
        found = self.delivery.service(now)
        if found is None:
            return
        what, unrecorded = found
        if what == "motor_fault":
            self.conditions.condition("motor_fault", True)
        elif what == "dose_done":
            self.trigger("dose_done")
        elif what == "reservoir":
            self.conditions.reservoir(unrecorded)
        elif self.state in DOSE_STATES:
            self.delivery.completion = "truncated"
            self.trigger("dose_done")
        elif self.state == "running":
            self.trigger("limit_hit")

    def _check_conditions(self, now: int) -> None:
        self.conditions.reservoir(self.delivery.unrecorded())
        if self.state == "kvo":
            allowance = self.ledger.allowance_steps(now)
            if allowance is None or allowance >= self.delivery.resume_steps(self.rx):
                self.trigger("room_again")
        if self.alarms.has_high():
            self._fault_now()
        self.sessions.expire(now)

    def _syringe_lasts_s(self) -> float | None:
        """How long the syringe lasts at the current delivery (None: not delivering)."""
        if self.state not in DELIVERING:
            return None
        snap = self.snapshot()
        if snap.rate_ml_h <= 0:
            return None
        left_ml = float(Fraction(snap.reservoir_steps) / self.profile.steps_per_ml)
        return max(0.0, left_ml) / snap.rate_ml_h * 3600.0

    def _fault_now(self) -> None:
        """SR-4: a high-priority alarm stops delivery within this tick, mid-move."""
        if self.state in ["stopped", *DELIVERING]:
            self.delivery.completion = "interrupted"
            self.trigger("fault")

    def _log_failed(self, why: str) -> None:
        """SR-7: the pump never delivers what it cannot log."""
        if self.delivery.seg is not None or self.state in DELIVERING:
            self.motor.halt(self.time.now_ns)
        self.conditions.log_failed(why)
        self._fault_now()

    # ---- inputs ----------------------------------------------------------------------
    def _handle(self, item: Input) -> None:
        if isinstance(item, BolusButton):
            if item.pressed:
                patient.pca_request(self)
        elif isinstance(item, Sensor):
            self.conditions.sensor(item.name, item.active)
        elif isinstance(item, Key):
            self.panel.key(item.key, self.time.now_ns)
        elif isinstance(item, PanelCommand):
            patient.PANEL_COMMANDS[item.name](self)
        elif isinstance(item, PendingPrescription | PendingLibrary):
            self.intake.receive(item)
            self.panel.pending(item, self.time.now_ns)
        else:
            commands.run(self, item)

    # ---- state machine callbacks ---------------------------------------------------------
    def has_high_alarm(self, event: EventData | None) -> bool:
        return self.alarms.has_high()

    def limit_reached(self, event: EventData | None) -> bool:
        return self.delivery.limit_reached()

    def _on_enter(self, event: EventData) -> None:
        state = self.state
        assert event.transition is not None
        self.journal.emit("state_changed", "system", **from_to(event.transition.source, state))
        if state == "unprogrammed":
            return
        assert self.rx is not None or state in ("stopped", "alarm")
        if state in ("running", "kvo"):
            self.conditions.condition("dose_limit_reached", state == "kvo")
        if state in DOSE_STATES:
            self.delivery.start_dose()
        else:
            self.delivery.enter(state, self.rx)

    def _on_exit(self, event: EventData) -> None:
        state = self.state
        if state == "unprogrammed":
            return
        to = None if event.transition is None else event.transition.dest
        made = self.delivery.end_segment(halt=to in (None, "stopped", "alarm"))
        if state in DOSE_STATES:
            completion = "interrupted" if to == "alarm" else self.delivery.completion
            self.journal.emit("dose_ended", "system", source=DOSE_OF_STATE[state],
                              delivered_ml=self.delivery.ml(made), completion=completion)
            self.delivery.dose = None

    # ---- what the services and the outside use -----------------------------------------
    def activate(self, rx: Prescription | None) -> None:
        self.rx = rx
        if rx is not None:
            self.delivery.activate(rx)
        self.respiratory.activate(None if rx is None else rx.request.monitor, self.time.now_ns)

    def set_state(self, state: str) -> None:
        self.machine.set_state(state)

    def snapshot(self) -> Snapshot:
        return view.snapshot(self)

    def panel_view(self) -> PanelView:
        return view.panel_view(self)

    def log_unusable(self, why: str) -> None:
        """The log failed its start-up check (SR-7): alarm and refuse to deliver."""
        stopping.log_unusable(self, why)

    def fail_self_test(self, problems: list[str]) -> None:
        """Power-on self test failed: refuse to deliver, alarm, say what to do."""
        stopping.fail_self_test(self, problems)

    def journal_progress(self) -> None:
        """Journal now what the motor made since the last record (see `stopping`)."""
        stopping.journal_progress(self)

    def shutdown(self) -> None:
        """Orderly stop (SIGTERM): halt the motor, log it, make the log durable."""
        stopping.shutdown(self)

    def power_down(self, reason: str) -> None:
        """The pack is empty: stop cleanly before the power goes (see `stopping`)."""
        stopping.power_down(self, reason)

    def internal_fault(self, err: BaseException) -> None:
        """A tick raised: halt, log it, raise `internal_fault` (see `stopping`)."""
        stopping.internal_fault(self, err)

    def provision_pin(self, pin: str, actor: Actor = "system", *,
                      allow_weak: bool = False) -> None:
        """Set the clinician PIN (stored only as a salted scrypt hash); a weak one raises
        WeakPinError unless `allow_weak` (scenarios, the simulator: logged as weak)."""
        self.sessions.provision(pin, actor, allow_weak=allow_weak)
        self.journal.flush()

    # The parts the daemon, the simulator and the tests read (one owner each).
    def pump_ns(self) -> int:
        """Therapy time: monotonic, continuous across restarts (SR-5)."""
        return self.time.pump_ns()

    @property
    def offset_ns(self) -> int:
        return self.time.offset_ns

    @property
    def seg(self) -> Segment | None:
        return self.delivery.seg

    @property
    def ledger(self) -> DoseLedger:
        return self.delivery.ledger

    @property
    def pins(self) -> PinService:
        return self.sessions.pins

    @property
    def library(self) -> DrugLibrary:
        return self.intake.library

    @property
    def session_role(self) -> Role:
        return self.sessions.role

    @property
    def session_until_ns(self) -> int | None:
        return self.sessions.until_ns

    def session_open(self) -> bool:
        return self.sessions.is_open()

    def install_library(self, item: PendingLibrary, pin: str) -> str | None:
        return self.intake.install_library(item, pin)
