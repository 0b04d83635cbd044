"""SR-12 in review: PIBs in the report's totals, FHIR and HL7 carry the intermittent source and
the route (SNOMED CT), on the shipped labour PIEB example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from review_testkit import EXAMPLES, make_log

from pca.app.cli import main
from pca.review.episode import build_episode
from pca.store.eventlog import export_rows


@pytest.fixture(scope="module")
def labour(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_log(tmp_path_factory.mktemp("pieb"), EXAMPLES / "labour_pieb.toml", "labour")


def test_sr12_episode_counts_pibs_toward_the_limit_and_in_the_totals(labour: Path) -> None:
    ep = build_episode(export_rows(labour))
    pibs = [d for d in ep.deliveries if d.source == "intermittent"]
    assert len(pibs) == 7
    assert sum(d.delivered_ml for d in pibs) == pytest.approx(70.0, abs=1e-3)
    assert ep.prescriptions[-1].route == "epidural"


def test_sr12_report_totals_name_the_programmed_boluses(labour: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert main(["report", "--db", str(labour), "--out", str(out)]) == 0
    html = out.read_text()
    assert "programmed intermittent bolus" in html
    assert "epidural" in html.lower()


def test_sr12_fhir_carries_route_and_intermittent_source(labour: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    assert main(["log", "export", "--db", str(labour), "--format", "fhir",
                 "--out", str(out)]) == 0
    bundle = json.loads(out.read_text())
    admins = [e["resource"] for e in bundle["entry"]
              if e["resource"]["resourceType"] == "MedicationAdministration"]
    pib = [a for a in admins if a["dosage"]["method"]["coding"][0]["code"] == "intermittent"]
    assert len(pib) == 7
    route = pib[0]["dosage"]["route"]["coding"][0]
    assert (route["system"], route["code"]) == ("http://snomed.info/sct", "404820008")
    assert pib[0]["performer"][0]["actor"]["display"] == "the pump (programmed)"


def test_sr12_hl7_carries_route_and_intermittent_source(labour: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.hl7"
    assert main(["log", "export", "--db", str(labour), "--format", "hl7",
                 "--out", str(out)]) == 0
    text = out.read_text().replace("\r", "\n")
    assert "410675002^Route of administration^SCT|1.1.2.11|404820008^Epidural route^SCT" in text
    assert "^pump-source-info-intermittent" in text
    assert "^pump-program-delivery-mode-intermittent" in text
