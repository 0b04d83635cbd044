"""SR-7 storage faults: a full disk or a tampered log stops delivery, loses nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_controller import RX, Rig

from pca.controller.inputs import BolusButton, ClinicianCommand, PanelCommand
from pca.store.eventlog import export_rows


def fill_disk(rig: Rig) -> None:
    """Simulate a full disk: SQLite may not grow the file beyond its current pages."""
    pages = rig.log.db.execute("PRAGMA page_count").fetchone()[0]
    rig.log.db.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(rig: Rig) -> None:
    rig.log.db.execute("PRAGMA max_page_count = 1073741823")


@pytest.fixture
def running(tmp_path: Path) -> Rig:
    rig = Rig(tmp_path / "events.db")
    rig.at(0, ClinicianCommand("program", "482916", {"prescription": RX}))
    rig.at(1, PanelCommand("start"))
    return rig


def test_sr7_disk_full_while_running_stops_delivery_and_keeps_events(running: Rig) -> None:
    rig = running
    rig.at(60, BolusButton(True))
    assert rig.pump.state == "pca_dose"
    fill_disk(rig)
    given_at_fault = None
    for t in range(61, 200):
        rig.at(t)
        if rig.pump.state == "alarm" and given_at_fault is None:
            given_at_fault = rig.motor.count(rig.clock.now_ns)
    assert "log_failure" in rig.pump.alarms.active
    assert rig.pump.state == "alarm"
    assert rig.motor.count(rig.clock.now_ns) == given_at_fault  # nothing more delivered
    assert rig.log.pending > 0  # what could not be written is kept
    rig.at(201, BolusButton(True))  # denied (alarm), and logged once the disk has room
    free_disk(rig)
    rig.at(202)
    assert rig.log.pending == 0
    kinds = [e["type"] for e in export_rows(rig.db)]
    assert "alarm_raised" in kinds and kinds.count("dose_ended") == 1
    requests = [e for e in export_rows(rig.db) if e["type"] == "pca_request"]
    assert requests[-1]["reason"] == "alarm"
    detail = next(e for e in export_rows(rig.db) if e.get("alarm") == "log_failure")["detail"]
    assert "Delivery is stopped" in detail and "free space" in detail
    # The alarm latches; a clinician clears it once the log works, then delivery may restart.
    rig.at(203, ClinicianCommand("clear_alarm", "482916"))
    rig.at(204, PanelCommand("start"))
    assert rig.pump.state == "running"


def test_sr7_no_grant_reaches_the_motor_when_it_cannot_be_logged(running: Rig) -> None:
    rig = running
    fill_disk(rig)
    durable = sum(int(e["steps"]) for e in export_rows(rig.db) if e["type"] == "delivery") + \
        [int(e["granted_steps"]) for e in export_rows(rig.db) if e["type"] == "delivery"][-1]
    rig.at(60, BolusButton(True))  # the dose's first grant cannot be logged
    assert rig.pump.state == "alarm"
    stopped_at = rig.motor.count(rig.clock.now_ns)
    rig.at(120)
    assert rig.motor.count(rig.clock.now_ns) == stopped_at <= durable


def test_sr7_log_failing_verify_at_start_up_gives_log_failure(tmp_path: Path) -> None:
    from pca.app.config import Config
    from pca.app.daemon import wire

    db = tmp_path / "events.db"
    first = wire(Config(), sim=True, db=db)
    first.pump.tick()
    first.stack.close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET data = '{}' WHERE seq = 2")
    conn.commit()
    conn.close()
    again = wire(Config(), sim=True, db=db)
    with again.stack:
        assert "log_failure" in again.pump.alarms.active
        assert any("fails verification at seq 2" in p for p in again.problems)
