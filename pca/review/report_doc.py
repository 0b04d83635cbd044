"""The review report's document model (tables, sections, the report) and shared wording."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from matplotlib.figure import FigureBase

from pca.store.verify import Verdict

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


def integrity_text(verdict: Verdict) -> str:
    if verdict.ok:
        return f"Log integrity: OK. The hash chain is intact over all {verdict.count} events."
    where = f"at seq {verdict.first_bad_seq}" if verdict.first_bad_seq else "in the log"
    return (f"LOG INTEGRITY CHECK FAILED {where}: {verdict.problem}. {verdict.count} events "
            "before it verify. Everything in this report comes from a log that was altered or "
            "damaged: check it against the pump before acting on it.")
