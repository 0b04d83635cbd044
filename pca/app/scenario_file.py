"""The scenario file: its actions and fields, and the strict TOML loader with one-line errors."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pca.app import sim_power
from pca.controller.inputs import (
    SENSORS,
)
from pca.controller.ports import NS_PER_S
from pca.controller.profile import PumpProfile
from pca.store.eventlog import parse_wall_ns
from pca.therapy import bounds
from pca.therapy.drugs import DrugLibrary, LibraryError, default_library, parse_library
from pca.therapy.prescription import PrescriptionFormatError, RxRequest, parse_request
from pca.therapy.strict import Table, key, parse_toml, shown

# action -> (required fields, optional fields)
ACTIONS: dict[str, tuple[set[str], set[str]]] = {
    "program": (set(), {"pin", "confirm_soft"}),
    "start": (set(), set()),
    "stop": (set(), set()),
    "press": (set(), {"hold_s"}),
    "keys": ({"keys"}, set()),
    "clinician_bolus": ({"amount"}, {"pin"}),
    "loading_dose": (set(), {"pin"}),
    "signal": ({"name", "value"}, set()),
    "silence": (set(), set()),
    "clear_alarm": (set(), {"pin"}),
    "new_syringe": ({"syringe_ml"}, {"pin"}),
    "new_patient": (set(), {"pin"}),
    "crash": (set(), set()),
    "restart": (set(), set()),
    "clock_step": ({"seconds"}, set()),
    "vitals": (set(), {"spo2", "etco2_mmhg", "rr", "pulse"}),
    "power": (set(), sim_power.FIELDS),  # the pack and mains (pca.app.sim_power)
}
# What a `vitals` step may say, in whole units (SR-13): %, mmHg, breaths/min, beats/min.
VITAL_RANGES = {"spo2": (0, 100), "etco2_mmhg": (0, 150), "rr": (0, 150), "pulse": (0, 350)}
SIGNALS = (*SENSORS, "monitor")  # monitor: the respiratory monitor is plugged in or not
# While the pump is off these still happen: the hardware (the lines, the respiratory
# monitor) and the wall clock change whether or not the pump is there to see it.
OFF_ACTIONS = {"signal", "clock_step", "restart", "vitals", "power"}
MAX_DURATION_NS = 366 * 86400 * NS_PER_S
MAX_CLOCK_STEP_S = 366 * 86400
WALL_MIN_NS = 946_684_800 * NS_PER_S  # 2000-01-01T00:00:00Z
WALL_MAX_NS = 4_102_444_800 * NS_PER_S  # 2100-01-01T00:00:00Z
DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


class ScenarioError(ValueError):
    """The file is not a valid scenario; the message names file, field and value."""


def parse_duration(text: object, where: str) -> int:
    """'90s', '10m', '2h', '1h30m', '0s' -> ns (at most MAX_DURATION_NS)."""
    if not isinstance(text, str) or not text or len(text) > 32 \
            or not (match := DURATION.match(text.strip())):
        raise ScenarioError(f"{where}: {shown(text)} is not a time like '90s', '10m', '2h', "
                            "'1h30m'")
    h, m, s = (Fraction(g) if g else Fraction(0) for g in match.groups())
    ns = int((h * 3600 + m * 60 + s) * NS_PER_S)
    if ns > MAX_DURATION_NS:
        raise ScenarioError(f"{where}: {shown(text)} is longer than a scenario may run "
                            f"({MAX_DURATION_NS // NS_PER_S // 86400} days)")
    return ns


@dataclass(frozen=True)
class Step:
    at_ns: int
    do: str
    fields: Mapping[str, Any]
    index: int


@dataclass
class Scenario:
    name: str
    start_wall_ns: int
    pin: str | None
    end_ns: int
    profile: PumpProfile
    rx: RxRequest | None
    library: DrugLibrary
    steps: list[Step]


def _wall_ns(text: object, where: str) -> int:
    try:
        ns = parse_wall_ns(text)
    except (ValueError, OverflowError):
        raise ScenarioError(f"{where}: {shown(text)} is not an ISO 8601 time") from None
    if not WALL_MIN_NS <= ns <= WALL_MAX_NS:
        raise ScenarioError(f"{where}: {shown(text)} must lie in the years 2000 to 2099")
    return ns


def _check_step(raw: object, src: str, index: int) -> Step:
    where = f"{src}: step[{index}]"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a table")
    do = raw.get("do")
    if do not in ACTIONS:
        known = ", ".join(ACTIONS)
        raise ScenarioError(f"{where}.do: unknown action {shown(do)} (known: {known})")
    if "at" not in raw:
        raise ScenarioError(f"{where}: missing field 'at'")
    at_ns = parse_duration(raw["at"], f"{where}.at")
    required, optional = ACTIONS[do]
    fields = {k: v for k, v in raw.items() if k not in ("at", "do")}
    missing = sorted(required - set(fields))
    if missing:
        raise ScenarioError(f"{where} ({do}): missing field {', '.join(missing)}")
    unknown = sorted(set(fields) - required - optional)
    if unknown:
        raise ScenarioError(f"{where} ({do}): unknown field {', '.join(map(key, unknown))}")
    _check_fields(do, Table(fields, f"{where} ({do})", ScenarioError))
    return Step(at_ns, do, fields, index)


def _check_fields(do: str, t: Table) -> None:
    """Every field of an action with its type and bounds (ScenarioError names it)."""
    if t.has("pin"):
        pin = t.text("pin", max_chars=16)
        if not pin.isascii():
            t.fail("pin", pin, "a string of digits")
    if do == "press":
        t.number("hold_s", 0, 3600, unit="s", default=Fraction(0))
    elif do == "keys":
        keys = t.text("keys", max_chars=1000)
        if any(k not in "0123456789*#" for k in keys):
            raise ScenarioError(f"{t.where}: keys = {shown(keys)} must be keypad keys 0-9, "
                                "* and #")
    elif do == "signal":
        name = t.text("name", max_chars=40)
        if name not in SIGNALS:
            raise ScenarioError(f"{t.where}: name = {shown(name)}: unknown signal "
                                f"(known: {', '.join(SIGNALS)})")
        t.flag("value")
    elif do == "clinician_bolus":
        t.number("amount", 0, bounds.AMOUNT_MAX, unit="in the prescription's dose_unit")
    elif do == "new_syringe":
        t.number("syringe_ml", 0, bounds.SYRINGE_ML_MAX, unit="mL")
    elif do == "clock_step":
        t.number("seconds", -MAX_CLOCK_STEP_S, MAX_CLOCK_STEP_S, unit="s")
    elif do == "vitals":
        if not t.raw:
            raise ScenarioError(f"{t.where}: give at least one of {', '.join(VITAL_RANGES)}")
        for name, (low, high) in VITAL_RANGES.items():
            t.maybe_integer(name, low, high)
    elif do == "power":
        sim_power.check_fields(t)
    elif do == "program" and t.has("confirm_soft"):
        t.flag("confirm_soft")


def load_scenario(path: str | Path) -> Scenario:
    src = str(path)
    try:
        raw_bytes = Path(path).read_bytes()
    except OSError as err:
        raise ScenarioError(f"{src}: cannot read: {err.strerror or err}") from None
    data = parse_toml(raw_bytes, src, max_bytes=bounds.SCENARIO_BYTES_MAX, error=ScenarioError)
    known = {"name", "start", "clinician_pin", "end", "pump", "prescription", "step", "drug",
             "monitor"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(f"{src}: unknown top-level field {', '.join(map(key, unknown))}")
    top = Table(data, src, ScenarioError)
    name = top.text("name", default=Path(path).stem, allow_empty=True)
    start = _wall_ns(data["start"], f"{src}: start") if "start" in data else \
        _wall_ns("2026-01-01T00:00:00Z", "default start")
    pin = data.get("clinician_pin")
    if pin is not None and not (isinstance(pin, str) and pin.isascii() and pin.isdigit()
                                and 4 <= len(pin) <= 8):
        raise ScenarioError(f"{src}: clinician_pin must be a string of 4-8 digits")
    pump = top.table("pump", required=False)
    try:
        profile = PumpProfile.from_table(pump.raw if pump else {}, f"{src}: [pump]")
    except ValueError as err:
        raise ScenarioError(str(err)) from None
    rx = None
    if "monitor" in data and "prescription" not in data:
        raise ScenarioError(f"{src}: [monitor] comes with a [prescription] (program activates "
                            "both)")
    if "prescription" in data:
        if not isinstance(data["prescription"], dict):
            raise ScenarioError(f"{src}: [prescription] must be a table")
        table = dict(data["prescription"])
        if "monitor" in table:
            raise ScenarioError(f"{src}: [prescription]: monitor settings go in their own "
                                "[monitor] table")
        if "monitor" in data:
            table["monitor"] = data["monitor"]
        try:
            rx = parse_request(table, f"{src}: [prescription]")
        except PrescriptionFormatError as err:
            raise ScenarioError(str(err)) from None
    library = default_library()
    if "drug" in data:
        tables = top.array("drug", max_items=bounds.DRUGS_MAX, min_items=1)
        try:
            library = parse_library(tables, f"{src}: [[drug]]")
        except LibraryError as err:
            raise ScenarioError(str(err)) from None
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list):
        raise ScenarioError(f"{src}: step must be an array of tables ([[step]])")
    if len(raw_steps) > bounds.SCENARIO_STEPS_MAX:
        raise ScenarioError(f"{src}: {len(raw_steps)} steps; a scenario has at most "
                            f"{bounds.SCENARIO_STEPS_MAX}")
    steps = [_check_step(raw, src, i) for i, raw in enumerate(raw_steps)]
    for before, after in itertools.pairwise(steps):
        if after.at_ns < before.at_ns:
            raise ScenarioError(f"{src}: step[{after.index}].at = "
                                f"{shown(raw_steps[after.index]['at'])}"
                                f" is before the step above it (times are non-decreasing)")
    if rx is None and any(s.do == "program" for s in steps):
        raise ScenarioError(f"{src}: a 'program' step needs a [prescription] table")
    last = steps[-1].at_ns if steps else 0
    end = parse_duration(data["end"], f"{src}: end") if "end" in data else last + 60 * NS_PER_S
    if end < last:
        raise ScenarioError(f"{src}: end = {shown(data['end'])} is before the last step")
    return Scenario(name, start, pin, end, profile, rx, library, steps)
