"""The one place that chooses gpiozero's pin factory: lgpio on a Pi, MockFactory for --sim."""

from __future__ import annotations

import os
from typing import Any

PIN_FACTORY_ENV = "PCA_PIN_FACTORY"
DEFAULT_FACTORY = "lgpio"
FACTORY_NAMES = ("lgpio", "mock", "rpigpio")


class PinFactoryError(RuntimeError):
    """The requested pin factory cannot be used here; the message says what to install or set."""


def pin_factory_name(name: str | None = None, *, sim: bool = False) -> str:
    """Resolve the factory name: --sim wins, then an explicit value, then $PCA_PIN_FACTORY."""
    if sim:
        return "mock"
    chosen = name or os.environ.get(PIN_FACTORY_ENV) or DEFAULT_FACTORY
    if chosen not in FACTORY_NAMES:
        raise PinFactoryError(
            f"unknown pin factory {chosen!r} (from "
            f"{'configuration' if name else PIN_FACTORY_ENV}); use one of "
            f"{', '.join(FACTORY_NAMES)}")
    return chosen


def make_pin_factory(name: str | None = None, *, sim: bool = False) -> Any:
    """Build the gpiozero pin factory every device of this process gets explicitly.

    Devices are always handed this factory (never gpiozero's global default), so
    a simulated run can never touch real pins by accident.
    """
    chosen = pin_factory_name(name, sim=sim)
    if chosen == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        # PWM-capable mock pins, because the tonal buzzer needs a frequency.
        return MockFactory(pin_class=MockPWMPin)
    if chosen == "lgpio":
        try:
            from gpiozero.pins.lgpio import LGPIOFactory
        except ImportError as exc:
            raise PinFactoryError(
                "the lgpio pin factory needs the lgpio package: pip install 'pca[pi]' "
                "(or run with --sim / --mock off the Pi)") from exc
        try:
            # gpiozero picks the right gpiochip itself (gpiochip4 on early Pi 5 kernels).
            return LGPIOFactory()
        except Exception as exc:  # lgpio raises its own error type when no chip opens
            raise PinFactoryError(
                f"cannot open the GPIO chip through lgpio ({exc}); is this a Raspberry Pi and "
                "is the user in the gpio group (hardware/99-pca-gpio.rules)?") from exc
    try:
        from gpiozero.pins.rpigpio import RPiGPIOFactory
    except ImportError as exc:
        raise PinFactoryError(
            "the legacy RPi.GPIO factory needs RPi.GPIO: pip install 'pca[legacy]' "
            "(it does not work on a Pi 5; prefer lgpio)") from exc
    return RPiGPIOFactory()
