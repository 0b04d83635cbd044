"""Display port backends: choose one by name; every frame is fitted to a 20x4 HD44780."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pca.controller.ports import Display

COLS = 20
ROWS = 4
# What an HD44780 shows the same in every character ROM (A00 puts a yen sign at '\\'
# and arrows at '~' and DEL); anything else becomes '?', never a wrong glyph.
SAFE = frozenset(chr(c) for c in range(0x20, 0x7E)) - {"\\"}


def fit_lines(lines: Sequence[str], cols: int = COLS, rows: int = ROWS) -> tuple[str, ...]:
    """Exactly `rows` lines of exactly `cols` safe characters (cut, padded, replaced)."""
    out = []
    for line in list(lines)[:rows]:
        text = "".join(ch if ch in SAFE else "?" for ch in str(line)[:cols])
        out.append(text.ljust(cols))
    out += [" " * cols] * (rows - len(out))
    return tuple(out)


class NullDisplay:
    """No display fitted (headless bench, scenario replay)."""

    def show(self, lines: Sequence[str], now_ns: int) -> None:
        pass

    def close(self) -> None:
        pass


def open_display(kind: str, **options: Any) -> Display:
    """`lcd` (HD44780 over I2C; options: address, port, expander, charmap), `sim` (kept in
    memory for the simulator and tests) or `none`."""
    if kind == "lcd":
        from pca.hw.display_lcd import LcdDisplay

        return LcdDisplay(**options)
    if kind == "sim":
        from pca.hw.display_sim import SimDisplay

        return SimDisplay(**options)
    if kind == "none":
        return NullDisplay()
    raise ValueError(f"display = {kind!r} must be lcd, sim or none")
