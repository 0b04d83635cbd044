"""The vocabulary and record types of an episode read back from the log."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DOSE_SOURCES = ("pca", "clinician", "loading", "intermittent")
INFUSION_SOURCES = ("basal", "kvo")
SOURCES = ("basal", "pca", "loading", "clinician", "kvo", "intermittent")
# SR-2: what counts toward the rolling dose limit (clinician boluses and KVO do not;
# programmed intermittent boluses do, SR-12).
COUNTED_SOURCES = ("basal", "pca", "loading", "intermittent")
SOURCE_LABELS = {"basal": "basal infusion", "pca": "PCA dose", "loading": "loading dose",
                 "clinician": "clinician bolus", "kvo": "KVO",
                 "intermittent": "programmed intermittent bolus"}
# Routes of administration as SNOMED CT codes (the FHIR and HL7 exports carry them).
ROUTE_SNOMED = {"iv": ("47625008", "Intravenous route"),
                "epidural": ("404820008", "Epidural route"),
                "subcutaneous": ("34206005", "Subcutaneous route")}
# Why a delivery ended when the pump goes on delivering something else right after it.
CONTINUING_ENDINGS = {"complete", "truncated", "dose", "limit", "resumed", "rate"}
PRESCRIPTION_FIELDS = ("drug", "concentration_per_ml", "dose_unit", "basal_rate_per_h",
                       "pca_dose", "lockout_min", "max_pca_per_h", "dose_limit",
                       "dose_limit_window_h", "loading_dose", "clinician_bolus_max", "overrides")
EPISODE_NAMESPACE = uuid.UUID("6f1c2a52-4d0e-5b7e-9a43-2f3c5d8e1b07")


def parse_wall(text: str) -> datetime:
    """The log's ISO 8601 UTC wall time ("...Z") as an aware datetime."""
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def iso(stamp: datetime) -> str:
    """Aware datetime -> the log's format, 2026-03-01T08:00:00.000Z."""
    utc = stamp.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any


@dataclass
class Prescription:
    seq: int
    wall: datetime
    fields: dict[str, Any]
    changes: list[Change]

    @property
    def drug(self) -> str:
        return str(self.fields.get("drug", "?"))

    @property
    def drug_unit(self) -> str:
        return str(self.fields.get("drug_unit") or self.fields.get("dose_unit") or "mg")

    @property
    def dose_unit(self) -> str:
        return str(self.fields.get("dose_unit", self.drug_unit))

    @property
    def route(self) -> str:
        """"iv" unless the prescription names another route (version 2)."""
        return str(self.fields.get("route") or "iv")

    @property
    def concentration_per_ml(self) -> float | None:
        value = self.fields.get("concentration_per_ml")
        return None if value is None else float(value)

    @property
    def window_h(self) -> float | None:
        value = self.fields.get("dose_limit_window_h")
        return None if value is None else float(value)

    @property
    def basal_rate_ml_h(self) -> float:
        return float(self.fields.get("basal_rate_ml_h") or 0.0)

    @property
    def dose_limit_ml(self) -> float | None:
        value = self.fields.get("dose_limit_ml")
        return None if value is None else float(value)

    def ml_to_drug(self, volume_ml: float) -> float | None:
        conc = self.concentration_per_ml
        return None if conc is None else volume_ml * conc

    def describe(self) -> str:
        """One line a clinician reads: drug, concentration and the programmed limits."""
        f, unit = self.fields, self.dose_unit
        limit = "no limit" if f.get("dose_limit") is None else \
            f"{_num(f['dose_limit'])} {unit} per {_num(f.get('dose_limit_window_h'))} h"
        per_h = f.get("max_pca_per_h")
        route = "" if self.route == "iv" else f" ({self.route})"
        pib = ""
        if f.get("pib_dose"):
            pib = (f"; programmed bolus {_num(f['pib_dose'])} {unit} every "
                   f"{_num(f.get('pib_interval_min'))} min, first after "
                   f"{_num(f.get('pib_first_min'))} min"
                   + (", pushed by PCA" if f.get("pib_reset_on_pca") else ""))
        return (f"{self.drug} {_num(f.get('concentration_per_ml'))} {self.drug_unit}/mL{route}; "
                f"basal {_num(f.get('basal_rate_per_h'))} {unit}/h; PCA "
                f"{_num(f.get('pca_dose'))} {unit}, lockout {_num(f.get('lockout_min'))} min"
                + (f", max {per_h}/h" if per_h is not None else "") + f"; limit {limit}" + pib)


