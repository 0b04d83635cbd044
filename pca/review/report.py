"""The clinical review report of one episode: a self-contained HTML file, or a PDF.

What a reviewer asks, in order: can the log be trusted (verify, at the top), what was
prescribed and changed, what was given by source, what the patient asked for against what was
given per hour, the counted dose against the limit over time, the alarms, and what clinicians
did. Both formats render one document model, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pca.review import charts
from pca.review.charts import Window
from pca.review.episode import (
    build_episode,
    episode_id_of,
    parse_wall,
    patient_episodes,
    steps_per_ml_of,
)
from pca.review.report_doc import (
    Report,
    ReportInputError,
    Section,
    Table,
    _value,
    amount,
    duration,
    integrity_text,
    plural,
    when,
)
from pca.review.report_html import render_html, write_html
from pca.review.report_pdf import write_pdf
from pca.review.report_sections import (
    _alarms,
    _breathing,
    _clinician,
    _doses,
    _prescriptions,
    _restarts,
    _totals,
    describe_action,
)
from pca.store.eventlog import export_rows
from pca.store.verify import verify

# The names callers and tests have always imported from here; the parts live beside it.
__all__ = ["Report", "ReportInputError", "Section", "Table", "_prescriptions", "amount",
           "build_report", "describe_action", "duration", "integrity_text", "leaves_out",
           "plural", "render_html", "when", "write", "write_html", "write_pdf"]


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


def write(report: Report, path: Path) -> None:
    """HTML or PDF by the file's suffix."""
    if path.suffix.lower() == ".pdf":
        write_pdf(report, path)
    else:
        write_html(report, path)
