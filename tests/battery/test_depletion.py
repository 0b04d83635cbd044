"""At depletion the daemon stops cleanly: motor halted, every event durable, log closed."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pca.app.bench_power import LIBRARY, PIN, PROFILE, _rx
from pca.app.config import Config
from pca.app.daemon import wire
from pca.app.notify import Notifier
from pca.app.power import EXIT_POWER_RETURNED, PowerSupervisor
from pca.app.sleeploop import SleepingLoop
from pca.controller import auth
from pca.controller.inputs import BolusButton, ClinicianCommand, PanelCommand
from pca.store.eventlog import SqliteEventLog, export_rows
from pca.therapy.drugs import parse_library


def _wait(what: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


@pytest.mark.parametrize("cause", ["gauge", "line"])
def test_sr4_depletion_shutdown_flushes_every_event(tmp_path: Path, cause: str) -> None:
    auth.SCRYPT_N = 2**10
    db = tmp_path / "events.db"
    log = SqliteEventLog(db)
    log.set_pin_hash("clinician", auth.hash_pin(PIN))
    log.close()
    wiring = wire(Config(profile=PROFILE), sim=True, db=db,
                  library=parse_library(LIBRARY, "test"))
    assert not wiring.problems
    pump, gauge = wiring.pump, wiring.gauge
    emitted: list[str] = []
    pump.journal.observers.append(lambda type_, fields, pump_ns: emitted.append(type_))
    pump.put(ClinicianCommand("program", PIN, {"prescription": _rx(10.0)}))
    pump.put(PanelCommand("start"))
    loop = SleepingLoop(wiring, 50, Notifier(address=""))
    loop.power = PowerSupervisor(wiring, gauge)
    stack = wiring.stack
    wiring.hardware.start()
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: pump.state == "running")
        pump.put(BolusButton(True))
        pump.put(BolusButton(False))
        _wait(lambda: pump.state == "pca_dose")
        if cause == "gauge":
            gauge.set(time.monotonic_ns(), soc_pct=1.05, load_w=40.0)  # ~0.5 s left
        else:
            wiring.panel.set_input("battery_depleted", True)  # the board's line
        _wait(lambda: loop.power.reason is not None)
        # The power is going: the alarm sounds from the loop, the pump is stopped.
        _wait(lambda: wiring.hardware.annunciator.state.red or
              wiring.hardware.annunciator.state.sound_hz is not None)
        assert pump.state == "alarm" and not wiring.motor.enabled
        steps_then = wiring.motor.count(time.monotonic_ns())
        time.sleep(0.2)
        assert wiring.motor.count(time.monotonic_ns()) == steps_then
        assert thread.is_alive()  # holding the alarm, not gone
        if cause == "gauge":
            gauge.set(time.monotonic_ns(), mains=True)  # power back: restart for systemd
            thread.join(5)
            assert loop.exit_code == EXIT_POWER_RETURNED
    finally:
        loop.stop.set()
        thread.join(5)
        # Kill the power: nothing more is called on the pump or the log (no shutdown()).
        wiring.hardware.stop()
        stack.pop_all()
    rows = list(export_rows(db))
    assert rows[-1]["type"] == "power_down"
    assert rows[-1]["reason"].startswith("fuel gauge" if cause == "gauge" else "battery_depleted")
    stored = [r["type"] for r in rows]
    assert stored[-len(emitted):] == emitted  # every event the pump logged is on disk
    assert "dose_ended" in stored and "battery_status" in stored
    assert any(r["type"] == "alarm_raised" and r["alarm"] == "battery_depleted" for r in rows)
