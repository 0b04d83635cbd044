"""Hostile inputs for the four file loaders, and the oracle that judges what a loader did.

A case is a valid document of one kind (scenario, pharmacy prescription file, drug
library, pca.toml) with one mutation: a field set to a hostile value (quoted numbers,
NaN/inf, 1e300, tables and arrays where numbers go, 2,000-deep nesting...), a field
deleted, an unknown key, or the bytes damaged (cut short, not UTF-8). The loader must
either refuse it with its own error class (one line naming the file) or accept it; when
it accepts, every value must lie inside the bounds written here, independently of the
implementation (the spec of issue 17), and a mutated value the spec calls invalid must
not have been accepted. Used by tests/test_input_fuzz.py and, against an older checkout,
by `python tests/input_fuzz.py` (it prints what that code does with the same inputs).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from hypothesis import strategies as st


@dataclass(frozen=True)
class Raw:
    """TOML text written as is (deep nesting that no Python value spells compactly)."""

    text: str


@dataclass(frozen=True)
class Spec:
    kind: str  # "num", "int", "bool", "str", "path"
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    required: bool = False
    choices: tuple[str, ...] = ()


def num(lo: float, hi: float, *, lo_open: bool = False, required: bool = False) -> Spec:
    return Spec("num", lo, hi, lo_open, required)


def whole(lo: float, hi: float, *, required: bool = False) -> Spec:
    return Spec("int", lo, hi, False, required)


BOOL = Spec("bool")
AMOUNT = num(0, 10_000)
PUMP = {
    "steps_per_ml": num(1000, 1_000_000), "bolus_rate_ml_h": num(1, 600),
    "kvo_rate_ml_h": num(0, 10), "low_reservoir_ml": num(0, 50), "syringe_ml": num(0, 250),
    "rtc": BOOL,
}
RX = {
    "drug": Spec("str", required=True), "dose_unit": Spec("str", required=True,
                                                          choices=("mg", "mcg", "ml")),
    "concentration_per_ml": num(0, 1000, lo_open=True, required=True),
    "basal_rate_per_h": AMOUNT, "pca_dose": num(0, 10_000, required=True),
    "lockout_min": num(0, 1440, required=True), "max_pca_per_h": whole(0, 60),
    "dose_limit": AMOUNT, "dose_limit_window_h": whole(1, 12), "loading_dose": AMOUNT,
    "clinician_bolus_max": AMOUNT,
}
# In a pharmacy file every field is written out (only these two may be absent).
RX_PHARMACY = {k: (v if k in ("max_pca_per_h", "dose_limit") else
                   Spec(v.kind, v.lo, v.hi, v.lo_open, True, v.choices)) for k, v in RX.items()}
LIMIT_BOUNDS = {"basal_rate_per_h": (0, 10_000), "pca_dose": (0, 10_000),
                "lockout_min": (0, 1440), "dose_limit_window_h": (1, 12),
                "max_pca_per_h": (0, 60), "dose_limit": (0, 10_000),
                "loading_dose": (0, 10_000), "clinician_bolus_max": (0, 10_000)}
CONFIG = {
    "tick_ms": whole(10, 100), "database": Spec("path"), "pepper": Spec("path"),
    "rx_spool": Spec("path"), "pin_factory": Spec("str", choices=("lgpio", "rpigpio", "mock")),
    "display.kind": Spec("str", choices=("lcd", "sim", "none")),
    "display.address": whole(3, 0x77), "display.port": whole(0, 31),
    "motor.budget_ml": num(0, 250, lo_open=True), "motor.budget_window_s": whole(1, 86400),
    "motor.max_rate_ml_h": num(0, 600, lo_open=True), "motor.pulse_cpu": whole(0, 1023),
    **{f"pump.{k}": v for k, v in PUMP.items()},
}
SCENARIO = {
    "clinician_pin": Spec("str"), "end": Spec("str"),
    **{f"pump.{k}": v for k, v in PUMP.items()},
    **{f"prescription.{k}": v for k, v in RX.items()},
    "step[2].hold_s": num(0, 3600), "step[3].amount": AMOUNT,
    "step[4].syringe_ml": num(0, 250), "step[5].seconds": num(-366 * 86400, 366 * 86400),
}
LIBRARY = {
    "drug[0].name": Spec("str", required=True),
    "drug[0].unit": Spec("str", required=True, choices=("mg", "mcg")),
    "drug[0].dose_limit_required": BOOL,
    **{f"drug[0].limits.{k}[{i}]": (whole(lo, hi) if k in ("max_pca_per_h",
                                                            "dose_limit_window_h")
                                     else num(lo, hi))
       for k, (lo, hi) in LIMIT_BOUNDS.items() for i in range(4)},
    "drug[0].concentrations_per_ml[0]": num(0, 1000, lo_open=True),
}

GOOD_RX = {"drug": "morphine", "concentration_per_ml": 1.0, "dose_unit": "mg",
           "basal_rate_per_h": 0.5, "pca_dose": 1.0, "lockout_min": 10, "max_pca_per_h": 4,
           "dose_limit": 6.0, "dose_limit_window_h": 4, "loading_dose": 2.0,
           "clinician_bolus_max": 2.0}
GOOD_PUMP = {"steps_per_ml": 15480, "bolus_rate_ml_h": 60.0, "kvo_rate_ml_h": 0.1,
             "low_reservoir_ml": 1.0, "syringe_ml": 30.0, "rtc": False}
GOOD_DRUG = {"name": "morphine", "unit": "mg", "concentrations_per_ml": [1.0, 2.0],
             "dose_limit_required": True, "limits": {
                 "basal_rate_per_h": [0.0, 0.0, 2.0, 4.0], "pca_dose": [0.1, 0.5, 3.0, 5.0],
                 "lockout_min": [5, 6, 20, 60], "dose_limit_window_h": [1, 1, 4, 12],
                 "max_pca_per_h": [1, 1, 6, 12], "dose_limit": [1.0, 5.0, 30.0, 40.0],
                 "loading_dose": [0.0, 0.0, 5.0, 10.0],
                 "clinician_bolus_max": [0.0, 0.0, 5.0, 10.0]}}
GOOD: dict[str, dict[str, Any]] = {
    "scenario": {"name": "fuzz", "start": "2026-03-01T08:00:00Z", "clinician_pin": "482916",
                 "end": "10m", "pump": GOOD_PUMP, "prescription": GOOD_RX, "step": [
                     {"at": "0s", "do": "program"}, {"at": "1s", "do": "start"},
                     {"at": "2s", "do": "press", "hold_s": 0.2},
                     {"at": "3s", "do": "clinician_bolus", "amount": 1.0},
                     {"at": "4s", "do": "new_syringe", "syringe_ml": 20.0},
                     {"at": "5s", "do": "clock_step", "seconds": 60}]},
    "pharmacy": {"rx_id": "RX-1", "prepared_by": "pharmacy", "prescription": GOOD_RX},
    "library": {"version": "2026.12-fuzz", "drug": [GOOD_DRUG]},
    "config": {"database": "/var/lib/pca/events.db", "tick_ms": 50, "pepper": "/etc/pca/p",
               "rx_spool": "/var/lib/pca/rx-pending", "rx_watch": [],
               "display": {"kind": "lcd", "address": 0x27, "port": 1, "expander": "PCF8574"},
               "pump": GOOD_PUMP, "motor": {"budget_ml": 20.0, "budget_window_s": 3600}},
}
SPECS: dict[str, dict[str, Spec]] = {
    "scenario": SCENARIO, "pharmacy": {f"prescription.{k}": v for k, v in RX_PHARMACY.items()},
    "library": LIBRARY, "config": CONFIG}


# ---- writing TOML ---------------------------------------------------------------------------
def toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) \
            + "}"
    raise TypeError(value)


def toml_document(doc: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())


# ---- mutations ------------------------------------------------------------------------------
def _split(path: str) -> list[str | int]:
    out: list[str | int] = []
    for part in path.split("."):
        while "[" in part:
            name, rest = part.split("[", 1)
            if name:
                out.append(name)
            index, part = rest.split("]", 1)
            out.append(int(index))
        if part:
            out.append(part)
    return out


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def mutate(doc: dict[str, Any], path: str, value: Any, delete: bool = False) -> dict[str, Any]:
    doc = _copy(doc)
    keys = _split(path)
    node: Any = doc
    for k in keys[:-1]:
        node = node[k]
    if delete:
        if isinstance(node, dict):
            node.pop(keys[-1], None)
        return doc
    node[keys[-1]] = value
    return doc


@dataclass(frozen=True)
class Case:
    kind: str
    data: bytes
    what: str
    invalid: bool  # the spec says this input must be refused


def valid_value(spec: Spec, value: Any) -> bool:
    if isinstance(value, Raw):
        return False
    if spec.kind in ("num", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if spec.kind == "int" and value != int(value):
            return False
        exact = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
        return (spec.lo < exact if spec.lo_open else spec.lo <= exact) and exact <= spec.hi
    if spec.kind == "bool":
        return isinstance(value, bool)
    if not isinstance(value, str):
        return False
    return value in spec.choices if spec.choices else True


DEEP = Raw("[" * 2000 + "]" * 2000)
HOSTILE = st.one_of(
    st.sampled_from([1e300, -1e300, 1e-12, 0, -0.0, 5e-324, 1.5, "1.5", "15480", "nan", "",
                     math.nan, math.inf, -math.inf, True, False, {}, {"x": 1}, [1, 2],
                     [], DEEP, Raw("{a = " * 300 + "1" + "}" * 300), 10**40, -1,
                     "2026-03-01", "\u00e9\u00e9", 2**63, "1e300"]),
    st.integers(min_value=-10**6, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)


UNKNOWN_NESTED = {"scenario": "pump.colour", "pharmacy": "prescription.colour",
                  "library": "drug[0].colour", "config": "motor.colour"}


@st.composite
def cases(draw: Callable[..., Any], kind: str) -> Case:
    good = GOOD[kind]
    specs = SPECS[kind]
    how = draw(st.sampled_from(["set", "set", "set", "set", "delete", "unknown", "bytes"]))
    if how == "bytes":
        text = toml_document(_sealed(kind, good)).encode()
        damage = draw(st.sampled_from(["cut", "latin1", "bom", "nul"]))
        if damage == "cut":
            at = draw(st.integers(min_value=0, max_value=len(text)))
            return Case(kind, text[:at], f"cut at byte {at}", False)
        if damage == "latin1":
            at = draw(st.integers(min_value=0, max_value=len(text)))
            return Case(kind, text[:at] + b"\xe9\xff" + text[at:], "not UTF-8", True)
        if damage == "bom":
            return Case(kind, b"\xef\xbb\xbf" + text, "UTF-8 BOM", False)
        return Case(kind, text.replace(b"\n", b"\x00\n", 1), "NUL byte", True)
    if how == "unknown":
        doc = mutate(good, draw(st.sampled_from(["speed", UNKNOWN_NESTED[kind]])), 1)
        return Case(kind, toml_document(_sealed(kind, doc)).encode(), "unknown key", True)
    path = draw(st.sampled_from(sorted(specs)))
    spec = specs[path]
    if how == "delete":
        doc = mutate(good, path, None, delete=True)
        return Case(kind, toml_document(_sealed(kind, doc)).encode(), f"delete {path}",
                    spec.required)
    value = draw(HOSTILE)
    doc = mutate(good, path, value)
    return Case(kind, toml_document(_sealed(kind, doc)).encode(),
                f"{path} = {toml_value(value)[:40]}", not valid_value(spec, value))


def _sealed(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Library files carry their checksum: the fuzzer seals what it wrote (with the
    checksum code under test), so the content check is what is exercised."""
    if kind != "library":
        return doc
    from pca.therapy.drugs import library_checksum

    try:
        return {"checksum": library_checksum(_parsed(doc)), **doc}
    except Exception:  # the old checksum crashes on NaN: left unsealed (refused anyway)
        return doc


