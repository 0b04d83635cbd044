"""`pca log export --format fhir`: an R4 Bundle the library parses back, with the log's totals."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import fhir.resources.R4B
import pydantic
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir_r4 import R4_CODES, R4_ELEMENTS, codes_of, elements_of
from review_testkit import example_log, journal_totals_ml, rows_of

from pca.app.export_formats import export
from pca.review import fhir as review_fhir

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def bundle_of(db: Path) -> tuple[Bundle, str, int]:
    out = io.StringIO()
    n = export("fhir", rows_of(db), out)
    text = out.getvalue()
    return Bundle.model_validate_json(text), text, n


def resources(bundle: Bundle, kind: str) -> list:  # type: ignore[type-arg]
    return [e.resource for e in bundle.entry or [] if e.resource.get_resource_type() == kind]


def test_the_models_are_r4b_and_the_bundle_claims_r4() -> None:
    assert pydantic.VERSION.startswith("2.")  # v1 is end of life and blocks v2 neighbours
    assert fhir.resources.R4B.__fhir_version__ == "4.3.0" == review_fhir.MODELS_FHIR_VERSION
    assert review_fhir.CLAIMED_FHIR_VERSION == "4.0.1"
    assert review_fhir.MEDIA_TYPE == "application/fhir+json; fhirVersion=4.0"


@pytest.mark.parametrize("example", ["postop_morphine", "restart_during_dose", "occlusion",
                                     "dose_limit_kvo", "fentanyl_pca_no_basal", None])
def test_every_element_and_code_written_is_fhir_r4(tmp_path: Path, episode_db: Path,
                                                   example: str | None) -> None:
    """Validated with the R4B models, read by R4 servers: nothing R4 lacks may be written."""
    db = episode_db if example is None else example_log(tmp_path, example)
    _, text, _ = bundle_of(db)
    data = json.loads(text)
    elements = elements_of(data)
    assert {"MedicationAdministration.dosage.dose.value", "AuditEvent.outcome",
            "Device.deviceName.type", "Medication.ingredient.strength.numerator.code"} <= elements
    assert elements - R4_ELEMENTS == set(), "not in R4: check the R4 spec, then tests/fhir_r4.py"
    for path, values in codes_of(data).items():
        assert values <= R4_CODES[path], (path, values - R4_CODES[path])


def test_the_r4_check_catches_an_element_r4_lacks(tmp_path: Path) -> None:
    # R4B kept MedicationAdministration as R4 had it; an R5-only element must be caught.
    data = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {
        "resourceType": "MedicationAdministration", "status": "completed",
        "occurenceDateTime": "2026-03-01T08:00:00Z"}}]}
    assert elements_of(data) - R4_ELEMENTS == {"MedicationAdministration.occurenceDateTime"}
    data["entry"][0]["resource"]["status"] = "not-given"  # R5's, not R4's
    assert not codes_of(data)["MedicationAdministration.status"] <= \
        R4_CODES["MedicationAdministration.status"]


def test_bundle_parses_back_and_its_totals_equal_the_log(episode_db: Path) -> None:
    bundle, _, n = bundle_of(episode_db)
    assert bundle.type == "transaction" and n == len(bundle.entry)
    given: Counter[str] = Counter()
    for admin in resources(bundle, "MedicationAdministration"):
        assert admin.dosage.dose.code == "mL" and admin.dosage.dose.system == \
            "http://unitsofmeasure.org"
        given[admin.dosage.method.coding[0].code] += float(admin.dosage.dose.value)
    log = journal_totals_ml(rows_of(episode_db))
    for source in ("basal", "pca", "loading", "clinician", "kvo"):
        # each administration is rounded to 1 µL; a week has a few hundred of them
        assert given[source] == pytest.approx(log[source], abs=1e-3), source
    assert sum(given.values()) == pytest.approx(sum(log.values()), abs=1e-3)


def test_one_administration_per_dose_with_its_source(episode_db: Path) -> None:
    bundle, _, _ = bundle_of(episode_db)
    rows = rows_of(episode_db)
    started = Counter(r["source"] for r in rows if r["type"] == "dose_started")
    admins = Counter(a.dosage.method.coding[0].code
                     for a in resources(bundle, "MedicationAdministration"))
    for source in ("pca", "clinician", "loading"):
        assert admins[source] == started[source], source
    assert admins["basal"] > 0
    for admin in resources(bundle, "MedicationAdministration"):
        if admin.dosage.method.coding[0].code in ("basal", "kvo"):
            assert admin.dosage.rateQuantity.code == "mL/h"
            assert admin.dosage.rateQuantity.value > 0


def test_every_reference_resolves_inside_the_bundle(episode_db: Path) -> None:
    bundle, _, _ = bundle_of(episode_db)
    urls = {e.fullUrl for e in bundle.entry}
    devices = resources(bundle, "Device")
    assert len(devices) == 1
    for admin in resources(bundle, "MedicationAdministration"):
        assert admin.device[0].reference in urls
        assert admin.medicationReference.reference in urls
    for audit in resources(bundle, "AuditEvent"):
        assert audit.source.observer.reference in urls
    for entry in bundle.entry:
        assert entry.request.method == "POST"


def test_audit_events_for_authorisation_and_programming(episode_db: Path) -> None:
    bundle, _, _ = bundle_of(episode_db)
    rows = rows_of(episode_db)
    audits = resources(bundle, "AuditEvent")
    kinds = Counter((a.type.code, a.subtype[0].code) for a in audits)
    assert kinds[("110114", "110122")] == sum(r["type"] == "auth" for r in rows)
    assert kinds[("programming", "prescription-activated")] == \
        sum(r["type"] == "prescription_activated" for r in rows) >= 2
    assert kinds[("programming", "syringe-changed")] == \
        sum(r["type"] == "syringe_changed" for r in rows)
    refused = [a for a in audits if a.subtype[0].code == "110122" and a.outcome == "4"]
    assert refused, "the wrong PIN of the episode is an audited failed login"
    assert any(a.subtype[0].code == "action-rejected" and a.outcome == "4" for a in audits)


def test_sr6_the_pin_never_reaches_the_export(episode_db: Path) -> None:
    _, text, _ = bundle_of(episode_db)
    assert "270318" not in text and "000000" not in text


def test_interrupted_dose_is_stopped_and_ends_when_the_pump_died(tmp_path: Path) -> None:
    db = example_log(tmp_path, "restart_during_dose")
    rows = rows_of(db)
    bundle, _, _ = bundle_of(db)
    doses = [a for a in resources(bundle, "MedicationAdministration")
             if a.dosage.method.coding[0].code == "pca"]
    cut = [a for a in doses if a.status == "stopped"]
    assert len(cut) == 1 and len(doses) == 2
    restart = next(r for r in rows if r["type"] == "restarted")
    alive = max(r["wall"] for r in rows if r["seq"] < restart["seq"]
                and not (r["type"] == "delivery" and r.get("assumed"))
                and r["type"] != "dose_ended")
    assert cut[0].effectivePeriod.end == datetime.fromisoformat(alive.replace("Z", "+00:00"))
    assert "upper bound" in cut[0].note[0].text
    assert float(cut[0].dosage.dose.value) == pytest.approx(restart["interrupted_dose_ml"])


def test_the_same_log_exports_with_the_same_ids(tmp_path: Path) -> None:
    db = example_log(tmp_path, "postop_morphine")
    first, _, _ = bundle_of(db)
    second, _, _ = bundle_of(db)
    assert [e.fullUrl for e in first.entry] == [e.fullUrl for e in second.entry]


def test_an_invalid_resource_is_refused_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = example_log(tmp_path, "postop_morphine")
    real = review_fhir._administration

    def without_subject(*args, **kwargs):  # type: ignore[no-untyped-def]
        resource = real(*args, **kwargs)
        del resource["subject"]  # required in R4
        return resource

    monkeypatch.setattr(review_fhir, "_administration", without_subject)
    out = io.StringIO()
    with pytest.raises(pydantic.ValidationError, match="subject"):
        review_fhir.write_bundle(rows_of(db), out, now=NOW)
    assert out.getvalue() == ""


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown export format 'xml'"):
        export("xml", [], io.StringIO())


def test_bundle_json_is_plain_json(tmp_path: Path) -> None:
    db = example_log(tmp_path, "fentanyl_pca_no_basal")
    _, text, _ = bundle_of(db)
    data = json.loads(text)
    kinds = defaultdict(int)
    for entry in data["entry"]:
        kinds[entry["resource"]["resourceType"]] += 1
    assert kinds["Device"] == 1 and kinds["Medication"] == 1
    # no basal in this prescription: no 0 mL/h basal administrations
    methods = [e["resource"]["dosage"]["method"]["coding"][0]["code"] for e in data["entry"]
               if e["resource"]["resourceType"] == "MedicationAdministration"]
    assert "basal" not in methods and methods.count("clinician") == 1


def test_a_slice_of_the_log_keeps_the_log_s_ids(tmp_path: Path) -> None:
    from pca.app.export_formats import log_id

    db = example_log(tmp_path, "postop_morphine")
    rows = rows_of(db)
    whole, part = io.StringIO(), io.StringIO()
    export("fhir", rows, whole)
    export("fhir", [r for r in rows if r["wall"] >= "2026-03-01T08:10:00Z"], part,
           episode_id=log_id(db))
    ids = {e.fullUrl for e in Bundle.model_validate_json(whole.getvalue()).entry}
    later = Bundle.model_validate_json(part.getvalue()).entry
    device = next(e for e in later if e.resource.get_resource_type() == "Device")
    assert device.fullUrl in ids
    starts = {e.fullUrl for e in later
              if e.resource.get_resource_type() == "MedicationAdministration"
              and e.resource.dosage.method.coding[0].code == "pca"}
    assert starts <= ids and len(starts) == 2
