"""SR-12: when a programmed intermittent bolus (PIB) falls due, and whether it is given,
delayed behind a running dose, or skipped.

Pure code: the controller tells the schedule what happened (delivery started, a PIB or a PCA
dose started, a PIB skipped) and asks it what to do at a moment of pump time. The same calls
made while replaying the log after a restart rebuild the same schedule, so the pump never needs
to store the schedule itself.

The invariants, whatever happens in between (stop/start, crash/restart, reprogramming of the
same patient, a new syringe):
- two PIB starts are never closer than the plan's interval;
- after each start of delivery, the first PIB is never sooner than `first_ns` after it;
- a PIB that falls due while the pump is stopped, off or in alarm is not given and not made up;
  one due while another dose runs waits for it to end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

SkipReason = Literal["dose_limit", "not_running", "alarm"]


@dataclass(frozen=True)
class PibPlan:
    """A prescription's intermittent bolus in the ledger's units (steps, ns of pump time)."""

    dose_steps: int
    interval_ns: int
    first_ns: int
    reset_on_pca: bool

    def __post_init__(self) -> None:
        if self.dose_steps <= 0 or self.interval_ns <= 0 or self.first_ns < 0:
            raise ValueError(f"not a PIB plan: {self}")


@dataclass(frozen=True)
class Give:
    """Start the PIB now; `delay_ns` after it fell due (it waited for another dose)."""

    delay_ns: int


@dataclass(frozen=True)
class Skip:
    """The PIB that fell due at `due_ns` is not given, for `reason`."""

    due_ns: int
    reason: SkipReason


Decision = Give | Skip | Literal["wait"] | None


class PibSchedule:
    """The next PIB's due time and the last PIB's start, from what the controller reports."""

    def __init__(self, plan: PibPlan | None = None) -> None:
        self.plan = plan
        self.last_start_ns: int | None = None  # the last PIB that was given (started)
        self.due_ns: int | None = None  # None: no PIB is scheduled (no plan, or never started)
        self.given = 0
        self.skipped = 0

    # --- what happened -----------------------------------------------------------------
    def reprogram(self, plan: PibPlan | None) -> None:
        """A new prescription for the same patient: the last PIB start still counts."""
        self.plan = plan
        if plan is None:
            self.due_ns = None
        elif self.due_ns is not None:
            self.due_ns = self._not_before(self.due_ns)

    def new_patient(self) -> None:
        """History is reset for a new patient; the plan (if any) stays until reprogrammed."""
        self.last_start_ns = None
        self.due_ns = None
        self.given = 0
        self.skipped = 0

    def delivery_started(self, now_ns: int) -> None:
        """The clinician started delivery: the first PIB after it is `first_ns` later at the
        soonest, and never closer than the interval to the last one given."""
        if self.plan is None:
            return
        self.due_ns = self._not_before(now_ns + self.plan.first_ns)

    def pca_started(self, now_ns: int) -> None:
        """A PCA dose started; with `reset_on_pca`, the next PIB moves to now + interval."""
        if self.plan is None or not self.plan.reset_on_pca or self.due_ns is None:
            return
        self.due_ns = max(self.due_ns, now_ns + self.plan.interval_ns)

    def pib_started(self, now_ns: int) -> None:
        self.last_start_ns = now_ns
        self.given += 1
        if self.plan is not None:
            self.due_ns = now_ns + self.plan.interval_ns

    def pib_skipped(self, due_ns: int) -> None:
        """The PIB due at `due_ns` was skipped; the next keeps the cadence."""
        self.skipped += 1
        if self.plan is not None:
            self.due_ns = self._not_before(due_ns + self.plan.interval_ns)

    def powered_up(self, now_ns: int) -> None:
        """After an outage: due times that passed while the pump was off are gone, unlogged
        and not made up; the cadence continues from the last one."""
        if self.plan is None or self.due_ns is None or self.due_ns > now_ns:
            return
        missed = math.floor((now_ns - self.due_ns) / self.plan.interval_ns) + 1
        self.due_ns = self._not_before(self.due_ns + missed * self.plan.interval_ns)

    # --- questions ---------------------------------------------------------------------
    def decide(self, now_ns: int, *, running: bool, in_alarm: bool, dose_running: bool,
               allowance_steps: int | None) -> Decision:
        """What to do about the PIB at `now_ns`: None (nothing due), "wait" (a dose runs),
        Give, or Skip. `allowance_steps` is the room left under the dose limit (None: none)."""
        if self.plan is None or self.due_ns is None or now_ns < self.due_ns:
            return None
        if in_alarm:
            return Skip(self.due_ns, "alarm")
        if not running:
            return Skip(self.due_ns, "not_running")
        if dose_running:
            return "wait"
        if allowance_steps is not None and allowance_steps <= 0:
            return Skip(self.due_ns, "dose_limit")
        return Give(now_ns - self.due_ns)

    def _not_before(self, t_ns: int) -> int:
        if self.plan is None or self.last_start_ns is None:
            return t_ns
        return max(t_ns, self.last_start_ns + self.plan.interval_ns)
