"""Prescriptions: parse what the clinician entered, check it (SR-8), convert it to mL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pca.therapy import bounds
from pca.therapy.drugs import AMOUNT_FIELDS, DrugEntry, DrugLibrary, Limits
from pca.therapy.monitoring import MonitorFormatError, MonitorSettings, check_monitor, parse_monitor
from pca.therapy.strict import Table
from pca.therapy.units import DOSE_UNITS, DRUG_UNITS, show

FIELDS = ("drug", "concentration_per_ml", "dose_unit", "basal_rate_per_h", "pca_dose",
          "lockout_min", "max_pca_per_h", "dose_limit", "dose_limit_window_h", "loading_dose",
          "clinician_bolus_max")
# SCENARIOS.md "Extensions, version 2": the route (checked against the drug's entry for it)
# and the programmed intermittent bolus (SR-12). They reach the log only when used, so a
# prescription without them is logged exactly as before.
ROUTES = ("iv", "epidural", "subcutaneous")
V2_FIELDS = ("route", "pib_dose", "pib_interval_min", "pib_first_min", "pib_reset_on_pca")
PIB_INTERVAL_MIN = (15, 480)  # min, start to start
PIB_FIRST_MAX_MIN = 480


class PrescriptionFormatError(ValueError):
    """The prescription is malformed (wrong type, unknown or missing field)."""


@dataclass(frozen=True)
class RxRequest:
    """What the clinician (or pharmacy file) asks for, exactly as entered."""

    drug: str
    concentration_per_ml: Fraction
    dose_unit: str
    basal_rate_per_h: Fraction
    pca_dose: Fraction
    lockout_min: Fraction
    max_pca_per_h: int | None
    dose_limit: Fraction | None
    dose_limit_window_h: int
    loading_dose: Fraction
    clinician_bolus_max: Fraction
    monitor: MonitorSettings | None = None  # the [monitor] table (SR-13); None: no monitor
    route: str = "iv"
    pib_dose: Fraction = Fraction(0)  # 0: no programmed intermittent bolus
    pib_interval_min: int | None = None
    pib_first_min: int | None = None  # None: pib_interval_min
    pib_reset_on_pca: bool = False

    @property
    def has_pib(self) -> bool:
        return self.pib_dose > 0

    def entered(self) -> dict[str, Any]:
        """JSON-ready, in the clinician's unit; parse_request(entered()) gives it back."""
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            out[name] = float(value) if isinstance(value, Fraction) else value
        if self.route != "iv":
            out["route"] = self.route
        if self.has_pib:
            out.update(pib_dose=float(self.pib_dose), pib_interval_min=self.pib_interval_min,
                       pib_first_min=self.first_min, pib_reset_on_pca=self.pib_reset_on_pca)
        if self.monitor is not None:
            out["monitor"] = self.monitor.describe()
        return out

    @property
    def first_min(self) -> int | None:
        """Minutes from start to the first PIB (pib_first_min, else the interval)."""
        return self.pib_interval_min if self.pib_first_min is None else self.pib_first_min


@dataclass(frozen=True)
class Prescription:
    """An accepted prescription, with every amount also in mL (exact)."""

    request: RxRequest
    drug_unit: str
    basal_ml_h: Fraction
    pca_dose_ml: Fraction
    dose_limit_ml: Fraction | None
    loading_dose_ml: Fraction
    clinician_bolus_max_ml: Fraction
    overrides: tuple[str, ...] = ()
    pib_dose_ml: Fraction = Fraction(0)

    @property
    def lockout_min(self) -> Fraction:
        return self.request.lockout_min

    @property
    def window_h(self) -> int:
        return self.request.dose_limit_window_h

    @property
    def max_pca_per_h(self) -> int | None:
        return self.request.max_pca_per_h

    def to_ml(self, amount: Fraction) -> Fraction:
        """An amount in the prescription's dose unit, in mL."""
        if self.request.dose_unit == "ml":
            return amount
        return amount / self.request.concentration_per_ml

    def describe(self) -> dict[str, Any]:
        """The prescription in the clinician's unit and in mL, for the log."""
        out = self.request.entered()
        out["drug_unit"] = self.drug_unit
        out.update({
            "basal_rate_ml_h": float(self.basal_ml_h),
            "pca_dose_ml": float(self.pca_dose_ml),
            "dose_limit_ml": None if self.dose_limit_ml is None else float(self.dose_limit_ml),
            "loading_dose_ml": float(self.loading_dose_ml),
            "clinician_bolus_max_ml": float(self.clinician_bolus_max_ml),
            "overrides": list(self.overrides),
        })
        if self.request.has_pib:
            out["pib_dose_ml"] = float(self.pib_dose_ml)
        return out


