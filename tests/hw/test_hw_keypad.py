"""4x3 keypad scanner on mock pins: one key, two keys, no key, ghosting, bounce, no repeat."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pca.hw.keypad import LAYOUT, MatrixKeypad
from pca.hw.mock_panel import MockKeypadMatrix

MS = 1_000_000
S = 1_000_000_000
ROWS = (19, 20, 21, 7)
COLS = (8, 9, 10)


@pytest.fixture
def pad(mock_factory, sink):
    matrix = MockKeypadMatrix(mock_factory, ROWS, COLS)  # before the keypad: it owns the rows
    with MatrixKeypad(ROWS, COLS, sink, pin_factory=mock_factory) as keypad:
        pad = Pad(keypad, matrix, sink)
        pad.scan_ms(100)
        yield pad


class Pad:
    def __init__(self, keypad, matrix, sink):
        self.keypad, self.matrix, self.sink = keypad, matrix, sink
        self.now_ns = 0

    def scan_ms(self, ms, step_ms=5):
        end_ns = self.now_ns + ms * MS
        while self.now_ns < end_ns:
            self.now_ns += step_ms * MS
            self.keypad.scan(self.now_ns)

    def tap(self, *keys, hold_ms=100):
        self.matrix.press(*keys)
        self.scan_ms(hold_ms)
        self.matrix.release()
        self.scan_ms(100)

    def keys(self):
        return [item.key for item in self.sink.items]


def test_no_key_sends_nothing(pad):
    pad.scan_ms(2000)
    assert pad.keys() == []
    assert pad.keypad.read_frame() == frozenset()


def test_every_key_is_read_at_its_own_row_and_column(pad):
    for r, row in enumerate(LAYOUT):
        for c, key in enumerate(row):
            pad.matrix.press(key)
            assert pad.keypad.read_frame() == {(r, c)}
            pad.matrix.release()
    for row in LAYOUT:
        for key in row:
            pad.tap(key)
    assert pad.keys() == [key for row in LAYOUT for key in row]


def test_one_key_is_sent_once_after_debounce(pad):
    pad.matrix.press("5")
    pad.scan_ms(25)
    assert pad.keys() == [], "not before the 30 ms debounce"
    pad.scan_ms(10)
    assert pad.keys() == ["5"]


def test_holding_a_key_does_not_repeat(pad):
    pad.matrix.press("8")
    pad.scan_ms(10_000, step_ms=10)
    assert pad.keys() == ["8"]


def test_key_bounce_sends_one_key(pad):
    for contact_ms in (2, 1, 3, 1, 2):  # press bounce
        pad.matrix.press("3")
        pad.scan_ms(contact_ms, step_ms=1)
        pad.matrix.release()
        pad.scan_ms(1, step_ms=1)
    pad.matrix.press("3")
    pad.scan_ms(200, step_ms=1)
    for gap_ms in (1, 2, 1):  # release bounce
        pad.matrix.release()
        pad.scan_ms(gap_ms, step_ms=1)
        pad.matrix.press("3")
        pad.scan_ms(1, step_ms=1)
    pad.matrix.release()
    pad.scan_ms(200, step_ms=1)
    assert pad.keys() == ["3"]


def test_same_key_twice_is_two_keys(pad):
    pad.tap("1")
    pad.tap("1")
    assert pad.keys() == ["1", "1"]


@pytest.mark.parametrize("keys", [("1", "2"), ("1", "4"), ("1", "5"), ("*", "#"), ("0", "8")],
                         ids=["same-row", "same-col", "diagonal", "bottom-row", "same-col-2"])
def test_two_keys_at_once_are_rejected(pad, keys):
    pad.matrix.press(*keys)
    assert len(pad.keypad.read_frame()) == 2
    pad.scan_ms(3000)
    pad.matrix.release()
    pad.scan_ms(100)
    assert pad.keys() == []


def test_three_keys_ghost_a_fourth_and_nothing_is_sent(pad):
    # 1, 2 and 4 pressed: scanning row 2 reaches column 2 through 4-1-2, so "5" reads pressed.
    pad.matrix.press("1", "2", "4")
    frame = pad.keypad.read_frame()
    assert (1, 1) in frame, "the model reproduces the ghost at key 5"
    assert len(frame) == 4
    pad.scan_ms(1000)
    pad.matrix.release()
    pad.scan_ms(100)
    assert pad.keys() == []


def test_ghost_never_reported_while_keys_are_released_one_by_one(pad):
    pad.matrix.press("1", "2", "4")
    pad.scan_ms(200)
    for key in ("2", "4", "1"):
        pad.matrix.release(key)
        pad.scan_ms(200)
    assert pad.keys() == []
    pad.tap("9")
    assert pad.keys() == ["9"], "after a full release the keypad accepts keys again"


def test_second_key_while_first_held_sends_nothing_more(pad):
    pad.matrix.press("1")
    pad.scan_ms(100)
    pad.matrix.press("2")
    pad.scan_ms(100)
    pad.matrix.release("1")  # "2" alone remains held: no rollover
    pad.scan_ms(500)
    pad.matrix.release()
    pad.scan_ms(100)
    assert pad.keys() == ["1"]


def test_key_pressed_within_debounce_of_another_is_a_chord(pad):
    pad.matrix.press("4")
    pad.scan_ms(15)
    pad.matrix.press("6")
    pad.scan_ms(500)
    pad.matrix.release()
    pad.scan_ms(100)
    assert pad.keys() == []


def test_key_held_when_scanning_starts_is_ignored_until_released(mock_factory, sink):
    matrix = MockKeypadMatrix(mock_factory, ROWS, COLS)
    matrix.press("7")
    with MatrixKeypad(ROWS, COLS, sink, pin_factory=mock_factory) as keypad:
        pad = Pad(keypad, matrix, sink)
        pad.scan_ms(3000)
        assert pad.keys() == []
        matrix.release()
        pad.scan_ms(100)
        pad.tap("7")
    assert pad.keys() == ["7"]


def test_rows_float_when_not_scanned_and_are_never_driven_high(pad, mock_factory):
    # Two keys in one column must not short a high row to a low one.
    pad.tap("2", "5")
    pad.tap("0")
    for gpio in ROWS:
        pin = mock_factory.pin(gpio)
        assert pin.function == "input"
        assert pin.pull == "floating"
        assert not any(change.state for change in pin.states)


def test_sr6_keypad_never_logs_key_values(pad, caplog):
    caplog.set_level(logging.DEBUG)
    for key in "1234567890":
        pad.tap(key)
    pad.matrix.press("1", "2")  # a rejected chord is logged, but not which keys
    pad.scan_ms(200)
    pad.matrix.release()
    pad.scan_ms(100)
    assert pad.keys() == list("1234567890")
    assert caplog.records, "the chord rejection is logged"
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert not any(ch.isdigit() for ch in text), f"a digit reached the log: {text!r}"


def test_layout_shape_is_checked(mock_factory, sink):
    with pytest.raises(ValueError, match="layout must be 4 rows of 3 keys"):
        MatrixKeypad(ROWS, COLS, sink, layout=(("1", "2"),), pin_factory=mock_factory)


@pytest.mark.parametrize("settle_ns, sent", [(50_000, ["5"]), (0, [])])
def test_parked_rows_are_given_time_to_let_go_before_a_column_is_read(
        mock_factory, sink, settle_ns, sent):
    # Parked (every row low, as the sleeping input thread leaves them), a pressed key pulls
    # its column low. A scan that reads a column before it has followed the released rows
    # sees the key in every row: a chord, and the key is lost until released. The lagging
    # model's columns follow only when the scanner waits.
    matrix = MockKeypadMatrix(mock_factory, ROWS, COLS, lag=True)
    waits: list[float] = []

    def settle(seconds: float) -> None:
        waits.append(seconds)
        matrix.settle()

    with MatrixKeypad(ROWS, COLS, sink, pin_factory=mock_factory, settle_ns=settle_ns,
                      settle=settle) as keypad:
        keypad.watch_edges(lambda: None)
        matrix.settle()
        pad = Pad(keypad, matrix, sink)
        pad.scan_ms(100)
        pad.tap("5")
        pad.tap("5")
    assert pad.keys() == sent * 2
    if settle_ns:
        assert set(waits) == {settle_ns / 1e9}
        # after the parked rows let go, once per row, and after they are parked again: six
        # waits in each of 100 frames
        assert len(waits) == 6 * 100


def test_negative_settle_time_is_refused(mock_factory, sink):
    with pytest.raises(ValueError, match="settle_ns must be >= 0"):
        MatrixKeypad(ROWS, COLS, sink, pin_factory=mock_factory, settle_ns=-1)


def test_edges_a_scan_made_that_arrive_after_it_start_no_new_scan(mock_factory, sink):
    # lgpio calls back from its own thread, so the edges a scan makes (a held key's column
    # follows every row the scan drives, and the parking) arrive after the scan has ended.
    # Taken for new presses, they would start scan after scan for as long as a key is down.
    matrix = MockKeypadMatrix(mock_factory, ROWS, COLS)
    kicks: list[int] = []
    late: list[tuple[Any, Any, Any]] = []
    with MatrixKeypad(ROWS, COLS, sink, pin_factory=mock_factory) as keypad:
        keypad.watch_edges(lambda: kicks.append(1))
        hooks = []  # gpiozero keeps only a weak reference to a callback
        for col in keypad.cols:
            real = col.pin.when_changed

            def defer(ticks: Any, state: Any, real: Any = real) -> None:
                late.append((real, ticks, state))

            hooks.append(defer)
            col.pin.when_changed = defer

        def deliver() -> int:
            n = len(late)
            for real, ticks, state in late:
                real(ticks, state)
            late.clear()
            return n

        matrix.press("5")
        assert deliver() == 1 and kicks == [1]  # the press itself wakes the input thread
        for frame in range(5):
            keypad.scan(frame * 10 * MS)
            assert deliver() >= 2  # the held key's column moved in the scan
        assert kicks == [1]
        time.sleep(0.001)
        matrix.release()
        assert deliver() == 1 and kicks == [1, 1]  # the release is a real edge again


class InputThread:
    """The input thread (pca.hw.poller) in virtual time: it scans at once on a kick, every
    period while the keypad is not at rest, and otherwise once a second."""

    def __init__(self, keypad: MatrixKeypad, period_ms: int = 10) -> None:
        self.keypad, self.period_ns = keypad, period_ms * MS
        self.now_ns, self.next_ns, self.kicks, self.scans = 0, 0, 0, 0
        self._kicked = False
        keypad.watch_edges(self.kick)

    def kick(self) -> None:
        self.kicks += 1
        self._kicked = True

    def run_ms(self, ms: int) -> None:
        end_ns = self.now_ns + ms * MS
        while self.now_ns < end_ns:
            self.now_ns += self.period_ns
            if self._kicked or self.now_ns >= self.next_ns:
                self.scan()

    def scan(self) -> None:
        self._kicked = False
        self.scans += 1
        self.keypad.scan(self.now_ns)
        self.next_ns = self.now_ns + (S if self.keypad.at_rest else self.period_ns)


class CountedSettle:
    """The keypad's settle wait, counted, that can act in one wait still to come."""

    def __init__(self) -> None:
        self.waits = 0
        self._at: int | None = None
        self._action: Callable[[], None] = lambda: None

    def __call__(self, seconds: float) -> None:
        self.waits += 1
        if self.waits == self._at:
            self._action()

    def in_wait(self, ahead: int, action: Callable[[], None]) -> None:
        """Run `action` in the `ahead`-th wait from now (1: the next one)."""
        self._at, self._action = self.waits + ahead, action


