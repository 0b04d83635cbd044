"""HL7 v2.6 export per IHE PCD-10 (Infusion Pump Event Communication): one ORU^R42 per event.

Every delivery of the episode (a PCA, clinician or loading dose; a basal or KVO segment) is
bounded by a Delivery Start event and a Delivery Stop or Delivery Complete event, as the IPEC
profile models an infusion. Each message carries the event's own time (OBR-7, OBX-14), so a
log exported long after the fact still reads as the buffered events it is; MSH-7 is when the
message was made. Messages are built and validated with hl7apy (strict v2.6 structures).

File layout: segments end with CR as HL7 requires, and each message ends with CR LF, so the
file reads as one segment per line in any editor; `split_messages` takes it apart again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message

from pca.review.episode import (
    ROUTE_SNOMED,
    SOURCE_LABELS,
    Delivery,
    Episode,
    build_episode,
    in_flight_text,
)

PROFILE = "IHE_PCD_010^IHE PCD^1.3.6.1.4.1.19376.1.6.4.10^ISO"
MESSAGE_TYPE = "ORU^R42^ORU_R01"
# IEEE 11073-10101 terms. START and COMP codes are as in IHE samples; STOP's 197290 sits between
# them in the 10101b event partition (6680, 6682, 6684): check against RTMMS before a connectathon.
EVT_START = "197288^MDC_EVT_PUMP_DELIV_START^MDC"
EVT_STOP = "197290^MDC_EVT_PUMP_DELIV_STOP^MDC"
EVT_COMP = "197292^MDC_EVT_PUMP_DELIV_COMP^MDC"
EVENT_OF_KIND = {"start": EVT_START, "stop": EVT_STOP, "complete": EVT_COMP}
KIND_OF_EVENT_NAME = {"MDC_EVT_PUMP_DELIV_START": "start", "MDC_EVT_PUMP_DELIV_STOP": "stop",
                      "MDC_EVT_PUMP_DELIV_COMP": "complete"}
MDS = "70053^MDC_DEV_PUMP_INFUS_SYRINGE_MDS^MDC"
VMD = "70054^MDC_DEV_PUMP_INFUS_SYRINGE_VMD^MDC"
ML = "263762^MDC_DIM_MILLI_L^MDC^mL^mL^UCUM"
ML_H = "265266^MDC_DIM_MILLI_L_PER_HR^MDC^mL/h^mL/h^UCUM"
CONC_UNITS = {"mg": "264306^MDC_DIM_MILLI_G_PER_ML^MDC^mg/mL^mg/mL^UCUM",
              "mcg": "ug/mL^ug/mL^UCUM"}
ACTIVE_SOURCE = {"pca": "pca", "loading": "loading", "clinician": "clinician",
                 "basal": "primary", "kvo": "primary", "intermittent": "intermittent"}
DELIVERY_MODE = {"intermittent": "intermittent"}  # else continuous
ROUTE_OBX = "410675002^Route of administration^SCT"
STOP_REASON = {"stopped": "pump-stopped-not-specified", "alarm": "pump-stopped-alarming",
               "interrupted": "pump-stopped-alarming", "restart": "pump-stopped-powered-off"}


@dataclass(frozen=True)
class PumpEvent:
    """A Delivery Start, Stop or Complete of one delivery, at one log event."""

    kind: str  # start | stop | complete
    seq: int
    wall: datetime
    delivery: Delivery
    cumulative_ml: float  # for the delivery (a dose, or the basal program since programming)


def hl7_time(stamp: datetime) -> str:
    utc = stamp.astimezone(UTC)
    return utc.strftime("%Y%m%d%H%M%S.") + f"{utc.microsecond // 1000:03d}+0000"


def _nm(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _text(value: str) -> str:
    """Free text with the HL7 delimiters escaped."""
    out = value.replace("\\", "\\E\\")
    for char, esc in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        out = out.replace(char, esc)
    return out


def pump_events(ep: Episode) -> list[PumpEvent]:
    """Start and end events of every delivery that gave something, in log order."""
    events: list[tuple[int, int, PumpEvent]] = []
    program_ml: dict[int, float] = {}  # prescription seq -> basal + KVO mL so far
    for item in ep.deliveries:
        if item.delivered_ml == 0 and not item.rate_ml_h:
            continue
        if item.is_dose:
            before, after = 0.0, item.delivered_ml
        else:
            key = item.prescription.seq if item.prescription else -1
            before = program_ml.get(key, 0.0)
            after = program_ml[key] = before + item.delivered_ml
        events.append((item.start_seq, 1, PumpEvent("start", item.start_seq, item.start, item,
                                                     before)))
        if item.end is not None and item.end_seq is not None:
            kind = "complete" if item.ending == "complete" else "stop"
            # At a handover the old delivery ends before the new one starts (same seq).
            events.append((item.end_seq, 0, PumpEvent(kind, item.end_seq, item.end, item,
                                                      after)))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events]


def message_of(ep: Episode, event: PumpEvent, control_id: str, created: datetime) -> Message:
    """One validated ORU^R42 for one pump event."""
    item, rx = event.delivery, event.delivery.prescription
    m = Message("ORU_R01", version="2.6", validation_level=VALIDATION_LEVEL.STRICT)
    m.msh.msh_3 = f"PCA_PUMP^{ep.episode_id}^UUID"
    m.msh.msh_7 = hl7_time(created)
    m.msh.msh_9 = MESSAGE_TYPE
    m.msh.msh_10 = control_id
    m.msh.msh_11 = "P"
    m.msh.msh_15 = "AL"
    m.msh.msh_16 = "NE"
    m.msh.msh_18 = "UNICODE UTF-8"
    m.msh.msh_21 = PROFILE
    order = m.add_group("ORU_R01_PATIENT_RESULT").add_group("ORU_R01_ORDER_OBSERVATION")
    order.obr.obr_1 = "1"
    # The pump's own order number: the log and the patient episode (a new patient, a new one).
    order.obr.obr_3 = f"{ep.episode_id}:{item.patient_seq}^PCA_PUMP"
    order.obr.obr_4 = MDS
    order.obr.obr_7 = hl7_time(event.wall)
    flight = ep.in_flight
    if event.kind == "start" and item.end is None and flight is not None \
            and flight.source == item.source:
        # Still delivering at the end of the log: no Stop yet, so say what is not journaled.
        note = order.add_segment("NTE")
        note.nte_1 = "1"
        note.nte_3 = _text(in_flight_text(ep) + "; its Stop or Complete message will carry "
                           "its volume")

    n = 0

    def obx(kind: str, ident: str, sub_id: str, value: str = "", units: str = "",
            status: str = "R", when: datetime | None = None) -> None:
        nonlocal n
        n += 1
        seg = order.add_group("ORU_R01_OBSERVATION").obx
        seg.obx_1 = str(n)
        if kind:
            seg.obx_2 = kind
        seg.obx_3 = ident
        seg.obx_4 = sub_id
        if value:
            seg.obx_5 = value
        if units:
            seg.obx_6 = units
        seg.obx_11 = status
        if when is not None:
            seg.obx_14 = hl7_time(when)

    starting = event.kind == "start"
    status = "delivering" if starting else "transitioning" if item.continues else \
        "not-delivering"
    if starting and item.source == "kvo":
        status = "kvo"
    obx("", MDS, "1.0.0.0", status="X")
    obx("CWE", "68487^MDC_ATTR_EVT_COND^MDC", "1.0.0.1", EVENT_OF_KIND[event.kind],
        when=event.wall)
    obx("ST", "68488^MDC_ATTR_EVT_SOURCE^MDC", "1.0.0.2", "1.1.2.0")
    obx("", VMD, "1.1.0.0", status="X")
    obx("", "70067^MDC_DEV_PUMP_DELIVERY_INFO^MDC", "1.1.1.0", status="X")
    obx("CWE", "184519^MDC_PUMP_INFUSING_STATUS^MDC", "1.1.1.1",
        "^pump-status-infusing" if starting else "^pump-status-not-infusing")
    obx("NM", "158014^MDC_FLOW_FLUID_PUMP_CURRENT^MDC", "1.1.1.2",
        _nm(item.rate_ml_h or 0.0) if starting else "0", ML_H)
    obx("CWE", "158016^MDC_DEV_PUMP_ACTIVE_SOURCES^MDC", "1.1.1.3",
        f"^pump-source-info-{ACTIVE_SOURCE[item.source]}")
    # One fluid source (the syringe): dose parameters sit under it, named by the channel label.
    obx("", "70071^MDC_DEV_PUMP_INFUSATE_SOURCE_PRIMARY^MDC", "1.1.2.0", status="X")
    obx("CWE", "158005^MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS^MDC", "1.1.2.1",
        f"^pump-delivery-status-{status}")
    obx("CWE", "158008^MDC_DEV_PUMP_PROGRAM_DELIVERY_MODE^MDC", "1.1.2.2",
        "^pump-program-delivery-mode-" + DELIVERY_MODE.get(item.source, "continuous"))
    if status == "not-delivering":
        obx("CWE", "158006^MDC_DEV_PUMP_NOT_DELIVERING_REASON^MDC", "1.1.2.3",
            "^" + STOP_REASON.get(item.ending or "", "pump-stopped-not-specified"))
    obx("ST", "158012^MDC_DEV_PUMP_SOURCE_CHANNEL_LABEL^MDC", "1.1.2.4",
        _text(SOURCE_LABELS[item.source]))
    if item.rate_ml_h is not None:
        obx("NM", "157784^MDC_FLOW_FLUID_PUMP^MDC", "1.1.2.5", _nm(item.rate_ml_h), ML_H)
    if item.planned_ml is not None:
        obx("NM", "157884^MDC_VOL_FLUID_TBI^MDC", "1.1.2.6", _nm(item.planned_ml), ML)
    obx("NM", "157993^MDC_VOL_FLUID_DELIV_TOTAL^MDC", "1.1.2.7", _nm(event.cumulative_ml), ML)
    if item.planned_ml is not None:
        left = 0.0 if event.kind == "complete" else max(0.0, item.planned_ml - (
            0.0 if starting else item.delivered_ml))
        obx("NM", "157872^MDC_VOL_FLUID_TBI_REMAIN^MDC", "1.1.2.8", _nm(left), ML)
    if rx is not None:
        obx("ST", "184514^MDC_DRUG_NAME_LABEL^MDC", "1.1.2.9", _text(rx.drug))
        conc = rx.concentration_per_ml
        if conc is not None:
            obx("NM", "157760^MDC_CONC_DRUG^MDC", "1.1.2.10", _nm(conc),
                CONC_UNITS.get(rx.drug_unit, f"{rx.drug_unit}/mL^{rx.drug_unit}/mL^UCUM"))
        if rx.route in ROUTE_SNOMED:  # the route, coded in SNOMED CT
            code, display = ROUTE_SNOMED[rx.route]
            obx("CWE", ROUTE_OBX, "1.1.2.11", f"{code}^{display}^SCT")
    # SR-13: the breathing at this event, as the respiratory monitor last reported it.
    from pca.review.vitals import VITALS, obx_identifier, obx_units, values_at

    breathing = values_at(ep.vitals, event.wall)
    for i, key in enumerate(k for k in VITALS if k in breathing):
        obx("NM", obx_identifier(key), f"2.0.0.{i + 1}", str(breathing[key]), obx_units(key))
    m.validate()
    return m


def messages(ep: Episode, *, now: datetime | None = None) -> Iterator[str]:
    """ER7 text of every message, in event order."""
    created = now or datetime.now(UTC)
    last: tuple[int, int] = (-1, 0)
    for event in pump_events(ep):
        k = last[1] + 1 if last[0] == event.seq else 0
        last = (event.seq, k)
        yield message_of(ep, event, f"{ep.episode_id[:8]}-{event.seq}-{k}", created).to_er7()


def write_messages(rows: Iterable[Mapping[str, Any]], out: IO[str], *,
                   episode_id: str | None = None, now: datetime | None = None,
                   steps_per_ml: float | None = None) -> int:
    """Write one ORU^R42 per delivery event; returns how many."""
    n = 0
    ep = build_episode(rows, episode_id=episode_id, steps_per_ml=steps_per_ml)
    for text in messages(ep, now=now):
        out.write(text + "\r\n")
        n += 1
    return n


def split_messages(text: str) -> list[str]:
    """The messages of an export, each with CR segment separators (as a parser wants them),
    whether the file was read with universal newlines or not."""
    segments = [s for s in re.split(r"[\r\n]+", text) if s]
    out: list[list[str]] = []
    for seg in segments:
        if seg.startswith("MSH|") or not out:
            out.append([])
        out[-1].append(seg)
    return ["\r".join(msg) for msg in out]
