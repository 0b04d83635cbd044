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
from datetime import datetime
from typing import Any

from pca.review.episode_model import (
    CONTINUING_ENDINGS,
    COUNTED_SOURCES,
    DOSE_SOURCES,
    EPISODE_NAMESPACE,
    INFUSION_SOURCES,
    PRESCRIPTION_FIELDS,
    ROUTE_SNOMED,
    SOURCE_LABELS,
    SOURCES,
    AlarmSpan,
    Change,
    Delivery,
    Episode,
    InFlight,
    JournalEntry,
    LogEvent,
    PcaRequest,
    Prescription,
    VitalsPoint,
    iso,
    parse_wall,
)

# The record types live in episode_model; every reader imports them from here as before.
__all__ = [
    "CONTINUING_ENDINGS",
    "COUNTED_SOURCES",
    "DOSE_SOURCES",
    "EPISODE_NAMESPACE",
    "INFUSION_SOURCES",
    "PRESCRIPTION_FIELDS",
    "ROUTE_SNOMED",
    "SOURCES",
    "SOURCE_LABELS",
    "AlarmSpan",
    "Change",
    "Delivery",
    "Episode",
    "InFlight",
    "JournalEntry",
    "LogEvent",
    "PcaRequest",
    "Prescription",
    "VitalsPoint",
    "build_episode",
    "episode_id_of",
    "event_fields",
    "in_flight_text",
    "iso",
    "parse_wall",
    "patient_episodes",
    "steps_per_ml_of",
]


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
