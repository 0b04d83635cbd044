"""One set of numbers: the scenario summary, the report, the CSV/JSONL export, FHIR and HL7 of
the same log agree to the motor step, and each says what is in flight and not yet journaled.
The report says at the top what it leaves out; plurals, durations and PDF fonts."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hl7apy.parser import parse_message
from review_testkit import EXAMPLES, make_log, rows_of

from pca.app.export_formats import export
from pca.app.logtool import _write
from pca.app.report import run as report_run
from pca.app.scenario import load_scenario, run_scenario
from pca.review.hl7 import KIND_OF_EVENT_NAME, split_messages
from pca.review.report import duration, plural

EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.toml") if ".pca-" not in p.name)
SOURCES = ("basal", "pca", "loading", "clinician", "kvo", "intermittent")


def _journal_steps(rows: list[dict[str, Any]]) -> dict[str, int]:
    steps = dict.fromkeys(SOURCES, 0)
    for row in rows:
        if row["type"] == "delivery":
            steps[row["source"]] += row["steps"]
    return steps


def _report_totals(page: str) -> dict[str, tuple[str, int]]:
    """source label -> (mL text, steps) from the report's totals table."""
    table = page.split("<h2>Totals by source</h2>", 1)[1].split("</table>", 1)[0]
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table):
        cells = re.findall(r"<td>(.*?)</td>", row)
        if cells:
            out[cells[0]] = (cells[1], int(cells[2]))
    return out


