"""The pump: one state machine, one control loop, every dose decision.

All inputs arrive on one queue; `tick()` drains it and services the motor.
The controller never sleeps and reads time only through the Clock port, so the
same code runs in real time (the daemon) and in virtual time (`pca scenario`).

Volume truth is motor steps. Before the motor may make a step, that step has
been granted in a `delivery` event that is already durable (write-ahead), and
no grant exceeds what every limit still allows (SR-2, SR-10): a crash can only
make the pump over-count what it gave, never under-count it.
"""

from __future__ import annotations

import math
import queue
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from transitions import EventData, Machine

from pca.controller.alarms import PRIORITY, SENSOR_ALARM, Alarm, AlarmSet
from pca.controller.auth import (
    SESSION_EDIT_IDLE_NS,
    SESSION_IDLE_NS,
    FailureState,
    Outcome,
    PinFormatError,
    PinService,
    Role,
    pin_weakness,
)
from pca.controller.inputs import (
    BolusButton,
    ClinicianCommand,
    Input,
    Key,
    PanelCommand,
    PendingLibrary,
    PendingPrescription,
    Sensor,
)
from pca.controller.panel import FrontPanel, PanelView, PinStatus, RxReview, highest_first
from pca.controller.ports import (
    NS_PER_S,
    Actor,
    Annunciator,
    Clock,
    Credentials,
    Display,
    Event,
    EventLog,
    LogWriteError,
    Motor,
    StepRate,
    StoredEvent,
)
from pca.controller.profile import PumpProfile
from pca.controller.recovery import DELIVERING_STATES, Recovered, recover
from pca.therapy.drugs import DrugLibrary, LibraryError, load_pharmacy_library, replace_library
from pca.therapy.ledger import (
    COUNTED,
    SOURCES,
    DoseLedger,
    DoseSource,
    LedgerLimits,
    Source,
    ml_to_steps,
)
from pca.therapy.prescription import (
    Prescription,
    PrescriptionFormatError,
    RxRequest,
    derive,
    parse_request,
    validate,
)
from pca.therapy.units import exact

# ---- the machine, as one table --------------------------------------------------------
DOSE_STATES = ["pca_dose", "clinician_dose", "loading_dose"]
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
    {"trigger": "dose_done", "source": DOSE_STATES, "dest": "kvo", "conditions": "limit_reached"},
    {"trigger": "dose_done", "source": DOSE_STATES, "dest": "running"},
    {"trigger": "limit_hit", "source": "running", "dest": "kvo"},
    {"trigger": "room_again", "source": "kvo", "dest": "running"},
    {"trigger": "fault", "source": ["stopped", *DELIVERING], "dest": "alarm"},
    {"trigger": "clear", "source": "alarm", "dest": "stopped", "unless": "has_high_alarm"},
    {"trigger": "new_patient", "source": ["unprogrammed", "stopped"], "dest": "unprogrammed"},
]

DOSE_OF_STATE: dict[str, DoseSource] = {
    "pca_dose": "pca", "clinician_dose": "clinician", "loading_dose": "loading"}
# Write-ahead grants: about 0.05 mL each, but at least 1 s and at most 5 min of motion.
GRANT_ML = Fraction(1, 20)
GRANT_MIN_NS = NS_PER_S
GRANT_MAX_NS = 300 * NS_PER_S
# Leave KVO when the window has room for this long at the basal rate (hysteresis).
RESUME_BASAL_NS = 900 * NS_PER_S
CLOCK_JUMP_NS = NS_PER_S
MAX_SYRINGE_ML = 100


@dataclass
class Segment:
    """One stretch of motion at one rate for one source."""

    source: Source
    rate: StepRate
    start_count: int  # motor count at the segment's start
    target: int | None  # steps of a dose; None for basal/KVO
    chunk: int  # steps per write-ahead grant
    rate_ml_h: float  # for display and trace only
    limit: int  # motor may step up to this absolute count
    recorded: int = 0  # steps of this segment already in the ledger and the log


def _from_to(source: str, dest: str) -> dict[str, Any]:
    """state_changed's fields ("from" is a Python keyword)."""
    return {"from": source, "to": dest}


class _InPumpTime:
    """The Motor port seen in pump time: the motor itself lives on the monotonic clock,
    pump time is that clock plus the offset recovered at boot (SR-5)."""

    def __init__(self, motor: Motor, pump: Pump) -> None:
        self.motor = motor
        self.pump = pump

    def run(self, rate: StepRate, limit: int, now_ns: int) -> None:
        self.motor.run(rate, limit, now_ns - self.pump.offset_ns)

    def count(self, now_ns: int) -> int:
        return self.motor.count(now_ns - self.pump.offset_ns)

    def time_of_count(self, count: int) -> int | None:
        when = self.motor.time_of_count(count)
        return None if when is None else when + self.pump.offset_ns

    def halt(self, now_ns: int) -> int:
        return self.motor.halt(now_ns - self.pump.offset_ns)

    def heartbeat(self, now_ns: int) -> None:
        self.motor.heartbeat(now_ns - self.pump.offset_ns)

    def fault(self) -> str | None:
        return self.motor.fault()


@dataclass(frozen=True)
class Snapshot:
    """What the pump looks like at an instant (for trace, display, simulator)."""

    state: str
    rate_ml_h: float
    delivered_steps: Mapping[Source, int]
    reservoir_steps: int
    alarms: list[str]
    silenced: bool
    lockout_left_s: float


