"""The simulator's world without a screen: virtual time that skips idle ticks but never a key,
the demo PIN only on a fresh log, clean quit and restart, and the headless demo."""

from __future__ import annotations

import sqlite3
from argparse import Namespace
from pathlib import Path

import pytest

from pca.app import sim
from pca.app.sim_world import DEMO_PIN, MS, TICK_NS, SimWorld
from pca.controller.auth import hash_pin
from pca.controller.ports import NS_PER_S
from pca.store.eventlog import SqliteEventLog, export_rows
from pca.store.verify import verify

START_WALL_NS = 1_770_000_000 * NS_PER_S


def events(db: Path, kind: str, **match: object) -> list[dict[str, object]]:
    return [e for e in export_rows(db)
            if e["type"] == kind and all(e.get(k) == v for k, v in match.items())]


def test_a_long_jump_skips_idle_ticks_but_sees_every_key(tmp_path: Path) -> None:
    world = SimWorld(tmp_path / "sim.db", start_wall_ns=START_WALL_NS)
    ticks: list[int] = []
    real_tick = world.pump.tick

    def counted() -> None:
        ticks.append(world.now_ns)
        real_tick()

    world.pump.tick = counted  # type: ignore[method-assign]
    try:
        world.program_demo_rx()
        world.press_keys(DEMO_PIN + "#1#")  # unlock, menu 1 (start), # confirms
        world.press_bolus()
        world.advance(3600 * NS_PER_S)  # one call: what a 600x frame does, 6 minutes' worth
        assert events(world.db, "auth", outcome="ok")
        assert events(world.db, "state_changed", to="running")
        assert world.pump.state in ("running", "pca_dose")
        # 72,000 ticks at the full 50 ms period; the idle ones were skipped ...
        assert len(ticks) < 2_000
        # ... and those that ran are on the control loop's 50 ms grid.
        assert all(t % TICK_NS == 0 for t in ticks)
        assert not world.busy
    finally:
        world.close()


def test_a_press_held_too_briefly_for_the_debounce_is_not_a_request(tmp_path: Path) -> None:
    world = SimWorld(tmp_path / "sim.db", start_wall_ns=START_WALL_NS)
    try:
        world.panel.press_button()  # straight on the pin, bypassing the simulated finger
        world.advance(10 * MS)
        world.panel.release_button()
        world.advance(NS_PER_S)
        assert not events(world.db, "pca_request")
        world.press_bolus()
        world.advance(NS_PER_S)
        assert [e["reason"] for e in events(world.db, "pca_request")] == ["not_running"]
    finally:
        world.close()


def test_quit_is_a_clean_shutdown_and_the_next_start_resumes_the_log(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    world = SimWorld(db, start_wall_ns=START_WALL_NS)
    world.program_demo_rx()
    world.press_keys(DEMO_PIN + "#1#")
    world.advance(600 * NS_PER_S)
    given_ml = world.view().delivered_ml["basal"]
    assert given_ml > 0
    world.close()
    assert events(db, "dose_ended") == [] and events(db, "shutdown")

    again = SimWorld(db, start_wall_ns=START_WALL_NS)
    try:
        view = again.view()
        assert view.state == "stopped"  # programmed, waiting for a clinician to start
        assert "delivery_interrupted" not in [a.name for a in view.alarms]
        assert view.demo_pin == DEMO_PIN  # the log it made still opens with it
        assert view.delivered_ml["basal"] == given_ml  # counted in steps, so exactly
        assert len(events(db, "pin_changed")) == 1  # provisioned once, on the fresh log
    finally:
        again.close()
    assert verify(db).ok


def test_a_log_with_its_own_pin_gets_no_demo_pin(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    log = SqliteEventLog(db)
    log.set_pin_hash("clinician", hash_pin("582047"))
    log.close()
    world = SimWorld(db, start_wall_ns=START_WALL_NS)
    try:
        assert world.view().demo_pin is None
        assert not world.program_demo_rx()  # the shortcut needs the demo PIN
        world.advance(NS_PER_S)
        assert not events(db, "auth")
        assert world.pump.state == "unprogrammed"
    finally:
        world.close()


def test_a_log_that_fails_verification_refuses_delivery(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    SimWorld(db, start_wall_ns=START_WALL_NS).close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET data = replace(data, '30.0', '99.0')")
    conn.commit()
    conn.close()
    world = SimWorld(db, start_wall_ns=START_WALL_NS)
    try:
        assert "log_failure" in [a.name for a in world.view().alarms]
    finally:
        world.close()


def test_without_a_terminal_it_replays_the_demo_headless(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert sim.main(Namespace(headless=False)) == 0  # pytest's stdout is not a TTY
    out = capsys.readouterr().out
    assert "replayed the demo scenario 'postop_morphine.toml'" in out
    assert '"pca_granted": 3' in out
