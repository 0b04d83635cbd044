"""`pca hw selftest`: the bring-up check a technician runs on a new unit (or --mock, anywhere)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pca.controller.inputs import BolusButton, Input, Key, Sensor
from pca.hw.hardware import Hardware, build_simulated
from pca.hw.keypad import LAYOUT
from pca.hw.lines import MS, S
from pca.hw.pinmap import PinMap, PinMapError, load_pinmap
from pca.hw.pins import FACTORY_NAMES, PinFactoryError, make_pin_factory
from pca.hw.sink import ListSink

POLL_NS = 5 * MS
# Longer than any assert hold (battery_low: 1 s) and any clear hold of a sensor (1 s).
SETTLE_NS = 2 * S
MOCK_TIMEOUT_NS = 5 * S

# What the technician does to make each input active, then idle again.
INSTRUCTIONS: dict[str, tuple[str, str]] = {
    "bolus": ("Press and hold the patient's bolus button.", "Release the bolus button."),
    "occlusion": ("Trigger the occlusion sensor (press the pressure switch or pinch the line).",
                  "Release the occlusion sensor."),
    "air_in_line": ("Take the tubing out of the air-in-line sensor.",
                    "Put the primed tubing back into the air-in-line sensor."),
    "end_of_travel": ("Move the plunger carriage onto the end-of-travel switch.",
                      "Move the carriage back off the switch."),
    "door_open": ("Open the syringe door.", "Close the syringe door and clamp the syringe."),
    "battery_low": ("Pull the UPS board's low-battery output low (test link LB, wiring.md).",
                    "Remove the LB test link."),
    "battery_depleted": ("Pull the UPS board's shutdown output low (test link SD, wiring.md).",
                         "Remove the SD test link."),
}
OUTPUT_QUESTIONS = {
    "buzzer": "Is the buzzer sounding?",
    "led_red": "Is the RED lamp lit?",
    "led_yellow": "Is the YELLOW lamp lit?",
    "led_green": "Is the GREEN lamp lit?",
}
KEYS = tuple(key for row in LAYOUT for key in row)


class Technician(Protocol):
    """Whoever (or whatever) makes inputs change and judges outputs."""

    def at_rest(self) -> None: ...

    def actuate(self, name: str, active: bool) -> None: ...

    def press_key(self, key: str) -> None: ...

    def release_keys(self) -> None: ...

    def sees_output(self, name: str, on: bool) -> bool: ...


class ConsoleTechnician:
    """A person at the bench: prints instructions, asks about lamps and sound."""

    def __init__(self, out: Callable[[str], None], ask: Callable[[str], str]) -> None:
        self.out, self.ask = out, ask

    def at_rest(self) -> None:
        self.ask("Put the unit at rest: door shut and clamped, carriage mid-travel, primed tubing "
                 "in the air sensor, battery charged, hands off button and keypad. "
                 "Press Enter when ready. ")

    def actuate(self, name: str, active: bool) -> None:
        self.out("  -> " + INSTRUCTIONS[name][0 if active else 1])

    def press_key(self, key: str) -> None:
        self.out(f"  -> Press and release key {key}.")

    def release_keys(self) -> None:
        pass  # a person releases the key by themselves

    def sees_output(self, name: str, on: bool) -> bool:
        if not on:
            return True  # one question per output: asked while it is on
        return self.ask(f"  {OUTPUT_QUESTIONS[name]} [y/n] ").strip().lower().startswith("y")


class MockTechnician:
    """Plays the technician on a MockFactory: drives the input pins, reads the outputs back."""

    def __init__(self, panel: Any) -> None:
        self.panel = panel

    def at_rest(self) -> None:
        self.panel.set_idle()

    def actuate(self, name: str, active: bool) -> None:
        self.panel.set_input(name, active)

    def press_key(self, key: str) -> None:
        self.panel.press_key(key)

    def release_keys(self) -> None:
        self.panel.release_key()

    def sees_output(self, name: str, on: bool) -> bool:
        return bool(self.panel.output_on(name) == on)


@dataclass
class _Clock:
    """Real time on the bench; virtual time under --mock, so a mock run takes no time."""

    virtual: bool
    now_ns: int = 0

    def __post_init__(self) -> None:
        if not self.virtual:
            self.now_ns = time.monotonic_ns()

    def tick(self) -> int:
        if self.virtual:
            self.now_ns += POLL_NS
        else:
            time.sleep(POLL_NS / 1e9)
            self.now_ns = time.monotonic_ns()
        return self.now_ns


@dataclass
class _Session:
    hardware: Hardware
    sink: ListSink
    technician: Technician
    clock: _Clock
    timeout_ns: int
    out: Callable[[str], None]
    failures: list[str] = field(default_factory=list)

    def run_for(self, duration_ns: int) -> None:
        end_ns = self.clock.now_ns + duration_ns
        while self.clock.now_ns < end_ns:
            self.hardware.poll(self.clock.tick())

    def wait_for(self, done: Callable[[], bool]) -> bool:
        end_ns = self.clock.now_ns + self.timeout_ns
        while self.clock.now_ns < end_ns:
            self.hardware.poll(self.clock.tick())
            if done():
                return True
        return False

    def report(self, name: str, pins: str, problem: str | None) -> None:
        if problem is None:
            self.out(f"PASS  {name} ({pins})")
        else:
            self.out(f"FAIL  {name} ({pins}): {problem}")
            self.failures.append(name)


def _seen(sink: ListSink, item: Input) -> Callable[[], bool]:
    return lambda: item in sink.items


def _check_at_rest(s: _Session) -> set[str]:
    s.technician.at_rest()
    s.run_for(SETTLE_NS)
    busy = set()
    for name, device in s.hardware.inputs():
        if device.is_active:
            busy.add(name)
            s.report(name, f"GPIO{device.gpio}", "active at rest; expected idle (check the "
                     "sensor, its connector and the pin map's active level)")
    if s.hardware.keypad.read_frame():
        busy.add("keypad")
        s.report("keypad", "matrix", "a key reads pressed at rest")
    return busy


def _check_input(s: _Session, name: str, device: Any) -> None:
    pins = f"GPIO{device.gpio}"
    s.sink.drain()
    on_item: Input = BolusButton(True) if name == "bolus" else Sensor(name, True)
    s.technician.actuate(name, True)
    if not s.wait_for(_seen(s.sink, on_item)):
        s.technician.actuate(name, False)
        s.report(name, pins, f"never went active within {s.timeout_ns / S:.1f} s (check the "
                 "switch, its wiring and the pin number)")
        return
    s.technician.actuate(name, False)
    released: Callable[[], bool] = (_seen(s.sink, BolusButton(False)) if name == "bolus"
                                    else lambda: not device.is_active)
    if not s.wait_for(released):
        s.report(name, pins, f"went active but did not return to idle within "
                 f"{s.timeout_ns / S:.1f} s")
        return
    s.report(name, pins, None)


def _check_keypad(s: _Session, pinmap: PinMap) -> None:
    pins = "rows GPIO" + ",".join(map(str, pinmap.keypad.rows)) + " cols GPIO" + ",".join(
        map(str, pinmap.keypad.cols))
    problems = []
    for key in KEYS:
        s.sink.drain()
        s.technician.press_key(key)
        got = s.wait_for(lambda: any(isinstance(i, Key) for i in s.sink.items))
        s.technician.release_keys()
        s.wait_for(lambda: s.hardware.keypad.idle)
        keys = [i.key for i in s.sink.drain() if isinstance(i, Key)]
        if not got:
            problems.append(f"key {key} not seen")
        elif keys != [key]:
            problems.append(f"key {key} read as {' '.join(keys)} (rows/columns swapped?)")
    s.report("keypad", pins, "; ".join(problems) if problems else None)


def _check_outputs(s: _Session) -> None:
    annunciator = s.hardware.annunciator
    a = s.hardware.pinmap.annunciator
    pins = {"buzzer": a.buzzer.pin, "led_red": a.led_red.pin, "led_yellow": a.led_yellow.pin,
            "led_green": a.led_green.pin}
    for name in annunciator.OUTPUTS:
        annunciator.set_output(name, True)
        lit = s.technician.sees_output(name, True)
        annunciator.set_output(name, False)
        dark = s.technician.sees_output(name, False)
        problem = None if lit and dark else ("did not come on" if not lit else "did not go off")
        s.report(name, f"GPIO{pins[name]}", problem)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pca hw selftest",
        description="Bring-up check: lists every configured device, asks for each input, pulses "
                    "each output, exits non-zero naming what failed.")
    p.add_argument("--mock", action="store_true",
                   help="run on gpiozero's MockFactory, simulating the technician (no Pi needed)")
    p.add_argument("--pinout", help="pin map to use (default: $PCA_PINOUT, /etc/pca/pinout.toml, "
                                    "then the repository's hardware/pinout.toml)")
    p.add_argument("--pin-factory", choices=FACTORY_NAMES,
                   help="gpiozero pin factory on real hardware "
                        "(default: $PCA_PIN_FACTORY, else lgpio)")
    p.add_argument("--timeout-s", type=float, default=30.0,
                   help="how long to wait for each input on real hardware (default 30)")
    return p


def run(argv: list[str], *, pin_factory: Any = None, out: Callable[[str], None] = print,
        ask: Callable[[str], str] = input) -> int:
    """Entry point of `pca hw selftest`; 0 when every device passed.

    `pin_factory` lets tests hand in a MockFactory with faulty pins.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help or a usage error: argparse has already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        pinmap = load_pinmap(args.pinout)
    except PinMapError as exc:
        out(f"pin map error: {exc}")
        return 2

    sink = ListSink()
    panel = None
    try:
        if args.mock:
            hardware, panel = build_simulated(pinmap, sink, pin_factory=pin_factory)
        else:
            factory = pin_factory or make_pin_factory(args.pin_factory)
            hardware = Hardware(pinmap, sink, pin_factory=factory)
    except PinFactoryError as exc:
        out(f"cannot reach the GPIO pins: {exc}")
        return 2
    except Exception as exc:  # a pin already in use, a driver refusing a pull, ...
        out(f"cannot set up the devices from {pinmap.path}: {type(exc).__name__}: {exc}")
        return 2

    technician: Technician = (MockTechnician(panel) if panel is not None
                              else ConsoleTechnician(out, ask))
    timeout_ns = MOCK_TIMEOUT_NS if args.mock else int(args.timeout_s * S)
    with hardware:
        s = _Session(hardware, sink, technician, _Clock(virtual=args.mock), timeout_ns, out)
        out(f"pca hw selftest ({'mock' if args.mock else 'hardware'}), pin map {pinmap.path}")
        for info in hardware.describe():
            pins = ",".join(f"GPIO{p}" for p in info.pins)
            note = f"  [{info.note}]" if info.note else ""
            out(f"  {info.kind:<10} {info.name:<17} {pins}{note}")
        out("")
        busy = _check_at_rest(s)
        for name, device in hardware.inputs():
            if name not in busy:
                _check_input(s, name, device)
        if "keypad" not in busy:
            _check_keypad(s, pinmap)
        _check_outputs(s)
        out("  motor lines (STEP/DIR/ENABLE) are not driven here: use pca bench")

    if s.failures:
        out(f"selftest FAILED: {', '.join(s.failures)}")
        return 1
    out("selftest passed")
    return 0
