"""`pca sim` and its simulated pack: on mains at the desk; `a` pulls the plug, the pack drains."""

from __future__ import annotations

from pathlib import Path

from pca.app.power import PI_ZERO_2W_IDLE_W, STEPPER_RUN_W
from pca.app.sim_world import DEMO_PIN, SimWorld
from pca.controller.ports import NS_PER_S
from pca.store.eventlog import export_rows

START_WALL_NS = 1_770_000_000 * NS_PER_S


def test_pulling_the_plug_runs_the_pump_on_its_pack(tmp_path: Path) -> None:
    world = SimWorld(tmp_path / "sim.db", start_wall_ns=START_WALL_NS)
    try:
        world.program_demo_rx()
        world.press_keys(DEMO_PIN + "#1#")
        world.advance(5 * NS_PER_S)
        assert world.pump.state == "running"
        assert world.toggle_mains() is False
        world.advance(3600 * NS_PER_S)
        status = [e for e in export_rows(world.db) if e["type"] == "battery_status"]
        assert status[0]["mains"] is True and status[1]["mains"] is False
        # An hour at the Pi's 0.6 W plus the stepper's 0.5 W from 10 Wh: 11 % used.
        used_pct = (PI_ZERO_2W_IDLE_W + STEPPER_RUN_W) * 1.0 / 10.0 * 100
        assert abs(status[-1]["soc_pct"] - (100 - used_pct)) <= 1
        assert status[-1]["time_remaining_min"] is not None
        assert world.toggle_mains() is True
    finally:
        world.close()
