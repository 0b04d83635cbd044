"""Drug-library integrity (SR-8): version + SHA-256 seal; refused libraries leave the old one."""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import pytest
from panel_rig import ADMIN_PIN, MORPHINE_RX, PanelRig

from pca.app import rx as rx_tool
from pca.controller.inputs import PendingLibrary, PendingPrescription
from pca.therapy.drugs import (
    LibraryError,
    default_library,
    library_checksum,
    load_library_text,
    load_pharmacy_library,
    seal_library_text,
)

BUILT_IN = resources.files("pca.therapy").joinpath("data/drug_library.toml").read_text("utf-8")


def new_version(version: str = "2026.12-ward4", changes: dict[str, str] | None = None) -> str:
    text = BUILT_IN
    for old, new in (changes or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return seal_library_text(text, version)


def test_sr8_the_built_in_library_is_sealed_and_verifies() -> None:
    library = default_library()
    assert library.version == "2026.12-default"
    assert library.checksum.startswith("sha256:") and len(library.checksum) == 7 + 64


@pytest.mark.parametrize(("old", "new"), [
    ("pca_dose            = [0.2, 0.5, 3.0, 5.0]", "pca_dose            = [0.2, 0.5, 3.0, 50.0]"),
    ('name = "fentanyl"', 'name = "fentanil"'),
    ("concentrations_per_ml = [10.0, 50.0]", "concentrations_per_ml = [10.0, 50.0, 500.0]"),
    ('version = "2026.12-default"', 'version = "2026.12b"'),
])
def test_sr8_a_changed_value_breaks_the_seal_and_the_library_is_refused(old: str,
                                                                        new: str) -> None:
    assert old in BUILT_IN
    with pytest.raises(LibraryError, match="checksum mismatch") as info:
        load_pharmacy_library(BUILT_IN.replace(old, new), "/usb/lib.pca-library.toml")
    assert "/usb/lib.pca-library.toml" in str(info.value)
    assert "the library in use stays" in str(info.value)


def test_sr8_comments_layout_and_number_spelling_do_not_change_the_checksum() -> None:
    relaid = BUILT_IN.replace("# usual 1-2 mg", "# typical 1-2 mg").replace(
        "[0.2, 0.5, 3.0, 5.0]", "[0.20, 0.5, 3, 5.0]").replace(" = ", "=")
    assert load_pharmacy_library(relaid, "x").checksum == default_library().checksum


def test_sr8_a_pharmacy_library_needs_version_and_checksum() -> None:
    unsealed = BUILT_IN.replace(
        'checksum = "' + default_library().checksum + '"\n', "")
    with pytest.raises(LibraryError, match="must carry checksum"):
        load_pharmacy_library(unsealed, "lib.toml")
    with pytest.raises(LibraryError, match="needs a non-empty version"):
        load_pharmacy_library(seal_library_text(unsealed).replace(
            'version = "2026.12-default"', 'version = ""'), "lib.toml")
    # Test input (not a pharmacy file) may stay unsealed, as scenario [[drug]] tables do.
    assert load_library_text(unsealed, "lib.toml").checksum == ""


def test_sr8_a_broken_library_is_never_sealed() -> None:
    with pytest.raises(LibraryError, match="unit"):
        seal_library_text(BUILT_IN.replace('unit = "mcg"', 'unit = "grams"'))


def test_seal_sets_version_and_checksum_in_place() -> None:
    sealed = new_version()
    library = load_pharmacy_library(sealed, "lib")
    assert library.version == "2026.12-ward4"
    assert sealed.count("checksum = ") == 1 and "# The drug library shipped" in sealed
    assert library.checksum == library_checksum(__import__("tomllib").loads(sealed))


def test_scenario_drug_tables_still_need_no_checksum(scenario) -> None:  # type: ignore[no-untyped-def]
    from pca_testkit import HEADER, LIB_TEXT, steps

    drug = LIB_TEXT
    rx = """
[prescription]
drug = "morphine"
concentration_per_ml = 1.0
dose_unit = "mg"
pca_dose = 1.0
lockout_min = 10
dose_limit = 6.0
"""
    out = scenario(HEADER + rx + drug + steps(("0s", "program")))
    assert out.of("prescription_activated")


# ---- the admin installs a library on the keypad ------------------------------------------------
@pytest.fixture
def rig(tmp_path: Path) -> PanelRig:
    return PanelRig(tmp_path / "events.db")


def admin(rig: PanelRig) -> None:
    rig.keys("#" + ADMIN_PIN + "#")
    assert rig.screen.startswith("ADMIN")


def test_admin_installs_a_sealed_library_with_the_pin_and_it_survives_a_restart(
        rig: PanelRig) -> None:
    text = new_version(changes={"concentrations_per_ml = [1.0, 2.0, 5.0]":
                                "concentrations_per_ml = [1.0, 2.0, 5.0, 10.0]"})
    rig.put(PendingLibrary(text, "/usb/ward4.pca-library.toml"))
    assert rig.last("drug_library_received")["version"] == "2026.12-ward4"
    assert rig.screen.endswith("New library: admin")
    admin(rig)
    rig.keys("3")
    seen = [rig.screen]
    while not rig.screen.startswith("ADMIN PIN TO INSTALL"):
        assert len(seen) < 10, seen
        rig.keys("#")
        seen.append(rig.screen)
    assert any("NEW LIBRARY" in s and "checksum OK" in s for s in seen)
    rig.keys(ADMIN_PIN + "#")
    changed = rig.last("drug_library_changed")
    assert changed["version"] == "2026.12-ward4" and changed["previous_version"] == \
        "2026.12-default"
    assert rig.pump.library.version == "2026.12-ward4"
    rig.restart()
    assert rig.pump.library.version == "2026.12-ward4"
    # and a prescription the new library allows is now accepted
    rig.put(PendingPrescription(dict(MORPHINE_RX, concentration_per_ml=10.0), "rx.pca-rx.toml"))
    assert rig.last("prescription_received").get("errors") is None


def test_sr8_a_tampered_library_is_refused_on_the_keypad_and_the_old_one_stays(
        rig: PanelRig) -> None:
    tampered = new_version().replace("[0.2, 0.5, 3.0, 5.0]", "[0.2, 0.5, 30.0, 50.0]")
    rig.put(PendingLibrary(tampered, "/usb/bad.pca-library.toml"))
    assert "checksum mismatch" in rig.last("drug_library_received")["error"]
    admin(rig)
    rig.keys("3##")
    text = rig.screen
    assert "REFUSED" in rig.display.history_text() or "checksum" in text
    rig.keys("*")
    assert rig.pump.library.version == "2026.12-default"
    assert not rig.events("drug_library_changed")


def test_sr6_only_an_admin_session_installs_a_library(rig: PanelRig) -> None:
    item = PendingLibrary(new_version(), "lib.pca-library.toml")
    rig.unlock()  # clinician
    assert rig.pump.install_library(item, ADMIN_PIN) is not None
    assert rig.pump.library.version == "2026.12-default"
    rig.keys("*")
    admin(rig)
    assert rig.pump.install_library(item, "000000") == "wrong admin PIN: nothing changed"
    assert rig.pump.install_library(item, ADMIN_PIN) is None


# ---- pca rx library commands -------------------------------------------------------------------
def run_rx(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return rx_tool.run(list(argv), out=out), out.getvalue()


def test_pca_rx_seal_check_and_load_library(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    lib = tmp_path / "ward4.toml"
    lib.write_text(BUILT_IN.replace("[0.2, 0.5, 3.0, 5.0]", "[0.2, 0.5, 2.5, 5.0]"))
    code, _ = run_rx("check-library", str(lib))
    assert code == 2 and "checksum mismatch" in capsys.readouterr().err
    code, out = run_rx("seal-library", str(lib), "--version", "2026.12-ward4")
    assert code == 0 and "sealed, version 2026.12-ward4" in out
    code, out = run_rx("check-library", str(lib))
    assert code == 0 and "valid" in out
    spool = tmp_path / "spool"
    spool.mkdir()  # the pump's folder: `pca rx` never makes one
    code, out = run_rx("load-library", str(lib), "--spool", str(spool))
    assert code == 0 and (spool / "ward4.pca-library.toml").read_text() == lib.read_text()
    lib.write_text(lib.read_text().replace("2.5, 5.0]", "2.5, 50.0]"))
    code, _ = run_rx("load-library", str(lib), "--spool", str(tmp_path / "spool2"))
    assert code == 2 and not (tmp_path / "spool2").exists()
