"""The daemon's configuration file (/etc/pca/pca.toml); every key is in systemd/pca.toml."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from pca.controller.profile import PumpProfile
from pca.therapy import bounds
from pca.therapy.strict import Table, parse_toml

DEFAULT_PATH = Path("/etc/pca/pca.toml")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names file, key and value."""


@dataclass(frozen=True)
class MotorConfig:
    budget_ml: Fraction = Fraction(20)  # SR-9 native step budget per window
    budget_window_s: int = 3600
    max_rate_ml_h: Fraction | None = None  # native rate cap (default: the bolus rate)
    pulse_cpu: int | None = None  # the CPU the pulse thread runs on alone (None: any)


@dataclass(frozen=True)
class DisplayConfig:
    kind: str = "lcd"  # lcd (HD44780 over I2C), sim or none
    address: int = 0x27
    port: int = 1
    expander: str = "PCF8574"


@dataclass(frozen=True)
class MonitorConfig:
    """The respiratory monitor's serial line (SR-13)."""

    kind: str = "none"  # "nonin" (Nonin OEM III, Serial Data Format #2) or "none"
    port: str = "/dev/serial0"  # the Pi's UART, or a USB adapter (/dev/ttyUSB0)
    baudrate: int = 9600


MONITOR_KINDS = ("nonin", "none")


@dataclass(frozen=True)
class BatteryConfig:
    """The UPS board's fuel gauge (issue 16); the low/depleted lines are in the pin map."""

    kind: str = "none"  # "ina219" (Waveshare UPS HAT and similar) or "none"
    address: int = 0x42
    port: int = 1  # the I2C bus
    cells: int = 1  # Li-ion cells in series (2 on the Waveshare UPS HAT (B))
    capacity_wh: float = 10.0  # the pack's rating


