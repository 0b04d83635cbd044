"""SR-8: programming limits, exact conversion to mL, clear errors."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from pca_testkit import LIB_TEXT

from pca.therapy.drugs import LibraryError, default_library, load_library_text
from pca.therapy.prescription import PrescriptionFormatError, parse_request, validate

LIB = default_library()
BOLUS = Fraction(60)


def rx(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "drug": "morphine", "concentration_per_ml": 1.0, "dose_unit": "mg",
        "basal_rate_per_h": 0.5, "pca_dose": 1.0, "lockout_min": 10, "max_pca_per_h": 4,
        "dose_limit": 6.0, "dose_limit_window_h": 4, "loading_dose": 0.0,
        "clinician_bolus_max": 2.0}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def check(confirm_soft: bool = False, **changes: Any):  # type: ignore[no-untyped-def]
    return validate(parse_request(rx(**changes)), LIB, bolus_rate_ml_h=BOLUS,
                    confirm_soft=confirm_soft)


def test_default_library_has_the_common_pca_opioids() -> None:
    assert {"morphine", "hydromorphone", "fentanyl"} <= set(LIB.drugs)
    assert LIB.drugs["fentanyl"].unit == "mcg"
    assert Fraction(1, 5) in LIB.drugs["hydromorphone"].concentrations_per_ml


def test_valid_prescription_is_converted_exactly_to_ml() -> None:
    verdict = validate(parse_request(rx(drug="hydromorphone", concentration_per_ml=0.2,
                                        pca_dose=0.2, basal_rate_per_h=0.1, dose_limit=2.0,
                                        clinician_bolus_max=0.0)),
                       LIB, bolus_rate_ml_h=BOLUS)
    assert verdict.errors == ()
    p = verdict.prescription
    assert p is not None
    assert p.pca_dose_ml == Fraction(1)  # 0.2 mg / 0.2 mg/mL, exactly
    assert p.basal_ml_h == Fraction(1, 2)
    assert p.dose_limit_ml == Fraction(10)


def test_sr8_doses_in_ml_are_checked_against_limits_in_the_drug_unit() -> None:
    # 6 mL of 1 mg/mL morphine is 6 mg: above the 5 mg hard maximum.
    verdict = check(dose_unit="ml", pca_dose=6.0, dose_limit=30.0, lockout_min=20)
    assert verdict.prescription is None
    assert any("pca_dose = 6 mL (= 6 mg) is above the hard maximum 5 mg" in e
               for e in verdict.errors)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("pca_dose", 5.5, "pca_dose = 5.5 mg is above the hard maximum 5 mg for morphine"),
    ("lockout_min", 4, "lockout_min = 4 is below the hard minimum 5 for morphine"),
    ("dose_limit", 45.0, "dose_limit = 45 mg is above the hard maximum 40 mg"),
    ("basal_rate_per_h", 4.5, "basal_rate_per_h = 4.5 mg is above the hard maximum 4 mg"),
    ("max_pca_per_h", 13, "max_pca_per_h = 13 is above the hard maximum 12"),
])
def test_sr8_hard_limits_reject_and_name_field_value_and_limit(
        field: str, value: Any, words: str) -> None:
    verdict = check(confirm_soft=True, **{field: value})
    assert verdict.prescription is None
    assert any(words in e for e in verdict.errors), verdict.errors


def test_sr8_soft_limit_needs_explicit_override_and_records_it() -> None:
    refused = check(pca_dose=4.0, lockout_min=10)
    assert refused.prescription is None
    assert "pca_dose = 4 mg is above the soft maximum 3 mg" in refused.errors[0]
    assert "confirm_soft" in refused.errors[0]
    accepted = check(confirm_soft=True, pca_dose=4.0)
    assert accepted.prescription is not None
    assert accepted.prescription.overrides == refused.soft


def test_sr8_dose_limit_zero_never_means_unlimited() -> None:
    verdict = check(dose_limit=0.0)
    assert verdict.prescription is None
    assert any("0 never means unlimited" in e for e in verdict.errors)


def test_sr8_dose_limit_required_where_library_says_so() -> None:
    verdict = check(dose_limit=None)
    assert verdict.prescription is None
    assert any("dose_limit is required" in e for e in verdict.errors)


def test_sr8_basal_alone_over_the_limit_is_rejected() -> None:
    verdict = check(basal_rate_per_h=2.0, dose_limit=3.0, dose_limit_window_h=2)
    assert verdict.prescription is None
    assert any("alone gives 4 mg in 2 h, above dose_limit = 3 mg" in e for e in verdict.errors)


def test_sr8_basal_exactly_at_the_limit_is_allowed() -> None:
    assert check(basal_rate_per_h=1.5, dose_limit=3.0, dose_limit_window_h=2).prescription


def test_sr8_concentration_has_no_default() -> None:
    raw = rx()
    del raw["concentration_per_ml"]
    with pytest.raises(PrescriptionFormatError, match="concentration_per_ml is required"):
        parse_request(raw)


def test_sr8_concentration_must_be_one_the_library_knows() -> None:
    verdict = check(concentration_per_ml=10.0)
    assert verdict.prescription is None
    assert "concentration_per_ml = 10 mg/mL is not a concentration of morphine" \
        in verdict.errors[0]


def test_sr8_lockout_must_cover_the_dose_delivery_time() -> None:
    # 3 mg at 1 mg/mL is 3 mL: 3 min at 60 mL/h, 6 min at 30 mL/h; a 6-minute lockout
    # covers both (inclusive)...
    for rate in (BOLUS, Fraction(30)):
        assert validate(parse_request(rx(pca_dose=3.0, lockout_min=6)), LIB,
                        bolus_rate_ml_h=rate).prescription
    # ...but not 7.2 min at 25 mL/h.
    verdict = validate(parse_request(rx(pca_dose=3.0, lockout_min=6)), LIB,
                       bolus_rate_ml_h=Fraction(25))
    assert verdict.prescription is None
    assert any("lockout_min = 6 is shorter than the 7.2 min" in e for e in verdict.errors)


def test_sr8_mg_prescription_for_a_mcg_drug_is_refused() -> None:
    verdict = check(drug="fentanyl", concentration_per_ml=10.0, pca_dose=0.02,
                    basal_rate_per_h=0.0, dose_limit=0.1)
    assert verdict.prescription is None
    assert "fentanyl, which is dosed in mcg" in verdict.errors[0]


def test_unknown_drug_is_refused_naming_the_library() -> None:
    verdict = check(drug="oxycodone")
    assert verdict.prescription is None
    assert "not in the drug library" in verdict.errors[0]


@pytest.mark.parametrize(("changes", "words"), [
    ({"pca_dose": "lots"}, "pca_dose = 'lots' must be a number"),
    ({"dose_unit": "grains"}, "dose_unit = 'grains' must be one of mg, mcg, ml"),
    ({"max_pca_per_h": 2.5}, "max_pca_per_h = 2.5 must be a whole number"),
    ({"speed": 3}, "unknown field(s) speed"),
    ({"pca_dose": True}, "pca_dose = true must be a number"),
])
def test_malformed_prescription_names_field_and_value(changes: dict[str, Any],
                                                      words: str) -> None:
    with pytest.raises(PrescriptionFormatError) as info:
        parse_request(rx(**changes), "rx.toml: [prescription]")
    assert words in str(info.value)
    assert str(info.value).startswith("rx.toml: [prescription]")





@pytest.mark.parametrize(("old", "new", "words"), [
    ('unit = "mg"', 'unit = "grams"', "unit = 'grams' must be one of mg, mcg"),
    ("[0.1, 0.5, 3.0, 5.0]", "[0.1, 5.0, 3.0, 5.0]", "pca_dose: limits"),
    ("[1, 1, 4, 12]", "[1, 1, 4, 24]", "the window must lie in 1..12 h"),
    ("concentrations_per_ml = [1.0]", "concentrations_per_ml = []", "concentrations_per_ml"),
    ("clinician_bolus_max = [0.0, 0.0, 5.0, 10.0]", "", "missing clinician_bolus_max"),
])
def test_malformed_drug_library_is_refused_with_file_drug_and_field(
        old: str, new: str, words: str) -> None:
    with pytest.raises(LibraryError) as info:
        load_library_text(LIB_TEXT.replace(old, new), "pharmacy.toml")
    assert words in str(info.value)
    assert "pharmacy.toml" in str(info.value)


def test_drug_library_round_trip() -> None:
    lib = load_library_text(LIB_TEXT, "pharmacy.toml")
    assert lib.drugs["morphine"].limits["pca_dose"].hard_max == 5
