"""Strict input (issue 17): each finding of the audit, as an input the pump must refuse with
one line naming file, field, value and what is allowed, and nothing changed."""

from __future__ import annotations

import io
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from input_fuzz import GOOD, GOOD_DRUG, mutate, toml_document
from pca_testkit import HEADER, LIB_TEXT, MORPHINE, steps

from pca.app import rx as rx_tool
from pca.app.config import ConfigError, load_config
from pca.app.scenario import ScenarioError, load_scenario
from pca.controller.profile import PumpProfile
from pca.therapy.drugs import (
    LibraryError,
    default_library,
    load_library_text,
    load_pharmacy_library,
    seal_library_text,
)
from pca.therapy.prescription import PrescriptionFormatError, parse_request, validate

PHARMACY_RX = """\
rx_id = "RX-1"

[prescription]
drug = "morphine"
concentration_per_ml = 1.0
dose_unit = "mg"
basal_rate_per_h = 0.5
pca_dose = 1.0
lockout_min = 10
max_pca_per_h = 4
dose_limit = 12.0
dose_limit_window_h = 4
loading_dose = 0.0
clinician_bolus_max = 0.0
"""
CONFIG = Path(__file__).resolve().parents[1] / "systemd" / "pca.toml"


def rx_check(tmp_path: Path, text: str | bytes, capsys: pytest.CaptureFixture[str],
             *extra: str) -> tuple[int, str]:
    path = tmp_path / "bed1.pca-rx.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = rx_tool.run(["check", str(path), *extra], out=io.StringIO())
    err = capsys.readouterr().err
    return code, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ---- the tiny basal rate: refused by every check, never reaches the step scheduler ----------
def test_sr8_a_basal_too_slow_for_the_step_scheduler_is_refused_by_pca_rx_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = rx_check(tmp_path, PHARMACY_RX.replace("basal_rate_per_h = 0.5",
                                                       "basal_rate_per_h = 1e-12"), capsys)
    assert code == 2
    line = one_line(err)
    assert "basal_rate_per_h = 1e-12 mg/h" in line and "least rate this pump makes" in line
    # ...at this pump's calibration: one step a minute at 15480 steps/mL is 0.00388 mL/h.
    assert "0.00388 mL/h" in line


def test_sr8_the_least_rate_follows_the_pump_calibration() -> None:
    req = parse_request(dict(GOOD["pharmacy"]["prescription"], basal_rate_per_h=0.005))
    lib = default_library()
    ok = validate(req, lib, bolus_rate_ml_h=Fraction(60), steps_per_ml=Fraction(15480))
    coarse = validate(req, lib, bolus_rate_ml_h=Fraction(60), steps_per_ml=Fraction(2000))
    assert ok.prescription is not None
    assert coarse.prescription is None and "least rate" in coarse.errors[0]  # 0.03 mL/h


def test_sr8_a_tiny_basal_in_a_scenario_is_rejected_at_program_and_the_pump_lives(
        scenario) -> None:  # type: ignore[no-untyped-def]
    rx = MORPHINE.replace("basal_rate_per_h = 0.5", "basal_rate_per_h = 1e-12")
    out = scenario(HEADER + rx + steps(("0s", "program"), ("5s", "start"), ("1m", "press")))
    rejected = out.of("prescription_rejected")
    assert rejected and any("least rate" in e for e in rejected[0]["errors"])
    assert out.summary["final_state"] == "unprogrammed"


def test_sr8_a_dose_smaller_than_one_step_is_refused() -> None:
    req = parse_request(dict(GOOD["pharmacy"]["prescription"], drug="fentanyl", dose_unit="mcg",
                             concentration_per_ml=10.0, basal_rate_per_h=0.0,
                             pca_dose=1e-6, dose_limit=100.0, loading_dose=0.0,
                             clinician_bolus_max=0.0))
    lib = load_library_text(LIB_TEXT.replace('name = "morphine"', 'name = "fentanyl"').replace(
        'unit = "mg"', 'unit = "mcg"').replace("[1.0]", "[10.0]").replace(
        "[0.1, 0.5, 3.0, 5.0]", "[0.0, 0.5, 3.0, 5.0]").replace(
        "[1.0, 5.0, 30.0, 40.0]", "[1.0, 5.0, 300.0, 400.0]"), "lib")
    verdict = validate(req, lib, bolus_rate_ml_h=Fraction(60))
    assert verdict.prescription is None
    assert any("smaller than one step" in e for e in verdict.errors), verdict.errors


