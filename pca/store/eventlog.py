"""The event log on SQLite: append-only, hash-chained, durable on every flush (SR-7).

Every connection runs in WAL mode with `synchronous=FULL`, so a committed
event survives power loss. Each row stores SHA-256(previous hash + canonical
JSON of the row), triggers refuse UPDATE and DELETE, and `seq` is never
reused. This module owns every SQL statement of the project.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from pca.controller.ports import Event, LogWriteError, StoredEvent

SCHEMA_VERSION = 2
GENESIS = "0" * 64
NS_PER_S = 1_000_000_000


class LogOpenError(RuntimeError):
    """The database cannot be opened or is not a pca event log."""


def wall_iso(wall_ns: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-03-01T08:00:00.000Z."""
    stamp = datetime.fromtimestamp(wall_ns // 1_000_000 / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def parse_wall_ns(value: object) -> int:
    """An ISO 8601 time (or a TOML datetime) as ns since the epoch; naive means UTC.
    Raises ValueError for anything else."""
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        raise ValueError(f"{value!r} is not an ISO 8601 time")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp()) * NS_PER_S + stamp.microsecond * 1000


def canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def chain_hash(prev_hash: str, record: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(record)).encode()).hexdigest()


def row_record(seq: int, event: Event) -> dict[str, Any]:
    """The part of a row the hash covers."""
    return {"seq": seq, "t_s": event.t_s, "pump_ns": event.pump_ns, "wall_ns": event.wall_ns,
            "type": event.type, "actor": event.actor, "fields": dict(event.fields)}


def connect(path: str | Path) -> sqlite_utils.Database:
    """A connection with the durability every pca connection must have."""
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _create_schema(db: sqlite_utils.Database) -> None:
    with db.atomic():
        db.table("meta").create({"key": str, "value": str}, pk="key", strict=True)
        db.table("events").create(
            {"seq": int, "t_s": float, "pump_ns": int, "wall_ns": int, "wall": str,
             "type": str, "actor": str, "data": str, "prev_hash": str, "hash": str},
            pk="seq", strict=True,
            not_null=["t_s", "pump_ns", "wall_ns", "wall", "type", "actor", "data",
                      "prev_hash", "hash"])
        db.table("events").create_index(["type"])
        db.table("credentials").create({"role": str, "pin_hash": str}, pk="role", strict=True,
                                 not_null=["pin_hash"])
        for op in ("UPDATE", "DELETE"):
            db.execute(f"""
                CREATE TRIGGER events_no_{op.lower()} BEFORE {op} ON events
                BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""")
        db.table("meta").insert({"key": "schema_version", "value": "1"})
    _migrate(db)


def _v1_to_v2(db: sqlite_utils.Database) -> None:
    """v2: episodes (a new patient starts a new episode; nothing is deleted) and the chain
    head kept in meta, so deleting the last rows is caught by `verify`."""
    db.table("episodes").create({"episode": int, "first_seq": int, "started_wall": str},
                                pk="episode", strict=True, not_null=["first_seq"])
    first = db.execute("SELECT seq, wall FROM events ORDER BY seq LIMIT 1").fetchone()
    starts = [(1, first[0], first[1])] if first else []
    for seq, wall in db.execute("SELECT seq, wall FROM events WHERE type = 'new_patient' "
                                "ORDER BY seq"):
        starts.append((len(starts) + 1, seq, wall))
    db.table("episodes").insert_all(
        [{"episode": e, "first_seq": s, "started_wall": w} for e, s, w in starts])
    head = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    db.table("meta").upsert_all([{"key": "head_seq", "value": str(head[0] if head else 0)},
                                 {"key": "head_hash", "value": head[1] if head else GENESIS}],
                                pk="key")


MIGRATIONS = {1: _v1_to_v2}


def _migrate(db: sqlite_utils.Database) -> int:
    """Bring the schema forward one version at a time, each step in one transaction."""
    while True:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version not in MIGRATIONS:
            return version
        with db.atomic():
            MIGRATIONS[version](db)
            db.table("meta").upsert({"key": "schema_version", "value": str(version + 1)},
                                    pk="key")