@dataclass
class Delivery:
    """One stretch of motor output from one source: a dose, or a basal/KVO segment."""

    source: str
    start_seq: int
    start: datetime
    actor: str
    prescription: Prescription | None
    rate_ml_h: float | None = None
    planned_ml: float | None = None
    delivered_ml: float = 0.0
    end_seq: int | None = None
    end: datetime | None = None
    # complete | truncated | stopped | interrupted | restart (doses);
    # dose | limit | resumed | rate | stopped | alarm | restart (basal and KVO); None: still open
    ending: str | None = None
    upper_bound: bool = False
    logged_ml: float | None = None
    delivered_steps: int = 0
    # First seq of the patient episode this belongs to (the log's first row, or a new_patient
    # row): the store numbers patient episodes by the same rows.
    patient_seq: int = 1

    @property
    def is_dose(self) -> bool:
        return self.source in DOSE_SOURCES

    @property
    def continues(self) -> bool:
        """The pump delivers something else right after this (a transition, not a stop)."""
        return self.ending in CONTINUING_ENDINGS

    @property
    def drug_amount(self) -> float | None:
        return None if self.prescription is None else \
            self.prescription.ml_to_drug(self.delivered_ml)


@dataclass
class PcaRequest:
    seq: int
    wall: datetime
    granted: bool
    reason: str | None


@dataclass
class AlarmSpan:
    name: str
    priority: str
    raised_seq: int
    raised: datetime
    cleared: datetime | None = None
    cleared_by: str | None = None
    silenced: list[datetime] = field(default_factory=list)


@dataclass
class JournalEntry:
    seq: int
    wall: datetime
    source: str
    volume_ml: float
    drug_amount: float | None
    # SR-2 window in force when these mL were made (None: no prescription known)
    window_h: float | None
    steps: int = 0
    # Steps granted beyond this record (the motor may make them before the next one).
    granted_steps: int = 0
    # Written at a restart: the grant open at the crash, counted whole (an upper bound).
    assumed: bool = False


@dataclass(frozen=True)
class InFlight:
    """Motor output the log cannot hold yet: at its last record the pump was still delivering,
    with `granted_steps` granted beyond that record."""

    source: str
    wall: datetime
    granted_steps: int
    rate_ml_h: float | None


@dataclass(frozen=True)
class VitalsPoint:
    """One `vitals` event (SR-13): the values of the monitor reading that changed one."""

    seq: int
    wall: datetime
    values: Mapping[str, int]


@dataclass
class LogEvent:
    """A row kept as it is, for the clinician-action and restart tables."""

    seq: int
    wall: datetime
    type: str
    actor: str
    fields: dict[str, Any]


@dataclass
class Episode:
    episode_id: str
    count: int
    first_seq: int | None
    last_seq: int | None
    start: datetime | None
    end: datetime | None
    prescriptions: list[Prescription]
    deliveries: list[Delivery]
    requests: list[PcaRequest]
    alarms: list[AlarmSpan]
    clinician_actions: list[LogEvent]
    restarts: list[LogEvent]
    clock_changes: list[LogEvent]
    journal: list[JournalEntry]
    pump: dict[str, Any]
    # (first seq, wall) of each patient episode in these rows: a new_patient row starts one.
    patients: list[tuple[int, datetime]] = field(default_factory=list)
    vitals: list[VitalsPoint] = field(default_factory=list)  # the respiratory monitor
    steps_per_ml: float | None = None
    in_flight: InFlight | None = None

    def to_ml(self, steps: int, fallback_ml: float) -> float:
        """Steps as mL, exactly as the pump converts them; `fallback_ml` (the sum of the
        records' rounded mL) where the log's rows do not say how many steps make a mL."""
        return steps / self.steps_per_ml if self.steps_per_ml else fallback_ml

    def totals_steps(self) -> dict[str, int]:
        """Motor steps made per source, from the motor journal."""
        totals = dict.fromkeys(SOURCES, 0)
        for entry in self.journal:
            totals[entry.source] = totals.get(entry.source, 0) + entry.steps
        return totals

    def totals_ml(self) -> dict[str, float]:
        """mL made per source, from the motor journal."""
        rounded = dict.fromkeys(SOURCES, 0.0)
        for entry in self.journal:
            rounded[entry.source] = rounded.get(entry.source, 0.0) + entry.volume_ml
        steps = self.totals_steps()
        return {s: self.to_ml(steps[s], rounded[s]) for s in steps}

    @property
    def assumed_steps(self) -> int:
        """Steps counted as given at restarts without the motor confirming them (SR-5)."""
        return sum(e.steps for e in self.journal if e.assumed)

    def totals_drug(self) -> dict[str, float | None]:
        """Drug amount per source in the drug's unit; None where a concentration is unknown."""
        totals: dict[str, float | None] = dict.fromkeys(SOURCES, 0.0)
        for entry in self.journal:
            have = totals.get(entry.source, 0.0)
            if have is None or entry.drug_amount is None:
                totals[entry.source] = None if entry.volume_ml else have
            else:
                totals[entry.source] = have + entry.drug_amount
        return totals

    @property
    def drug_unit(self) -> str:
        return self.prescriptions[-1].drug_unit if self.prescriptions else "mg"


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "?" if value is None else str(value)
