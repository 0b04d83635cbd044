"""`pca sim` and the respiratory monitor (SR-13): lower SpO2, stop breathing, unplug."""

from __future__ import annotations

from pathlib import Path

from pca.app.sim_world import DEMO_PIN, SimWorld
from pca.controller.ports import NS_PER_S
from pca.store.eventlog import export_rows

START_WALL_NS = 1_770_000_000 * NS_PER_S


def events(db: Path, kind: str) -> list[dict[str, object]]:
    return [e for e in export_rows(db) if e["type"] == kind]


def running(tmp_path: Path) -> SimWorld:
    world = SimWorld(tmp_path / "sim.db", start_wall_ns=START_WALL_NS)
    world.program_demo_rx()
    world.press_keys(DEMO_PIN + "#1#")
    world.advance(5 * NS_PER_S)
    assert world.pump.state == "running"
    return world


def test_sr13_lowering_spo2_pauses_after_the_demo_delay(tmp_path: Path) -> None:
    world = running(tmp_path)
    try:
        assert [world.lower_spo2() for _ in range(3)] == [94, 91, 88]
        world.advance(29 * NS_PER_S)
        assert world.pump.state == "running"
        world.advance(2 * NS_PER_S)
        assert world.pump.state == "alarm"
        assert [a.name for a in world.view().alarms] == ["spo2_low"]
        world.press_bolus()
        world.advance(NS_PER_S)
        assert events(world.db, "pca_request")[-1]["reason"] == "monitor"
        assert world.view().vitals["spo2"] == 88
    finally:
        world.close()


def test_sr13_no_breath_and_an_unplugged_monitor_pause_too(tmp_path: Path) -> None:
    world = running(tmp_path)
    try:
        world.stop_breathing()
        world.advance(31 * NS_PER_S)
        assert "rr_low" in [a.name for a in world.view().alarms]
        world.breathe_normally()
        assert world.toggle_monitor() is False
        world.advance(31 * NS_PER_S)
        view = world.view()
        assert "monitor_lost" in [a.name for a in view.alarms] and not view.monitor_plugged
        assert world.toggle_monitor() is True
    finally:
        world.close()
