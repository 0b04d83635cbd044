"""`pca log verify | setup-keys | export | tail`: what clinicians and reviewers do with a log."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pca.app.errors import CliError, check_log, check_new_file, damaged
from pca.store.eventlog import export_rows, parse_wall_ns, wall_iso
from pca.store.seal import SealKey, format_verify_key, key_path, parse_verify_key
from pca.store.verify import verify

# CSV columns: the contract fields first, then what a reviewer reads most.
CSV_COLUMNS = ["seq", "t_s", "wall", "type", "actor", "outcome", "reason", "source",
               "amount_ml", "delivered_ml", "completion", "mode", "rate_ml_h", "alarm",
               "priority", "from", "to", "steps", "ml", "drug", "dose_unit", "detail"]
# Volumes again in the active drug's unit (mg or mcg), from the prescription in force.
DRUG_COLUMNS = ["drug_unit", "amount_drug", "delivered_drug", "rate_drug_h", "ml_drug"]


def _when(text: str | None) -> str | None:
    """--since/--until as the log's own wall format, so strings compare in time order."""
    return None if text is None else wall_iso(parse_wall_ns(text))


def _selected(db: Path, since: str | None, until: str | None) -> Iterator[dict[str, Any]]:
    for row in export_rows(db):
        if since is not None and row["wall"] < since:
            continue
        if until is not None and row["wall"] >= until:
            continue
        yield row


def _write(rows: Iterator[dict[str, Any]], fmt: str, out: IO[str]) -> int:
    n = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, separators=(",", ":")) + "\n")
            n += 1
        return n
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *DRUG_COLUMNS, "other"])
    unit, per_ml = "", 0.0
    for row in rows:
        if row["type"] == "prescription_activated":
            unit, per_ml = str(row.get("drug_unit", "")), float(row["concentration_per_ml"])
        elif row["type"] == "new_patient":
            unit, per_ml = "", 0.0

        def drug(key: str, row: dict[str, Any] = row, unit: str = unit,
                 per_ml: float = per_ml) -> object:
            value = row.get(key)
            return "" if value is None or not unit else round(float(value) * per_ml, 6)

        other = {k: v for k, v in row.items() if k not in CSV_COLUMNS}
        writer.writerow([row.get(c, "") for c in CSV_COLUMNS] +
                        [unit if unit else "", drug("amount_ml"), drug("delivered_ml"),
                         drug("rate_ml_h"), drug("ml")] +
                        [json.dumps(other, separators=(",", ":")) if other else ""])
        n += 1
    return n


def _tail_line(row: dict[str, Any]) -> str:
    fields = {k: v for k, v in row.items() if k not in ("seq", "t_s", "wall", "type", "actor")}
    detail = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{row['seq']:>8} {row['wall']} {row['actor']:<9} {row['type']:<22} {detail}"


def _verify(db: Path, key_text: str | None) -> int:
    seed = None
    if key_text is not None:
        try:
            seed = parse_verify_key(key_text)
        except ValueError as err:
            raise CliError(f"--verify-key: {err}") from None
    verdict = verify(db, seed)
    if verdict.ok:
        print(f"{db}: OK, {verdict.count} events, hash chain intact")
        if verdict.keyed and verdict.last_sealed:
            print(f"  PROVEN with the verification key: nothing up to {verdict.last_sealed} "
                  "was changed, cut, reordered or replaced")
        elif verdict.keyed:
            print("  nothing is sealed yet: the key proves nothing about this log")
        elif verdict.last_sealed:
            print(f"  last seal: {verdict.last_sealed}")
        for note in verdict.notes:
            print(f"  cannot prove: {note}")
        return 0
    where = f"seq {verdict.first_bad_seq}" if verdict.first_bad_seq else "the log"
    print(f"{db}: FAILED at {where}: {verdict.problem} "
          f"({len(verdict.problems)} problem(s) in {verdict.count} events)", file=sys.stderr)
    for problem in verdict.problems[1:]:
        print(f"  also: {problem}", file=sys.stderr)
    if verdict.keyed and verdict.last_sealed:
        print(f"  the last seal that verifies: {verdict.last_sealed}", file=sys.stderr)
    for note in verdict.notes:
        print(f"  cannot prove: {note}", file=sys.stderr)
    return 1


def setup_keys(db: Path, out: IO[str]) -> int:
    """Make the sealing key next to the log; show the verification key once."""
    path = key_path(db)
    if path.exists() or path.with_name(path.name + ".new").exists():
        raise CliError(f"{path} already exists: this log is provisioned (its verification "
                       "key was shown when it was made)")
    if not db.parent.is_dir():
        raise CliError(f"--db {db}: the folder {db.parent} does not exist")
    try:
        sealer, seed = SealKey.provision(path)
    except OSError as err:
        raise CliError(f"{path}: cannot write the sealing key ({err.strerror or err})") from None
    text = format_verify_key(seed)
    out.write(f"Sealing key written to {path} (epoch 0; it steps forward every 15 min).\n"
              "VERIFICATION KEY (shown once; keep it OFF the pump, with the pump's records):\n"
              f"\n    {text}\n\n    fingerprint {sealer.seed_id}\n\n")
    import qrcode

    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(f"pca-verify-key:{text}")
    code.make(fit=True)
    code.print_ascii(out=out, invert=True)
    out.write(f"\nCheck a log with: pca log verify --db {db} --verify-key {text}\n")
    return 0


def main(args: Any) -> int:
    """Raises CliError for bad input (the CLI prints it as one line and exits 2)."""
    if args.log_command == "setup-keys":
        return setup_keys(Path(args.db), sys.stdout)
    db = check_log(args.db)
    if args.log_command == "verify":
        return _verify(db, getattr(args, "verify_key", None))
    try:
        if args.log_command == "export":
            return _export(db, args)
        rows = list(export_rows(db))
    except sqlite3.DatabaseError as err:
        raise damaged(db, err) from None
    for row in rows[-args.n:] if args.n > 0 else []:
        print(_tail_line(row))
    return 0


def _export(db: Path, args: Any) -> int:
    try:
        since, until = _when(args.since), _when(args.until)
    except ValueError as err:
        raise CliError(f"--since/--until: {err}") from None
    if args.out is None:
        _export_to(db, args, since, until, sys.stdout)
        return 0
    target = check_new_file(args.out, "--out")
    # Written beside the target and renamed at the end: a failed export leaves no half file.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as out:
            _export_to(db, args, since, until, out)
        os.replace(partial, target)
    except OSError as err:
        raise CliError(f"--out {target}: cannot write it ({err.strerror or err})") from None
    finally:
        partial.unlink(missing_ok=True)
    return 0


def _export_to(db: Path, args: Any, since: str | None, until: str | None, out: IO[str]) -> None:
    if args.format in ("fhir", "hl7"):
        from pca.app import export_formats

        export_formats.export(args.format, _selected(db, since, until), out,
                              episode_id=export_formats.log_id(db),
                              steps_per_ml=export_formats.log_steps_per_ml(db))
    else:
        _write(_selected(db, since, until), args.format, out)
