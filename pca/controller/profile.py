"""The hardware profile: what this pump's mechanism and options are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pca.therapy import bounds as b
from pca.therapy.strict import Table
from pca.therapy.units import show

# Reference mechanism: 15480 steps/mL (258 steps/s is 1 mL/min); see hardware/.
DEFAULT_STEPS_PER_ML = b.REFERENCE_STEPS_PER_ML
FIELDS = ("steps_per_ml", "bolus_rate_ml_h", "kvo_rate_ml_h", "low_reservoir_ml",
          "syringe_ml", "rtc")


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
        """Build from a TOML table, strictly (exact types, physical bounds in
        pca.therapy.bounds); raises ValueError naming the field, value and what is allowed."""
        t = Table(raw, src, ValueError)
        d = cls()
        spm = t.number("steps_per_ml", b.STEPS_PER_ML_MIN, b.STEPS_PER_ML_MAX, unit="steps/mL",
                       default=d.steps_per_ml)
        least = b.min_rate_ml_h(spm)
        kvo = t.number("kvo_rate_ml_h", 0, b.KVO_RATE_ML_H_MAX, unit="mL/h",
                       default=d.kvo_rate_ml_h)
        if 0 < kvo < least:
            t.fail("kvo_rate_ml_h", raw["kvo_rate_ml_h"],
                   f"0 or at least {float(least):.3g} mL/h",
                   f"one step a minute at {show(spm)} steps/mL is the least rate the pump makes")
        profile = cls(
            steps_per_ml=spm,
            bolus_rate_ml_h=t.number("bolus_rate_ml_h", b.BOLUS_RATE_ML_H_MIN,
                                     b.BOLUS_RATE_ML_H_MAX, unit="mL/h",
                                     default=d.bolus_rate_ml_h),
            kvo_rate_ml_h=kvo,
            low_reservoir_ml=t.number("low_reservoir_ml", 0, b.LOW_RESERVOIR_ML_MAX, unit="mL",
                                      default=d.low_reservoir_ml),
            syringe_ml=t.number("syringe_ml", 0, b.SYRINGE_ML_MAX, unit="mL",
                                default=d.syringe_ml),
            rtc=t.flag("rtc", default=d.rtc),
        )
        t.finish(FIELDS)
        return profile