def _parsed(doc: dict[str, Any]) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(toml_document(doc))
    except Exception:
        return doc


# ---- running a loader and judging it --------------------------------------------------------
class Traceback(Exception):
    """The loader raised something other than its own error class."""


def _load(kind: str, path: Path) -> Any:
    if kind == "scenario":
        from pca.app.scenario import ScenarioError, load_scenario

        return ScenarioError, lambda: load_scenario(path)
    if kind == "pharmacy":
        from pca.app import rx

        def pharmacy() -> Any:
            checked = rx.check(rx.read_rx_file(path), rx.default_library(), Fraction(60))
            return checked.request

        return rx.RxFileError, pharmacy
    if kind == "library":
        from pca.app import rx
        from pca.therapy.drugs import LibraryError, load_pharmacy_library

        return (LibraryError, rx.RxFileError), \
            lambda: load_pharmacy_library(rx._read_library(str(path)), str(path))
    from pca.app.config import ConfigError, load_config

    return ConfigError, lambda: load_config(path)


def judge(case: Case, workdir: Path) -> str:
    """'refused', 'accepted', or a failure: 'traceback: ...' / 'silent: ...'."""
    path = workdir / f"input.{case.kind}.toml"
    path.write_bytes(case.data)
    error, load = _load(case.kind, path)
    try:
        result = load()
    except error as err:
        text = str(err)
        if "\n" in text.strip() and case.kind != "pharmacy":
            return f"traceback: a refusal of {len(text.splitlines())} lines"
        return "refused"
    except Exception as err:  # anything else reached the user as a traceback
        return f"traceback: {type(err).__name__}: {str(err)[:80]}"
    problem = out_of_bounds(case.kind, result)
    if problem:
        return f"silent: accepted {problem}"
    if case.invalid:
        return f"silent: accepted {case.what}"
    return "accepted"


