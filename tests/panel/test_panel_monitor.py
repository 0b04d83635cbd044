"""SR-13 on the keypad and in pharmacy files: monitor settings reviewed before activation."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from panel_rig import PIN, PanelRig

from pca.app.rx import RxFileError, check, describe, parse_rx_text
from pca.controller.inputs import PendingPrescription
from pca.therapy.drugs import default_library

# ---- the pharmacy file and the keypad -----------------------------------------------------------
RX_FILE = """
rx_id = "RX-13"
[prescription]
drug = "morphine"
concentration_per_ml = 1.0
dose_unit = "mg"
basal_rate_per_h = 0.0
pca_dose = 1.0
lockout_min = 10
dose_limit = 6.0
dose_limit_window_h = 1
loading_dose = 0.0
clinician_bolus_max = 0.0
[monitor]
spo2_min = 92
rr_min = 8
delay_s = 20
required = true
"""


def test_sr13_pharmacy_file_carries_monitor_settings_shown_before_activation(
        tmp_path: Path) -> None:
    rx = parse_rx_text(RX_FILE, "ward.pca-rx.toml")
    checked = check(rx, default_library(), bolus_rate_ml_h=Fraction(60))
    assert checked.request.monitor is not None and checked.request.monitor.spo2_min == 92
    assert "monitor (SR-13): spo2_min 92, rr_min 8; delay_s 20" in "\n".join(describe(checked))
    rig = PanelRig(tmp_path / "events.db")
    rig.put(PendingPrescription(rx.table, rx.source, rx.rx_id))
    rig.unlock()
    seen = []
    while not rig.screen.startswith("PIN TO ACTIVATE RX"):
        assert len(seen) < 12, seen
        seen.append(rig.screen)
        rig.keys("#")
    shown = "\n".join(seen)
    assert "Monitor REQUIRED" in shown and "Pause SpO2 < 92 %" in shown
    assert "Pause RR < 8/min" in shown and "after 20s lost 30s" in shown
    rig.keys(PIN + "#")
    assert rig.last("prescription_activated")["monitor"]["spo2_min"] == 92


def test_sr13_pharmacy_file_with_spo2_min_50_is_refused() -> None:
    rx = parse_rx_text(RX_FILE.replace("spo2_min = 92", "spo2_min = 50"), "w.toml")
    with pytest.raises(RxFileError, match=r"monitor\.spo2_min = 50 is below the hard minimum"):
        check(rx, default_library(), bolus_rate_ml_h=Fraction(60))
