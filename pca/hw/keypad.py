"""4x3 matrix keypad scanner: one debounced Key per press, no ghosts, no chords, no repeat."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from gpiozero import GPIODevice, InputDevice

from pca.controller.inputs import Key
from pca.hw.debounce import Debouncer
from pca.hw.lines import MS
from pca.hw.sink import Sink

log = logging.getLogger(__name__)

LAYOUT: tuple[tuple[str, ...], ...] = (
    ("1", "2", "3"),
    ("4", "5", "6"),
    ("7", "8", "9"),
    ("*", "0", "#"),
)

IDLE = "idle"  # no key down
CHORD = "chord"  # two or more contacts seen in one frame (two keys, or a ghost)
DEBOUNCE_NS = 30 * MS  # how long a frame must show a key (or none) before it counts


class MatrixRow(GPIODevice):  # type: ignore[misc]  # gpiozero is untyped
    """One keypad row, emulating an open-drain driver.

    Idle, the row floats (input, no pull); while scanned it is driven low. A
    row is never driven high, so two keys pressed in one column cannot short a
    high row to a low one, and the column sees only the row being scanned.
    """

    def __init__(self, pin: int, *, pin_factory: Any) -> None:
        super().__init__(pin, pin_factory=pin_factory)
        try:
            self.release()
        except Exception:
            self.close()
            raise

    def select(self) -> None:
        self.pin.output_with_state(False)

    def release(self) -> None:
        # Floating, not pulled down: a pull-down would fight the column pull-up
        # through a pressed key and leave the column at half the supply.
        self.pin.input_with_pull("floating")


class MatrixKeypad:
    """Scans rows (driven low one at a time) against pulled-up columns.

    `scan(now_ns)` reads one frame and feeds the debouncer; production calls it
    from the input thread, tests call it directly in virtual time. Rules:
    - a key is sent once, after the frame has shown that one key alone for
      `debounce_ns`; holding it never repeats;
    - a frame with two or more contacts is a chord (two keys, or three making a
      ghost at the fourth corner) and sends nothing; no key is accepted again
      until every key has been released, so no rollover either;
    - a key held when scanning starts is ignored until released.
    Key values are never logged (a PIN is typed here).

    Between scans every row is driven low ("parked"), so any key pressed pulls its
    column low: with `watch_edges(kick)` that edge wakes a sleeping input thread, and
    nothing need scan the matrix while no key is down. Edges made by the scan itself are
    ignored, so a key pressed or let go while a scan runs would make no edge that counts:
    the scan ends by reading the parked columns once more, and while they disagree with
    the frame (a key they show and the frame missed, or the other way round) the keypad
    is not at rest and the input thread goes on scanning.

    `settle_ns` is how long a column is given to follow a row before it is read, after
    the parked rows let go, after each row is driven and after the rows are parked again:
    long wiring and a weak pull-up recharge slowly, and a column read too soon shows the
    previous row's key (or, after parking, every row's: a chord, and the key is lost until
    released). `settle` is the wait (time.sleep; tests pass their own).
    """

    def __init__(self, rows: Sequence[int], cols: Sequence[int], sink: Sink, *,
                 debounce_ns: int = DEBOUNCE_NS,
                 layout: tuple[tuple[str, ...], ...] = LAYOUT, pin_factory: Any,
                 settle_ns: int = 0, settle: Callable[[float], None] = time.sleep) -> None:
        if settle_ns < 0:
            raise ValueError("settle_ns must be >= 0")
        self._settle_s = settle_ns / 1e9
        self._settle = settle
        if len(layout) != len(rows) or any(len(r) != len(cols) for r in layout):
            raise ValueError(f"layout must be {len(rows)} rows of {len(cols)} keys")
        self._sink = sink
        self._layout = layout
        self._debounce: Debouncer[Hashable] = Debouncer(debounce_ns)
        self._armed = False  # set once all keys have been seen released
        self._scanning = False
        self._scan_end: Any = None  # the factory's ticks when the last scan ended
        self._parked = False
        self._parked_contact = False  # a column read low with every row parked, after the scan
        self.rows: list[MatrixRow] = []
        self.cols: list[InputDevice] = []
        try:
            for pin in rows:
                self.rows.append(MatrixRow(pin, pin_factory=pin_factory))
            for pin in cols:
                self.cols.append(InputDevice(pin, pull_up=True, pin_factory=pin_factory))
        except Exception:
            self.close()
            raise
        # The factory the pins were made by (None above means gpiozero's default): its
        # ticks are the clock the edges are stamped on.
        self._factory: Any = self.cols[0].pin_factory if self.cols else None

    @property
    def idle(self) -> bool:
        """All keys have been seen released for the debounce time (ready for the next key)."""
        return self._debounce.state == IDLE

    @property
    def at_rest(self) -> bool:
        """The last frame is the committed state (no key, or a key already handled), and
        the parked columns agree with it: no key came or went behind the scan's back."""
        if not self._debounce.settled:
            return False
        return not self._parked or self._parked_contact == (self._debounce.state != IDLE)

    def watch_edges(self, kick: Callable[[], None]) -> None:
        """Park the rows low and call `kick` on a column edge that no scan made.

        An edge reaches us from the pin factory's own thread (lgpio's), often after the scan
        that made it has ended: with a key held, every scan moves that key's column, and an
        edge taken for a new press would start the next scan at once, back to back for as
        long as the key is down. So an edge stamped (the factory's ticks: the kernel's time
        of the edge, on lgpio) no later than the last scan's end is the scan's own; the end
        is stamped after the re-parked columns have had their settle time. A real change in
        the scan makes no edge that counts either: the scan's last read of the parked
        columns finds it (see `at_rest`). lgpio's stamps are CLOCK_MONOTONIC like the
        factory's ticks, which the gpio-sim run shows: with them compared, keys arrive."""
        factory = self._factory

        def on_edge(ticks: Any, state: Any) -> None:
            if self._scanning:
                return
            end = self._scan_end
            if ticks is not None and end is not None and factory.ticks_diff(ticks, end) <= 0:
                return
            kick()

        self._edge_hook = on_edge
        for col in self.cols:
            col.pin.edges = "both"
            col.pin.when_changed = on_edge
        self._park()

    def _park(self) -> None:
        for row in self.rows:
            row.select()
        self._parked = True

    def read_frame(self) -> frozenset[tuple[int, int]]:
        """(row, col) of every closed contact, ghosts included, in one pass."""
        hits = set()
        self._scanning = True
        try:
            for row in self.rows:
                row.release()
            if self._parked:
                self._wait_settle()
            for r, row in enumerate(self.rows):
                row.select()
                try:
                    self._wait_settle()
                    for c, col in enumerate(self.cols):
                        if col.is_active:
                            hits.add((r, c))
                finally:
                    row.release()
            if self._parked:
                self._park()
                self._wait_settle()  # the parked columns' own edges come before the end
        finally:
            self._scan_end = self._factory.ticks() if self._factory is not None else None
            self._scanning = False
        if self._parked:
            # After the end's stamp: a change from here on makes an edge that counts, and
            # one before it (in the scan, unseen by its row) is read here.
            self._parked_contact = any(col.is_active for col in self.cols)
        return frozenset(hits)

    def _wait_settle(self) -> None:
        if self._settle_s > 0:
            self._settle(self._settle_s)

    def scan(self, now_ns: int) -> None:
        hits = self.read_frame()
        frame: Hashable = CHORD
        if not hits:
            frame = IDLE
        elif len(hits) == 1:
            (frame,) = hits
        if not self._debounce.update(frame, now_ns):
            return
        state = self._debounce.state
        if state == IDLE:
            self._armed = True
        elif state == CHORD:
            if self._armed:
                log.info("keypad: more than one key at once, ignored until all are released")
            self._armed = False
        elif self._armed:
            self._armed = False
            r, c = state  # type: ignore[misc]
            self._sink.put(Key(self._layout[r][c]))

    def close(self) -> None:
        for device in (*getattr(self, "rows", ()), *getattr(self, "cols", ())):
            device.close()

    def __enter__(self) -> MatrixKeypad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
