"""SR-12 on the front panel: a PIEB prescription reviewed from a pharmacy file, the route and
the time to the next bolus on the home screen, PIBs given and skipped in the history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from panel_rig import PIN, PanelRig

from pca.controller.inputs import PendingPrescription

PIEB_RX: dict[str, Any] = {
    "drug": "bupivacaine_fentanyl", "route": "epidural", "concentration_per_ml": 0.625,
    "dose_unit": "ml", "basal_rate_per_h": 0.0, "pca_dose": 5.0, "lockout_min": 10,
    "max_pca_per_h": 3, "dose_limit": 25.0, "dose_limit_window_h": 1, "loading_dose": 0.0,
    "clinician_bolus_max": 0.0, "pib_dose": 10.0, "pib_interval_min": 60,
    "pib_first_min": 30, "pib_reset_on_pca": True,
}


@pytest.fixture
def rig(tmp_path: Path) -> PanelRig:
    return PanelRig(tmp_path / "events.db")


def review(rig: PanelRig) -> list[str]:
    """Deliver the pharmacy file, page through its review; returns every screen seen."""
    rig.put(PendingPrescription(dict(PIEB_RX), "labour.pca-rx.toml"))
    rig.unlock()
    seen = []
    for _ in range(12):
        seen.append(rig.screen)
        if "activate" in rig.screen.lower():
            break
        rig.keys("#")
    return seen


def test_sr12_pharmacy_file_shows_route_and_pib_before_activation(rig: PanelRig) -> None:
    text = "\n".join(review(rig))
    for needle in ("0.625 mg/mL EPI", "Prog bol  6.25    10", "Every 60 1st 30 min",
                   "PCA delays next PIB"):
        assert needle in text, (needle, text)
    assert "activate" in rig.screen.lower()
    assert not rig.events("prescription_activated")  # nothing changes before the PIN


def test_sr12_home_screen_counts_down_to_the_next_pib(rig: PanelRig) -> None:
    review(rig)
    rig.keys("#" + PIN + "#")
    rig.wait(5)
    assert rig.last("prescription_activated")["pib_dose_ml"] == 10.0
    rig.keys("1#")  # start, confirmed
    rig.wait(5)
    rig.keys("*")  # lock: the home screen
    lines = rig.screen.splitlines()
    assert lines[1].endswith("EPI")
    assert lines[2].endswith("PIB 30m"), lines
    rig.wait(20 * 60)
    assert rig.screen.splitlines()[2].endswith("PIB 10m")
    rig.wait(11 * 60)  # the first PIB has started (10 mL at 60 mL/h: 10 min)
    assert rig.pump.state == "intermittent_dose"
    assert rig.screen.splitlines()[0].startswith("PROG BOLUS")


def test_sr12_history_shows_pibs_given_and_skipped(rig: PanelRig) -> None:
    review(rig)
    rig.keys("#" + PIN + "#")
    rig.wait(5)
    rig.keys("1#")
    rig.wait(5)
    rig.wait(45 * 60)  # PIB 1 at 30 min, given
    rig.unlock()
    rig.keys("1#")  # stop, confirmed
    rig.wait(60 * 60)  # PIB 2 falls due while stopped: skipped
    rig.unlock()
    rig.keys("5")
    rig.keys("3##")
    assert rig.screen.splitlines()[:3] == ["PROG BOLUS (PIB)", "PIB given   1",
                                           "PIB skipped 1"], rig.screen