def parse_request(raw: Mapping[str, Any], src: str = "prescription", *,
                  pharmacy: bool = False) -> RxRequest:
    """Check the shape of a prescription table (exact types, physical bounds, required
    fields); raises PrescriptionFormatError, one line naming field, value and what is
    allowed. The limits of the drug are checked later, by `validate`.


    `pharmacy`: a pharmacy file, where every field must be written out (a file cut short
    is refused, never completed with defaults); only max_pca_per_h and dose_limit may be
    absent, because their absence is an order ("no count limit", "no dose limit" where
    the library allows it); dose_limit_window_h is required with a dose_limit. Scenario
    tables keep the contract's defaults (0 basal, loading and clinician bolus; a 1 h
    window)."""
    t = Table(raw, src, PrescriptionFormatError, absent_if_none=True)
    zero = None if pharmacy else Fraction(0)
    drug = t.text("drug", max_chars=100)
    dose_unit = t.text("dose_unit", choices=DOSE_UNITS)
    amount = f"{dose_unit}" if dose_unit != "ml" else "mL"
    conc = t.number("concentration_per_ml", 0, bounds.CONCENTRATION_MAX, lo_open=True,
                    unit="mg or mcg per mL")
    dose_limit = t.maybe_number("dose_limit", 0, bounds.AMOUNT_MAX, unit=amount)
    if dose_limit is not None and pharmacy:
        # A file cut short after dose_limit must not get a window by default.
        window: int | None = t.integer("dose_limit_window_h", bounds.WINDOW_H_MIN,
                                       bounds.WINDOW_H_MAX, unit="h")
    else:
        window = t.maybe_integer("dose_limit_window_h", bounds.WINDOW_H_MIN,
                                 bounds.WINDOW_H_MAX, unit="h")
    monitor = None
    if t.has("monitor"):  # SR-13 settings, checked against the library by validate
        t.read.add("monitor")
        try:
            monitor = parse_monitor(raw["monitor"], f"{src}: monitor")
        except MonitorFormatError as err:
            raise PrescriptionFormatError(str(err)) from None
    req = RxRequest(
        drug=drug,
        concentration_per_ml=conc,
        dose_unit=dose_unit,
        basal_rate_per_h=t.number("basal_rate_per_h", 0, bounds.AMOUNT_MAX,
                                  unit=f"{amount}/h", default=zero),
        pca_dose=t.number("pca_dose", 0, bounds.AMOUNT_MAX, unit=amount),
        lockout_min=t.number("lockout_min", 0, bounds.LOCKOUT_MIN_MAX, unit="min"),
        max_pca_per_h=t.maybe_integer("max_pca_per_h", 0, bounds.MAX_PCA_PER_H_MAX),
        dose_limit=dose_limit,
        dose_limit_window_h=1 if window is None else window,
        loading_dose=t.number("loading_dose", 0, bounds.AMOUNT_MAX, unit=amount,
                              default=zero),
        clinician_bolus_max=t.number("clinician_bolus_max", 0, bounds.AMOUNT_MAX, unit=amount,
                                     default=zero),
        monitor=monitor,
        **_version2(t, amount),
    )
    if t.has("drug_unit"):  # written by describe(); the library decides the unit
        t.text("drug_unit", choices=DRUG_UNITS)
    t.finish((*FIELDS, *V2_FIELDS, "monitor"))
    return req


