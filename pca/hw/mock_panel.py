"""A person at the pump, in simulation: drives MockFactory input pins and reads outputs back.

Used by `pca sim` (front panel), `pca hw selftest --mock` and the tests. Only
ever touches gpiozero's MockFactory, never a real pin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from pca.hw import pinmap as pm
from pca.hw.keypad import LAYOUT


class _MatrixRowPinMixin:
    """Tells the keypad model whenever the scanner drives or floats a row."""

    def __init__(self, factory: Any, info: Any, matrix: MockKeypadMatrix | None = None) -> None:
        self._matrix = matrix
        super().__init__(factory, info)  # type: ignore[call-arg]

    def _set_function(self, value: str) -> None:
        super()._set_function(value)  # type: ignore[misc]
        if self._matrix is not None:
            self._matrix.row_changed()

    def _change_state(self, value: Any) -> bool:
        changed: bool = super()._change_state(value)  # type: ignore[misc]
        if getattr(self, "_matrix", None) is not None:
            self._matrix.row_changed()  # type: ignore[union-attr]
        return changed


class _MatrixRowPin(_MatrixRowPinMixin, MockPin):  # type: ignore[misc]
    pass


class _MatrixRowPWMPin(_MatrixRowPinMixin, MockPWMPin):  # type: ignore[misc]
    pass


def _existing_pin(factory: MockFactory, gpio: int) -> Any:
    for pin in factory.pins.values():
        if pin.info.name == f"GPIO{gpio}":
            return pin
    return None


class MockKeypadMatrix:
    """Electrical model of a 4x3 membrane keypad wired to mock pins.

    Rows and columns are nodes and each pressed key joins its row to its column.
    A column reads low when its node is joined (through any chain of pressed
    keys) to a row the scanner is driving low, which reproduces ghosting: with
    three keys down at three corners of a rectangle the fourth corner reads as
    pressed too. Create it before the keypad device so the row pins are ours.

    With `lag` the columns follow the rows only when `settle()` is called (a slow
    pull-up, or a contact emulated by another process): a scanner that reads a column
    without waiting for it sees the previous drive.
    """

    def __init__(self, factory: MockFactory, rows: Sequence[int], cols: Sequence[int],
                 layout: tuple[tuple[str, ...], ...] = LAYOUT, *, lag: bool = False) -> None:
        self._ready = False
        self.lag = lag
        self._pressed: set[tuple[int, int]] = set()
        self._layout = layout
        row_class = _MatrixRowPWMPin if issubclass(factory.pin_class, MockPWMPin) else _MatrixRowPin
        self._rows = []
        for gpio in rows:
            existing = _existing_pin(factory, gpio)
            if existing is not None and not isinstance(existing, _MatrixRowPinMixin):
                raise RuntimeError(
                    f"GPIO{gpio} already exists in this MockFactory; build the mock panel "
                    "before the keypad (Hardware)")
            self._rows.append(factory.pin(gpio, pin_class=row_class, matrix=self))
        self._cols = [factory.pin(gpio) for gpio in cols]
        self._ready = True
        self.settle()

    def key_position(self, key: str) -> tuple[int, int]:
        for r, row in enumerate(self._layout):
            if key in row:
                return r, row.index(key)
        raise ValueError(f"no key {key!r} on this keypad")

    def press(self, *keys: str) -> None:
        self._pressed.update(self.key_position(k) for k in keys)
        self.settle()

    def release(self, *keys: str) -> None:
        """Release the given keys, or every key when called without any."""
        if keys:
            self._pressed.difference_update(self.key_position(k) for k in keys)
        else:
            self._pressed.clear()
        self.settle()

    def row_changed(self) -> None:
        if not self.lag:
            self.settle()

    def settle(self) -> None:
        """Recompute every column level from the rows' drive and the pressed keys."""
        if not self._ready:
            return
        parent: dict[tuple[str, int], tuple[str, int]] = {}

        def find(node: tuple[str, int]) -> tuple[str, int]:
            parent.setdefault(node, node)
            while parent[node] != node:
                parent[node] = parent[parent[node]]
                node = parent[node]
            return node

        for r, c in self._pressed:
            parent[find(("r", r))] = find(("c", c))
        driven_low = {find(("r", r)) for r, pin in enumerate(self._rows)
                      if pin.function == "output" and not pin.state}
        for c, pin in enumerate(self._cols):
            if pin.function != "input":
                continue
            if find(("c", c)) in driven_low:
                pin.drive_low()
            elif pin.pull == "up":
                pin.drive_high()


class MockPanel:
    """Drives every configured input of a MockFactory and reads the outputs back."""

    def __init__(self, pinmap: pm.PinMap, factory: MockFactory) -> None:
        if not isinstance(factory, MockFactory):
            raise TypeError("MockPanel only drives gpiozero's MockFactory")
        self.factory = factory
        self.pinmap = pinmap
        self.keypad = MockKeypadMatrix(factory, pinmap.keypad.rows, pinmap.keypad.cols)
        self.inputs: dict[str, pm.InputLine] = {
            "bolus": pinmap.bolus_button, **pinmap.sensors, **pinmap.power}
        a = pinmap.annunciator
        self.outputs: dict[str, int] = {"buzzer": a.buzzer.pin, "led_red": a.led_red.pin,
                                        "led_yellow": a.led_yellow.pin,
                                        "led_green": a.led_green.pin}

    def pin(self, gpio: int) -> Any:
        return self.factory.pin(gpio)

    def set_input(self, name: str, active: bool) -> None:
        """Put an input line (bolus, a sensor or a battery line) at its active/idle level."""
        line = self.inputs[name]
        pin = self.pin(line.pin)
        if active == line.active_high:
            pin.drive_high()
        else:
            pin.drive_low()

    def set_idle(self) -> None:
        """Every input at its idle level: door shut, line primed, battery fine, button up."""
        for name in self.inputs:
            self.set_input(name, False)
        self.keypad.release()

    def press_button(self) -> None:
        self.set_input("bolus", True)

    def release_button(self) -> None:
        self.set_input("bolus", False)

    def press_key(self, *keys: str) -> None:
        self.keypad.press(*keys)

    def release_key(self, *keys: str) -> None:
        self.keypad.release(*keys)

    def output_on(self, name: str) -> bool:
        """Is the LED lit / the buzzer sounding?"""
        # A stopped TonalBuzzer leaves its PWM pin at 0, a playing one at 50 % duty.
        return bool(self.pin(self.outputs[name]).state)

    def buzzer_hz(self) -> float | None:
        pin = self.pin(self.outputs["buzzer"])
        if isinstance(pin, MockPWMPin) and pin.frequency is not None:
            return float(pin.frequency) if pin.state else None
        return None
