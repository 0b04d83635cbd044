"""Builds every GPIO device of the pump from a pin map, a pin factory and the controller's sink."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from pca.hw import pinmap as pm
from pca.hw.annunciator import GpioAnnunciator
from pca.hw.button import CordButton
from pca.hw.keypad import MatrixKeypad
from pca.hw.lines import MS
from pca.hw.poller import InputPoller
from pca.hw.power import BatteryMonitor
from pca.hw.sensors import SensorInput
from pca.hw.sink import Sink

if TYPE_CHECKING:
    from pca.hw.mock_panel import MockPanel


@dataclass(frozen=True)
class DeviceInfo:
    """One configured device as the bring-up tool lists it."""

    kind: str  # "input", "keypad", "output" or "motor line"
    name: str
    pins: tuple[int, ...]
    note: str = ""


class PinSetupError(RuntimeError):
    """A device's pins could not be claimed; the message names the device and its pins."""


class Hardware:
    """The pump's buttons, keypad, sensors, battery lines and annunciator, wired.

    Inputs only put BolusButton / Key / Sensor items on `sink`; the annunciator
    implements the controller's Annunciator port. Either call `start()` for the
    production input thread, or `poll(now_ns)` yourself (tests, scenarios),
    never both. STEP/DIR/ENABLE are validated in the map but driven by the
    native pulse generator, not here.
    """

    def __init__(self, pinmap: pm.PinMap, sink: Sink, *, pin_factory: Any,
                 poll_period_ns: int = 10 * MS) -> None:
        self.pinmap = pinmap
        self.pin_factory = pin_factory
        self._poll_period_ns = poll_period_ns
        self._poller: InputPoller | None = None
        self._closeables: list[Any] = []
        try:
            b = pinmap.bolus_button
            self.button = self._claim("bolus button", (b.pin,), lambda: CordButton(
                b.pin, sink, active_high=b.active_high, pull=b.pull, pin_factory=pin_factory))
            k = pinmap.keypad
            self.keypad = self._claim("keypad", (*k.rows, *k.cols), lambda: MatrixKeypad(
                k.rows, k.cols, sink, pin_factory=pin_factory, settle_ns=k.settle_us * 1000))
            self.sensors: dict[str, SensorInput] = {}
            for name, line in pinmap.sensors.items():
                self.sensors[name] = self._claim(name, (line.pin,), partial(
                    SensorInput, name, line.pin, sink, active_high=line.active_high,
                    pull=line.pull, latch_pulses=line.source == "tmc2209_diag",
                    pin_factory=pin_factory))
            low, depleted = pinmap.power["battery_low"], pinmap.power["battery_depleted"]
            self.battery = self._claim("battery board", (low.pin, depleted.pin),
                                       lambda: BatteryMonitor(low, depleted, sink,
                                                              pin_factory=pin_factory))
            a = pinmap.annunciator
            self.annunciator = self._claim(
                "annunciator", (a.buzzer.pin, a.led_red.pin, a.led_yellow.pin, a.led_green.pin),
                lambda: GpioAnnunciator.from_pinmap(a, pin_factory=pin_factory))
        except Exception:
            self.close()
            raise

    def _claim(self, what: str, pins: tuple[int, ...], make: Callable[[], Any]) -> Any:
        """Build one device; a refusal names the device and its pins (lgpio's own error
        says only 'GPIO busy')."""
        try:
            return self._own(make())
        except Exception as err:
            where = ",".join(f"GPIO{p}" for p in pins)
            hint = ""
            if "busy" in str(err).lower():
                hint = " (another program or driver holds the line: `gpioinfo` shows which)"
            raise PinSetupError(f"{what} on {where}: {err}{hint}") from err

    def _own(self, device: Any) -> Any:
        self._closeables.append(device)
        return device

    def poll(self, now_ns: int) -> None:
        """Sample every input once (the input thread's body)."""
        self.button.poll(now_ns)
        self.keypad.scan(now_ns)
        for sensor in self.sensors.values():
            sensor.poll(now_ns)
        self.battery.poll(now_ns)

    def at_rest(self) -> bool:
        """Every input settled: the next change will arrive as an edge."""
        return (self.button.at_rest and self.keypad.at_rest
                and all(s.at_rest for s in self.sensors.values())
                and all(line.at_rest for line in self.battery.lines))

    def start(self, clock: Callable[[], int] = time.monotonic_ns, *,
              sleep_at_rest: bool = True, idle_period_ns: int = 1000 * MS) -> InputPoller:
        """Start the input thread; returns it so a watchdog can ask `healthy(now_ns)`.

        With `sleep_at_rest` (production) every line's edges wake the thread, which
        samples every `poll_period_ns` only while something is changing and once every
        `idle_period_ns` otherwise; without it, it samples at the fixed period (the
        baseline `pca bench power` measures against)."""
        if self._poller is not None:
            raise RuntimeError("hardware input thread already running")
        self._poller = InputPoller(self.poll, period_ns=self._poll_period_ns, clock=clock,
                                   at_rest=self.at_rest if sleep_at_rest else None,
                                   idle_period_ns=max(idle_period_ns, self._poll_period_ns))
        if sleep_at_rest:
            kick = self._poller.kick
            self.button.watch_edges(kick)
            self.keypad.watch_edges(kick)
            for sensor in self.sensors.values():
                sensor.watch_edges(kick)
            for line in self.battery.lines:
                line.watch_edges(kick)
        self._poller.start()
        return self._poller

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None

    def inputs(self) -> Iterator[tuple[str, Any]]:
        """(name, device) of every single-line input."""
        yield "bolus", self.button
        yield from self.sensors.items()
        for line in self.battery.lines:
            yield line.name, line

    def describe(self) -> list[DeviceInfo]:
        m = self.pinmap
        infos = [DeviceInfo("input", "bolus", (m.bolus_button.pin,), "cord button")]
        for name, line in m.sensors.items():
            note = f"source {line.source}" if name == "occlusion" else ""
            infos.append(DeviceInfo("input", name, (line.pin,), note))
        for name, power_line in m.power.items():
            infos.append(DeviceInfo("input", name, (power_line.pin,), "UPS/battery board"))
        infos.append(DeviceInfo("keypad", "keypad", (*m.keypad.rows, *m.keypad.cols),
                                "rows then columns"))
        a = m.annunciator
        infos.append(DeviceInfo("output", "buzzer", (a.buzzer.pin,), a.buzzer_kind))
        for name in ("led_red", "led_yellow", "led_green"):
            infos.append(DeviceInfo("output", name, (getattr(a, name).pin,)))
        for name in ("step", "dir", "enable"):
            infos.append(DeviceInfo("motor line", name, (getattr(m.motor, name).pin,),
                                    "native pulse generator; checked by pca bench"))
        return infos

    def close(self) -> None:
        self.stop()
        for device in reversed(self._closeables):
            device.close()
        self._closeables.clear()

    def __enter__(self) -> Hardware:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_simulated(pinmap: pm.PinMap, sink: Sink, *, pin_factory: Any = None,
                    poll_period_ns: int = 10 * MS) -> tuple[Hardware, MockPanel]:
    """Hardware on a MockFactory plus the MockPanel that plays the patient and clinician.

    The panel must exist before the keypad is built (its row pins model the
    key matrix), and every input is then set to its idle level, because a
    fail-safe line left floating high reads as an alarm.
    """
    from pca.hw.mock_panel import MockPanel
    from pca.hw.pins import make_pin_factory

    factory = pin_factory if pin_factory is not None else make_pin_factory(sim=True)
    panel = MockPanel(pinmap, factory)
    hardware = Hardware(pinmap, sink, pin_factory=factory, poll_period_ns=poll_period_ns)
    panel.set_idle()
    return hardware, panel
