"""The dose history clinicians judge pain control by: PCA given and tried per hour, totals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from pca.controller.panel import text as T
from pca.controller.panel.nav import Flow, Nav
from pca.controller.panel.widgets import NumberEntry, Pages, fit, num, row
from pca.controller.ports import NS_PER_S

HOUR_NS = 3600 * NS_PER_S
HISTORY_MAX_H = 72
SOURCES = ("pca", "basal", "intermittent", "clinician", "loading", "kvo")


@dataclass
class HistorySummary:
    hours: int
    given: int
    attempted: int
    per_hour: list[tuple[int, int]]  # (given, attempted) for each hour back, newest first
    ml: dict[str, float]  # by source
    amount: dict[str, float] | None  # by source in `unit`, None when concentrations differ
    unit: str
    pib_given: int = 0  # programmed intermittent boluses started (SR-12)
    pib_skipped: int = 0


@dataclass
class DoseHistory:
    """PCA requests and deliveries in pump time, rebuilt from the log at start-up and fed
    every event after; cleared for a new patient."""

    requests: list[tuple[int, bool]] = field(default_factory=list)  # pump_ns, granted
    pibs: list[tuple[int, bool]] = field(default_factory=list)  # pump_ns, given (else skipped)
    deliveries: list[tuple[int, str, float, float | None]] = field(default_factory=list)
    unit: str = ""
    _conc: float | None = None
    _prune_above: int = 20_000  # doubles with what a prune keeps: linear, not quadratic

    def observe(self, type_: str, fields: Mapping[str, Any], pump_ns: int) -> None:
        if type_ == "pca_request":
            self.requests.append((pump_ns, fields.get("outcome") == "granted"))
        elif type_ == "dose_started" and fields.get("source") == "intermittent":
            self.pibs.append((pump_ns, True))
        elif type_ == "pib_skipped":
            self.pibs.append((pump_ns, False))
        elif type_ == "delivery":
            ml = float(fields.get("ml", 0.0))
            if ml > 0:
                amount = None if self._conc is None else ml * self._conc
                self.deliveries.append((pump_ns, str(fields.get("source")), ml, amount))
        elif type_ == "prescription_activated":
            self._conc = float(fields["concentration_per_ml"])
            self.unit = str(fields.get("drug_unit", ""))
        elif type_ == "new_patient":
            self.requests.clear()
            self.deliveries.clear()
            self.pibs.clear()
            self._conc = None
        if len(self.requests) + len(self.deliveries) + len(self.pibs) > self._prune_above:
            self._prune(pump_ns)

    def _prune(self, now_ns: int) -> None:
        horizon = now_ns - (HISTORY_MAX_H + 1) * HOUR_NS
        self.requests = [r for r in self.requests if r[0] > horizon]
        self.deliveries = [d for d in self.deliveries if d[0] > horizon]
        self.pibs = [p for p in self.pibs if p[0] > horizon]
        # Everything kept may be inside the horizon: wait until the lists have doubled
        # before rescanning, so start-up over a long log stays linear in its length.
        kept = len(self.requests) + len(self.deliveries) + len(self.pibs)
        self._prune_above = max(20_000, 2 * kept)

    def summary(self, hours: int, now_ns: int) -> HistorySummary:
        since = now_ns - hours * HOUR_NS
        per_hour = []
        for k in range(hours):
            hi, lo = now_ns - k * HOUR_NS, now_ns - (k + 1) * HOUR_NS
            in_hour = [g for t, g in self.requests if lo < t <= hi]
            per_hour.append((sum(in_hour), len(in_hour)))
        ml: dict[str, float] = {}
        amount: dict[str, float] | None = {}
        for t, source, volume, in_unit in self.deliveries:
            if since < t <= now_ns:
                ml[source] = ml.get(source, 0.0) + volume
                if amount is not None:
                    if in_unit is None:
                        amount = None
                    else:
                        amount[source] = amount.get(source, 0.0) + in_unit
        given = sum(g for g, _ in per_hour)
        attempted = sum(a for _, a in per_hour)
        pibs = [g for t, g in self.pibs if since < t <= now_ns]
        return HistorySummary(hours, given, attempted, per_hour, ml, amount, self.unit,
                              sum(pibs), len(pibs) - sum(pibs))


class HistoryFlow(Flow):
    def __init__(self, nav: Nav, history: DoseHistory) -> None:
        super().__init__(nav)
        self.history = history

    def actions(self) -> dict[str, Callable[[], None]]:
        return {"history": self.history_screen}

    def history_screen(self) -> None:
        self.nav.show(NumberEntry(T.HISTORY_TITLE, T.HISTORY_UNIT, places=0,
                                  back=self.nav.main_menu,
                                  hint=T.HISTORY_RANGE.format(max_h=HISTORY_MAX_H),
                                  max_digits=2, on_enter=self._history_for))

    def _history_for(self, hours_value: Fraction) -> None:
        nav = self.nav
        hours = int(hours_value)
        if not 1 <= hours <= HISTORY_MAX_H:
            entry = nav.screen
            if isinstance(entry, NumberEntry):
                entry.refuse(T.HISTORY_RANGE.format(max_h=HISTORY_MAX_H))
            return
        s = self.history.summary(hours, nav.now_ns)
        pages = [[fit(T.HISTORY_HEAD.format(hours=hours)),
                  fit(T.HISTORY_GIVEN.format(n=s.given)),
                  fit(T.HISTORY_TRIED.format(n=s.attempted))]]
        if s.pib_given or s.pib_skipped:
            pages.append([fit(T.HISTORY_PIB_HEAD), fit(T.HISTORY_PIB_GIVEN.format(n=s.pib_given)),
                          fit(T.HISTORY_PIB_SKIPPED.format(n=s.pib_skipped))])
        ago, given, tried = T.HISTORY_COLUMNS
        rows_ = [f"{ago:<8}{given:>6}{tried:>6}"]
        rows_ += [row(T.HISTORY_HOURS_AGO.format(k=k, k1=k + 1), str(g), str(a))
                  for k, (g, a) in enumerate(s.per_hour)]
        for i in range(0, len(rows_) - 1, 2):
            pages.append([rows_[0], *rows_[1 + i:3 + i]])
        total_ml = sum(s.ml.values())
        unit = s.unit or T.HISTORY_DEFAULT_UNIT
        totals = [row("", unit if s.amount is not None else "", T.UNIT_ML)]
        for source in SOURCES:
            if source in s.ml:
                amount = "" if s.amount is None else num(s.amount.get(source, 0.0), 2)
                totals.append(row(T.HISTORY_SOURCE[source][:8], amount, num(s.ml[source], 2)))
        totals.append(row(T.HISTORY_TOTAL,
                          "" if s.amount is None else num(sum(s.amount.values()), 2),
                          num(total_ml, 2)))
        for i in range(0, len(totals) - 1, 2):
            pages.append([totals[0], *totals[1 + i:3 + i]])
        nav.show(Pages(pages, back=nav.main_menu))
