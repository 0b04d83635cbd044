"""The daemon's configuration file (/etc/pca/pca.toml); every key is in systemd/pca.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from pca.controller.profile import PumpProfile
from pca.therapy.units import exact

DEFAULT_PATH = Path("/etc/pca/pca.toml")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names file, key and value."""


@dataclass(frozen=True)
class MotorConfig:
    budget_ml: Fraction = Fraction(20)  # SR-9 native step budget per window
    budget_window_s: int = 3600
    max_rate_ml_h: Fraction | None = None  # native rate cap (default: the bolus rate)


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


TOP_KEYS = {"database", "pinout", "drug_library", "pin_factory", "tick_ms", "pump", "motor",
            "pepper", "rx_spool", "rx_watch", "display", "monitor"}


def _monitor(raw: object, src: str) -> MonitorConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{src}: [monitor] must be a table")
    unknown = sorted(set(raw) - {"kind", "port", "baudrate"})
    if unknown:
        raise ConfigError(f"{src}: [monitor] unknown key(s) {', '.join(unknown)}")
    kind = raw.get("kind", "none")
    if kind not in MONITOR_KINDS:
        raise ConfigError(f"{src}: monitor.kind = {kind!r} must be one of "
                          f"{', '.join(MONITOR_KINDS)}")
    port = raw.get("port", MonitorConfig.port)
    if not isinstance(port, str) or not port:
        raise ConfigError(f"{src}: monitor.port = {port!r} must be a device path")
    baud = raw.get("baudrate", MonitorConfig.baudrate)
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise ConfigError(f"{src}: monitor.baudrate = {baud!r} must be a whole number > 0")
    return MonitorConfig(kind, port, baud)


def _fraction(raw: dict[str, Any], key: str, src: str) -> Fraction:
    try:
        value = exact(raw[key], where=f"{src}: motor.{key}")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if value <= 0:
        raise ConfigError(f"{src}: motor.{key} = {raw[key]!r} must be > 0")
    return value


def load_config(path: Path | None) -> Config:
    """Read the file; a missing default file means the built-in defaults."""
    if path is None:
        if not DEFAULT_PATH.exists():
            return Config()
        path = DEFAULT_PATH
    src = str(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as err:
        raise ConfigError(f"{src}: cannot read: {err.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{src}: not valid TOML: {err}") from None
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{src}: unknown key(s) {', '.join(unknown)}")
    cfg = Config(source=src)
    changes: dict[str, Any] = {}
    for key in ("database", "pinout", "drug_library", "pepper", "rx_spool"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise ConfigError(f"{src}: {key} = {data[key]!r} must be a path")
            changes[key] = Path(data[key])
    if "pin_factory" in data:
        if data["pin_factory"] not in ("lgpio", "rpigpio", "mock"):
            raise ConfigError(f"{src}: pin_factory = {data['pin_factory']!r} must be lgpio, "
                              "rpigpio or mock")
        changes["pin_factory"] = data["pin_factory"]
    if "tick_ms" in data:
        tick = data["tick_ms"]
        if isinstance(tick, bool) or not isinstance(tick, int) or not 10 <= tick <= 100:
            raise ConfigError(f"{src}: tick_ms = {tick!r} must be a whole number 10..100")
        changes["tick_ms"] = tick
    if "rx_watch" in data:
        watch = data["rx_watch"]
        if not isinstance(watch, list) or not all(isinstance(w, str) and w for w in watch):
            raise ConfigError(f"{src}: rx_watch = {watch!r} must be a list of paths")
        changes["rx_watch"] = tuple(Path(w) for w in watch)
    if "display" in data:
        raw_display = data["display"]
        unknown = sorted(set(raw_display) - {"kind", "address", "port", "expander"})
        if unknown:
            raise ConfigError(f"{src}: [display] unknown key(s) {', '.join(unknown)}")
        if raw_display.get("kind", "lcd") not in ("lcd", "sim", "none"):
            raise ConfigError(f"{src}: display.kind = {raw_display['kind']!r} must be lcd, sim "
                              "or none")
        for key in ("address", "port"):
            value = raw_display.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{src}: display.{key} = {value!r} must be a whole number")
        changes["display"] = replace(DisplayConfig(), **raw_display)
    if "monitor" in data:
        changes["monitor"] = _monitor(data["monitor"], src)
    if "pump" in data:
        try:
            changes["profile"] = PumpProfile.from_table(data["pump"], f"{src}: [pump]")
        except ValueError as err:
            raise ConfigError(str(err)) from None
    if "motor" in data:
        raw = data["motor"]
        unknown = sorted(set(raw) - {"budget_ml", "budget_window_s", "max_rate_ml_h"})
        if unknown:
            raise ConfigError(f"{src}: [motor] unknown key(s) {', '.join(unknown)}")
        motor = MotorConfig()
        if "budget_ml" in raw:
            motor = replace(motor, budget_ml=_fraction(raw, "budget_ml", src))
        if "max_rate_ml_h" in raw:
            motor = replace(motor, max_rate_ml_h=_fraction(raw, "max_rate_ml_h", src))
        if "budget_window_s" in raw:
            window = raw["budget_window_s"]
            if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
                raise ConfigError(f"{src}: motor.budget_window_s = {window!r} must be > 0")
            motor = replace(motor, budget_window_s=window)
        changes["motor"] = motor
    return replace(cfg, **changes)
