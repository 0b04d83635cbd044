"""`pca run --pinout` with gpiozero's lgpio factory on a gpio-sim Pi 4 chip: inputs to the log.

The keypad is checked on the kernel by `pca hw selftest` (test_hw_selftest_on_lgpio.py); under
`pca run` the scan was seen holding several rows as outputs at once, which is still open.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pibench import Bench, as_pi, fake_cpuinfo, pump_env, wait_for
from simkit import SimChip

from pca.hw.pinmap import load_pinmap
from pca.store.eventlog import export_rows

REPO = Path(__file__).resolve().parents[3]
PINOUT = REPO / "hardware" / "pinout.toml"
PINMAP = load_pinmap(PINOUT)
PIN_PROBLEM = "no clinician PIN is provisioned"


class RunningPump:
    def __init__(self, chip: SimChip, tmp: Path) -> None:
        self.chip = chip
        self.db = tmp / "events.db"
        config = tmp / "pca.toml"
        config.write_text(f'database = "{self.db}"\npin_factory = "lgpio"\ntick_ms = 50\n'
                          f'pepper = "{tmp}/pepper"\nrx_spool = "{tmp}/rx"\n'
                          '[display]\nkind = "none"\n')
        # Installation seals the log (as a technician does with `pca log setup-keys`); the
        # clinician PIN is what is left for the ward, and the self test says so.
        subprocess.run([sys.executable, "-m", "pca.app.cli", "log", "setup-keys", "--db",
                        str(self.db)], cwd=tmp, env=pump_env(tmp), check=True,
                       capture_output=True, timeout=120)
        argv = [sys.executable, "-m", "pca.app.cli", "run", "--config", str(config),
                "--pinout", str(PINOUT)]
        self.proc = subprocess.Popen(as_pi(fake_cpuinfo(tmp, chip.layout.revision), argv),
                                     cwd=tmp, env=pump_env(tmp), text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.bench = Bench(chip, PINMAP)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line.rstrip("\n"))

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.db.exists():
            return []
        return [e for e in export_rows(self.db) if kind is None or e["type"] == kind]

    def wait_events(self, kind: str, count: int, timeout_s: float = 20.0,
                    where: Callable[[dict[str, Any]], bool] = lambda e: True) -> None:
        wait_for(lambda: len([e for e in self.events(kind) if where(e)]) >= count, timeout_s,
                 f"{count} {kind} event(s); output: {self.out[-5:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.bench.stop()
            self._reader.join(timeout=5)


@pytest.fixture(scope="module")
def pump(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPump]:
    from conftest import _names  # one chip for the module, named like the others
    from simkit import LAYOUTS

    chip = SimChip(f"pca{os.getpid()}m{next(_names)}", LAYOUTS["pi4"])
    running = RunningPump(chip, tmp_path_factory.mktemp("pump"))
    try:
        wait_for(lambda: any(line.startswith("pca run: state") for line in running.out) or
                 running.proc.poll() is not None, 120, "pca run to start")
        running.bench.at_rest()  # after the request: the pump's own pull-ups are applied by then
        yield running
    finally:
        running.stop()
        chip.close()


def quiet(seconds: float) -> None:
    time.sleep(seconds)


def test_pump_comes_up_on_the_kernel_chip_with_only_the_pin_missing(pump: RunningPump) -> None:
    pump.wait_events("self_test_failed", 1)
    (failed,) = pump.events("self_test_failed")
    # GPIO (lgpio), the pulse generator (chardev) and the display all came up; the only
    # problem is the clinician PIN that a technician provisions at installation.
    assert len(failed["problems"]) == 1 and PIN_PROBLEM in failed["problems"][0], failed
    assert pump.proc.poll() is None, pump.out


def test_bolus_press_arrives_as_one_pca_request(pump: RunningPump) -> None:
    before = len(pump.events("pca_request"))
    pump.bench.actuate("bolus", True)
    quiet(0.3)
    pump.bench.actuate("bolus", False)
    pump.wait_events("pca_request", before + 1)
    quiet(0.5)
    assert len(pump.events("pca_request")) == before + 1


def test_bolus_bounce_is_one_request(pump: RunningPump) -> None:
    before = len(pump.events("pca_request"))
    pump.bench.bounce("bolus")
    quiet(0.3)
    pump.bench.actuate("bolus", False)
    for _ in range(3):  # chatter on release too
        pump.bench.actuate("bolus", True)
        time.sleep(0.003)
        pump.bench.actuate("bolus", False)
        time.sleep(0.003)
    pump.wait_events("pca_request", before + 1)
    quiet(0.5)
    assert len(pump.events("pca_request")) == before + 1


def test_battery_low_line_raises_the_alarm(pump: RunningPump) -> None:
    def battery(e: dict[str, Any]) -> bool:
        return bool(e.get("alarm") == "battery_low")

    assert not [e for e in pump.events("alarm_raised") if battery(e)]
    pump.bench.actuate("battery_low", True)
    pump.wait_events("alarm_raised", 1, where=battery)
    pump.bench.actuate("battery_low", False)


def test_bolus_held_past_ten_seconds_is_button_stuck_not_more_requests(
        pump: RunningPump) -> None:
    def stuck(e: dict[str, Any]) -> bool:
        return bool(e.get("alarm") == "button_stuck")

    before = len(pump.events("pca_request"))
    pump.bench.actuate("bolus", True)
    pump.wait_events("alarm_raised", 1, timeout_s=30, where=stuck)
    pump.bench.actuate("bolus", False)
    quiet(0.5)
    assert len(pump.events("pca_request")) == before + 1


def test_sigterm_stops_the_pump_and_releases_every_line(pump: RunningPump) -> None:
    assert pump.stop() == 0, pump.out
    assert pump.events()[-1]["type"] == "shutdown"
    m = PINMAP
    pins = [m.bolus_button.pin, *m.keypad.rows, *m.keypad.cols, m.motor.step.pin,
            m.motor.dir.pin, m.motor.enable.pin, *(s.pin for s in m.sensors.values())]
    held = [p for p in pins if pump.chip.info(p).used]
    assert held == [], held
