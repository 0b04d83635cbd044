"""The review report rendered as an A4 landscape PDF by matplotlib alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure, FigureBase

from pca.review.report_doc import (
    A4_LANDSCAPE_IN,
    PDF_CHARS_PER_LINE,
    Report,
    Section,
    Table,
    integrity_text,
)

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
