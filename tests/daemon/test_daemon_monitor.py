"""`pca run` and the respiratory monitor (SR-13): the configured serial port, the self test."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pca.app.config import Config, ConfigError, MonitorConfig, load_config
from pca.app.daemon import wire
from pca.controller.inputs import ClinicianCommand
from pca.therapy.prescription import parse_request

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hw"))
from nonin_emulator import NoninEmulator, packet

PIN = "482916"
RX = {"drug": "morphine", "concentration_per_ml": 1.0, "dose_unit": "mg", "pca_dose": 1.0,
      "lockout_min": 10, "dose_limit": 6.0}


def programmed(db: Path, required: bool | None) -> None:
    """A log whose prescription has (or has no) [monitor] table; the pump then stops."""
    wiring = wire(Config(), sim=True, db=db)
    with wiring.stack:
        pump = wiring.pump
        pump.provision_pin(PIN)
        raw = dict(RX)
        if required is not None:
            raw["monitor"] = {"spo2_min": 90, "required": required}
        pump.put(ClinicianCommand("program", PIN, {"prescription": parse_request(raw)}))
        pump.tick()
        assert pump.rx is not None
        pump.shutdown()


def with_monitor(kind: str, port: str) -> Config:
    return replace(Config(), monitor=MonitorConfig(kind, port))


def test_sr13_self_test_reports_a_missing_monitor_when_monitoring_is_required(
        tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    programmed(db, required=True)
    wiring = wire(with_monitor("nonin", "/dev/pca-no-oximeter"), sim=True, db=db)
    with wiring.stack:
        assert any("respiratory monitor (nonin) not found at /dev/pca-no-oximeter" in p
                   for p in wiring.problems), wiring.problems
        assert "self_test_failed" in wiring.pump.alarms.active
        assert wiring.pump.state == "alarm"


def test_sr13_self_test_reports_no_monitor_configured_when_monitoring_is_required(
        tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    programmed(db, required=True)
    wiring = wire(Config(), sim=True, db=db)
    with wiring.stack:
        assert any("requires a respiratory monitor" in p and "[monitor]" in p
                   for p in wiring.problems), wiring.problems


@pytest.mark.parametrize("required", [False, None])
def test_sr13_a_missing_optional_monitor_is_not_a_self_test_failure(
        tmp_path: Path, required: bool | None) -> None:
    db = tmp_path / "events.db"
    programmed(db, required=required)
    wiring = wire(with_monitor("nonin", "/dev/pca-no-oximeter"), sim=True, db=db)
    with wiring.stack:
        assert not any("monitor" in p for p in wiring.problems), wiring.problems


def test_sr13_the_daemon_reads_the_configured_port_and_logs_vitals(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    programmed(db, required=True)
    emulator = NoninEmulator()
    try:
        wiring = wire(with_monitor("nonin", emulator.path), sim=True, db=db)
        with wiring.stack:
            assert not any("monitor" in p for p in wiring.problems), wiring.problems
            wiring.monitor.start()
            end = time.monotonic() + 10
            seen: list[object] = []
            while time.monotonic() < end and not seen:
                emulator.send(packet(95, 66))
                time.sleep(0.35)
                wiring.pump.tick()
                seen = [e for e in wiring.log.replay() if e.event.type == "vitals"]
            assert seen and seen[0].event.fields == {"spo2": 95, "pulse": 66}
    finally:
        emulator.close()


@pytest.mark.parametrize(("text", "message"), [
    ('[monitor]\nkind = "masimo"\n', "monitor.kind = 'masimo' must be one of nonin, none"),
    ('[monitor]\nkind = "nonin"\nport = ""\n', "monitor.port = '' must be text of 1 to 4096"),
    ('[monitor]\nbaud = 9600\n', "[monitor] unknown field(s) baud"),
])
def test_monitor_config_errors_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pca.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)
