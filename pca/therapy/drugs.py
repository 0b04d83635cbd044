"""The drug library: per drug, accepted concentrations and hard/soft limits (SR-8)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from typing import Any

from pca.therapy.units import DRUG_UNITS, exact, show

LIMITED_FIELDS = (
    "basal_rate_per_h",
    "pca_dose",
    "lockout_min",
    "dose_limit_window_h",
    "max_pca_per_h",
    "dose_limit",
    "loading_dose",
    "clinician_bolus_max",
)
# Fields whose limits are in the drug's unit (mg or mcg) rather than minutes/hours/counts.
AMOUNT_FIELDS = ("basal_rate_per_h", "pca_dose", "dose_limit", "loading_dose",
                 "clinician_bolus_max")


class LibraryError(ValueError):
    """A drug library that cannot be used; the message names source, drug and field."""


@dataclass(frozen=True)
class Limits:
    hard_min: Fraction
    soft_min: Fraction
    soft_max: Fraction
    hard_max: Fraction


@dataclass(frozen=True)
class DrugEntry:
    name: str
    unit: str
    concentrations_per_ml: tuple[Fraction, ...]
    dose_limit_required: bool
    limits: Mapping[str, Limits]


@dataclass(frozen=True)
class DrugLibrary:
    source: str
    drugs: Mapping[str, DrugEntry]
    version: str = ""

    def get(self, name: str) -> DrugEntry | None:
        return self.drugs.get(name)


def _limits(raw: object, where: str) -> Limits:
    if not isinstance(raw, list) or len(raw) != 4:
        raise LibraryError(f"{where}: expected [hard_min, soft_min, soft_max, hard_max], "
                           f"got {raw!r}")
    try:
        values = [exact(v, where=where) for v in raw]
    except ValueError as err:
        raise LibraryError(str(err)) from None
    if any(v < 0 for v in values) or values != sorted(values):
        raise LibraryError(f"{where}: limits {raw!r} must be >= 0 and ordered "
                           "hard_min <= soft_min <= soft_max <= hard_max")
    return Limits(*values)


def _entry(raw: object, source: str, index: int) -> DrugEntry:
    where = f"{source}: drug[{index}]"
    if not isinstance(raw, dict):
        raise LibraryError(f"{where}: expected a table, got {raw!r}")
    known = {"name", "unit", "concentrations_per_ml", "dose_limit_required", "limits"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise LibraryError(f"{where}: unknown field(s) {', '.join(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise LibraryError(f"{where}.name: a drug needs a non-empty name, got {name!r}")
    where = f"{source}: drug {name!r}"
    unit = raw.get("unit")
    if unit not in DRUG_UNITS:
        raise LibraryError(f"{where}.unit: {unit!r} is not one of {', '.join(DRUG_UNITS)}")
    concs = raw.get("concentrations_per_ml")
    if not isinstance(concs, list) or not concs:
        raise LibraryError(f"{where}.concentrations_per_ml: needs a non-empty list, got {concs!r}")
    try:
        concentrations = tuple(exact(c, where=f"{where}.concentrations_per_ml") for c in concs)
    except ValueError as err:
        raise LibraryError(str(err)) from None
    if any(c <= 0 for c in concentrations):
        raise LibraryError(f"{where}.concentrations_per_ml: {concs!r} must all be > 0")
    required = raw.get("dose_limit_required", True)
    if not isinstance(required, bool):
        raise LibraryError(f"{where}.dose_limit_required: {required!r} is not true/false")
    raw_limits = raw.get("limits")
    if not isinstance(raw_limits, dict):
        raise LibraryError(f"{where}.limits: missing [drug.limits] table")
    unknown = sorted(set(raw_limits) - set(LIMITED_FIELDS))
    if unknown:
        raise LibraryError(f"{where}.limits: unknown field(s) {', '.join(unknown)}")
    missing = [f for f in LIMITED_FIELDS if f not in raw_limits]
    if missing:
        raise LibraryError(f"{where}.limits: missing {', '.join(missing)}")
    limits = {f: _limits(raw_limits[f], f"{where}.limits.{f}") for f in LIMITED_FIELDS}
    window = limits["dose_limit_window_h"]
    if window.hard_min < 1 or window.hard_max > 12:
        raise LibraryError(f"{where}.limits.dose_limit_window_h: the window must lie in 1..12 h, "
                           f"got {show(window.hard_min)}..{show(window.hard_max)}")
    if limits["dose_limit"].hard_min <= 0 and required:
        raise LibraryError(f"{where}.limits.dose_limit: hard_min must be > 0 "
                           "(a dose limit of 0 never means unlimited)")
    return DrugEntry(name, unit, concentrations, required, limits)


def parse_library(tables: Iterable[object], source: str, version: str = "") -> DrugLibrary:
    """Build a library from `[[drug]]` tables; raises LibraryError naming what is wrong."""
    drugs: dict[str, DrugEntry] = {}
    for index, raw in enumerate(tables):
        entry = _entry(raw, source, index)
        if entry.name in drugs:
            raise LibraryError(f"{source}: drug {entry.name!r} is listed twice")
        drugs[entry.name] = entry
    if not drugs:
        raise LibraryError(f"{source}: the library lists no drug")
    return DrugLibrary(source, drugs, version)


def load_library_text(text: str, source: str) -> DrugLibrary:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise LibraryError(f"{source}: not valid TOML: {err}") from None
    tables = data.get("drug")
    if not isinstance(tables, list):
        raise LibraryError(f"{source}: no [[drug]] tables")
    version = data.get("version", "")
    return parse_library(tables, source, str(version))


def default_library() -> DrugLibrary:
    """The library shipped with the pump (pca/therapy/data/drug_library.toml)."""
    text = resources.files("pca.therapy").joinpath("data/drug_library.toml").read_text("utf-8")
    return load_library_text(text, "built-in drug library")