def _version2(t: Table, amount: str) -> dict[str, Any]:
    """The route and the PIB fields; a PIB needs its interval (it never has a default)."""
    route = t.text("route", choices=ROUTES, default="iv")
    pib = t.number("pib_dose", 0, bounds.AMOUNT_MAX, unit=amount, default=Fraction(0))
    interval = t.maybe_integer("pib_interval_min", *PIB_INTERVAL_MIN, unit="min")
    first = t.maybe_integer("pib_first_min", 0, PIB_FIRST_MAX_MIN, unit="min")
    reset = t.flag("pib_reset_on_pca", default=False)
    if pib > 0 and interval is None:
        t.missing("pib_interval_min", f"a whole number {PIB_INTERVAL_MIN[0]} to "
                  f"{PIB_INTERVAL_MIN[1]} min: a programmed intermittent bolus needs its interval")
    return {"route": route, "pib_dose": pib, "pib_interval_min": interval,
            "pib_first_min": first, "pib_reset_on_pca": reset}


@dataclass(frozen=True)
class Verdict:
    """Outcome of validation: a prescription, or the reasons there is none."""

    prescription: Prescription | None
    errors: tuple[str, ...]
    soft: tuple[str, ...]  # soft-limit breaches (overrides when confirmed)


def _in_drug_unit(req: RxRequest, amount: Fraction) -> Fraction:
    return amount * req.concentration_per_ml if req.dose_unit == "ml" else amount


def _check_limits(req: RxRequest, entry: DrugEntry) -> tuple[list[str], list[str]]:
    hard: list[str] = []
    soft: list[str] = []
    values: dict[str, Fraction | None] = {
        "basal_rate_per_h": req.basal_rate_per_h,
        "pca_dose": req.pca_dose,
        "lockout_min": req.lockout_min,
        "dose_limit_window_h": Fraction(req.dose_limit_window_h),
        "max_pca_per_h": None if req.max_pca_per_h is None else Fraction(req.max_pca_per_h),
        "dose_limit": req.dose_limit,
        "loading_dose": req.loading_dose,
        "clinician_bolus_max": req.clinician_bolus_max,
    }
    if req.has_pib and entry.allows_pib:
        values["pib_dose"] = req.pib_dose
        values["pib_interval_min"] = Fraction(req.pib_interval_min or 0)
    for name, value in values.items():
        if value is None:
            continue
        limits: Limits = entry.limits[name]
        unit = ""
        shown = f"{name} = {show(value)}"
        if name in (*AMOUNT_FIELDS, "pib_dose"):
            unit = f" {entry.unit}"
            if req.dose_unit == "ml":
                shown += f" mL (= {show(_in_drug_unit(req, value))}{unit})"
                value = _in_drug_unit(req, value)
            else:
                shown += unit
        if value < limits.hard_min:
            hard.append(f"{shown} is below the hard minimum {show(limits.hard_min)}{unit} "
                        f"for {entry.name}")
        elif value > limits.hard_max:
            hard.append(f"{shown} is above the hard maximum {show(limits.hard_max)}{unit} "
                        f"for {entry.name}")
        elif value < limits.soft_min:
            soft.append(f"{shown} is below the soft minimum {show(limits.soft_min)}{unit} "
                        f"for {entry.name}")
        elif value > limits.soft_max:
            soft.append(f"{shown} is above the soft maximum {show(limits.soft_max)}{unit} "
                        f"for {entry.name}")
    return hard, soft


