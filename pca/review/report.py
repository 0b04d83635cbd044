"""The clinical review report of one episode: a self-contained HTML file, or a PDF.

What a reviewer asks, in order: can the log be trusted (verify, at the top), what was
prescribed and changed, what was given by source, what the patient asked for against what was
given per hour, the counted dose against the limit over time, the alarms, and what clinicians
did. Both formats render one document model, so they cannot disagree.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure, FigureBase

from pca.review import charts
from pca.review.charts import Window
from pca.review.episode import (
    COUNTED_SOURCES,
    SOURCE_LABELS,
    SOURCES,
    Delivery,
    Episode,
    LogEvent,
    build_episode,
    episode_id_of,
    in_flight_text,
    parse_wall,
    patient_episodes,
    steps_per_ml_of,
)
from pca.store.eventlog import export_rows
from pca.store.verify import Verdict, verify

A4_LANDSCAPE_IN = (11.69, 8.27)
PDF_CHARS_PER_LINE = 150
COMPLETION_TEXT = {
    "complete": "complete", "truncated": "cut at the dose limit", "stopped": "stopped",
    "interrupted": "stopped by an alarm", "restart": "interrupted by a restart", None: "running",
}


class ReportInputError(ValueError):
    """A request the log cannot answer (e.g. a patient episode it does not have)."""


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    chart: Callable[[FigureBase | None], FigureBase] | None = None
    tables: list[Table] = field(default_factory=list)
    collapsed: bool = False  # HTML: a long table folded under <details>


@dataclass
class Report:
    title: str
    meta: list[str]
    verdict: Verdict
    sections: list[Section]


def when(stamp: datetime | None) -> str:
    return "—" if stamp is None else stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float) -> str:
    """A span as a clinician reads it: seconds where they matter (a 90 s dose is 1 min 30 s)."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min" if secs == 0 else f"{minutes} min {secs:02d} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours / 24:.1f} days"


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 alarm', '2 alarms'."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def amount(value: float | None, unit: str, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f} {unit}"


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


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


def integrity_text(verdict: Verdict) -> str:
    if verdict.ok:
        return f"Log integrity: OK. The hash chain is intact over all {verdict.count} events."
    where = f"at seq {verdict.first_bad_seq}" if verdict.first_bad_seq else "in the log"
    return (f"LOG INTEGRITY CHECK FAILED {where}: {verdict.problem}. {verdict.count} events "
            "before it verify. Everything in this report comes from a log that was altered or "
            "damaged: check it against the pump before acting on it.")


def leaves_out(episodes: Sequence[Sequence[Mapping[str, Any]]], chosen: int,
               mine: Sequence[Mapping[str, Any]], since: datetime | None,
               until: datetime | None) -> str:
    """The report's first line: what of the log it does not cover, said plainly."""
    out = []
    for i, rows in enumerate(episodes, 1):
        if i != chosen and rows:
            out.append(f"patient episode {i} ({when(parse_wall(str(rows[0]['wall'])))} to "
                       f"{when(parse_wall(str(rows[-1]['wall'])))} UTC, "
                       f"{plural(len(rows), 'event')})")
    if since is not None:
        before = sum(parse_wall(str(r["wall"])) < since for r in mine)
        out.append(f"{plural(before, 'event')} of this episode before --since {when(since)}")
    if until is not None:
        after = sum(parse_wall(str(r["wall"])) >= until for r in mine)
        out.append(f"{plural(after, 'event')} of this episode from --until {when(until)} on")
    if not out:
        return "Leaves out: nothing. This report covers the whole log."
    return "Leaves out: " + "; ".join(out) + "."


