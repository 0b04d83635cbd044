"""`pca rx`: pharmacy files — prescriptions and drug libraries — checked and handed to the pump.

    pca rx check FILE            validate a prescription, print it in mL and in the drug unit
    pca rx load FILE             validate, then place it where the running pump picks it up
    pca rx seal-library FILE     write the checksum (and --version) into a reviewed library
    pca rx check-library FILE    verify a library's checksum and content
    pca rx load-library FILE     verify, then place it for an admin to install on the keypad

An invalid file is reported with file, field and value, exits 2 and changes
nothing. A placed file changes nothing either until a clinician (prescription)
or an admin (library) confirms it on the pump's keypad with a PIN. `RxWatcher`
is the pump side: the daemon polls the spool and any USB directory with it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

from pca.controller.inputs import PendingLibrary, PendingPrescription
from pca.controller.profile import PumpProfile
from pca.therapy import bounds
from pca.therapy.drugs import (
    DrugLibrary,
    LibraryError,
    default_library,
    load_pharmacy_library,
    seal_library_text,
)
from pca.therapy.prescription import (
    Prescription,
    PrescriptionFormatError,
    RxRequest,
    parse_request,
    validate,
)
from pca.therapy.strict import Table, decode, key, parse_toml
from pca.therapy.units import show

DEFAULT_SPOOL = Path("/var/lib/pca/rx-pending")
RX_SUFFIX = ".pca-rx.toml"
LIBRARY_SUFFIX = ".pca-library.toml"
TAKEN_SUFFIX = ".taken"
RX_TOP_KEYS = {"prescription", "rx_id", "prepared_by", "note", "monitor"}


class RxFileError(ValueError):
    """The file cannot be used; the message names file, field and value."""


# ---- reading and checking -----------------------------------------------------------------
@dataclass(frozen=True)
class RxFile:
    source: str
    table: dict[str, Any]  # the [prescription] table as written
    rx_id: str


def parse_rx_text(text: str | bytes, source: str) -> RxFile:
    """The shape of a prescription file, strictly (size, UTF-8, types, physical bounds,
    every field written out); the drug's limits are checked by `check`."""
    data = parse_toml(text, source, max_bytes=bounds.RX_BYTES_MAX, error=RxFileError)
    unknown = sorted(set(data) - RX_TOP_KEYS)
    if unknown:
        raise RxFileError(f"{source}: unknown top-level key(s) {', '.join(map(key, unknown))} "
                          f"(a prescription file has {', '.join(sorted(RX_TOP_KEYS))})")
    top = Table(data, source, RxFileError)
    rx_id = top.text("rx_id", default="", max_chars=100, allow_empty=True)
    top.text("prepared_by", default="", max_chars=200, allow_empty=True)
    top.text("note", default="", max_chars=2000, allow_empty=True)
    table = data.get("prescription")
    if not isinstance(table, dict):
        raise RxFileError(f"{source}: missing [prescription] table")
    if "monitor" in table:
        raise RxFileError(f"{source}: [prescription]: monitor settings go in their own "
                          "[monitor] table")
    if "monitor" in data:  # SR-13: activated with the prescription
        table = {**table, "monitor": data["monitor"]}
    try:
        parse_request(table, f"{source}: [prescription]", pharmacy=True)
    except PrescriptionFormatError as err:
        raise RxFileError(str(err)) from None
    return RxFile(source, table, rx_id)


def read_rx_file(path: Path) -> RxFile:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise RxFileError(f"{path}: cannot read: {err.strerror or err}") from None
    return parse_rx_text(data, str(path))


@dataclass(frozen=True)
class Checked:
    request: RxRequest
    prescription: Prescription
    soft: tuple[str, ...]


def check(rx: RxFile, library: DrugLibrary, bolus_rate_ml_h: Fraction, *,
          steps_per_ml: Fraction = bounds.REFERENCE_STEPS_PER_ML) -> Checked:
    """SR-8 exactly as the pump will check it; soft-limit breaches are allowed here (the
    clinician overrides them on the keypad) and returned."""
    try:
        req = parse_request(rx.table, f"{rx.source}: [prescription]", pharmacy=True)
    except PrescriptionFormatError as err:
        raise RxFileError(str(err)) from None
    verdict = validate(req, library, bolus_rate_ml_h=bolus_rate_ml_h, confirm_soft=True,
                       steps_per_ml=steps_per_ml)
    if verdict.prescription is None:
        raise RxFileError("\n".join(f"{rx.source}: [prescription] {e}" for e in verdict.errors))
    return Checked(req, verdict.prescription, verdict.soft)


