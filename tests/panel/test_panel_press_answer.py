"""A press always gets an answer: the patient's bolus button says "dose starting" or "not now"
(with the time until a dose is available where the pump knows it) on the display, with the
information tone; plain words, never the clinician's reason codes; no new events."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from panel_rig import MORPHINE_RX, PanelRig, program

from pca.controller.inputs import BolusButton, Sensor

REASON_CODES = ("lockout", "max_per_hour", "dose_limit", "in_progress", "not_running",
                "limit", "hour")


@pytest.fixture
def running(tmp_path: Path) -> PanelRig:
    rig = PanelRig(tmp_path / "events.db")
    program(rig)
    rig.keys("1#")
    rig.wait(5)
    rig.keys("*")  # locked: the home screen the patient sees
    assert rig.pump.state == "running"
    return rig


def press(rig: PanelRig) -> list[str]:
    rig.put(BolusButton(True))
    lines = rig.screen.splitlines()
    rig.put(BolusButton(False))
    for line in lines[2:]:
        for code in REASON_CODES:
            assert code not in line.lower(), (code, lines)
    return lines


def test_a_granted_press_says_dose_starting_with_the_granted_tone(running: PanelRig) -> None:
    lines = press(running)
    assert lines[2] == "DOSE STARTING NOW"
    assert lines[3] == "Locked: PIN then #"
    assert running.pump.annunciator.tones[-1] == "granted"


def test_a_press_during_the_dose_says_not_now_dose_still_running(running: PanelRig) -> None:
    press(running)
    lines = press(running)
    assert lines[2:] == ["NOT NOW", "Dose still running"]
    assert running.pump.annunciator.tones[-2:] == ["granted", "denied"]


def test_a_press_in_the_lockout_says_when_the_next_dose_is_available(running: PanelRig) -> None:
    rig = running
    press(rig)
    rig.wait(120)  # the 1 mL dose is over; the 10 min lockout runs on
    lines = press(rig)
    granted_s = rig.events("pca_request")[0]["t_s"]
    denied = rig.last("pca_request")
    assert denied["reason"] == "lockout"
    left_s = granted_s + 10 * 60 - denied["t_s"]
    assert lines[2:] == ["NOT NOW", f"Next dose in {math.ceil(left_s / 60)} min"]
    rig.wait(5.5)
    assert rig.screen.splitlines()[2].startswith("Res ")  # the answer has gone
    assert rig.screen.splitlines()[3] == "Locked: PIN then #"
    rig.wait(left_s - 5.5 - 30)  # half a minute before the end
    assert press(rig)[2:] == ["NOT NOW", "Next dose in <1 min"]
    rig.wait(31)
    assert press(rig)[2] == "DOSE STARTING NOW"


def test_a_press_at_the_hourly_count_says_when_one_leaves_the_hour(tmp_path: Path) -> None:
    rig = PanelRig(tmp_path / "events.db")
    program(rig, dict(MORPHINE_RX, lockout_min=6, dose_limit=20.0, pca_dose=0.5))
    rig.keys("1#")
    rig.wait(5)
    rig.keys("*")
    for _ in range(4):  # max 4 an hour
        assert press(rig)[2] == "DOSE STARTING NOW"
        rig.wait(7 * 60)
    lines = press(rig)
    denied = rig.last("pca_request")
    assert denied["reason"] == "max_per_hour"
    first_s = rig.events("pca_request")[0]["t_s"]
    left_s = first_s + 3600 - denied["t_s"]
    assert lines[2:] == ["NOT NOW", f"Next dose in {math.ceil(left_s / 60)} min"]


@pytest.mark.parametrize("why", ["stopped", "dose_limit", "alarm"])
def test_a_press_with_no_time_to_promise_says_ask_your_nurse(tmp_path: Path, why: str) -> None:
    rig = PanelRig(tmp_path / "events.db")
    rx = dict(MORPHINE_RX, dose_limit=2.0, pca_dose=1.5, basal_rate_per_h=0.0) \
        if why == "dose_limit" else MORPHINE_RX
    program(rig, rx)
    if why != "stopped":
        rig.keys("1#")
        rig.wait(5)
    rig.keys("*")
    if why == "dose_limit":
        press(rig)
        rig.wait(11 * 60)  # lockout over; 1.5 mg of the 2 mg limit given
    if why == "alarm":
        rig.put(Sensor("occlusion", True))
    lines = press(rig)
    assert lines[2] == "NOT NOW"
    expected_reason = {"stopped": "not_running", "dose_limit": "dose_limit", "alarm": "alarm"}
    assert rig.last("pca_request")["reason"] == expected_reason[why]
    if why == "alarm":
        assert lines[3] == "OCCLUSION:check line"  # the alarm keeps its line
    else:
        assert lines[3] == "Ask your nurse"


def test_the_answer_adds_no_event(running: PanelRig) -> None:
    press(running)
    before = running.events()
    press(running)  # denied: the dose runs
    after = running.events()
    new = [e["type"] for e in after[len(before):] if e["type"] != "delivery"]
    assert new == ["pca_request"]  # the motor journal goes on; nothing else is added