def build_report(db: Path, since: datetime | None = None, until: datetime | None = None, *,
                 episode: int | None = None, now: datetime | None = None) -> Report:
    """Read one patient episode of the log (all of it: the state before --since matters) and
    lay out the report. By default the last episode: one report never mixes two patients."""
    verdict = verify(db)
    rows = list(export_rows(db))
    episodes = patient_episodes(rows) or [[]]
    if episode is not None and not 1 <= episode <= len(episodes):
        raise ReportInputError(f"--episode {episode}: the log holds {len(episodes)} patient "
                               f"episode{'s' if len(episodes) > 1 else ''}")
    chosen = episode or len(episodes)
    mine = episodes[chosen - 1]
    ep = build_episode(mine, episode_id=episode_id_of(rows[0] if rows else None),
                       steps_per_ml=steps_per_ml_of(rows))
    start = since or ep.start or (now or datetime.now(UTC))
    # Half-open window; one millisecond past the last event keeps that event inside.
    end = until or ((ep.end + timedelta(milliseconds=1)) if ep.end else start + timedelta(hours=1))
    if end <= start:
        end = start + timedelta(milliseconds=1)
    window = Window(start, end)
    rx = ep.prescriptions[-1] if ep.prescriptions else None
    drug = f"{rx.drug} {_value(rx.concentration_per_ml)} {rx.drug_unit}/mL" if rx else \
        "no prescription"
    meta = [f"Log: {db.name} (episode {ep.episode_id}); {ep.count} events, seq "
            f"{ep.first_seq}–{ep.last_seq}, {when(ep.start)} to {when(ep.end)} UTC.",
            f"Period reviewed: {when(window.start)} to {when(window.end)} UTC "
            f"({duration((window.end - window.start).total_seconds())}). Drug: {drug}.",
            f"Generated {when(now or datetime.now(UTC))} UTC. All times are UTC."]
    if len(episodes) > 1:
        starts = ", ".join(f"{i} from {when(parse_wall(str(e[0]['wall'])))}"
                           for i, e in enumerate(episodes, 1))
        meta.insert(0, f"This log holds {len(episodes)} patient episodes (a new patient starts "
                       f"one): {starts}. This report covers episode {chosen} only; "
                       "--episode N reports another.")
    meta.insert(0, leaves_out(episodes, chosen, mine, since, until))
    journal, deliveries = ep.journal, ep.deliveries
    sections = [
        _totals(ep, window),
        _prescriptions(ep, window),
        Section("PCA attempts and doses given per hour", paragraphs=[
            "Each bar is one hour: doses given at the bottom, denied requests stacked above by "
            "reason; the dashed line is the programmed maximum doses per hour."],
            chart=lambda into: charts.attempts_chart(ep.requests, ep.prescriptions, window,
                                                     into=into)),
        Section("Dose against the rolling limit", paragraphs=[
            "Top: the dose that counts toward the limit (basal + PCA + loading; clinician "
            "boluses and KVO do not count, SR-2) in the rolling window ending at each moment, "
            "against the programmed limit; grey bands are KVO after the limit was reached. "
            "Computed from the motor journal on the log's wall clock (the pump itself uses its "
            "monotonic clock). Bottom: what was given, accumulated by source."],
            chart=lambda into: charts.dose_chart(ep, journal, deliveries, window, into=into)),
        *_breathing(ep, window),
        _alarms(ep, window),
        _doses(deliveries, window),
        _clinician(ep, window),
        _restarts(ep, window),
        Section("Log integrity", paragraphs=[integrity_text(verdict)]),
    ]
    return Report("PCA episode review", meta, verdict, sections)


