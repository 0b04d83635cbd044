"""The patient's cord button: bounce, hold, stuck, stuck at boot; every press reaches the queue."""

from __future__ import annotations

from gpiozero.pins.mock import MockFactory, MockPWMPin
from hypothesis import given, settings
from hypothesis import strategies as st

from pca.controller.inputs import BolusButton, Sensor
from pca.hw.button import CordButton
from pca.hw.sink import ListSink

MS = 1_000_000
S = 1_000_000_000
PIN = 17


def make_button(factory, sink, **kw):
    return CordButton(PIN, sink, pin_factory=factory, **kw)


def poll_until(button, start_ns, end_ns, step_ns=5 * MS):
    t = start_ns
    while t < end_ns:
        t += step_ns
        button.poll(t)
    return t


def settle_released(factory, button):
    factory.pin(PIN).drive_high()  # released (active low, pulled up)
    return poll_until(button, 0, 100 * MS)


def test_one_press_is_one_request_whatever_the_bounce(mock_factory, sink):
    with make_button(mock_factory, sink) as button:
        pin = mock_factory.pin(PIN)
        t = settle_released(mock_factory, button)
        # A contact bounce burst: toggling every 1-3 ms for 12 ms, then closed.
        for step_ms in (1, 2, 1, 3, 1, 2, 2):
            pin.drive_low() if pin.state else pin.drive_high()
            t += step_ms * MS
            button.poll(t)
        pin.drive_low()
        t = poll_until(button, t, t + 200 * MS, step_ns=1 * MS)
        # The release bounces too.
        for step_ms in (1, 1, 2, 1, 3):
            pin.drive_low() if pin.state else pin.drive_high()
            t += step_ms * MS
            button.poll(t)
        pin.drive_high()
        poll_until(button, t, t + 200 * MS, step_ns=1 * MS)
    assert sink.items == [BolusButton(True), BolusButton(False)]


@settings(max_examples=40, deadline=None)
@given(bounces_ms=st.lists(st.integers(min_value=1, max_value=29), min_size=0, max_size=12),
       hold_ms=st.integers(min_value=40, max_value=3000))
def test_any_bounce_burst_shorter_than_debounce_gives_exactly_one_press(bounces_ms, hold_ms):
    factory = MockFactory(pin_class=MockPWMPin)
    sink = ListSink()
    try:
        with make_button(factory, sink) as button:
            pin = factory.pin(PIN)
            t = settle_released(factory, button)
            for gap_ms in bounces_ms:  # each bounce lasts less than the 30 ms debounce
                pin.drive_low() if pin.state else pin.drive_high()
                t = poll_until(button, t, t + gap_ms * MS, step_ns=1 * MS)
            pin.drive_low()
            t = poll_until(button, t, t + hold_ms * MS)
            pin.drive_high()
            poll_until(button, t, t + 100 * MS)
    finally:
        factory.reset()
    assert sink.items == [BolusButton(True), BolusButton(False)]


def test_glitch_shorter_than_debounce_is_not_a_press(mock_factory, sink):
    with make_button(mock_factory, sink) as button:
        pin = mock_factory.pin(PIN)
        t = settle_released(mock_factory, button)
        pin.drive_low()
        t = poll_until(button, t, t + 20 * MS, step_ns=1 * MS)
        pin.drive_high()
        poll_until(button, t, t + 200 * MS)
    assert sink.items == []


def test_holding_does_not_repeat_the_request(mock_factory, sink):
    with make_button(mock_factory, sink) as button:
        t = settle_released(mock_factory, button)
        mock_factory.pin(PIN).drive_low()
        poll_until(button, t, t + 9 * S, step_ns=10 * MS)
    assert sink.items == [BolusButton(True)]


def test_every_press_reaches_the_queue(mock_factory, sink):
    # The controller, not the button, decides lockout; 25 quick presses are 25 requests.
    with make_button(mock_factory, sink) as button:
        pin = mock_factory.pin(PIN)
        t = settle_released(mock_factory, button)
        for _ in range(25):
            pin.drive_low()
            t = poll_until(button, t, t + 60 * MS)
            pin.drive_high()
            t = poll_until(button, t, t + 60 * MS)
    assert sink.items == [BolusButton(True), BolusButton(False)] * 25


def test_held_more_than_10s_reports_button_stuck_then_clears_on_release(mock_factory, sink):
    with make_button(mock_factory, sink) as button:
        pin = mock_factory.pin(PIN)
        t = settle_released(mock_factory, button)
        pin.drive_low()
        pressed_at_ns = t + 1 * MS  # first poll that sees it closed
        t = poll_until(button, t, pressed_at_ns + 10 * S, step_ns=1 * MS)
        assert sink.items == [BolusButton(True)], "exactly 10 s is not yet 'more than 10 s'"
        button.poll(t + 1 * MS)
        assert sink.items == [BolusButton(True), Sensor("button_stuck", True)]
        assert button.stuck
        t = poll_until(button, t + 1 * MS, t + 30 * S, step_ns=50 * MS)
        assert sink.items.count(Sensor("button_stuck", True)) == 1
        pin.drive_high()
        poll_until(button, t, t + 100 * MS)
    assert sink.items == [BolusButton(True), Sensor("button_stuck", True), BolusButton(False),
                          Sensor("button_stuck", False)]
    assert not button.stuck


def test_button_stuck_at_boot_is_reported_not_counted(mock_factory, sink):
    with make_button(mock_factory, sink) as button:
        pin = mock_factory.pin(PIN)
        pin.drive_low()  # closed before the first poll
        t = poll_until(button, 0, 100 * MS)
        assert sink.items == [Sensor("button_stuck", True)]
        assert button.stuck and button.pressed
        t = poll_until(button, t, t + 20 * S, step_ns=50 * MS)
        assert sink.items == [Sensor("button_stuck", True)]
        pin.drive_high()
        t = poll_until(button, t, t + 100 * MS)
        assert sink.items == [Sensor("button_stuck", True), Sensor("button_stuck", False)]
        # Once seen released, the next press is a normal request.
        pin.drive_low()
        poll_until(button, t, t + 100 * MS)
    assert sink.items[-1] == BolusButton(True)
    assert BolusButton(False) not in sink.items


def test_released_at_boot_reports_nothing(mock_factory, sink):
    with make_button(mock_factory, sink) as button:
        settle_released(mock_factory, button)
        assert button.pressed is False
    assert sink.items == []


def test_active_high_button_wiring(mock_factory, sink):
    with make_button(mock_factory, sink, active_high=True, pull="down") as button:
        pin = mock_factory.pin(PIN)
        t = poll_until(button, 0, 100 * MS)
        pin.drive_high()
        poll_until(button, t, t + 100 * MS)
    assert sink.items == [BolusButton(True)]
