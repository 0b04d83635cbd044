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


# The keypad (3 x 4): row, column of each digit.
KEYPAD_AT: dict[str, tuple[int, int]] = {
    "1": (0, 0), "2": (0, 1), "3": (0, 2), "4": (1, 0), "5": (1, 1), "6": (1, 2),
    "7": (2, 0), "8": (2, 1), "9": (2, 2), "0": (3, 1)}
# PINs people choose most often (published analyses of leaked PIN and passcode sets, in
# the spirit of NIST SP 800-63B's blocklist), beyond what the rules below already catch.
COMMON_PINS = frozenset({
    "1004", "2000", "6969", "1122", "1313", "2001", "1010", "0007", "1007", "2580", "1230",
    "0852", "7410", "1598", "3579", "1397", "7913", "2468", "8520", "1470", "2583", "5683",
    "8675", "1701", "0911", "9111", "0101", "0123", "112233", "123321", "654321",
    "696969", "159753", "147258", "258456", "102030", "789456", "159357", "147852",
    "121314", "101010", "123654", "147369", "741852", "963852", "131313", "200000",
    "111222", "520520", "112358", "314159", "12345678", "87654321", "11223344",
})


def _keypad_walk(pin: str) -> bool:
    """A straight walk on the keypad (one key to its neighbour, always the same way)."""
    moves = {(KEYPAD_AT[b][0] - KEYPAD_AT[a][0], KEYPAD_AT[b][1] - KEYPAD_AT[a][1])
             for a, b in itertools.pairwise(pin)}
    return len(moves) == 1 and max(map(abs, next(iter(moves)))) == 1


def _keypad_lines(pin: str) -> bool:
    """The PIN is keypad lines typed one after another (2580, 147258, 789456, 159357)."""
    ok = [True] + [False] * len(pin)  # ok[i]: pin[:i] splits into lines of 3 or more keys
    for end in range(3, len(pin) + 1):
        ok[end] = any(ok[start] and _keypad_walk(pin[start:end])
                      for start in range(0, end - 2))
    return ok[len(pin)]


def pin_weakness(pin: str) -> str | None:
    """Why a new PIN is one an attacker tries first, else None (NIST SP 800-63B: refuse
    repeats, sequences, keypad patterns and the most common choices). Checked on every
    path that sets a PIN, never when one is typed."""
    if not pin.isdigit():
        return None  # the format check says what is wrong
    if len(set(pin)) == 1:
        return "all its digits are the same"
    if max(pin.count(d) for d in set(pin)) >= len(pin) - 1:
        return "all its digits but one are the same"
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {9}):
        return "its digits run in sequence"
    if len(steps) == 1:
        return "its digits step evenly (like 1357)"
    for size in range(2, len(pin) // 2 + 1):
        if (pin[:size] * len(pin))[:len(pin)] == pin:
            return "it repeats a shorter pattern (like 1212)"
    if len(pin) % 2 == 0 and pin[0::2] == pin[1::2]:
        return "each digit is typed twice (like 1122)"
    if pin == pin[::-1]:
        return "it reads the same backwards (like 1221)"
    if _keypad_lines(pin):
        return "it is a line on the keypad (like 2580)"
    if len(pin) == 4 and 1900 <= int(pin) <= 2099:
        return "it is a year"
    if pin in COMMON_PINS:
        return "it is one of the most common PINs"
    return None


class WeakPinError(PinFormatError):
    """A new PIN on the blocklist (pin_weakness)."""


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
        if pepper is not None:  # once a pump has a pepper, a hash without it is refused
            return "the stored PIN hash was made without this pump's device pepper (copied " \
                   "in from elsewhere, or set before the pepper): set the PIN again " \
                   "(pca pin set --reset)"
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
            if pepper is not None:
                return False  # never an unpeppered hash once the pump has a pepper
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

    def set_pin(self, pin: str, role: Role = ROLE, *, allow_weak: bool = False) -> str | None:
        """Store a new PIN; a weak one raises WeakPinError unless `allow_weak` (scenario
        and simulator provisioning only), which returns why it is weak, to be logged."""
        check_pin_format(pin)
        weak = pin_weakness(pin)
        if weak is not None and not allow_weak:
            raise WeakPinError(f"too easy to guess ({weak}): choose another")
        self._credentials.set_pin_hash(role, hash_pin(pin, pepper=self._pepper))
        return weak