@contextmanager
def keypad_at_rest(mock_factory: Any, sink: Any, settle_ns: int,
                   settle: Callable[[float], None]) -> Iterator[tuple[Any, MatrixKeypad,
                                                                     InputThread]]:
    """A keypad on a mock matrix with its input thread, run until it sleeps (2.5 s)."""
    matrix = MockKeypadMatrix(mock_factory, ROWS, COLS)
    with MatrixKeypad(ROWS, COLS, sink, pin_factory=mock_factory, settle_ns=settle_ns,
                      settle=settle) as keypad:
        thread = InputThread(keypad)
        thread.run_ms(2500)
        yield matrix, keypad, thread


def test_a_key_pressed_in_a_scan_after_its_row_was_read_is_not_lost(mock_factory, sink):
    # The press makes its column's edge while the scan runs (ignored: the scan's own edges
    # look the same), and its row has been read already, so the frame shows no key. Taken
    # for at rest, the thread would sleep a second and a 200 ms tap would be gone.
    settle = CountedSettle()
    with keypad_at_rest(mock_factory, sink, 50_000, settle) as (matrix, keypad, thread):
        assert keypad.at_rest and keypad.idle
        # row 0's key, in the wait before row 3 is read (let go, rows 0..2, then row 3)
        settle.in_wait(5, lambda: matrix.press("2"))
        thread.scan()
        assert keypad.read_frame() == {(0, 1)}, "the key is down"
        assert not keypad.at_rest, "the parked columns saw the key that the frame missed"
        thread.run_ms(200)
        matrix.release()
        thread.run_ms(1500)
    assert [item.key for item in sink.items] == ["2"]