class SqliteEventLog:
    """Implements the EventLog and Credentials ports on one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.db = connect(self.path)
            if "events" not in self.db.table_names():
                if self.db.table_names():
                    raise LogOpenError(f"{self.path} holds other tables: not a pca event log")
                _create_schema(self.db)
            version = _migrate(self.db)
        except sqlite3.Error as err:
            raise LogOpenError(f"cannot open the event log {self.path}: {err}") from None
        if version != SCHEMA_VERSION:
            raise LogOpenError(f"{self.path}: schema version {version} is not one this "
                               f"software ({SCHEMA_VERSION}) can use: update the software")
        last = self.db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        self._last_seq: int = int(last[0]) if last else 0
        self._last_hash: str = str(last[1]) if last else GENESIS
        self._pending: list[Event] = []

    # ---- EventLog port ------------------------------------------------------------------
    def append(self, event: Event) -> None:
        self._pending.append(event)

    def flush(self) -> None:
        if not self._pending:
            return
        rows = []
        seq, prev = self._last_seq, self._last_hash
        for event in self._pending:
            seq += 1
            record = row_record(seq, event)
            digest = chain_hash(prev, record)
            rows.append({"seq": seq, "t_s": event.t_s, "pump_ns": event.pump_ns,
                         "wall_ns": event.wall_ns, "wall": wall_iso(event.wall_ns),
                         "type": event.type, "actor": event.actor,
                         "data": canonical(record["fields"]), "prev_hash": prev, "hash": digest})
            prev = digest
        try:
            self._write(rows)
        except (sqlite3.Error, OSError) as err:
            # Keep the events: the next flush tries again; nothing logged is dropped.
            raise LogWriteError(f"event log {self.path}: {err}") from None
        self._last_seq, self._last_hash = seq, prev
        self._pending.clear()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        with self.db.atomic():
            self.db.table("events").insert_all(rows)
            for row in rows:
                if row["type"] == "new_patient":
                    self.db.execute("INSERT INTO episodes (episode, first_seq, started_wall) "
                                    "SELECT COALESCE(MAX(episode), 0) + 1, ?, ? FROM episodes",
                                    [row["seq"], row["wall"]])
                elif row["seq"] == 1:
                    self.db.execute("INSERT INTO episodes VALUES (1, 1, ?)", [row["wall"]])
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'",
                            [str(rows[-1]["seq"])])
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'",
                            [rows[-1]["hash"]])

    def replay(self) -> Iterator[StoredEvent]:
        for row in self.db.execute(
                "SELECT seq, t_s, pump_ns, wall_ns, type, actor, data FROM events ORDER BY seq"):
            yield StoredEvent(row[0], Event(row[4], row[5], row[1], row[2], row[3],
                                            json.loads(row[6])))

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    # ---- Credentials port ---------------------------------------------------------------
    def get_pin_hash(self, role: str) -> str | None:
        row = self.db.execute("SELECT pin_hash FROM credentials WHERE role = ?",
                              [role]).fetchone()
        return None if row is None else str(row[0])

    def set_pin_hash(self, role: str, encoded: str) -> None:
        try:
            with self.db.atomic():
                self.db.table("credentials").upsert({"role": role, "pin_hash": encoded}, pk="role")
        except sqlite3.Error as err:
            raise LogWriteError(f"event log {self.path}: {err}") from None

    def close(self) -> None:
        self.db.close()


def export_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every event as its contract JSON object (seq, t_s, wall, type, actor, fields)."""
    db = connect(path)
    try:
        for seq, t_s, wall, type_, actor, data in db.execute(
                "SELECT seq, t_s, wall, type, actor, data FROM events ORDER BY seq"):
            out: dict[str, Any] = {"seq": seq, "t_s": round(t_s, 6), "wall": wall,
                                   "type": type_, "actor": actor}
            out.update(json.loads(data))
            yield out
    finally:
        db.close()


def database_exists(path: str | Path) -> bool:
    return os.path.exists(path) and os.path.getsize(path) > 0
