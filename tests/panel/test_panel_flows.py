"""Every keypad flow of the clinician front panel, driven key by key on the real pump (SR-6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from panel_rig import ADMIN_PIN, MORPHINE_RX, PIN, PanelRig, program

from pca.controller.inputs import BolusButton, ClinicianCommand, PendingPrescription, Sensor


@pytest.fixture
def rig(tmp_path: Path) -> PanelRig:
    return PanelRig(tmp_path / "events.db")


@pytest.fixture
def running(rig: PanelRig) -> PanelRig:
    program(rig)
    rig.keys("1#")  # start, confirmed
    rig.wait(5)  # the message goes
    assert rig.pump.state == "running"
    return rig


# ---- home screen and unlock ------------------------------------------------------------------
def test_home_screen_tells_state_drug_rate_reservoir_and_the_alarm_with_what_to_do(
        running: PanelRig) -> None:
    rig = running
    rig.keys("*")  # lock
    assert rig.screen.splitlines() == [
        "RUNNING     0.5 mL/h", "morphine 1 mg/mL", "Res 30.0 mL", "Locked: PIN then #"]
    rig.put(Sensor("occlusion", True))
    lines = rig.screen.splitlines()
    assert lines[0] == "ALARM STOP"
    assert lines[3] == "OCCLUSION:check line"


def test_home_screen_shows_the_highest_alarm_and_how_many_more(running: PanelRig) -> None:
    running.keys("*")
    running.put(Sensor("battery_low", True), Sensor("door_open", True))
    lines = running.screen.splitlines()
    assert lines[2].endswith("+1 alarm")
    assert lines[3] == "DOOR OPEN: close it"


def test_sr6_unlock_with_pin_and_enter_shows_one_star_per_digit(rig: PanelRig) -> None:
    rig.keys("4829")
    assert "PIN: ****" in rig.screen and "4829" not in rig.screen
    rig.keys("16#")
    assert rig.last("auth")["outcome"] == "ok"
    assert rig.screen.startswith("MENU")


def test_sr6_wrong_pin_is_refused_and_star_clears_a_half_typed_pin(rig: PanelRig) -> None:
    rig.keys("111111#")
    assert "Wrong PIN" in rig.screen
    assert rig.last("auth")["outcome"] == "failed"
    rig.keys("48*" + PIN + "#")
    assert rig.last("auth")["outcome"] == "ok"
    assert rig.pump.session_open()


def test_sr6_too_short_a_pin_is_not_sent_and_not_counted(rig: PanelRig) -> None:
    rig.keys("12#")
    assert "PIN is 4-8 digits" in rig.screen
    assert rig.events("auth") == []


def test_sr6_star_on_an_empty_pin_goes_home(rig: PanelRig) -> None:
    rig.keys("4*")
    assert rig.screen.startswith("ENTER PIN")
    rig.keys("*")
    assert rig.screen.endswith("Locked: PIN then #")


def test_lock_with_star_from_the_menu(rig: PanelRig) -> None:
    rig.unlock()
    rig.keys("*")
    assert not rig.pump.session_open()
    assert rig.last("session_locked")["reason"] == "clinician"
    rig.put(ClinicianCommand("new_patient"))
    assert rig.last("action_rejected")["reason"].startswith("the keypad is locked")


# ---- SR-6 timeouts ---------------------------------------------------------------------------
def test_sr6_keypad_relocks_after_30s_idle(rig: PanelRig) -> None:
    rig.unlock()
    rig.wait(29.9)
    assert rig.pump.session_open() and rig.screen.startswith("MENU")
    rig.wait(0.2)
    assert not rig.pump.session_open()
    assert rig.last("session_locked")["reason"] == "idle"
    assert rig.screen.endswith("Locked: PIN then #")


def test_sr6_inside_an_edit_the_session_lasts_4_minutes_then_relocks(running: PanelRig) -> None:
    rig = running
    rig.keys("2")  # clinician bolus: an amount edit
    rig.keys("1")
    rig.wait(239)
    assert rig.pump.session_open()
    assert "1.00 mg" not in rig.screen and "0.01 mg" in rig.screen  # still the edit
    rig.wait(2)
    assert not rig.pump.session_open()
    assert rig.screen.endswith("Locked: PIN then #")
    rig.unlock()
    rig.keys("2")
    assert "_ mg" in rig.screen  # nothing kept from the abandoned edit


def test_sr6_outside_an_edit_4_minutes_is_not_granted(running: PanelRig) -> None:
    running.keys("4")  # viewing the prescription is not an edit
    running.wait(31)
    assert not running.pump.session_open()


def test_every_screen_times_out_a_half_typed_pin_is_dropped_after_30s(rig: PanelRig) -> None:
    rig.keys("482")
    rig.wait(29)
    assert "PIN: ***" in rig.screen
    rig.wait(2)
    assert rig.screen.endswith("Locked: PIN then #")
    rig.keys("916#")  # the dropped digits do not complete a PIN
    assert "PIN is 4-8 digits" in rig.screen
    assert not rig.pump.session_open() and rig.events("auth") == []


def test_messages_time_out_by_themselves(running: PanelRig) -> None:
    running.keys("1#")  # stop
    assert running.screen.startswith("Delivery stopped")
    running.wait(4.1)
    assert running.screen.startswith("MENU")


# ---- start / stop ----------------------------------------------------------------------------
def test_start_and_stop_need_confirmation_and_star_cancels(rig: PanelRig) -> None:
    program(rig)
    rig.keys("1")
    assert rig.screen.startswith("START DELIVERY?")
    rig.keys("*")
    assert rig.pump.state == "stopped"
    rig.keys("1#")
    assert rig.pump.state == "running"
    rig.wait(5)
    rig.keys("1")
    assert rig.screen.startswith("STOP DELIVERY?")
    rig.keys("*")
    assert rig.pump.state == "running"
    rig.keys("1#")
    assert rig.pump.state == "stopped"


def test_start_without_a_prescription_says_what_to_do(rig: PanelRig) -> None:
    rig.unlock()
    rig.keys("1")
    assert "No prescription" in rig.screen
    assert rig.pump.state == "unprogrammed"


# ---- clinician bolus and loading dose --------------------------------------------------------
def test_clinician_bolus_amount_limits_and_confirmation_in_ml_and_drug_unit(
        running: PanelRig) -> None:
    rig = running
    rig.keys("2")
    assert rig.screen.startswith("CLINICIAN BOLUS") and "max 2 mg" in rig.screen
    rig.keys("250#")  # 2.50 mg > clinician_bolus_max 2 mg
    assert "above max 2 mg" in rig.screen
    assert rig.pump.state == "running"
    rig.keys("150#")
    assert rig.screen.splitlines()[:2] == ["GIVE BOLUS?", "1.5 mg = 1.5 mL"]
    rig.keys("#")
    assert rig.pump.state == "clinician_dose"
    started = rig.last("dose_started")
    assert started["source"] == "clinician" and started["amount_ml"] == 1.5
    assert started["actor"] == "clinician"


def test_clinician_bolus_star_deletes_then_backs_out(running: PanelRig) -> None:
    running.keys("2159")
    assert "1.59 mg" in running.screen
    running.keys("*")
    assert "0.15 mg" in running.screen
    running.keys("***")
    assert running.screen.startswith("MENU")
    assert running.pump.state == "running"


def test_no_value_is_prefilled_from_a_previous_entry(running: PanelRig) -> None:
    running.keys("2100##")  # 1 mg bolus
    running.wait(70)
    running.unlock()
    running.keys("2")
    assert "_ mg" in running.screen


def test_clinician_bolus_in_ml_units_shows_both(rig: PanelRig) -> None:
    rx = dict(MORPHINE_RX, dose_unit="ml", concentration_per_ml=2.0, basal_rate_per_h=0.25,
              pca_dose=0.5, dose_limit=3.0, loading_dose=1.0, clinician_bolus_max=1.0)
    program(rig, rx)
    rig.keys("1#")
    rig.wait(5)
    rig.keys("2050#")
    assert "1 mg = 0.5 mL" in rig.screen


def test_clinician_bolus_needs_the_pump_running(rig: PanelRig) -> None:
    program(rig)
    rig.keys("2")
    assert "needs the pump" in rig.screen


def test_loading_dose_is_confirmed_with_its_amount(running: PanelRig) -> None:
    running.keys("3")
    assert running.screen.splitlines()[:2] == ["GIVE LOADING DOSE?", "2 mg = 2 mL"]
    running.keys("#")
    assert running.pump.state == "loading_dose"
    assert running.last("dose_started")["source"] == "loading"


# ---- view prescription and history -----------------------------------------------------------
def test_view_prescription_pages_through_every_value_in_both_units(running: PanelRig) -> None:
    running.keys("4")
    seen = []
    for _ in range(7):
        seen.append(running.screen)
        running.keys("#")
    text = "\n".join(seen)
    for needle in ("ACTIVE PRESCRIPTION", "morphine", "PCA dose     1     1",
                   "Basal/h    0.5   0.5", "Limit/4h     6     6", "Loading      2     2",
                   "ClinMax      2     2", "Lockout 10 min", "Max PCA/h 4",
                   "Lib 2026.12-default"):
        assert needle in text, needle


def test_history_shows_pca_given_and_attempted_per_hour_and_totals(running: PanelRig) -> None:
    rig = running
    rig.keys("*")
    rig.put(BolusButton(True))  # granted
    rig.put(BolusButton(False))
    rig.wait(120)
    rig.put(BolusButton(True))  # denied: lockout
    rig.put(BolusButton(False))
    rig.wait(3600)
    rig.put(BolusButton(True))  # granted, an hour later
    rig.put(BolusButton(False))
    rig.wait(200)
    rig.unlock()
    rig.keys("5")
    assert rig.screen.startswith("HISTORY: LAST HOURS")
    rig.keys("3#")
    assert rig.screen.splitlines()[:3] == ["LAST 3 H", "PCA given   2", "PCA tried   3"]
    rig.keys("#")
    assert rig.screen.splitlines()[:3] == ["h ago    given tried", "0-1          1     1",
                                           "1-2          1     2"]
    rig.keys("##")
    totals = rig.screen
    assert "Pca          2     2" in totals


def test_history_hours_are_checked(running: PanelRig) -> None:
    running.keys("5")
    running.keys("99#")
    assert "1 to 72 h" in running.screen


# ---- alarms ----------------------------------------------------------------------------------
def test_silence_and_clear_alarms_from_the_menu(running: PanelRig) -> None:
    rig = running
    rig.put(Sensor("occlusion", True))
    rig.keys("6")
    assert "OCCLUSION" in rig.screen and "clamps" in rig.screen
    rig.keys("1")
    assert rig.last("alarm_silenced")["alarm"] == "occlusion"
    rig.wait(5)
    rig.keys("6")
    rig.keys("2#")  # clear, confirmed: the occlusion is still there
    assert "REFUSED" in rig.screen and "occlusion" in rig.screen
    rig.put(Sensor("occlusion", False))
    rig.keys("*6")
    rig.keys("2#")
    assert rig.screen.startswith("Alarms cleared")
    assert rig.last("alarm_cleared")["alarm"] == "occlusion"
    assert rig.pump.state == "stopped"


def test_a_high_alarm_is_named_on_the_menu_too(running: PanelRig) -> None:
    running.put(Sensor("air_in_line", True))
    assert running.screen.splitlines()[0] == "AIR IN LINE:re-prime"
    running.put(Sensor("air_in_line", False), Sensor("door_open", True))
    assert running.screen.splitlines()[0] == "!DOOR OPEN: close it"
    assert "1 Stop" in running.screen or "1 Start" in running.screen


def test_silence_from_the_locked_home_screen_needs_no_pin(running: PanelRig) -> None:
    running.keys("*")
    running.put(Sensor("occlusion", True))
    running.keys("*")
    assert running.last("alarm_silenced")["alarm"] == "occlusion"
    assert running.screen.startswith("Alarm silenced")
    running.wait(5)
    assert "SILENCED" in running.screen.splitlines()[2]
    assert not running.pump.session_open()


# ---- syringe, patient, PIN -------------------------------------------------------------------
def test_new_syringe_volume_is_entered_and_confirmed(rig: PanelRig) -> None:
    program(rig)
    rig.keys("7")
    assert "_ mL" in rig.screen
    rig.keys("200#")
    assert rig.screen.startswith("LOAD NEW SYRINGE?") and "20 mL" in rig.screen
    rig.keys("#")
    assert rig.last("syringe_changed")["syringe_ml"] == 20.0
    rig.wait(5)
    rig.keys("7")
    rig.keys("1500#")  # 150 mL is more than a syringe holds
    assert "max" in rig.screen or "to 100" in rig.screen
    assert rig.last("syringe_changed")["syringe_ml"] == 20.0


def test_new_syringe_needs_the_pump_stopped(running: PanelRig) -> None:
    running.keys("7")
    assert "Stop the pump" in running.screen


def test_new_patient_clears_prescription_after_confirmation(rig: PanelRig) -> None:
    program(rig)
    rig.keys("8")
    assert rig.screen.startswith("NEW PATIENT?")
    rig.keys("*")
    assert rig.pump.rx is not None
    rig.keys("8#")
    assert rig.pump.rx is None and rig.pump.state == "unprogrammed"
    assert rig.events("new_patient")


def test_change_pin_needs_the_current_pin_and_the_new_one_twice(rig: PanelRig) -> None:
    rig.unlock()
    rig.keys("9" + "000000#")  # wrong current PIN
    rig.keys("5738#5738#")
    assert "wrong" in rig.screen.lower()
    rig.wait(5)
    rig.keys("**")  # back to the menu, then lock (a PIN typed into the menu does nothing)
    rig.unlock()
    rig.keys("9" + PIN + "#" + "5738#" + "5739#")
    assert rig.screen.startswith("PINs differ")
    rig.wait(5)
    rig.keys("9" + PIN + "#" + "1111#1111#")
    assert "too easy" in rig.screen
    rig.wait(5)
    rig.keys("**")  # back to the menu, then lock
    rig.unlock()
    rig.keys("9" + PIN + "#" + "5738#5738#")
    assert rig.screen.startswith("Clinician PIN")
    changed = rig.last("pin_changed")
    assert changed["role"] == "clinician" and changed["by"] == "clinician"
    rig.wait(5)
    rig.keys("*")
    rig.unlock()  # the old PIN
    assert not rig.pump.session_open()
    rig.keys("*")
    rig.unlock("5738")
    assert rig.pump.session_open()


# ---- admin role ------------------------------------------------------------------------------
def test_admin_unlocks_with_hash_first_and_gets_only_admin_items(rig: PanelRig) -> None:
    rig.keys("#" + ADMIN_PIN + "#")
    assert rig.screen.startswith("ADMIN")
    assert rig.last("auth")["role"] == "admin"
    rig.put(ClinicianCommand("new_patient"))  # therapy is not an admin's
    assert rig.last("action_rejected")["reason"].startswith("the keypad is locked")


def test_the_clinician_pin_does_not_open_the_admin_menu_nor_the_admin_pin_therapy(
        rig: PanelRig) -> None:
    rig.keys("#" + PIN + "#")
    assert not rig.pump.session_open()
    rig.keys("*")
    rig.unlock(ADMIN_PIN)
    assert not rig.pump.session_open()


def test_admin_resets_a_forgotten_clinician_pin(rig: PanelRig) -> None:
    rig.keys("#" + ADMIN_PIN + "#")
    rig.keys("1" + "2614#2614#")
    assert rig.screen.startswith("Clinician PIN set")
    changed = rig.last("pin_changed")
    assert changed["role"] == "clinician" and changed["by"] == "admin"
    rig.wait(5)
    rig.keys("*")
    rig.unlock("2614")
    assert rig.pump.session_open() and rig.pump.session_role == "clinician"


def test_a_pending_prescription_waits_for_a_clinician_and_shows_on_home(rig: PanelRig) -> None:
    rig.put(PendingPrescription(dict(MORPHINE_RX), "a.pca-rx.toml"))
    assert rig.screen.endswith("New Rx: PIN then #")
    rig.unlock()
    assert rig.screen.startswith("NEW RX")
