"""Load and validate the pin map (hardware/pinout.toml): one BCM number per line, no clashes."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

PINOUT_ENV = "PCA_PINOUT"
SYSTEM_PINOUT = Path("/etc/pca/pinout.toml")
# A packaged copy of hardware/pinout.toml (a symlink in the repository).
REPO_PINOUT = Path(__file__).resolve().parent / "data" / "pinout.toml"

# The 40-pin header exposes BCM GPIO 0-27 on every Pi model we support.
HEADER_GPIOS = range(28)
# Free by default because other functions need them; a map may claim them only by
# listing them in [reserved] allow (e.g. a board without an RTC using GPIO 2/3).
RESERVED_PINS: Mapping[int, str] = {
    0: "HAT ID EEPROM (ID_SD)",
    1: "HAT ID EEPROM (ID_SC)",
    2: "I2C-1 SDA (RTC, display)",
    3: "I2C-1 SCL (RTC, display)",
    14: "UART TXD (service console)",
    15: "UART RXD (service console)",
}

SENSOR_NAMES = ("occlusion", "air_in_line", "end_of_travel", "door_open")
POWER_NAMES = ("battery_low", "battery_depleted")
OCCLUSION_SOURCES = ("pressure_switch", "tmc2209_diag")
BUZZER_KINDS = ("tonal", "active")
KEYPAD_ROWS = 4
KEYPAD_COLS = 3
KEYPAD_SETTLE_US = 50
KEYPAD_SETTLE_MAX_US = 5000

Pull = Literal["up", "down", "none"]


class PinMapError(ValueError):
    """The pin map is unusable; the message names the file, the key and the pin."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        super().__init__(f"{path}: {key}: {problem}")


@dataclass(frozen=True)
class InputLine:
    """An input wire: which pin, which level means 'active', which pull resistor."""

    key: str
    pin: int
    active_high: bool
    pull: Pull


@dataclass(frozen=True)
class SensorLine(InputLine):
    source: str = "switch"


@dataclass(frozen=True)
class OutputLine:
    key: str
    pin: int
    active_high: bool = True


@dataclass(frozen=True)
class Keypad:
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    # How long a column is given to follow a row before it is read (the pull-up recharging
    # the cable and the membrane after a row lets go): 50 us by default, at most 5 ms.
    settle_us: int = KEYPAD_SETTLE_US


@dataclass(frozen=True)
class Annunciator:
    buzzer: OutputLine
    buzzer_kind: str
    led_red: OutputLine
    led_yellow: OutputLine
    led_green: OutputLine


@dataclass(frozen=True)
class Motor:
    """Lines the native pulse generator drives; listed here so one map rules every pin."""

    step: OutputLine
    dir: OutputLine
    enable: OutputLine


@dataclass(frozen=True)
class PinMap:
    path: str
    bolus_button: InputLine
    keypad: Keypad
    sensors: Mapping[str, SensorLine]
    power: Mapping[str, InputLine]
    annunciator: Annunciator
    motor: Motor
    allowed_reserved: frozenset[int]

    def pins(self) -> dict[str, int]:
        """Every configured pin by its dotted key, in file order."""
        used: dict[str, int] = {"button.bolus.pin": self.bolus_button.pin}
        for i, pin in enumerate(self.keypad.rows):
            used[f"keypad.rows[{i}]"] = pin
        for i, pin in enumerate(self.keypad.cols):
            used[f"keypad.cols[{i}]"] = pin
        for line in (*self.sensors.values(), *self.power.values()):
            used[f"{line.key}.pin"] = line.pin
        a = self.annunciator
        for out in (a.buzzer, a.led_red, a.led_yellow, a.led_green):
            used[out.key] = out.pin
        m = self.motor
        for out in (m.step, m.dir):
            used[out.key] = out.pin
        used[f"{m.enable.key}.pin"] = m.enable.pin
        return used


