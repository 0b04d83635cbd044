"""Safety sensor and battery lines: fast assert, slow clear, fail-safe wiring, flicker bounded."""

from __future__ import annotations

import pytest

from pca.controller.inputs import Sensor
from pca.hw.power import BatteryMonitor
from pca.hw.sensors import DEFAULT_HOLD_NS, SensorInput

MS = 1_000_000
S = 1_000_000_000
SAFETY_SENSORS = ("occlusion", "air_in_line", "end_of_travel", "door_open")


def poll_until(device, start_ns, end_ns, step_ns=5 * MS):
    t = start_ns
    while t < end_ns:
        t += step_ns
        device.poll(t)
    return t


@pytest.mark.parametrize("name", SAFETY_SENSORS)
def test_sr4_safety_sensor_reported_within_its_assert_hold(rig, name):
    assert_ns = DEFAULT_HOLD_NS[name][0]
    rig.panel.set_input(name, True)
    rig.run_ms(assert_ns // MS - 5)
    assert rig.sink.items == []
    rig.run_ms(10)
    assert rig.sink.drain() == [Sensor(name, True)]
    rig.run_ms(5000)
    assert rig.sink.drain() == [], "active is reported once, not repeated"
    rig.panel.set_input(name, False)
    rig.run_ms(DEFAULT_HOLD_NS[name][1] // MS + 10)
    assert rig.sink.drain() == [Sensor(name, False)]


@pytest.mark.parametrize("name", SAFETY_SENSORS)
def test_sr4_glitch_shorter_than_the_assert_hold_is_ignored(rig, name):
    rig.panel.set_input(name, True)
    rig.run_ms(DEFAULT_HOLD_NS[name][0] // MS // 2)
    rig.panel.set_input(name, False)
    rig.run_ms(2000)
    assert rig.sink.items == []


def test_sr4_safety_sensors_assert_within_100ms():
    # SR-4 stops delivery within one 50 ms tick of the alarm; the line hold comes on top.
    for name in SAFETY_SENSORS:
        assert DEFAULT_HOLD_NS[name][0] <= 100 * MS


def test_sr10_end_of_travel_switch_reaches_the_queue(rig):
    rig.panel.set_input("end_of_travel", True)
    rig.run_ms(100)
    assert rig.sink.items == [Sensor("end_of_travel", True)]


def test_sr4_open_circuit_reads_as_alarm_for_every_safety_switch(pinmap, sink, mock_factory):
    # Fail-safe wiring: with the connector pulled, the pull-up wins and the line reads active.
    for name in SAFETY_SENSORS:
        line = pinmap.sensors[name]
        assert line.active_high and line.pull == "up", name
    devices = [SensorInput(name, pinmap.sensors[name].pin, sink, active_high=True, pull="up",
                           pin_factory=mock_factory) for name in SAFETY_SENSORS]
    try:
        for device in devices:  # nothing drives the pins: only the pull-ups
            poll_until(device, 0, 200 * MS)
    finally:
        for device in devices:
            device.close()
    assert sink.items == [Sensor(name, True) for name in SAFETY_SENSORS]


def test_sr4_tmc2209_diag_pulse_shorter_than_a_poll_is_latched(mock_factory, sink):
    with SensorInput("occlusion", 5, sink, active_high=True, pull="down", latch_pulses=True,
                     pin_factory=mock_factory) as diag:
        pin = mock_factory.pin(5)
        t = poll_until(diag, 0, 100 * MS)
        pin.drive_high()  # a stall pulse that ends before the next poll
        pin.drive_low()
        diag.poll(t + 10 * MS)
        assert sink.items == [Sensor("occlusion", True)]
        poll_until(diag, t + 10 * MS, t + 2 * S)
    assert sink.items == [Sensor("occlusion", True), Sensor("occlusion", False)]


def test_sensor_name_must_be_known(mock_factory, sink):
    with pytest.raises(ValueError, match="unknown sensor 'flow'"):
        SensorInput("flow", 5, sink, active_high=True, pin_factory=mock_factory)


def test_sensor_active_at_start_is_reported(pinmap, sink, mock_factory):
    with SensorInput("door_open", 13, sink, active_high=True, pull="up",
                     pin_factory=mock_factory) as door:
        poll_until(door, 0, 200 * MS)
    assert sink.items == [Sensor("door_open", True)]


@pytest.fixture
def battery(pinmap, sink, mock_factory):
    with BatteryMonitor(pinmap.power["battery_low"], pinmap.power["battery_depleted"], sink,
                        pin_factory=mock_factory) as monitor:
        for line in monitor.lines:
            mock_factory.pin(line.gpio).drive_high()  # active low: high is "battery fine"
        poll_until(monitor, 0, 100 * MS)
        assert sink.items == []
        yield monitor


def flicker(monitor, pin, *, start_ns, duration_ns, on_ns, off_ns, step_ns=5 * MS):
    """Toggle an active-low line: on (low) for on_ns, off (high) for off_ns, repeatedly."""
    t, end_ns = start_ns, start_ns + duration_ns
    while t < end_ns:
        pin.drive_low()
        t = poll_until(monitor, t, min(t + on_ns, end_ns), step_ns)
        pin.drive_high()
        t = poll_until(monitor, t, min(t + off_ns, end_ns), step_ns)
    return t


def test_battery_low_flickering_at_10hz_is_reported_once(battery, mock_factory, sink):
    pin = mock_factory.pin(16)
    t = flicker(battery, pin, start_ns=100 * MS, duration_ns=60 * S, on_ns=50 * MS,
                off_ns=50 * MS)
    assert sink.items == [], "50 ms flickers never hold the 1 s assert time"
    t = flicker(battery, pin, start_ns=t, duration_ns=120 * S, on_ns=1500 * MS,
                off_ns=500 * MS, step_ns=10 * MS)
    assert sink.items == [Sensor("battery_low", True)], "a flicker with 1.5 s lows asserts once"
    poll_until(battery, t, t + 31 * S, step_ns=10 * MS)
    assert sink.items == [Sensor("battery_low", True), Sensor("battery_low", False)]


@pytest.mark.parametrize("period_s", [2, 5, 20, 40, 61])
def test_battery_line_flicker_cannot_flood_the_log(battery, mock_factory, sink, period_s):
    duration_ns = 10 * 60 * S
    flicker(battery, mock_factory.pin(16), start_ns=100 * MS, duration_ns=duration_ns,
            on_ns=period_s * S // 2, off_ns=period_s * S // 2, step_ns=20 * MS)
    clear_ns = DEFAULT_HOLD_NS["battery_low"][1]
    # At most one report/clear pair per clear dwell, whatever the flicker.
    assert len(sink.items) <= 2 * (duration_ns // clear_ns + 1)
    for earlier, later in zip(sink.items, sink.items[1:], strict=False):
        assert earlier.active != later.active


def test_battery_depleted_reported_within_a_quarter_second(battery, mock_factory, sink):
    mock_factory.pin(26).drive_low()
    poll_until(battery, 100 * MS, 100 * MS + 245 * MS)
    assert sink.items == []
    poll_until(battery, 345 * MS, 360 * MS)
    assert sink.items == [Sensor("battery_depleted", True)]