# ---- HTML ----------------------------------------------------------------------------------
CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1200px;color:#1b1b1b;line-height:1.4;padding:0 16px}
h1{margin-bottom:4px}h2{border-bottom:2px solid #1f4e79;padding-bottom:2px;margin-top:32px}
.meta{color:#444;margin:2px 0}
.integrity-failed{background:#c0392b;color:#fff;padding:16px 20px;font-size:1.25em;
border-radius:4px;margin:0 0 16px}
.integrity-ok{background:#e8f6ec;color:#1e6b34;padding:6px 12px;border-radius:4px;
margin:0 0 12px}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef2f7}tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;height:auto;border:1px solid #ddd}
details summary{cursor:pointer;color:#1f4e79}
footer{margin-top:40px;color:#666;font-size:.85em}
"""


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(report.title)}</title>", f"<style>{CSS}</style></head><body>"]
    cls = "integrity-ok" if report.verdict.ok else "integrity-failed"
    out.append(f'<div class="{cls}" id="integrity">'
               f"{html.escape(integrity_text(report.verdict))}</div>")
    out.append(f"<h1>{html.escape(report.title)}</h1>")
    out += [f'<p class="meta">{html.escape(line)}</p>' for line in report.meta]
    for section in report.sections:
        out.append(f"<section><h2>{html.escape(section.title)}</h2>")
        out += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
        if section.chart is not None:
            data = base64.b64encode(charts.png(section.chart(None))).decode("ascii")
            out.append(f'<img alt="{html.escape(section.title)}" '
                       f'src="data:image/png;base64,{data}">')
        for table in section.tables:
            rendered = _html_table(table)
            if section.collapsed:
                rendered = f"<details><summary>{plural(len(table.rows), 'row')}</summary>" \
                           f"{rendered}" \
                           "</details>"
            out.append(rendered)
        out.append("</section>")
    out.append("<footer>Volumes are what the motor made (the motor journal of the log), not "
               "what was planned. Drug amounts use the concentration of the prescription in "
               "force when each volume was made. Made by pca report; no network was used."
               "</footer></body></html>")
    return "\n".join(out)


def write_html(report: Report, path: Path) -> None:
    path.write_text(render_html(report), encoding="utf-8")


# ---- PDF -----------------------------------------------------------------------------------
# A line of the PDF flow: (kind, text); h heading, p paragraph, t table (monospace).
Line = tuple[str, str]
FONTS = {"h": {"fontsize": 11, "weight": "bold"}, "p": {"fontsize": 9.5},
         "t": {"fontsize": 7.2, "family": "monospace"}, "b": {"fontsize": 10.5, "weight": "bold",
                                                           "color": "#c0392b"}}
LINE_IN = 0.145
MARGIN_IN = 0.45
# Fonts are embedded (TrueType subsets of the DejaVu faces matplotlib ships), as PDF/A and
# patient-record systems require: a PDF that names an unembedded font renders with whatever
# the reader substitutes. Text stays text (type 42), so the report can be searched.
PDF_RC: dict[Any, Any] = {"pdf.fonttype": 42, "pdf.use14corefonts": False,
                          "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"],
                          "font.monospace": ["DejaVu Sans Mono"]}
# Drawn from the DejaVu faces, which hold every character the report writes; the table
# layout counts characters, so the few that are wide in some readers are spelled in ASCII.
PDF_SPELLING = str.maketrans({"→": "->", "≤": "<=", "≥": ">=", "−": "-"})


def _latin(text: str) -> str:
    return text.translate(PDF_SPELLING)


def _table_lines(table: Table) -> list[str]:
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    # The last column takes what is left of the line and wraps; the others stay narrow.
    widths = [min(w, 40) for w in widths[:-1]]
    widths.append(max(20, PDF_CHARS_PER_LINE - sum(w + 2 for w in widths)))

    def line(cells: Sequence[str]) -> list[str]:
        cols = [_wrap(c, w) for c, w in zip(cells, widths, strict=True)]
        height = max(len(c) for c in cols)
        return ["  ".join((c[i] if i < len(c) else "").ljust(w)
                          for c, w in zip(cols, widths, strict=True)).rstrip()
                for i in range(height)]

    out = line(table.columns)
    out.append("-" * min(PDF_CHARS_PER_LINE, sum(w + 2 for w in widths)))
    for row in table.rows:
        out += line(row)
    return out


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    cur = ""
    for word in text.split(" "):
        while len(word) > width:
            if cur:
                lines.append(cur)
                cur = ""
            lines.append(word[:width])
            word = word[width:]
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    lines.append(cur)
    return lines


def _draw(area: FigureBase, lines: Sequence[Line], height_in: float,
          top_in: float = MARGIN_IN / 2) -> None:
    """Lines from the top of `area` (a page or part of one) at a fixed pitch."""
    # Baselines at a fixed pitch: "top" alignment would follow each line's tallest glyph.
    y = 1.0 - (top_in + 0.75 * LINE_IN) / height_in
    for kind, text in lines:
        area.text(MARGIN_IN / A4_LANDSCAPE_IN[0], y, _latin(text), va="baseline",
                  **FONTS[kind])  # type: ignore[arg-type]
        y -= LINE_IN / height_in


def _section_lines(section: Section) -> tuple[list[Line], list[Line]]:
    """(heading and paragraphs, table lines) of a section."""
    head: list[Line] = [("h", section.title)]
    for para in section.paragraphs:
        head += [("p", line) for line in _wrap(para, 150)]
    body: list[Line] = [("t", line) for table in section.tables for line in _table_lines(table)]
    return head, body


class _Pdf:
    """Pages of flowing text, and pages with a chart between its text and its table."""

    def __init__(self, pdf: PdfPages, report: Report) -> None:
        self.pdf: Any = pdf  # PdfPages.savefig has no type hints
        self.report = report
        self.page_no = 0
        self.pending: list[Line] = []
        self.lines_per_page = int((A4_LANDSCAPE_IN[1] - 2 * MARGIN_IN) / LINE_IN) - 1

    def _page(self) -> Figure:
        self.page_no += 1
        fig = Figure(figsize=A4_LANDSCAPE_IN)
        verdict = self.report.verdict
        state = "log integrity OK" if verdict.ok else \
            f"LOG INTEGRITY CHECK FAILED at seq {verdict.first_bad_seq}"
        fig.text(0.5, MARGIN_IN / 3 / A4_LANDSCAPE_IN[1], f"{self.report.title} - page "
                 f"{self.page_no} - {state}", ha="center", fontsize=7,
                 color="#555555" if verdict.ok else "#c0392b")
        return fig

    def flow(self, lines: Sequence[Line], *, force: bool = False) -> None:
        self.pending += lines
        while len(self.pending) >= self.lines_per_page or (force and self.pending):
            page = self._page()
            chunk = self.pending[:self.lines_per_page]
            self.pending = self.pending[self.lines_per_page:]
            _draw(page, chunk, A4_LANDSCAPE_IN[1])
            self.pdf.savefig(page)

    def chart_page(self, section: Section) -> None:
        assert section.chart is not None
        self.flow([], force=True)
        head, body = _section_lines(section)
        below, rest = body[:22], body[22:]
        page = self._page()
        head_h = MARGIN_IN / 2 + (len(head) + 0.4) * LINE_IN
        body_h = (len(below) + 1) * LINE_IN
        foot_h = MARGIN_IN
        chart_h = A4_LANDSCAPE_IN[1] - head_h - body_h - foot_h
        page.set_layout_engine("constrained")
        parts: Any = page.subfigures(4, 1, height_ratios=[head_h, chart_h, body_h, foot_h])
        section.chart(parts[1])
        # Text goes on the page itself: the layout engine pads sub-figures, not the page.
        page_h = A4_LANDSCAPE_IN[1]
        _draw(page, head, page_h)
        _draw(page, below, page_h, top_in=page_h - foot_h - body_h + LINE_IN / 2)
        self.pdf.savefig(page)
        self.flow(rest)


def write_pdf(report: Report, path: Path) -> None:
    """Text pages and chart pages, A4 landscape, made by matplotlib alone (no browser)."""
    with matplotlib.rc_context(PDF_RC):
        _write_pdf(report, path)


def _write_pdf(report: Report, path: Path) -> None:
    with PdfPages(path, metadata={"Title": report.title, "Creator": "pca report",
                                  "CreationDate": None}) as pdf:
        out = _Pdf(pdf, report)
        first: list[Line] = []
        if not report.verdict.ok:
            first += [("b", line) for line in _wrap(integrity_text(report.verdict), 120)]
            first.append(("p", ""))
        first += [("h", report.title)] + [("p", line) for line in report.meta] + [("p", "")]
        out.flow(first)
        for section in report.sections:
            if section.chart is not None:
                out.chart_page(section)
            else:
                head, body = _section_lines(section)
                out.flow([*head, *body, ("p", "")])
        out.flow([], force=True)


def write(report: Report, path: Path) -> None:
    """HTML or PDF by the file's suffix."""
    if path.suffix.lower() == ".pdf":
        write_pdf(report, path)
    else:
        write_html(report, path)
