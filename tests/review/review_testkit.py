"""Helpers of the review tests: logs made by the real scenario runner, and ways to damage one.
(A plain module with a unique name, so it never clashes with other test folders' helpers.)"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from pca.app.scenario import load_scenario, run_scenario
from pca.store.eventlog import export_rows

EXAMPLES = Path(__file__).resolve().parents[2] / "pca" / "examples"
# The log fsyncs every flush (SR-7); on a disk that is most of a replay's time. These logs are
# throw-away, so they live in memory where the machine has a tmpfs.
_SHM = Path("/dev/shm")
_SCRATCH: Path | None = None


def _scratch(fallback: Path) -> Path:
    global _SCRATCH
    if _SCRATCH is None and _SHM.is_dir():
        try:
            _SCRATCH = Path(tempfile.mkdtemp(prefix="pca-review-", dir=_SHM))
            atexit.register(shutil.rmtree, _SCRATCH, True)
        except OSError:
            _SCRATCH = None
    if _SCRATCH is None:
        return fallback
    return Path(tempfile.mkdtemp(dir=_SCRATCH))


def make_log(tmp: Path, toml: str | Path, name: str = "log") -> Path:
    """Run a scenario (TOML text or file) into a new event log; returns the database path."""
    if isinstance(toml, str):
        src = tmp / f"{name}.toml"
        src.write_text(toml, encoding="utf-8")
    else:
        src = toml
    db = _scratch(tmp) / f"{name}.db"
    run_scenario(load_scenario(src), db=db)
    return db


def example_log(tmp: Path, example: str) -> Path:
    return make_log(tmp, EXAMPLES / f"{example}.toml", example)


def rows_of(db: Path) -> list[dict[str, Any]]:
    return list(export_rows(db))


def journal_totals_ml(rows: list[dict[str, Any]]) -> Counter[str]:
    """mL per source straight from the log's motor journal (independent of pca.review): whole
    steps over the calibration, as the pump counts (summing each record's rounded mL drifts
    by several steps over a long log)."""
    per_ml = next(float(r["steps_per_ml"]) for r in rows if r["type"] == "pump_initialised")
    steps: Counter[str] = Counter()
    for row in rows:
        if row["type"] == "delivery":
            steps[row["source"]] += row["steps"]
    return Counter({source: n / per_ml for source, n in steps.items()})


def copy_log(src: Path, dst: Path) -> Path:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
    return dst


def tamper(db: Path, *sql: str) -> None:
    """Edit the log behind the pump's back (the triggers that forbid it dropped first)."""
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")
    for statement in sql:
        conn.execute(statement)
    conn.commit()
    conn.close()
