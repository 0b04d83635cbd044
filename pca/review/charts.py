"""The report's charts, drawn with matplotlib's object API on the Agg canvas (no display, no
pyplot state): PCA attempts against doses given per hour, the rolling-window dose against the
limit, and the alarms timeline."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import matplotlib.dates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, FigureBase
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from pca.review.episode import (
    COUNTED_SOURCES,
    SOURCE_LABELS,
    SOURCES,
    AlarmSpan,
    Delivery,
    Episode,
    JournalEntry,
    PcaRequest,
    Prescription,
)

SOURCE_COLOURS = {"basal": "#7fb3d5", "pca": "#1f4e79", "loading": "#8e44ad",
                  "clinician": "#27ae60", "kvo": "#b0b0b0", "intermittent": "#e67e22"}
DENIAL_COLOURS = {"lockout": "#f0b27a", "dose_limit": "#e74c3c", "max_per_hour": "#c0392b",
                  "alarm": "#7f8c8d", "in_progress": "#bdc3c7", "not_running": "#95a5a6"}
PRIORITY_COLOURS = {"high": "#c0392b", "medium": "#e67e22", "low": "#f4d03f"}
WIDTH_IN, HEIGHT_IN = 11.0, 4.2
# matplotlib.dates has no type hints; one Any-typed handle keeps the untyped calls in one place.
mdates: Any = matplotlib.dates


@dataclass(frozen=True)
class Window:
    """The reviewed stretch of time, half-open [start, end)."""

    start: datetime
    end: datetime

    def has(self, when: datetime) -> bool:
        return self.start <= when < self.end

    def overlaps(self, start: datetime, end: datetime | None) -> bool:
        return start < self.end and (end is None or end >= self.start)


def png(fig: FigureBase, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    root = fig.figure
    assert isinstance(root, Figure)
    root.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _figure(height_in: float, into: FigureBase | None) -> FigureBase:
    """Draw into `into` (a page's sub-figure, for the PDF) or into a new figure of our own."""
    if into is not None:
        return into
    fig = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
    # Agg, attached to this figure only: headless, and no global backend switch for others.
    FigureCanvasAgg(fig)
    return fig


def _d(when: datetime) -> float:
    """Every x value is a matplotlib date number, so no call depends on unit conversion."""
    return float(mdates.date2num(when))


def _time_axis(ax: object, window: Window, *, label: bool = True) -> None:
    ax.xaxis_date()  # type: ignore[attr-defined]
    if label:
        ax.set_xlabel("time (UTC)")  # type: ignore[attr-defined]
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)  # type: ignore[attr-defined]
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[attr-defined]
    ax.set_xlim(_d(window.start), _d(window.end))  # type: ignore[attr-defined]
    ax.grid(True, axis="x", alpha=0.25)  # type: ignore[attr-defined]


def _empty(ax: object, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center",  # type: ignore[attr-defined]
            transform=ax.transAxes, color="#555555")  # type: ignore[attr-defined]