def _check(value: Any, spec: Spec, where: str) -> str | None:
    if spec.kind in ("num", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, Fraction)):
            return f"{where} = {value!r} (not an exact number)"
        low_ok = spec.lo < value if spec.lo_open else spec.lo <= value
        if not (low_ok and value <= spec.hi):
            return f"{where} = {float(value):g} (outside {spec.lo:g}..{spec.hi:g})"
    return None


def out_of_bounds(kind: str, result: Any) -> str | None:
    checks: list[tuple[Any, Spec, str]] = []

    def profile(p: Any) -> None:
        checks.extend((getattr(p, k), v, f"pump.{k}") for k, v in PUMP.items() if k != "rtc")

    def request(r: Any) -> None:
        for k, v in RX.items():
            value = getattr(r, k)
            if value is not None and v.kind != "str":
                checks.append((value, v, f"prescription.{k}"))

    if kind == "config":
        profile(result.profile)
        checks.append((result.tick_ms, CONFIG["tick_ms"], "tick_ms"))
        checks.append((result.motor.budget_ml, CONFIG["motor.budget_ml"], "motor.budget_ml"))
        checks.append((result.motor.budget_window_s, CONFIG["motor.budget_window_s"],
                       "motor.budget_window_s"))
        checks.append((result.display.address, CONFIG["display.address"], "display.address"))
    elif kind == "scenario":
        profile(result.profile)
        if result.rx is not None:
            request(result.rx)
        for step in result.steps:
            for name, spec in SCENARIO.items():
                if name.startswith(f"step[{step.index}].") and name.split(".")[1] in step.fields:
                    checks.append((_exact(step.fields[name.split(".")[1]]), spec, name))
    elif kind == "pharmacy":
        request(result)
    else:
        for entry in result.drugs.values():
            for field, (lo, hi) in LIMIT_BOUNDS.items():
                for i, value in enumerate(vars(entry.limits[field]).values()):
                    checks.append((value, num(lo, hi), f"limits.{field}[{i}]"))
            for c in entry.concentrations_per_ml:
                checks.append((c, LIBRARY["drug[0].concentrations_per_ml[0]"],
                               "concentrations_per_ml"))
    for value, spec, where in checks:
        problem = _check(value, spec, where)
        if problem:
            return problem
    return None


