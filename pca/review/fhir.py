"""FHIR R4 (4.0.1) export: a transaction Bundle of the pump, what it gave and who programmed it.

One Device for the pump; one Medication per drug and concentration; one MedicationAdministration
per dose (PCA, clinician, loading) and per basal or KVO segment, with the volume the motor made
(`dosage.dose`, mL) and the rate; one AuditEvent per authorisation or programming event. The
whole bundle is validated by `fhir.resources` before a byte is written, with its R4B (4.3.0)
models: fhir.resources on pydantic v2 no longer ships R4 (4.0.1) models, and for the five
resources written here R4B is R4 (same elements, cardinalities and codes; the review tests hold
every element and code the export writes against a list taken from the R4 specification).

Volumes are in mL because that is what the pump measures; the Medication's strength gives the
drug amount (mg or mcg), which `dosage.text` also spells out for a reader.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any

import fhir.resources.R4B
from fhir.resources.R4B.bundle import Bundle

from pca.review.episode import (
    EPISODE_NAMESPACE,
    ROUTE_SNOMED,
    SOURCE_LABELS,
    Delivery,
    Episode,
    LogEvent,
    build_episode,
    event_fields,
    in_flight_text,
    iso,
    parse_wall,
)

# The models the bundle is validated with, and the version it claims (R4, as servers expect).
MODELS_FHIR_VERSION = "4.3.0"
CLAIMED_FHIR_VERSION = "4.0.1"
# The MIME type to post the bundle with: a server reads the FHIR version from it.
MEDIA_TYPE = "application/fhir+json; fhirVersion=4.0"
if fhir.resources.R4B.__fhir_version__ != MODELS_FHIR_VERSION:  # pragma: no cover - wrong pin
    raise ImportError(f"fhir.resources.R4B models are FHIR {fhir.resources.R4B.__fhir_version__}"
                      f", not {MODELS_FHIR_VERSION}: install fhir.resources>=8.3,<9")

UCUM = "http://unitsofmeasure.org"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
MDC = "urn:iso:std:iso:11073:10101"
# Identifier systems of this pump: the log, and one event of it (value "<log id>:<seq>").
LOG_SYSTEM = "urn:pca:log"
EVENT_SYSTEM = "urn:pca:event"
SOURCE_SYSTEM = "urn:pca:delivery-source"
AUDIT_SYSTEM = "urn:pca:audit-event-type"
UCUM_OF_UNIT = {"mg": "mg", "mcg": "ug", "ml": "mL"}
PATIENT_SYSTEM = "urn:pca:patient-episode"

# DICOM audit codes for authorisation (SR-6); programming has no standard code, so ours.
AUTH = {"system": DICOM, "code": "110114", "display": "User Authentication"}
LOGIN = {"system": DICOM, "code": "110122", "display": "Login"}
LOGOUT = {"system": DICOM, "code": "110123", "display": "Logout"}
SECURITY = {"system": DICOM, "code": "110113", "display": "Security Alert"}
SECURITY_ATTRS = {"system": DICOM, "code": "110137",
                  "display": "User Security Attributes Changed"}
PROGRAMMING = {"system": AUDIT_SYSTEM, "code": "programming", "display": "Pump programming"}
# AuditEvent.outcome: 0 success, 4 minor failure, 8 serious failure.
AUTH_OUTCOME = {"ok": "0", "failed": "4", "locked_out": "8"}
PROGRAMMING_EVENTS = {"prescription_activated", "prescription_rejected", "action_rejected",
                      "syringe_changed", "new_patient", "alarm_cleared"}
ENDING_TEXT = {
    "complete": "complete", "truncated": "cut at the rolling dose limit (SR-2)",
    "stopped": "stopped from the front panel", "interrupted": "stopped by an alarm (SR-4)",
    "restart": "interrupted by a crash or power loss (SR-5); counted as given",
    "dose": "paused for a dose", "limit": "dose limit reached: dropped to KVO (SR-2)",
    "resumed": "the limit window had room again: basal resumed", "rate": "rate changed",
    "alarm": "stopped by an alarm (SR-4)",
}


def _uuid(episode_id: str, *parts: object) -> str:
    """A stable fullUrl: the same log exports with the same ids."""
    return "urn:uuid:" + str(uuid.uuid5(EPISODE_NAMESPACE, ":".join(map(str, (episode_id,
                                                                             *parts)))))


def _quantity(value: float, unit: str) -> dict[str, Any]:
    code = UCUM_OF_UNIT.get(unit, unit)
    return {"value": round(value, 6), "unit": unit if unit != "ml" else "mL", "system": UCUM,
            "code": code}


def _identifier(episode_id: str, seq: int) -> dict[str, str]:
    return {"system": EVENT_SYSTEM, "value": f"{episode_id}:{seq}"}


def _entry(full_url: str, resource: dict[str, Any],
           identifier: Mapping[str, str] | None) -> dict[str, Any]:
    request = {"method": "POST", "url": resource["resourceType"]}
    if identifier is not None:
        # Conditional create: posting the same export twice does not duplicate it.
        request["ifNoneExist"] = f"identifier={identifier['system']}|{identifier['value']}"
    return {"fullUrl": full_url, "resource": resource, "request": request}


def _device(ep: Episode, full_url: str) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        software = version("pca")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        software = "unknown"
    device: dict[str, Any] = {
        "resourceType": "Device",
        "identifier": [{"system": LOG_SYSTEM, "value": ep.episode_id}],
        "status": "active",
        "deviceName": [{"name": "ambulatory PCA syringe pump", "type": "user-friendly-name"}],
        "type": {"coding": [{"system": MDC, "code": "70053",
                             "display": "MDC_DEV_PUMP_INFUS_SYRINGE_MDS"}],
                 "text": "PCA syringe pump"},
        "version": [{"value": software}],
    }
    props = []
    if "steps_per_ml" in ep.pump:
        props.append({"type": {"text": "motor steps per mL (calibration)"},
                      "valueQuantity": [{"value": float(ep.pump["steps_per_ml"]),
                                         "unit": "/mL", "system": UCUM, "code": "/mL"}]})
    if "rtc" in ep.pump:
        props.append({"type": {"text": "battery-backed real-time clock"},
                      "valueCode": [{"text": "yes" if ep.pump["rtc"] else "no"}]})
    if props:
        device["property"] = props
    return device


def _medication(drug: str, unit: str, conc: float) -> dict[str, Any]:
    return {
        "resourceType": "Medication",
        "code": {"text": f"{drug} {conc:g} {unit}/mL"},
        "ingredient": [{"itemCodeableConcept": {"text": drug}, "isActive": True,
                        "strength": {"numerator": _quantity(conc, unit),
                                     "denominator": _quantity(1.0, "ml")}}],
    }


def _subject(ep: Episode, patient_seq: int) -> dict[str, Any]:
    """The pump knows no patient identity, only that a new patient starts a new episode: the
    receiving system links this identifier to its patient."""
    since = next((iso(w) for s, w in ep.patients if s == patient_seq), "?")
    return {"identifier": {"system": PATIENT_SYSTEM, "value": f"{ep.episode_id}:{patient_seq}"},
            "display": f"the patient of the pump from {since} (the pump records no identity)"}


def _status(item: Delivery) -> str:
    if item.ending is None:
        return "in-progress"
    return "completed" if item.ending in ("complete", "dose", "limit", "resumed", "rate") \
        else "stopped"


def _administration(ep: Episode, item: Delivery, device_url: str,
                    medication_url: str | None) -> dict[str, Any]:
    rx = item.prescription
    label = SOURCE_LABELS[item.source]
    amount = item.drug_amount
    text = f"{item.delivered_ml:.6g} mL"
    if amount is not None and rx is not None:
        text += f" ({amount:.6g} {rx.drug_unit} {rx.drug})"
    text += f", {label}"
    if item.ending is not None:
        text += f": {ENDING_TEXT.get(item.ending, item.ending)}"
    dosage: dict[str, Any] = {
        "text": text,
        "method": {"coding": [{"system": SOURCE_SYSTEM, "code": item.source, "display": label}],
                   "text": label},
        "dose": _quantity(item.delivered_ml, "ml"),
    }
    if rx is not None and rx.route in ROUTE_SNOMED:
        code, display = ROUTE_SNOMED[rx.route]
        dosage["route"] = {"coding": [{"system": "http://snomed.info/sct", "code": code,
                                       "display": display}], "text": rx.route}
    if item.rate_ml_h is not None:
        dosage["rateQuantity"] = {"value": round(item.rate_ml_h, 6), "unit": "mL/h",
                                  "system": UCUM, "code": "mL/h"}
    period = {"start": iso(item.start)}
    if item.end is not None:
        period["end"] = iso(item.end)
    performer = "the patient (PCA button)" if item.source == "pca" else \
        "a clinician (PIN session at the pump)" if item.is_dose and \
        item.source != "intermittent" else "the pump (programmed)"
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "identifier": [_identifier(ep.episode_id, item.start_seq)],
        "status": _status(item),
        "subject": _subject(ep, item.patient_seq),
        "effectivePeriod": period,
        "performer": [{"actor": {"display": performer}}],
        "device": [{"reference": device_url}],
        "dosage": dosage,
    }
    if medication_url is None:
        resource["medicationCodeableConcept"] = {
            "text": "unknown: no prescription in the exported range"}
    else:
        resource["medicationReference"] = {"reference": medication_url}
    notes = []
    if item.planned_ml is not None:
        notes.append(f"planned {item.planned_ml:.6g} mL")
    if item.upper_bound:
        notes.append("upper bound: includes the motor grant open at the crash")
    flight = ep.in_flight
    if item.ending is None and flight is not None and flight.source == item.source:
        notes.append(in_flight_text(ep))
    if notes:
        resource["note"] = [{"text": "; ".join(notes)}]
    if resource["status"] == "stopped":
        resource["statusReason"] = [{"text": ENDING_TEXT.get(item.ending or "", "")}]
    return resource


def _details(fields: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"type": name, "valueString": json.dumps(value) if not isinstance(value, str)
             else value} for name, value in sorted(fields.items())]


def _audit(ep: Episode, event: LogEvent, device_url: str) -> dict[str, Any] | None:
    f = event.fields
    outcome, outcome_desc = "0", None
    if event.type == "auth":
        kind, sub, action = AUTH, LOGIN, "E"
        outcome = AUTH_OUTCOME.get(str(f.get("outcome")), "4")
        outcome_desc = f.get("reason") or str(f.get("outcome"))
    elif event.type == "session_locked":
        kind, sub, action = AUTH, LOGOUT, "E"
        outcome_desc = f"keypad relocked: {f.get('reason', '')}".strip()
    elif event.type == "pin_changed":
        kind, sub, action = SECURITY, SECURITY_ATTRS, "U"
        outcome_desc = f"PIN of role {f.get('role', '?')} set (the PIN itself is never logged)"
    elif event.type in PROGRAMMING_EVENTS:
        if event.type == "alarm_cleared" and event.actor != "clinician":
            return None
        kind, action = PROGRAMMING, "U" if event.type != "alarm_cleared" else "E"
        sub = {"system": AUDIT_SYSTEM, "code": event.type.replace("_", "-"),
               "display": event.type.replace("_", " ")}
        if event.type in ("prescription_rejected", "action_rejected"):
            outcome = "4"
            outcome_desc = "; ".join(map(str, f.get("errors", []))) or str(f.get("reason", ""))
    else:
        return None
    requestor = event.actor in ("clinician", "patient")
    who = {"display": event.actor} if requestor else {"reference": device_url}
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": kind,
        "subtype": [sub],
        "action": action,
        "recorded": iso(event.wall),
        "outcome": outcome,
        "agent": [{"who": who, "requestor": requestor}],
        "source": {"observer": {"reference": device_url}},
        "entity": [{"what": {"identifier": _identifier(ep.episode_id, event.seq)},
                    "name": event.type, "detail": _details(f)}] if f else
                  [{"what": {"identifier": _identifier(ep.episode_id, event.seq)},
                    "name": event.type}],
    }
    if outcome_desc:
        resource["outcomeDesc"] = outcome_desc
    return resource


def bundle_of(ep: Episode, audit_events: Iterable[LogEvent], *,
              now: datetime | None = None) -> Bundle:
    """The episode as a validated FHIR R4 transaction Bundle."""
    device_url = _uuid(ep.episode_id, "device")
    entries = [_entry(device_url, _device(ep, device_url),
                      {"system": LOG_SYSTEM, "value": ep.episode_id})]
    medications: dict[tuple[str, str, float], str] = {}
    for item in ep.deliveries:
        if item.delivered_ml == 0 and not item.rate_ml_h:
            continue  # a 0 mL/h basal or KVO gives nothing: no administration to record
        med_url = None
        rx = item.prescription
        if rx is not None and rx.concentration_per_ml is not None:
            key = (rx.drug, rx.drug_unit, rx.concentration_per_ml)
            if key not in medications:
                medications[key] = _uuid(ep.episode_id, "medication", *key)
                entries.append(_entry(medications[key], _medication(*key), {
                    "system": EVENT_SYSTEM, "value": f"{ep.episode_id}:medication:{rx.seq}"}))
            med_url = medications[key]
        url = _uuid(ep.episode_id, "event", item.start_seq)
        resource = _administration(ep, item, device_url, med_url)
        entries.append(_entry(url, resource, resource["identifier"][0]))
    # SR-13: each value the respiratory monitor reported, when it changed (LOINC coded).
    from pca.review.vitals import changes, observation

    for point, vital, value in changes(ep.vitals):
        identifier = {"system": EVENT_SYSTEM, "value": f"{ep.episode_id}:{point.seq}:{vital}"}
        patient = max((s for s, _ in ep.patients if s <= point.seq), default=ep.first_seq or 0)
        resource = observation(point, vital, value, identifier=identifier,
                               subject=_subject(ep, patient), device_url=device_url,
                               when=iso(point.wall))
        entries.append(_entry(_uuid(ep.episode_id, "event", point.seq, vital), resource,
                              identifier))
    for event in audit_events:
        audit = _audit(ep, event, device_url)
        if audit is not None:
            # R4 AuditEvent has no identifier to create on condition; its entity names the event.
            entries.append(_entry(_uuid(ep.episode_id, "event", event.seq), audit, None))
    stamp = iso(now or datetime.now(UTC))
    return Bundle.model_validate({"resourceType": "Bundle", "type": "transaction",
                                  "timestamp": stamp, "entry": entries})


def audit_rows(rows: Iterable[Mapping[str, Any]]) -> list[LogEvent]:
    """The log events an AuditEvent is made for (authorisation and programming)."""
    kinds = {"auth", "session_locked", "pin_changed", *PROGRAMMING_EVENTS}
    return [LogEvent(int(r["seq"]), parse_wall(str(r["wall"])), str(r["type"]), str(r["actor"]),
                     event_fields(r)) for r in rows if r["type"] in kinds]


def write_bundle(rows: Iterable[Mapping[str, Any]], out: IO[str], *,
                 episode_id: str | None = None, now: datetime | None = None,
                 steps_per_ml: float | None = None) -> int:
    """Write the rows as one FHIR R4 Bundle (JSON); returns the number of entries."""
    rows = list(rows)
    ep = build_episode(rows, episode_id=episode_id, steps_per_ml=steps_per_ml)
    bundle = bundle_of(ep, audit_rows(rows), now=now)
    out.write(bundle.model_dump_json(indent=2))
    out.write("\n")
    return len(bundle.entry or [])
