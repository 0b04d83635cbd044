"""The review report rendered as one self-contained HTML file."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from pca.review import charts
from pca.review.report_doc import (
    Report,
    Table,
    integrity_text,
    plural,
)

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
