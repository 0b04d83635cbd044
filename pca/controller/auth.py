"""Clinician and admin authorisation (SR-6): peppered, salted scrypt PIN hashes and backoff.

The PIN is never stored, logged or returned; only `scrypt$...` strings are kept.
With a device pepper (a secret kept in a file outside the database) the PIN is
first keyed with HMAC-SHA256(pepper, PIN), so a copied database alone cannot be
brute-forced offline. Consecutive failures are rebuilt from the event log at
start-up, so the backoff survives restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pca.controller.ports import NS_PER_S, Credentials

Outcome = Literal["ok", "failed", "locked_out"]
Role = Literal["clinician", "admin"]
ROLES: tuple[Role, ...] = ("clinician", "admin")

# scrypt cost: 16 MiB and ~50 ms per attempt on a Pi 4; memory-hard against GPU guessing.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
FREE_FAILURES = 3
BACKOFF_BASE_S = 15
BACKOFF_MAX_S = 3600
SESSION_IDLE_NS = 30 * NS_PER_S
SESSION_EDIT_IDLE_NS = 240 * NS_PER_S
ROLE: Role = "clinician"
PIN_MIN_DIGITS = 4
PIN_MAX_DIGITS = 8
PEPPER_MIN_BYTES = 16
PLAIN = "scrypt"  # hash of the PIN itself (no pepper configured)
PEPPERED = "scrypt-hmac"  # hash of HMAC-SHA256(pepper, PIN)


class PinFormatError(ValueError):
    pass


class SecretPin(str):
    """A PIN that never shows itself in a repr: tracebacks with locals, dataclass reprs
    and debug prints see `<PIN ****>`, so a crash report cannot carry it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<PIN " + "*" * len(self) + ">"


def check_pin_format(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit() and PIN_MIN_DIGITS <= len(pin) <= PIN_MAX_DIGITS):
        raise PinFormatError(f"a PIN is {PIN_MIN_DIGITS} to {PIN_MAX_DIGITS} digits")


def pin_weakness(pin: str) -> str | None:
    """Why a new PIN is one an attacker tries first (one digit repeated, a run up or
    down), else None. Checked when a PIN is chosen, never when one is typed."""
    if len(set(pin)) == 1:
        return "all its digits are the same"
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {9}):
        return "its digits run in sequence"
    return None


def pepper_id(pepper: bytes) -> str:
    """A short public name for a pepper, so a hash made with another pepper is recognised
    as such (and reported) rather than looking like a wrong PIN."""
    return hashlib.sha256(b"pca pepper id\0" + pepper).hexdigest()[:12]


def _keyed(pin: str, pepper: bytes | None) -> bytes:
    if pepper is None:
        return pin.encode()
    return hmac.new(pepper, pin.encode(), hashlib.sha256).digest()


def hash_pin(pin: str, *, salt: bytes | None = None, n: int | None = None,
             pepper: bytes | None = None) -> str:
    check_pin_format(pin)
    if pepper is not None and len(pepper) < PEPPER_MIN_BYTES:
        raise ValueError(f"the device pepper must be at least {PEPPER_MIN_BYTES} bytes")
    n = SCRYPT_N if n is None else n
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(_keyed(pin, pepper), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=32, maxmem=SCRYPT_MAXMEM)
    tail = f"{n}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"
    if pepper is None:
        return f"{PLAIN}${tail}"
    return f"{PEPPERED}${pepper_id(pepper)}${tail}"


def hash_problem(encoded: str, pepper: bytes | None) -> str | None:
    """Why `encoded` cannot be checked with this pepper at all (None: it can)."""
    kind = encoded.split("$", 1)[0]
    if kind == PLAIN:
        return None
    if kind != PEPPERED:
        return "the stored PIN hash has an unknown format: set the PIN again (pca pin set)"
    if pepper is None:
        return "the PINs were set with a device pepper that this pump was not given: " \
               "check the pepper file in the configuration"
    if encoded.split("$")[1] != pepper_id(pepper):
        return "the PINs were set with another device pepper: restore the pepper file or " \
               "set the PINs again (pca pin set --reset)"
    return None


