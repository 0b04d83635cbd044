"""The event log on SQLite: append-only, hash-chained, sealed, durable on every flush (SR-7).

Every connection runs in WAL mode with `synchronous=FULL`, so a committed
event survives power loss. Each row stores SHA-256(previous hash + canonical
JSON of the row), triggers refuse UPDATE and DELETE, and `seq` is never
reused. At the end of every epoch of pump time (and at a clean shutdown) the
last event is sealed with an HMAC under that epoch's forward-secure key
(pca.store.seal), with a start-up checkpoint (pca.store.resume); the tail is
also kept in an anchor file outside the database. This module owns every SQL
statement that writes the log.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from pca.controller.ports import Event, LogWriteError, StoredEvent
from pca.controller.recovery import Recovered
from pca.store.resume import REPLAY_WINDOW_NS, ResumeFold, dumps, usable
from pca.store.rows import (
    GENESIS,
    NS_PER_S,
    DamagedRow,
    canonical,
    chain_hash,
    load_data,
    row_event,
    row_record,
    wall_iso,
)
from pca.store.seal import (
    EPOCH_NS,
    Anchor,
    SealKey,
    SealKeyError,
    anchor_path,
    format_verify_key,
    key_path,
    seal_mac,
    sim_verify_key_path,
)
from pca.store.walk import (
    SEAL_KEYS,
    Walker,
    creds_digest,
    episodes_digest,
    hash_id,
    schema_digest,
    seal_message,
)

__all__ = ["GENESIS", "NS_PER_S", "DamagedRow", "LogOpenError", "SqliteEventLog", "canonical",
           "chain_hash", "connect", "export_rows", "parse_wall_ns", "row_record", "wall_iso"]

SCHEMA_VERSION = 3
EVENT_COLUMNS = "seq, t_s, pump_ns, wall_ns, wall, type, actor, data, prev_hash, hash"
SEAL_COLUMNS = ("n, seq, epoch, pump_ns, wall_ns, sealed_wall_ns, hash, creds, episodes, "
                "schema, checkpoint, prev_mac, mac")


class LogOpenError(RuntimeError):
    """The database cannot be opened or is not a pca event log."""


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


def connect(path: str | Path) -> sqlite_utils.Database:
    """A connection with the durability every pca connection must have."""
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _append_only(db: sqlite_utils.Database, table: str) -> None:
    for op in ("UPDATE", "DELETE"):
        db.execute(f"""
            CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END""")


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


def _v2_to_v3(db: sqlite_utils.Database) -> None:
    """v3: seals (forward-secure HMACs over the chain, credentials, episodes and schema,
    with a start-up checkpoint) and append-only episodes."""
    db.table("seals").create(
        {"n": int, "seq": int, "epoch": int, "pump_ns": int, "wall_ns": int,
         "sealed_wall_ns": int, "hash": str, "creds": str, "episodes": str, "schema": str,
         "checkpoint": str, "prev_mac": str, "mac": str},
        pk="n", strict=True,
        not_null=["seq", "epoch", "pump_ns", "wall_ns", "sealed_wall_ns", "hash", "creds",
                  "episodes", "schema", "checkpoint", "prev_mac", "mac"])
    _append_only(db, "seals")
    _append_only(db, "episodes")


MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3}


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


def schema_rows(conn: Any) -> list[tuple[str, str, str]]:
    return [(str(t), str(n), str(q)) for t, n, q in conn.execute(
        "SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name")]


_EXPECTED: list[tuple[str, str, str]] | None = None


def expected_schema() -> list[tuple[str, str, str]]:
    """What a log made by this software holds in sqlite_master (built once, in memory)."""
    global _EXPECTED
    if _EXPECTED is None:
        db = sqlite_utils.Database(sqlite3.connect(":memory:"))
        _create_schema(db)
        _EXPECTED = schema_rows(db.conn)
        db.close()
    return _EXPECTED


@dataclass
class Tail:
    """What the start-up check found and where start-up replay begins."""

    base_seq: int
    base: dict[str, Any] | None  # the checkpoint at base_seq
    fold: ResumeFold
    problems: list[str]


class SqliteEventLog:
    """Implements the EventLog and Credentials ports on one SQLite file.

    `provision_keys` (simulator and scenario logs only) makes a sealing key for a new log
    and keeps its verification key next to it; a pump's key comes from `pca log setup-keys`.
    """

    def __init__(self, path: str | Path, *, provision_keys: bool = False,
                 anchor_paths: list[Path] | None = None) -> None:
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
        self._ident = self._file_ident()
        self._pending: list[Event] = []
        self.problems: list[str] = []  # what the start-up check found (empty: all well)
        self.anchor = Anchor(anchor_paths or [anchor_path(self.path)])
        self.keys: SealKey | None = None
        self.sealing_problem: str | None = None
        try:
            self._open_keys(provision_keys)
            self._open_tail()
            if _meta(self.db.conn, "anchored") != "1":
                if self.anchor.read() is None:
                    self.anchor.write(self._last_seq, self._last_hash, self._sealed_seq,
                                      self._last_mac)
                with self.db.atomic():
                    self.db.execute("INSERT OR REPLACE INTO meta VALUES ('anchored', '1')")
        except OSError as err:
            raise LogOpenError(f"cannot write the anchor of {self.path}: {err}") from None
        except sqlite3.Error as err:
            raise LogOpenError(f"cannot read the event log {self.path}: {err}") from None

    # ---- opening ------------------------------------------------------------------------
    def _open_keys(self, provision: bool) -> None:
        kpath = key_path(self.path)
        if kpath.exists() or kpath.with_name(kpath.name + ".new").exists():
            try:
                self.keys = SealKey.load(kpath)
            except SealKeyError as err:
                self.sealing_problem = str(err)
        elif provision:
            empty = self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
            if empty:
                self.keys, seed = SealKey.provision(kpath)
                vpath = sim_verify_key_path(self.path)
                vpath.write_text(format_verify_key(seed) + "\n", encoding="utf-8")
            else:
                self.sealing_problem = f"{kpath}: no sealing key for this log"
        else:
            self.sealing_problem = f"{kpath}: no sealing key (run `pca log setup-keys`)"

    def _file_ident(self) -> tuple[int, int]:
        st = os.stat(self.path)
        return st.st_dev, st.st_ino

    def _open_tail(self) -> None:
        last = self.db.execute("SELECT seq, hash, pump_ns, wall_ns FROM events ORDER BY seq "
                               "DESC LIMIT 1").fetchone()
        self._last_times = (int(last[2]), int(last[3])) if last else (0, 0)
        self._last_seq: int = int(last[0]) if last else 0
        self._last_hash: str = str(last[1]) if last else GENESIS
        seal = self.db.execute(f"SELECT {SEAL_COLUMNS} FROM seals ORDER BY n DESC "
                               "LIMIT 1").fetchone()
        self._seal_n = int(seal[0]) if seal else 0
        self._last_mac = str(seal[12]) if seal else ""
        self._sealed_seq = int(seal[1]) if seal else 0
        self._epoch: int | None = int(seal[2]) if seal else None
        self._episodes = [(int(e), int(s), str(w)) for e, s, w in self.db.execute(
            "SELECT episode, first_seq, started_wall FROM episodes ORDER BY episode")]
        tail = self.check_tail(int(last[2]) if last else 0)
        self._tail_base = tail.base_seq
        self._fold = tail.fold
        self.problems = tail.problems
        if last and self._epoch is None:
            self._epoch = int(last[2]) // EPOCH_NS
        elif last:
            self._epoch = max(self._epoch or 0, int(last[2]) // EPOCH_NS)

    def _checkpoint_seal(self, last_pump_ns: int) -> dict[str, Any] | None:
        row = self.db.execute(f"SELECT {SEAL_COLUMNS} FROM seals WHERE pump_ns <= ? "
                              "ORDER BY n DESC LIMIT 1",
                              [last_pump_ns - REPLAY_WINDOW_NS]).fetchone()
        if row is None or not usable(str(row[10])):
            return None  # none old enough, or made by another version of the fold
        return dict(zip(SEAL_KEYS, row, strict=True))

    def check_tail(self, last_pump_ns: int) -> Tail:
        """The start-up check, from the last checkpoint old enough to cover every window:
        the chain, the rows and the seals after it, the anchor, the schema and the tables
        derived from the events. Linear in the tail, not in the log."""
        problems: list[str] = []
        base = self._checkpoint_seal(last_pump_ns) if self._last_seq else None
        checkpoint = None
        if base is not None:
            try:
                checkpoint = json.loads(base["checkpoint"])
                fold = ResumeFold(checkpoint)
            except (ValueError, KeyError, TypeError, IndexError) as err:
                problems.append(f"seal {base['n']}: its checkpoint cannot be read ({err!r})")
                base, checkpoint = None, None
        if base is None:
            walker = Walker()
        else:
            row = self.db.execute("SELECT hash FROM events WHERE seq = ?",
                                  [base["seq"]]).fetchone()
            if row is None or row[0] != base["hash"]:
                problems.append(f"seq {base['seq']}: the row a seal covers was changed")
            walker = Walker(start_seq=int(base["seq"]), prev_hash=str(base["hash"]), fold=fold,
                            episodes=[e for e in self._episodes if e[1] <= int(base["seq"])],
                            prev_mac=str(base["mac"]), epoch=int(base["pump_ns"]) // EPOCH_NS,
                            last_seals={int(base["epoch"])})
        start = walker.start_seq
        seals = self.db.execute(f"SELECT {SEAL_COLUMNS} FROM seals WHERE seq > ? ORDER BY n",
                                [start])
        pending_seal = seals.fetchone()
        for row in self.db.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? "
                                   "ORDER BY seq", [start]):
            walker.row(row)
            while pending_seal is not None and pending_seal[1] <= row[0]:
                walker.seal(dict(zip(SEAL_KEYS, pending_seal, strict=True)))
                pending_seal = seals.fetchone()
        problems += [f"seq {p.seq}: {p.text}" if p.seq else p.text for p in walker.problems]
        problems += check_outside(self.db.conn, self.path, walker, self.anchor,
                                  self._last_seq, self._last_hash, self._episodes)
        return Tail(start, checkpoint, walker.fold, problems)

    # ---- start-up replay ----------------------------------------------------------------
    def resume(self) -> tuple[Recovered | None, Iterator[StoredEvent]]:
        """The recovery fold at the last checkpoint old enough to cover every window, and
        the events to replay after it (first the older events the panel must see again,
        marked `context`). Start-up reads the tail, not the whole log."""
        last = self.db.execute("SELECT pump_ns FROM events ORDER BY seq DESC LIMIT 1"
                               ).fetchone()
        base = self._checkpoint_seal(int(last[0])) if last else None
        if base is None:
            return None, self.replay()
        checkpoint = json.loads(base["checkpoint"])
        fold = ResumeFold(checkpoint)
        return fold.recovered(), self._replay_from(int(base["seq"]), fold.context_seqs())

    def _replay_from(self, after_seq: int, context: list[int]) -> Iterator[StoredEvent]:
        for seq in context:
            row = self.db.execute("SELECT seq, t_s, pump_ns, wall_ns, type, actor, data "
                                  "FROM events WHERE seq = ?", [seq]).fetchone()
            if row is not None:
                stored = _stored(row)
                yield StoredEvent(stored.seq, stored.event, context=True)
        yield from self.replay(after_seq)

    def replay(self, after_seq: int = 0) -> Iterator[StoredEvent]:
        """Every event after `after_seq`; a damaged row comes back as type `unreadable`
        (the start-up check names it and the pump stays in log_failure)."""
        for row in self.db.execute(
                "SELECT seq, t_s, pump_ns, wall_ns, type, actor, data FROM events "
                "WHERE seq > ? ORDER BY seq", [after_seq]):
            yield _stored(row)

    # ---- EventLog port ------------------------------------------------------------------
    def append(self, event: Event) -> None:
        self._pending.append(event)

    def check_storage(self) -> None:
        """The open database must still be the file at its path, writable (the watchdog
        runs this on each write and once a second). Raises LogWriteError."""
        problem = storage_problem(self.path, self._ident)
        if problem is not None:
            raise LogWriteError(f"event log {self.path}: {problem}")

    def flush(self) -> None:
        if not self._pending:
            return
        self.check_storage()
        rows: list[dict[str, Any]] = []
        seals: list[dict[str, Any]] = []
        seq, prev = self._last_seq, self._last_hash
        saved = (self._fold.checkpoint(), self._epoch, self._seal_n, self._last_mac,
                 list(self._episodes))
        epoch = self._epoch
        last_times = self._last_times
        try:
            for event in self._pending:
                ev_epoch = event.pump_ns // EPOCH_NS
                if epoch is None:
                    epoch = ev_epoch
                if ev_epoch > epoch:
                    if seq > 0:
                        seals.append(self._seal(seq, prev, last_times, ev_epoch - 1,
                                                event.wall_ns))
                    epoch = ev_epoch
                seq += 1
                record = row_record(seq, event)
                digest_ = chain_hash(prev, record)
                wall = wall_iso(event.wall_ns)
                rows.append({"seq": seq, "t_s": event.t_s, "pump_ns": event.pump_ns,
                             "wall_ns": event.wall_ns, "wall": wall, "type": event.type,
                             "actor": event.actor, "data": canonical(record["fields"]),
                             "prev_hash": prev, "hash": digest_})
                self._fold.feed(StoredEvent(seq, event))
                self._fold.problems.clear()
                if event.type == "new_patient":
                    self._episodes.append((len(self._episodes) + 1, seq, wall))
                elif seq == 1:
                    self._episodes.append((1, 1, wall))
                prev = digest_
                last_times = (event.pump_ns, event.wall_ns)
            if epoch is not None and any(e.type == "shutdown" for e in self._pending):
                seals.append(self._seal(seq, prev, last_times, epoch, last_times[1]))
            self._write(rows, seals)
        except (sqlite3.Error, OSError, ValueError) as err:
            # Keep the events: the next flush tries again; nothing logged is dropped.
            fold_cp, self._epoch, self._seal_n, self._last_mac, self._episodes = saved
            self._fold = ResumeFold(fold_cp)
            raise LogWriteError(f"event log {self.path}: {err}") from None
        self._last_seq, self._last_hash, self._epoch = seq, prev, epoch
        self._last_times = last_times
        self._pending.clear()
        self._after_commit(seals)

    def tick(self, pump_ns: int, wall_ns: int) -> None:
        """Once a second from the daemon: when an epoch has ended, seal the last event
        even if nothing new was logged, and step the key forward (idle pumps too)."""
        if self._pending or self._epoch is None or self._last_seq == 0:
            return
        now_epoch = pump_ns // EPOCH_NS
        if now_epoch <= self._epoch:
            return
        self.check_storage()
        saved = (self._seal_n, self._last_mac)
        try:
            seal = self._seal(self._last_seq, self._last_hash, self._last_times,
                              now_epoch - 1, wall_ns)
            self._write([], [seal])
        except (sqlite3.Error, OSError, ValueError) as err:
            self._seal_n, self._last_mac = saved
            raise LogWriteError(f"event log {self.path}: {err}") from None
        self._epoch = now_epoch
        self._after_commit([seal])

    def _seal(self, seq: int, row_hash: str, times: tuple[int, int], epoch: int,
              sealed_wall_ns: int) -> dict[str, Any]:
        self._seal_n += 1
        seal: dict[str, Any] = {
            "n": self._seal_n, "seq": seq, "epoch": epoch, "pump_ns": times[0],
            "wall_ns": times[1], "sealed_wall_ns": sealed_wall_ns, "hash": row_hash,
            "creds": creds_digest(self.db.conn), "episodes": episodes_digest(self._episodes),
            "schema": schema_digest(schema_rows(self.db.conn)),
            "checkpoint": dumps(self._fold.checkpoint()), "prev_mac": self._last_mac,
            "mac": ""}
        if self.keys is not None and self.keys.epoch <= epoch:
            from pca.store.seal import evolve

            seal["mac"] = seal_mac(evolve(self.keys.key, epoch - self.keys.epoch),
                                   seal_message(seal))
        self._last_mac = seal["mac"]
        return seal

    def _after_commit(self, seals: list[dict[str, Any]]) -> None:
        """Anchor the new tail outside the file, then forget the old key."""
        try:
            if seals:
                self._sealed_seq = int(seals[-1]["seq"])
            self.anchor.write(self._last_seq, self._last_hash, self._sealed_seq,
                              self._last_mac)
            if self.keys is not None and self._epoch is not None:
                self.keys.advance(self._epoch)
        except (OSError, ValueError) as err:
            raise LogWriteError(f"event log {self.path}: the anchor or sealing key cannot be "
                                f"written: {err}") from None

    def _write(self, rows: list[dict[str, Any]], seals: list[dict[str, Any]]) -> None:
        with self.db.atomic():
            if rows:
                self.db.table("events").insert_all(rows)
            for row in rows:
                if row["type"] == "new_patient":
                    self.db.execute("INSERT INTO episodes (episode, first_seq, started_wall) "
                                    "SELECT COALESCE(MAX(episode), 0) + 1, ?, ? FROM episodes",
                                    [row["seq"], row["wall"]])
                elif row["seq"] == 1:
                    self.db.execute("INSERT INTO episodes VALUES (1, 1, ?)", [row["wall"]])
            if seals:
                self.db.table("seals").insert_all(seals)
            if rows:
                self.db.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'",
                                [str(rows[-1]["seq"])])
                self.db.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'",
                                [rows[-1]["hash"]])

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


def _stored(row: tuple[Any, ...]) -> StoredEvent:
    seq, t_s, pump_ns, wall_ns, type_, actor, data = row
    try:
        return StoredEvent(int(seq), row_event((t_s, pump_ns, wall_ns, type_, actor, data)))
    except (DamagedRow, TypeError, ValueError, OverflowError) as err:
        when = pump_ns if isinstance(pump_ns, int) else 0
        wall = wall_ns if isinstance(wall_ns, int) else 0
        return StoredEvent(int(seq), Event("unreadable", "system", when / NS_PER_S, when, wall,
                                           {"problem": str(err)}))


def storage_problem(path: Path, ident: tuple[int, int]) -> str | None:
    """Why the file at `path` is no longer the open log `ident` (dev, inode), or None."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "the database file was deleted or moved away"
    except OSError as err:
        return f"the database file cannot be checked ({err.strerror})"
    if (st.st_dev, st.st_ino) != ident:
        return "the database file was replaced (another file is at its path)"
    if st.st_nlink == 0:
        return "the database file was deleted"
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "the file system holding the database is read-only"
    except OSError as err:
        return f"the database file system cannot be checked ({err.strerror})"
    if os.geteuid() != 0 and not os.access(path, os.W_OK):
        return "the database file is read-only"
    return None


