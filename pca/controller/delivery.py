"""The delivery engine: segments of motion, write-ahead grants, the motor and the syringe.

Volume truth is motor steps. Before the motor may make a step, that step has been
granted in a `delivery` event that is already durable (write-ahead), and no grant
exceeds what every limit still allows (SR-2, SR-10): a crash can only make the pump
over-count what it gave, never under-count it. Every step made is recorded in the
ledger and the log at the same pump time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from pca.controller.journal import Journal
from pca.controller.ports import NS_PER_S, Actor, StepRate
from pca.controller.profile import PumpProfile
from pca.controller.pumptime import MotorInPumpTime, PumpTime
from pca.controller.recovery import Recovered
from pca.therapy.ledger import (
    COUNTED,
    SOURCES,
    DoseLedger,
    DoseSource,
    LedgerLimits,
    Source,
    ml_to_steps,
)
from pca.therapy.prescription import Prescription

# Write-ahead grants: about 0.05 mL each, but at least 1 s and at most 5 min of motion.
GRANT_ML = Fraction(1, 20)
GRANT_MIN_NS = NS_PER_S
GRANT_MAX_NS = 300 * NS_PER_S
# Leave KVO when the window has room for this long at the basal rate (hysteresis).
RESUME_BASAL_NS = 900 * NS_PER_S

# What servicing the motor found: a motor fault, a dose that reached its target, a
# syringe with nothing left to grant, or a limit that allows no more.
Finding = Literal["motor_fault", "dose_done", "reservoir", "limit"]


DOSE_ACTOR: dict[DoseSource, Actor] = {
    "pca": "patient", "clinician": "clinician", "loading": "clinician", "intermittent": "system"}


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


@dataclass(frozen=True)
class Dose:
    """A dose decided and about to start: its source, steps and mL."""

    source: DoseSource
    steps: int
    ml: Fraction
    delay_s: float | None = None  # a PIB that waited for another dose to end (SR-12)


class DeliveryEngine:
    """Moves the motor within what the ledger allows and records every step made."""

    def __init__(self, motor: MotorInPumpTime, time: PumpTime, journal: Journal,
                 profile: PumpProfile) -> None:
        self.motor = motor
        self.time = time
        self.journal = journal
        self.profile = profile
        self.ledger = DoseLedger()
        self.seg: Segment | None = None
        self.dose: Dose | None = None  # decided, not yet started
        self.completion = "complete"  # how the running dose ends
        self.record_ns = 0  # pump time of the last delivery record (never decreases)
        self.decision_ns = 0  # pump time of the last dose decision or start
        self.syringe_steps = 0
        self.syringe_used = 0  # recorded steps since the syringe was loaded
        self._last_rate: tuple[str, float] | None = None

    # ---- prescription, syringe, patient ---------------------------------------------
    def activate(self, rx: Prescription) -> None:
        self.ledger.limits = LedgerLimits.from_prescription(rx, self.profile.steps_per_ml)

    def new_patient(self) -> None:
        self.ledger = DoseLedger()

    def load_syringe(self, volume_ml: Fraction, actor: Actor) -> None:
        self.syringe_steps = self.steps(volume_ml)
        self.syringe_used = 0
        self.journal.emit("syringe_changed", actor, syringe_ml=float(volume_ml))

    def dose_of(self, source: DoseSource, ml: Fraction) -> None:
        self.dose = Dose(source, self.steps(ml), ml)

    # ---- segments ------------------------------------------------------------------
    def begin_segment(self, source: Source, rate_ml_h: Fraction, target: int | None) -> None:
        if rate_ml_h <= 0:
            self.seg = None
            return
        now = self.time.now_ns
        rate = StepRate.from_fraction(rate_ml_h * self.profile.steps_per_ml / 3600)
        per_s = rate.per_s
        chunk = self.steps(GRANT_ML)
        chunk = max(chunk, math.ceil(per_s * GRANT_MIN_NS / NS_PER_S))
        chunk = min(chunk, max(1, math.floor(per_s * GRANT_MAX_NS / NS_PER_S)))
        count = self.motor.count(now)
        self.seg = Segment(source, rate, count, target, max(1, chunk), float(rate_ml_h),
                           limit=count)
        self._grant(now, count)

    def end_segment(self, *, halt: bool) -> int:
        """Close the current segment; returns the steps it made."""
        now = self.time.now_ns
        seg = self.seg
        if seg is None:
            if halt:
                self.motor.halt(now)
            return 0
        count = self.motor.halt(now) if halt else self.motor.count(now)
        made = min(count, seg.limit) - seg.start_count
        self._journal(seg, made, granted=0)
        self.seg = None
        return made

    def enter(self, state: str, rx: Prescription | None) -> None:
        """Motion for the (not dose) state the pump has just entered."""
        if state == "running":
            basal = rx.basal_ml_h if rx else Fraction(0)
            self.begin_segment("basal", basal, None)
            self.rate_changed("basal", float(basal))
        elif state == "kvo":
            rate = self.profile.kvo_rate_ml_h if rx and rx.basal_ml_h > 0 else Fraction(0)
            self.begin_segment("kvo", rate, None)
            self.rate_changed("kvo", float(rate))
        else:
            self.rate_changed("stopped", 0.0)

    def start_dose(self) -> None:
        """The decided dose starts now: dated when it is recorded, after the decision that
        granted it (SR-1, SR-3)."""
        assert self.dose is not None
        dose = self.dose
        start = self.decision_ns = max(self.time.now_ns, self.decision_ns, self.time.pump_ns())
        self.ledger.record_dose_start(dose.source, start)
        extra = {} if dose.delay_s is None else {"delay_s": dose.delay_s}
        self.journal.emit("dose_started", DOSE_ACTOR[dose.source], source=dose.source,
                          amount_ml=float(dose.ml), at_pump_ns=start, **extra)
        self.completion = "complete"
        self.begin_segment(dose.source, self.profile.bolus_rate_ml_h, dose.steps)

    def rate_changed(self, mode: str, rate_ml_h: float) -> None:
        if self._last_rate != (mode, rate_ml_h):
            self._last_rate = (mode, rate_ml_h)
            self.journal.emit("rate_changed", "system", mode=mode, rate_ml_h=rate_ml_h)

    # ---- recording -------------------------------------------------------------------
    def _record(self, seg: Segment, made: int) -> int:
        """Put the steps made since the last record into the ledger; returns how many."""
        new = made - seg.recorded
        seg.recorded = made
        # The motor count was read before this clock read, so no step is dated earlier
        # than it was made: windows can only over-count (SR-2). The log gets the same time.
        self.record_ns = max(self.record_ns, self.time.pump_ns())
        self.ledger.record_delivery(seg.source, new, self.record_ns)
        self.syringe_used += new
        return new

    def _journal(self, seg: Segment, made: int, granted: int) -> None:
        """Record steps made since the last record and log them with what is granted."""
        new = self._record(seg, made)
        self.journal.emit("delivery", "system", source=seg.source, steps=new, ml=self.ml(new),
                          granted_steps=granted, at_pump_ns=self.record_ns)

    def record_progress(self, now: int) -> None:
        seg = self.seg
        if seg is None:
            return
        count = self.motor.count(now)
        made = count - seg.start_count
        if made > seg.recorded:
            self._journal(seg, made, granted=seg.limit - count)

    def next_pca_wait_ns(self, rx: Prescription | None, now_ns: int) -> int | None:
        """How long until a PCA press would be granted, where the lockout and the count
        per hour decide it and the dose limit has room for the dose and the basal that runs
        meanwhile (the patient's "next dose in"); None when that is not known."""
        if rx is None:
            return None
        basal_steps_per_h = math.ceil(rx.basal_ml_h * self.profile.steps_per_ml)
        at = self.ledger.pca_available_at_ns(now_ns, basal_steps_per_h=basal_steps_per_h)
        return None if at is None else max(0, at - now_ns)

    def decide_pca_at(self) -> int:
        """Record what is made, then the moment of a PCA decision (SR-1): not the tick's
        start, so the log shows exactly the interval the lockout was checked on."""
        self.record_progress(self.time.now_ns)
        self.decision_ns = max(self.time.now_ns, self.record_ns, self.time.pump_ns())
        return self.decision_ns

    # ---- grants ----------------------------------------------------------------------
    def _room(self, seg: Segment, count: int) -> int:
        """Steps that may be granted beyond `count` under every limit."""
        made = count - seg.start_count
        room = [seg.chunk, self.reservoir_left(made - seg.recorded)]
        if seg.target is not None:
            room.append(seg.target - made)
        if seg.source in COUNTED:
            allowance = self.ledger.allowance_steps(self.time.now_ns)
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
        self.journal.emit("delivery", "system", source=seg.source, steps=new, ml=self.ml(new),
                          granted_steps=room, at_pump_ns=self.record_ns)
        if not self.journal.flush():
            return  # never move what is not durably logged
        seg.limit = count + room
        self.motor.run(seg.rate, seg.limit, now)

    def service(self, now: int) -> tuple[Finding, int] | None:
        """Grant more when due; say what needs the pump's attention, if anything, with
        the steps made but not yet recorded."""
        seg = self.seg
        if seg is None:
            return None
        fault = self.motor.fault()
        if fault is not None:
            self.journal.emit("motor_fault_detail", "system", detail=fault)
            return "motor_fault", 0
        count = self.motor.count(now)
        made = count - seg.start_count
        if seg.target is not None and made >= seg.target:
            self.completion = "complete"
            return "dose_done", 0
        self._grant(now, count)
        if self.seg is None or self.motor.count(now) < self.seg.limit:
            return None
        # The motor has used its whole grant and no more may be given: find out why.
        if self.reservoir_left(made - seg.recorded) <= 0:
            return "reservoir", made - seg.recorded
        if seg.source in COUNTED and self.ledger.allowance_steps(now) is not None:
            self.record_progress(now)
            return "limit", 0
        return None

    # ---- what is left, what was given ------------------------------------------------
    def unrecorded(self, now: int | None = None) -> int:
        seg = self.seg
        if seg is None:
            return 0
        count = min(self.motor.count(self.time.now_ns if now is None else now), seg.limit)
        return count - seg.start_count - seg.recorded

    def reservoir_left(self, unrecorded: int) -> int:
        """Steps left in the syringe, counting steps made but not yet recorded."""
        return self.syringe_steps - self.syringe_used - unrecorded

    def resume_steps(self, rx: Prescription | None) -> int:
        """Room the window must have before KVO gives way to the prescription again."""
        limits = self.ledger.limits
        if rx is None or limits is None:
            return 0
        if rx.basal_ml_h > 0:
            return self.steps(rx.basal_ml_h * RESUME_BASAL_NS / (3600 * NS_PER_S))
        return limits.pca_dose_steps

    def limit_reached(self) -> bool:
        allowance = self.ledger.allowance_steps(self.time.now_ns)
        return allowance is not None and allowance == 0

    def delivered(self, now: int) -> tuple[dict[Source, int], float]:
        """Steps given per source, counting those not yet recorded, and the rate now."""
        delivered = dict(self.ledger.totals)
        seg = self.seg
        if seg is None:
            return delivered, 0.0
        made = min(self.motor.count(now), seg.limit) - seg.start_count
        delivered[seg.source] += made - seg.recorded
        return delivered, seg.rate_ml_h

    def wakeups(self, now: int) -> list[int]:
        """Pump times at which the motor needs a grant or a dose ends."""
        times: list[int] = []
        seg = self.seg
        if seg is None:
            return times
        count = self.motor.count(now)
        due = seg.limit - seg.chunk // 2
        when = self.motor.time_of_count(due if due > count else seg.limit)
        if when is not None:
            times.append(when)
        if seg.target is not None:
            end = self.motor.time_of_count(seg.start_count + seg.target)
            if end is not None:
                times.append(end)
        return times

    def steps(self, ml: Fraction) -> int:
        return ml_to_steps(ml, self.profile.steps_per_ml)

    def ml(self, steps: int) -> float:
        return round(float(Fraction(steps) / self.profile.steps_per_ml), 6)

    # ---- after a restart (SR-5) ------------------------------------------------------
    def restore(self, rec: Recovered, now: int) -> float:
        """What the log says was given; returns the mL of a dose the restart interrupted."""
        syringe_ml = Fraction(str(rec.syringe_ml)) if rec.syringe_ml is not None else Fraction(0)
        self.syringe_steps = self.steps(syringe_ml)
        self.syringe_used = rec.delivered_since_syringe
        for source, steps, t_ns in rec.deliveries:
            self.ledger.record_delivery(source, steps, t_ns)
        for t_ns, dose_source in rec.dose_starts:
            self.ledger.record_dose_start(dose_source, t_ns)
        if rec.open_grant is not None:
            # Granted before the crash and never confirmed: count it all as given.
            source, steps = rec.open_grant
            self.record_ns = max(now, self.time.pump_ns())
            self.ledger.record_delivery(source, steps, self.record_ns)
            self.syringe_used += steps
            self.journal.emit("delivery", "system", source=source, steps=steps,
                              ml=self.ml(steps), granted_steps=0, assumed=True,
                              at_pump_ns=self.record_ns)
        interrupted_ml = 0.0
        if rec.open_dose is not None:
            source_d, _planned = rec.open_dose
            given = rec.open_dose_steps
            if rec.open_grant is not None and rec.open_grant[0] == source_d:
                given += rec.open_grant[1]
            interrupted_ml = self.ml(given)
            # An upper bound: what was logged as made plus the grant still open at the crash.
            self.journal.emit("dose_ended", "system", source=source_d,
                              delivered_ml=interrupted_ml, completion="interrupted",
                              upper_bound=rec.open_grant is not None)
        self.ledger.totals = dict.fromkeys(SOURCES, 0)  # this session's motor truth
        return interrupted_ml