def attempts_chart(requests: Sequence[PcaRequest], prescriptions: Sequence[Prescription],
                   window: Window, *, into: FigureBase | None = None) -> FigureBase:
    """PCA button presses per hour, split into doses given and denials by reason."""
    fig = _figure(HEIGHT_IN, into)
    ax = fig.add_subplot()
    ax.set_title("PCA attempts and doses given, per hour")
    first = window.start.replace(minute=0, second=0, microsecond=0)
    hours = max(1, int(np.ceil((window.end - first).total_seconds() / 3600)))
    edges = [first + timedelta(hours=h) for h in range(hours + 1)]
    index = {"granted": np.zeros(hours)}
    for req in requests:
        if not window.has(req.wall):
            continue
        slot = int((req.wall - first).total_seconds() // 3600)
        key = "granted" if req.granted else (req.reason or "other")
        index.setdefault(key, np.zeros(hours))[slot] += 1
    x = mdates.date2num(edges[:-1])
    width = (mdates.date2num(edges[1]) - x[0]) * 0.9 if hours else 1 / 24
    bottom = np.zeros(hours)
    ax.bar(x, index["granted"], width, align="edge", color=SOURCE_COLOURS["pca"],
           label=f"given ({int(index['granted'].sum())})")
    bottom += index["granted"]
    for reason, counts in index.items():
        if reason == "granted":
            continue
        ax.bar(x, counts, width, bottom=bottom, align="edge",
               color=DENIAL_COLOURS.get(reason, "#999999"),
               label=f"denied: {reason.replace('_', ' ')} ({int(counts.sum())})")
        bottom += counts
    limits = [(p.wall, p.fields.get("max_pca_per_h")) for p in prescriptions]
    if any(v is not None for _, v in limits):
        _step_line(ax, limits, window, label="max doses per hour (SR-3)")
    if not requests or bottom.sum() == 0:
        _empty(ax, "no PCA requests in this period")
    ax.set_ylabel("requests per hour")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _time_axis(ax, window)
    ax.legend(loc="upper right", fontsize="small", ncols=2)
    return fig


def _step_line(ax: object, points: Sequence[tuple[datetime, object]], window: Window,
               label: str) -> None:
    """A programmed value over time (it changes only when a prescription is activated)."""
    xs: list[float] = []
    ys: list[float] = []
    for i, (when, value) in enumerate(points):
        until = points[i + 1][0] if i + 1 < len(points) else window.end
        if value is None or until <= window.start or when >= window.end:
            continue
        level = float(value)  # type: ignore[arg-type]
        # nan after each stretch: no line joins two prescriptions' values.
        xs += [_d(max(when, window.start)), _d(min(until, window.end)), _d(min(until, window.end))]
        ys += [level, level, np.nan]
    if xs:
        ax.plot(xs, ys, color="#c0392b", linestyle="--", linewidth=1.5,  # type: ignore[attr-defined]
                label=label)


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


def rolling_dose(journal: Sequence[JournalEntry], window: Window,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The SR-2 counted dose (basal + PCA + loading, drug units) in the rolling window
    (now - W, now] at each moment, as (times as date numbers, amounts): exact at every change.

    Integer milliseconds, so a record leaves its window at exactly t + W, not a rounding
    error before or after (which would draw a false spike up to the limit)."""
    counted = [e for e in journal if e.source in COUNTED_SOURCES and e.drug_amount is not None
               and e.window_h is not None]
    if not counted:
        return np.array([]), np.array([])
    t = np.array([_ms(e.wall) for e in counted], dtype=np.int64)
    amount = np.array([e.drug_amount for e in counted], dtype=float)
    span = np.array([round(float(e.window_h or 0) * 3_600_000) for e in counted], dtype=np.int64)
    cum = np.concatenate([[0.0], np.cumsum(amount)])
    lo, hi = _ms(window.start), _ms(window.end)
    # The sum changes when a record enters and again when it leaves its window.
    points = np.unique(np.concatenate([t, t + span, np.linspace(lo, hi, 400).astype(np.int64)]))
    points = points[(points >= lo) & (points <= hi)]
    # Window length in force at each point: that of the latest record at or before it.
    last = np.searchsorted(t, points, side="right") - 1
    length = span[np.clip(last, 0, len(span) - 1)]
    upto = np.searchsorted(t, points, side="right")           # records with t <= p
    gone = np.searchsorted(t, points - length, side="right")  # records with t <= p - W
    days = points / 86_400_000.0 + _d(datetime.fromtimestamp(0, UTC))
    return days, cum[upto] - cum[gone]


def dose_chart(ep: Episode, journal: Sequence[JournalEntry], deliveries: Sequence[Delivery],
               window: Window, *, into: FigureBase | None = None) -> FigureBase:
    """Top: the rolling-window dose against the programmed limit. Bottom: what was given, by
    source, accumulated over the period."""
    fig = _figure(6.4, into)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    unit = ep.drug_unit
    top.set_title(f"Dose counted toward the limit (basal + PCA + loading) in the rolling "
                  f"window, {unit}")
    x, y = rolling_dose(journal, window)
    if len(x):
        top.step(x, y, where="post", color=SOURCE_COLOURS["pca"], linewidth=1.2,
                 label="dose in the window")
    else:
        _empty(top, "no delivery with a known prescription in this period")
    limits = [(p.wall, None if p.dose_limit_ml is None or p.concentration_per_ml is None
               else p.dose_limit_ml * p.concentration_per_ml) for p in ep.prescriptions]
    _step_line(top, limits, window, label="dose limit (SR-2)")
    for item in deliveries:
        if item.source == "kvo" and window.overlaps(item.start, item.end):
            top.axvspan(_d(max(item.start, window.start)),
                        _d(min(item.end or window.end, window.end)),
                        color=SOURCE_COLOURS["kvo"], alpha=0.35, linewidth=0)
    top.set_ylabel(f"{unit} in window")
    top.set_ylim(bottom=0)
    handles, labels = top.get_legend_handles_labels()
    if any(d.source == "kvo" for d in deliveries):
        handles.append(Patch(color=SOURCE_COLOURS["kvo"], alpha=0.35))
        labels.append("KVO (limit reached)")
    if handles:
        top.legend(handles, labels, loc="lower right", fontsize="small")
    _time_axis(top, window, label=False)

    bottom.set_title(f"Given since the start of the period, by source, {unit}")
    inside = [e for e in journal if window.has(e.wall) and e.drug_amount is not None]
    if inside:
        times = [window.start] + [e.wall for e in inside] + [window.end]
        amounts = np.array([e.drug_amount or 0.0 for e in inside])
        sources = np.array([e.source for e in inside])
        stacks = []
        for source in SOURCES:
            series = np.concatenate([[0.0], np.cumsum(np.where(sources == source, amounts, 0))])
            stacks.append(np.append(series, series[-1]))
        bottom.stackplot(mdates.date2num(times), *stacks, step="post",
                         colors=[SOURCE_COLOURS[s] for s in SOURCES],
                         labels=[SOURCE_LABELS[s] for s in SOURCES])
        bottom.legend(loc="upper left", fontsize="small", ncols=3)
    else:
        _empty(bottom, "nothing given in this period")
    bottom.set_ylabel(unit)
    _time_axis(bottom, window)
    return fig


def alarms_chart(alarms: Sequence[AlarmSpan], restarts: Sequence[datetime],
                 window: Window, *, into: FigureBase | None = None) -> FigureBase:
    """One lane per alarm: bars from raised to cleared, coloured by priority."""
    names = sorted({a.name for a in alarms if window.overlaps(a.raised, a.cleared)},
                   key=lambda n: min(a.raised for a in alarms if a.name == n))
    lanes = names + (["pump restart"] if restarts else [])
    fig = _figure(max(2.2, 1.2 + 0.45 * len(lanes)), into)
    ax = fig.add_subplot()
    ax.set_title("Alarms (bar: raised to cleared; x: silenced) and restarts")
    start, end = _d(window.start), _d(window.end)
    for lane, name in enumerate(names):
        for span in (a for a in alarms if a.name == name):
            if not window.overlaps(span.raised, span.cleared):
                continue
            left = max(_d(span.raised), start)
            right = min(_d(span.cleared) if span.cleared else end, end)
            # A short alarm still shows: at least 0.3 % of the axis wide.
            ax.broken_barh([(left, max(right - left, (end - start) * 0.003))], (lane - 0.35, 0.7),
                           color=PRIORITY_COLOURS.get(span.priority, "#888888"))
            for when in span.silenced:
                if window.has(when):
                    ax.plot(_d(when), lane, marker="x", color="black", markersize=6)
    if restarts:
        lane = len(names)
        for when in restarts:
            if window.has(when):
                ax.plot(_d(when), lane, marker="v", color="#2c3e50", markersize=9)
    if not lanes:
        _empty(ax, "no alarms and no restarts in this period")
    ax.set_yticks(range(len(lanes)), [n.replace("_", " ") for n in lanes])
    ax.set_ylim(-0.7, max(len(lanes), 1) - 0.3)
    ax.invert_yaxis()
    _time_axis(ax, window)
    ax.legend([Patch(color=c) for c in PRIORITY_COLOURS.values()],
              [f"{p} priority" for p in PRIORITY_COLOURS], loc="lower right", fontsize="small",
              ncols=3)
    return fig
