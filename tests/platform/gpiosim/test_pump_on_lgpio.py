"""`pca run --pinout` with gpiozero's lgpio factory on a gpio-sim Pi 4 chip: inputs to the log.

The keypad's contacts are played by a responder process (keypad_responder.py) that answers a
row's drive a millisecond or so later under TCG, where a real contact answers in microseconds.
`pca run` parks every row low between scans (so a key press is an edge that wakes the input
thread); a scan that read a column before it followed the released rows saw the key in every
row, a chord, and the key was lost. The scanner now waits `keypad.settle_us` before each read
(50 us on the Pi's pinout); this pump's pin map gives the emulated contacts 5 ms.

Found here and not under MockFactory: lgpio delivers a column's edge from its own thread,
after the scan that made it has ended, so with a key down every scan started the next one at
once (590 row changes in 3 s with a key held against 144 with none), and typed keys were lost;
the scanner now ignores edges stamped before its last scan ended.

A test holds a key for whole scans (the responder counts them), not for a time: with the
host busy (the arm64 part runs beside this guest) a scan takes up to 200 ms here, and a key
held 0.3 s was seen in one frame only, which is no key.
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
EMULATED_SETTLE_US = 5000  # the responder's answer under TCG, with a margin (see above)
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
        pinout = tmp / "pinout.toml"
        pinout.write_text(PINOUT.read_text().replace(
            "settle_us = 50\n", f"settle_us = {EMULATED_SETTLE_US}\n"))
        assert load_pinmap(pinout).keypad.settle_us == EMULATED_SETTLE_US
        argv = [sys.executable, "-m", "pca.app.cli", "run", "--config", str(config),
                "--pinout", str(pinout)]
        self.proc = subprocess.Popen(as_pi(fake_cpuinfo(tmp, chip.layout.revision), argv),
                                     cwd=tmp, env=pump_env(tmp), text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.bench = Bench(chip, PINMAP)
        self.bench.start_keypad()

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


def type_keys(pump: RunningPump, keys: str) -> None:
    """Each key held, and let go, until the pump has taken that. Held for a time instead
    (0.3 s), a key was lost whenever the host was busy: a scan here then takes up to 200 ms,
    and one frame is not a key."""
    for key in keys:
        pump.bench.press(key)
        pump.bench.wait_taken()
        pump.bench.press()
        pump.bench.wait_taken()


def test_keypad_keys_arrive_as_a_pin_attempt(pump: RunningPump) -> None:
    before = len(pump.events("auth"))
    type_keys(pump, "1234#")
    pump.wait_events("auth", before + 1)
    assert pump.events("auth")[-1]["outcome"] == "failed"


def test_keypad_chord_sends_no_key(pump: RunningPump) -> None:
    before = len(pump.events("auth"))
    type_keys(pump, "1234")
    pump.bench.press("5", "#")  # two keys at once: nothing, not even the '#' that would submit
    pump.bench.wait_taken()  # seen, and seen as a chord
    pump.bench.press()
    pump.bench.wait_taken()
    quiet(1.0)
    assert len(pump.events("auth")) == before
    type_keys(pump, "#")  # the digits typed before the chord are still waiting for it
    pump.wait_events("auth", before + 1)


def test_a_held_key_is_not_scanned_back_to_back(pump: RunningPump) -> None:
    # lgpio hands the scan's own column edges over after the scan has ended; taken for new
    # presses they kept the input thread scanning without a pause for as long as a key was
    # down. At rest the pump scans about once a second, held key or not.
    start = pump.bench.row_changes()
    quiet(3.0)
    idle = pump.bench.row_changes() - start
    before = len(pump.events("auth"))
    pump.bench.press("5")
    pump.bench.wait_taken()  # sent once, and the keypad is at rest again
    start = pump.bench.row_changes()
    quiet(3.0)
    held = pump.bench.row_changes() - start
    pump.bench.press()
    pump.bench.wait_taken()
    assert idle > 0, "the responder saw no scan at all"
    print(f"row changes in 3 s: {idle} with no key down, {held} with '5' held")
    assert held <= 2 * idle + 32, (idle, held)
    type_keys(pump, "678#")  # the held '5' began a PIN: submit it, so no digits are left
    pump.wait_events("auth", before + 1)


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