def verify_pin(pin: str, encoded: str, *, pepper: bytes | None = None) -> bool:
    try:
        parts = encoded.split("$")
        if parts[0] == PEPPERED:
            if pepper is None or parts[1] != pepper_id(pepper):
                return False
            parts = parts[1:]
            key = _keyed(pin, pepper)
        elif parts[0] == PLAIN:
            key = _keyed(pin, None)
        else:
            return False
        _kind, n, r, p, salt_hex, digest_hex = parts
        digest = hashlib.scrypt(key, salt=bytes.fromhex(salt_hex), n=int(n), r=int(r),
                                p=int(p), dklen=len(digest_hex) // 2, maxmem=SCRYPT_MAXMEM)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def backoff_ns(failures: int) -> int:
    """How long attempts are refused after `failures` consecutive failures."""
    if failures < FREE_FAILURES:
        return 0
    seconds: int = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (failures - FREE_FAILURES))
    return seconds * NS_PER_S


def exhaust_ns(space: int) -> int:
    """The least time an attacker needs to try `space` PINs one after another under the
    backoff (each attempt made the moment the previous backoff ends)."""
    return sum(backoff_ns(failures) for failures in range(1, space))


@dataclass
class FailureState:
    consecutive: int = 0
    last_failure_ns: int | None = None


class PinService:
    """Checks PINs against stored hashes with exponential backoff after failures.

    One failure counter covers every role, so trying the admin PIN does not give an
    attacker a second budget of guesses. Each attempt names the role it is for (the
    keypad has separate clinician and admin entries), so two roles sharing a PIN can
    never shadow each other and setting a PIN reveals nothing about another role's.
    """

    def __init__(self, credentials: Credentials, failures: FailureState | None = None, *,
                 pepper: bytes | None = None) -> None:
        if pepper is not None and len(pepper) < PEPPER_MIN_BYTES:
            raise ValueError(f"the device pepper must be at least {PEPPER_MIN_BYTES} bytes")
        self._credentials = credentials
        self._pepper = pepper
        self.failures = failures or FailureState()

    def provisioned(self, role: Role | None = ROLE) -> bool:
        """A PIN is set for `role` (None: for any role)."""
        roles = ROLES if role is None else (role,)
        return any(self._credentials.get_pin_hash(r) is not None for r in roles)

    def problem(self, role: Role = ROLE) -> str | None:
        """Why the stored PIN of `role` cannot be checked (missing or mismatched pepper)."""
        encoded = self._credentials.get_pin_hash(role)
        return None if encoded is None else hash_problem(encoded, self._pepper)

    def hash_id(self, role: Role) -> str | None:
        """A short public fingerprint of the stored hash, to notice changes made outside."""
        encoded = self._credentials.get_pin_hash(role)
        return None if encoded is None else hashlib.sha256(encoded.encode()).hexdigest()[:12]

    def locked_until_ns(self) -> int | None:
        wait = backoff_ns(self.failures.consecutive)
        if wait == 0 or self.failures.last_failure_ns is None:
            return None
        return self.failures.last_failure_ns + wait

    def check(self, pin: str, now_ns: int,
              roles: Sequence[Role] = (ROLE,)) -> tuple[Outcome, Role | None]:
        """One attempt against the PINs of `roles` (in order): the outcome and the role."""
        until = self.locked_until_ns()
        if until is not None and now_ns < until:
            return "locked_out", None
        for role in roles:
            encoded = self._credentials.get_pin_hash(role)
            if encoded is not None and verify_pin(pin, encoded, pepper=self._pepper):
                self.failures = FailureState()
                return "ok", role
        self.failures = FailureState(self.failures.consecutive + 1, now_ns)
        return "failed", None

    def attempt(self, pin: str, now_ns: int) -> Outcome:
        return self.check(pin, now_ns)[0]

    def set_pin(self, pin: str, role: Role = ROLE) -> None:
        self._credentials.set_pin_hash(role, hash_pin(pin, pepper=self._pepper))
