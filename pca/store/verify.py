"""`pca log verify`: walk the hash chain and name the first row that breaks it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pca.controller.ports import Event
from pca.store.eventlog import GENESIS, chain_hash, row_record


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    first_bad_seq: int | None = None
    problem: str = ""


def _record_hash(prev: str, seq: int, row: tuple[Any, ...]) -> str:
    t_s, pump_ns, wall_ns, type_, actor, data = row
    event = Event(str(type_), actor, float(t_s), int(pump_ns), int(wall_ns), json.loads(data))
    return chain_hash(prev, row_record(seq, event))


def verify(path: str | Path) -> Verdict:
    """Read-only check of the whole log (opens the file without writing to it)."""
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT seq, t_s, pump_ns, wall_ns, type, actor, data, prev_hash, "
                            "hash FROM events ORDER BY seq").fetchall()
        head = dict(conn.execute("SELECT key, value FROM meta WHERE key IN "
                                 "('head_seq', 'head_hash')").fetchall())
    except sqlite3.Error as err:
        return Verdict(False, 0, None, f"cannot read the event log: {err}")
    finally:
        conn.close()
    by_hash = {r[8]: r[0] for r in rows}
    prev, expected = GENESIS, 1
    for i, (seq, *content, prev_hash, digest) in enumerate(rows):
        body = tuple(content)
        if _record_hash(prev_hash, seq, body) != digest:
            for other in range(max(1, seq - 50), seq + 51):
                if other != seq and _record_hash(prev_hash, other, body) == digest:
                    return Verdict(False, i, seq, f"reordered: this row was written as seq "
                                                  f"{other}")
            return Verdict(False, i, seq, "edited: the row does not match its hash")
        if seq != expected:
            return Verdict(False, i, seq, f"deleted: seq {expected}..{seq - 1} missing")
        if prev_hash != prev:
            if prev_hash in by_hash:
                return Verdict(False, i, seq, f"reordered: it follows seq {by_hash[prev_hash]}")
            return Verdict(False, i, seq, "bad chain: previous hash does not match")
        prev, expected = digest, seq + 1
    head_seq = int(head.get("head_seq", len(rows)))
    if head_seq > len(rows):
        return Verdict(False, len(rows), len(rows) + 1,
                       f"deleted: the log ends at seq {len(rows)} but its head says {head_seq}")
    if rows and head_seq == len(rows) and head.get("head_hash", prev) != prev:
        return Verdict(False, len(rows) - 1, len(rows), "edited: the last row does not match "
                                                         "the log head")
    return Verdict(True, len(rows))
