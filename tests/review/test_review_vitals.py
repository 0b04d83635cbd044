"""SR-13 in review: the vitals trend in the report, FHIR Observations (LOINC), HL7 OBX."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir_r4 import R4_CODES, R4_ELEMENTS, codes_of, elements_of
from hl7apy.parser import parse_message
from review_testkit import example_log, make_log, rows_of

from pca.app.export_formats import export
from pca.review import hl7 as review_hl7
from pca.review.episode import build_episode
from pca.review.report import build_report, render_html, write_pdf
from pca.review.vitals import changes

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
SCENARIO = """
name = "monitored PCA with a pause"
start = "2026-03-01T08:00:00Z"
clinician_pin = "482916"
end = "1h"
[prescription]
drug = "morphine"
concentration_per_ml = 1.0
dose_unit = "mg"
basal_rate_per_h = 0.5
pca_dose = 1.0
lockout_min = 10
dose_limit = 6.0
[monitor]
spo2_min = 90
rr_min = 8
delay_s = 30
[[step]]
at = "0s"
do = "vitals"
spo2 = 97
etco2_mmhg = 38
rr = 14
pulse = 72
[[step]]
at = "0s"
do = "program"
[[step]]
at = "5s"
do = "start"
[[step]]
at = "2m"
do = "press"
[[step]]
at = "15m"
do = "vitals"
spo2 = 86
rr = 6
[[step]]
at = "16m"
do = "press"
[[step]]
at = "25m"
do = "vitals"
spo2 = 95
rr = 12
[[step]]
at = "26m"
do = "clear_alarm"
[[step]]
at = "26m5s"
do = "start"
"""


@pytest.fixture(scope="module")
def monitored_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_log(tmp_path_factory.mktemp("vitals"), SCENARIO, "monitored")


def test_sr13_the_episode_keeps_the_vitals_and_the_pause(monitored_db: Path) -> None:
    ep = build_episode(rows_of(monitored_db))
    assert [p.values.get("spo2") for p in ep.vitals] == [97, 86, 95]
    assert {a.name for a in ep.alarms} >= {"spo2_low", "rr_low"}


def test_sr13_report_draws_the_breathing_beside_doses_and_pauses(monitored_db: Path,
                                                                  tmp_path: Path) -> None:
    report = build_report(monitored_db, now=NOW)
    [section] = [s for s in report.sections if s.title.startswith("Breathing")]
    assert section.chart is not None
    fig = section.chart(None)
    titles = [ax.get_title() for ax in fig.axes]
    assert any("SpO2" in t for t in titles) and any("Doses started" in t for t in titles)
    spo2_ax = next(ax for ax in fig.axes if "SpO2 %" in ax.get_title())
    drawn = {round(y) for line in spo2_ax.get_lines() for y in line.get_ydata() if y == y}
    assert {97, 86, 95, 90} <= drawn  # the values and the limit line
    rows = section.tables[0].rows
    assert rows[0][1] == "spo2 low" and "SpO2 86" in rows[0][3] and "RR 6" in rows[0][3]
    html = render_html(report)
    assert "Breathing: the respiratory monitor (SR-13)" in html
    write_pdf(report, tmp_path / "r.pdf")
    assert (tmp_path / "r.pdf").stat().st_size > 10_000


def test_no_breathing_section_without_a_monitor(tmp_path: Path) -> None:
    report = build_report(example_log(tmp_path, "postop_morphine"), now=NOW)
    assert not any(s.title.startswith("Breathing") for s in report.sections)


def test_sr13_fhir_observations_with_loinc_codes_are_r4(monitored_db: Path) -> None:
    out = io.StringIO()
    export("fhir", rows_of(monitored_db), out)
    Bundle.model_validate_json(out.getvalue())
    data = json.loads(out.getvalue())
    observations = [e["resource"] for e in data["entry"]
                    if e["resource"]["resourceType"] == "Observation"]
    codes = {(o["code"]["coding"][0]["code"], o["valueQuantity"]["value"]) for o in observations}
    assert codes == {("2708-6", 97), ("19889-5", 38), ("9279-1", 14), ("8867-4", 72),
                     ("2708-6", 86), ("9279-1", 6), ("2708-6", 95), ("9279-1", 12)}
    spo2 = next(o for o in observations if o["code"]["coding"][0]["code"] == "2708-6")
    assert {c["code"] for c in spo2["code"]["coding"]} == {"2708-6", "59408-5", "150456"}
    assert spo2["valueQuantity"]["code"] == "%" and spo2["category"][0]["coding"][0][
        "code"] == "vital-signs"
    device = next(e["fullUrl"] for e in data["entry"]
                  if e["resource"]["resourceType"] == "Device")
    assert all(o["device"]["reference"] == device for o in observations)
    assert elements_of(data) - R4_ELEMENTS == set()
    for path, values in codes_of(data).items():
        assert values <= R4_CODES[path], (path, values - R4_CODES[path])
    ep = build_episode(rows_of(monitored_db))
    assert len(observations) == len(list(changes(ep.vitals)))


def test_sr13_hl7_pcd10_messages_carry_the_breathing_at_each_pump_event(
        monitored_db: Path) -> None:
    out = io.StringIO()
    n = export("hl7", rows_of(monitored_db), out)
    texts = review_hl7.split_messages(out.getvalue())
    assert n == len(texts) > 0
    found: dict[str, set[str]] = {}
    for text in texts:
        message = parse_message(text)  # strict enough to read back
        for segment in text.split("\r"):
            fields = segment.split("|")
            if fields[0] == "OBX" and fields[4].startswith("2.0.0."):
                found.setdefault(fields[3].split("^")[0], set()).add(fields[5])
        assert message.msh.msh_9.to_er7() == "ORU^R42^ORU_R01"
    assert found["2708-6"] >= {"97", "86", "95"}
    assert found["9279-1"] >= {"14", "6"}
    assert "150456" in out.getvalue() and "mm[Hg]^mmHg^UCUM" in out.getvalue()
