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
from pca.therapy.strict import Table
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


def parse_monitor(raw: object, src: str = "monitor") -> MonitorSettings:
    """Check the shape of a [monitor] table strictly (whole numbers within physical
    bounds, see pca.therapy.strict); raises MonitorFormatError."""
    t = Table(raw, src, MonitorFormatError, absent_if_none=True)
    settings = MonitorSettings(
        spo2_min=t.maybe_integer("spo2_min", 0, 100, unit="%"),
        etco2_max_mmhg=t.maybe_integer("etco2_max_mmhg", 0, 150, unit="mmHg"),
        rr_min=t.maybe_integer("rr_min", 0, 60, unit="breaths/min"),
        delay_s=t.integer("delay_s", 0, 600, unit="s", default=DEFAULT_DELAY_S),
        stale_s=t.integer("stale_s", 1, 600, unit="s", default=DEFAULT_STALE_S),
        required=t.flag("required", default=True),
    )
    t.finish(MONITOR_FIELDS)
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
