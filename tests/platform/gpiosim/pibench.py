"""The world around a gpio-sim Pi: switches, keypad and battery board played through pulls."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from simkit import SimChip

from pca.hw.keypad import DEBOUNCE_NS, LAYOUT
from pca.hw.pinmap import PinMap

KEY_AT = {key: (r, c) for r, row in enumerate(LAYOUT) for c, key in enumerate(row)}


def fake_cpuinfo(directory: Path, revision: str) -> Path:
    """/proc/cpuinfo with the board's "Revision" line: gpiozero identifies a Pi by it alone
    (gpiozero/pins/local.py get_pi_revision: /proc/device-tree/system/linux,revision, then
    /proc/cpuinfo; neither exists on a PC, where LGPIOFactory raises PinUnknownPi)."""
    path = directory / f"cpuinfo-{revision}"
    real = Path("/proc/cpuinfo").read_text()
    path.write_text(real + f"Hardware\t: BCM2835\nRevision\t: {revision}\n")
    return path


def as_pi(cpuinfo: Path, argv: list[str]) -> list[str]:
    """argv run in a private mount namespace where /proc/cpuinfo is `cpuinfo`."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /proc/cpuinfo && exec "$@"', str(cpuinfo), *argv]


class Bench:
    """Drives the pump's inputs on a gpio-sim chip and reads its outputs back.

    The keypad is a matrix: a key connects its row to its column. gpio-sim cannot join two
    lines, so a real-time responder process (keypad_responder.py) watches the rows (line-info
    events: a scanned row turns output) and pulls a column low while the row of a pressed key
    in it is being driven.
    """

    def __init__(self, chip: SimChip, pinmap: PinMap) -> None:
        self.chip = chip
        self.pinmap = pinmap
        self.inputs = {"bolus": pinmap.bolus_button, **pinmap.sensors, **pinmap.power}
        self.rows = list(pinmap.keypad.rows)
        self.cols = list(pinmap.keypad.cols)
        self._lock = threading.Lock()
        self._responder: subprocess.Popen[str] | None = None

    # ---- switches and battery board ------------------------------------------------------
    def actuate(self, name: str, active: bool) -> None:
        line = self.inputs[name]
        self.chip.pull(line.pin, int(active == line.active_high))

    def at_rest(self) -> None:
        for name in self.inputs:
            self.actuate(name, False)
        self.press()

    def bounce(self, name: str, toggles: int = 6, gap_s: float = 0.003) -> None:
        """Contact chatter: `toggles` quick changes, ending active."""
        for i in range(toggles):
            self.actuate(name, i % 2 == 0)
            time.sleep(gap_s)
        self.actuate(name, True)

    # ---- keypad --------------------------------------------------------------------------
    def start_keypad(self) -> None:
        here = Path(__file__).parent
        self._responder = subprocess.Popen(
            [sys.executable, str(here / "keypad_responder.py"), str(self.chip.dev),
             str(self.chip.sysfs), ",".join(map(str, self.rows)), ",".join(map(str, self.cols))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=here,
            env={**os.environ, "PYTHONPATH": str(here)})
        self._ack()

    def _ack(self) -> str:
        assert self._responder is not None and self._responder.stdout is not None
        answer = self._responder.stdout.readline().strip()
        if not answer.startswith("ok"):
            raise RuntimeError("the keypad responder stopped")
        return answer[2:].strip()

    def _ask(self, query: str) -> int:
        assert self._responder is not None and self._responder.stdin is not None
        with self._lock:
            self._responder.stdin.write(query + "\n")
            self._responder.stdin.flush()
            return int(self._ack())

    def row_changes(self) -> int:
        """How many times the scanner has changed a keypad row so far (16 per scan)."""
        return self._ask("?")

    def whole_scans(self) -> int:
        """Scans the pump has made from start to end since the last `press`."""
        return self._ask("?scans")

    def wait_scans(self, count: int, timeout_s: float = 30.0) -> None:
        """Until the pump has read the keypad `count` times as it is since the last `press`."""
        wait_for(lambda: self.whole_scans() >= count, timeout_s,
                 f"{count} whole keypad scan(s) after the last change")

    def wait_taken(self) -> None:
        """Until the pump has taken the keys as they are since the last `press` (a key, a
        chord or none): a whole scan has seen them, then one that began more than the
        debounce time later has seen them again. Counted in scans and not in time, since a
        scan takes under a millisecond on a Pi and up to 200 ms in a busy guest; and not as
        two scans alone, which on a quick machine come 10 ms apart, inside the debounce."""
        self.wait_scans(1)
        time.sleep(DEBOUNCE_NS / 1e9 + 0.02)
        # the scan under way may have begun before the sleep ended; the one after it did not
        self.wait_scans(self.whole_scans() + 2)

    def press(self, *keys: str) -> None:
        """Hold exactly these keys down (none: release all)."""
        if self._responder is None:
            return
        assert self._responder.stdin is not None
        with self._lock:
            pairs = " ".join(f"{r}:{c}" for r, c in (KEY_AT[k] for k in keys))
            self._responder.stdin.write(pairs + "\n")
            self._responder.stdin.flush()
            self._ack()

    def stop(self) -> None:
        if self._responder is not None:
            self._responder.kill()
            self._responder.wait(timeout=10)
            self._responder = None

    # ---- outputs -------------------------------------------------------------------------
    def output_seen(self, name: str, window_s: float = 0.3) -> bool:
        """Whether the output is on: a lamp's level, or the buzzer's pin toggling."""
        line = getattr(self.pinmap.annunciator, name)
        on_level = 1 if line.active_high else 0
        end = time.monotonic() + window_s
        while time.monotonic() < end:
            if self.chip.value(line.pin) == on_level:
                return True
            time.sleep(0.001)
        return False


def pump_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(LG_WD=str(tmp), PYTHONUNBUFFERED="1")
    env.pop("PCA_PIN_FACTORY", None)
    return env


def wait_for(cond: object, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def lines_in(text: str) -> Iterable[str]:
    return (line for line in text.splitlines() if line.strip())
