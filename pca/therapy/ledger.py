"""The dose ledger: SR-1 lockout, SR-2 rolling dose limit, SR-3 doses per hour.

Pure code over the delivery history; time is an argument (integer ns of pump
time) and volume is motor steps. Windows are half-open, (now - W, now]: a step
made exactly W ago has left the window; a step is counted at the time it was
*recorded*, which is never before it was made, so the ledger can only
over-count, never under-count.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from pca.therapy.prescription import Prescription

Source = Literal["basal", "pca", "loading", "clinician", "kvo", "intermittent"]
DoseSource = Literal["pca", "loading", "clinician", "intermittent"]
Denial = Literal["lockout", "dose_limit", "max_per_hour", "in_progress"]

SOURCES: tuple[Source, ...] = ("basal", "pca", "loading", "clinician", "kvo", "intermittent")
# SR-2: what counts against the dose limit (clinician boluses and KVO do not, as on CADD-Solis;
# programmed intermittent boluses do, SR-12).
COUNTED: frozenset[str] = frozenset({"basal", "pca", "loading", "intermittent"})
NS_PER_S = 1_000_000_000
HOUR_NS = 3600 * NS_PER_S
MAX_WINDOW_NS = 12 * HOUR_NS


def ml_to_steps(volume_ml: Fraction, steps_per_ml: Fraction) -> int:
    """Whole steps in a volume, rounded down: the pump never gives more than asked."""
    return math.floor(volume_ml * steps_per_ml)


@dataclass(frozen=True)
class LedgerLimits:
    """A prescription's limits in the ledger's units (ns, steps)."""

    lockout_ns: int
    window_ns: int
    dose_limit_steps: int | None
    max_pca_per_h: int | None
    pca_dose_steps: int

    @classmethod
    def from_prescription(cls, rx: Prescription, steps_per_ml: Fraction) -> LedgerLimits:
        return cls(
            lockout_ns=math.ceil(rx.lockout_min * 60 * NS_PER_S),
            window_ns=rx.window_h * HOUR_NS,
            dose_limit_steps=None if rx.dose_limit_ml is None
            else ml_to_steps(rx.dose_limit_ml, steps_per_ml),
            max_pca_per_h=rx.max_pca_per_h,
            pca_dose_steps=ml_to_steps(rx.pca_dose_ml, steps_per_ml),
        )


class DoseLedger:
    """What was delivered when, and what may be delivered now."""

    def __init__(self, limits: LedgerLimits | None = None) -> None:
        self.limits = limits
        self._times: list[int] = []  # record times of counted deliveries, non-decreasing
        self._cum: list[int] = [0]  # _cum[i] = counted steps in records before i
        self._starts: list[tuple[int, DoseSource]] = []
        self._starts_prune_above = 64
        self.totals: dict[Source, int] = dict.fromkeys(SOURCES, 0)

    # --- history -----------------------------------------------------------------------
    def record_delivery(self, source: Source, steps: int, t_ns: int) -> None:
        """`steps` of `source` were made at or before `t_ns`."""
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if steps == 0:
            return
        self.totals[source] += steps
        if source not in COUNTED:
            return
        if self._times and t_ns < self._times[-1]:
            raise ValueError(f"delivery at {t_ns} ns is before the last one ({self._times[-1]})")
        self._times.append(t_ns)
        self._cum.append(self._cum[-1] + steps)
        self._prune(t_ns)

    def record_dose_start(self, source: DoseSource, t_ns: int) -> None:
        self._starts.append((t_ns, source))
        # Keep 12 h; drop what is older once it is at least half the list (amortised linear).
        horizon = t_ns - MAX_WINDOW_NS
        if self._starts[0][0] < horizon and len(self._starts) >= self._starts_prune_above:
            self._starts = [s for s in self._starts if s[0] >= horizon]
            self._starts_prune_above = max(64, 2 * len(self._starts))

    def _prune(self, now_ns: int) -> None:
        # Keep 12 h (the longest window); drop the rest in one go now and then.
        cut = bisect_right(self._times, now_ns - MAX_WINDOW_NS)
        if cut > 1024 and 2 * cut >= len(self._times):  # amortised: linear in the history
            base = self._cum[cut]
            self._times = self._times[cut:]
            self._cum = [c - base for c in self._cum[cut:]]

    # --- questions ---------------------------------------------------------------------
    def counted_steps(self, now_ns: int, window_ns: int | None = None) -> int:
        """Counted steps recorded after now - window.

        A record dated after `now` (made later in the same control tick than the moment
        the tick asks about) is counted too: it is real delivery, and leaving it out
        would let a grant in that tick exceed the limit.
        """
        if window_ns is None:
            window_ns = self.limits.window_ns if self.limits else MAX_WINDOW_NS
        first = bisect_right(self._times, now_ns - window_ns)
        return self._cum[-1] - self._cum[first]

    def allowance_steps(self, now_ns: int) -> int | None:
        """Steps that may still be delivered from now under SR-2 (None: no dose limit)."""
        if self.limits is None or self.limits.dose_limit_steps is None:
            return None
        return max(0, self.limits.dose_limit_steps - self.counted_steps(now_ns))

    def last_dose_start_ns(self) -> int | None:
        return self._starts[-1][0] if self._starts else None

    def lockout_ends_ns(self) -> int | None:
        """SR-1: when the lockout after the last dose started ends (None: no lockout)."""
        last = self.last_dose_start_ns()
        if last is None or self.limits is None:
            return None
        return last + self.limits.lockout_ns

    def pca_starts_last_hour(self, now_ns: int) -> int:
        return sum(1 for t, src in self._starts if src == "pca" and now_ns - HOUR_NS < t <= now_ns)

    def pca_denial(self, now_ns: int, *, dose_running: bool) -> Denial | None:
        """May a PCA dose start now? None if yes, else the first rule that says no."""
        if dose_running:
            return "in_progress"
        if self.limits is None:
            raise RuntimeError("no prescription: the ledger has no limits")
        lockout_end = self.lockout_ends_ns()
        if lockout_end is not None and now_ns < lockout_end:
            return "lockout"
        cap = self.limits.max_pca_per_h
        if cap is not None and self.pca_starts_last_hour(now_ns) >= cap:
            return "max_per_hour"
        allowance = self.allowance_steps(now_ns)
        if allowance is not None and self.limits.pca_dose_steps > allowance:
            return "dose_limit"
        return None

    def pca_available_at_ns(self, now_ns: int, *, basal_steps_per_h: int = 0) -> int | None:
        """When a PCA press will next be granted if the lockout (SR-1) and the count per
        hour (SR-3) are what stand in the way; None when that is not known from them alone:
        the dose limit (SR-2) would still refuse then, counting `basal_steps_per_h` of basal
        running meanwhile, or there is no prescription. For the patient's "next dose in"."""
        if self.limits is None:
            return None
        at = now_ns
        lockout_end = self.lockout_ends_ns()
        if lockout_end is not None:
            at = max(at, lockout_end)
        cap = self.limits.max_pca_per_h
        if cap is not None:
            starts = sorted(t for t, src in self._starts if src == "pca" and at - HOUR_NS < t)
            if len(starts) >= cap:
                # The oldest ones must leave the hour until fewer than `cap` remain.
                at = max(at, starts[len(starts) - cap] + HOUR_NS)
        allowance = self.allowance_steps(at)
        if allowance is not None:
            basal = -(-basal_steps_per_h * (at - now_ns) // HOUR_NS)
            if self.limits.pca_dose_steps + basal > allowance:
                return None
        return at

    def next_expiry_ns(self, now_ns: int) -> int | None:
        """The next time after now at which a counted record leaves the window."""
        if self.limits is None:
            return None
        first = bisect_right(self._times, now_ns - self.limits.window_ns)
        if first >= len(self._times):
            return None
        return self._times[first] + self.limits.window_ns

    def room_at_ns(self, now_ns: int, steps: int) -> int | None:
        """The earliest time >= now at which `steps` fit under the dose limit (None: never
        with this history, e.g. no limit set or more than the limit asked)."""
        if self.limits is None or self.limits.dose_limit_steps is None:
            return now_ns
        if steps > self.limits.dose_limit_steps:
            return None
        excess = self.counted_steps(now_ns) + steps - self.limits.dose_limit_steps
        if excess <= 0:
            return now_ns
        first = bisect_right(self._times, now_ns - self.limits.window_ns)
        # Records leave in time order: find the first whose leaving frees enough.
        base = self._cum[first]
        for i in range(first, len(self._times)):
            if self._cum[i + 1] - base >= excess:
                return self._times[i] + self.limits.window_ns
        return None
