"""Display port backends: the simulated screen and the HD44780 20x4 over I2C (RPLCD, smbus2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pca.hw.display import NullDisplay, fit_lines, open_display
from pca.hw.display_lcd import STOPPED, LcdDisplay
from pca.hw.display_sim import SimDisplay


def test_frames_are_fitted_to_20x4_in_characters_every_hd44780_shows() -> None:
    frame = fit_lines(["x" * 30, "Dose 5 µg ~ 1\\2", "third"])
    assert len(frame) == 4 and all(len(line) == 20 for line in frame)
    assert frame[0] == "x" * 20
    assert frame[1] == "Dose 5 ?g ? 1?2".ljust(20)
    assert frame[3] == " " * 20


def test_sim_display_keeps_the_screen_and_its_history() -> None:
    sim = SimDisplay()
    sim.show(["A"], 1)
    sim.show(["A"], 2)  # unchanged: not a new frame
    sim.show(["B", "C"], 3)
    assert sim.lines[0].rstrip() == "B" and len(sim.frames) == 2
    assert sim.text().splitlines()[1] == "|B" + " " * 19 + "|"
    assert "A" in sim.history_text()


def test_open_display_by_name() -> None:
    assert isinstance(open_display("sim"), SimDisplay)
    assert isinstance(open_display("none"), NullDisplay)
    with pytest.raises(ValueError, match="lcd, sim or none"):
        open_display("oled")


class FakeCharLCD:
    """RPLCD's CharLCD surface the backend uses, recording writes."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.cells = [[" "] * 20 for _ in range(4)]
        self.cursor_pos = (0, 0)
        self.writes = 0
        self.fail_after = fail_after
        self.closed = False

    def write_string(self, text: str) -> None:
        if self.fail_after is not None and self.writes >= self.fail_after:
            raise OSError(121, "Remote I/O error")
        self.writes += 1
        row, col = self.cursor_pos
        for i, ch in enumerate(text):
            self.cells[row][col + i] = ch

    def clear(self) -> None:
        self.cells = [[" "] * 20 for _ in range(4)]

    def close(self, clear: bool = False) -> None:
        self.closed = True

    def screen(self) -> list[str]:
        return ["".join(r) for r in self.cells]


def lcd_with(fake: FakeCharLCD, clock: list[float] | None = None) -> LcdDisplay:
    now = clock or [0.0]
    return LcdDisplay(threaded=False, factory=lambda **kw: fake, clock=lambda: now[0])


def test_lcd_rewrites_only_the_lines_that_changed() -> None:
    fake = FakeCharLCD()
    now = [100.0]
    lcd = lcd_with(fake, now)
    lcd.show(["RUNNING", "morphine", "Res 30", "Locked"], 0)
    lcd.flush()
    assert fake.writes == 4 and fake.screen()[1].rstrip() == "morphine"
    lcd.show(["RUNNING", "morphine", "Res 29.9", "Locked"], 0)
    now[0] += 1
    lcd.flush()
    assert fake.writes == 5 and fake.screen()[2].rstrip() == "Res 29.9"
    now[0] += 60  # once a minute the screen is cleared and every line written again
    fake.cells[0][0] = "#"  # a glitch
    lcd.flush()
    assert fake.writes == 9 and fake.screen()[0].rstrip() == "RUNNING"


def test_lcd_bus_errors_never_reach_the_caller_and_it_recovers() -> None:
    fake = FakeCharLCD(fail_after=1)
    now = [0.0]
    lcd = lcd_with(fake, now)
    lcd.show(["A", "B", "C", "D"], 0)
    lcd.flush()  # the second write fails
    assert not lcd.healthy and lcd.errors == 1
    fake.fail_after = None
    now[0] += 1
    lcd.flush()  # too soon to retry
    assert not lcd.healthy
    now[0] += 10
    lcd.flush()
    assert lcd.healthy and fake.screen()[3].rstrip() == "D"


def test_lcd_show_never_blocks_the_control_loop_on_the_bus() -> None:
    class Slow(FakeCharLCD):
        def write_string(self, text: str) -> None:
            import time

            time.sleep(0.05)
            super().write_string(text)

    fake = Slow()
    lcd = LcdDisplay(factory=lambda **kw: fake)  # with its writer thread
    import time

    start = time.monotonic()
    for n in range(20):
        lcd.show([f"frame {n}"], 0)
    assert time.monotonic() - start < 0.05
    lcd.close()
    assert fake.screen()[0].rstrip() == STOPPED[0] and fake.closed


def test_lcd_close_says_the_software_stopped() -> None:
    fake = FakeCharLCD()
    lcd = lcd_with(fake)
    lcd.show(["RUNNING 0.5 mL/h"], 0)
    lcd.flush()
    lcd.close()
    assert fake.screen()[:2] == [s.ljust(20) for s in STOPPED[:2]]


def test_real_rplcd_drives_a_pcf8574_over_smbus2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real RPLCD CharLCD, with only the I2C bus faked: the wiring of our backend to the
    library (constructor arguments, cursor, text) is what runs on the Pi."""
    i2c = pytest.importorskip("RPLCD.i2c")
    sent: list[tuple[int, int]] = []

    class FakeBus:
        def __init__(self, port: int) -> None:
            assert port == 1

        def write_byte(self, address: int, value: int) -> None:
            sent.append((address, value))

        def write_byte_data(self, address: int, register: int, value: int) -> None:
            sent.append((address, value))

        def close(self) -> None:
            pass

    monkeypatch.setattr(i2c, "SMBus", FakeBus)
    monkeypatch.setattr(i2c.c, "usleep", lambda us: None)
    monkeypatch.setattr(i2c.c, "msleep", lambda ms: None)
    lcd = LcdDisplay(threaded=False)
    lcd.show(["PUMP"], 0)
    lcd.flush()
    assert sent and {a for a, _ in sent} == {0x27}

    def data_bytes() -> str:
        # PCF8574 4-bit data writes with RS=1 and E high carry the characters, high nibble
        # first: rebuild them from the bus traffic.
        nibbles = [v & 0xF0 for _, v in sent if v & 0x01 and v & 0x04]
        return "".join(chr(hi | (lo >> 4)) for hi, lo in zip(nibbles[::2], nibbles[1::2],
                                                             strict=False))

    assert data_bytes() == "PUMP"  # after a clear RPLCD sends only what differs from blank
    lcd.close()


def test_importing_the_lcd_backend_needs_no_i2c_library() -> None:
    code = ("import sys; import pca.hw.display, pca.hw.display_lcd, pca.hw.display_sim; "
            "print(any(m.split('.')[0] in ('RPLCD', 'smbus2', 'smbus') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_a_missing_rplcd_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_rplcd(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("RPLCD"):
            raise ImportError("No module named 'RPLCD'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rplcd)
    with pytest.raises(RuntimeError, match=r"pip install 'pca\[pi\]'"):
        LcdDisplay(threaded=False)


def test_a_drawing_fault_never_stops_the_control_loop(tmp_path: Path) -> None:
    from panel_rig import PanelRig

    rig = PanelRig(tmp_path / "events.db")

    def broken() -> list[str]:
        raise ValueError("bad frame")

    rig.pump.panel.home_lines = broken  # type: ignore[method-assign]
    rig.wait(1)
    assert rig.screen.startswith("DISPLAY FAULT")
    assert rig.pump.panel.render_error == "ValueError: bad frame"