def test_a_key_pressed_just_after_a_scan_wakes_the_thread(mock_factory, sink):
    # An edge stamped after the scan's end is a real one, however soon after it comes; only
    # the scan's own (stamped before its end) are ignored.
    with keypad_at_rest(mock_factory, sink, 5_000_000, lambda seconds: None) as (
            matrix, keypad, thread):
        assert keypad.at_rest and thread.kicks == 0
        thread.scan()
        matrix.press("9")  # microseconds after the scan, well inside its 5 ms settle time
        assert thread.kicks == 1
        thread.run_ms(200)
        matrix.release()
        thread.run_ms(1500)
    assert [item.key for item in sink.items] == ["9"]


def test_a_key_let_go_in_a_scan_is_not_taken_as_still_held(mock_factory, sink):
    # The other way round: the frame shows the key, the parked columns no longer do. The
    # thread must go on scanning until the release is committed, or the next key, pressed
    # before the one-second scan, would come while the keypad still thinks one is down.
    settle = CountedSettle()
    with keypad_at_rest(mock_factory, sink, 50_000, settle) as (matrix, keypad, thread):
        time.sleep(0.001)  # well after the last scan's end (real ticks stamp the edges)
        matrix.press("4")
        thread.run_ms(100)
        assert [item.key for item in sink.items] == ["4"] and keypad.at_rest
        settle.in_wait(5, matrix.release)  # after row 1 ("4") has been read
        thread.scan()
        assert not keypad.at_rest
        thread.run_ms(100)
        assert keypad.idle, "the release is committed without waiting for the next second"
        matrix.press("4")
        thread.run_ms(200)
        matrix.release()
        thread.run_ms(1500)
    assert [item.key for item in sink.items] == ["4", "4"]