@dataclass(frozen=True)
class Config:
    source: str = "(built-in defaults)"
    database: Path = Path("/var/lib/pca/events.db")
    pinout: Path | None = None  # None: $PCA_PINOUT, /etc/pca/pinout.toml, packaged default
    drug_library: Path | None = None  # None: the built-in library
    pin_factory: str | None = None  # None: $PCA_PIN_FACTORY, else lgpio
    tick_ms: int = 50
    pepper: Path = Path("/etc/pca/pepper")
    rx_spool: Path = Path("/var/lib/pca/rx-pending")
    rx_watch: tuple[Path, ...] = ()  # e.g. the USB stick's mount point
    profile: PumpProfile = field(default_factory=PumpProfile)
    motor: MotorConfig = field(default_factory=MotorConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    battery: BatteryConfig = field(default_factory=BatteryConfig)


TOP_KEYS = ("database", "pinout", "drug_library", "pin_factory", "tick_ms", "pump", "motor",
            "pepper", "rx_spool", "rx_watch", "display", "monitor", "battery")
EXPANDERS = ("PCF8574", "MCP23008", "MCP23017")
PATH_CHARS_MAX = 4096
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def _monitor(t: Table) -> MonitorConfig:
    d = MonitorConfig()
    baud = t.integer("baudrate", BAUDRATES[0], BAUDRATES[-1], default=d.baudrate)
    if baud not in BAUDRATES:
        t.fail("baudrate", baud, "one of " + ", ".join(map(str, BAUDRATES)))
    monitor = MonitorConfig(
        kind=t.text("kind", choices=MONITOR_KINDS, default=d.kind),
        port=t.text("port", max_chars=PATH_CHARS_MAX, default=d.port),
        baudrate=baud,
    )
    t.finish(("kind", "port", "baudrate"))
    return monitor


def _battery(t: Table) -> BatteryConfig:
    d = BatteryConfig()
    battery = BatteryConfig(
        kind=t.text("kind", choices=("ina219", "none"), default=d.kind),
        address=t.integer("address", 0x03, 0x77, default=d.address),
        port=t.integer("port", 0, 255, default=d.port),
        cells=t.integer("cells", 1, 4, default=d.cells),
        capacity_wh=float(t.number("capacity_wh", 0, 1000, unit="Wh", lo_open=True,
                                   default=Fraction(10))),
    )
    t.finish(("kind", "address", "port", "cells", "capacity_wh"))
    return battery


def _path(t: Table, name: str) -> Path:
    text = t.text(name, max_chars=PATH_CHARS_MAX)
    if "\0" in text:
        t.fail(name, text, "a path", "it holds a NUL character")
    return Path(text)


def _motor(t: Table) -> MotorConfig:
    d = MotorConfig()
    max_rate = t.maybe_number("max_rate_ml_h", 0, bounds.BOLUS_RATE_ML_H_MAX, unit="mL/h",
                              lo_open=True)
    motor = MotorConfig(
        budget_ml=t.number("budget_ml", 0, bounds.MOTOR_BUDGET_ML_MAX, unit="mL", lo_open=True,
                           default=d.budget_ml),
        budget_window_s=t.integer("budget_window_s", 1, bounds.BUDGET_WINDOW_S_MAX, unit="s",
                                  default=d.budget_window_s),
        max_rate_ml_h=max_rate,
        pulse_cpu=t.maybe_integer("pulse_cpu", 0, 1023),
    )
    t.finish(("budget_ml", "budget_window_s", "max_rate_ml_h", "pulse_cpu"))
    return motor


def _display_config(t: Table) -> DisplayConfig:
    d = DisplayConfig()
    display = DisplayConfig(
        kind=t.text("kind", choices=("lcd", "sim", "none"), default=d.kind),
        address=t.integer("address", 0x03, 0x77, default=d.address),  # 7-bit I2C addresses
        port=t.integer("port", 0, 31, default=d.port),
        expander=t.text("expander", choices=EXPANDERS, default=d.expander),
    )
    t.finish(("kind", "address", "port", "expander"))
    return display


def parse_config(data: bytes | str, src: str) -> Config:
    """A pca.toml, strictly: size, UTF-8, exact types, physical bounds, no unknown key;
    raises ConfigError with one line naming file, key, value and what is allowed."""
    raw = parse_toml(data, src, max_bytes=bounds.CONFIG_BYTES_MAX, error=ConfigError)
    t = Table(raw, src, ConfigError)
    changes: dict[str, Any] = {}
    for key in ("database", "pinout", "drug_library", "pepper", "rx_spool"):
        if t.has(key):
            changes[key] = _path(t, key)
    if t.has("pin_factory"):
        changes["pin_factory"] = t.text("pin_factory", choices=("lgpio", "rpigpio", "mock"))
    changes["tick_ms"] = t.integer("tick_ms", 10, 100, unit="ms", default=Config.tick_ms)
    if t.has("rx_watch"):
        items = t.array("rx_watch", max_items=16)
        watch = Table({f"rx_watch[{i}]": v for i, v in enumerate(items)}, src, ConfigError)
        changes["rx_watch"] = tuple(_path(watch, f"rx_watch[{i}]") for i in range(len(items)))
    display = t.table("display", required=False)
    if display is not None:
        display.prefix = "display."
        changes["display"] = _display_config(display)
    pump = t.table("pump", required=False)
    if pump is not None:
        try:
            changes["profile"] = PumpProfile.from_table(pump.raw, f"{src}: [pump]")
        except ValueError as err:
            raise ConfigError(str(err)) from None
    monitor = t.table("monitor", required=False)
    if monitor is not None:
        monitor.prefix = "monitor."
        changes["monitor"] = _monitor(monitor)
    battery = t.table("battery", required=False)
    if battery is not None:
        battery.prefix = "battery."
        changes["battery"] = _battery(battery)
    motor = t.table("motor", required=False)
    if motor is not None:
        motor.prefix = "motor."
        changes["motor"] = _motor(motor)
    t.finish(TOP_KEYS)
    return replace(Config(source=src), **changes)


def load_config(path: Path | None) -> Config:
    """Read the file; a missing default file means the built-in defaults."""
    if path is None:
        if not DEFAULT_PATH.exists():
            return Config()
        path = DEFAULT_PATH
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from None
    return parse_config(data, str(path))
