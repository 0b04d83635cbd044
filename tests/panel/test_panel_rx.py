"""Programming from a pharmacy file on the keypad (SR-8, SR-6): review, overrides, PIN."""

from __future__ import annotations

from pathlib import Path

import pytest
from panel_rig import MORPHINE_RX, PIN, PanelRig, program

from pca.controller.inputs import PendingPrescription
from pca.therapy.drugs import parse_library

TEN_X_LIBRARY = parse_library([{
    "name": "morphine", "unit": "mg", "concentrations_per_ml": [1.0, 10.0],
    "dose_limit_required": True,
    "limits": {
        "basal_rate_per_h": [0.0, 0.0, 2.0, 4.0], "pca_dose": [0.2, 0.5, 3.0, 5.0],
        "lockout_min": [5, 6, 20, 60], "dose_limit_window_h": [1, 1, 4, 12],
        "max_pca_per_h": [1, 1, 6, 12], "dose_limit": [1.0, 2.0, 30.0, 40.0],
        "loading_dose": [0.0, 0.0, 5.0, 10.0], "clinician_bolus_max": [0.0, 0.0, 5.0, 10.0],
    }}], "test library")


@pytest.fixture
def rig(tmp_path: Path) -> PanelRig:
    return PanelRig(tmp_path / "events.db")


def until(rig: PanelRig, prefix: str, limit: int = 10) -> str:
    """Press # until the screen starts with `prefix`; returns every screen seen."""
    seen = [rig.screen]
    while not rig.screen.startswith(prefix):
        assert len(seen) <= limit, seen
        rig.keys("#")
        seen.append(rig.screen)
    return "\n".join(seen)


def review_text(rig: PanelRig, pages: int = 7) -> str:
    seen = []
    for _ in range(pages):
        seen.append(rig.screen)
        rig.keys("#")
    return "\n".join(seen)


def test_sr8_rx_becomes_active_only_after_a_clinician_confirms_it_with_a_pin(
        rig: PanelRig) -> None:
    rig.put(PendingPrescription(dict(MORPHINE_RX), "/spool/a.pca-rx.toml", "RX-7"))
    assert rig.last("prescription_received")["rx_id"] == "RX-7"
    assert rig.pump.rx is None
    rig.unlock()
    assert rig.screen.startswith("NEW RX RX-7")
    rig.keys("#" * 7)
    assert rig.screen.startswith("PIN TO ACTIVATE RX")
    assert rig.pump.rx is None and not rig.events("prescription_activated")
    rig.keys(PIN + "#")
    activated = rig.last("prescription_activated")
    assert activated["pca_dose"] == 1.0 and activated["pca_dose_ml"] == 1.0
    assert rig.pump.state == "stopped"
    assert rig.screen.splitlines()[:2] == ["Prescription", "ACTIVE"]


def test_sr8_the_10x_concentration_error_is_visible_side_by_side(tmp_path: Path) -> None:
    """The same 1 mg dose is 1 mL at 1 mg/mL and 0.1 mL at 10 mg/mL: both columns show."""
    screens = {}
    for conc in (1.0, 10.0):
        rig = PanelRig(tmp_path / f"e{conc}.db", library=TEN_X_LIBRARY)
        rig.put(PendingPrescription(dict(MORPHINE_RX, concentration_per_ml=conc),
                                    "rx.pca-rx.toml"))
        rig.unlock()
        screens[conc] = review_text(rig)
    assert "1 mg/mL" in screens[1.0] and "10 mg/mL" in screens[10.0]
    assert "PCA dose     1     1" in screens[1.0]
    assert "PCA dose     1   0.1" in screens[10.0]
    assert "Basal/h    0.5  0.05" in screens[10.0]


def test_sr8_doses_entered_in_ml_show_the_drug_amount_too(rig: PanelRig) -> None:
    rx = dict(MORPHINE_RX, dose_unit="ml", concentration_per_ml=2.0, basal_rate_per_h=0.25,
              pca_dose=0.5, dose_limit=3.0, loading_dose=1.0, clinician_bolus_max=1.0)
    rig.put(PendingPrescription(rx, "rx.pca-rx.toml"))
    rig.unlock()
    text = review_text(rig)
    assert "PCA dose     1   0.5" in text and "Entered in mL" in text


def test_sr8_hard_limit_breach_is_refused_naming_the_field_and_cannot_be_activated(
        rig: PanelRig) -> None:
    rig.put(PendingPrescription(dict(MORPHINE_RX, pca_dose=50.0), "/usb/bad.pca-rx.toml"))
    received = rig.last("prescription_received")
    assert any("pca_dose = 50 mg is above the hard maximum 5 mg" in e
               for e in received["errors"])
    rig.unlock()
    text = review_text(rig, 2)
    assert "RX REFUSED" in text and "pca_dose" in text
    rig.keys("*")  # dismiss
    assert rig.pump.rx is None and not rig.events("prescription_activated")
    assert rig.last("prescription_dismissed")["source"] == "/usb/bad.pca-rx.toml"