def check_outside(conn: Any, path: Path, walker: Walker, anchor: Anchor, last_seq: int,
                  last_hash: str, episodes: list[tuple[int, int, str]],
                  notes: list[str] | None = None) -> list[str]:
    """What lies outside the rows: the anchor, the schema, the derived episodes, the head
    in meta and the credentials against the PIN changes logged. A missing anchor is a
    problem on the pump, a note (`notes`) for a copy being reviewed."""
    problems: list[str] = []
    record = anchor.read()
    anchored = _meta(conn, "anchored") == "1"
    if record is None:
        if anchored or anchor.exists():
            text = (f"the anchor {anchor.paths[0]} is missing or unreadable: a cut tail or a "
                    "replaced file cannot be told from the anchor")
            (problems if notes is None else notes).append(text)
    else:
        if record.head_seq > last_seq:
            problems.append(f"deleted: the log ends at seq {last_seq} but its anchor says seq "
                            f"{record.head_seq} was written: committed events were lost (a "
                            "cut WAL or a restored copy) or the file was replaced")
        elif record.head_seq > 0:
            row = conn.execute("SELECT hash FROM events WHERE seq = ?",
                               [record.head_seq]).fetchone()
            if row is None or row[0] != record.head_hash:
                problems.append(f"seq {record.head_seq} is not the row the anchor recorded: "
                                "the database was replaced or rewritten")
    if schema_rows(conn) != expected_schema():
        problems.append("the schema (tables, indexes, triggers) is not this software's: "
                        "triggers were dropped or objects added")
    derived = walker.episodes
    if derived != episodes:
        problems.append("the episodes table does not match the new_patient events")
    head = _meta(conn, "head_seq")
    if head is not None and int(head) > last_seq:
        problems.append(f"deleted: the log ends at seq {last_seq} but its head says {head}")
    elif head is not None and int(head) == last_seq and last_seq and \
            _meta(conn, "head_hash") != last_hash:
        problems.append(f"seq {last_seq}: edited: the last row does not match the log head")
    for role, pin_hash in conn.execute("SELECT role, pin_hash FROM credentials"):
        logged = walker.pin_ids.get(str(role))
        if logged is not None and logged[1] is not None and logged[1] != hash_id(pin_hash):
            problems.append(f"credentials: the stored {role} PIN hash is not the one logged "
                            f"at seq {logged[0]} (changed outside the pump and not yet seen by "
                            "it, or tampered)")
    seal = walker.last_seal
    if seal is not None and seal["creds"] != creds_digest(conn):
        changed_after = [r for r, (seq, _h) in walker.pin_ids.items() if seq > seal["seq"]]
        if not changed_after:
            problems.append(f"credentials changed after seal {seal['n']} with no PIN change "
                            "logged since")
    return problems


def _meta(conn: Any, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def export_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every event as its contract JSON object (seq, t_s, wall, type, actor, fields)."""
    db = connect(path)
    try:
        for seq, t_s, wall, type_, actor, data in db.execute(
                "SELECT seq, t_s, wall, type, actor, data FROM events ORDER BY seq"):
            out: dict[str, Any] = {"seq": seq, "t_s": round(t_s, 6), "wall": wall,
                                   "type": type_, "actor": actor}
            try:
                out.update(load_data(data))
            except DamagedRow as err:
                out["unreadable"] = str(err)
            yield out
    finally:
        db.close()


def database_exists(path: str | Path) -> bool:
    return os.path.exists(path) and os.path.getsize(path) > 0
