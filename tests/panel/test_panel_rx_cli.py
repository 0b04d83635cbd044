"""`pca rx check/load` and the pump-side watcher: pharmacy file -> spool -> keypad -> active."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from panel_rig import PIN, PanelRig

from pca.app import rx as rx_tool
from pca.app.rx import RxWatcher
from pca.controller.inputs import PendingLibrary, PendingPrescription

GOOD = """\
rx_id = "RX-2026-0042"
prepared_by = "pharmacy, ward 4"

[prescription]
drug = "morphine"
concentration_per_ml = 1.0
dose_unit = "mg"
basal_rate_per_h = 0.5
pca_dose = 1.0
lockout_min = 10
max_pca_per_h = 4
dose_limit = 6.0
dose_limit_window_h = 4
loading_dose = 2.0
clinician_bolus_max = 2.0
"""


def run_rx(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return rx_tool.run(list(argv), out=out), out.getvalue()


@pytest.fixture
def rx_file(tmp_path: Path) -> Path:
    path = tmp_path / "bed12.pca-rx.toml"
    path.write_text(GOOD)
    return path


def test_pca_rx_check_prints_every_dose_in_drug_unit_and_ml(rx_file: Path) -> None:
    code, out = run_rx("check", str(rx_file))
    assert code == 0
    assert "valid (rx_id RX-2026-0042)" in out
    assert "drug morphine, 1 mg/mL" in out
    assert "pca_dose                       1         1" in out
    assert "dose_limit per 4 h             6         6" in out


def test_pca_rx_load_places_the_file_in_the_spool_atomically(rx_file: Path,
                                                             tmp_path: Path) -> None:
    spool = tmp_path / "var" / "rx-pending"
    spool.mkdir(parents=True)  # the pump's folder: `pca rx load` never makes one
    code, out = run_rx("load", str(rx_file), "--spool", str(spool))
    assert code == 0 and "confirms it on the pump's keypad with a PIN" in out
    assert [p.name for p in spool.iterdir()] == ["bed12.pca-rx.toml"]
    assert (spool / "bed12.pca-rx.toml").read_bytes() == rx_file.read_bytes()


@pytest.mark.parametrize(("old", "new", "words"), [
    ("pca_dose = 1.0", "pca_dose = 50.0", "pca_dose = 50 mg is above the hard maximum 5 mg"),
    ("concentration_per_ml = 1.0\n", "", "concentration_per_ml is required"),
    ('drug = "morphine"', 'drug = "morfine"', "drug = 'morfine' is not in the drug library"),
    ("lockout_min = 10", "lockout_min = 'ten'", "lockout_min"),
    ("dose_limit = 6.0", "dose_limit = 0.0", "dose_limit = 0 must be > 0"),
    ("[prescription]", "[prescripton]", "unknown top-level key(s) prescripton"),
    ("rx_id", "rx id", "not valid TOML"),
])
def test_pca_rx_load_refuses_an_invalid_file_naming_file_field_and_value(
        rx_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        old: str, new: str, words: str) -> None:
    rx_file.write_text(GOOD.replace(old, new))
    spool = tmp_path / "spool"
    code, _ = run_rx("load", str(rx_file), "--spool", str(spool))
    err = capsys.readouterr().err
    assert code == 2
    assert str(rx_file) in err and words in err
    assert not spool.exists()  # nothing changes


def test_pca_rx_soft_limit_is_placed_with_a_warning(rx_file: Path, tmp_path: Path) -> None:
    rx_file.write_text(GOOD.replace("pca_dose = 1.0", "pca_dose = 4.0").replace(
        "dose_limit = 6.0", "dose_limit = 12.0"))
    (tmp_path / "s").mkdir()
    code, out = run_rx("load", str(rx_file), "--spool", str(tmp_path / "s"))
    assert code == 0 and "soft limit: pca_dose = 4 mg" in out and "override" in out


def test_pca_rx_checks_against_a_sealed_pharmacy_library(rx_file: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         ) -> None:
    lib = tmp_path / "lib.toml"
    lib.write_text("version = 'x'\n[[drug]]\nname = 'm'\n")
    code, _ = run_rx("check", str(rx_file), "--library", str(lib))
    assert code == 2 and "must carry checksum" in capsys.readouterr().err


def test_pca_rx_unwritable_spool_exits_1(rx_file: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _ = run_rx("load", str(rx_file), "--spool", str(blocker / "spool"))
    assert code == 2 and "no such folder" in capsys.readouterr().err


# ---- the watcher ---------------------------------------------------------------------------
def test_watcher_takes_spool_files_once_and_leaves_half_written_ones(
        rx_file: Path, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    rx_tool.place(rx_file, spool, rx_tool.RX_SUFFIX)
    watcher = RxWatcher([spool], consume=[spool], settle_s=1.0)
    placed = spool / "bed12.pca-rx.toml"
    assert watcher.poll(now_s=placed.stat().st_mtime + 0.5) == []  # still settling
    items = watcher.poll(now_s=placed.stat().st_mtime + 2)
    assert len(items) == 1
    item = items[0]
    assert isinstance(item, PendingPrescription)
    assert item.rx_id == "RX-2026-0042" and item.request["pca_dose"] == 1.0
    assert item.source == str(placed)
    assert not placed.exists() and (spool / "bed12.pca-rx.toml.taken").exists()
    assert watcher.poll(now_s=1e12) == []


def test_watcher_remembers_read_only_usb_files_by_content(rx_file: Path, tmp_path: Path) -> None:
    usb = tmp_path / "usb"
    usb.mkdir()
    target = usb / "bed12.pca-rx.toml"
    target.write_text(GOOD)
    watcher = RxWatcher([usb, tmp_path / "not-mounted"])
    assert len(watcher.poll(now_s=1e12)) == 1
    assert watcher.poll(now_s=1e12) == []  # same content: offered once
    target.write_text(GOOD.replace("pca_dose = 1.0", "pca_dose = 1.5"))
    again = watcher.poll(now_s=1e12)
    assert len(again) == 1 and again[0].request["pca_dose"] == 1.5  # type: ignore[union-attr]


def test_watcher_reports_an_unreadable_file_and_picks_up_libraries(tmp_path: Path) -> None:
    (tmp_path / "broken.pca-rx.toml").write_text("this is = = not toml")
    (tmp_path / "lib.pca-library.toml").write_text("version = 'x'")
    (tmp_path / "notes.txt").write_text("ignored")
    items = RxWatcher([tmp_path]).poll(now_s=1e12)
    kinds = sorted(type(i).__name__ for i in items)
    assert kinds == ["PendingLibrary", "PendingPrescription"]
    rx = next(i for i in items if isinstance(i, PendingPrescription))
    assert rx.problem is not None and "not valid TOML" in rx.problem
    assert any(isinstance(i, PendingLibrary) for i in items)


def test_end_to_end_pca_rx_load_then_the_pump_shows_it_and_a_clinician_confirms(
        rx_file: Path, tmp_path: Path) -> None:
    spool = tmp_path / "rx-pending"
    spool.mkdir()
    assert run_rx("load", str(rx_file), "--spool", str(spool))[0] == 0
    rig = PanelRig(tmp_path / "events.db")
    watcher = RxWatcher([spool], consume=[spool], settle_s=0)
    for item in watcher.poll():
        rig.put(item)
    assert rig.pump.rx is None and rig.screen.endswith("New Rx: PIN then #")
    rig.unlock()
    assert rig.screen.startswith("NEW RX RX-2026-0042")
    rig.keys("#" * 7 + PIN + "#")
    assert rig.last("prescription_activated")["drug"] == "morphine"
    assert rig.pump.rx is not None
    assert os.listdir(spool) == ["bed12.pca-rx.toml.taken"]