def test_sr8_malformed_file_is_refused_with_the_problem(rig: PanelRig) -> None:
    rig.put(PendingPrescription({}, "/usb/x.pca-rx.toml", problem="not valid TOML: line 3"))
    rig.unlock()
    assert "RX REFUSED" in rig.screen
    rig.put(PendingPrescription({"drug": "morphine"}, "/usb/y.pca-rx.toml"))
    assert "dose_unit is required (one of mg, mcg, ml)" in \
        rig.last("prescription_received")["errors"][0]


def test_sr8_soft_limit_override_needs_a_second_confirmation_and_is_logged(
        rig: PanelRig) -> None:
    rx = dict(MORPHINE_RX, pca_dose=4.0, dose_limit=12.0)  # soft max 3 mg
    rig.put(PendingPrescription(rx, "soft.pca-rx.toml"))
    assert rig.last("prescription_received")["soft_limits"]
    rig.unlock()
    rig.keys("#" * 7)  # review, then "activate? yes"
    assert rig.screen.startswith("SOFT LIMITS: 1")
    text = until(rig, "OVERRIDE SOFT")
    assert "pca_dose = 4 mg is above the" in text.replace("\n", " ")
    rig.keys("*")  # no override: nothing changes
    assert rig.pump.rx is None
    assert rig.last("prescription_dismissed")["reason"] == "rejected on the keypad"

    rig.put(PendingPrescription(rx, "soft.pca-rx.toml"))
    rig.keys("0")  # the "rejected" message goes back to the menu
    rig.keys("0")  # review the new one
    rig.keys("#" * 7)  # review, activate
    until(rig, "OVERRIDE SOFT")
    rig.keys("#" + PIN + "#")
    activated = rig.last("prescription_activated")
    assert activated["overrides"] and "pca_dose = 4 mg" in activated["overrides"][0]


def test_sr8_a_wrong_pin_at_activation_changes_nothing(rig: PanelRig) -> None:
    rig.put(PendingPrescription(dict(MORPHINE_RX), "rx.pca-rx.toml"))
    rig.unlock()
    rig.keys("#" * 7 + "902134#")
    assert rig.pump.rx is None
    assert rig.screen.startswith("Wrong PIN")
    assert rig.last("action_rejected")["reason"] == "not authorised"


def test_later_keeps_the_rx_waiting_and_zero_rejects_it(rig: PanelRig) -> None:
    rig.put(PendingPrescription(dict(MORPHINE_RX), "rx.pca-rx.toml"))
    rig.unlock()
    rig.keys("#*")  # one page, then later
    rig.keys("#")
    assert rig.screen.startswith("MENU 2/2") and "0 New Rx!" in rig.screen
    rig.keys("0")
    assert rig.screen.startswith("NEW RX")
    rig.keys("0")
    assert rig.screen.startswith("REJECT THIS RX?")
    rig.keys("#")  # the rejection, confirmed
    assert rig.pump.panel.rx_pending is None
    assert rig.last("prescription_dismissed")
    assert rig.pump.rx is None


def test_sr8_reprogramming_needs_the_pump_stopped(rig: PanelRig) -> None:
    program(rig)
    rig.keys("1#")
    rig.wait(5)
    rig.put(PendingPrescription(dict(MORPHINE_RX, pca_dose=2.0), "next.pca-rx.toml"))
    rig.keys("0")
    rig.keys("#" * 7 + PIN + "#")
    assert "REFUSED" in rig.screen and "stop the pump" in rig.screen
    assert rig.pump.rx is not None and rig.pump.rx.request.pca_dose == 1


def test_sr6_a_session_that_relocks_during_review_activates_nothing(rig: PanelRig) -> None:
    rig.put(PendingPrescription(dict(MORPHINE_RX), "rx.pca-rx.toml"))
    rig.unlock()
    rig.keys("###")
    rig.wait(31)
    rig.keys("####" + PIN + "#")  # typed into the locked panel: a PIN entry at most
    assert rig.pump.rx is None
    assert not rig.events("prescription_activated")


def test_a_new_patient_drops_an_rx_file_that_came_before_it(rig: PanelRig) -> None:
    rig.put(PendingPrescription(dict(MORPHINE_RX), "rx.pca-rx.toml"))
    rig.unlock()
    rig.keys("*8#")  # later; new patient; yes
    assert rig.pump.panel.rx_pending is None