def derive(req: RxRequest, drug_unit: str, overrides: tuple[str, ...] = ()) -> Prescription:
    """The prescription in mL; no limits are checked here (see validate)."""

    def ml(amount: Fraction) -> Fraction:
        return amount if req.dose_unit == "ml" else amount / req.concentration_per_ml

    return Prescription(
        request=req,
        drug_unit=drug_unit,
        basal_ml_h=ml(req.basal_rate_per_h),
        pca_dose_ml=ml(req.pca_dose),
        dose_limit_ml=None if req.dose_limit is None else ml(req.dose_limit),
        loading_dose_ml=ml(req.loading_dose),
        clinician_bolus_max_ml=ml(req.clinician_bolus_max),
        overrides=overrides,
        pib_dose_ml=ml(req.pib_dose),
    )


def _mechanism_errors(req: RxRequest, rx: Prescription, steps_per_ml: Fraction) -> list[str]:
    """What the step scheduler cannot make: a basal slower than one step a minute (at
    1e-12 mg/h the first step would come after the 64-bit clock ends), a dose under a step."""
    errors: list[str] = []
    unit = req.dose_unit
    least = bounds.min_rate_ml_h(steps_per_ml)
    if 0 < rx.basal_ml_h < least:
        errors.append(
            f"basal_rate_per_h = {show(req.basal_rate_per_h)} {unit}/h "
            f"(= {float(rx.basal_ml_h):.3g} mL/h) is below the least rate this pump makes, "
            f"{float(least):.3g} mL/h (one step a minute at {show(Fraction(steps_per_ml))} "
            "steps/mL): enter 0 for no basal")
    one_step = bounds.step_ml(steps_per_ml)
    if 0 < rx.pib_dose_ml < one_step:
        errors.append(
            f"pib_dose = {show(req.pib_dose)} {unit} (= {float(rx.pib_dose_ml):.3g} mL) is "
            f"smaller than one step of this pump, {float(one_step):.3g} mL")
    if 0 < rx.pca_dose_ml < one_step:
        errors.append(
            f"pca_dose = {show(req.pca_dose)} {unit} (= {float(rx.pca_dose_ml):.3g} mL) is "
            f"smaller than one step of this pump, {float(one_step):.3g} mL")
    return errors


