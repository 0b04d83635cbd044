"""One PCA episode read back from the event log: deliveries, prescriptions, requests, alarms.

Every export and the report read the log through this one model, so the FHIR bundle, the
HL7 messages and the report agree on what was given. Volumes come from the motor journal
(`delivery` events: steps made since the previous record), never from what was planned; they
are counted in motor steps and turned into mL once (steps / steps_per_ml), so every output of
the same log agrees to the step with the scenario summary.
"""

from __future__ import annotations

import json
import statistics
import uuid
from collections.abc import Iterable, Mapping
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


def episode_id_of(first_row: Mapping[str, Any] | None) -> str:
    """A stable id for the log, from its first event (the same log always gives the same id)."""
    text = json.dumps(dict(first_row or {}), sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(EPISODE_NAMESPACE, text))


def event_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("seq", "t_s", "wall", "type", "actor")}


class _Builder:
    """Walks the rows once, in seq order, keeping what is open (dose, infusion, alarms)."""

    def __init__(self, episode_id: str | None, steps_per_ml: float | None) -> None:
        self.episode_id = episode_id
        self.first_row: Mapping[str, Any] | None = None
        self.count = 0
        self.last_seq: int | None = None
        self.end: datetime | None = None
        self.rx: Prescription | None = None
        self.prescriptions: list[Prescription] = []
        self.deliveries: list[Delivery] = []
        self.requests: list[PcaRequest] = []
        self.alarms: list[AlarmSpan] = []
        self.open_alarms: dict[str, AlarmSpan] = {}
        self.clinician: list[LogEvent] = []
        self.restarts: list[LogEvent] = []
        self.clock_changes: list[LogEvent] = []
        self.journal: list[JournalEntry] = []
        self.pump: dict[str, Any] = {}
        self.steps_per_ml = steps_per_ml
        self.patients: list[tuple[int, datetime]] = []
        self.vitals: list[VitalsPoint] = []
        self.dose: Delivery | None = None
        self.infusion: Delivery | None = None
        self.rates: dict[str, float] = {}
        # Wall time of the last event before a crash: where a delivery cut by it really ended.
        self.last_alive: datetime | None = None

    def feed(self, row: Mapping[str, Any]) -> None:
        seq, kind, actor = int(row["seq"]), str(row["type"]), str(row["actor"])
        wall = parse_wall(str(row["wall"]))
        if self.first_row is None:
            self.first_row = row
            self.patients.append((seq, wall))
        self.count += 1
        self.last_seq, self.end = seq, wall
        recovery = kind == "restarted" or (kind == "delivery" and bool(row.get("assumed"))) \
            or (kind == "dose_ended" and "upper_bound" in row)
        if self.last_alive is None:
            self.last_alive = wall
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(row, seq, wall, actor)
        if actor == "clinician" or kind == "pin_changed":
            self.clinician.append(LogEvent(seq, wall, kind, actor, event_fields(row)))
        if not recovery:
            self.last_alive = wall

    # ---- deliveries ----------------------------------------------------------------------
    def _open(self, source: str, seq: int, wall: datetime, actor: str, *,
              rate_ml_h: float | None = None, planned_ml: float | None = None) -> Delivery:
        item = Delivery(source, seq, wall, actor, self.rx, rate_ml_h=rate_ml_h,
                        planned_ml=planned_ml, patient_seq=self.patients[-1][0])
        self.deliveries.append(item)
        if item.is_dose:
            self.dose = item
        else:
            self.infusion = item
        return item

    def _close_infusion(self, seq: int, wall: datetime, ending: str) -> None:
        if self.infusion is not None:
            self.infusion.end_seq, self.infusion.end, self.infusion.ending = seq, wall, ending
            self.infusion = None

    def _on_state_changed(self, row: Mapping[str, Any], seq: int, wall: datetime,
                          actor: str) -> None:
        to = str(row.get("to"))
        if self.infusion is not None:
            ending = {"pca_dose": "dose", "clinician_dose": "dose", "loading_dose": "dose",
                      "intermittent_dose": "dose",
                      "kvo": "limit", "running": "resumed", "alarm": "alarm"}.get(to, "stopped")
            self._close_infusion(seq, wall, ending)
        if to == "running":
            rate = self.rx.basal_rate_ml_h if self.rx else self.rates.get("basal")
            self._open("basal", seq, wall, "system", rate_ml_h=rate)
        elif to == "kvo":
            self._open("kvo", seq, wall, "system", rate_ml_h=self.rates.get("kvo"))

    def _on_rate_changed(self, row: Mapping[str, Any], seq: int, wall: datetime,
                         actor: str) -> None:
        mode, rate = str(row.get("mode")), float(row.get("rate_ml_h") or 0.0)
        if mode not in INFUSION_SOURCES:
            return
        self.rates[mode] = rate
        seg = self.infusion
        if seg is not None and seg.source == mode:
            if seg.rate_ml_h is None or (seg.delivered_ml == 0.0 and seg.start == wall):
                seg.rate_ml_h = rate  # the state change came first; this is its rate
            elif seg.rate_ml_h != rate:
                self._close_infusion(seq, wall, "rate")
                self._open(mode, seq, wall, "system", rate_ml_h=rate)
        elif seg is None:
            self._open(mode, seq, wall, "system", rate_ml_h=rate)

    def _on_dose_started(self, row: Mapping[str, Any], seq: int, wall: datetime,
                         actor: str) -> None:
        if self.dose is not None:  # never expected: a dose always ends before the next
            self.dose.end_seq, self.dose.end, self.dose.ending = seq, wall, "stopped"
        self._open(str(row.get("source")), seq, wall, actor,
                   planned_ml=float(row.get("amount_ml") or 0.0))

    def _on_dose_ended(self, row: Mapping[str, Any], seq: int, wall: datetime,
                       actor: str) -> None:
        dose = self.dose
        if dose is None or dose.source != row.get("source"):
            return
        crashed = "upper_bound" in row
        dose.end_seq = seq
        dose.end = self.last_alive if crashed and self.last_alive else wall
        dose.ending = "restart" if crashed else str(row.get("completion", "complete"))
        dose.upper_bound = bool(row.get("upper_bound"))
        dose.logged_ml = float(row.get("delivered_ml") or 0.0)
        self.dose = None

    def _on_delivery(self, row: Mapping[str, Any], seq: int, wall: datetime,
                     actor: str) -> None:
        source, volume_ml = str(row.get("source")), float(row.get("ml") or 0.0)
        steps = int(row.get("steps") or 0)
        rx = self.rx
        self.journal.append(JournalEntry(
            seq, wall, source, volume_ml, rx.ml_to_drug(volume_ml) if rx else None,
            rx.window_h if rx else None, steps=steps,
            granted_steps=int(row.get("granted_steps") or 0), assumed=bool(row.get("assumed"))))
        if source in DOSE_SOURCES:
            target = self.dose if self.dose is not None and self.dose.source == source else None
            if target is None and volume_ml > 0:
                # The dose started before the exported range: keep its mL anyway.
                target = self._open(source, seq, wall, "system")
        else:
            target = self.infusion if self.infusion is not None and \
                self.infusion.source == source else None
            if target is None and volume_ml > 0:
                self._close_infusion(seq, wall, "rate")
                target = self._open(source, seq, wall, "system", rate_ml_h=self.rates.get(source))
        if target is not None:
            target.delivered_ml += volume_ml
            target.delivered_steps += steps

    def _on_restarted(self, row: Mapping[str, Any], seq: int, wall: datetime,
                      actor: str) -> None:
        self._close_infusion(seq, self.last_alive or wall, "restart")
        if self.dose is not None:
            self.dose.end_seq, self.dose.end, self.dose.ending = seq, self.last_alive, "restart"
            self.dose = None
        self.restarts.append(LogEvent(seq, wall, "restarted", actor, event_fields(row)))

    # ---- everything else -----------------------------------------------------------------
    def _on_prescription_activated(self, row: Mapping[str, Any], seq: int, wall: datetime,
                                   actor: str) -> None:
        fields = event_fields(row)
        before = self.prescriptions[-1].fields if self.prescriptions else None
        changes = [] if before is None else [
            Change(name, before.get(name), fields.get(name)) for name in PRESCRIPTION_FIELDS
            if before.get(name) != fields.get(name)]
        self.rx = Prescription(seq, wall, fields, changes)
        self.prescriptions.append(self.rx)

    def _on_new_patient(self, row: Mapping[str, Any], seq: int, wall: datetime,
                        actor: str) -> None:
        self.rx = None
        if self.patients[-1][0] != seq:
            self.patients.append((seq, wall))

    def _on_pump_initialised(self, row: Mapping[str, Any], seq: int, wall: datetime,
                             actor: str) -> None:
        self.pump = event_fields(row)
        if self.steps_per_ml is None and row.get("steps_per_ml"):
            self.steps_per_ml = float(row["steps_per_ml"])

    def _on_pca_request(self, row: Mapping[str, Any], seq: int, wall: datetime,
                        actor: str) -> None:
        granted = row.get("outcome") == "granted"
        self.requests.append(PcaRequest(seq, wall, granted,
                                        None if granted else str(row.get("reason"))))

    def _on_alarm_raised(self, row: Mapping[str, Any], seq: int, wall: datetime,
                         actor: str) -> None:
        name = str(row.get("alarm"))
        if name not in self.open_alarms:
            span = AlarmSpan(name, str(row.get("priority", "")), seq, wall)
            self.open_alarms[name] = span
            self.alarms.append(span)

    def _on_alarm_cleared(self, row: Mapping[str, Any], seq: int, wall: datetime,
                          actor: str) -> None:
        span = self.open_alarms.pop(str(row.get("alarm")), None)
        if span is not None:
            span.cleared, span.cleared_by = wall, actor

    def _on_alarm_silenced(self, row: Mapping[str, Any], seq: int, wall: datetime,
                           actor: str) -> None:
        span = self.open_alarms.get(str(row.get("alarm")))
        if span is not None:
            span.silenced.append(wall)

    def _on_vitals(self, row: Mapping[str, Any], seq: int, wall: datetime,
                   actor: str) -> None:
        values = {k: int(row[k]) for k in ("spo2", "etco2_mmhg", "rr", "pulse")
                  if row.get(k) is not None}
        self.vitals.append(VitalsPoint(seq, wall, values))

    def _on_clock_changed(self, row: Mapping[str, Any], seq: int, wall: datetime,
                          actor: str) -> None:
        self.clock_changes.append(LogEvent(seq, wall, "clock_changed", actor, event_fields(row)))

    def _dose_rates(self) -> None:
        """The log has no bolus rate: measure it from the doses that ran to completion."""
        measured: list[float] = []
        for item in self.deliveries:
            if item.is_dose and item.ending == "complete" and item.end is not None:
                hours = (item.end - item.start).total_seconds() / 3600
                if hours > 0:
                    item.rate_ml_h = round(item.delivered_ml / hours, 3)
                    measured.append(item.rate_ml_h)
        typical = statistics.median(measured) if measured else None
        for item in self.deliveries:
            if item.is_dose and item.rate_ml_h is None:
                item.rate_ml_h = typical

    def _in_flight(self) -> InFlight | None:
        last = self.journal[-1] if self.journal else None
        if last is None or last.granted_steps <= 0:
            return None
        open_item = self.dose if self.dose is not None else self.infusion
        rate = open_item.rate_ml_h if open_item is not None else self.rates.get(last.source)
        return InFlight(last.source, last.wall, last.granted_steps, rate)

    def finish(self) -> Episode:
        spm = self.steps_per_ml
        if spm:
            # One conversion, from whole steps: sums of rounded mL drift over a long log.
            for item in self.deliveries:
                item.delivered_ml = item.delivered_steps / spm
        in_flight = self._in_flight()
        self._dose_rates()
        first = self.first_row
        return Episode(
            episode_id=self.episode_id or episode_id_of(first), count=self.count,
            first_seq=int(first["seq"]) if first else None, last_seq=self.last_seq,
            start=parse_wall(str(first["wall"])) if first else None, end=self.end,
            prescriptions=self.prescriptions, deliveries=self.deliveries,
            requests=self.requests, alarms=self.alarms, clinician_actions=self.clinician,
            restarts=self.restarts, clock_changes=self.clock_changes, journal=self.journal,
            pump=self.pump, patients=self.patients, vitals=self.vitals, steps_per_ml=spm,
            in_flight=in_flight)


