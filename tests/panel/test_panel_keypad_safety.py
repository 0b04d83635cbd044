"""SR-6 at the keypad: no stray sequence changes therapy; every change is confirmed by `#` on a
screen that names it and its values; the screen tells only what is true now."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from panel_rig import MORPHINE_RX, PIN, PanelRig, program

from pca.controller.inputs import PendingPrescription, Sensor

# What a stray sequence must never produce (the rig's own set-up events come before).
THERAPY_EVENTS = ("state_changed", "dose_started", "syringe_changed", "new_patient",
                  "alarm_cleared", "prescription_activated", "prescription_dismissed")


@pytest.fixture
def rig(tmp_path: Path) -> PanelRig:
    return PanelRig(tmp_path / "events.db")


@pytest.fixture
def running(rig: PanelRig) -> PanelRig:
    program(rig)
    rig.keys("1#")
    rig.wait(5)
    assert rig.pump.state == "running"
    return rig


def therapy_events(rig: PanelRig) -> list[tuple[str, int]]:
    return [(e["type"], e["seq"]) for e in rig.events() if e["type"] in THERAPY_EVENTS]


# ---- the PIN typed again into an open session ------------------------------------------------
def test_sr6_1234_hash_typed_into_the_unlocked_menu_starts_nothing(rig: PanelRig) -> None:
    program(rig)  # stopped, programmed: 1 is Start on the menu and # confirms
    assert rig.screen.startswith("MENU")
    before = therapy_events(rig)
    rig.keys("1234#")
    assert rig.pump.state == "stopped"
    assert therapy_events(rig) == before
    assert rig.screen.splitlines()[:2] == ["ALREADY UNLOCKED", "No PIN needed now."]
    rig.wait(5)
    assert rig.screen.startswith("MENU")  # and back, nothing done


def test_sr6_the_session_pin_typed_again_says_already_unlocked(running: PanelRig) -> None:
    before = therapy_events(running)
    running.keys(PIN + "#")
    assert running.screen.startswith("ALREADY UNLOCKED")
    assert running.pump.state == "running" and therapy_events(running) == before


@pytest.mark.parametrize("state", ["stopped", "running"])
def test_sr6_no_pin_like_sequence_typed_into_the_menu_changes_therapy(
        rig: PanelRig, state: str) -> None:
    """400 PIN-shaped sequences (4 to 8 digits, then #), each typed into the open menu:
    none starts, stops, doses, loads, clears or programs anything."""
    program(rig)
    if state == "running":
        rig.keys("1#")
        rig.wait(5)
    assert rig.pump.state == state
    rig.put(Sensor("occlusion", True))  # an alarm to clear: 6 2 # would clear it ...
    rig.put(Sensor("occlusion", False))  # ... once its cause is gone
    rig.put(PendingPrescription(dict(MORPHINE_RX), "next.pca-rx.toml"))  # 0 0 # rejects it
    before = therapy_events(rig)
    rng = random.Random(14)
    for _ in range(400):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 8)))
        rig.keys(digits + "#")
        assert therapy_events(rig) == before, (digits, rig.screen)
        rig.pump.panel.main_menu()  # as the message timing out would
        rig.pump.desk.touch_session(editing=False)
    assert rig.pump.state in (state, "alarm")


def test_sr6_a_digit_swallowed_by_a_message_never_confirms_the_next_screen(
        running: PanelRig) -> None:
    """6 alarms, 1 silence (a message), 2 dismisses it, 3 loading dose, # confirm: the PIN
    6123 typed into the menu. The # is not taken as the loading dose's confirmation."""
    running.put(Sensor("battery_low", True))
    running.wait(2)
    before = therapy_events(running)
    running.keys("6123#")
    assert not running.events("dose_started") or therapy_events(running) == before
    assert therapy_events(running) == before
    assert running.screen.startswith("ALREADY UNLOCKED")
    running.wait(5)
    running.keys("3#")  # the loading dose itself, asked for properly, still works
    assert running.last("dose_started")["source"] == "loading"


def test_sr6_a_pin_longer_than_an_amount_typed_into_the_bolus_entry_gives_nothing(
        running: PanelRig) -> None:
    """2 opens the bolus amount (5 digits at most): the PIN 4829163 typed after it is not an
    amount, and its # answers nothing; an amount typed properly still works."""
    before = therapy_events(running)
    running.keys("2" + "4829163#")
    assert running.screen.startswith("ALREADY UNLOCKED")
    assert therapy_events(running) == before
    running.wait(5)
    running.keys("2150#")
    assert running.screen.startswith("GIVE BOLUS?")


# ---- every therapy change is confirmed by # on a screen naming it ----------------------------
def confirm_screen(rig: PanelRig, keys: str, title: str) -> str:
    rig.keys(keys)
    assert rig.screen.startswith(title), rig.screen
    return rig.screen


@pytest.mark.parametrize(("setup", "keys", "title", "values", "event"), [
    ("stopped", "1", "START DELIVERY?", ["morphine 1 mg/mL", "Basal 0.5 mL/h"],
     "state_changed"),
    ("running", "1", "STOP DELIVERY?", ["Now 0.5 mL/h"], "state_changed"),
    ("running", "2150#", "GIVE BOLUS?", ["1.5 mg = 1.5 mL"], "dose_started"),
    ("running", "3", "GIVE LOADING DOSE?", ["2 mg = 2 mL"], "dose_started"),
    ("stopped", "7200#", "LOAD NEW SYRINGE?", ["Volume 20 mL"], "syringe_changed"),
    ("stopped", "8", "NEW PATIENT?", ["Clears Rx"], "new_patient"),
    ("alarm", "62", "CLEAR ALARMS?", ["OCCLUSION"], "alarm_cleared"),
    ("rx_file", "0", "REJECT THIS RX?", ["File next.pca-rx"], "prescription_dismissed"),
])
def test_sr6_each_therapy_change_has_a_confirmation_naming_it_and_no_digit_confirms_it(
        rig: PanelRig, setup: str, keys: str, title: str, values: list[str],
        event: str) -> None:
    program(rig)
    if setup in ("running", "alarm"):
        rig.keys("1#")
        rig.wait(5)
    if setup == "alarm":
        rig.put(Sensor("occlusion", True), Sensor("occlusion", False))
    if setup == "rx_file":
        rig.put(PendingPrescription(dict(MORPHINE_RX), "next.pca-rx.toml"))
        rig.keys("0")  # the review; its 0 is "reject"
    for digit in "0123456789":
        screen = confirm_screen(rig, keys, title)
        for value in values:
            assert value in screen
        assert screen.splitlines()[3].startswith("#=")  # confirmed by #, said so
        before = therapy_events(rig)
        rig.keys(digit)
        assert therapy_events(rig) == before, digit
        assert rig.screen.startswith("ALREADY UNLOCKED"), digit
        rig.keys("#")  # ends the stray keys, still nothing done
        assert therapy_events(rig) == before, digit
        rig.wait(5)
        if setup == "rx_file":
            rig.keys("0")
    confirm_screen(rig, keys, title)
    rig.keys("#")
    assert rig.events(event)[-1]["seq"] > max(seq for _, seq in before)


def test_a_pin_typed_over_the_silenced_message_is_not_cut_short(running: PanelRig) -> None:
    """Silence from the locked screen, then the PIN at once: the digit that ends the message
    is the PIN's first, not swallowed (which made a counted wrong PIN)."""
    running.keys("*")
    running.put(Sensor("occlusion", True))
    running.keys("*")
    assert running.screen.startswith("Alarm silenced")
    running.unlock()
    assert running.pump.session_open()
    assert [e["outcome"] for e in running.events("auth")][-1] == "ok"
    assert all(e["outcome"] == "ok" for e in running.events("auth"))


# ---- # alone on the locked screen ------------------------------------------------------------
def test_hash_alone_opens_an_admin_entry_that_says_what_it_is(rig: PanelRig) -> None:
    rig.keys("#")
    lines = rig.screen.splitlines()
    assert lines[0] == "ADMIN PIN (service)"
    assert lines[2] == "PIN reset, drug lib"  # what an admin may do: never therapy
    assert lines[3] == "#=enter *=back"
    rig.keys("*")
    assert rig.screen.endswith("Locked: PIN then #")


# ---- the screen tells the truth --------------------------------------------------------------
def test_silenced_is_gone_from_the_home_screen_once_the_alarms_are_cleared(
        running: PanelRig) -> None:
    rig = running
    rig.keys("*")
    rig.put(Sensor("occlusion", True))
    rig.keys("*")  # silence from the locked screen
    rig.wait(5)
    assert "SILENCED" in rig.screen.splitlines()[2]
    rig.put(Sensor("occlusion", False))
    rig.unlock()
    rig.keys("62#")  # alarms, clear, confirmed
    assert rig.last("alarm_cleared")["alarm"] == "occlusion"
    rig.wait(5)
    rig.keys("*")
    assert "SILENCED" not in rig.screen
    assert not rig.pump.snapshot().silenced


def test_a_silence_ends_with_the_last_alarm_and_a_new_alarm_sounds(running: PanelRig) -> None:
    rig = running
    rig.put(Sensor("battery_low", True))
    rig.wait(2)
    rig.keys("*")
    rig.keys("*")
    assert rig.pump.snapshot().silenced
    rig.put(Sensor("battery_low", False))  # clears itself
    rig.wait(2)
    assert not rig.pump.snapshot().silenced and "SILENCED" not in rig.screen


def test_the_menu_start_stop_label_follows_the_pump(running: PanelRig) -> None:
    assert "1 Stop" in running.screen
    running.put(Sensor("door_open", True))  # the pump stops itself
    assert running.pump.state == "alarm"
    assert "1 Start" in running.screen and "1 Stop" not in running.screen


def test_the_rx_banner_goes_once_the_prescription_is_activated(rig: PanelRig) -> None:
    rig.put(PendingPrescription(dict(MORPHINE_RX), "rx.pca-rx.toml"))
    assert rig.screen.endswith("New Rx: PIN then #")
    rig.unlock()
    rig.keys("#" * 7 + PIN + "#")
    assert rig.last("prescription_activated")
    rig.wait(5)
    assert "0 New Rx!" not in rig.screen
    rig.keys("*")
    assert rig.screen.endswith("Locked: PIN then #")
