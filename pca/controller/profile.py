"""The hardware profile: what this pump's mechanism and options are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from pca.therapy.units import exact

# Reference mechanism: 15480 steps/mL (258 steps/s is 1 mL/min); see hardware/.
DEFAULT_STEPS_PER_ML = Fraction(15480)


@dataclass(frozen=True)
class PumpProfile:
    steps_per_ml: Fraction = DEFAULT_STEPS_PER_ML
    bolus_rate_ml_h: Fraction = Fraction(60)
    kvo_rate_ml_h: Fraction = Fraction(1, 10)
    low_reservoir_ml: Fraction = Fraction(1)
    syringe_ml: Fraction = Fraction(30)  # loaded at first power-on of a new database
    rtc: bool = False  # battery-backed real-time clock fitted (SR-5)

    @classmethod
    def from_table(cls, raw: Mapping[str, Any], src: str = "[pump]") -> PumpProfile:
        """Build from a TOML table; raises ValueError naming the field."""
        known = {"steps_per_ml", "bolus_rate_ml_h", "kvo_rate_ml_h", "low_reservoir_ml",
                 "syringe_ml", "rtc"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{src}: unknown field(s) {', '.join(unknown)}")
        profile = cls()
        changes: dict[str, Any] = {}
        for name, value in raw.items():
            if name == "rtc":
                if not isinstance(value, bool):
                    raise ValueError(f"{src}: rtc = {value!r} must be true or false")
                changes[name] = value
                continue
            number = exact(value, where=f"{src}: {name}")
            positive = name in ("steps_per_ml", "bolus_rate_ml_h")
            if number < 0 or (positive and number == 0):
                raise ValueError(f"{src}: {name} = {value!r} must be "
                                 f"{'> 0' if positive else '>= 0'}")
            changes[name] = number
        if "bolus_rate_ml_h" in changes and changes["bolus_rate_ml_h"] > 600:
            raise ValueError(f"{src}: bolus_rate_ml_h = {raw['bolus_rate_ml_h']!r} is above the "
                             "mechanism's 600 mL/h")
        return replace(profile, **changes)
