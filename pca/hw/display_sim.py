"""The simulated character display: what `pca sim` draws, and what tests read back."""

from __future__ import annotations

from collections.abc import Sequence

from pca.hw.display import COLS, ROWS, fit_lines


class SimDisplay:
    """Keeps the current frame and the history of frames (each with its time), as the
    LCD would have shown them, so a test can check everything the screen ever showed."""

    def __init__(self, *, cols: int = COLS, rows: int = ROWS, keep: int = 100_000) -> None:
        self.cols = cols
        self.rows = rows
        self.keep = keep
        self.frames: list[tuple[int, tuple[str, ...]]] = []

    def show(self, lines: Sequence[str], now_ns: int) -> None:
        frame = fit_lines(lines, self.cols, self.rows)
        if self.frames and self.frames[-1][1] == frame:
            return
        self.frames.append((now_ns, frame))
        if len(self.frames) > self.keep:
            del self.frames[: len(self.frames) - self.keep]

    @property
    def lines(self) -> tuple[str, ...]:
        """The frame on the screen now (blank before the first one)."""
        return self.frames[-1][1] if self.frames else fit_lines([], self.cols, self.rows)

    def text(self) -> str:
        """The screen now, in a frame, as the simulator prints it."""
        edge = "+" + "-" * self.cols + "+"
        return "\n".join([edge, *[f"|{line}|" for line in self.lines], edge])

    def history_text(self) -> str:
        """Every frame ever shown, one line each (for searching)."""
        return "\n".join(" / ".join(frame) for _, frame in self.frames)

    def close(self) -> None:
        pass
