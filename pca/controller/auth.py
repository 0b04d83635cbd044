"""Clinician authorisation (SR-6): salted scrypt PIN hashes and failure backoff.

The PIN is never stored, logged or returned; only `scrypt$...` strings are kept.
Consecutive failures are rebuilt from the event log at start-up, so the
backoff survives restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from pca.controller.ports import NS_PER_S, Credentials

Outcome = Literal["ok", "failed", "locked_out"]

# scrypt cost: 16 MiB and ~50 ms per attempt on a Pi 4; memory-hard against GPU guessing.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
FREE_FAILURES = 3
BACKOFF_BASE_S = 15
BACKOFF_MAX_S = 3600
SESSION_IDLE_NS = 30 * NS_PER_S
SESSION_EDIT_IDLE_NS = 240 * NS_PER_S
ROLE = "clinician"


class PinFormatError(ValueError):
    pass


def check_pin_format(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 8):
        raise PinFormatError("a PIN is 4 to 8 digits")


def hash_pin(pin: str, *, salt: bytes | None = None, n: int | None = None) -> str:
    check_pin_format(pin)
    n = SCRYPT_N if n is None else n
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, dklen=32,
                            maxmem=64 * 1024 * 1024)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, encoded: str) -> bool:
    try:
        kind, n, r, p, salt_hex, digest_hex = encoded.split("$")
        if kind != "scrypt":
            return False
        digest = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r),
                                p=int(p), dklen=len(digest_hex) // 2, maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def backoff_ns(failures: int) -> int:
    """How long attempts are refused after `failures` consecutive failures."""
    if failures < FREE_FAILURES:
        return 0
    seconds: int = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (failures - FREE_FAILURES))
    return seconds * NS_PER_S


@dataclass
class FailureState:
    consecutive: int = 0
    last_failure_ns: int | None = None


class PinService:
    """Checks PINs against stored hashes with exponential backoff after failures."""

    def __init__(self, credentials: Credentials, failures: FailureState | None = None) -> None:
        self._credentials = credentials
        self.failures = failures or FailureState()

    def provisioned(self) -> bool:
        return self._credentials.get_pin_hash(ROLE) is not None

    def locked_until_ns(self) -> int | None:
        wait = backoff_ns(self.failures.consecutive)
        if wait == 0 or self.failures.last_failure_ns is None:
            return None
        return self.failures.last_failure_ns + wait

    def attempt(self, pin: str, now_ns: int) -> Outcome:
        until = self.locked_until_ns()
        if until is not None and now_ns < until:
            return "locked_out"
        encoded = self._credentials.get_pin_hash(ROLE)
        if encoded is not None and verify_pin(pin, encoded):
            self.failures = FailureState()
            return "ok"
        self.failures = FailureState(self.failures.consecutive + 1, now_ns)
        return "failed"

    def set_pin(self, pin: str) -> None:
        self._credentials.set_pin_hash(ROLE, hash_pin(pin))
