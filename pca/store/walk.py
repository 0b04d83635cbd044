"""One pass over log rows and seals, checking each against the chain, its seal and the
checkpoint fold; shared by `pca log verify` (from the first row) and the start-up check
(from the last checkpoint)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pca.controller.ports import StoredEvent
from pca.store.resume import ResumeFold, digest, dumps, usable
from pca.store.rows import GENESIS, DamagedRow, chain_hash, row_event, row_record, wall_iso
from pca.store.seal import EPOCH_NS, key_at, seal_mac

MAX_PROBLEMS = 50  # listed in full; beyond that only counted
SEAL_KEYS = ("n", "seq", "epoch", "pump_ns", "wall_ns", "sealed_wall_ns", "hash", "creds",
             "episodes", "schema", "checkpoint", "prev_mac", "mac")


def creds_digest(conn: Any) -> str:
    rows = conn.execute("SELECT role, pin_hash FROM credentials ORDER BY role").fetchall()
    return digest(json.dumps([list(r) for r in rows], separators=(",", ":")))


def episodes_digest(episodes: list[tuple[int, int, str]]) -> str:
    return digest(json.dumps([list(e) for e in episodes], separators=(",", ":")))


def schema_digest(schema: list[tuple[str, str, str]]) -> str:
    return digest(json.dumps([list(s) for s in schema], separators=(",", ":")))


def hash_id(pin_hash: str) -> str:
    """The same public fingerprint the pump logs with a PIN change (auth.PinService)."""
    return hashlib.sha256(pin_hash.encode()).hexdigest()[:12]


def seal_message(seal: dict[str, Any]) -> dict[str, Any]:
    """What a seal's MAC covers: every column but the MAC (the checkpoint by its digest)."""
    out = {k: v for k, v in seal.items() if k not in ("mac", "checkpoint")}
    out["checkpoint"] = digest(str(seal["checkpoint"]))
    out["v"] = 1
    return out


@dataclass
class Problem:
    seq: int | None
    text: str


