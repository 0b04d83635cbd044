"""The pump's character LCD: an HD44780 20x4 on an I2C backpack, through RPLCD and smbus2.

RPLCD and smbus2 are imported only when a display is opened, so laptops without
I2C (tests, `pca sim`) never need them. Writing a full 20x4 screen over I2C takes
over 100 ms, so the control loop never writes: `show()` only hands the frame
over, and a writer thread rewrites the lines that changed (and clears and
rewrites all of them once a minute, so a glitch on the bus cannot leave a
garbled screen for long).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from pca.hw.display import COLS, ROWS, fit_lines

log = logging.getLogger(__name__)

# Clear and rewrite the whole screen this often even if nothing changed: RPLCD skips
# characters it believes are shown, so only a clear undoes a glitch on the bus.
REFRESH_ALL_S = 60.0
RETRY_S = 5.0  # after a bus error, reopen the display no sooner than this
STOPPED = ("PUMP SOFTWARE", "STOPPED:", "no delivery control", "see the manual")


def rplcd_factory(*, address: int, port: int, expander: str, cols: int, rows: int,
                  charmap: str) -> Any:
    """RPLCD's I2C CharLCD (which talks through smbus2, or smbus where installed)."""
    try:
        from RPLCD.i2c import CharLCD
    except ImportError as err:  # the `pi` extra is not installed
        raise RuntimeError("the LCD needs RPLCD and smbus2: pip install 'pca[pi]'") from err
    return CharLCD(i2c_expander=expander, address=address, port=port, cols=cols, rows=rows,
                   charmap=charmap, auto_linebreaks=False, backlight_enabled=True)


class LcdDisplay:
    """Display port on the HD44780. Keyword-only options match the wiring in hardware/."""

    def __init__(self, *, address: int = 0x27, port: int = 1, expander: str = "PCF8574",
                 cols: int = COLS, rows: int = ROWS, charmap: str = "A00",
                 threaded: bool = True,
                 factory: Callable[..., Any] = rplcd_factory,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cols = cols
        self.rows = rows
        self._open: Callable[[], Any] = lambda: factory(
            address=address, port=port, expander=expander, cols=cols, rows=rows,
            charmap=charmap)
        self._clock = clock
        self._lock = threading.Condition()
        self._wanted = fit_lines([], cols, rows)
        self._shown: list[str | None] = [None] * rows  # what the LCD holds, None: unknown
        self._last_full = -REFRESH_ALL_S
        self._failed_at: float | None = None
        self._closing = False
        self.errors = 0
        self.lcd: Any = self._open()  # fails loudly at start-up: wrong address, no bus
        self.lcd.clear()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="pca-lcd", daemon=True)
            self._thread.start()

    def show(self, lines: Sequence[str], now_ns: int) -> None:
        """Never blocks on the bus: the writer thread picks the newest frame up."""
        frame = fit_lines(lines, self.cols, self.rows)
        with self._lock:
            if frame != self._wanted:
                self._wanted = frame
                self._lock.notify()

    @property
    def healthy(self) -> bool:
        return self._failed_at is None

    def flush(self) -> None:
        """Write what differs from the LCD now (the writer thread's body; tests call it)."""
        with self._lock:
            frame = self._wanted
        now = self._clock()
        if self._failed_at is not None:
            if now - self._failed_at < RETRY_S:
                return
            try:
                self.lcd = self._open()
                self.lcd.clear()
            except Exception as err:  # the bus is still failing: try again later
                self._failed(now, err)
                return
            self._failed_at = None
            self._shown = [None] * self.rows
        try:
            if now - self._last_full >= REFRESH_ALL_S:
                self._shown = [None] * self.rows
                self._last_full = now
                self.lcd.clear()
            for row, text in enumerate(frame):
                if self._shown[row] != text:
                    self.lcd.cursor_pos = (row, 0)
                    self.lcd.write_string(text)
                    self._shown[row] = text
        except Exception as err:  # an I2C error must never reach the control loop
            self._failed(now, err)

    def _failed(self, now: float, err: Exception) -> None:
        self.errors += 1
        self._failed_at = now
        self._shown = [None] * self.rows
        log.warning("LCD write failed (%s); retrying in %.0f s", err, RETRY_S)

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closing:
                    return
                self._lock.wait(timeout=1.0)
                if self._closing:
                    return
            self.flush()

    def close(self) -> None:
        """Say on the screen that the software stopped (a stale 'RUNNING' would mislead)."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.show(STOPPED, 0)
        self._last_full = self._clock()
        self.flush()
        try:
            self.lcd.close(clear=False)
        except Exception as err:
            log.warning("LCD close failed: %s", err)
