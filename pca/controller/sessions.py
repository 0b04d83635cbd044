"""Keypad sessions (SR-6): PIN unlock, idle relock, PIN change and reset, PIN store audit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pca.controller.auth import (
    SESSION_EDIT_IDLE_NS,
    SESSION_IDLE_NS,
    Outcome,
    PinFormatError,
    PinService,
    Role,
    pin_weakness,
)
from pca.controller.journal import Journal
from pca.controller.ports import NS_PER_S, Actor, Credentials, LogWriteError
from pca.controller.pumptime import PumpTime


class Sessions:
    """Who is at the keypad and until when. An admin session resets PINs and installs
    drug libraries; it never authorises therapy (SR-6)."""

    def __init__(self, credentials: Credentials, pepper: bytes | None, time: PumpTime,
                 journal: Journal) -> None:
        self.pins = PinService(credentials, pepper=pepper)
        self.time = time
        self.journal = journal
        self.until_ns: int | None = None
        self.editing = False
        self.role: Role = "clinician"
        # Fingerprints of the stored PIN hashes as the log last recorded them (role -> id;
        # None: set by provision, trust what is stored), to log changes made outside.
        self.known_hash_ids: dict[str, str | None] = {}

    # ---- the session -----------------------------------------------------------------
    def is_open(self) -> bool:
        """A keypad session (clinician or admin) is open."""
        return self.until_ns is not None and self.time.now_ns < self.until_ns

    def clinician_open(self) -> bool:
        """SR-6: a clinician action without a PIN needs an open *clinician* session."""
        return self.is_open() and self.role == "clinician"

    def admin_open(self) -> bool:
        return self.is_open() and self.role == "admin"

    def touch(self, editing: bool) -> None:
        """Keep the session open: 30 s idle, 4 min inside an edit (SR-6)."""
        if self.is_open():
            self.editing = editing
            self.until_ns = self.time.now_ns + (
                SESSION_EDIT_IDLE_NS if editing else SESSION_IDLE_NS)

    def extend(self) -> None:
        """A clinician action was taken: 30 s from now."""
        self.until_ns = self.time.now_ns + SESSION_IDLE_NS

    def lock(self, reason: str) -> None:
        if self.until_ns is not None:
            self.until_ns = None
            self.journal.emit("session_locked", "clinician", reason=reason)

    def expire(self, now: int) -> None:
        """Relock when the idle time is up."""
        if self.until_ns is not None and now >= self.until_ns:
            self.until_ns = None
            self.journal.emit("session_locked", "system", reason="idle")

    def authenticate(self, pin: str, role: Role = "clinician") -> bool:
        """The PIN of `role` opens a session for that role."""
        if self.check_pin(pin, role) != "ok":
            return False
        self.role = role
        self.until_ns = self.time.now_ns + SESSION_IDLE_NS
        return True

    # ---- PINs --------------------------------------------------------------------------
    def check_pin(self, pin: str, role: Role) -> Outcome:
        """One logged attempt at `role`'s PIN, under the shared backoff; never logs the PIN."""
        now = self.time.now_ns
        self.audit()
        if not self.pins.provisioned(role):
            self.journal.emit("auth", "clinician", outcome="failed", role=role,
                              reason=f"no {role} PIN is provisioned")
            return "failed"
        outcome: Outcome = self.pins.check(pin, now, (role,))[0]
        fields: dict[str, Any] = {"outcome": outcome, "role": role}
        if outcome == "failed":
            fields["consecutive_failures"] = self.pins.failures.consecutive
            problem = self.pins.problem(role)
            if problem is not None:
                fields["reason"] = problem
        if outcome == "locked_out":
            until = self.pins.locked_until_ns() or now
            fields["retry_in_s"] = round((until - now) / NS_PER_S, 1)
        self.journal.emit("auth", "clinician", **fields)
        return outcome

    def wait_s(self) -> float:
        """Seconds until the backoff allows another attempt."""
        until = self.pins.locked_until_ns()
        return max(0, until - self.time.now_ns) / NS_PER_S if until is not None else 0.0

    def change_pin(self, old_pin: str, new_pin: str) -> str | None:
        """The session's own PIN, after the current one is typed again (a walk-up to an
        open session cannot change it)."""
        if not self.is_open():
            return "the keypad is locked"
        role = self.role
        outcome = self.check_pin(old_pin, role)
        if outcome == "locked_out":
            return "too many wrong PINs: wait and try again"
        if outcome != "ok":
            return "the current PIN is wrong: nothing changed"
        return self._set_pin(role, new_pin, by=role)

    def reset_pin(self, role: Role, new_pin: str) -> str | None:
        """Admin only: set another role's PIN (a clinician who forgot theirs)."""
        if not self.admin_open():
            return "an admin session is needed to reset a PIN"
        return self._set_pin(role, new_pin, by="admin")

    def provision(self, pin: str, actor: Actor, *, allow_weak: bool = False) -> None:
        """Set the clinician PIN (stored only as a salted scrypt hash). The weakness check
        runs here as on every path that sets a PIN: a weak PIN raises WeakPinError, unless
        `allow_weak` (scenario and simulator provisioning, whose files and demo PIN are not
        a ward's), where it is set and the event says why it is weak (`weak`)."""
        weak = self.pins.set_pin(pin, allow_weak=allow_weak)
        if weak is None:
            self.journal.emit("pin_changed", actor, role="clinician")
        else:
            self.journal.emit("pin_changed", actor, role="clinician", weak=weak)

    def _set_pin(self, role: Role, pin: str, by: str) -> str | None:
        weak = pin_weakness(pin) if pin.isdigit() else None
        if weak is not None:
            return f"too easy to guess ({weak}): choose another"
        try:
            self.pins.set_pin(pin, role)
        except PinFormatError as err:
            return str(err)
        except LogWriteError as err:
            return f"the PIN store cannot be written: {err}"
        self.journal.emit("pin_changed", "clinician", role=role, by=by,
                          hash_id=self.pins.hash_id(role))
        return None

    def audit(self) -> None:
        """SR-7: a PIN set outside the pump (`pca pin set`, which must not write to the
        log of a running pump) is logged the first time the pump uses the store."""
        known = self.known_hash_ids
        for role in ("clinician", "admin"):
            current = self.pins.hash_id(role)
            if role in known and known[role] is None:
                known[role] = current
            elif current is not None and known.get(role) != current:
                self.journal.emit("pin_changed", "system", role=role,
                                  by="outside the pump (pca pin set)", hash_id=current)

    def observe(self, type_: str, fields: Mapping[str, Any], pump_ns: int) -> None:
        """The log (replayed or new) tells which PIN hashes it has recorded."""
        if type_ == "pin_changed":
            self.known_hash_ids[str(fields.get("role", "clinician"))] = fields.get("hash_id")
