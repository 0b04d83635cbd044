"""The drug library: per drug, accepted concentrations and hard/soft limits (SR-8).

A pharmacy library file carries a `version` and a `checksum`: SHA-256 over its
canonical content (every key and value, not comments or layout). A file whose
checksum does not match is refused as a whole, with a message that says so, and
whoever asked keeps the library it had. Scenario `[[drug]]` tables are test
input, not pharmacy files, and carry none (`parse_library`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from importlib import resources
from typing import Any

from pca.therapy import bounds
from pca.therapy.strict import Table, key, parse_toml, shown
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
# Respiratory monitor settings (SR-13) and their limits, library-wide in a
# `[monitor_limits]` table; a library without one gets these. A clinician cannot set
# SpO2 min to 50 %, nor a delay that lets a patient stay hypoxic for minutes.
MONITOR_LIMITED_FIELDS = ("spo2_min", "etco2_max_mmhg", "rr_min", "delay_s", "stale_s")
DEFAULT_MONITOR_LIMITS_RAW: dict[str, list[int]] = {
    "spo2_min": [85, 88, 94, 98],         # %; 90 is the usual order, 88 for some COPD
    "etco2_max_mmhg": [30, 45, 55, 65],   # 50 is the usual order
    "rr_min": [4, 6, 10, 15],             # breaths/min; 8 is the usual order
    "delay_s": [0, 10, 60, 120],          # beyond a limit this long pauses the pump
    "stale_s": [10, 15, 60, 120],         # no reading this long is monitor_lost
}
CHECKSUM_PREFIX = "sha256:"
LIBRARY_KEYS = {"version", "checksum", "drug", "monitor_limits"}
_CHECKSUM_LINE = re.compile(r'(?m)^checksum[ \t]*=.*$')
_VERSION_LINE = re.compile(r'(?m)^version[ \t]*=.*$')


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
    limits: Mapping[str, Limits]  # pib_dose and pib_interval_min only where a PIB is allowed
    route: str = "iv"

    @property
    def allows_pib(self) -> bool:
        """SR-12: an entry without PIB limits allows no programmed intermittent bolus."""
        return all(name in self.limits for name in V2_LIMITS)


@dataclass(frozen=True)
class DrugLibrary:
    source: str
    drugs: Mapping[str, DrugEntry]
    version: str = ""
    checksum: str = ""  # "sha256:..." of a pharmacy file; "" for scenario tables
    monitor_limits: Mapping[str, Limits] = field(default_factory=lambda: DEFAULT_MONITOR_LIMITS)

    # Every entry by (drug, route); `drugs` above names each drug once (its IV entry where
    # it has one), for lists and for code that predates routes.
    entries: Mapping[tuple[str, str], DrugEntry] = field(default_factory=dict)

    def get(self, name: str, route: str = "iv") -> DrugEntry | None:
        if not self.entries:
            entry = self.drugs.get(name)
            return entry if entry is not None and entry.route == route else None
        return self.entries.get((name, route))

    def routes_of(self, name: str) -> list[str]:
        """The routes the library has an entry for, for this drug."""
        if not self.entries:
            return [e.route for n, e in self.drugs.items() if n == name]
        return sorted(route for (n, route) in self.entries if n == name)


# Physical bounds of each limit (pca.therapy.bounds): (low, high, unit, whole numbers only).
_LIMIT_BOUNDS: dict[str, tuple[int, int, str, bool]] = {
    "basal_rate_per_h": (0, bounds.AMOUNT_MAX, "unit/h", False),
    "pca_dose": (0, bounds.AMOUNT_MAX, "unit", False),
    "lockout_min": (0, bounds.LOCKOUT_MIN_MAX, "min", False),
    "dose_limit_window_h": (0, bounds.LOCKOUT_MIN_MAX, "h", True),
    "max_pca_per_h": (0, bounds.MAX_PCA_PER_H_MAX, "", True),
    "dose_limit": (0, bounds.AMOUNT_MAX, "unit", False),
    "loading_dose": (0, bounds.AMOUNT_MAX, "unit", False),
    "clinician_bolus_max": (0, bounds.AMOUNT_MAX, "unit", False),
    # SCENARIOS.md version 2 (issue 11): checked now, used when the pump gives PIBs.
    "pib_dose": (0, bounds.AMOUNT_MAX, "unit", False),
    "pib_interval_min": (0, 480, "min", True),
    # Respiratory monitor limits (SR-13), library-wide.
    "spo2_min": (0, 100, "%", True),
    "etco2_max_mmhg": (0, 150, "mmHg", True),
    "rr_min": (0, 60, "breaths/min", True),
    "delay_s": (0, 600, "s", True),
    "stale_s": (0, 600, "s", True),
}
V2_LIMITS = ("pib_dose", "pib_interval_min")
ROUTES = ("iv", "epidural", "subcutaneous")


def _limits(t: Table, name: str, unit: str) -> Limits:
    lo, hi, what, whole = _LIMIT_BOUNDS[name]
    shown_unit = what.replace("unit", unit)
    t.array(name, min_items=4, max_items=4)
    values = t.numbers(name, lo, hi, unit=shown_unit, min_items=4, max_items=4)
    if whole and any(v.denominator != 1 for v in values):
        raise LibraryError(f"{t.where}.{name}: limits {[show(v) for v in values]} must be "
                           "whole numbers")
    if values != sorted(values):
        raise LibraryError(f"{t.where}.{name}: limits {[show(v) for v in values]} must be "
                           "ordered hard_min <= soft_min <= soft_max <= hard_max")
    return Limits(*values)


def parse_monitor_limits(raw: object, source: str) -> dict[str, Limits]:
    """A `[monitor_limits]` table: every field of MONITOR_LIMITED_FIELDS, as limits."""
    where = f"{source}: monitor_limits"
    if not isinstance(raw, dict):
        raise LibraryError(f"{where}: expected a table, got {shown(raw)}")
    unknown = sorted(set(raw) - set(MONITOR_LIMITED_FIELDS))
    if unknown:
        raise LibraryError(f"{where}: unknown field(s) {', '.join(map(key, unknown))}")
    missing = [f for f in MONITOR_LIMITED_FIELDS if f not in raw]
    if missing:
        raise LibraryError(f"{where}: missing {', '.join(missing)}")
    table = Table(raw, where, LibraryError)
    limits = {f: _limits(table, f, "") for f in MONITOR_LIMITED_FIELDS}
    spo2 = limits["spo2_min"]
    if spo2.hard_min < 80 or spo2.hard_max > 100:
        raise LibraryError(f"{where}.spo2_min: SpO2 limits must lie in 80..100 %, got "
                           f"{show(spo2.hard_min)}..{show(spo2.hard_max)}")
    if limits["stale_s"].hard_min <= 0:
        raise LibraryError(f"{where}.stale_s: hard_min must be > 0 (a monitor is never "
                           "'fresh' forever)")
    return limits


def _entry(raw: object, source: str, index: int) -> DrugEntry:
    t = Table(raw, f"{source}: drug[{index}]", LibraryError)
    name = t.text("name", max_chars=100)
    t.where = f"{source}: drug {name!r}"
    unit = t.text("unit", choices=DRUG_UNITS)
    concentrations = tuple(t.numbers("concentrations_per_ml", 0, bounds.CONCENTRATION_MAX,
                                     lo_open=True, unit=f"{unit}/mL",
                                     max_items=bounds.CONCENTRATIONS_MAX))
    required = t.flag("dose_limit_required", default=True)
    route = t.text("route", choices=ROUTES, default="iv")
    t.where = f"{source}: drug {name!r} ({route})" if route != "iv" else t.where
    raw_limits = t.table("limits", required=False)
    if raw_limits is None:
        raise LibraryError(f"{t.where}.limits: missing [drug.limits] table")
    raw_limits.where = f"{t.where}.limits"
    unknown = sorted(set(raw_limits.raw) - set(LIMITED_FIELDS) - set(V2_LIMITS))
    if unknown:
        raise LibraryError(f"{t.where}.limits: unknown field(s) {', '.join(map(key, unknown))}")
    missing = [f for f in LIMITED_FIELDS if f not in raw_limits.raw]
    if missing:
        raise LibraryError(f"{t.where}.limits: missing {', '.join(missing)}")
    limits = {f: _limits(raw_limits, f, unit) for f in LIMITED_FIELDS}
    present = [f for f in V2_LIMITS if raw_limits.has(f)]
    if present and len(present) != len(V2_LIMITS):
        missing_v2 = [f for f in V2_LIMITS if f not in present]
        raise LibraryError(f"{t.where}.limits: {present[0]} without {missing_v2[0]}: an entry "
                           "that allows a PIB limits both its dose and its interval")
    for extra in present:
        limits[extra] = _limits(raw_limits, extra, unit)
    if present and limits["pib_interval_min"].hard_min < 15:
        raise LibraryError(f"{t.where}.limits.pib_interval_min: hard_min "
                           f"{show(limits['pib_interval_min'].hard_min)} is below 15 min, the "
                           "shortest PIB interval the pump allows")
    raw_limits.finish()
    t.finish(("name", "unit", "concentrations_per_ml", "dose_limit_required", "route",
              "limits"))
    window = limits["dose_limit_window_h"]
    if window.hard_min < 1 or window.hard_max > 12:
        raise LibraryError(f"{t.where}.limits.dose_limit_window_h: the window must lie in "
                           f"1..12 h, got {show(window.hard_min)}..{show(window.hard_max)}")
    if limits["dose_limit"].hard_min <= 0 and required:
        raise LibraryError(f"{t.where}.limits.dose_limit: hard_min must be > 0 "
                           "(a dose limit of 0 never means unlimited)")
    return DrugEntry(name, unit, concentrations, required, limits, route)


DEFAULT_MONITOR_LIMITS: Mapping[str, Limits] = {
    name: _limits(Table(DEFAULT_MONITOR_LIMITS_RAW, "built-in monitor_limits", LibraryError),
                  name, "")
    for name in DEFAULT_MONITOR_LIMITS_RAW}


def parse_library(tables: Iterable[object], source: str, version: str = "") -> DrugLibrary:
    """Build a library from `[[drug]]` tables; raises LibraryError naming what is wrong."""
    entries: dict[tuple[str, str], DrugEntry] = {}
    tables = list(tables)
    if len(tables) > bounds.DRUGS_MAX:
        raise LibraryError(f"{source}: {len(tables)} drugs; a library holds at most "
                           f"{bounds.DRUGS_MAX}")
    for index, raw in enumerate(tables):
        entry = _entry(raw, source, index)
        if (entry.name, entry.route) in entries:
            raise LibraryError(f"{source}: drug {entry.name!r} is listed twice for route "
                               f"{entry.route!r}")
        entries[(entry.name, entry.route)] = entry
    if not entries:
        raise LibraryError(f"{source}: the library lists no drug")
    drugs: dict[str, DrugEntry] = {}
    for (name, route), entry in entries.items():
        if name not in drugs or route == "iv":
            drugs[name] = entry
    return DrugLibrary(source, drugs, version, entries=entries)


def _canonical_value(value: object) -> object:
    # Numbers as exact fractions, so 5 and 5.0 (or 0.20 and 0.2) are the same content.
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return f"float:{value}"  # never a valid limit; refused after the seal is checked
    if isinstance(value, (int, float)):
        return str(exact(value, where="checksum"))
    if isinstance(value, dict):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_value(v) for v in value]
    return str(value)  # dates and times: TOML gives them one spelling


def library_checksum(data: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical content of a parsed library file, without `checksum`."""
    content = {k: v for k, v in data.items() if k != "checksum"}
    text = json.dumps(_canonical_value(content), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return CHECKSUM_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def _parse_toml(text: str | bytes, source: str) -> dict[str, Any]:
    return parse_toml(text, source, max_bytes=bounds.LIBRARY_BYTES_MAX, error=LibraryError)


def load_library_text(text: str | bytes, source: str) -> DrugLibrary:
    """Any library text: a `checksum`, when present, must match (a sealed file that was
    changed is refused); an unsealed one is accepted. Pharmacy files go through
    `load_pharmacy_library`, which requires the seal."""
    return _load(_parse_toml(text, source), source, sealed=False)


def load_pharmacy_library(text: str | bytes, source: str) -> DrugLibrary:
    """A pharmacy library file: version and checksum are required and checked before any
    drug is; what fails is refused as a whole."""
    return _load(_parse_toml(text, source), source, sealed=True)


def _load(data: dict[str, Any], source: str, *, sealed: bool) -> DrugLibrary:
    unknown = sorted(set(data) - LIBRARY_KEYS)
    if unknown:
        raise LibraryError(f"{source}: unknown top-level key(s) "
                           f"{', '.join(map(key, unknown))}")
    version = data.get("version", "")
    if not isinstance(version, str) or (sealed and not version.strip()) or len(version) > 100:
        raise LibraryError(f"{source}: version = {shown(version)}: a library file needs a "
                           "non-empty version string (e.g. version = \"2026.11-ward4\")")
    stated = data.get("checksum")
    actual = library_checksum(data)
    if stated is not None or sealed:
        if not isinstance(stated, str) or not stated.startswith(CHECKSUM_PREFIX):
            raise LibraryError(f"{source}: checksum = {shown(stated)}: a library file must carry "
                               f'checksum = "{CHECKSUM_PREFIX}..." (seal it with '
                               "`pca rx seal-library FILE` after review)")
        if stated != actual:
            raise LibraryError(f"{source}: checksum mismatch: the file states "
                               f"{stated[:19]}..., its content gives {actual[:19]}...: it "
                               "was changed after it was sealed (or damaged); it is refused "
                               "and the library in use stays")
    tables = data.get("drug")
    if not isinstance(tables, list):
        raise LibraryError(f"{source}: no [[drug]] tables")
    library = parse_library(tables, source, version.strip())
    monitor_limits = DEFAULT_MONITOR_LIMITS
    if "monitor_limits" in data:
        monitor_limits = parse_monitor_limits(data["monitor_limits"], source)
    return DrugLibrary(library.source, library.drugs, library.version,
                       actual if stated is not None else "", monitor_limits, library.entries)


def seal_library_text(text: str, version: str | None = None) -> str:
    """The same file with its `checksum` line set (and `version`, if given); comments and
    layout are kept. Validates the drugs first: a broken library is never sealed."""
    if version is not None:
        line = f"version = {json.dumps(version)}"
        text = _VERSION_LINE.sub(line, text, count=1) if _VERSION_LINE.search(text) \
            else f"{line}\n{text}"
    data = _parse_toml(text, "library")
    tables = data.get("drug")
    if not isinstance(tables, list):
        raise LibraryError("library: no [[drug]] tables")
    parse_library(tables, "library")
    line = f'checksum = "{library_checksum(data)}"'
    if _CHECKSUM_LINE.search(text):
        return _CHECKSUM_LINE.sub(line, text, count=1)
    match = _VERSION_LINE.search(text)
    if match is None:
        raise LibraryError("library: no top-level version line to put the checksum after")
    return text[:match.end()] + "\n" + line + text[match.end():]


def with_monitor_limits(library: DrugLibrary, raw: object) -> DrugLibrary:
    """The same library with a `[monitor_limits]` table (scenario files)."""
    return replace(library, monitor_limits=parse_monitor_limits(raw, library.source))


def replace_library(current: DrugLibrary, text: str,
                    source: str) -> tuple[DrugLibrary, str | None]:
    """Try a new library file: (new library, None), or (current, why it was refused)."""
    try:
        return load_pharmacy_library(text, source), None
    except LibraryError as err:
        return current, str(err)


def default_library() -> DrugLibrary:
    """The library shipped with the pump (pca/therapy/data/drug_library.toml)."""
    text = resources.files("pca.therapy").joinpath("data/drug_library.toml").read_text("utf-8")
    return load_pharmacy_library(text, "built-in drug library")