class Pump:
    """The controller. Build it with `Pump.boot(...)`; feed `put()`; call `tick()`."""

    state: str
    trigger: Callable[..., bool]

    def __init__(self, *, motor: Motor, annunciator: Annunciator, log: EventLog, clock: Clock,
                 library: DrugLibrary, profile: PumpProfile, credentials: Credentials,
                 display: Display | None = None, pepper: bytes | None = None) -> None:
        self.motor: Motor = _InPumpTime(motor, self)
        self.annunciator = annunciator
        self.log = log
        self.clock = clock
        self.library = library
        self.profile = profile
        self.pins = PinService(credentials, pepper=pepper)
        self.inputs: queue.SimpleQueue[Input] = queue.SimpleQueue()
        self.ledger = DoseLedger()
        self.alarms = AlarmSet()
        self.rx: Prescription | None = None
        self.seg: Segment | None = None
        self.sensors: dict[str, bool] = {}
        self.session_until_ns: int | None = None
        self.session_edit = False
        self.panel = FrontPanel(self, display)
        self.offset_ns = 0
        self._wall_offset_ns = 0  # expected wall - monotonic
        self._record_ns = 0  # pump time of the last delivery record (never decreases)
        self._decision_ns = 0  # pump time of the last dose decision or start
        self._now = 0
        self._dose: tuple[DoseSource, int, Fraction] | None = None  # source, steps, mL
        self._completion = "complete"
        self._syringe_steps = 0
        self._syringe_used = 0  # recorded steps since the syringe was loaded
        self._last_rate: tuple[str, float] | None = None
        self.log_ok = True
        states = [{"name": name, "on_enter": "_on_enter", "on_exit": "_on_exit"}
                  for name in STATES]
        self.machine = Machine(model=self, states=states, transitions=TRANSITIONS,
                               initial="unprogrammed", auto_transitions=False, queued=True,
                               send_event=True)

    # ---- construction and recovery (SR-5) -------------------------------------------
    @classmethod
    def boot(cls, **ports: Any) -> Pump:
        """Start from the event log alone: fresh, or after a crash or power loss."""
        pump = cls(**ports)
        pump._recover(recover(pump._replay_for_panel()))
        pump._flush()
        return pump

    def _recover(self, rec: Recovered) -> None:
        mono = self.clock.monotonic_ns()
        wall = self.clock.wall_ns()
        outage_ns = 0
        if rec.events and self.profile.rtc and wall >= rec.last_wall_ns:
            outage_ns = wall - rec.last_wall_ns
        self.offset_ns = rec.last_pump_ns + outage_ns - mono
        self._wall_offset_ns = wall - mono
        now = self._now = self.pump_ns()
        self.pins.failures = rec.failures
        if rec.problems:
            self._log_failed("the event log has unreadable rows: " + "; ".join(rec.problems[:3]))
        if rec.events == 0:
            self._emit("pump_initialised", "system", steps_per_ml=float(self.profile.steps_per_ml),
                       rtc=self.profile.rtc)
            self._emit("state_changed", "system", **_from_to("off", "unprogrammed"))
            self._load_syringe(self.profile.syringe_ml, "system")
            return
        syringe_ml = Fraction(str(rec.syringe_ml)) if rec.syringe_ml is not None else Fraction(0)
        self._syringe_steps = ml_to_steps(syringe_ml, self.profile.steps_per_ml)
        self._syringe_used = rec.delivered_since_syringe
        if rec.prescription is not None:
            self._activate(self._rx_from_log(rec.prescription))
        for source, steps, t_ns in rec.deliveries:
            self.ledger.record_delivery(source, steps, t_ns)
        for t_ns, dose_source in rec.dose_starts:
            self.ledger.record_dose_start(dose_source, t_ns)
        if rec.open_grant is not None:
            # Granted before the crash and never confirmed: count it all as given.
            source, steps = rec.open_grant
            self._record_ns = max(now, self.pump_ns())
            self.ledger.record_delivery(source, steps, self._record_ns)
            self._syringe_used += steps
            self._emit("delivery", "system", source=source, steps=steps,
                       ml=self._ml(steps), granted_steps=0, assumed=True,
                       at_pump_ns=self._record_ns)
        interrupted_ml = 0.0
        if rec.open_dose is not None:
            source_d, _planned = rec.open_dose
            given = rec.open_dose_steps
            if rec.open_grant is not None and rec.open_grant[0] == source_d:
                given += rec.open_grant[1]
            interrupted_ml = self._ml(given)
            # An upper bound: what was logged as made plus the grant still open at the crash.
            self._emit("dose_ended", "system", source=source_d, delivered_ml=interrupted_ml,
                       completion="interrupted", upper_bound=rec.open_grant is not None)
        self.ledger.totals = dict.fromkeys(SOURCES, 0)  # this session's motor truth
        was_delivering = rec.last_state in DELIVERING_STATES and not rec.clean_shutdown
        self._emit("restarted", "system", interrupted_dose_ml=interrupted_ml,
                   outage_s=outage_ns / NS_PER_S, previous_state=rec.last_state)
        for name in sorted(rec.alarms):
            self.alarms.active.setdefault(name, Alarm(name, False))
        if was_delivering:
            self._raise_event("delivery_interrupted")
        initial = "stopped" if self.rx is not None else "unprogrammed"
        if self.rx is not None and self.alarms.has_high():
            initial = "alarm"
        self.machine.set_state(initial)
        self._emit("state_changed", "system", **_from_to("off", initial))
        self._rate_changed("stopped", 0.0)
        self._reservoir_conditions(0)

    # ---- time ------------------------------------------------------------------------
    def pump_ns(self) -> int:
        """Therapy time: monotonic, continuous across restarts (SR-5)."""
        return self.clock.monotonic_ns() + self.offset_ns

    def _check_wall_clock(self) -> None:
        mono = self.clock.monotonic_ns()
        jump = self.clock.wall_ns() - mono - self._wall_offset_ns
        if abs(jump) >= CLOCK_JUMP_NS:
            self._wall_offset_ns += jump
            self._emit("clock_changed", "system", delta_s=jump / NS_PER_S)

    # ---- the control loop -------------------------------------------------------------
    def put(self, item: Input) -> None:
        """Thread-safe: any thread may hand the pump an input."""
        self.inputs.put(item)

    def tick(self) -> None:
        """One pass of the control loop: inputs, motor, conditions, annunciation, log."""
        now = self._now = self.pump_ns()
        self._check_wall_clock()
        self._service_motor(now)  # a dose that has just ended is over before inputs
        while True:
            try:
                item = self.inputs.get_nowait()
            except queue.Empty:
                break
            self._handle(item)
        self._service_motor(now)
        self._check_conditions(now)
        self.panel.tick(now)
        self.motor.heartbeat(now)
        self.annunciator.annunciate(self.alarms.highest(), self.alarms.silenced(now), now)
        self._flush()

    def next_wakeup_ns(self) -> int | None:
        """Monotonic time of the next thing the loop must act on by itself (virtual time
        skips the ticks in between, which would do nothing)."""
        times: list[int] = []
        seg = self.seg
        if seg is not None:
            count = self.motor.count(self._now)
            due = seg.limit - seg.chunk // 2
            when = self.motor.time_of_count(due if due > count else seg.limit)
            if when is not None:
                times.append(when)
            if seg.target is not None:
                end = self.motor.time_of_count(seg.start_count + seg.target)
                if end is not None:
                    times.append(end)
        if self.state == "kvo":
            room = self.ledger.room_at_ns(self._now, self._resume_steps())
            if room is not None:
                times.append(room)
        if self.session_until_ns is not None:
            times.append(self.session_until_ns)
        if self.alarms.silenced_until_ns is not None and self.alarms.silenced(self._now):
            times.append(self.alarms.silenced_until_ns)
        future = [t for t in times if t > self._now]
        return min(future) - self.offset_ns if future else None

    # ---- inputs ----------------------------------------------------------------------
    def _handle(self, item: Input) -> None:
        if isinstance(item, BolusButton):
            if item.pressed:
                self._pca_request()
        elif isinstance(item, Sensor):
            self._sensor(item.name, item.active)
        elif isinstance(item, Key):
            self._key(item.key)
        elif isinstance(item, PanelCommand):
            if item.name == "start":
                self._start()
            elif item.name == "stop":
                self._stop()
            else:
                self._silence()
        elif isinstance(item, PendingPrescription | PendingLibrary):
            self._pending(item)
        else:
            self._clinician(item)

    def _pca_request(self) -> None:
        now = self._now
        reason: str | None
        if self.alarms.has_high():
            reason = "alarm"
        elif self.state not in DELIVERING:
            reason = "not_running"
        else:
            self._record_progress(now)
            # Decide at the moment of deciding (not the tick's start) and log that moment,
            # so the log shows exactly the interval the lockout was checked on (SR-1).
            now = self._decision_ns = max(self._now, self._record_ns, self.pump_ns())
            reason = self.ledger.pca_denial(now, dose_running=self.state in DOSE_STATES)
        if reason is None:
            self._emit("pca_request", "patient", outcome="granted", at_pump_ns=now)
            self.annunciator.tone("granted", now)
            assert self.rx is not None
            limits = self.ledger.limits
            assert limits is not None
            self._dose = ("pca", limits.pca_dose_steps, self.rx.pca_dose_ml)
            self.trigger("begin_pca")
        else:
            self._emit("pca_request", "patient", outcome="denied", reason=reason,
                       at_pump_ns=max(now, self._decision_ns))
            self.annunciator.tone("denied", now)

    def _sensor(self, name: str, active: bool) -> None:
        if name not in SENSOR_ALARM:
            return
        if self.sensors.get(name) == active:
            return
        self.sensors[name] = active
        if name == "end_of_travel":
            self._reservoir_conditions(self._unrecorded())
        else:
            self._condition(SENSOR_ALARM[name], active)

    def _start(self) -> None:
        if self.state != "stopped" or self.has_high_alarm(None):
            why = "the pump has a high-priority alarm" if self.has_high_alarm(None) else \
                f"the pump is {self.state.replace('_', ' ')}"
            self._emit("action_rejected", "patient", action="start", reason=why)
            return
        if "delivery_interrupted" in self.alarms.active:
            # Resuming delivery is what this alarm asks for.
            del self.alarms.active["delivery_interrupted"]
            self._emit("alarm_cleared", "patient", alarm="delivery_interrupted",
                       priority="medium")
        self.trigger("start")

    def _stop(self) -> None:
        if self.state not in DELIVERING:
            self._emit("action_rejected", "patient", action="stop",
                       reason=f"the pump is {self.state.replace('_', ' ')}")
            return
        self._completion = "stopped"
        self.trigger("stop")

    def _silence(self) -> None:
        for alarm in self.alarms.silence(self._now):
            self._emit("alarm_silenced", "patient", alarm=alarm.name, priority=alarm.priority)

    # ---- what the front panel may ask (pca.controller.panel.PanelHost) -------------------
    # Who opened the keypad session. An admin session resets PINs and installs drug
    # libraries; it never authorises therapy (SR-6).
    session_role: Role = "clinician"
    # Fingerprints of the stored PIN hashes as the log last recorded them (role -> id;
    # None: set by provision_pin, trust what is stored), to log changes made outside.
    _known_hash_ids: dict[str, str | None] | None = None

    def _key(self, key: str) -> None:
        self.panel.key(key, self._now)

    def session_open(self) -> bool:
        """A keypad session (clinician or admin) is open."""
        return self.session_until_ns is not None and self._now < self.session_until_ns

    def _session_open(self) -> bool:
        """SR-6: a clinician action without a PIN needs an open *clinician* session."""
        return self.session_open() and self.session_role == "clinician"

    def touch_session(self, editing: bool) -> None:
        """Keep the session open: 30 s idle, 4 min inside an edit (SR-6)."""
        if self.session_open():
            self.session_edit = editing
            self.session_until_ns = self._now + (
                SESSION_EDIT_IDLE_NS if editing else SESSION_IDLE_NS)

    def lock_session(self, reason: str) -> None:
        if self.session_until_ns is not None:
            self.session_until_ns = None
            self._emit("session_locked", "clinician", reason=reason)

    def authenticate(self, pin: str, role: Role = "clinician") -> bool:
        """Keypad unlock: the PIN of `role` opens a session for that role."""
        return self._authenticate(pin, role)

    def submit(self, command: ClinicianCommand | PanelCommand) -> None:
        """Handle a command now (the panel runs inside the control loop)."""
        self._handle(command)

    def _authenticate(self, pin: str, role: Role = "clinician") -> bool:
        if self._check_pin(pin, role) != "ok":
            return False
        self.session_role = role
        self.session_until_ns = self._now + SESSION_IDLE_NS
        return True

    def _check_pin(self, pin: str, role: Role) -> Outcome:
        """One logged attempt at `role`'s PIN, under the shared backoff; never logs the PIN."""
        self._audit_credentials()
        if not self.pins.provisioned(role):
            self._emit("auth", "clinician", outcome="failed", role=role,
                       reason=f"no {role} PIN is provisioned")
            return "failed"
        outcome: Outcome = self.pins.check(pin, self._now, (role,))[0]
        fields: dict[str, Any] = {"outcome": outcome, "role": role}
        if outcome == "failed":
            fields["consecutive_failures"] = self.pins.failures.consecutive
            problem = self.pins.problem(role)
            if problem is not None:
                fields["reason"] = problem
        if outcome == "locked_out":
            until = self.pins.locked_until_ns() or self._now
            fields["retry_in_s"] = round((until - self._now) / NS_PER_S, 1)
        self._emit("auth", "clinician", **fields)
        return outcome

    def panel_view(self) -> PanelView:
        snap = self.snapshot()
        reservoir_ml = float(Fraction(snap.reservoir_steps) / self.profile.steps_per_ml)
        present = {a.name for a in self.alarms.active.values() if a.condition}
        return PanelView(snap.state, snap.rate_ml_h, max(0.0, reservoir_ml),
                         highest_first(snap.alarms, present), snap.silenced, self.rx,
                         self.library)

    def pin_status(self) -> PinStatus:
        until = self.pins.locked_until_ns()
        wait_s = max(0, until - self._now) / NS_PER_S if until is not None else 0.0
        problem = self.pins.problem("clinician") or self.pins.problem("admin")
        return PinStatus(self.pins.provisioned(None), wait_s, problem)

    def change_pin(self, old_pin: str, new_pin: str) -> str | None:
        """The session's own PIN, after the current one is typed again (a walk-up to an
        open session cannot change it)."""
        if not self.session_open():
            return "the keypad is locked"
        role = self.session_role
        outcome = self._check_pin(old_pin, role)
        if outcome == "locked_out":
            return "too many wrong PINs: wait and try again"
        if outcome != "ok":
            return "the current PIN is wrong: nothing changed"
        return self._set_pin(role, new_pin, by=role)

    def reset_pin(self, role: Role, new_pin: str) -> str | None:
        """Admin only: set another role's PIN (a clinician who forgot theirs)."""
        if not (self.session_open() and self.session_role == "admin"):
            return "an admin session is needed to reset a PIN"
        return self._set_pin(role, new_pin, by="admin")

    def _set_pin(self, role: Role, pin: str, by: str) -> str | None:
        weak = pin_weakness(pin) if pin.isdigit() else None
        if weak is not None:
            return f"too easy to guess ({weak}): choose another"
        try:
            self.pins.set_pin(pin, role)
        except PinFormatError as err:
            return str(err)
        except LogWriteError as err:
            return f"the PIN store cannot be written: {err}"
        self._emit("pin_changed", "clinician", role=role, by=by,
                   hash_id=self.pins.hash_id(role))
        return None

    def _audit_credentials(self) -> None:
        """SR-7: a PIN set outside the pump (`pca pin set`, which must not write to the
        log of a running pump) is logged the first time the pump uses the store."""
        known = self._hash_ids()
        for role in ("clinician", "admin"):
            current = self.pins.hash_id(role)
            if role in known and known[role] is None:
                known[role] = current
            elif current is not None and known.get(role) != current:
                self._emit("pin_changed", "system", role=role,
                           by="outside the pump (pca pin set)", hash_id=current)

    def _hash_ids(self) -> dict[str, str | None]:
        if self._known_hash_ids is None:
            self._known_hash_ids = {}
        return self._known_hash_ids

    def _observe(self, type_: str, fields: Mapping[str, Any], pump_ns: int) -> None:
        if type_ == "pin_changed":
            self._hash_ids()[str(fields.get("role", "clinician"))] = fields.get("hash_id")
        self.panel.observe(type_, fields, pump_ns)

    def _replay_for_panel(self) -> Iterator[StoredEvent]:
        """The log at start-up, shown to the panel (history) and the PIN audit on its way
        to recovery; the last drug library an admin installed is in force again."""
        installed: tuple[str, str] | None = None
        for stored in self.log.replay():
            event = stored.event
            self._observe(event.type, event.fields, event.pump_ns)
            if event.type == "drug_library_changed" and "text" in event.fields:
                installed = (str(event.fields["text"]), str(event.fields.get("source", "")))
            yield stored
        if installed is not None:
            self.library = replace_library(self.library, *installed)[0]

    # Pharmacy files: a prescription waits for a clinician, a library for an admin.
    def _pending(self, item: PendingPrescription | PendingLibrary) -> None:
        fields: dict[str, Any] = {"source": item.source}
        if isinstance(item, PendingPrescription):
            review = self.review_prescription(item)
            fields["rx_id"] = item.rx_id
            if review.prescription is None:
                fields["errors"] = list(review.errors)
            elif review.soft:
                fields["soft_limits"] = list(review.soft)
            self._emit("prescription_received", "system", **fields)
        else:
            checked = self.review_library(item)
            if isinstance(checked, str):
                fields["error"] = checked
            else:
                fields.update(version=checked.version, checksum=checked.checksum)
            self._emit("drug_library_received", "system", **fields)
        self.panel.pending(item, self._now)

    def review_prescription(self, item: PendingPrescription) -> RxReview:
        """SR-8 against the library in force, with overrides allowed: what activation
        would give and which soft limits it would override. Changes nothing."""
        if item.problem is not None:
            return RxReview(None, None, (f"{item.source}: {item.problem}",), ())
        try:
            req = parse_request(item.request, item.source)
        except PrescriptionFormatError as err:
            return RxReview(None, None, (str(err),), ())
        verdict = validate(req, self.library, bolus_rate_ml_h=self.profile.bolus_rate_ml_h,
                           confirm_soft=True)
        return RxReview(req, verdict.prescription, verdict.errors, verdict.soft)

    def dismiss_prescription(self, item: PendingPrescription, reason: str) -> None:
        self._emit("prescription_dismissed", "clinician", source=item.source,
                   rx_id=item.rx_id, reason=reason)

    def review_library(self, item: PendingLibrary) -> DrugLibrary | str:
        try:
            return load_pharmacy_library(item.text, item.source)
        except LibraryError as err:
            return str(err)

    def install_library(self, item: PendingLibrary, pin: str) -> str | None:
        """Admin only, PIN typed again: a library that fails its checksum or checks is
        refused and the one in force stays."""
        if not (self.session_open() and self.session_role == "admin"):
            return "an admin session is needed to install a drug library"
        if self._check_pin(pin, "admin") != "ok":
            return "wrong admin PIN: nothing changed"
        previous = self.library
        self.library, error = replace_library(previous, item.text, item.source)
        if error is not None:
            self._emit("drug_library_rejected", "clinician", source=item.source, error=error)
            return error
        self._emit("drug_library_changed", "clinician", by="admin", source=item.source,
                   version=self.library.version, checksum=self.library.checksum,
                   previous_version=previous.version, previous_checksum=previous.checksum,
                   text=item.text)
        return None

    # ---- clinician actions (SR-6) -------------------------------------------------------
    def _clinician(self, cmd: ClinicianCommand) -> None:
        if cmd.pin is not None:
            if not self._authenticate(cmd.pin):
                self._emit("action_rejected", "clinician", action=cmd.name,
                           reason="not authorised")
                return
        elif not self._session_open():
            self._emit("action_rejected", "clinician", action=cmd.name,
                       reason="the keypad is locked: enter the PIN first")
            return
        self.session_until_ns = self._now + SESSION_IDLE_NS
        error = getattr(self, f"_do_{cmd.name}")(cmd.args)
        if error:
            self._emit("action_rejected", "clinician", action=cmd.name, reason=error)

    def _do_program(self, args: Mapping[str, Any]) -> str | None:
        if self.state not in ("unprogrammed", "stopped"):
            return "stop the pump before programming"
        raw = args.get("prescription")
        try:
            req = raw if isinstance(raw, RxRequest) else parse_request(raw or {})
        except PrescriptionFormatError as err:
            self._emit("prescription_rejected", "clinician", errors=[str(err)])
            return None
        verdict = validate(req, self.library, bolus_rate_ml_h=self.profile.bolus_rate_ml_h,
                           confirm_soft=bool(args.get("confirm_soft", False)))
        if verdict.prescription is None:
            self._emit("prescription_rejected", "clinician", **req.entered(),
                       errors=list(verdict.errors))
            return None
        self._activate(verdict.prescription)
        self._emit("prescription_activated", "clinician", **verdict.prescription.describe())
        self.trigger("program")
        return None

    def _do_clinician_bolus(self, args: Mapping[str, Any]) -> str | None:
        if self.rx is None or self.state not in ("running", "kvo"):
            return "a clinician bolus needs the pump running"
        try:
            amount = exact(args.get("amount"), where="amount")
        except ValueError as err:
            return str(err)
        unit = self.rx.request.dose_unit
        cap = self.rx.request.clinician_bolus_max
        if amount <= 0 or amount > cap:
            return f"amount {float(amount):g} {unit} is outside 0 < amount <= " \
                   f"clinician_bolus_max {float(cap):g} {unit}"
        ml = self.rx.to_ml(amount)
        self._record_progress(self._now)
        self._dose = ("clinician", ml_to_steps(ml, self.profile.steps_per_ml), ml)
        self.trigger("begin_clinician")
        return None

    def _do_loading_dose(self, args: Mapping[str, Any]) -> str | None:
        if self.rx is None or self.state not in ("running", "kvo"):
            return "a loading dose needs the pump running"
        if self.rx.loading_dose_ml <= 0:
            return "the prescription has no loading dose"
        self._record_progress(self._now)
        ml = self.rx.loading_dose_ml
        self._dose = ("loading", ml_to_steps(ml, self.profile.steps_per_ml), ml)
        self.trigger("begin_loading")
        return None

    def _do_clear_alarm(self, args: Mapping[str, Any]) -> str | None:
        self._reservoir_conditions(self._unrecorded())
        for name in self.alarms.clear_resolved():
            self._emit("alarm_cleared", "clinician", alarm=name, priority=PRIORITY[name])
        if self.state == "alarm" and not self.alarms.has_high():
            self.trigger("clear")
        remaining = [a.name for a in self.alarms.active.values() if a.condition]
        if remaining:
            return "still present: " + ", ".join(sorted(remaining))
        return None

    def _do_new_syringe(self, args: Mapping[str, Any]) -> str | None:
        if self.state in DELIVERING:
            return "stop the pump before changing the syringe"
        try:
            volume = exact(args.get("syringe_ml"), where="syringe_ml")
        except ValueError as err:
            return str(err)
        if not 0 < volume <= MAX_SYRINGE_ML:
            return f"syringe_ml = {float(volume):g} must be > 0 and <= {MAX_SYRINGE_ML} mL"
        self._load_syringe(volume, "clinician")
        if "reservoir_empty" in self.alarms.active and not self.alarms.active[
                "reservoir_empty"].condition:
            del self.alarms.active["reservoir_empty"]
            self._emit("alarm_cleared", "clinician", alarm="reservoir_empty", priority="high")
        if self.state == "alarm" and not self.alarms.has_high():
            self.trigger("clear")
        return None

    def _do_new_patient(self, args: Mapping[str, Any]) -> str | None:
        if self.state not in ("unprogrammed", "stopped"):
            return "stop the pump (and clear its alarms) before a new patient"
        self._emit("new_patient", "clinician")
        self.rx = None
        self.ledger = DoseLedger()
        if self.state == "stopped":
            self.trigger("new_patient")
        return None

    # ---- state machine callbacks ---------------------------------------------------------
    def has_high_alarm(self, event: EventData | None) -> bool:
        return self.alarms.has_high()

    def limit_reached(self, event: EventData | None) -> bool:
        allowance = self.ledger.allowance_steps(self._now)
        return allowance is not None and allowance == 0

    def _on_enter(self, event: EventData) -> None:
        now = self._now
        state = self.state
        assert event.transition is not None
        self._emit("state_changed", "system", **_from_to(event.transition.source, state))
        if state == "unprogrammed":
            return
        assert self.rx is not None or state in ("stopped", "alarm")
        if state == "running":
            self._condition("dose_limit_reached", False)
            self._begin_segment("basal", self.rx.basal_ml_h if self.rx else Fraction(0), None)
            self._rate_changed("basal", float(self.rx.basal_ml_h if self.rx else 0))
        elif state == "kvo":
            rate = self.profile.kvo_rate_ml_h if self.rx and self.rx.basal_ml_h > 0 \
                else Fraction(0)
            self._condition("dose_limit_reached", True)
            self._begin_segment("kvo", rate, None)
            self._rate_changed("kvo", float(rate))
        elif state in DOSE_STATES:
            assert self._dose is not None
            source, steps, ml = self._dose
            # Dated when it is recorded, after the decision that granted it (SR-1, SR-3).
            start = self._decision_ns = max(now, self._decision_ns, self.pump_ns())
            self.ledger.record_dose_start(source, start)
            self._emit("dose_started", "clinician" if source != "pca" else "patient",
                       source=source, amount_ml=float(ml), at_pump_ns=start)
            self._completion = "complete"
            self._begin_segment(source, self.profile.bolus_rate_ml_h, steps)
        else:
            self._rate_changed("stopped", 0.0)

    def _on_exit(self, event: EventData) -> None:
        state = self.state
        if state == "unprogrammed":
            return
        halt = event.transition is None or event.transition.dest in ("stopped", "alarm")
        made = self._end_segment(halt=halt)
        if state in DOSE_STATES:
            source = DOSE_OF_STATE[state]
            completion = self._completion
            if event.transition is not None and event.transition.dest == "alarm":
                completion = "interrupted"
            self._emit("dose_ended", "system", source=source, delivered_ml=self._ml(made),
                       completion=completion)
            self._dose = None

    # ---- the motor ---------------------------------------------------------------------
    def _begin_segment(self, source: Source, rate_ml_h: Fraction, target: int | None) -> None:
        if rate_ml_h <= 0:
            self.seg = None
            return
        rate = StepRate.from_fraction(rate_ml_h * self.profile.steps_per_ml / 3600)
        per_s = rate.per_s
        chunk = ml_to_steps(GRANT_ML, self.profile.steps_per_ml)
        chunk = max(chunk, math.ceil(per_s * GRANT_MIN_NS / NS_PER_S))
        chunk = min(chunk, max(1, math.floor(per_s * GRANT_MAX_NS / NS_PER_S)))
        count = self.motor.count(self._now)
        self.seg = Segment(source, rate, count, target, max(1, chunk), float(rate_ml_h),
                           limit=count)
        self._grant(self._now, count)

    def _end_segment(self, *, halt: bool) -> int:
        """Close the current segment; returns the steps it made."""
        seg = self.seg
        if seg is None:
            if halt:
                self.motor.halt(self._now)
            return 0
        count = self.motor.halt(self._now) if halt else self.motor.count(self._now)
        made = min(count, seg.limit) - seg.start_count
        self._journal(seg, made, granted=0)
        self.seg = None
        return made

    def _record(self, seg: Segment, made: int) -> int:
        """Put the steps made since the last record into the ledger; returns how many."""
        new = made - seg.recorded
        seg.recorded = made
        # The motor count was read before this clock read, so no step is dated earlier
        # than it was made: windows can only over-count (SR-2). The log gets the same time.
        self._record_ns = max(self._record_ns, self.pump_ns())
        self.ledger.record_delivery(seg.source, new, self._record_ns)
        self._syringe_used += new
        return new

    def _journal(self, seg: Segment, made: int, granted: int) -> None:
        """Record steps made since the last record and log them with what is granted."""
        new = self._record(seg, made)
        self._emit("delivery", "system", source=seg.source, steps=new, ml=self._ml(new),
                   granted_steps=granted, at_pump_ns=self._record_ns)

    def _record_progress(self, now: int) -> None:
        seg = self.seg
        if seg is None:
            return
        count = self.motor.count(now)
        made = count - seg.start_count
        if made > seg.recorded:
            self._journal(seg, made, granted=seg.limit - count)

    def _room(self, seg: Segment, count: int) -> int:
        """Steps that may be granted beyond `count` under every limit."""
        made = count - seg.start_count
        room = [seg.chunk, self._reservoir_left(made - seg.recorded)]
        if seg.target is not None:
            room.append(seg.target - made)
        if seg.source in COUNTED:
            allowance = self.ledger.allowance_steps(self._now)
            if allowance is not None:
                room.append(allowance - (made - seg.recorded))
        return max(0, min(room))

    def _grant(self, now: int, count: int) -> None:
        """Extend the motor's grant when it runs low, within every limit (write-ahead)."""
        seg = self.seg
        assert seg is not None
        outstanding = seg.limit - count
        if outstanding > seg.chunk // 2:
            return
        room = self._room(seg, count)  # accounts for steps made but not yet recorded
        if room <= outstanding:
            return
        new = self._record(seg, count - seg.start_count)
        self._emit("delivery", "system", source=seg.source, steps=new, ml=self._ml(new),
                   granted_steps=room, at_pump_ns=self._record_ns)
        if not self._flush():
            return  # never move what is not durably logged
        seg.limit = count + room
        self.motor.run(seg.rate, seg.limit, now)

    def _service_motor(self, now: int) -> None:
        seg = self.seg
        if seg is None:
            return
        fault = self.motor.fault()
        if fault is not None:
            self._emit("motor_fault_detail", "system", detail=fault)
            self._condition("motor_fault", True)
            return
        count = self.motor.count(now)
        made = count - seg.start_count
        if seg.target is not None and made >= seg.target:
            self._completion = "complete"
            self.trigger("dose_done")
            return
        self._grant(now, count)
        if self.seg is None or self.motor.count(now) < self.seg.limit:
            return
        # The motor has used its whole grant and no more may be given: find out why.
        if self._reservoir_left(made - seg.recorded) <= 0:
            self._reservoir_conditions(made - seg.recorded)
        elif seg.source in COUNTED and self.ledger.allowance_steps(now) is not None:
            self._record_progress(now)
            if self.state in DOSE_STATES:
                self._completion = "truncated"
                self.trigger("dose_done")
            elif self.state == "running":
                self.trigger("limit_hit")

    # ---- conditions --------------------------------------------------------------------
    def _check_conditions(self, now: int) -> None:
        self._reservoir_conditions(self._unrecorded())
        if self.state == "kvo":
            allowance = self.ledger.allowance_steps(now)
            if allowance is None or allowance >= self._resume_steps():
                self.trigger("room_again")
        if self.alarms.has_high() and self.state in ["stopped", *DELIVERING]:
            self._completion = "interrupted"
            self.trigger("fault")
        if self.session_until_ns is not None and now >= self.session_until_ns:
            self.session_until_ns = None
            self._emit("session_locked", "system", reason="idle")

    def _resume_steps(self) -> int:
        limits = self.ledger.limits
        if self.rx is None or limits is None:
            return 0
        if self.rx.basal_ml_h > 0:
            return ml_to_steps(self.rx.basal_ml_h * RESUME_BASAL_NS / (3600 * NS_PER_S),
                               self.profile.steps_per_ml)
        return limits.pca_dose_steps

    def _unrecorded(self, now: int | None = None) -> int:
        seg = self.seg
        if seg is None:
            return 0
        count = min(self.motor.count(self._now if now is None else now), seg.limit)
        return count - seg.start_count - seg.recorded

    def _reservoir_left(self, unrecorded: int) -> int:
        """Steps left in the syringe, counting steps made but not yet recorded."""
        return self._syringe_steps - self._syringe_used - unrecorded

    def _reservoir_conditions(self, unrecorded: int) -> None:
        left = self._reservoir_left(unrecorded)
        low = ml_to_steps(self.profile.low_reservoir_ml, self.profile.steps_per_ml)
        self._condition("reservoir_low", left <= low)
        self._condition("reservoir_empty", left <= 0 or self.sensors.get("end_of_travel", False))

    def _condition(self, name: str, present: bool) -> None:
        change = self.alarms.set_condition(name, present)
        if change == "raised":
            self._emit("alarm_raised", "system", alarm=name, priority=PRIORITY[name])
        elif change == "cleared":
            self._emit("alarm_cleared", "system", alarm=name, priority=PRIORITY[name])
        if present and PRIORITY[name] == "high" and self.state in ["stopped", *DELIVERING]:
            # SR-4: stop within this tick, aborting the step train mid-move.
            self._completion = "interrupted"
            self.trigger("fault")

    def _raise_event(self, name: str) -> None:
        """An alarm for something that happened (not a standing condition): it is raised
        and stays until cleared."""
        self._condition(name, True)
        self.alarms.active[name].condition = False

    # ---- helpers -------------------------------------------------------------------------
    def _activate(self, rx: Prescription) -> None:
        self.rx = rx
        self.ledger.limits = LedgerLimits.from_prescription(rx, self.profile.steps_per_ml)

    def _rx_from_log(self, fields: Mapping[str, Any]) -> Prescription:
        req = parse_request({k: v for k, v in fields.items()
                             if k in RxRequest.__dataclass_fields__})
        overrides = tuple(str(o) for o in fields.get("overrides", ()))
        return derive(req, str(fields["drug_unit"]), overrides)

    def _load_syringe(self, volume_ml: Fraction, actor: Actor) -> None:
        self._syringe_steps = ml_to_steps(volume_ml, self.profile.steps_per_ml)
        self._syringe_used = 0
        self._emit("syringe_changed", actor, syringe_ml=float(volume_ml))
        self._reservoir_conditions(0)

    def _rate_changed(self, mode: str, rate_ml_h: float) -> None:
        if self._last_rate != (mode, rate_ml_h):
            self._last_rate = (mode, rate_ml_h)
            self._emit("rate_changed", "system", mode=mode, rate_ml_h=rate_ml_h)

    def _ml(self, steps: int) -> float:
        return round(float(Fraction(steps) / self.profile.steps_per_ml), 6)

    def _emit(self, type_: str, actor: Actor, *, at_pump_ns: int | None = None,
              **fields: Any) -> None:
        """Log an event; `at_pump_ns` dates it (a delivery record: the ledger's time)."""
        mono = self.clock.monotonic_ns() if at_pump_ns is None else at_pump_ns - self.offset_ns
        self.log.append(Event(type_, actor, mono / NS_PER_S, mono + self.offset_ns,
                              self.clock.wall_ns(), fields))
        self._observe(type_, fields, mono + self.offset_ns)

    def _flush(self) -> bool:
        try:
            self.log.flush()
        except LogWriteError as err:
            self._log_failed(str(err))
            return False
        if not self.log_ok:
            self.log_ok = True
            self.alarms.set_condition("log_failure", False)  # latched: a clinician clears it
        return True

    def _log_failed(self, why: str) -> None:
        """SR-7: the pump never delivers what it cannot log."""
        self.log_ok = False
        if self.seg is not None or self.state in DELIVERING:
            self.motor.halt(self._now)
        if "log_failure" not in self.alarms.active:
            self.alarms.set_condition("log_failure", True)
            self._emit("alarm_raised", "system", alarm="log_failure", priority="high",
                       detail=f"{why}. Delivery is stopped. Events are kept in memory and "
                              "written when the log works again; free space or replace the "
                              "storage, then clear the alarm (PIN)")
        if self.state in ["stopped", *DELIVERING]:
            self._completion = "interrupted"
            self.trigger("fault")

    # ---- what the outside sees ---------------------------------------------------------
    def snapshot(self) -> Snapshot:
        now = self.pump_ns()
        delivered = dict(self.ledger.totals)
        rate = 0.0
        if self.seg is not None:
            made = min(self.motor.count(now), self.seg.limit) - self.seg.start_count
            delivered[self.seg.source] += made - self.seg.recorded
            rate = self.seg.rate_ml_h
        left = self._reservoir_left(self._unrecorded(now))
        lockout_end = self.ledger.lockout_ends_ns()
        lockout_left = max(0, (lockout_end or now) - now) / NS_PER_S
        return Snapshot(self.state, rate, delivered, left, self.alarms.names(),
                        self.alarms.silenced(now), lockout_left)

    def failures(self) -> FailureState:
        return self.pins.failures

    def log_unusable(self, why: str) -> None:
        """The log failed its start-up check (SR-7): alarm and refuse to deliver."""
        self._log_failed(why)
        self._flush()

    def fail_self_test(self, problems: list[str]) -> None:
        """Power-on self test failed: refuse to deliver, alarm, say what to do."""
        self._emit("self_test_failed", "system", problems=problems)
        self._condition("self_test_failed", True)
        self._flush()

    def shutdown(self) -> None:
        """Orderly stop (SIGTERM): halt the motor, log it, make the log durable."""
        self._now = self.pump_ns()
        if self.state in DELIVERING:
            self._completion = "stopped"
            self.trigger("stop")
        self.motor.halt(self._now)
        self._emit("shutdown", "system", state=self.state)
        self._flush()

    def provision_pin(self, pin: str, actor: Actor = "system") -> None:
        """Set the clinician PIN (stored only as a salted scrypt hash)."""
        self.pins.set_pin(pin)
        self._emit("pin_changed", actor, role="clinician")
        self._flush()