def default_pinout_path() -> Path:
    """$PCA_PINOUT if set, else /etc/pca/pinout.toml if installed, else the repo's default."""
    env = os.environ.get(PINOUT_ENV)
    if env:
        return Path(env)
    if SYSTEM_PINOUT.exists():
        return SYSTEM_PINOUT
    return REPO_PINOUT


def load_pinmap(path: Path | str | None = None) -> PinMap:
    """Read and validate a pin map; raises PinMapError naming file, key and pin."""
    file = Path(path) if path is not None else default_pinout_path()
    try:
        with file.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise PinMapError(file, "(file)", "not found; set PCA_PINOUT or pass --pinout") from None
    except tomllib.TOMLDecodeError as exc:
        raise PinMapError(file, "(file)", f"not valid TOML: {exc}") from None
    return parse_pinmap(data, file)


def parse_pinmap(data: Mapping[str, Any], path: Path | str = "<pinout>") -> PinMap:
    """Validate an already-parsed pin map (the loader and the tests share this)."""
    r = _Reader(path)
    r.only_keys(data, "", ("reserved", "button", "keypad", "sensors", "power", "annunciator",
                           "motor"))
    reserved = r.table(data, "reserved", required=False)
    r.only_keys(reserved, "reserved", ("allow",))
    allow_raw = reserved.get("allow", [])
    if not isinstance(allow_raw, list):
        raise PinMapError(path, "reserved.allow", "must be a list of BCM numbers")
    allowed = frozenset(r.gpio(p, f"reserved.allow[{i}]") for i, p in enumerate(allow_raw))

    button = r.table(data, "button")
    r.only_keys(button, "button", ("bolus",))
    bolus = r.input_line(button, "button.bolus")

    keypad_t = r.table(data, "keypad")
    r.only_keys(keypad_t, "keypad", ("rows", "cols", "settle_us"))
    settle = keypad_t.get("settle_us", KEYPAD_SETTLE_US)
    if isinstance(settle, bool) or not isinstance(settle, int) or not (
            0 <= settle <= KEYPAD_SETTLE_MAX_US):
        raise r.fail("keypad.settle_us",
                     f"must be a whole number of microseconds 0..{KEYPAD_SETTLE_MAX_US}, "
                     f"got {settle!r}")
    keypad = Keypad(rows=r.pin_list(keypad_t, "keypad.rows", KEYPAD_ROWS),
                    cols=r.pin_list(keypad_t, "keypad.cols", KEYPAD_COLS), settle_us=settle)

    sensors_t = r.table(data, "sensors")
    r.only_keys(sensors_t, "sensors", SENSOR_NAMES)
    sensors: dict[str, SensorLine] = {}
    for name in SENSOR_NAMES:
        base = r.input_line(sensors_t, f"sensors.{name}", extra=("source",))
        entry = sensors_t[name]
        source = entry.get("source", "pressure_switch" if name == "occlusion" else "switch")
        if name == "occlusion" and source not in OCCLUSION_SOURCES:
            raise PinMapError(path, "sensors.occlusion.source",
                              f"{source!r} is not one of {', '.join(OCCLUSION_SOURCES)}")
        if name != "occlusion" and "source" in entry:
            raise PinMapError(path, f"sensors.{name}.source", "only occlusion has a source")
        sensors[name] = SensorLine(base.key, base.pin, base.active_high, base.pull, source)

    power_t = r.table(data, "power")
    r.only_keys(power_t, "power", POWER_NAMES)
    power = {name: r.input_line(power_t, f"power.{name}") for name in POWER_NAMES}

    ann_t = r.table(data, "annunciator")
    r.only_keys(ann_t, "annunciator", ("buzzer", "buzzer_kind", "led_red", "led_yellow",
                                       "led_green"))
    kind = ann_t.get("buzzer_kind", "tonal")
    if kind not in BUZZER_KINDS:
        raise PinMapError(path, "annunciator.buzzer_kind",
                          f"{kind!r} is not one of {', '.join(BUZZER_KINDS)}")
    annunciator = Annunciator(
        buzzer=r.output_pin(ann_t, "annunciator.buzzer"),
        buzzer_kind=kind,
        led_red=r.output_pin(ann_t, "annunciator.led_red"),
        led_yellow=r.output_pin(ann_t, "annunciator.led_yellow"),
        led_green=r.output_pin(ann_t, "annunciator.led_green"),
    )

    motor_t = r.table(data, "motor")
    r.only_keys(motor_t, "motor", ("step", "dir", "enable"))
    enable_t = r.table(motor_t, "enable", prefix="motor.")
    r.only_keys(enable_t, "motor.enable", ("pin", "active"))
    motor = Motor(
        step=r.output_pin(motor_t, "motor.step"),
        dir=r.output_pin(motor_t, "motor.dir"),
        enable=OutputLine("motor.enable", r.gpio(enable_t.get("pin"), "motor.enable.pin"),
                          r.active(enable_t, "motor.enable", default="low")),
    )

    pinmap = PinMap(str(path), bolus, keypad, sensors, power, annunciator, motor, allowed)
    _check_clashes(pinmap, path)
    return pinmap


