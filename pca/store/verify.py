"""`pca log verify`: walk the whole chain and its seals in one streaming pass.

Without the verification key it checks the chain, the seals' structure, the checkpoints,
the anchor, the schema and the derived tables, and says what it cannot prove (a root
attacker can recompute every unkeyed hash). With the key it also checks every seal's MAC
and the pump's current key, and names the last sealed time: nothing sealed before then
can have been changed, cut, reordered or replaced without a failure here.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from pca.store.eventlog import EVENT_COLUMNS, SEAL_COLUMNS, check_outside
from pca.store.rows import wall_iso
from pca.store.seal import (
    Anchor,
    SealKey,
    SealKeyError,
    anchor_path,
    key_at,
    key_path,
    seed_id,
)
from pca.store.walk import SEAL_KEYS, Walker

EPOCH_S = 900


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    first_bad_seq: int | None = None
    problem: str = ""
    problems: list[str] = field(default_factory=list)
    keyed: bool = False
    last_sealed: str = ""  # "seq N at <wall>" of the last seal that verifies
    unsealed: int = 0  # events after the last good seal
    notes: list[str] = field(default_factory=list)  # what this run could not prove


def verify(path: str | Path, verify_key: bytes | None = None,
           anchor_paths: list[Path] | None = None) -> Verdict:
    """Read-only check of the whole log in bounded memory (rows are streamed)."""
    db = Path(path)
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error as err:
        return Verdict(False, 0, None, f"cannot read the event log: {err}")
    try:
        return _verify(conn, db, verify_key, anchor_paths)
    except sqlite3.Error as err:
        return Verdict(False, 0, None, f"cannot read the event log: {err}",
                       [f"cannot read the event log: {err}"])
    finally:
        conn.close()


def _verify(conn: sqlite3.Connection, db: Path, seed: bytes | None,
            anchor_paths: list[Path] | None) -> Verdict:
    walker = Walker(seed=seed)
    has_seals = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                             "name = 'seals'").fetchone() is not None
    seals = conn.execute(f"SELECT {SEAL_COLUMNS} FROM seals ORDER BY n") if has_seals \
        else iter(())
    pending = next(seals, None)
    last_seq, last_hash = 0, ""
    for row in conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq"):
        walker.row(row)
        last_seq, last_hash = int(row[0]), str(row[9])
        while pending is not None and pending[1] <= row[0]:
            walker.seal(dict(zip(SEAL_KEYS, pending, strict=True)))
            pending = next(seals, None)
    while pending is not None:
        walker.problem(pending[1], f"seal {pending[0]} is for seq {pending[1]}, which is not "
                                   "in the log (rows cut)")
        pending = next(seals, None)
    episodes = [(int(e), int(s), str(w)) for e, s, w in conn.execute(
        "SELECT episode, first_seq, started_wall FROM episodes ORDER BY episode")]
    anchor = Anchor(anchor_paths or [anchor_path(db)])
    notes: list[str] = []
    outside = check_outside(conn, db, walker, anchor, last_seq, last_hash, episodes, notes)
    problems = [f"seq {p.seq}: {p.text}" if p.seq else p.text for p in walker.problems]
    problems += outside
    if walker.dropped:
        problems.append(f"... and {walker.dropped} more problems")
    good = walker.last_good_seal
    if seed is not None:
        problems += _check_pump_key(db, seed, walker)
    else:
        notes.append("no verification key given: the hashes and seals were checked for "
                     "consistency only; whoever had root on the pump could have rewritten "
                     "the whole log and recomputed them (give --verify-key to prove it)")
    if walker.other_version:
        notes.append(f"{walker.other_version} start-up checkpoint(s) were made by another "
                     "software version and were not recomputed (their seals still were)")
    if walker.gaps:
        spans = ", ".join(f"{_epoch_time(a + 1)}..{_epoch_time(b)}" for a, b in walker.gaps[:5])
        notes.append(f"no seal in {len(walker.gaps)} stretch(es) of pump time ({spans}): the "
                     "pump was off then, or sealed events were removed")
    unsealed = last_seq - int(good["seq"]) if good is not None else last_seq
    if unsealed:
        notes.append(f"{unsealed} event(s) after the last seal are not sealed: whoever held "
                     "the pump after them could have changed them")
    last_sealed = ""
    if good is not None:
        last_sealed = (f"seq {good['seq']} (event at {wall_iso(int(good['wall_ns']))}, sealed "
                       f"at {wall_iso(int(good['sealed_wall_ns']))})")
    first = walker.first_bad
    first_seq = first.seq if first is not None else None
    text = problems[0] if problems else ""
    if first is not None:
        text = first.text
    return Verdict(not problems, walker.count, first_seq, text, problems, seed is not None,
                   last_sealed, unsealed, notes)


def _epoch_time(epoch: int) -> str:
    hours, rest = divmod(epoch * EPOCH_S, 3600)
    return f"{hours}h{rest // 60:02d}m pump time"


def _check_pump_key(db: Path, seed: bytes, walker: Walker) -> list[str]:
    """The key still on the pump cannot be rolled back: if it is ahead of the last seal,
    sealed events were cut."""
    path = key_path(db)
    if not path.exists():
        return [f"{path}: the pump's sealing key is not next to the log: cannot tell whether "
                "sealed events were cut at the end (copy it with the log)"]
    try:
        key = SealKey.load(path)
    except SealKeyError as err:
        return [str(err)]
    if key.seed_id != seed_id(seed) or key.key != key_at(seed, key.epoch):
        return [f"{path}: the pump's sealing key is not from this verification key (another "
                "pump's log or key, or a replaced file)"]
    last = walker.last_seal
    if last is None:
        return []  # not one epoch ended yet; a removed seal shows as an unsealed epoch
    if int(last["epoch"]) < key.epoch - 1:
        return [f"the pump's key reached epoch {key.epoch} ({_epoch_time(key.epoch)}) but the "
                f"last seal is from epoch {last['epoch']}: sealed events were cut"]
    return []
