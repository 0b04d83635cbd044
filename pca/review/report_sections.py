"""The review report's sections, each built from the episode over the period reviewed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pca.review import charts
from pca.review.charts import Window
from pca.review.episode import (
    COUNTED_SOURCES,
    SOURCE_LABELS,
    SOURCES,
    Delivery,
    Episode,
    LogEvent,
    in_flight_text,
)
from pca.review.report_doc import (
    COMPLETION_TEXT,
    Section,
    Table,
    _value,
    amount,
    duration,
    plural,
    when,
)


# ---- sections ----------------------------------------------------------------------------
def _prescriptions(ep: Episode, window: Window) -> Section:
    shown = [p for p in ep.prescriptions if window.has(p.wall)]
    before = [p for p in ep.prescriptions if p.wall < window.start]
    if before:
        shown.insert(0, before[-1])
    rows = []
    for rx in shown:
        f, unit = rx.fields, rx.dose_unit
        limit = "none" if f.get("dose_limit") is None else \
            f"{_value(f['dose_limit'])} {unit} / {_value(f.get('dose_limit_window_h'))} h"
        changes = "first programmed" if rx is ep.prescriptions[0] else "; ".join(
            f"{c.field}: {_value(c.before)} → {_value(c.after)}" for c in rx.changes) or \
            "re-programmed, no value changed"
        if rx.wall < window.start:
            changes = f"in force at the start of the period ({changes})"
        rows.append([when(rx.wall), f"{rx.drug} {_value(f.get('concentration_per_ml'))} "
                     f"{rx.drug_unit}/mL", f"{_value(f.get('basal_rate_per_h'))} {unit}/h",
                     f"{_value(f.get('pca_dose'))} {unit}", f"{_value(f.get('lockout_min'))} min",
                     _value(f.get("max_pca_per_h")), limit,
                     f"{_value(f.get('loading_dose'))} {unit}",
                     f"{_value(f.get('clinician_bolus_max'))} {unit}",
                     _value(f.get("overrides")), changes])
    section = Section("Prescriptions and changes")
    if not rows:
        section.paragraphs.append("No prescription was active in this period.")
    else:
        section.tables.append(Table(["activated", "drug", "basal", "PCA dose", "lockout",
                                     "max/h", "dose limit", "loading", "clinician max",
                                     "soft-limit overrides", "changes"], rows))
    return section


def _totals(ep: Episode, window: Window) -> Section:
    inside = [e for e in ep.journal if window.has(e.wall)]
    rounded = dict.fromkeys(SOURCES, 0.0)
    steps = dict.fromkeys(SOURCES, 0)
    drug: dict[str, float | None] = dict.fromkeys(SOURCES, 0.0)
    for entry in inside:
        rounded[entry.source] += entry.volume_ml
        steps[entry.source] += entry.steps
        have = drug[entry.source]
        drug[entry.source] = None if have is None or entry.drug_amount is None else \
            have + entry.drug_amount
    # mL from whole motor steps, as the pump and the scenario summary count them.
    volume = {s: ep.to_ml(steps[s], rounded[s]) for s in SOURCES}
    unit = ep.drug_unit
    total_ml = sum(volume.values())
    known = [v for v in drug.values() if v is not None]
    total_drug = sum(known) if len(known) == len(drug) else None
    rows = [[SOURCE_LABELS[s], f"{volume[s]:.3f}", str(steps[s]), amount(drug[s], unit),
             "yes" if s in COUNTED_SOURCES else "no",
             f"{100 * volume[s] / total_ml:.0f} %" if total_ml else "—"] for s in SOURCES]
    rows.append(["total", f"{total_ml:.3f}", str(sum(steps.values())),
                 amount(total_drug, unit), "", "100 %"])
    requests = [r for r in ep.requests if window.has(r.wall)]
    denied = Counter(r.reason or "?" for r in requests if not r.granted)
    given = sum(r.granted for r in requests)
    section = Section("Totals by source", paragraphs=[
        f"PCA button: {plural(len(requests), 'request')}, {given} given, "
        f"{len(requests) - given} denied"
        + (" (" + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in denied.most_common()) + ")"
           if denied else "") + "."],
        tables=[Table(["source", "mL (motor)", "motor steps", f"drug ({unit})",
                       "counts toward the limit", "share"], rows)])
    if ep.in_flight is not None and ep.end is not None and window.has(ep.end):
        section.paragraphs.append(f"Not yet in these totals: the pump was "
                                  f"{in_flight_text(ep)}.")
    assumed = sum(e.steps for e in inside if e.assumed)
    if assumed:
        section.paragraphs.append(
            f"Upper bound: {plural(assumed, 'step')} ({ep.to_ml(assumed, 0.0):.6f} mL) were "
            "granted to the motor before a crash and are counted as given, though the motor "
            "may not have made them all (SR-5: a crash can only over-count).")
    if total_drug is None:
        section.paragraphs.append("Part of the volume was given with no prescription known in "
                                  "the log (it began before this log): its drug amount is not "
                                  "shown.")
    return section


def _doses(deliveries: Sequence[Delivery], window: Window) -> Section:
    doses = [d for d in deliveries if d.is_dose and window.has(d.start)]
    summary = Counter((d.source, COMPLETION_TEXT.get(d.ending, d.ending or "")) for d in doses)
    rows = []
    for d in doses:
        rx = d.prescription
        drug = amount(d.drug_amount, rx.drug_unit if rx else "", 3)
        rows.append([when(d.start), SOURCE_LABELS[d.source],
                     "—" if d.planned_ml is None else f"{d.planned_ml:.3f}",
                     f"{d.delivered_ml:.3f}" + (" (upper bound)" if d.upper_bound else ""),
                     drug, COMPLETION_TEXT.get(d.ending, d.ending or ""),
                     "—" if d.end is None else duration((d.end - d.start).total_seconds())])
    text = "; ".join(f"{n} × {SOURCE_LABELS[src]} {how}"
                     for (src, how), n in sorted(summary.items())) or "No doses in this period."
    return Section("Doses (PCA, clinician, loading)", paragraphs=[text], collapsed=True,
                   tables=[Table(["started", "source", "planned mL", "given mL", "drug",
                                  "completion", "duration"], rows)] if rows else [])


def _alarms(ep: Episode, window: Window) -> Section:
    spans = [a for a in ep.alarms if window.overlaps(a.raised, a.cleared)]
    rows = [[a.name.replace("_", " "), a.priority, when(a.raised), when(a.cleared),
             duration(((a.cleared or window.end) - a.raised).total_seconds())
             + ("" if a.cleared else " (still active)"),
             a.cleared_by or "—", str(len(a.silenced))] for a in spans]
    restarts = [r.wall for r in ep.restarts]
    section = Section("Alarms", chart=lambda into: charts.alarms_chart(
        ep.alarms, restarts, window, into=into))
    if rows:
        high = sum(a.priority == "high" for a in spans)
        section.paragraphs.append(f"{plural(len(rows), 'alarm')}, {high} of high priority.")
        section.tables.append(Table(["alarm", "priority", "raised", "cleared", "lasted",
                                     "cleared by", "silenced"], rows))
    else:
        section.paragraphs.append("No alarms in this period.")
    return section


def describe_action(event: LogEvent, ep: Episode) -> str:
    """A clinician's action as a reviewer reads it (the PIN never appears: it is not logged)."""
    f = event.fields
    if event.type == "auth":
        return {"ok": "PIN accepted", "failed": "wrong PIN", "locked_out":
                "PIN entry locked out (too many failures)"}.get(str(f.get("outcome")),
                                                                str(f.get("outcome"))) + (
            f" ({f['consecutive_failures']} failures in a row)"
            if f.get("consecutive_failures") else "")
    if event.type == "prescription_activated":
        rx = next((p for p in ep.prescriptions if p.seq == event.seq), None)
        return "programmed: " + (rx.describe() if rx else _value(f.get("drug")))
    if event.type == "prescription_rejected":
        return "programming rejected: " + "; ".join(map(str, f.get("errors", [])))
    if event.type == "action_rejected":
        return f"{str(f.get('action', '?')).replace('_', ' ')} refused: {f.get('reason', '')}"
    if event.type == "dose_started":
        return f"started a {SOURCE_LABELS.get(str(f.get('source')), '?')} of " \
               f"{_value(f.get('amount_ml'))} mL"
    if event.type == "syringe_changed":
        return f"new syringe, {_value(f.get('syringe_ml'))} mL"
    if event.type == "alarm_cleared":
        return f"cleared alarm {str(f.get('alarm', '?')).replace('_', ' ')}"
    if event.type == "new_patient":
        return "new patient: dose history reset"
    if event.type == "session_locked":
        return f"keypad locked ({f.get('reason', '')})"
    if event.type == "pin_changed":
        return f"PIN set for role {f.get('role', '?')}"
    return event.type.replace("_", " ") + (" " + ", ".join(
        f"{k}={_value(v)}" for k, v in f.items()) if f else "")