# ---- quoted numbers, NaN/inf, tables where numbers go, absurd magnitudes --------------------
@pytest.mark.parametrize(("old", "new", "words"), [
    ("steps_per_ml = 15480", 'steps_per_ml = "1.5"', "steps_per_ml = '1.5' must be a number"),
    ("steps_per_ml = 15480", 'steps_per_ml = "15480"', "numbers are written without quotes"),
    ("steps_per_ml = 15480", "steps_per_ml = 1.5", "steps_per_ml = 1.5 must be a number 1000"),
    ("tick_ms = 50", "tick_ms = nan", "tick_ms = nan must be a whole number 10 to 100"),
    ("tick_ms = 50", "tick_ms = inf", "not a finite number"),
    ("budget_window_s = 3600", "budget_window_s = nan", "budget_window_s = nan"),
    ("tick_ms = 50", "tick_ms = {a = 1}", "tick_ms = a table must be a whole number"),
    ("syringe_ml = 30.0", "syringe_ml = {ml = 30}", "syringe_ml = a table must be a number"),
    ("syringe_ml = 30.0", "syringe_ml = 1e300", "syringe_ml = 1e+300 must be a number 0 to 250"),
    ("budget_ml = 20.0", "budget_ml = 1e300", "budget_ml = 1e+300 must be a number"),
    ("address = 0x27", "address = 1e300", "address = 1e+300 must be a whole number"),
    ("rtc = false", "rtc = 0", "rtc = 0 must be true or false"),
    ("tick_ms = 50", "tick_ms = " + "[" * 2000 + "]" * 2000, "nested deeper than 8 levels"),
])
def test_sr8_config_refuses_with_one_line_naming_file_field_value_and_bounds(
        tmp_path: Path, old: str, new: str, words: str) -> None:
    text = CONFIG.read_text()
    assert old in text
    path = tmp_path / "pca.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and words in message, message


