"""`pca sim` on screen, driven by Textual's Pilot: keys reach the real pump through the mock
pins; assertions read the app's widgets and the pump's event log, never timings."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("textual")

from sim_rig import SimPilot, run_sim

from pca.app.sim_world import DEMO_PIN


def test_a_press_gives_a_dose_and_a_second_press_is_denied(tmp_path: Path) -> None:
    async def body(sim: SimPilot) -> None:
        await sim.program_and_start()
        await sim.press("space")
        assert sim.events("pca_request", outcome="granted")
        assert sim.world.pump.state == "pca_dose"
        assert "PCA DOSE" in sim.widget("therapy")
        assert "PCA given 1, denied 0" in sim.widget("therapy")

        await sim.press("b")  # the other bolus key, while the dose runs
        assert [e["reason"] for e in sim.events("pca_request", outcome="denied")] == \
            ["in_progress"]
        assert "PCA given 1, denied 1 (dose running 1)" in sim.widget("therapy")

        await sim.wait(120)  # 1.5 mL at 60 mL/h takes 90 s; the 8 min lockout goes on
        await sim.press("space")
        assert [e["reason"] for e in sim.events("pca_request", outcome="denied")] == \
            ["in_progress", "lockout"]
        assert "left" in sim.widget("therapy")  # the lockout countdown
        assert "pca 1.500" in sim.widget("therapy")
        ended = sim.events("dose_ended", source="pca")
        assert ended and ended[0]["completion"] == "complete"

    run_sim(tmp_path / "sim.db", body)


def test_the_demo_pin_unlocks_the_keypad_and_a_wrong_one_does_not(tmp_path: Path) -> None:
    async def body(sim: SimPilot) -> None:
        assert f"demo PIN {DEMO_PIN} — simulation only" in sim.widget("status")
        await sim.keypad("9999#")
        assert "Wrong PIN" in sim.screen
        assert sim.events("auth", outcome="failed")
        await sim.keypad("*")  # clear the entry ...
        await sim.keypad(DEMO_PIN)
        assert "PIN: ****" in sim.screen  # masked while typed
        await sim.press("enter")  # ... and enter (Enter is the # key)
        assert "MENU" in sim.screen
        assert sim.events("auth", outcome="ok")
        assert DEMO_PIN not in sim.world.db.read_bytes().decode("latin-1")  # SR-6

    run_sim(tmp_path / "sim.db", body)


def test_an_occlusion_switch_raises_the_alarm_and_stops_delivery(tmp_path: Path) -> None:
    async def body(sim: SimPilot) -> None:
        await sim.program_and_start()
        await sim.press("o")
        assert sim.events("alarm_raised", alarm="occlusion", priority="high")
        assert sim.world.pump.state == "alarm"
        assert "OCCLUSION" in sim.screen
        assert "HIGH" in sim.widget("alarms") and "occlusion" in sim.widget("alarms")
        assert "o occlusion  ON" in sim.widget("lines")
        assert "HIGH: 10 pulses 880 Hz" in sim.widget("lamps")
        lit, sounded = set(), set()
        for _ in range(40):  # 2 s of frames: the red lamp flashes, the burst sounds
            sim.world.advance_s(0.05)
            view = sim.world.view()
            lit.add(view.red)
            sounded.add(view.buzzer_hz)
            assert not view.green and not view.yellow
        assert lit == {True, False}
        assert 880.0 in sounded

        await sim.press("o", then_s=2)  # the line closes again: the alarm latches (SR-4)
        assert sim.world.pump.state == "alarm"
        assert "gone: a clinician clears it" in sim.widget("alarms")

    run_sim(tmp_path / "sim.db", body)


def test_every_line_switch_reaches_the_pump_as_its_alarm(tmp_path: Path) -> None:
    async def body(sim: SimPilot) -> None:
        for key in "adelx":
            await sim.press(key, then_s=2)  # battery_low must hold 1 s
        raised = {e["alarm"] for e in sim.events("alarm_raised")}
        assert {"air_in_line", "door_open", "reservoir_empty", "battery_low",
                "battery_depleted"} <= raised

    run_sim(tmp_path / "sim.db", body)


def test_a_pharmacy_file_is_reviewed_and_activated_on_the_keypad(tmp_path: Path) -> None:
    async def body(sim: SimPilot) -> None:
        await sim.press("r")
        assert sim.events("prescription_received")
        assert sim.world.pump.rx is None  # nothing changes before a clinician confirms
        await sim.keypad(DEMO_PIN + "#")
        for _ in range(15):  # page through the review to the PIN entry
            if "PIN TO ACTIVATE" in sim.screen:
                break
            await sim.keypad("#")
        assert "PIN TO ACTIVATE" in sim.screen
        await sim.keypad(DEMO_PIN + "#")
        assert sim.events("prescription_activated", drug="morphine")
        assert "morphine 1 mg/mL" in sim.widget("therapy")

    run_sim(tmp_path / "sim.db", body)


def test_the_speed_key_cycles_1_10_60_600(tmp_path: Path) -> None:
    async def body(sim: SimPilot) -> None:
        seen = []
        for _ in range(4):
            await sim.press("t", then_s=0)
            seen.append(sim.app.speed)
            assert f"speed {sim.app.speed}x" in sim.widget("status")
        assert seen == [10, 60, 600, 1]

    run_sim(tmp_path / "sim.db", body)


def test_the_timer_advances_virtual_time_by_real_time_x_speed(tmp_path: Path) -> None:
    real = [0]

    async def body(sim: SimPilot) -> None:
        app = sim.app
        app.real_clock_ns = lambda: real[0]
        app.speed = 600
        app._last_real_ns = 0
        start = sim.world.now_ns
        real[0] = 50_000_000  # one 50 ms frame at 600x: 30 virtual seconds
        app._frame()
        assert sim.world.now_ns - start == 30 * 10**9
        real[0] += 10 * 10**9  # a stalled terminal: capped at 0.25 s, no 100-minute jump
        app._frame()
        assert sim.world.now_ns - start == 30 * 10**9 + 150 * 10**9
        assert "(+00:03:00)" in sim.widget("status")

    run_sim(tmp_path / "sim.db", body)


def test_sr13_breathing_keys_pause_the_pump_on_screen(tmp_path: Path) -> None:
    async def body(sim: SimPilot) -> None:
        await sim.program_and_start()
        assert "monitor SpO2 97 EtCO2 38 RR 14 HR 72" in sim.widget("lines")
        await sim.press("n")  # stop breathing
        assert "RR 0" in sim.widget("lines")
        await sim.wait(31)
        assert sim.events("alarm_raised", alarm="rr_low")
        assert "rr_low" in sim.widget("alarms") and "RESP LOW" in sim.screen
        await sim.press("space")
        assert "breathing monitor 1" in sim.widget("therapy")
        await sim.press("m")
        assert "UNPLUGGED" in sim.widget("lines")
        await sim.press("s")
        assert "SpO2 falls to 94" in sim.widget("status")

    run_sim(tmp_path / "sim.db", body)