def _check_clashes(pinmap: PinMap, path: Path | str) -> None:
    owner: dict[int, str] = {}
    for key, pin in pinmap.pins().items():
        if pin in owner:
            raise PinMapError(path, key, f"GPIO {pin} is already used by {owner[pin]}")
        if pin in RESERVED_PINS and pin not in pinmap.allowed_reserved:
            raise PinMapError(
                path, key,
                f"GPIO {pin} is reserved for {RESERVED_PINS[pin]}; pick another pin or list "
                f"{pin} in [reserved] allow")
        owner[pin] = key


class _Reader:
    """Typed access to the TOML tree; every failure names the dotted key."""

    def __init__(self, path: Path | str) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> PinMapError:
        return PinMapError(self.path, key, problem)

    def only_keys(self, table: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                raise self.fail(where, f"unknown key (expected one of {', '.join(allowed)})")

    def table(self, parent: Mapping[str, Any], name: str, *, required: bool = True,
              prefix: str = "") -> Mapping[str, Any]:
        value = parent.get(name)
        if value is None:
            if required:
                raise self.fail(prefix + name, "missing")
            return {}
        if not isinstance(value, dict):
            raise self.fail(prefix + name, "must be a table")
        return value

    def gpio(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"pin must be a BCM GPIO number, got {value!r}")
        if value not in HEADER_GPIOS:
            raise self.fail(key, f"GPIO {value} is not on the 40-pin header (BCM 0-27)")
        return value

    def active(self, table: Mapping[str, Any], key: str, default: str | None = None) -> bool:
        value = table.get("active", default)
        if value not in ("low", "high"):
            raise self.fail(f"{key}.active", f"must be \"low\" or \"high\", got {value!r}")
        return bool(value == "high")

    def input_line(self, parent: Mapping[str, Any], key: str,
                   extra: tuple[str, ...] = ()) -> InputLine:
        section, _, name = key.rpartition(".")
        entry = self.table(parent, name, prefix=f"{section}.")
        self.only_keys(entry, key, ("pin", "active", "pull", *extra))
        pin = self.gpio(entry.get("pin"), f"{key}.pin")
        pull = entry.get("pull", "up")
        if pull not in ("up", "down", "none"):
            raise self.fail(f"{key}.pull", f"must be \"up\", \"down\" or \"none\", got {pull!r}")
        return InputLine(key, pin, self.active(entry, key), pull)

    def output_pin(self, parent: Mapping[str, Any], key: str) -> OutputLine:
        name = key.rpartition(".")[2]
        if name not in parent:
            raise self.fail(key, "missing")
        return OutputLine(key, self.gpio(parent[name], key))

    def pin_list(self, parent: Mapping[str, Any], key: str, count: int) -> tuple[int, ...]:
        name = key.rpartition(".")[2]
        value = parent.get(name)
        if not isinstance(value, list) or len(value) != count:
            raise self.fail(key, f"must be a list of {count} BCM numbers, got {value!r}")
        return tuple(self.gpio(p, f"{key}[{i}]") for i, p in enumerate(value))