def test_sr8_a_config_that_is_not_utf8_is_one_line_and_pca_run_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "pca.toml"
    path.write_bytes(CONFIG.read_bytes().replace(b'"lcd"', b'"l\xe9cd"'))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(path)
    proc = subprocess.run([sys.executable, "-m", "pca.app.cli", "run", "--sim", "--config",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not UTF-8" in one_line(proc.stderr)


@pytest.mark.parametrize(("old", "new", "words"), [
    ("syringe_ml = 30.0", "syringe_ml = 1e300", "syringe_ml = 1e+300 must be a number 0 to 250"),
    ("steps_per_ml = 15480", 'steps_per_ml = "1.5"', "numbers are written without quotes"),
    ('"pca_dose" = 1.0', '"pca_dose" = "1.0"', "pca_dose = '1.0' must be a number"),
    ('"max_pca_per_h" = 4', '"max_pca_per_h" = nan', "max_pca_per_h = nan must be a whole"),
    ('"dose_limit_window_h" = 4', '"dose_limit_window_h" = inf', "dose_limit_window_h = inf"),
    ('"amount" = 1.0', '"amount" = {mg = 1}', "amount = a table must be a number"),
    ('"syringe_ml" = 20.0', '"syringe_ml" = 1e300', "syringe_ml = 1e+300 must be a number"),
    ('"hold_s" = 0.2', '"hold_s" = ' + "[" * 2000 + "]" * 2000, "nested deeper than 8"),
])
def test_sr8_scenario_refuses_with_one_line(tmp_path: Path, old: str, new: str,
                                            words: str) -> None:
    text = toml_document(GOOD["scenario"]).replace('"steps_per_ml" = 15480',
                                                   "steps_per_ml = 15480")
    text = text.replace('"syringe_ml" = 30.0', "syringe_ml = 30.0")
    assert old in text, old
    path = tmp_path / "s.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and words in message, message


def test_sr8_a_scenario_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_bytes((HEADER + MORPHINE).encode().replace(b'"test"', b'"t\xffst"'))
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        load_scenario(path)


# ---- pharmacy files: nothing defaults, nothing is read as what it is not --------------------
def test_sr8_a_pharmacy_file_cut_after_dose_limit_is_refused_not_given_a_1h_window(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = PHARMACY_RX[:PHARMACY_RX.index("dose_limit_window_h")]
    assert cut.rstrip().endswith("dose_limit = 12.0")
    code, err = rx_check(tmp_path, cut, capsys)
    assert code == 2
    assert "dose_limit_window_h is required" in one_line(err)
    # ...and the pump's own watcher refuses it the same way (spool or USB stick).
    (tmp_path / "usb").mkdir()
    (tmp_path / "usb" / "x.pca-rx.toml").write_text(cut)
    [pending] = rx_tool.RxWatcher([tmp_path / "usb"], settle_s=0).poll(now_s=1e12)
    assert pending.problem is not None and "dose_limit_window_h is required" in pending.problem


@pytest.mark.parametrize("field", ["basal_rate_per_h", "loading_dose", "clinician_bolus_max",
                                   "lockout_min", "concentration_per_ml"])
def test_sr8_every_field_of_a_pharmacy_file_is_required(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str) -> None:
    text = "".join(line + "\n" for line in PHARMACY_RX.splitlines()
                   if not line.startswith(field + " "))
    code, err = rx_check(tmp_path, text, capsys)
    assert code == 2 and f"{field} is required" in one_line(err)


@pytest.mark.parametrize(("old", "new", "words"), [
    ("pca_dose = 1.0", 'pca_dose = "1.0"', "numbers are written without quotes"),
    ("max_pca_per_h = 4", "max_pca_per_h = nan", "max_pca_per_h = nan must be a whole number"),
    ("dose_limit_window_h = 4", "dose_limit_window_h = inf", "not a finite number"),
    ("pca_dose = 1.0", "pca_dose = {mg = 1}", "pca_dose = a table must be a number"),
    ("dose_limit = 12.0", "dose_limit = 1e300", "dose_limit = 1e+300 must be a number 0 to"),
    ("lockout_min = 10", "lockout_min = true", "lockout_min = true must be a number"),
    ('rx_id = "RX-1"', "rx_id = " + "[" * 2000 + "]" * 2000, "nested deeper than 8 levels"),
])
def test_sr8_pharmacy_file_refuses_with_one_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str], old: str,
                                                 new: str, words: str) -> None:
    code, err = rx_check(tmp_path, PHARMACY_RX.replace(old, new), capsys)
    assert code == 2 and words in one_line(err)


def test_sr8_a_pharmacy_file_that_is_not_utf8_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = rx_check(tmp_path, PHARMACY_RX.encode().replace(b"RX-1", b"RX-\xff"), capsys)
    assert code == 2 and "not UTF-8" in one_line(err)


def test_sr8_an_oversized_file_is_refused_before_it_is_parsed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = rx_check(tmp_path, PHARMACY_RX + "#" * 70_000 + "\n", capsys)
    assert code == 2 and "at most 65536 are allowed" in one_line(err)


# ---- drug libraries: no absurd limit is ever sealed or installed ---------------------------
def _library_text(**limits: str) -> str:
    text = LIB_TEXT
    for field, value in limits.items():
        line = next(x for x in text.splitlines() if x.startswith(field + " "))
        text = text.replace(line, f"{field} = {value}")
    return 'version = "2026.12-test"\n' + text


@pytest.mark.parametrize(("field", "value", "words"), [
    ("pca_dose", "[0.1, 0.5, 3.0, 1e300]", "pca_dose[3] = 1e+300 must be a number 0 to 10000"),
    ("dose_limit", "[1.0, 5.0, 30.0, inf]", "dose_limit[3] = inf must be a number"),
    ("max_pca_per_h", "[1, 1, 6, nan]", "max_pca_per_h[3] = nan"),
    ("lockout_min", '[5, 6, 20, "60"]', "numbers are written without quotes"),
    ("max_pca_per_h", "[1, 1, 6, 12.5]", "must be whole numbers"),
])
def test_sr8_a_library_limit_outside_physical_bounds_is_never_sealed_or_installed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: str,
        words: str) -> None:
    text = _library_text(**{field: value})
    with pytest.raises(LibraryError) as info:
        seal_library_text(text)
    assert words in str(info.value) and "\n" not in str(info.value)
    path = tmp_path / "lib.toml"
    path.write_text(text)
    assert rx_tool.run(["seal-library", str(path)], out=io.StringIO()) == 2
    assert words in one_line(capsys.readouterr().err)
    assert path.read_text() == text  # nothing changed
    # A file sealed by another tool (checksum right, content absurd) is refused on install.
    from pca.therapy.drugs import library_checksum
    from pca.therapy.strict import parse_toml

    checksum = library_checksum(parse_toml(text, "x", max_bytes=1 << 20))
    sealed = text.replace("version =", f'checksum = "{checksum}"\nversion =', 1)
    with pytest.raises(LibraryError, match="must be"):
        load_pharmacy_library(sealed, "/usb/lib.pca-library.toml")


