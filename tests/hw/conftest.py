"""Fixtures for the GPIO layer tests: a fresh MockFactory per test, a list sink, virtual time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from pca.hw.hardware import Hardware, build_simulated
from pca.hw.mock_panel import MockPanel
from pca.hw.pinmap import REPO_PINOUT, PinMap, load_pinmap
from pca.hw.sink import ListSink

MS = 1_000_000
S = 1_000_000_000


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """A fresh MockFactory (PWM-capable pins, for the tonal buzzer), reset afterwards.

    Devices get it passed explicitly; it is also installed as gpiozero's default
    so that nothing in a test can ever reach for a real pin factory.
    """
    saved = Device.pin_factory
    factory = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = saved


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def pinmap() -> PinMap:
    return load_pinmap(REPO_PINOUT)


@dataclass
class Rig:
    """The whole simulated front panel, polled in virtual time."""

    hw: Hardware
    panel: MockPanel
    sink: ListSink
    now_ns: int = 0

    def run_ms(self, ms: int, step_ms: int = 5) -> None:
        end_ns = self.now_ns + ms * MS
        while self.now_ns < end_ns:
            self.now_ns += step_ms * MS
            self.hw.poll(self.now_ns)


@pytest.fixture
def rig(pinmap: PinMap, sink: ListSink, mock_factory: MockFactory) -> Iterator[Rig]:
    hw, panel = build_simulated(pinmap, sink, pin_factory=mock_factory)
    with hw:
        r = Rig(hw, panel, sink)
        r.run_ms(100)
        assert sink.drain() == [], "the idle panel must produce no inputs"
        yield r