def _hl7_volumes(text: str) -> tuple[float, list[str]]:
    """mL that the HL7 messages account for (closed deliveries), and the NTE notes."""
    total, notes = 0.0, []
    open_at: dict[str, float] = {}
    for er7 in split_messages(text):
        msg = parse_message(er7, find_groups=False)
        obx = {seg.obx_4.to_er7(): seg for seg in msg.children if seg.name == "OBX"}
        kind = KIND_OF_EVENT_NAME[obx["1.0.0.1"].obx_5.to_er7().split("^")[1]]
        label = obx["1.1.2.4"].obx_5.to_er7()
        cumulative = float(obx["1.1.2.7"].obx_5.to_er7())
        notes += [seg.nte_3.to_er7() for seg in msg.children if seg.name == "NTE"]
        if kind == "start":
            open_at[label] = cumulative
        else:  # a dose reports its own volume; a basal/KVO segment the program's so far
            total += cumulative - open_at.pop(label, 0.0)
    return total, notes


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_every_output_agrees_to_the_motor_step(example: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "log.db"
    result = run_scenario(load_scenario(EXAMPLES / f"{example}.toml"), db=db)
    rows = rows_of(db)
    per_ml = next(float(r["steps_per_ml"]) for r in rows if r["type"] == "pump_initialised")
    steps = _journal_steps(rows)
    assumed = sum(r["steps"] for r in rows if r["type"] == "delivery" and r.get("assumed"))
    summary = result.summary["delivered_ml"]
    for source in SOURCES:
        summary_steps = round(summary[source] * per_ml)
        # The summary counts what the motor made; the log the same, except that a crash
        # counts the grant open at it as given (an upper bound, SR-5).
        assert steps[source] - assumed <= summary_steps <= steps[source], source
        if not assumed:
            assert summary[source] == round(steps[source] / per_ml, 6), source
    if example != "restart_during_dose":
        assert not assumed
    total_steps = sum(steps.values())

    # the report: steps and mL per source, from the same journal
    out = tmp_path / "report.html"
    assert report_run(["--db", str(db), "--out", str(out)]) == 0
    capsys.readouterr()
    page = out.read_text(encoding="utf-8")
    totals = _report_totals(page)
    assert totals["total"] == (f"{total_steps / per_ml:.3f}", total_steps)
    assert totals["PCA dose"][1] == steps["pca"] and totals["basal infusion"][1] == steps["basal"]

    # CSV and JSONL exports carry the same steps
    for fmt in ("csv", "jsonl"):
        buf = io.StringIO()
        _write(iter(rows), fmt, buf)
        if fmt == "csv":
            exported = [r for r in csv.DictReader(io.StringIO(buf.getvalue()))
                        if r["type"] == "delivery"]
        else:
            exported = [json.loads(line) for line in buf.getvalue().splitlines()
                        if json.loads(line)["type"] == "delivery"]
        assert sum(int(r["steps"]) for r in exported) == total_steps, fmt

    # FHIR: the administrations add up to the journal (each rounded to 1 µL)
    fhir = io.StringIO()
    export("fhir", rows, fhir)
    admins = [e["resource"] for e in json.loads(fhir.getvalue())["entry"]
              if e["resource"]["resourceType"] == "MedicationAdministration"]
    fhir_ml = sum(a["dosage"]["dose"]["value"] for a in admins)
    assert fhir_ml == pytest.approx(total_steps / per_ml, abs=0.5 / per_ml + 1e-6 * len(admins))
    running = [a for a in admins if a["status"] == "in-progress"]

    # HL7: closed deliveries carry their volume; the one still running says it is not closed
    hl7 = io.StringIO()
    export("hl7", rows, hl7)
    hl7_ml, notes = _hl7_volumes(hl7.getvalue())
    open_ml = sum(a["dosage"]["dose"]["value"] for a in running)
    assert hl7_ml + open_ml == pytest.approx(fhir_ml, abs=1e-5)

    # in flight: the last motor record granted steps beyond it (the pump still delivers)
    last = [r for r in rows if r["type"] == "delivery"][-1]
    in_flight = f"at most {last['granted_steps']} steps"
    if last["granted_steps"]:
        assert in_flight in page and "Not yet in these totals" in page
        assert any(in_flight in n["text"] for a in running for n in a.get("note", []))
        assert any(in_flight in n for n in notes)
    else:
        assert "Not yet in these totals" not in page and not notes
    if assumed:
        assert f"Upper bound: {plural(assumed, 'step')}" in page


def test_postop_morphine_report_and_summary_agree_and_the_period_ends_at_the_end(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The case of the issue: 5.454 mL in the report against 5.461 in the summary."""
    db = tmp_path / "log.db"
    result = run_scenario(load_scenario(EXAMPLES / "postop_morphine.toml"), db=db)
    assert result.summary["delivered_ml"]["total"] == pytest.approx(5.460982)
    out = tmp_path / "report.html"
    assert report_run(["--db", str(db), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert _report_totals(page)["total"][0] == "5.461"
    # the scenario runs 2 h: the log (and so the report's period) reaches its end
    assert "to 2026-03-01 10:00:00 UTC (2 h 00 min)" in page
    assert rows_of(db)[-1]["t_s"] == 7200.0


SIM_LIKE = """
name = "alarms early, quiet later"
start = "2026-03-01T08:00:00Z"
clinician_pin = "270318"
end = "3h"

[prescription]
drug = "morphine"
concentration_per_ml = 1.0
dose_unit = "mg"
basal_rate_per_h = 0.5
pca_dose = 1.0
lockout_min = 10
max_pca_per_h = 4
dose_limit = 10.0
dose_limit_window_h = 4
""" + "\n".join(f'[[step]]\nat = "{at}"\ndo = "{do}"\n{extra}' for at, do, extra in [
    ("0s", "program", ""), ("5s", "start", ""), ("1m", "press", ""), ("3m", "press", ""),
    ("5m", "signal", 'name = "occlusion"\nvalue = true'), ("6m", "silence", ""),
    ("8m", "signal", 'name = "occlusion"\nvalue = false'), ("9m", "clear_alarm", ""),
    ("10m", "start", "")])


def test_the_default_report_covers_the_whole_episode_and_says_what_it_leaves_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = make_log(tmp_path, SIM_LIKE, "simlike")
    out = tmp_path / "r.html"
    assert report_run(["--db", str(db), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    first = re.findall(r'<p class="meta">(.*?)</p>', page)[0]
    assert first == "Leaves out: nothing. This report covers the whole log."
    assert "occlusion" in page and "No alarms in this period" not in page
    assert "lockout" in page  # the denied press at 3 min
    assert report_run(["--db", str(db), "--out", str(out), "--since", "2026-03-01T08:30:00Z",
                       "--until", "2026-03-01T10:00:00Z"]) == 0
    page = out.read_text(encoding="utf-8")
    first = re.findall(r'<p class="meta">(.*?)</p>', page)[0]
    rows = rows_of(db)
    before = sum(r["wall"] < "2026-03-01T08:30:00" for r in rows)
    after = sum(r["wall"] >= "2026-03-01T10:00:00" for r in rows)
    assert before > 0 and after > 0
    assert first == (f"Leaves out: {before} events of this episode before --since "
                     f"2026-03-01 08:30:00; {after} events of this episode from --until "
                     "2026-03-01 10:00:00 on.")


def test_a_later_patient_s_report_says_it_leaves_out_the_earlier_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = SIM_LIKE + "".join(f'\n[[step]]\nat = "{at}"\ndo = "{do}"\n' for at, do in [
        ("1h", "stop"), ("1h1m", "new_patient"), ("1h2m", "program"), ("1h3m", "start")])
    db = make_log(tmp_path, toml, "two")
    out = tmp_path / "r.html"
    assert report_run(["--db", str(db), "--out", str(out)]) == 0
    first = re.findall(r'<p class="meta">(.*?)</p>', out.read_text(encoding="utf-8"))[0]
    assert first.startswith("Leaves out: patient episode 1 (2026-03-01 08:00:00 to ")


def test_plurals_and_durations() -> None:
    assert plural(1, "alarm") == "1 alarm" and plural(2, "alarm") == "2 alarms"
    assert plural(0, "request") == "0 requests"
    assert duration(90) == "1 min 30 s"
    assert duration(45) == "45 s" and duration(120) == "2 min" and duration(600) == "10 min"
    assert duration(3 * 3600 + 5 * 60) == "3 h 05 min"


def test_one_alarm_and_a_90_second_dose_read_right(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "log.db"
    run_scenario(load_scenario(EXAMPLES / "postop_morphine.toml"), db=db)
    out = tmp_path / "r.html"
    assert report_run(["--db", str(db), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "1 alarm, 0 of high priority." in page and "1 alarms" not in page
    # a 1.5 mL dose at 60 mL/h takes 90 s
    assert "<td>1 min 30 s</td>" in page and "<td>2 min</td>" not in page


def _pdf_objects(pdf: bytes) -> list[bytes]:
    return re.findall(rb"\d+ 0 obj(.*?)endobj", pdf, re.S)


def test_pdf_fonts_are_embedded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "log.db"
    run_scenario(load_scenario(EXAMPLES / "postop_morphine.toml"), db=db)
    out = tmp_path / "r.pdf"
    assert report_run(["--db", str(db), "--out", str(out)]) == 0
    objects = _pdf_objects(out.read_bytes())
    fonts = [o for o in objects if re.search(rb"/Type\s*/Font\b", o)]
    descriptors = [o for o in objects if re.search(rb"/Type\s*/FontDescriptor\b", o)]
    assert fonts and descriptors
    for font in fonts:
        # a composite font's glyphs are in its descendant; every other one needs a descriptor
        assert re.search(rb"/Subtype\s*/(Type0|Type3)\b", font) or b"/FontDescriptor" in font, \
            font[:200]
    for descriptor in descriptors:
        assert re.search(rb"/FontFile[23]?\s", descriptor), descriptor[:200]