def validate(req: RxRequest, library: DrugLibrary, *, bolus_rate_ml_h: Fraction,
             confirm_soft: bool = False,
             steps_per_ml: Fraction = bounds.REFERENCE_STEPS_PER_ML) -> Verdict:
    """SR-8: hard limits reject; soft limits need `confirm_soft`; structural rules hold;
    the pump (`steps_per_ml`) can make the basal rate and the PCA dose at all."""
    entry = library.get(req.drug, req.route)
    if entry is None:
        routes = library.routes_of(req.drug)
        if routes:
            return Verdict(None, (f"route = {req.route!r}: the drug library has no {req.route} "
                                  f"entry for {req.drug} ({library.source}: "
                                  f"{', '.join(routes)} only)",), ())
        known = ", ".join(sorted(library.drugs))
        return Verdict(None, (f"drug = {req.drug!r} is not in the drug library "
                              f"({library.source}: {known})",), ())
    errors: list[str] = []
    if req.has_pib and not entry.allows_pib:
        errors.append(f"pib_dose = {show(req.pib_dose)} {req.dose_unit}: the library entry for "
                      f"{entry.name} ({entry.route}) allows no programmed intermittent bolus "
                      "(it has no pib_dose limits)")
    if req.dose_unit not in (entry.unit, "ml"):
        errors.append(f"dose_unit = {req.dose_unit!r} does not match {entry.name}, "
                      f"which is dosed in {entry.unit} (or enter doses in ml)")
    if req.concentration_per_ml not in entry.concentrations_per_ml:
        allowed = ", ".join(show(c) for c in entry.concentrations_per_ml)
        errors.append(f"concentration_per_ml = {show(req.concentration_per_ml)} {entry.unit}/mL "
                      f"is not a concentration of {entry.name} in the library ({allowed})")
    for name in (*AMOUNT_FIELDS, "lockout_min"):
        value = getattr(req, name)
        if value is not None and value < 0:
            errors.append(f"{name} = {show(value)} must not be negative")
    if req.pca_dose <= 0:
        errors.append(f"pca_dose = {show(req.pca_dose)} must be > 0")
    if req.dose_limit is None:
        if entry.dose_limit_required:
            errors.append(f"dose_limit is required for {entry.name} (the library has no "
                          "'no limit' for it)")
    elif req.dose_limit <= 0:
        errors.append(f"dose_limit = {show(req.dose_limit)} must be > 0 "
                      "(0 never means unlimited)")
    if not 1 <= req.dose_limit_window_h <= 12:
        errors.append(f"dose_limit_window_h = {req.dose_limit_window_h} must be 1..12")
    if req.max_pca_per_h is not None and req.max_pca_per_h < 1:
        errors.append(f"max_pca_per_h = {req.max_pca_per_h} must be >= 1 (omit it for no count "
                      "limit)")
    if errors:
        return Verdict(None, tuple(errors), ())
    hard, soft = _check_limits(req, entry)
    errors.extend(hard)
    if req.monitor is not None:  # SR-13 settings against the library's monitor limits
        monitor_hard, monitor_soft = check_monitor(req.monitor, library.monitor_limits)
        errors.extend(monitor_hard)
        soft.extend(monitor_soft)
    rx = derive(req, entry.unit)
    unit = req.dose_unit
    if rx.dose_limit_ml is not None:
        limit_shown = show(req.dose_limit or Fraction(0))
        if rx.basal_ml_h * req.dose_limit_window_h > rx.dose_limit_ml:
            errors.append(
                f"basal_rate_per_h = {show(req.basal_rate_per_h)} {unit}/h alone gives "
                f"{show(req.basal_rate_per_h * req.dose_limit_window_h)} {unit} in "
                f"{req.dose_limit_window_h} h, above dose_limit = {limit_shown} {unit}")
        if rx.pca_dose_ml > rx.dose_limit_ml:
            errors.append(f"pca_dose = {show(req.pca_dose)} {unit} is above dose_limit = "
                          f"{limit_shown} {unit}")
        if rx.pib_dose_ml > rx.dose_limit_ml:
            errors.append(f"pib_dose = {show(req.pib_dose)} {unit} is above dose_limit = "
                          f"{limit_shown} {unit}")
    errors.extend(_mechanism_errors(req, rx, steps_per_ml))
    if bolus_rate_ml_h <= 0:
        errors.append(f"the pump's bolus rate {show(bolus_rate_ml_h)} mL/h must be > 0")
    else:
        delivery_min = rx.pca_dose_ml / bolus_rate_ml_h * 60
        if delivery_min > req.lockout_min:
            errors.append(f"lockout_min = {show(req.lockout_min)} is shorter than the "
                          f"{show(delivery_min)} min the pump needs to deliver pca_dose = "
                          f"{show(req.pca_dose)} {unit} at {show(bolus_rate_ml_h)} mL/h")
        if req.has_pib and req.pib_interval_min is not None:
            pib_min = rx.pib_dose_ml / bolus_rate_ml_h * 60
            if pib_min >= req.pib_interval_min:
                errors.append(
                    f"pib_interval_min = {req.pib_interval_min} is not longer than the "
                    f"{show(pib_min)} min the pump needs to deliver pib_dose = "
                    f"{show(req.pib_dose)} {unit} at {show(bolus_rate_ml_h)} mL/h")
    if errors:
        return Verdict(None, tuple(errors), tuple(soft))
    if soft and not confirm_soft:
        return Verdict(None, tuple(f"{s}: needs an explicit override (confirm_soft)"
                                   for s in soft), tuple(soft))
    return Verdict(derive(req, entry.unit, tuple(soft)), (), tuple(soft))
