"""`pca sim` restarts keep the story straight (issue 14): after a run far ahead of real
time (600x) the next start never logs an earlier wall time, and an alarm active at quit
ends with `alarm_cleared` or is raised again."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

from pca.app.sim_world import DEMO_PIN, SimWorld
from pca.controller.ports import NS_PER_S
from pca.store.eventlog import export_rows


def walls(db: Path) -> list[tuple[int, str, int]]:
    with sqlite3.connect(db) as conn:
        return [(int(r[0]), str(r[1]), int(r[2])) for r in
                conn.execute("SELECT seq, type, wall_ns FROM events ORDER BY seq")]


def open_in_log(db: Path) -> set[str]:
    active: set[str] = set()
    for e in export_rows(db):
        if e["type"] == "alarm_raised":
            active.add(str(e["alarm"]))
        elif e["type"] == "alarm_cleared":
            active.discard(str(e["alarm"]))
    return active


def test_sr5_a_restart_after_a_run_at_600x_never_logs_an_earlier_wall_time(
        tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    world = SimWorld(db)  # real wall time at start, as `pca sim` does
    world.program_demo_rx()
    world.press_keys(DEMO_PIN + "#1#")
    world.advance(2 * 3600 * NS_PER_S)  # 12 real seconds at 600x
    world.close()
    again = SimWorld(db)  # started again a moment later in real time
    again.advance(NS_PER_S)
    again.close()
    rows = walls(db)
    backwards = [(a, b) for a, b in itertools.pairwise(rows) if b[2] < a[2]]
    assert backwards == []
    shutdown = next(w for _, kind, w in rows if kind == "shutdown")  # the quit before
    assert next(w for _, kind, w in rows if kind == "restarted") >= shutdown


def test_sr5_battery_low_active_at_quit_is_cleared_at_restart_when_the_line_is_idle(
        tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    world = SimWorld(db)
    world.set_line("battery_low", True)
    world.advance(5 * NS_PER_S)
    assert "battery_low" in world.pump.alarms.active
    world.close()
    again = SimWorld(db)  # every switch starts off
    try:
        again.advance(5 * NS_PER_S)
        cleared = [e for e in export_rows(db)
                   if e["type"] == "alarm_cleared" and e["alarm"] == "battery_low"]
        assert [e["reason"] for e in cleared] == ["condition_gone_at_restart"]
        assert open_in_log(db) == set(again.pump.alarms.active)
    finally:
        again.close()


def test_sr5_battery_low_still_low_after_restart_is_raised_again(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    world = SimWorld(db)
    world.set_line("battery_low", True)
    world.advance(5 * NS_PER_S)
    world.close()
    again = SimWorld(db)
    try:
        again.set_line("battery_low", True)
        again.advance(5 * NS_PER_S)
        assert "battery_low" in again.pump.alarms.active
        assert open_in_log(db) == set(again.pump.alarms.active)
    finally:
        again.close()
