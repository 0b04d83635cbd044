"""The respiratory monitor in review (SR-13): the vitals trend beside doses and pauses, and the
same values as FHIR Observations (LOINC) and HL7 OBX segments.

A `vitals` event is logged when a reading changes a value; it carries every value the monitor
measured in that reading. Between two events the values stood still, so the trend is a step
line. Codes (LOINC, as the FHIR vital-signs profiles and US Core use them):

- SpO2: 2708-6 "Oxygen saturation in Arterial blood" (the FHIR vital-signs code) with
  59408-5 "... by Pulse oximetry" and IEEE 11073 150456 MDC_PULS_OXIM_SAT_O2; unit %.
- EtCO2: 19889-5 "Carbon dioxide [Partial pressure] in Exhaled gas --at end expiration"; mm[Hg].
- Respiratory rate: 9279-1 "Respiratory rate"; /min.
- Pulse: 8867-4 "Heart rate"; /min.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from matplotlib.figure import FigureBase
from matplotlib.patches import Patch

from pca.review.episode import (
    DOSE_SOURCES,
    AlarmSpan,
    Delivery,
    Prescription,
    VitalsPoint,
    parse_wall,
)

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
VITALS = ("spo2", "etco2_mmhg", "rr", "pulse")
MONITOR_ALARMS = ("spo2_low", "etco2_high", "rr_low", "monitor_lost")


@dataclass(frozen=True)
class Code:
    loinc: str
    display: str
    ucum: str
    unit: str
    label: str
    extra: tuple[tuple[str, str, str], ...] = ()  # (system, code, display)


CODES: dict[str, Code] = {
    "spo2": Code("2708-6", "Oxygen saturation in Arterial blood", "%", "%", "SpO2",
                 ((LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
                  (MDC, "150456", "MDC_PULS_OXIM_SAT_O2"))),
    "etco2_mmhg": Code("19889-5", "Carbon dioxide [Partial pressure] in Exhaled gas --at end "
                       "expiration", "mm[Hg]", "mmHg", "EtCO2"),
    "rr": Code("9279-1", "Respiratory rate", "/min", "breaths/minute", "RR"),
    "pulse": Code("8867-4", "Heart rate", "/min", "beats/minute", "pulse"),
}
LIMIT_OF = {"spo2": "spo2_min", "etco2_mmhg": "etco2_max_mmhg", "rr": "rr_min"}


def vitals_points(rows: Iterable[Mapping[str, Any]]) -> list[VitalsPoint]:
    return [VitalsPoint(int(r["seq"]), parse_wall(str(r["wall"])),
                        {k: int(r[k]) for k in VITALS if r.get(k) is not None})
            for r in rows if r["type"] == "vitals"]


def changes(points: Sequence[VitalsPoint]) -> Iterable[tuple[VitalsPoint, str, int]]:
    """(point, value name, value) for each value that is new or different at that point."""
    last: dict[str, int] = {}
    for point in points:
        for key in VITALS:
            value = point.values.get(key)
            if value is not None and last.get(key) != value:
                last[key] = value
                yield point, key, value


def values_at(points: Sequence[VitalsPoint], when: datetime) -> dict[str, int]:
    """The last value of each vital logged at or before `when`."""
    out: dict[str, int] = {}
    for point in points:
        if point.wall > when:
            break
        out.update(point.values)
    return out


# ---- the chart -----------------------------------------------------------------------------
def vitals_chart(points: Sequence[VitalsPoint], deliveries: Sequence[Delivery],
                 alarms: Sequence[AlarmSpan], prescriptions: Sequence[Prescription],
                 window: Any, *, into: FigureBase | None = None) -> FigureBase:
    """SpO2, EtCO2 and respiratory rate as logged, their limits, the doses (ticks) and the
    monitor pauses (red bands) on one time axis: what led up to a pause, and what followed."""
    from pca.review import charts

    fig = charts._figure(6.4, into)
    axes = fig.subplots(3, 1, sharex=True, height_ratios=[3, 3, 1.4])
    panels = ((axes[0], ("spo2",), "SpO2 %"), (axes[1], ("etco2_mmhg", "rr"),
                                               "EtCO2 mmHg, RR /min"))
    colours = {"spo2": "#1f4e79", "etco2_mmhg": "#8e44ad", "rr": "#16a085"}
    inside = [p for p in points if window.has(p.wall)]
    before = [p for p in points if p.wall < window.start]
    start_values = values_at(before, window.start) if before else {}
    for ax, keys, title in panels:
        ax.set_title(f"Respiratory monitor: {title} (as logged on change)")
        drawn = False
        for key in keys:
            series = [(window.start, start_values[key])] if key in start_values else []
            series += [(p.wall, p.values[key]) for p in inside if key in p.values]
            if not series:
                continue
            series.append((window.end, series[-1][1]))
            ax.step([charts._d(t) for t, _ in series], [v for _, v in series], where="post",
                    color=colours[key], linewidth=1.2, label=CODES[key].label)
            drawn = True
            limits = [(rx.wall, (rx.fields.get("monitor") or {}).get(LIMIT_OF[key]))
                      for rx in prescriptions]
            charts._step_line(ax, limits, window, label=f"{CODES[key].label} limit")
        if not drawn:
            charts._empty(ax, "no readings of these values in this period")
        for span in alarms:
            if span.name in MONITOR_ALARMS and window.overlaps(span.raised, span.cleared):
                ax.axvspan(charts._d(max(span.raised, window.start)),
                           charts._d(min(span.cleared or window.end, window.end)),
                           color="#c0392b", alpha=0.18, linewidth=0)
        handles, labels = ax.get_legend_handles_labels()
        if any(s.name in MONITOR_ALARMS for s in alarms):
            handles.append(Patch(color="#c0392b", alpha=0.18))
            labels.append("paused by the monitor (SR-13)")
        if handles:
            ax.legend(handles, labels, loc="lower left", fontsize="small", ncols=4)
        charts._time_axis(ax, window, label=False)
    ax = axes[2]
    ax.set_title("Doses started (PCA, clinician, loading)")
    for lane, source in enumerate(DOSE_SOURCES):
        times = [charts._d(d.start) for d in deliveries
                 if d.source == source and window.has(d.start)]
        ax.plot(times, [lane] * len(times), linestyle="none", marker="|", markersize=12,
                color=charts.SOURCE_COLOURS[source])
    ax.set_yticks(range(len(DOSE_SOURCES)), list(DOSE_SOURCES))
    ax.set_ylim(-0.7, len(DOSE_SOURCES) - 0.3)
    charts._time_axis(ax, window)
    return fig


# ---- FHIR ----------------------------------------------------------------------------------
def observation(point: VitalsPoint, key: str, value: int, *, identifier: Mapping[str, str],
                subject: Mapping[str, Any], device_url: str, when: str) -> dict[str, Any]:
    """One vital-signs Observation (FHIR R4) for one logged value."""
    code = CODES[key]
    coding = [{"system": LOINC, "code": code.loinc, "display": code.display}]
    coding += [{"system": s, "code": c, "display": d} for s, c, d in code.extra]
    return {
        "resourceType": "Observation",
        "identifier": [dict(identifier)],
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs", "display": "Vital Signs"}]}],
        "code": {"coding": coding, "text": code.label},
        "subject": dict(subject),
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": code.unit, "system": UCUM,
                          "code": code.ucum},
        "device": {"reference": device_url},
    }


# ---- HL7 v2 --------------------------------------------------------------------------------
def obx_identifier(key: str) -> str:
    """OBX-3 (CWE): LOINC, with the MDC term as the alternate where one is given."""
    code = CODES[key]
    ident = f"{code.loinc}^{code.display}^LN"
    mdc = [e for e in code.extra if e[0] == MDC]
    if mdc:
        ident += f"^{mdc[0][1]}^{mdc[0][2]}^MDC"
    return ident


def obx_units(key: str) -> str:
    code = CODES[key]
    return f"{code.ucum}^{code.unit}^UCUM"
