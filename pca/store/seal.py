"""Forward-secure sealing keys and the tail anchor kept outside the database.

The verification key is a random 32-byte seed shown once at provisioning and kept off the
pump. The pump holds only the key of the current epoch: k_0 = HMAC(seed, "k0"),
k_{i+1} = HMAC(k_i, "evolve"). Stepping forward overwrites the old key on disk and syncs,
so whoever takes the pump later cannot make a seal for an epoch already left behind.
Every primitive is the standard library's (hmac, hashlib, secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EPOCH_NS = 15 * 60 * 1_000_000_000  # 15 minutes of pump time
KEY_BYTES = 32
_K0 = b"pca-fss k0"
_EVOLVE = b"pca-fss evolve"
_SEAL = b"pca-fss seal "
KEY_RECORD_BYTES = 256
ANCHOR_SLOT_BYTES = 256


class SealKeyError(RuntimeError):
    """The sealing key file is missing, damaged or not from this seed."""


def first_key(seed: bytes) -> bytes:
    return hmac.new(seed, _K0, hashlib.sha256).digest()


def evolve(key: bytes, steps: int = 1) -> bytes:
    """The one-way step, `steps` times (k_i -> k_{i+steps})."""
    for _ in range(steps):
        key = hmac.new(key, _EVOLVE, hashlib.sha256).digest()
    return key


def key_at(seed: bytes, epoch: int) -> bytes:
    """What only the holder of the verification key can compute for any epoch."""
    return evolve(first_key(seed), epoch)


def seal_mac(key: bytes, message: dict[str, Any]) -> str:
    body = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, _SEAL + body, hashlib.sha256).hexdigest()


def seed_id(seed: bytes) -> str:
    """A public fingerprint of the verification key (names it without revealing it)."""
    return hashlib.sha256(b"pca-fss id" + seed).hexdigest()[:16]


def parse_verify_key(text: str) -> bytes:
    """The verification key as shown at setup (64 hex digits, dashes and spaces allowed)."""
    cleaned = "".join(ch for ch in text.strip().lower() if ch not in "- ")
    if len(cleaned) != 2 * KEY_BYTES or any(ch not in "0123456789abcdef" for ch in cleaned):
        raise ValueError("a verification key is 64 hexadecimal digits (as `pca log "
                         "setup-keys` showed it)")
    return bytes.fromhex(cleaned)


def format_verify_key(seed: bytes) -> str:
    text = seed.hex()
    return "-".join(text[i:i + 8] for i in range(0, len(text), 8))


def _sync_dir(path: Path) -> None:
    fd = os.open(path.parent or Path("."), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _record(payload: dict[str, Any], size: int) -> bytes:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    line = body + b" " + f"{zlib.crc32(body):08x}".encode()
    if len(line) > size - 1:
        raise ValueError("record too long")
    return line + b"\n" + b"\0" * (size - len(line) - 1)


def _parse(raw: bytes) -> dict[str, Any] | None:
    line = raw.split(b"\n", 1)[0]
    body, _, crc = line.rpartition(b" ")
    try:
        if not body or int(crc, 16) != zlib.crc32(body):
            return None
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _overwrite(path: Path, data: bytes) -> None:
    """Write in place (the old bytes are overwritten, not left in a freed block) and sync."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, data, 0)
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class SealKey:
    """The current epoch's sealing key, in `<db>-sealkey` (one record, overwritten in place;
    a copy is written and synced first, so a torn write leaves a whole key somewhere)."""

    path: Path
    epoch: int
    key: bytes
    seed_id: str

    @classmethod
    def provision(cls, path: Path) -> tuple[SealKey, bytes]:
        """A new seed and epoch-0 key; returns the seed, which is never stored here."""
        seed = secrets.token_bytes(KEY_BYTES)
        sealer = cls(path, 0, first_key(seed), seed_id(seed))
        sealer._store()
        return sealer, seed

    @classmethod
    def load(cls, path: Path) -> SealKey:
        for candidate in (path, path.with_name(path.name + ".new")):
            try:
                raw = candidate.read_bytes()
            except OSError:
                continue
            value = _parse(raw)
            if value is None:
                continue
            try:
                return cls(path, int(value["epoch"]), bytes.fromhex(str(value["key"])),
                           str(value["seed_id"]))
            except (KeyError, ValueError, TypeError):
                continue
        raise SealKeyError(f"{path}: no readable sealing key (run `pca log setup-keys`)")

    def _store(self) -> None:
        data = _record({"epoch": self.epoch, "key": self.key.hex(), "seed_id": self.seed_id,
                        "epoch_s": EPOCH_NS // 1_000_000_000}, KEY_RECORD_BYTES)
        spare = self.path.with_name(self.path.name + ".new")
        _overwrite(spare, data)
        _overwrite(self.path, data)
        _sync_dir(self.path)

    def advance(self, epoch: int) -> None:
        """Step the key forward to `epoch`; the old key is gone from disk once this returns."""
        if epoch <= self.epoch:
            return
        self.key = evolve(self.key, epoch - self.epoch)
        self.epoch = epoch
        self._store()


@dataclass(frozen=True)
class AnchorRecord:
    n: int  # write counter: the slot with the larger one is the newer
    head_seq: int
    head_hash: str
    seal_seq: int
    seal_mac: str


class Anchor:
    """The log's tail kept outside the database: last written seq + hash and the last seal.

    Two fixed-size slots written in turn and synced, so a torn write leaves the previous
    record whole. The same format goes to every path given: the `<db>-anchor` file and,
    where the hardware has one, a battery-backed RAM exposed as a file (Linux nvmem).
    """

    def __init__(self, paths: list[Path], slot_bytes: int = ANCHOR_SLOT_BYTES) -> None:
        self.paths = paths
        self.slot_bytes = slot_bytes
        current = self.read()
        self._n = current.n if current is not None else 0

    def read(self) -> AnchorRecord | None:
        best: AnchorRecord | None = None
        for path in self.paths:
            try:
                raw = path.read_bytes()
            except OSError:
                continue
            for slot in range(2):
                value = _parse(raw[slot * self.slot_bytes:(slot + 1) * self.slot_bytes])
                if value is None:
                    continue
                try:
                    rec = AnchorRecord(int(value["n"]), int(value["head_seq"]),
                                       str(value["head_hash"]), int(value["seal_seq"]),
                                       str(value["seal_mac"]))
                except (KeyError, ValueError, TypeError):
                    continue
                if best is None or rec.n > best.n:
                    best = rec
        return best

    def exists(self) -> bool:
        return any(path.exists() for path in self.paths)

    def write(self, head_seq: int, head_hash: str, seal_seq: int, seal_mac: str) -> None:
        self._n += 1
        data = _record({"n": self._n, "head_seq": head_seq, "head_hash": head_hash,
                        "seal_seq": seal_seq, "seal_mac": seal_mac}, self.slot_bytes)
        for path in self.paths:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                os.pwrite(fd, data, (self._n % 2) * self.slot_bytes)
                os.fsync(fd)
            finally:
                os.close(fd)


def key_path(db: Path) -> Path:
    return db.with_name(db.name + "-sealkey")


def anchor_path(db: Path) -> Path:
    return db.with_name(db.name + "-anchor")


def sim_verify_key_path(db: Path) -> Path:
    """Simulator and scenario logs only: their verification key, kept next to the log."""
    return db.with_name(db.name + "-verifykey")