def _clinician(ep: Episode, window: Window) -> Section:
    rows = [[when(e.wall), e.actor, describe_action(e, ep)]
            for e in ep.clinician_actions if window.has(e.wall)]
    return Section("Clinician actions", paragraphs=[] if rows else
                   ["No clinician actions in this period."],
                   tables=[Table(["time", "actor", "action"], rows)] if rows else [])


def _restarts(ep: Episode, window: Window) -> Section:
    rows = []
    for r in ep.restarts:
        if window.has(r.wall):
            f = r.fields
            rows.append([when(r.wall), "restart", f"off for {duration(float(f.get('outage_s', 0)))}"
                         f" (as counted by the pump), was {f.get('previous_state', '?')}; "
                         f"dose interrupted: {_value(f.get('interrupted_dose_ml'))} mL"])
    for c in ep.clock_changes:
        if window.has(c.wall):
            rows.append([when(c.wall), "clock changed",
                         f"wall clock moved by {_value(c.fields.get('delta_s'))} s "
                         "(timestamps only: lockout and windows run on pump time)"])
    rows.sort(key=lambda r: r[0])
    return Section("Restarts and clock changes", paragraphs=[] if rows else
                   ["No restarts or clock changes in this period."],
                   tables=[Table(["time", "event", "detail"], rows)] if rows else [])