def patient_episodes(rows: Iterable[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """The rows split into patient episodes, as the store counts them: the first from the
    log's first row, each next one from a `new_patient` row."""
    out: list[list[Mapping[str, Any]]] = []
    for row in rows:
        if not out or row["type"] == "new_patient":
            out.append([])
        out[-1].append(row)
    return out


def in_flight_text(ep: Episode) -> str:
    """What the log cannot hold yet, in one sentence (empty when nothing is in flight)."""
    flight = ep.in_flight
    if flight is None:
        return ""
    rate = f" at {flight.rate_ml_h:g} mL/h" if flight.rate_ml_h else ""
    volume = f", {flight.granted_steps / ep.steps_per_ml:.6f} mL," if ep.steps_per_ml else ""
    return (f"still delivering ({SOURCE_LABELS.get(flight.source, flight.source)}{rate}) at the "
            f"log's last motor record, {iso(flight.wall)}: what the motor made after it is not "
            f"journaled yet (at most {flight.granted_steps} steps{volume} were granted beyond "
            "it)")


def steps_per_ml_of(rows: Iterable[Mapping[str, Any]]) -> float | None:
    """The pump's calibration as its log states it (`pump_initialised`), or None."""
    for row in rows:
        if row["type"] == "pump_initialised" and row.get("steps_per_ml"):
            return float(row["steps_per_ml"])
    return None


def build_episode(rows: Iterable[Mapping[str, Any]], *, episode_id: str | None = None,
                  steps_per_ml: float | None = None) -> Episode:
    """Read rows (as `export_rows` yields them, in seq order) into an Episode. Pass
    `steps_per_ml` when the rows are a part of the log that may not hold `pump_initialised`
    (a later patient, a --since slice)."""
    builder = _Builder(episode_id, steps_per_ml)
    for row in rows:
        builder.feed(row)
    return builder.finish()