def describe(checked: Checked) -> list[str]:
    """The prescription with every dose in the drug unit and in mL, side by side."""
    rx = checked.prescription
    req = checked.request
    unit = rx.drug_unit
    conc = req.concentration_per_ml

    def pair(amount: Fraction, ml: Fraction) -> tuple[str, str]:
        return show(ml * conc), show(ml)

    route = "" if req.route == "iv" else f", route {req.route}"
    out = [f"drug {req.drug}, {show(conc)} {unit}/mL{route} (doses entered in "
           f"{'mL' if req.dose_unit == 'ml' else unit})",
           f"{'':22}{unit:>10}{'mL':>10}"]
    rows: list[tuple[str, Fraction, Fraction | None]] = [
        ("pca_dose", req.pca_dose, rx.pca_dose_ml),
        ("basal_rate_per_h", req.basal_rate_per_h, rx.basal_ml_h),
        (f"dose_limit per {req.dose_limit_window_h} h", req.dose_limit or Fraction(0),
         rx.dose_limit_ml),
        ("loading_dose", req.loading_dose, rx.loading_dose_ml),
        ("clinician_bolus_max", req.clinician_bolus_max, rx.clinician_bolus_max_ml),
    ]
    if req.has_pib:  # SR-12
        rows.append(("pib_dose", req.pib_dose, rx.pib_dose_ml))
    for label, amount, ml in rows:
        if ml is None:
            out.append(f"{label:<22}{'no limit':>10}")
            continue
        a, b = pair(amount, ml)
        out.append(f"{label:<22}{a:>10}{b:>10}")
    out.append(f"{'lockout_min':<22}{show(req.lockout_min):>10}")
    out.append(f"{'max_pca_per_h':<22}"
               f"{'no limit' if req.max_pca_per_h is None else str(req.max_pca_per_h):>10}")
    if req.has_pib:
        out.append(f"PIB (SR-12): every {req.pib_interval_min} min, the first {req.first_min} min "
                   "after start" + ("; each PCA start pushes the next" if req.pib_reset_on_pca
                                    else ""))
    monitor = req.monitor
    if monitor is not None:
        watched = ", ".join(f"{name} {value}" for name, value in monitor.limits().items())
        out.append(f"monitor (SR-13): {watched}; delay_s {monitor.delay_s}, stale_s "
                   f"{monitor.stale_s}, {'required' if monitor.required else 'optional'}")
    return out


def _library(path: str | None) -> DrugLibrary:
    if path is None:
        return default_library()
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise RxFileError(f"--library {path}: cannot read: {err.strerror}") from None
    try:
        return load_pharmacy_library(data, path)
    except LibraryError as err:
        raise RxFileError(str(err)) from None


# ---- placing --------------------------------------------------------------------------------
def place(source: Path, spool: Path, suffix: str) -> Path:
    """Copy the file into the spool atomically (the pump never sees half a file)."""
    if not spool.is_dir():
        # Never made here: a typo must not leave folders behind.
        raise RxFileError(f"--spool {spool}: no such folder; name the folder the pump watches "
                          "(rx_spool in pca.toml; rx-pending for pca run --sim)")
    try:
        data = source.read_bytes()
        name = source.name
        for known in (RX_SUFFIX, LIBRARY_SUFFIX, ".toml"):
            if name.endswith(known):
                name = name[: -len(known)]
                break
        target = spool / f"{name}{suffix}"
        tmp = spool / f".{name}.{os.getpid()}.tmp"
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as err:
        raise OSError(f"cannot place the file in {spool}: {err.strerror or err}") from None
    return target