def _exact(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return Fraction(repr(value))
    return value


KINDS = ("scenario", "pharmacy", "library", "config")


def main(n_per_kind: int = 325) -> int:
    """Run the same generated inputs against whatever `pca` is importable; print a tally."""
    from hypothesis import HealthCheck, given, settings

    tally: dict[str, dict[str, int]] = {k: {} for k in KINDS}
    examples: dict[str, list[str]] = {"traceback": [], "silent": []}
    with tempfile.TemporaryDirectory() as tmp:
        @settings(max_examples=n_per_kind * len(KINDS), derandomize=True, deadline=None,
                  database=None, suppress_health_check=list(HealthCheck))
        @given(st.sampled_from(KINDS).flatmap(cases))
        def run(case: Case) -> None:
            verdict = judge(case, Path(tmp))
            head = verdict.split(":")[0]
            tally[case.kind][head] = tally[case.kind].get(head, 0) + 1
            if head in examples and len(examples[head]) < 400:
                examples[head].append(f"{case.kind}: {case.what}: {verdict}")

        run()
    total = sum(sum(t.values()) for t in tally.values())
    print(f"{total} inputs")
    for kind, counts in tally.items():
        print(f"  {kind:9} {dict(sorted(counts.items()))}")
    for head, lines in examples.items():
        print(f"{head}: {len(lines)} (first 12)")
        for line in lines[:12]:
            print("   ", line)
    return 0


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:])))