@dataclass
class Walker:
    """Feed rows (EVENT_COLUMNS order) and, after each row, the seals made at it."""

    start_seq: int = 0
    prev_hash: str = GENESIS
    fold: ResumeFold = field(default_factory=ResumeFold)
    episodes: list[tuple[int, int, str]] = field(default_factory=list)
    prev_mac: str = ""
    epoch: int | None = None  # running max epoch of the rows so far
    seed: bytes | None = None
    last_seals: set[int] = field(default_factory=set)  # epochs of the seals at the last row
    problems: list[Problem] = field(default_factory=list)
    dropped: int = 0  # problems beyond MAX_PROBLEMS
    count: int = 0
    last_row: tuple[int, str, int, int] | None = None  # seq, hash, pump_ns, wall_ns
    last_seal: dict[str, Any] | None = None
    last_good_seal: dict[str, Any] | None = None  # MAC verified (with a seed) and consistent
    seals: int = 0
    other_version: int = 0  # checkpoints made by another version of the fold
    gaps: list[tuple[int, int]] = field(default_factory=list)  # epochs with no seal between
    pin_ids: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    _key: tuple[int, bytes] | None = None

    def __post_init__(self) -> None:
        self.expected = self.start_seq + 1
        self.prev = self.prev_hash

    def problem(self, seq: int | None, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(seq, text))
        else:
            self.dropped += 1

    # ---- rows ---------------------------------------------------------------------------
    def row(self, r: tuple[Any, ...]) -> StoredEvent | None:
        seq, t_s, pump_ns, wall_ns, wall, type_, actor, data, prev_hash, stored = r
        self.count += 1
        if seq != self.expected:
            if seq > self.expected:
                self.problem(seq, f"deleted: seq {self.expected}..{seq - 1} missing")
            else:
                self.problem(seq, f"reordered: seq {seq} comes after seq {self.expected - 1}")
        event = None
        try:
            event = row_event((t_s, pump_ns, wall_ns, type_, actor, data))
            computed = chain_hash(str(prev_hash), row_record(seq, event))
        except (DamagedRow, TypeError, ValueError, OverflowError) as err:
            self.problem(seq, f"damaged row: {err}")
            event = None
        if event is not None and computed != stored:
            self.problem(seq, self._edited(seq, str(prev_hash), event, str(stored)))
        elif prev_hash != self.prev:
            self.problem(seq, "bad chain: the previous hash does not match (rows removed, "
                              "inserted or reordered)")
        if event is not None and wall != wall_iso(event.wall_ns):
            self.problem(seq, f"edited: wall {wall!r} is not the hashed time "
                              f"{wall_iso(event.wall_ns)}")
        ep = pump_ns // EPOCH_NS if isinstance(pump_ns, int) else self.epoch
        if self.epoch is not None and ep is not None and ep > self.epoch \
                and self.last_row is not None and ep - 1 not in self.last_seals:
            self.problem(self.last_row[0], f"unsealed: the last event of epoch {self.epoch} "
                                           "has no seal (seals removed or rows inserted)")
        if ep is not None:
            self.epoch = ep if self.epoch is None else max(self.epoch, ep)
        stored_event = None
        if event is not None:
            stored_event = StoredEvent(int(seq), event)
            self.fold.feed(stored_event)
            for text in self.fold.problems:
                self.problem(seq, text)
            self.fold.problems.clear()
            if event.type == "pin_changed":
                role = str(event.fields.get("role", "clinician"))
                hid = event.fields.get("hash_id")
                self.pin_ids[role] = (int(seq), None if hid is None else str(hid))
        if type_ == "new_patient":
            self.episodes.append((len(self.episodes) + 1, int(seq), str(wall)))
        elif seq == 1:
            self.episodes.append((1, 1, str(wall)))
        self.prev = str(stored)
        self.expected = max(self.expected, int(seq) + 1) if isinstance(seq, int) else \
            self.expected
        self.last_row = (int(seq), str(stored), int(pump_ns) if isinstance(pump_ns, int) else 0,
                         int(wall_ns) if isinstance(wall_ns, int) else 0)
        self.last_seals = set()
        return stored_event

    def _edited(self, seq: int, prev_hash: str, event: Any, stored: str) -> str:
        for other in range(max(1, seq - 50), seq + 51):
            if other != seq and chain_hash(prev_hash, row_record(other, event)) == stored:
                return f"reordered: this row was written as seq {other}"
        return "edited: the row does not match its hash"

    # ---- seals --------------------------------------------------------------------------
    def _key_for(self, epoch: int) -> bytes | None:
        if self.seed is None:
            return None
        if self._key is None or self._key[0] > epoch:
            self._key = (epoch, key_at(self.seed, epoch))
        else:
            from pca.store.seal import evolve

            self._key = (epoch, evolve(self._key[1], epoch - self._key[0]))
        return self._key[1]

    def seal(self, s: dict[str, Any]) -> None:
        self.seals += 1
        n = s["n"]
        where = f"seal {n}"
        before = len(self.problems) + self.dropped
        if self.last_row is None or s["seq"] != self.last_row[0]:
            self.problem(s["seq"], f"{where} is for seq {s['seq']}, which is not where it "
                                   "stands in the log")
        else:
            seq, row_hash, pump_ns, wall_ns = self.last_row
            if s["hash"] != row_hash:
                self.problem(seq, f"{where}: the sealed hash is not the row's (row edited "
                                  "after sealing)")
            if (s["pump_ns"], s["wall_ns"]) != (pump_ns, wall_ns):
                self.problem(seq, f"{where}: the sealed times are not the row's")
            if s["epoch"] < pump_ns // EPOCH_NS:
                self.problem(seq, f"{where}: sealed in epoch {s['epoch']}, before its event")
            if not usable(str(s["checkpoint"])):
                self.other_version += 1  # another software's fold: not comparable
            elif s["checkpoint"] != dumps(self.fold.checkpoint()):
                self.problem(seq, f"{where}: its start-up checkpoint is not what the events "
                                  "before it give (forged checkpoint)")
            if s["episodes"] != episodes_digest(self.episodes):
                self.problem(seq, f"{where}: the episodes it covers are not the log's")
        if s["prev_mac"] != self.prev_mac:
            self.problem(s["seq"], f"{where}: it does not follow the previous seal (seals "
                                   "removed or reordered)")
        if self.last_seal is not None:
            if s["epoch"] < self.last_seal["epoch"]:
                self.problem(s["seq"], f"{where}: its epoch goes backwards")
            elif s["epoch"] > self.last_seal["epoch"] + 1:
                self.gaps.append((int(self.last_seal["epoch"]), int(s["epoch"])))
        key = self._key_for(int(s["epoch"]))
        if key is not None:
            if not s["mac"]:
                self.problem(s["seq"], f"{where} has no MAC: the log was written without a "
                                       "sealing key")
            elif seal_mac(key, seal_message(s)) != s["mac"]:
                self.problem(s["seq"], f"{where}: the MAC does not verify with this key "
                                       "(forged seal, other key, or an edited seal)")
        self.prev_mac = str(s["mac"])
        self.last_seal = s
        self.last_seals.add(int(s["epoch"]))
        if len(self.problems) + self.dropped == before and (key is None or s["mac"]):
            self.last_good_seal = s

    @property
    def first_bad(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.seq or 0) if self.problems else None
