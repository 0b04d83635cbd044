"""`pca sim` tells only what is true now: the silence goes with the alarms, the Rx file note
goes once the file is activated, and a press always gets an answer on the display and lamps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("textual")

from sim_rig import SimPilot, run_sim

from pca.app.sim_world import DEMO_PIN


def silence_left_s(lamps: str) -> int:
    found = re.search(r"SILENCED (\d+):(\d\d) left", lamps)
    assert found, lamps
    return int(found[1]) * 60 + int(found[2])


def test_silenced_leaves_the_lamp_panel_and_the_display_when_the_alarm_is_cleared(
        tmp_path: Path) -> None:
    async def body(sim: SimPilot) -> None:
        await sim.program_and_start()
        await sim.press("o")  # occlusion
        await sim.keypad("*")  # silence from the locked screen
        first = silence_left_s(sim.widget("lamps"))  # the time left, not a fixed "2 min"
        assert 115 <= first <= 120
        await sim.wait(30)
        assert silence_left_s(sim.widget("lamps")) == pytest.approx(first - 30, abs=1)
        await sim.press("o", then_s=2)  # the line clears; the alarm latches
        await sim.keypad(DEMO_PIN + "#")
        await sim.keypad("62#")  # alarms, clear, confirmed
        assert sim.events("alarm_cleared", alarm="occlusion")
        assert "SILENCED" not in sim.widget("lamps")
        await sim.wait(5)
        await sim.keypad("*")
        assert "SILENCED" not in sim.screen

    run_sim(tmp_path / "sim.db", body)


def test_the_rx_file_note_goes_once_the_prescription_is_activated(tmp_path: Path) -> None:
    async def body(sim: SimPilot) -> None:
        await sim.press("r")
        assert "Rx file arrived" in sim.widget("status")
        await sim.keypad(DEMO_PIN + "#")
        for _ in range(15):
            if "PIN TO ACTIVATE" in sim.screen:
                break
            await sim.keypad("#")
        await sim.keypad(DEMO_PIN + "#")
        assert sim.events("prescription_activated")
        assert "Rx file arrived" not in sim.widget("status")

    run_sim(tmp_path / "sim.db", body)


def test_a_sim_shortcut_note_goes_after_a_while(tmp_path: Path) -> None:
    async def body(sim: SimPilot) -> None:
        await sim.press("p")
        assert "SIM SHORTCUT" in sim.widget("status")
        await sim.wait(15)
        assert "SIM SHORTCUT" not in sim.widget("status")

    run_sim(tmp_path / "sim.db", body)