def test_sr8_a_library_that_is_not_utf8_or_too_deep_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lib.toml"
    path.write_bytes(_library_text().encode().replace(b"morphine", b"morph\xefne"))
    assert rx_tool.run(["check-library", str(path)], out=io.StringIO()) == 2
    assert "not UTF-8" in one_line(capsys.readouterr().err)
    with pytest.raises(LibraryError, match="nested deeper than 8"):
        load_library_text(_library_text(pca_dose="[" * 2000 + "]" * 2000), "lib")


def test_the_physical_bounds_still_accept_every_shipped_and_example_file() -> None:
    root = Path(__file__).resolve().parents[1]
    assert default_library().drugs
    for example in sorted((root / "pca" / "examples").glob("*.toml")):
        load_scenario(example)
    load_config(CONFIG)
    assert PumpProfile.from_table(GOOD["config"]["pump"]) == PumpProfile()
    assert mutate(GOOD_DRUG, "name", "x")["name"] == "x"


def test_sr8_version2_fields_are_read_strictly(tmp_path: Path) -> None:
    # The route and the PIB (SR-12) are typed and bounded like every other field; a PIB is
    # never completed with a default interval.
    assert parse_request(dict(GOOD["pharmacy"]["prescription"], route="iv", pib_dose=0.0))
    req = parse_request(dict(GOOD["pharmacy"]["prescription"], pib_dose=1.0,
                             pib_interval_min=60))
    assert req.has_pib and req.first_min == 60
    with pytest.raises(PrescriptionFormatError, match="pib_interval_min is required"):
        parse_request(dict(GOOD["pharmacy"]["prescription"], pib_dose=1.0))
    with pytest.raises(PrescriptionFormatError, match="pib_interval_min = 5 must be"):
        parse_request(dict(GOOD["pharmacy"]["prescription"], pib_interval_min=5))
    with pytest.raises(PrescriptionFormatError, match="route = 'intrathecal' must be"):
        parse_request(dict(GOOD["pharmacy"]["prescription"], route="intrathecal"))
    with pytest.raises(PrescriptionFormatError, match="pib_reset_on_pca = 1 must be true"):
        parse_request(dict(GOOD["pharmacy"]["prescription"], pib_reset_on_pca=1))
    # The respiratory monitor (SR-13) is implemented: its fields are read strictly too.
    path = tmp_path / "s.toml"
    path.write_text(HEADER + MORPHINE + "[monitor]\nspo2_min = 90\n")
    assert load_scenario(path).rx is not None
    for bad, words in (('[monitor]\nspo2_min = "90"\n', "spo2_min = '90' must be a whole"),
                       ("[monitor]\nspo2_min = nan\n", "spo2_min = nan must be a whole"),
                       (steps(("1m", "vitals", {"spo2": 1e300})), "spo2 = 1e+300 must be")):
        path.write_text(HEADER + MORPHINE + bad)
        with pytest.raises(ScenarioError) as info:
            load_scenario(path)
        assert words in str(info.value) and "\n" not in str(info.value)
