"""Physical bounds of every quantity the pump reads from a file, and its least meaningful rate.

These are not clinical limits (the drug library holds those, per drug): they are
what an ambulatory syringe pump can physically mean, so that a typo such as
`syringe_ml = 1e300`, a calibration of 1.5 steps/mL or a library hard maximum of
1e300 is refused where it is read, long before any dose is computed from it.
"""

from __future__ import annotations

from fractions import Fraction

# ---- the mechanism (the [pump] table of a scenario and of pca.toml) -----------------------
REFERENCE_STEPS_PER_ML = Fraction(15480)  # the reference mechanism, see hardware/
STEPS_PER_ML_MIN = 1_000  # coarser than this is not a syringe drive
STEPS_PER_ML_MAX = 1_000_000
BOLUS_RATE_ML_H_MIN = 1
BOLUS_RATE_ML_H_MAX = 600  # the reference mechanism's top speed
KVO_RATE_ML_H_MAX = 10
SYRINGE_ML_MAX = 250  # the largest ambulatory reservoir (a 250 mL cassette)
LOW_RESERVOIR_ML_MAX = 50
MOTOR_BUDGET_ML_MAX = 250  # SR-9 native step budget per window: at most a full reservoir
BUDGET_WINDOW_S_MAX = 24 * 3600

# ---- the least rate the step scheduler makes meaningfully ----------------------------------
# A continuous rate must make at least one step a minute: slower is not an infusion (and at
# 1e-12 mL/h the first step would come after the 64-bit nanosecond clock ends).
MIN_STEPS_PER_H = 60


def min_rate_ml_h(steps_per_ml: Fraction) -> Fraction:
    """The least non-zero rate (mL/h) a pump with this calibration accepts."""
    return Fraction(MIN_STEPS_PER_H) / Fraction(steps_per_ml)


def step_ml(steps_per_ml: Fraction) -> Fraction:
    """The volume of one step (mL): no dose can be smaller."""
    return 1 / Fraction(steps_per_ml)


# ---- prescriptions and drug libraries (in the drug's unit, mg or mcg) ----------------------
AMOUNT_MAX = 10_000  # any single amount or limit in mg or mcg (hard maximums included)
CONCENTRATION_MAX = 1_000  # per mL
LOCKOUT_MIN_MAX = 1_440
WINDOW_H_MIN = 1
WINDOW_H_MAX = 12
MAX_PCA_PER_H_MAX = 60
DRUGS_MAX = 200
CONCENTRATIONS_MAX = 20

# ---- file sizes -----------------------------------------------------------------------------
CONFIG_BYTES_MAX = 64 * 1024
RX_BYTES_MAX = 64 * 1024
LIBRARY_BYTES_MAX = 1024 * 1024
SCENARIO_BYTES_MAX = 4 * 1024 * 1024
SCENARIO_STEPS_MAX = 100_000