# ---- the pump side: watching the spool and USB directories ----------------------------------
class RxWatcher:
    """Polls directories for `*.pca-rx.toml` and `*.pca-library.toml` and turns each new
    file into a PendingPrescription / PendingLibrary for the pump's queue.

    A file is offered once per content: in a `consume` directory (the spool) it is
    renamed `*.taken` after reading; elsewhere (a read-only USB stick) its content
    hash is remembered. A file modified less than `settle_s` ago is left for the
    next poll, so a copy in progress is not read half-written.
    """

    def __init__(self, dirs: Iterable[Path], *, consume: Iterable[Path] = (),
                 settle_s: float = 1.0) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.consume = {Path(d).resolve() for d in consume}
        self.settle_s = settle_s
        self._seen: set[tuple[str, str]] = set()

    def poll(self, now_s: float | None = None) -> list[PendingPrescription | PendingLibrary]:
        now_s = time.time() if now_s is None else now_s
        found: list[PendingPrescription | PendingLibrary] = []
        for folder in self.dirs:
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                continue  # no stick inserted, or the spool not made yet
            for name in names:
                if not name.endswith((RX_SUFFIX, LIBRARY_SUFFIX)) or name.startswith("."):
                    continue
                item = self._take(folder / name, now_s)
                if item is not None:
                    found.append(item)
        return found

    def _take(self, path: Path, now_s: float) -> PendingPrescription | PendingLibrary | None:
        try:
            if now_s - path.stat().st_mtime < self.settle_s:
                return None
            data = path.read_bytes()
        except OSError:
            return None
        key = (str(path), hashlib.sha256(data).hexdigest())
        if key in self._seen:
            return None
        self._seen.add(key)
        if path.parent.resolve() in self.consume:
            with contextlib.suppress(OSError):  # if it stays, its content is remembered
                os.replace(path, path.with_name(path.name + TAKEN_SUFFIX))
        source = str(path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return PendingPrescription({}, source, problem="not UTF-8 text")
        if path.name.endswith(LIBRARY_SUFFIX):
            return PendingLibrary(text, source)
        try:
            rx = parse_rx_text(text, source)
        except RxFileError as err:
            return PendingPrescription({}, source, problem=str(err).removeprefix(
                f"{source}: "))
        return PendingPrescription(rx.table, source, rx.rx_id)


# ---- the command ----------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    from pca.app.errors import OneLineParser

    top = OneLineParser(prog="pca rx", description="pharmacy files for the pump")
    sub = top.add_subparsers(dest="command", required=True)
    for name, text in (("check", "validate a prescription file"),
                       ("load", "validate a prescription file and hand it to the pump")):
        p = sub.add_parser(name, help=text)
        p.add_argument("file")
        p.add_argument("--library", help="pharmacy drug library (default: the built-in one)")
        p.add_argument("--bolus-rate-ml-h", type=Fraction, default=PumpProfile().bolus_rate_ml_h,
                       help="the pump's bolus rate, for the lockout check (default %(default)s)")
        p.add_argument("--steps-per-ml", type=Fraction, default=PumpProfile().steps_per_ml,
                       help="the pump's calibration, for the least rate and dose it makes "
                            "(default %(default)s)")
        if name == "load":
            p.add_argument("--spool", default=str(DEFAULT_SPOOL),
                           help=f"where the running pump looks (default {DEFAULT_SPOOL})")
    seal = sub.add_parser("seal-library", help="write the checksum into a reviewed library")
    seal.add_argument("file")
    seal.add_argument("--version", help="set the library version too")
    seal.add_argument("--out", help="write here instead of in place")
    verify = sub.add_parser("check-library", help="verify a library's checksum and content")
    verify.add_argument("file")
    place_lib = sub.add_parser("load-library", help="verify a library and hand it to the pump "
                                                    "(an admin installs it on the keypad)")
    place_lib.add_argument("file")
    place_lib.add_argument("--spool", default=str(DEFAULT_SPOOL))
    return top


def _prescription(args: argparse.Namespace, out: TextIO) -> int:
    rx = read_rx_file(Path(args.file))
    spm = Fraction(args.steps_per_ml)
    if not bounds.STEPS_PER_ML_MIN <= spm <= bounds.STEPS_PER_ML_MAX:
        raise RxFileError(f"--steps-per-ml {args.steps_per_ml} must be "
                          f"{bounds.STEPS_PER_ML_MIN} to {bounds.STEPS_PER_ML_MAX}")
    checked = check(rx, _library(args.library), Fraction(args.bolus_rate_ml_h),
                    steps_per_ml=spm)
    print(f"{args.file}: valid" + (f" (rx_id {rx.rx_id})" if rx.rx_id else ""), file=out)
    for line in describe(checked):
        print("  " + line, file=out)
    for breach in checked.soft:
        print(f"  soft limit: {breach}: the clinician must override it on the pump", file=out)
    if args.command == "load":
        target = place(Path(args.file), Path(args.spool), RX_SUFFIX)
        print(f"placed as {target}: it becomes active only when a clinician confirms it on "
              "the pump's keypad with a PIN", file=out)
    return 0


def _read_library(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise RxFileError(f"{path}: cannot read: {err.strerror or err}") from None
    return decode(data, path, max_bytes=bounds.LIBRARY_BYTES_MAX, error=RxFileError)


def _library_command(args: argparse.Namespace, out: TextIO) -> int:
    text = _read_library(args.file)
    try:
        if args.command == "seal-library":
            sealed = seal_library_text(text, args.version)
            library = load_pharmacy_library(sealed, args.file)
            target = Path(args.out or args.file)
            target.write_text(sealed, "utf-8")
            print(f"{target}: sealed, version {library.version}, {library.checksum}", file=out)
            return 0
        library = load_pharmacy_library(text, args.file)
    except LibraryError as err:
        raise RxFileError(str(err)) from None
    print(f"{args.file}: valid, version {library.version}, {library.checksum}, drugs: "
          f"{', '.join(sorted(library.drugs))}", file=out)
    if args.command == "load-library":
        target = place(Path(args.file), Path(args.spool), LIBRARY_SUFFIX)
        print(f"placed as {target}: an admin installs it on the pump's keypad", file=out)
    return 0


def run(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    args = parser().parse_args(list(argv))
    out = sys.stdout if out is None else out
    try:
        if args.command in ("check", "load"):
            return _prescription(args, out)
        return _library_command(args, out)
    except RxFileError as err:
        # Every problem of the file, on one line: the first names the file, the rest follow.
        problems = [line for line in str(err).splitlines() if line.strip()]
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" \
            if len(problems) > 1 else ""
        print(f"pca rx: {problems[0] if problems else 'invalid file'}{more}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"pca rx: {err}", file=sys.stderr)
        return 1