def _breathing(ep: Episode, window: Window) -> list[Section]:
    """SR-13: the monitor's trend beside the doses and the pauses (only where there is one)."""
    from pca.review import vitals

    pauses = [a for a in ep.alarms if a.name in vitals.MONITOR_ALARMS]
    if not ep.vitals and not pauses:
        return []
    rows = [[when(a.raised), a.name.replace("_", " "), a.priority,
             ", ".join(f"{vitals.CODES[k].label} {v}" for k, v in
                       vitals.values_at(ep.vitals, a.raised).items()) or "no reading",
             when(a.cleared) if a.cleared else "not cleared"] for a in pauses
            if window.overlaps(a.raised, a.cleared)]
    section = Section(
        "Breathing: the respiratory monitor (SR-13)", paragraphs=[
            "SpO2, EtCO2 and respiratory rate as the monitor reported them (logged whenever a "
            "value changed), with the programmed limits (dashed), the doses started (bottom) "
            "and the pauses the monitor caused (red bands): the trend to read after a pause."],
        chart=lambda into: vitals.vitals_chart(ep.vitals, ep.deliveries, ep.alarms,
                                               ep.prescriptions, window, into=into))
    if rows:
        section.tables.append(Table(["raised", "alarm", "priority", "values then",
                                     "cleared"], rows))
    return [section]
