"""The Hardware wiring object, the pin-factory choice and the input thread."""

from __future__ import annotations

import importlib.util
import threading

import pytest
from gpiozero.pins.mock import MockFactory

from pca.controller.inputs import BolusButton, Key, Sensor
from pca.hw.hardware import Hardware, build_simulated
from pca.hw.mock_panel import MockPanel
from pca.hw.pins import PIN_FACTORY_ENV, PinFactoryError, make_pin_factory, pin_factory_name
from pca.hw.poller import InputPoller

MS = 1_000_000


def test_whole_panel_reaches_the_queue_in_virtual_time(rig):
    rig.panel.press_button()
    rig.run_ms(100)
    rig.panel.release_button()
    rig.panel.press_key("#")
    rig.run_ms(100)
    rig.panel.release_key()
    rig.panel.set_input("air_in_line", True)
    rig.panel.set_input("battery_depleted", True)
    rig.run_ms(500)
    assert rig.sink.drain() == [BolusButton(True), BolusButton(False), Key("#"),
                                Sensor("air_in_line", True), Sensor("battery_depleted", True)]


def test_hardware_implements_the_annunciator_port(rig):
    rig.hw.annunciator.annunciate("high", False, 0)
    assert rig.panel.output_on("led_red") and rig.panel.output_on("buzzer")
    assert rig.panel.buzzer_hz() == 880.0
    rig.hw.annunciator.annunciate(None, False, 50 * MS)
    assert rig.panel.output_on("led_green") and not rig.panel.output_on("buzzer")


def test_close_releases_every_pin_so_the_unit_can_be_rebuilt(pinmap, sink, mock_factory):
    hw, _panel = build_simulated(pinmap, sink, pin_factory=mock_factory)
    with hw:
        pass
    with Hardware(pinmap, sink, pin_factory=mock_factory) as again:
        again.poll(0)


def test_a_failed_build_releases_what_it_had_claimed(pinmap, sink, mock_factory):
    from gpiozero import LED

    blocker = LED(pinmap.annunciator.led_green.pin, pin_factory=mock_factory)
    with pytest.raises(Exception, match="GPIO25"):
        Hardware(pinmap, sink, pin_factory=mock_factory)
    blocker.close()
    with Hardware(pinmap, sink, pin_factory=mock_factory):
        pass


def test_describe_lists_every_configured_device(rig, pinmap):
    infos = rig.hw.describe()
    listed = {pin for info in infos for pin in info.pins}
    assert listed == set(pinmap.pins().values())
    names = [info.name for info in infos]
    assert names[:7] == ["bolus", "occlusion", "air_in_line", "end_of_travel", "door_open",
                         "battery_low", "battery_depleted"]


def test_mock_panel_must_come_before_the_keypad(pinmap, sink, mock_factory):
    with Hardware(pinmap, sink, pin_factory=mock_factory), \
            pytest.raises(RuntimeError, match="before the keypad"):
        MockPanel(pinmap, mock_factory)


def test_input_thread_polls_with_the_clock_it_is_given(rig):
    polled = threading.Event()
    times = []

    def clock():
        times.append(len(times) * 10 * MS)
        return times[-1]

    def poll(now_ns):
        rig.hw.poll(now_ns)
        if now_ns >= 100 * MS:
            polled.set()

    poller = InputPoller(poll, period_ns=1 * MS, clock=clock)
    poller.start()
    try:
        assert polled.wait(5.0)
    finally:
        poller.stop()
    assert poller.last_poll_ns is not None and poller.errors == 0
    assert poller.healthy(poller.last_poll_ns + 100 * MS)
    assert not poller.healthy(poller.last_poll_ns + 300 * MS)


def test_input_thread_survives_a_failing_poll():
    calls = threading.Event()
    count = [0]

    def poll(now_ns):
        count[0] += 1
        if count[0] == 1:
            raise OSError("GPIO read failed")
        calls.set()

    poller = InputPoller(poll, period_ns=1 * MS)
    poller.start()
    try:
        assert calls.wait(5.0)
    finally:
        poller.stop()
    assert poller.errors == 1


def test_hardware_start_and_stop_run_the_input_thread(rig):
    poller = rig.hw.start()
    with pytest.raises(RuntimeError, match="already running"):
        rig.hw.start()
    rig.hw.stop()
    assert poller.errors == 0


def test_sim_always_gets_the_mock_factory(monkeypatch):
    monkeypatch.setenv(PIN_FACTORY_ENV, "lgpio")
    assert isinstance(make_pin_factory(sim=True), MockFactory)
    assert pin_factory_name("lgpio", sim=True) == "mock"


def test_pin_factory_from_config_then_environment_then_default(monkeypatch):
    monkeypatch.delenv(PIN_FACTORY_ENV, raising=False)
    assert pin_factory_name() == "lgpio"
    monkeypatch.setenv(PIN_FACTORY_ENV, "mock")
    assert pin_factory_name() == "mock"
    assert pin_factory_name("rpigpio") == "rpigpio"
    assert isinstance(make_pin_factory(), MockFactory)


def test_unknown_pin_factory_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(PIN_FACTORY_ENV, "pigpio")
    with pytest.raises(PinFactoryError, match=rf"unknown pin factory 'pigpio' \(from "
                                              rf"{PIN_FACTORY_ENV}\)"):
        pin_factory_name()


@pytest.mark.skipif(importlib.util.find_spec("lgpio") is not None, reason="lgpio is installed")
def test_missing_lgpio_says_what_to_install():
    with pytest.raises(PinFactoryError, match=r"pip install 'pca\[pi\]'"):
        make_pin_factory("lgpio")


@pytest.mark.skipif(importlib.util.find_spec("RPi") is not None, reason="RPi.GPIO is installed")
def test_missing_rpi_gpio_points_to_the_legacy_extra():
    with pytest.raises(PinFactoryError, match=r"pca\[legacy\]"):
        make_pin_factory("rpigpio")
