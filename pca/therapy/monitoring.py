"""Respiratory monitor settings of a prescription (SR-13): shape, and the library's limits.

A prescription may carry a `[monitor]` table: the limits beyond which the pump pauses
(`spo2_min`, `etco2_max_mmhg`, `rr_min`), how long a value must stay beyond its limit
(`delay_s`), how long without a reading counts as a lost monitor (`stale_s`), and whether
a lost monitor pauses the pump (`required`). Every number is checked against the drug
library's `monitor_limits` like any other setting (SR-8): outside the hard limits it is
refused, outside the soft limits it needs an explicit, logged override.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pca.therapy.drugs import MONITOR_LIMITED_FIELDS, Limits
from pca.therapy.units import show

# The watched values and the limit that watches each: (setting, reading key, direction).
LIMIT_OF: dict[str, tuple[str, str]] = {
    "spo2_min": ("spo2", "below"),
    "etco2_max_mmhg": ("etco2_mmhg", "above"),
    "rr_min": ("rr", "below"),
}
MONITOR_FIELDS = ("spo2_min", "etco2_max_mmhg", "rr_min", "delay_s", "stale_s", "required")
DEFAULT_DELAY_S = 30
DEFAULT_STALE_S = 30


class MonitorFormatError(ValueError):
    """The [monitor] table is malformed (wrong type, unknown field, no limit)."""


@dataclass(frozen=True)
class MonitorSettings:
    """What the clinician set for the respiratory monitor; a limit of None is not watched."""

    spo2_min: int | None
    etco2_max_mmhg: int | None
    rr_min: int | None
    delay_s: int = DEFAULT_DELAY_S
    stale_s: int = DEFAULT_STALE_S
    required: bool = True

    def limits(self) -> dict[str, int]:
        """The limits that are set, by setting name."""
        return {name: value for name in LIMIT_OF
                if (value := getattr(self, name)) is not None}

    def describe(self) -> dict[str, Any]:
        """JSON-ready; parse_monitor(describe()) gives it back."""
        return {name: getattr(self, name) for name in MONITOR_FIELDS}


def _whole(raw: Mapping[str, Any], name: str, src: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise MonitorFormatError(f"{src}.{name} = {value!r} must be a whole number")
    return int(value)


def parse_monitor(raw: object, src: str = "monitor") -> MonitorSettings:
    """Check the shape of a [monitor] table; raises MonitorFormatError."""
    if not isinstance(raw, Mapping):
        raise MonitorFormatError(f"{src}: expected a table, got {raw!r}")
    unknown = sorted(set(raw) - set(MONITOR_FIELDS))
    if unknown:
        raise MonitorFormatError(f"{src}: unknown field(s) {', '.join(unknown)} "
                                 f"(known: {', '.join(MONITOR_FIELDS)})")
    required = raw.get("required", True)
    if not isinstance(required, bool):
        raise MonitorFormatError(f"{src}.required = {required!r} must be true or false")
    delay = _whole(raw, "delay_s", src)
    stale = _whole(raw, "stale_s", src)
    settings = MonitorSettings(
        spo2_min=_whole(raw, "spo2_min", src),
        etco2_max_mmhg=_whole(raw, "etco2_max_mmhg", src),
        rr_min=_whole(raw, "rr_min", src),
        delay_s=DEFAULT_DELAY_S if delay is None else delay,
        stale_s=DEFAULT_STALE_S if stale is None else stale,
        required=required,
    )
    if not settings.limits():
        raise MonitorFormatError(f"{src}: sets no limit: give at least one of spo2_min, "
                                 "etco2_max_mmhg, rr_min (or leave [monitor] out)")
    return settings


def check_monitor(settings: MonitorSettings,
                  limits: Mapping[str, Limits]) -> tuple[list[str], list[str]]:
    """SR-8 for the monitor: (hard-limit breaches, soft-limit breaches)."""
    hard: list[str] = []
    soft: list[str] = []
    for name in MONITOR_LIMITED_FIELDS:
        value = getattr(settings, name)
        if value is None:
            continue
        lim = limits[name]
        shown = f"monitor.{name} = {value}"
        v = Fraction(value)
        if v < lim.hard_min:
            hard.append(f"{shown} is below the hard minimum {show(lim.hard_min)} of the "
                        "drug library's monitor limits")
        elif v > lim.hard_max:
            hard.append(f"{shown} is above the hard maximum {show(lim.hard_max)} of the "
                        "drug library's monitor limits")
        elif v < lim.soft_min:
            soft.append(f"{shown} is below the soft minimum {show(lim.soft_min)} of the "
                        "drug library's monitor limits")
        elif v > lim.soft_max:
            soft.append(f"{shown} is above the soft maximum {show(lim.soft_max)} of the "
                        "drug library's monitor limits")
    return hard, soft
